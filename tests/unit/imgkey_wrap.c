/* imgkey_wrap.c: a test program, not a Check suite. It runs imgsign_key_wrap
 * (the function the device update API calls) against a real database and
 * token, as quarklinkd.conf names them, for one image and one device
 * certificate, and writes the CMS EnvelopedData (DER) to stdout, so that
 * t_image_encrypt.sh can open it with openssl cms -decrypt. The token work
 * runs on a one-thread token pool, as in the daemon.
 *
 * usage: imgkey_wrap CONF IMAGE_ID DEVICE_CERT_PEM > key.cms */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/pem.h>

#include "conf.h"
#include "db.h"
#include "imgsign.h"
#include "log.h"
#include "p11.h"
#include "server.h"
#include "tok.h"
#include "util.h"

static struct event_base *imgkey_base;
static int imgkey_rc = 1;
static int imgkey_is_started;
static struct server *imgkey_srv;
static long long imgkey_image;
static X509 *imgkey_cert;

static void
imgkey_done(const unsigned char *der, size_t len, const char *err, void *arg)
{
	(void)arg;
	if (der != NULL && fwrite(der, 1, len, stdout) == len)
		imgkey_rc = 0;
	else
		fprintf(stderr, "imgkey_wrap: %s\n", err ? err : "write failed");
	event_base_loopbreak(imgkey_base);
}

/* Ask once the pool is connected (statements prepared). */
static void
imgkey_tick(evutil_socket_t fd, short what, void *arg)
{
	struct event *ev = arg;

	(void)fd;
	(void)what;
	if (imgkey_is_started || db_connected(imgkey_srv->db) == 0)
		return;
	imgkey_is_started = 1;
	event_del(ev);
	imgsign_key_wrap(imgkey_srv, imgkey_image, imgkey_cert, imgkey_done, NULL);
}

int
main(int argc, char **argv)
{
	static struct conf c;
	struct server srv;
	char err[CONF_ERRLEN];
	const char *errstr = NULL;
	struct timeval tv = { 0, 20000 }, limit = { 30, 0 };
	struct event *tick;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: imgkey_wrap CONF IMAGE_ID DEVICE_CERT_PEM\n");
		return 2;
	}
	if (log_init(LOG_LEVEL_WARN, "stderr", NULL, &errstr) == -1)
		return 2;
	conf_init(&c);
	if (conf_load(&c, argv[1], err, sizeof(err)) == -1) {
		fprintf(stderr, "imgkey_wrap: %s\n", err);
		return 2;
	}
	imgkey_image = util_strtonum(argv[2], 1, INT64_MAX, &errstr);
	if (errstr != NULL || (f = fopen(argv[3], "r")) == NULL ||
	    (imgkey_cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "imgkey_wrap: bad image id or certificate\n");
		return 2;
	}
	fclose(f);

	struct p11_settings ps = {
		.module = c.p11_module, .token_label = c.p11_token_label,
		.pin_file = c.p11_pin_file, .softhsm2_conf = c.p11_softhsm2_conf,
		.engine = c.p11_engine,
	};
	struct db_pool_settings dbs = {
		.conninfo = c.db_conninfo, .size = 1, .queue_max = 8,
		.reconnect_max_s = 1, .query_timeout_s = 10,
	};

	memset(&srv, 0, sizeof(srv));
	srv.conf = &c;
	imgkey_srv = &srv;
	if ((imgkey_base = event_base_new()) == NULL)
		return 2;
	srv.base = imgkey_base;
	if ((srv.p11 = p11_open(&ps, err, sizeof(err))) == NULL) {
		fprintf(stderr, "imgkey_wrap: %s\n", err);
		return 2;
	}
	if (tok_start(imgkey_base, srv.p11, 1, 4) == -1) {
		fprintf(stderr, "imgkey_wrap: cannot start the token pool\n");
		return 2;
	}
	if ((srv.db = db_pool_new(imgkey_base, &dbs)) == NULL ||
	    imgsign_register(srv.db) == -1)
		return 2;
	db_pool_start(srv.db);
	if ((tick = event_new(imgkey_base, -1, EV_PERSIST, imgkey_tick,
	    event_self_cbarg())) == NULL)
		return 2;
	event_add(tick, &tv);
	event_base_loopexit(imgkey_base, &limit);
	event_base_dispatch(imgkey_base);
	if (!imgkey_is_started)
		fprintf(stderr, "imgkey_wrap: no database connection\n");
	event_free(tick);
	db_pool_drain(srv.db);
	db_pool_free(srv.db);
	tok_stop();
	p11_close(srv.p11);
	X509_free(imgkey_cert);
	event_base_free(imgkey_base);
	conf_free(&c);
	return imgkey_rc;
}

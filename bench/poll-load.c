/*
 * poll-load: many devices, each with its own certificate, on keep-alive
 * mutual-TLS connections, polling GET /device/v1/update the way an idle
 * fleet does (If-None-Match with the last ETag). Phase 1 opens every
 * connection (a bounded number of handshakes at once) and holds them;
 * phase 2 polls at a fixed total rate (open loop: every connection polls
 * once per N/rate seconds, at a random phase) for a fixed time, and
 * reports the rate achieved and the latency percentiles. Not part of
 * quarklinkd.
 *
 * Output (stdout): "connected N failed F" after phase 1, then
 *   result polls=N rate=R p50_ms=.. p99_ms=.. max_ms=.. late=N errors=N
 *       status_200=N status_204=N status_304=N other=N closed=N
 * With -W it prints "connected ..." and waits for a line on stdin before
 * polling (so the caller can measure the server holding N connections).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "loadgen.h"

#define POLL_MAX_CONNS		60000
#define POLL_HANDSHAKES		64	/* at once in phase 1 */
#define POLL_MAX_RESPONSE	65536

struct poll_conn {
	struct bufferevent	*bev;
	struct event		*timer;
	X509			*cert;
	EVP_PKEY		*key;
	char			 etag[80];
	double			 t0;
	int			 is_connected;
	int			 is_waiting;	/* a poll is out */
	int			 is_dead;
};

static struct {
	const char	*port;
	const char	*file;
	const char	*cafile;
	long		 n;
	double		 rate;
	double		 seconds;
	int		 wait_stdin;
} opt = { NULL, NULL, NULL, 1000, 1000.0, 10.0, 0 };

static struct {
	struct event_base	*base;
	SSL_CTX			*ctx;
	struct sockaddr_in	 addr;
	struct poll_conn	*c;
	long			 n;		/* pairs loaded */
	long			 next;		/* next to connect */
	long			 connecting, connected, failed;
	int			 is_polling;
	double			 t_end;
	double			*lat;
	long			 nlat, cap;
	long			 late, errors, closed, other;
	long			 s200, s204, s304;
	struct timeval		 every;		/* each connection's poll period */
} st;

static void poll_connect_more(void);

static void
poll_load_pairs(void)
{
	FILE *f = fopen(opt.file, "r");

	if (f == NULL)
		loadgen_fatalx("%s: cannot open", opt.file);
	if ((st.c = calloc((size_t)opt.n, sizeof(*st.c))) == NULL)
		loadgen_fatalx("out of memory");
	while (st.n < opt.n) {
		EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		X509 *x;

		if (k == NULL)
			break;
		if ((x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
			loadgen_fatalx("%s: a key without its certificate", opt.file);
		st.c[st.n].key = k;
		st.c[st.n].cert = x;
		st.n++;
	}
	ERR_clear_error();
	fclose(f);
	if (st.n == 0)
		loadgen_fatalx("%s: no key and certificate pairs", opt.file);
}

static void
poll_conn_dead(struct poll_conn *c)
{
	if (c->is_dead)
		return;
	c->is_dead = 1;
	if (c->is_connected)
		st.closed++;
	else {
		st.failed++;
		st.connecting--;
	}
	if (c->timer != NULL)
		evtimer_del(c->timer);
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (!st.is_polling)
		poll_connect_more();
}

static void
poll_record(double ms)
{
	if (st.nlat == st.cap) {
		st.cap = st.cap ? st.cap * 2 : 65536;
		if ((st.lat = realloc(st.lat, (size_t)st.cap * sizeof(double))) == NULL)
			loadgen_fatalx("out of memory");
	}
	st.lat[st.nlat++] = ms;
}

static void
poll_save_etag(struct poll_conn *c, const unsigned char *buf, size_t hdrlen)
{
	const char *p = memmem(buf, hdrlen, "\r\nETag: ", 8), *e;

	if (p == NULL)
		return;
	p += 8;
	if ((e = memchr(p, '\r', hdrlen - (size_t)(p - (const char *)buf))) == NULL ||
	    (size_t)(e - p) >= sizeof(c->etag))
		return;
	memcpy(c->etag, p, (size_t)(e - p));
	c->etag[e - p] = '\0';
}

static void
poll_read_cb(struct bufferevent *bev, void *arg)
{
	struct poll_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in), bodylen, consumed;
	unsigned char *buf, *body;
	int status, is_close, rc;

	if (len > POLL_MAX_RESPONSE) {
		st.errors++;
		poll_conn_dead(c);
		return;
	}
	buf = evbuffer_pullup(in, -1);
	rc = loadgen_parse_response(buf, len, 0, &status, &body, &bodylen,
	    &consumed, &is_close);
	if (rc == 0)
		return;
	if (rc < 0 || !c->is_waiting) {
		st.errors++;
		poll_conn_dead(c);
		return;
	}
	c->is_waiting = 0;
	if (st.is_polling)
		poll_record((loadgen_now() - c->t0) * 1000.0);
	if (status == 200)
		st.s200++;
	else if (status == 204)
		st.s204++;
	else if (status == 304)
		st.s304++;
	else
		st.other++;
	if (status == 200 || status == 204)
		poll_save_etag(c, buf, body - buf);
	evbuffer_drain(in, consumed);
	if (is_close)
		poll_conn_dead(c);
}

static void
poll_send(struct poll_conn *c)
{
	char req[256];
	int n;

	n = snprintf(req, sizeof(req), "GET /device/v1/update HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%s\r\n%s%s%s\r\n", opt.port,
	    c->etag[0] ? "If-None-Match: " : "", c->etag, c->etag[0] ? "\r\n" : "");
	c->is_waiting = 1;
	c->t0 = loadgen_now();
	bufferevent_write(c->bev, req, (size_t)n);
}

static void
poll_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct poll_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->is_dead || loadgen_now() >= st.t_end)
		return;
	event_add(c->timer, &st.every);
	if (c->is_waiting)
		st.late++;	/* the previous poll is still out */
	else
		poll_send(c);
}

static void
poll_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct poll_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->is_connected = 1;
		st.connecting--;
		st.connected++;
		poll_send(c);	/* the first poll learns the ETag */
		poll_connect_more();
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		if (!c->is_connected && st.failed < 5) {
			unsigned long e = bufferevent_get_openssl_error(bev);

			fprintf(stderr, "poll-load: connect failed: %s\n",
			    e ? ERR_error_string(e, NULL) :
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		}
		poll_conn_dead(c);
	}
}

static void
poll_connect_more(void)
{
	while (st.connecting < POLL_HANDSHAKES && st.next < st.n) {
		struct poll_conn *c = &st.c[st.next++];
		SSL *ssl;

		if ((ssl = SSL_new(st.ctx)) == NULL ||
		    SSL_use_certificate(ssl, c->cert) != 1 ||
		    SSL_use_PrivateKey(ssl, c->key) != 1)
			loadgen_fatalx("SSL_new with a device certificate failed");
		c->bev = bufferevent_openssl_socket_new(st.base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		if (c->bev == NULL)
			loadgen_fatalx("bufferevent_openssl_socket_new failed");
		bufferevent_setcb(c->bev, poll_read_cb, NULL, poll_event_cb, c);
		bufferevent_enable(c->bev, EV_READ);
		st.connecting++;
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&st.addr,
		    sizeof(st.addr)) == -1) {
			poll_conn_dead(c);
			continue;
		}
		{
			int one = 1;

			setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP,
			    TCP_NODELAY, &one, sizeof(one));
		}
	}
	if (st.connecting == 0 && st.next >= st.n)
		event_base_loopbreak(st.base);
}

static void
poll_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	event_base_loopbreak(st.base);
}

static int
poll_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
poll_pct(double p)
{
	long r = (long)(p / 100.0 * st.nlat + 0.999999);

	if (st.nlat == 0)
		return 0;
	if (r < 1)
		r = 1;
	return st.lat[(r > st.nlat ? st.nlat : r) - 1];
}

static void
poll_usage(void)
{
	fprintf(stderr, "usage: poll-load -p PORT -f KEYS.pem --cafile ROOT.pem [-n CONNS]\n"
	    "                 [-r POLLS_PER_SECOND] [-d SECONDS] [-W]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cafile", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 }
	};
	struct timeval tv;
	struct rlimit rl;
	struct event *stop;
	double t0, t1;
	char line[64];
	int ch;

	loadgen_progname = "poll-load";
	while ((ch = getopt_long(argc, argv, "p:f:n:r:d:W", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': opt.port = optarg; break;
		case 'f': opt.file = optarg; break;
		case 'C': opt.cafile = optarg; break;
		case 'n': opt.n = loadgen_parse_long(optarg, "-n", 1, POLL_MAX_CONNS); break;
		case 'r': opt.rate = (double)loadgen_parse_long(optarg, "-r", 1, 10000000); break;
		case 'd': opt.seconds = (double)loadgen_parse_long(optarg, "-d", 1, 3600); break;
		case 'W': opt.wait_stdin = 1; break;
		default: poll_usage();
		}
	}
	if (opt.port == NULL || opt.file == NULL || opt.cafile == NULL)
		poll_usage();
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&st.addr, 0, sizeof(st.addr));
	st.addr.sin_family = AF_INET;
	st.addr.sin_port = htons((uint16_t)loadgen_parse_long(opt.port, "-p", 1, 65535));
	st.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((st.ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    !SSL_CTX_load_verify_locations(st.ctx, opt.cafile, NULL))
		loadgen_fatalx("TLS set-up failed");
	SSL_CTX_set_verify(st.ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(st.ctx, SSL_MODE_RELEASE_BUFFERS);
	poll_load_pairs();
	if ((st.base = event_base_new()) == NULL)
		loadgen_fatalx("event_base_new failed");

	/* Phase 1: every connection, one poll each (learning its ETag). */
	t0 = loadgen_now();
	poll_connect_more();
	event_base_dispatch(st.base);
	t1 = loadgen_now();
	/* Let the first polls' answers arrive. */
	tv.tv_sec = 1;
	tv.tv_usec = 0;
	stop = evtimer_new(st.base, poll_stop_cb, NULL);
	evtimer_add(stop, &tv);
	event_base_dispatch(st.base);
	printf("connected %ld failed %ld seconds %.1f\n", st.connected, st.failed, t1 - t0);
	fflush(stdout);
	if (opt.wait_stdin && fgets(line, sizeof(line), stdin) == NULL)
		loadgen_fatalx("stdin closed");

	/* Phase 2: open-loop polling at opt.rate in total. */
	st.is_polling = 1;
	st.s200 = st.s204 = st.s304 = st.other = 0;
	t0 = loadgen_now();
	st.t_end = t0 + opt.seconds;
	{
		double period = (double)st.connected / opt.rate;

		st.every.tv_sec = (time_t)period;
		st.every.tv_usec = (suseconds_t)((period - (double)(long)period) * 1e6);
		for (long i = 0; i < st.n; i++) {
			struct poll_conn *c = &st.c[i];
			double phase = period * (double)random() / (double)RAND_MAX;
			struct timeval first = { (time_t)phase,
			    (suseconds_t)((phase - (double)(long)phase) * 1e6) };

			if (c->is_dead || !c->is_connected)
				continue;
			/* First at a random phase, then every period. */
			c->timer = evtimer_new(st.base, poll_timer_cb, c);
			evtimer_add(c->timer, &first);
		}
	}
	tv.tv_sec = (time_t)opt.seconds + 1;
	evtimer_add(stop, &tv);
	event_base_dispatch(st.base);
	t1 = loadgen_now();
	qsort(st.lat, (size_t)st.nlat, sizeof(double), poll_cmp);
	printf("result polls=%ld rate=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f late=%ld "
	    "errors=%ld status_200=%ld status_204=%ld status_304=%ld other=%ld closed=%ld "
	    "connections=%ld\n", st.nlat, st.nlat / (t1 - t0 - 1 > 0 ? opt.seconds : 1),
	    poll_pct(50), poll_pct(99), st.nlat ? st.lat[st.nlat - 1] : 0.0, st.late,
	    st.errors, st.s200, st.s204, st.s304, st.other, st.closed, st.connected);
	return 0;
}

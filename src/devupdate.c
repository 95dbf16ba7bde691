/* devupdate.c: GET /device/v1/update, GET /device/v1/images/{id}[/signature],
 * POST /device/v1/status. The device is who its verified certificate says,
 * never what a body says; revocation (memory, kept in step by NOTIFY) and
 * the device's status and deployment (devcache) are checked on every
 * request. Image bytes are streamed from PostgreSQL one piece at a time:
 * the next piece is read only once the previous one has been written. */
#include "devupdate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "api.h"
#include "ca.h"
#include "deploy.h"
#include "devapi.h"
#include "devcache.h"
#include "http.h"
#include "imgsign.h"
#include "imgstream.h"
#include "lastseen.h"
#include "log.h"
#include "pki.h"
#include "range.h"
#include "tok.h"
#include "util.h"
#include "xmalloc.h"

#define DEVUPDATE_DETAIL_MAX	512
#define DEVUPDATE_VERSION_MAX	64

typedef void (*devupdate_fn)(struct http_req *, struct devcache_entry *);

struct devupdate_call {
	struct http_req	*hr;
	devupdate_fn	 fn;
};

static unsigned devupdate_nstreams;

int
devupdate_register(struct db_pool *db)
{
	return devcache_register(db);
}

static void
devupdate_run(struct http_req *hr, struct devcache_entry *e, devupdate_fn fn)
{
	if (e == NULL) {
		http_add_header(hr, "Retry-After", "5");
		http_reply_problem(hr, 503, NULL, "cannot check the client certificate now");
	} else if (e->trust != DEVICES_TRUST_OK)
		devapi_refuse(hr, e->trust);
	else if (hr->req == NULL)
		http_reply(hr, 499, NULL, NULL);	/* logged as gone */
	else {
		lastseen_mark(e->device);
		fn(hr, e);
	}
}

static void
devupdate_filled(struct devcache_entry *e, void *arg)
{
	struct devupdate_call c = *(struct devupdate_call *)arg;

	free(arg);
	devupdate_run(c.hr, e, c.fn);
}

/* Certificate checks that need no database, then the cache (or one query
 * to fill it). Only certificates of our own CAs speak for a device. */
static void
devupdate_authorize(struct http_req *hr, devupdate_fn fn)
{
	X509 *cert = http_peer_cert(hr);
	struct devupdate_call *c;
	struct devcache_entry *e;
	struct pki_ca *ca;
	char serial[CA_SERIAL_HEX];

	if (cert == NULL) {
		http_reply_problem(hr, 401, NULL, "a verified client certificate is required");
		return;
	}
	if ((ca = pki_issuer_of(hr->srv->pki, cert)) == NULL) {
		devapi_refuse(hr, DEVICES_TRUST_NOT_DEVICE);
		return;
	}
	if (pki_is_revoked(hr->srv->pki, cert)) {
		devapi_refuse(hr, DEVICES_TRUST_REVOKED);
		return;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
		devapi_refuse(hr, DEVICES_TRUST_EXPIRED);
		return;
	}
	ca_serial_hex(X509_get0_serialNumber(cert), serial);
	if ((e = devcache_get(ca->id, serial)) != NULL) {
		devupdate_run(hr, e, fn);
		return;
	}
	if ((c = malloc(sizeof(*c))) == NULL) {
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	c->hr = hr;
	c->fn = fn;
	devcache_fill(hr->srv->db, ca->id, serial, devupdate_filled, c);
}

/* If-None-Match: "*" or a list holding the tag (weak or not). */
static int
devupdate_etag_matches(const char *header, const char *etag)
{
	size_t n = strlen(etag);
	const char *p;

	if (header == NULL)
		return 0;
	if (strcmp(header, "*") == 0)
		return 1;
	for (p = header; (p = strstr(p, etag)) != NULL; p += n)
		if ((p == header || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
	return 0;
}

/* An encrypted image's document carries its content key wrapped for this
 * device's certificate ("key", CMS EnvelopedData, base64): made per reply
 * (a device gets the 200 once per deployment, then 304s), never cached,
 * since the cache entry may be invalidated while the token unwraps. */
struct devupdate_key {
	struct http_req	*hr;
	char		*doc;		/* the cached document, copied */
	size_t		 doclen;
};

static void
devupdate_key_done(const unsigned char *der, size_t len, const char *err,
    void *arg)
{
	struct devupdate_key *k = arg;
	struct http_req *hr = k->hr;
	struct evbuffer *buf;
	unsigned char *b64;

	if (der == NULL) {
		if (err == imgsign_token_busy)
			http_add_header(hr, "Retry-After", TOK_RETRY_AFTER);
		else
			log_warnx("update id=%s: no content key: %s", hr->id, err);
		http_reply_problem(hr, 503, NULL, "the image's content key cannot "
		    "be wrapped for this device now");
		goto out;
	}
	b64 = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock(b64, der, (int)len);
	buf = evbuffer_new();
	/* The document is one JSON object: the key goes before its '}'. */
	if (buf == NULL || evbuffer_add(buf, k->doc, k->doclen - 1) == -1 ||
	    evbuffer_add_printf(buf, ",\"key\":\"%s\"}", b64) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		free(b64);
		http_reply_problem(hr, 503, NULL, "out of memory");
		goto out;
	}
	free(b64);
	http_reply(hr, 200, "application/json", buf);
	evbuffer_free(buf);
out:
	free(k->doc);
	free(k);
}

static void
devupdate_keyed(struct http_req *hr, const struct devcache_entry *e)
{
	struct devupdate_key *k;

	if (e->doclen < 2 || e->doc[e->doclen - 1] != '}') {
		http_reply_problem(hr, 500, NULL, "malformed update document");
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->hr = hr;
	k->doc = xmalloc(e->doclen);
	memcpy(k->doc, e->doc, e->doclen);
	k->doclen = e->doclen;
	imgsign_key_wrap(hr->srv, e->image, http_peer_cert(hr), devupdate_key_done, k);
}

/* ---- GET /device/v1/update ---- */

static void
devupdate_update_reply(struct http_req *hr, struct devcache_entry *e)
{
	struct evbuffer *buf;

	http_add_header(hr, "ETag", e->etag);
	http_add_header(hr, "Cache-Control", "no-cache");
	if (devupdate_etag_matches(http_header(hr, "If-None-Match"), e->etag)) {
		http_reply(hr, 304, NULL, NULL);
		return;
	}
	if (e->doc == NULL) {
		http_reply(hr, 204, NULL, NULL);
		return;
	}
	if (e->is_encrypted) {
		devupdate_keyed(hr, e);
		return;
	}
	if ((buf = evbuffer_new()) == NULL || evbuffer_add(buf, e->doc, e->doclen) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	http_reply(hr, 200, "application/json", buf);
	evbuffer_free(buf);
}

static void
devupdate_update(struct http_req *hr)
{
	devupdate_authorize(hr, devupdate_update_reply);
}

/* ---- GET /device/v1/images/{id} ---- */

/* One stream ended (imgstream's done). */
static void
devupdate_dl_done(void *arg)
{
	(void)arg;
	devupdate_nstreams--;
}

static int
devupdate_image_id(struct http_req *hr, struct devcache_entry *e)
{
	char id[API_ID_LEN];
	const char *errstr = NULL;
	long long n;

	if (hr->match.param_len[0] >= sizeof(id))
		goto no;
	memcpy(id, hr->match.param[0], hr->match.param_len[0]);
	id[hr->match.param_len[0]] = '\0';
	n = util_strtonum(id, 1, INT64_MAX, &errstr);
	if (errstr == NULL && e->deployment != 0 && n == e->image)
		return 0;
no:
	http_reply_problem(hr, 404, NULL, "no such image in this device's current"
	    " deployment");
	return -1;
}

static void
devupdate_image_reply(struct http_req *hr, struct devcache_entry *e)
{
	char etag[80], v[96];
	long long from = 0, to = e->size - 1;
	const char *if_range = http_header(hr, "If-Range");
	enum range_result r = RANGE_IGNORE;

	if (devupdate_image_id(hr, e) == -1)
		return;
	snprintf(etag, sizeof(etag), "\"%s%s\"", e->sha256, e->is_encrypted ? "-enc" : "");
	http_add_header(hr, "ETag", etag);
	http_add_header(hr, "Accept-Ranges", "bytes");
	if (if_range == NULL || strcmp(if_range, etag) == 0)
		r = range_parse(http_header(hr, "Range"), e->size, &from, &to);
	if (r == RANGE_UNSATISFIABLE) {
		snprintf(v, sizeof(v), "bytes */%lld", e->size);
		http_add_header(hr, "Content-Range", v);
		http_reply_problem(hr, 416, NULL, "range is outside the image's %lld bytes",
		    e->size);
		return;
	}
	snprintf(v, sizeof(v), "%lld", e->size == 0 ? 0 : to - from + 1);
	http_add_header(hr, "Content-Length", v);
	if (r == RANGE_OK) {
		snprintf(v, sizeof(v), "bytes %lld-%lld/%lld", from, to, e->size);
		http_add_header(hr, "Content-Range", v);
	}
	if (http_method(hr) == EVHTTP_REQ_HEAD || e->size == 0) {
		http_reply(hr, r == RANGE_OK ? 206 : 200, "application/octet-stream", NULL);
		return;
	}
	if (devupdate_nstreams >= DEVUPDATE_MAX_STREAMS) {
		http_add_header(hr, "Retry-After", "10");
		http_reply_problem(hr, 503, NULL, "too many downloads at once");
		return;
	}
	/* Counted before it starts: its done may run before start returns. */
	devupdate_nstreams++;
	if (imgstream_start(hr, r == RANGE_OK ? 206 : 200, e->upload_id,
	    e->is_encrypted, from, to + 1, devupdate_dl_done, NULL) == -1)
		devupdate_nstreams--;
}

static void
devupdate_image(struct http_req *hr)
{
	devupdate_authorize(hr, devupdate_image_reply);
}

/* ---- GET /device/v1/images/{id}/signature ---- */

static void
devupdate_signature_got(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct http_req *hr = arg;
	unsigned char md[32];
	char etag[72];
	struct evbuffer *buf;
	int len;

	if (st != DB_OK) {
		http_reply_problem(hr, 503, NULL, "%s", db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    (len = PQgetlength(res, 0, 0)) <= 0) {
		http_reply_problem(hr, 404, NULL, "the image has no signature");
		return;
	}
	EVP_Digest(PQgetvalue(res, 0, 0), (size_t)len, md, NULL, EVP_sha256(), NULL);
	etag[0] = '"';
	for (int i = 0; i < 32; i++)
		snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
	snprintf(etag + 65, sizeof(etag) - 65, "\"");
	http_add_header(hr, "ETag", etag);
	if (devupdate_etag_matches(http_header(hr, "If-None-Match"), etag)) {
		http_reply(hr, 304, NULL, NULL);
		return;
	}
	if ((buf = evbuffer_new()) == NULL ||
	    evbuffer_add(buf, PQgetvalue(res, 0, 0), (size_t)len) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	http_reply(hr, 200, "application/pkcs7-signature", buf);
	evbuffer_free(buf);
}

static void
devupdate_signature_reply(struct http_req *hr, struct devcache_entry *e)
{
	char id[24];
	const char *v[1] = { id };

	if (devupdate_image_id(hr, e) == -1)
		return;
	snprintf(id, sizeof(id), "%lld", e->image);
	db_query_binary(hr->srv->db, &deploy_signature, 1, v, NULL,
	    devupdate_signature_got, hr);
}

static void
devupdate_signature(struct http_req *hr)
{
	devupdate_authorize(hr, devupdate_signature_reply);
}

/* ---- POST /device/v1/status ---- */

struct devupdate_report {
	struct http_req	*hr;
	long long	 device;
};

static void
devupdate_reported(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct devupdate_report r = *(struct devupdate_report *)arg;
	const char *result;

	free(arg);
	devcache_forget_device(r.device);	/* its answer may have changed */
	if (st != DB_OK) {
		api_db_error(r.hr, st, res, errstr);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_problem(r.hr, 500, NULL, "internal error");
		return;
	}
	result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "ok") == 0)
		http_reply(r.hr, 204, NULL, NULL);
	else
		http_reply_problem(r.hr, strcmp(result, "not_found") == 0 ? 404 : 409,
		    NULL, "%s", PQgetvalue(res, 0, 1));
}

/* 1-4 dot-separated integers of at most 9 digits (sql/009's rule). */
static int
devupdate_version_ok(const char *v)
{
	int parts = 0;

	for (;;) {
		size_t n = strspn(v, "0123456789");

		if (n == 0 || n > 9 || ++parts > 4)
			return 0;
		v += n;
		if (*v == '\0')
			return 1;
		if (*v++ != '.')
			return 0;
	}
}

static int
devupdate_utf8_printable(const char *s)
{
	if (!util_utf8_valid((const unsigned char *)s, strlen(s)))
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static void
devupdate_status_reply(struct http_req *hr, struct devcache_entry *e)
{
	static const char *const keys[] = {
		"deployment", "state", "progress", "detail", "version", NULL
	};
	static const char *const states[] = {
		"downloading", "installing", "installed", "failed", NULL
	};
	const char *state = NULL, *detail = NULL, *version = NULL;
	long long dep = 0, progress = -1;
	char devv[24], depv[24], progv[8];
	const char *v[6];
	struct devupdate_report *r;
	yajl_val body;
	size_t i;

	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_int(hr, body, "deployment", 1, 1, INT64_MAX, &dep) == -1 ||
	    api_json_str(hr, body, "state", 1, 16, &state) == -1 ||
	    api_json_int(hr, body, "progress", 0, 0, 100, &progress) == -1 ||
	    api_json_str(hr, body, "detail", 0, DEVUPDATE_DETAIL_MAX, &detail) == -1 ||
	    api_json_str(hr, body, "version", 0, DEVUPDATE_VERSION_MAX, &version) == -1)
		goto out;
	for (i = 0; states[i] != NULL && strcmp(states[i], state) != 0; i++)
		;
	if (states[i] == NULL) {
		http_reply_problem(hr, 400, NULL, "field \"state\" must be downloading,"
		    " installing, installed or failed");
		goto out;
	}
	if (detail != NULL && !devupdate_utf8_printable(detail)) {
		http_reply_problem(hr, 400, NULL, "field \"detail\" holds control characters");
		goto out;
	}
	if (version != NULL && !devupdate_version_ok(version)) {
		http_reply_problem(hr, 400, NULL, "field \"version\" must be 1-4"
		    " dot-separated integers of at most 9 digits");
		goto out;
	}
	if ((r = malloc(sizeof(*r))) == NULL) {
		http_reply_problem(hr, 503, NULL, "out of memory");
		goto out;
	}
	r->hr = hr;
	r->device = e->device;
	snprintf(depv, sizeof(depv), "%lld", dep);
	snprintf(progv, sizeof(progv), "%lld", progress);
	snprintf(devv, sizeof(devv), "%lld", r->device);
	v[0] = devv;
	v[1] = depv;
	v[2] = state;
	v[3] = progress >= 0 ? progv : NULL;
	v[4] = detail;
	v[5] = version;
	db_query(hr->srv->db, &deploy_report, 6, v, NULL, devupdate_reported, r);
out:
	yajl_tree_free(body);
}

static void
devupdate_status(struct http_req *hr)
{
	devupdate_authorize(hr, devupdate_status_reply);
}

const struct route devupdate_routes[] = {
	{ "/device/v1/update", EVHTTP_REQ_GET, ROUTE_DEVICE, devupdate_update, 0, NULL },
	{ "/device/v1/images/{image}", EVHTTP_REQ_GET, ROUTE_DEVICE, devupdate_image, 0, NULL },
	{ "/device/v1/images/{image}/signature", EVHTTP_REQ_GET, ROUTE_DEVICE, devupdate_signature, 0, NULL },
	{ "/device/v1/status", EVHTTP_REQ_POST, ROUTE_DEVICE, devupdate_status, 0, NULL },
};
const size_t devupdate_nroutes = sizeof(devupdate_routes) / sizeof(devupdate_routes[0]);

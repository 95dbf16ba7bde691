/* api_pki.c: /pki/ca/<ca>.crt, /pki/crl/<ca>.crl and /pki/ocsp. <ca> is
 * "root" or a project's current name (an alias), or under id/ the CA's id,
 * which is what certificates name because it never changes. The root
 * certificate also as /api/v1/pki/root.crt on the admin listener. */
#include "api_pki.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/evp.h>

#include "http.h"
#include "names.h"
#include "ocsp.h"
#include "pki.h"
#include "util.h"

#define API_PKI_OCSP_MAX 8192	/* a one-certificate request is ~100 bytes */

/* "<name><suffix>" in the last segment -> name, when it is a CA name. */
static int
api_pki_name(struct http_req *hr, const char *suffix, char *out, size_t len)
{
	size_t n = hr->match.param_len[0], sl = strlen(suffix);
	const char *p = hr->match.param[0];

	if (n <= sl || n - sl >= len || memcmp(p + n - sl, suffix, sl) != 0)
		return -1;
	n -= sl;
	if (strspn(p, NAMES_PROJECT_CHARS) < n)
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static void
api_pki_reply_blob(struct http_req *hr, const char *ctype,
    const unsigned char *data, size_t len, const char *cache)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL || evbuffer_add(buf, data, len) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	if (cache != NULL)
		http_add_header(hr, "Cache-Control", cache);
	http_reply(hr, 200, ctype, buf);
	evbuffer_free(buf);
}

/* 0 when the lookup found the CA, -1 after the error reply. */
static int
api_pki_found(struct http_req *hr, const struct pki_ca *ca, const char *err)
{
	if (err != NULL)
		http_reply_problem(hr, 503, NULL, "%s", err);
	else if (ca == NULL)
		http_reply_problem(hr, 404, NULL, "no such CA");
	return err != NULL || ca == NULL ? -1 : 0;
}

static void
api_pki_ca_got(struct pki_ca *ca, const char *err, void *arg)
{
	if (api_pki_found(arg, ca, err) == 0)
		api_pki_reply_blob(arg, "application/pkix-cert", ca->cert_der,
		    ca->cert_der_len, "max-age=86400");
}

/* The root by name, a project's issuing CA by its current name, or (the
 * route under id/) any CA by its id. */
static void
api_pki_lookup(struct http_req *hr, const char *suffix, pki_ca_cb cb)
{
	int is_by_id = strncmp(hr->path + strlen("/pki/"), "ca/id/", 6) == 0 ||
	    strncmp(hr->path + strlen("/pki/"), "crl/id/", 7) == 0;
	const char *errstr;
	char name[64];
	long long id;

	if (api_pki_name(hr, suffix, name, sizeof(name)) == -1) {
		http_reply_problem(hr, 404, NULL, "no such CA");
		return;
	}
	if (is_by_id) {
		id = util_strtonum(name, 1, LLONG_MAX, &errstr);
		if (errstr != NULL)
			http_reply_problem(hr, 404, NULL, "no such CA");
		else
			pki_ca_get(hr->srv->pki, id, cb, hr);
		return;
	}
	if (strcmp(name, "root") == 0) {
		cb(pki_root(hr->srv->pki), NULL, hr);
		return;
	}
	pki_project(hr->srv->pki, name, cb, hr);
}

static void
api_pki_ca(struct http_req *hr)
{
	api_pki_lookup(hr, ".crt", api_pki_ca_got);
}

static void
api_pki_crl_done(const unsigned char *der, size_t len, const char *err, void *arg)
{
	struct http_req *hr = arg;

	if (err != NULL)
		http_reply_problem(hr, 503, NULL, "CRL unavailable: %s", err);
	else
		api_pki_reply_blob(hr, "application/pkix-crl", der, len, "max-age=300");
}

static void
api_pki_crl_ca(struct pki_ca *ca, const char *err, void *arg)
{
	struct http_req *hr = arg;

	if (api_pki_found(hr, ca, err) == 0)
		pki_crl(hr->srv->pki, ca, api_pki_crl_done, hr);
}

static void
api_pki_crl(struct http_req *hr)
{
	api_pki_lookup(hr, ".crl", api_pki_crl_ca);
}

static void
api_pki_ocsp_done(const unsigned char *der, size_t len, const char *err, void *arg)
{
	struct http_req *hr = arg;

	if (err != NULL)
		http_reply_problem(hr, 503, NULL, "%s", err);
	else
		api_pki_reply_blob(hr, "application/ocsp-response", der, len, NULL);
}

static void
api_pki_ocsp_post(struct http_req *hr)
{
	struct evbuffer *body = http_body(hr);
	size_t n = evbuffer_get_length(body);
	const char *ct = http_header(hr, "Content-Type");

	if (!util_media_type_is(ct, "application/ocsp-request")) {
		http_reply_problem(hr, 415, NULL,
		    "Content-Type must be application/ocsp-request");
		return;
	}
	if (n == 0 || n > API_PKI_OCSP_MAX) {
		http_reply_problem(hr, n ? 413 : 400, NULL,
		    "OCSP request must be 1-%d bytes", API_PKI_OCSP_MAX);
		return;
	}
	ocsp_answer(hr->srv->ocsp, evbuffer_pullup(body, -1), n, api_pki_ocsp_done, hr);
}

/* RFC 6960 appendix A.1: GET {url}/{url-encoding of base64 of DER}. */
static void
api_pki_ocsp_get(struct http_req *hr)
{
	const char *enc = hr->path + strlen("/pki/ocsp/");
	unsigned char *der = NULL;
	size_t n, len;
	char *b64 = NULL;

	if (strlen(enc) <= API_PKI_OCSP_MAX * 2 &&
	    (b64 = evhttp_uridecode(enc, 0, &n)) != NULL)
		der = util_base64_decode(b64, strlen(b64), &len);
	free(b64);
	if (der == NULL) {
		http_reply_problem(hr, 400, NULL, "malformed OCSP GET request");
		return;
	}
	ocsp_answer(hr->srv->ocsp, der, len, api_pki_ocsp_done, hr);
	free(der);
}

/* The root certificate on the admin listener too, so the web UI links it
 * on its own origin whatever the pki listener's address (or none). */
static void
api_pki_root(struct http_req *hr)
{
	api_pki_ca_got(pki_root(hr->srv->pki), NULL, hr);
}

const struct route api_pki_routes[] = {
	{ "/api/v1/pki/root.crt", EVHTTP_REQ_GET, ROUTE_ADMIN, api_pki_root, 0, NULL },
	{ "/pki/ca/{file}", EVHTTP_REQ_GET, ROUTE_PKI, api_pki_ca, 0, NULL },
	{ "/pki/crl/{file}", EVHTTP_REQ_GET, ROUTE_PKI, api_pki_crl, 0, NULL },
	{ "/pki/ca/id/{file}", EVHTTP_REQ_GET, ROUTE_PKI, api_pki_ca, 0, NULL },
	{ "/pki/crl/id/{file}", EVHTTP_REQ_GET, ROUTE_PKI, api_pki_crl, 0, NULL },
	{ "/pki/ocsp", EVHTTP_REQ_POST, ROUTE_PKI, api_pki_ocsp_post, 0, NULL },
	{ "/pki/ocsp/*", EVHTTP_REQ_GET, ROUTE_PKI, api_pki_ocsp_get, 0, NULL },
};
const size_t api_pki_nroutes = sizeof(api_pki_routes) / sizeof(api_pki_routes[0]);

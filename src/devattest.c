/* devattest.c: /device/v1/attest/ and /device/v1/quote handlers, the wire
 * contract of quarklink-attest(7). Bodies are bounded and parsed strictly
 * before anything else; the TPM checks are attest_crypto's, the records
 * attest.c's. Nothing is recorded on a refusal, except that a proof
 * attempt always uses its session up (one try per credential). */
#include "devattest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "api.h"
#include "attest.h"
#include "attest_crypto.h"
#include "attest_trust.h"
#include "ca.h"
#include "devapi.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "pki.h"
#include "server.h"
#include "util.h"
#include "xmalloc.h"

#define DEVATTEST_DER_MAX	4096	/* an EK or CA certificate */
#define DEVATTEST_TPM_MAX	1024	/* a TPM2B_PUBLIC, TPM2B_ATTEST, signature */
#define DEVATTEST_CHAIN_MAX	4	/* EK intermediates */

static const char devattest_b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";

/* The {project} path parameter, or -1 after a 404. */
static int
devattest_project(struct http_req *hr, char *out, size_t len)
{
	size_t n = hr->match.param_len[0];

	if (n >= len || !names_is_project(hr->match.param[0], n)) {
		http_reply_problem(hr, 404, NULL, "unknown project");
		return -1;
	}
	memcpy(out, hr->match.param[0], n);
	out[n] = '\0';
	return 0;
}

/* A JSON object body of at most max bytes with no members but keys, each
 * at most once (api_json_only). */
static yajl_val
devattest_body(struct http_req *hr, size_t max, const char *const *keys)
{
	if (evbuffer_get_length(http_body(hr)) > max) {
		http_reply_problem(hr, 413, NULL, "request body is larger than %zu bytes",
		    max);
		return NULL;
	}
	return api_body_json(hr, keys);
}

/* A base64 value (standard alphabet, padded, no white space) of 1..max
 * bytes once decoded, or exactly want bytes when want is not 0. */
static unsigned char *
devattest_b64_value(struct http_req *hr, const char *name, yajl_val v,
    size_t max, size_t want, size_t *len)
{
	const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
	unsigned char *out;
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > 4 * ((max + 2) / 3) ||
	    strspn(s, devattest_b64_alphabet) != n ||
	    (out = util_base64_decode(s, n, len)) == NULL) {
		http_reply_problem(hr, 400, NULL, "field \"%s\" must be base64 of at"
		    " most %zu bytes", name, max);
		return NULL;
	}
	if (*len == 0 || *len > max || (want != 0 && *len != want)) {
		free(out);
		if (want != 0)
			http_reply_problem(hr, 400, NULL, "field \"%s\" must be base64 of"
			    " %zu bytes", name, want);
		else
			http_reply_problem(hr, 400, NULL, "field \"%s\" must be base64 of"
			    " 1 to %zu bytes", name, max);
		return NULL;
	}
	return out;
}

static unsigned char *
devattest_b64(struct http_req *hr, yajl_val obj, const char *key, size_t max,
    size_t want, size_t *len)
{
	yajl_val v = json_get(obj, key);

	if (v == NULL) {
		http_reply_problem(hr, 400, NULL, "field \"%s\" is required", key);
		return NULL;
	}
	return devattest_b64_value(hr, key, v, max, want, len);
}

static void
devattest_kv_b64(yajl_gen g, const char *key, const unsigned char *b, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, b, (int)len);
	json_kv_str(g, key, out);
	free(out);
}

static void
devattest_pcr_list(yajl_gen g, unsigned mask)
{
	json_kv_str(g, "bank", "sha256");
	json_key(g, "pcrs");
	yajl_gen_array_open(g);
	for (int i = 0; i < ATTEST_PCR_MAX; i++)
		if (mask & (1u << i))
			yajl_gen_integer(g, i);
	yajl_gen_array_close(g);
}

static void
devattest_db_failed(struct http_req *hr, enum attest_result r)
{
	if (r == ATTEST_UNAVAILABLE) {
		http_add_header(hr, "Retry-After", "5");
		http_reply_problem(hr, 503, NULL, "database unavailable; nothing was recorded");
	} else
		http_reply_problem(hr, 500, NULL, "attestation failed");
}

/* ---- 1. GET /device/v1/attest/{project} ---- */

static void
devattest_info_got(enum attest_result r, const struct attest_project *p, void *arg)
{
	struct http_req *hr = arg;
	yajl_gen g;

	if (r == ATTEST_NOT_FOUND) {
		http_reply_problem(hr, 404, NULL, "unknown project");
		return;
	}
	if (r != ATTEST_OK) {
		devattest_db_failed(hr, r);
		return;
	}
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_bool(g, "required", p->is_tpm);
	devattest_pcr_list(g, p->pcrs);
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static void
devattest_info(struct http_req *hr)
{
	char project[64];

	if (devattest_project(hr, project, sizeof(project)) == -1)
		return;
	attest_project_get(hr->srv->db, project, devattest_info_got, hr);
}

/* ---- 2. POST /device/v1/attest/{project}/challenge ---- */

struct devattest_challenge {
	struct http_req		*hr;
	char			 project[64];
	yajl_val		 body;
	unsigned char		*ek_der, *ek_pub, *ak_pub;
	size_t			 ek_der_len, ek_pub_len, ak_pub_len;
	X509			*ek_cert;
	STACK_OF(X509)		*chain;
	struct attest_key	 ek, ak;
	struct attest_session	 s;
	unsigned char		*blob, *enc;
	size_t			 blob_len, enc_len;
};

static void
devattest_challenge_free(struct devattest_challenge *c)
{
	if (c->body != NULL)
		yajl_tree_free(c->body);
	free(c->ek_der);
	free(c->ek_pub);
	free(c->ak_pub);
	X509_free(c->ek_cert);
	sk_X509_pop_free(c->chain, X509_free);
	attest_key_clear(&c->ek);
	attest_key_clear(&c->ak);
	free(c->blob);
	free(c->enc);
	free(c);
}

static X509 *
devattest_x509(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	return x;
}

/* Every field decoded and the TPM keys checked for their roles: -1 after
 * a 400. */
static int
devattest_challenge_parse(struct devattest_challenge *c, yajl_val body)
{
	struct http_req *hr = c->hr;
	yajl_val chain = json_get(body, "ek_chain");
	const char *why;
	unsigned char *der;
	size_t len;
	X509 *x;

	if ((c->ek_der = devattest_b64(hr, body, "ek_cert", DEVATTEST_DER_MAX, 0,
	    &c->ek_der_len)) == NULL ||
	    (c->ek_pub = devattest_b64(hr, body, "ek_public", DEVATTEST_TPM_MAX, 0,
	    &c->ek_pub_len)) == NULL ||
	    (c->ak_pub = devattest_b64(hr, body, "ak_public", DEVATTEST_TPM_MAX, 0,
	    &c->ak_pub_len)) == NULL)
		return -1;
	if ((c->ek_cert = devattest_x509(c->ek_der, c->ek_der_len)) == NULL) {
		http_reply_problem(hr, 400, NULL, "field \"ek_cert\" is not a DER X.509"
		    " certificate");
		return -1;
	}
	if (chain != NULL && (!YAJL_IS_ARRAY(chain) ||
	    chain->u.array.len > DEVATTEST_CHAIN_MAX)) {
		http_reply_problem(hr, 400, NULL, "field \"ek_chain\" must be an array of"
		    " at most %d base64 DER certificates", DEVATTEST_CHAIN_MAX);
		return -1;
	}
	c->chain = sk_X509_new_null();
	for (size_t i = 0; chain != NULL && i < chain->u.array.len; i++) {
		if ((der = devattest_b64_value(hr, "ek_chain", chain->u.array.values[i],
		    DEVATTEST_DER_MAX, 0, &len)) == NULL)
			return -1;
		x = devattest_x509(der, len);
		free(der);
		if (x == NULL || !sk_X509_push(c->chain, x)) {
			X509_free(x);
			http_reply_problem(hr, 400, NULL, "field \"ek_chain\" holds what is"
			    " not a DER X.509 certificate");
			return -1;
		}
	}
	if (attest_key_parse(c->ek_pub, c->ek_pub_len, ATTEST_EK, &c->ek, &why) == -1) {
		http_reply_problem(hr, 400, NULL, "ek_public: %s", why);
		return -1;
	}
	if (attest_key_parse(c->ak_pub, c->ak_pub_len, ATTEST_AK, &c->ak, &why) == -1) {
		http_reply_problem(hr, 400, NULL, "%s", why);
		return -1;
	}
	return 0;
}

static void
devattest_challenge_saved(enum attest_result r, void *arg)
{
	struct devattest_challenge *c = arg;
	struct http_req *hr = c->hr;
	char sid[2 * ATTEST_SESSION_LEN + 1];
	yajl_gen g;

	if (r == ATTEST_BUSY) {
		http_add_header(hr, "Retry-After", "60");
		http_reply_problem(hr, 429, NULL, "this EK has too many attestation"
		    " sessions open; try again once they expire");
	} else if (r != ATTEST_OK)
		devattest_db_failed(hr, r);
	else {
		util_hex(c->s.id, sizeof(c->s.id), sid);
		g = json_gen_new();
		yajl_gen_map_open(g);
		json_kv_str(g, "session", sid);
		devattest_kv_b64(g, "credential_blob", c->blob, c->blob_len);
		devattest_kv_b64(g, "encrypted_secret", c->enc, c->enc_len);
		devattest_kv_b64(g, "nonce", c->s.nonce, sizeof(c->s.nonce));
		json_kv_int(g, "expires_in", ATTEST_SESSION_TTL);
		yajl_gen_map_close(g);
		http_reply_json(hr, 201, g);
	}
	devattest_challenge_free(c);
}

/* The project is known and uses attestation: the fields, the trust, the
 * EK binding, then the credential. */
static void
devattest_challenge_project(enum attest_result r, const struct attest_project *p,
    void *arg)
{
	struct devattest_challenge *c = arg;
	struct http_req *hr = c->hr;
	unsigned char secret[ATTEST_SECRET_LEN];
	X509_STORE *store;
	const char *why;
	int rc;

	if (r != ATTEST_OK) {
		if (r == ATTEST_NOT_FOUND)
			http_reply_problem(hr, 404, NULL, "unknown project");
		else
			devattest_db_failed(hr, r);
		goto out;
	}
	if (!p->is_tpm) {
		http_reply_problem(hr, 403, NULL, "project does not use TPM attestation");
		goto out;
	}
	if (devattest_challenge_parse(c, c->body) == -1)
		goto out;
	if ((store = attest_trust_store(p)) == NULL) {
		http_reply_problem(hr, 503, NULL, "out of memory");
		goto out;
	}
	rc = attest_ek_verify(store, c->ek_cert, c->chain, &why);
	X509_STORE_free(store);
	if (rc == -1 || attest_ek_matches(c->ek_cert, &c->ek, &why) == -1) {
		http_reply_problem(hr, 403, NULL, "%s", why);
		goto out;
	}
	if (RAND_bytes(secret, sizeof(secret)) != 1 ||
	    RAND_bytes(c->s.nonce, sizeof(c->s.nonce)) != 1 ||
	    RAND_bytes(c->s.id, sizeof(c->s.id)) != 1) {
		http_reply_problem(hr, 503, NULL, "no randomness");
		goto out;
	}
	rc = attest_make_credential(&c->ek, c->ak.name, c->ak.name_len, secret,
	    &c->blob, &c->blob_len, &c->enc, &c->enc_len, &why);
	util_sha256(secret, sizeof(secret), c->s.secret_sha256);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc == -1) {
		log_warnx("attest id=%s: MakeCredential: %s", hr->id, why);
		http_reply_problem(hr, 500, NULL, "cannot make the credential");
		goto out;
	}
	c->s.project_id = p->id;
	c->s.ek_cert = c->ek_der;
	c->s.ek_cert_len = c->ek_der_len;
	c->s.ak_public = c->ak_pub;
	c->s.ak_public_len = c->ak_pub_len;
	c->s.ak_name = c->ak.name;
	c->s.ak_name_len = c->ak.name_len;
	attest_session_new(hr->srv->db, &c->s, devattest_challenge_saved, c);
	return;
out:
	devattest_challenge_free(c);
}

static void
devattest_challenge(struct http_req *hr)
{
	static const char *const keys[] = { "ek_cert", "ek_public", "ak_public",
	    "ek_chain", NULL };
	struct devattest_challenge *c;

	c = xcalloc(1, sizeof(*c));
	c->hr = hr;
	/* The body's form first, its TPM structures once the project is
	 * known to use attestation (a project that does not refuses any). */
	if (devattest_project(hr, c->project, sizeof(c->project)) == -1 ||
	    (c->body = devattest_body(hr, DEVATTEST_BODY_MAX, keys)) == NULL) {
		devattest_challenge_free(c);
		return;
	}
	attest_project_get(hr->srv->db, c->project, devattest_challenge_project, c);
}

/* ---- 3. POST /device/v1/attest/{project}/proof ---- */

struct devattest_proof {
	struct http_req		*hr;
	unsigned char		 session[ATTEST_SESSION_LEN];
	unsigned char		*secret, *key_pub, *info, *sig;
	size_t			 secret_len, key_pub_len, info_len, sig_len;
	char			 device_id[CA_DEVICE_ID];
};

static void
devattest_proof_free(struct devattest_proof *c)
{
	if (c->secret != NULL)
		OPENSSL_cleanse(c->secret, c->secret_len);
	free(c->secret);
	free(c->key_pub);
	free(c->info);
	free(c->sig);
	free(c);
}

/* 32 lowercase hex digits. */
static int
devattest_session_id(const char *s, unsigned char out[ATTEST_SESSION_LEN])
{
	static const char hex[] = "0123456789abcdef";

	if (s == NULL || strlen(s) != 2 * ATTEST_SESSION_LEN ||
	    strspn(s, hex) != 2 * ATTEST_SESSION_LEN)
		return -1;
	for (size_t i = 0; i < ATTEST_SESSION_LEN; i++)
		out[i] = (unsigned char)((strchr(hex, s[2 * i]) - hex) << 4 |
		    (strchr(hex, s[2 * i + 1]) - hex));
	return 0;
}

static void
devattest_proof_proven(enum attest_result r, void *arg)
{
	struct devattest_proof *c = arg;
	struct http_req *hr = c->hr;
	yajl_gen g;

	if (r == ATTEST_NOT_FOUND)
		http_reply_problem(hr, 403, NULL, "attestation session unknown, used or"
		    " expired");
	else if (r != ATTEST_OK)
		devattest_db_failed(hr, r);
	else {
		g = json_gen_new();
		yajl_gen_map_open(g);
		json_kv_str(g, "device_id", c->device_id);
		json_kv_int(g, "expires_in", ATTEST_SESSION_TTL);
		yajl_gen_map_close(g);
		http_reply_json(hr, 200, g);
	}
	devattest_proof_free(c);
}

/* The session's one try: the credential, then the certification. */
static void
devattest_proof_tried(enum attest_result r, const struct attest_tried *t, void *arg)
{
	struct devattest_proof *c = arg;
	struct http_req *hr = c->hr;
	struct attest_key ak, key;
	unsigned char hash[32], spki[32];
	const char *why;

	memset(&ak, 0, sizeof(ak));
	memset(&key, 0, sizeof(key));
	if (r != ATTEST_OK) {
		if (r == ATTEST_NOT_FOUND)
			http_reply_problem(hr, 403, NULL, "attestation session unknown, used"
			    " or expired");
		else
			devattest_db_failed(hr, r);
		goto out;
	}
	util_sha256(c->secret, c->secret_len, hash);
	if (CRYPTO_memcmp(hash, t->secret_sha256, sizeof(hash)) != 0) {
		http_reply_problem(hr, 403, NULL, "credential was not activated by the"
		    " TPM holding this EK");
		goto out;
	}
	if (attest_key_parse(c->key_pub, c->key_pub_len, ATTEST_IDENTITY, &key,
	    &why) == -1) {
		http_reply_problem(hr, 403, NULL, "%s", why);
		goto out;
	}
	if (attest_key_parse(t->ak_public, t->ak_public_len, ATTEST_AK, &ak,
	    &why) == -1) {
		log_warnx("attest id=%s: stored AK: %s", hr->id, why);
		http_reply_problem(hr, 500, NULL, "attestation failed");
		goto out;
	}
	if (attest_certify_verify(&ak, c->info, c->info_len, c->sig, c->sig_len,
	    t->nonce, &key, &why) == -1) {
		http_reply_problem(hr, 403, NULL, "%s", why);
		goto out;
	}
	if (ca_device_id(key.pkey, c->device_id, spki) == -1 ||
	    memcmp(spki, key.spki_sha256, sizeof(spki)) != 0) {
		http_reply_problem(hr, 403, NULL, "identity key cannot be a device key");
		goto out;
	}
	attest_key_clear(&ak);
	attest_key_clear(&key);
	attest_session_prove(hr->srv->db, c->session, spki, devattest_proof_proven, c);
	return;
out:
	attest_key_clear(&ak);
	attest_key_clear(&key);
	devattest_proof_free(c);
}

static void
devattest_proof(struct http_req *hr)
{
	static const char *const keys[] = { "session", "secret", "key_public",
	    "certify_info", "certify_signature", NULL };
	struct devattest_proof *c;
	char project[64];
	yajl_val body;
	int rc = -1;

	if (devattest_project(hr, project, sizeof(project)) == -1 ||
	    (body = devattest_body(hr, DEVATTEST_BODY_MAX, keys)) == NULL)
		return;
	c = xcalloc(1, sizeof(*c));
	c->hr = hr;
	if (devattest_session_id(json_get_str(body, "session"), c->session) == -1)
		http_reply_problem(hr, 400, NULL, "field \"session\" must be 32 lowercase"
		    " hex digits");
	else if ((c->secret = devattest_b64(hr, body, "secret", ATTEST_SECRET_LEN,
	    ATTEST_SECRET_LEN, &c->secret_len)) != NULL &&
	    (c->key_pub = devattest_b64(hr, body, "key_public", DEVATTEST_TPM_MAX, 0,
	    &c->key_pub_len)) != NULL &&
	    (c->info = devattest_b64(hr, body, "certify_info", DEVATTEST_TPM_MAX, 0,
	    &c->info_len)) != NULL &&
	    (c->sig = devattest_b64(hr, body, "certify_signature", DEVATTEST_TPM_MAX,
	    0, &c->sig_len)) != NULL)
		rc = 0;
	yajl_tree_free(body);
	if (rc == -1) {
		devattest_proof_free(c);
		return;
	}
	attest_session_try(hr->srv->db, project, c->session, devattest_proof_tried, c);
}

/* ---- 5. POST /device/v1/quote/challenge, 6. POST /device/v1/quote ---- */

/* The issuing CA of our own device certificate, or NULL after a 403. */
static struct pki_ca *
devattest_device_ca(struct http_req *hr, X509 *cert, char serial[CA_SERIAL_HEX])
{
	struct pki_ca *ca = pki_issuer_of(hr->srv->pki, cert);

	if (ca == NULL) {
		devapi_refuse(hr, DEVICES_TRUST_NOT_DEVICE);
		return NULL;
	}
	ca_serial_hex(X509_get0_serialNumber(cert), serial);
	return ca;
}

struct devattest_nonce {
	struct http_req	*hr;
	unsigned char	 nonce[ATTEST_NONCE_LEN];
};

static void
devattest_quote_asked(enum attest_result r, unsigned mask, void *arg)
{
	struct devattest_nonce *n = arg;
	struct http_req *hr = n->hr;
	yajl_gen g;

	if (r == ATTEST_NOT_FOUND)
		http_reply(hr, 204, NULL, NULL);
	else if (r != ATTEST_OK)
		devattest_db_failed(hr, r);
	else {
		g = json_gen_new();
		yajl_gen_map_open(g);
		devattest_kv_b64(g, "nonce", n->nonce, sizeof(n->nonce));
		devattest_pcr_list(g, mask);
		json_kv_int(g, "expires_in", ATTEST_QUOTE_TTL);
		yajl_gen_map_close(g);
		http_reply_json(hr, 200, g);
	}
	free(n);
}

static void
devattest_quote_challenge_run(struct http_req *hr, X509 *cert)
{
	static const char *const keys[] = { NULL };
	char serial[CA_SERIAL_HEX];
	struct devattest_nonce *n;
	struct pki_ca *ca;
	yajl_val body;

	/* No body, or an empty JSON object. */
	if (evbuffer_get_length(http_body(hr)) > 0) {
		if ((body = devattest_body(hr, DEVATTEST_BODY_MAX, keys)) == NULL)
			return;
		yajl_tree_free(body);
	}
	if ((ca = devattest_device_ca(hr, cert, serial)) == NULL)
		return;
	n = xcalloc(1, sizeof(*n));
	n->hr = hr;
	if (RAND_bytes(n->nonce, sizeof(n->nonce)) != 1) {
		free(n);
		http_reply_problem(hr, 503, NULL, "no randomness");
		return;
	}
	attest_quote_challenge(hr->srv->db, ca->id, serial, n->nonce,
	    devattest_quote_asked, n);
}

static void
devattest_quote_challenge(struct http_req *hr)
{
	devapi_authorize(hr, devattest_quote_challenge_run);
}

struct devattest_quote {
	struct http_req		*hr;
	unsigned char		*nonce, *quote, *sig;
	size_t			 nonce_len, quote_len, sig_len;
	struct attest_pcrs	 pcrs;
};

static void
devattest_quote_free(struct devattest_quote *q)
{
	free(q->nonce);
	free(q->quote);
	free(q->sig);
	free(q);
}

/* "pcrs": {"<n>": "<64 hex digits>", ...}, n 0-23 without leading zeros. */
static int
devattest_quote_pcrs(struct http_req *hr, yajl_val body, struct attest_pcrs *pcrs)
{
	static const char *const bad = "field \"pcrs\" must map PCR numbers 0-23"
	    " to 64 hex digits";
	yajl_val v = json_get(body, "pcrs");
	const char *k, *s, *errstr;
	long long n;

	memset(pcrs, 0, sizeof(*pcrs));
	if (v == NULL || !YAJL_IS_OBJECT(v) || v->u.object.len > ATTEST_PCR_MAX) {
		http_reply_problem(hr, 400, NULL, "%s", bad);
		return -1;
	}
	for (size_t i = 0; i < v->u.object.len; i++) {
		k = v->u.object.keys[i];
		s = YAJL_IS_STRING(v->u.object.values[i]) ?
		    YAJL_GET_STRING(v->u.object.values[i]) : NULL;
		errstr = NULL;
		n = util_strtonum(k, 0, ATTEST_PCR_MAX - 1, &errstr);
		if (errstr != NULL || (k[0] == '0' && k[1] != '\0') ||
		    (pcrs->mask & (1u << n)) || s == NULL || strlen(s) != 64 ||
		    strspn(s, "0123456789abcdefABCDEF") != 64) {
			http_reply_problem(hr, 400, NULL, "%s", bad);
			return -1;
		}
		pcrs->mask |= 1u << n;
		for (int j = 0; j < 32; j++) {
			char byte[3] = { s[2 * j], s[2 * j + 1], '\0' };

			pcrs->value[n][j] = (unsigned char)strtoul(byte, NULL, 16);
		}
	}
	return 0;
}

static void
devattest_quote_recorded(enum attest_result r, const struct attest_quote_result *q,
    void *arg)
{
	struct devattest_quote *c = arg;
	struct http_req *hr = c->hr;
	const char *p;
	char *end;
	long n;
	yajl_gen g;

	if (r == ATTEST_NOT_FOUND)
		http_reply_problem(hr, 403, NULL, "quote nonce unknown, used or expired");
	else if (r != ATTEST_OK)
		devattest_db_failed(hr, r);
	else {
		g = json_gen_new();
		yajl_gen_map_open(g);
		json_kv_str(g, "state", q->state);
		json_kv_str(g, "reference", q->reference);
		json_key(g, "differ");
		yajl_gen_array_open(g);
		/* "n,m" from ql_quote_record: digits and commas only. */
		for (p = q->differ; *p != '\0'; p = end + (*end == ',')) {
			if ((n = strtol(p, &end, 10)) < 0 || end == p)
				break;
			yajl_gen_integer(g, n);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		http_reply_json(hr, 200, g);
	}
	devattest_quote_free(c);
}

static void
devattest_quote_got(enum attest_result r, const struct attest_quote_ctx *ctx,
    void *arg)
{
	struct devattest_quote *c = arg;
	struct http_req *hr = c->hr;
	struct attest_key ak;
	const char *why;

	memset(&ak, 0, sizeof(ak));
	if (r != ATTEST_OK) {
		if (r == ATTEST_NOT_FOUND)
			http_reply_problem(hr, 403, NULL, "quote nonce unknown, used or"
			    " expired");
		else
			devattest_db_failed(hr, r);
		goto out;
	}
	if (attest_key_parse(ctx->ak_public, ctx->ak_public_len, ATTEST_AK, &ak,
	    &why) == -1) {
		log_warnx("quote id=%s: stored AK: %s", hr->id, why);
		http_reply_problem(hr, 500, NULL, "attestation failed");
		goto out;
	}
	if (attest_quote_verify(&ak, c->quote, c->quote_len, c->sig, c->sig_len,
	    c->nonce, ctx->mask, &c->pcrs, &why) == -1) {
		http_reply_problem(hr, 403, NULL, "%s", why);
		goto out;
	}
	attest_key_clear(&ak);
	attest_quote_record(hr->srv->db, ctx->device, c->nonce, &c->pcrs,
	    devattest_quote_recorded, c);
	return;
out:
	attest_key_clear(&ak);
	devattest_quote_free(c);
}

static void
devattest_quote_run(struct http_req *hr, X509 *cert)
{
	static const char *const keys[] = { "nonce", "quote", "signature", "pcrs",
	    "eventlog", NULL };
	char serial[CA_SERIAL_HEX];
	struct devattest_quote *c;
	struct pki_ca *ca;
	unsigned char *log;
	yajl_val body, ev;
	size_t len;
	int rc = -1;

	if ((body = devattest_body(hr, DEVATTEST_QUOTE_MAX, keys)) == NULL)
		return;
	c = xcalloc(1, sizeof(*c));
	c->hr = hr;
	if ((c->nonce = devattest_b64(hr, body, "nonce", ATTEST_NONCE_LEN,
	    ATTEST_NONCE_LEN, &c->nonce_len)) != NULL &&
	    (c->quote = devattest_b64(hr, body, "quote", DEVATTEST_TPM_MAX, 0,
	    &c->quote_len)) != NULL &&
	    (c->sig = devattest_b64(hr, body, "signature", DEVATTEST_TPM_MAX, 0,
	    &c->sig_len)) != NULL &&
	    devattest_quote_pcrs(hr, body, &c->pcrs) == 0) {
		rc = 0;
		/* The event log is checked for form only: v1 compares PCRs. */
		if ((ev = json_get(body, "eventlog")) != NULL) {
			if ((log = devattest_b64_value(hr, "eventlog", ev,
			    DEVATTEST_QUOTE_MAX, 0, &len)) == NULL)
				rc = -1;
			free(log);
		}
	}
	yajl_tree_free(body);
	if (rc == -1 || (ca = devattest_device_ca(hr, cert, serial)) == NULL) {
		devattest_quote_free(c);
		return;
	}
	attest_quote_get(hr->srv->db, ca->id, serial, c->nonce, devattest_quote_got, c);
}

static void
devattest_quote(struct http_req *hr)
{
	devapi_authorize(hr, devattest_quote_run);
}

const struct route devattest_routes[] = {
	{ "/device/v1/attest/{project}", EVHTTP_REQ_GET, ROUTE_DEVICE, devattest_info, 0, NULL },
	{ "/device/v1/attest/{project}/challenge", EVHTTP_REQ_POST, ROUTE_DEVICE, devattest_challenge, 0, NULL },
	{ "/device/v1/attest/{project}/proof", EVHTTP_REQ_POST, ROUTE_DEVICE, devattest_proof, 0, NULL },
	{ "/device/v1/quote/challenge", EVHTTP_REQ_POST, ROUTE_DEVICE, devattest_quote_challenge, 0, NULL },
	{ "/device/v1/quote", EVHTTP_REQ_POST, ROUTE_DEVICE, devattest_quote, 0, NULL },
};
const size_t devattest_nroutes = sizeof(devattest_routes) / sizeof(devattest_routes[0]);

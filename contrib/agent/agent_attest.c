/* agent_attest.c: the attestation protocol of the device listener. At the
 * first enrollment of a project that requires it:
 *   GET  /device/v1/attest/{project}            required?
 *   POST /device/v1/attest/{project}/challenge  EK certificate, EK and AK
 *        -> a credential for (EK, Name(AK)) and a nonce
 *   POST /device/v1/attest/{project}/proof      the activated secret, the
 *        identity key certified by the AK over the nonce
 * then the usual EST enrollment with that key. In the field, each poll
 * cycle answers POST /device/v1/quote/challenge with a quote of the asked
 * PCRs (POST /device/v1/quote). Every answer is parsed strictly and
 * bounded; the server's refusals are printed with its one-line reason. */
#include "agent_attest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <yajl/yajl_gen.h>

#include "agent.h"
#include "agent_conf.h"
#include "agent_json.h"
#include "agent_key.h"
#include "agent_net.h"
#include "agent_state.h"
#include "agent_tpm.h"
#include "agent_util.h"

#define AGENT_ATTEST_DOC_MAX	(16 * 1024)	/* every answer of the protocol */
#define AGENT_ATTEST_URL_MAX	1024
/* The platform's measured-boot log, sent with a quote when readable; in
 * base64 with the quote it stays within the server's 256 KiB body. */
#define AGENT_ATTEST_EVENTLOG	"/sys/kernel/security/tpm0/binary_bios_measurements"
#define AGENT_ATTEST_EVENTLOG_MAX (160 * 1024)

/* ---------------------------------------------------------------- helpers */

static void
agent_attest_str(yajl_gen g, const char *k, const char *v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	yajl_gen_string(g, (const unsigned char *)v, strlen(v));
}

static int
agent_attest_b64(yajl_gen g, const char *k, const unsigned char *p, size_t len)
{
	char *b;

	if ((b = agent_b64_encode(p, len)) == NULL)
		return -1;
	agent_attest_str(g, k, b);
	free(b);
	return 0;
}

/* A base64 member of len bytes (exact when is_exact, else at most len). */
static unsigned char *
agent_attest_field(yajl_val doc, const char *k, size_t len, int is_exact, size_t *out_len)
{
	const char *v = agent_json_str(doc, k);
	unsigned char *p;
	size_t n;

	if (v == NULL || strlen(v) > len / 3 * 4 + 8 ||
	    (p = agent_b64_decode(v, strlen(v), &n)) == NULL)
		return NULL;
	if (n == 0 || n > len || (is_exact && n != len)) {
		free(p);
		return NULL;
	}
	*out_len = n;
	return p;
}

/* A TPM2B: its size prefix counts the bytes that follow. */
static int
agent_attest_is_tpm2b(const unsigned char *p, size_t len)
{
	return len >= 2 && (size_t)((p[0] << 8) | p[1]) == len - 2;
}

/* POST the document of g (or GET when g is NULL) to path under device_url. */
static int
agent_attest_call(const struct agent_conf *c, const char *path, yajl_gen g, int client_auth,
    struct agent_net_resp *r)
{
	struct agent_net_req q = { .method = g ? "POST" : "GET", .out_fd = -1,
	    .max_body = AGENT_ATTEST_DOC_MAX, .accept = "application/json",
	    .client_auth = client_auth };
	const unsigned char *buf = NULL;
	char url[AGENT_ATTEST_URL_MAX];
	size_t len = 0;
	int rc;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", c->device_url, path) >= sizeof(url)) {
		agent_err("device_url is too long");
		memset(r, 0, sizeof(*r));
		return AGENT_EUSAGE;
	}
	if (g != NULL) {
		if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
			agent_err("cannot encode the request to %s", path);
			memset(r, 0, sizeof(*r));
			return AGENT_EFAIL;
		}
		q.content_type = "application/json";
		q.body = buf;
		q.body_len = len;
	}
	q.url = url;
	if ((rc = agent_net_do(&q, r)) != AGENT_OK)
		agent_err("%s: %s", path, r->err);
	return rc;
}

/* The exit code and one line for an answer that is not the expected one. */
static int
agent_attest_refused(const char *what, const struct agent_net_resp *r)
{
	char detail[256];

	agent_net_detail(r, detail, sizeof(detail));
	switch (r->status) {
	case 400:
	case 401:
	case 403:
		agent_err("%s refused: %s", what, detail);
		return AGENT_EREFUSED;
	case 404:
		agent_err("%s: the server does not know this project: %s", what, detail);
		return AGENT_EUSAGE;
	case 503:
		agent_err("%s: server unavailable: %s", what, detail);
		return AGENT_ENONET;
	default:
		agent_err("%s: HTTP %ld: %s", what, r->status, detail);
		return AGENT_EPROTO;
	}
}

/* One exchange of the protocol: the answer must have status expect and be
 * one JSON object, returned in *doc (the caller frees it). */
static int
agent_attest_json(const struct agent_conf *c, const char *path, yajl_gen g, int client_auth,
    long expect, const char *what, yajl_val *doc)
{
	struct agent_net_resp r;
	char err[128];
	int rc;

	*doc = NULL;
	if ((rc = agent_attest_call(c, path, g, client_auth, &r)) != AGENT_OK)
		return rc;
	if (r.status != expect) {
		rc = agent_attest_refused(what, &r);
		agent_net_resp_free(&r);
		return rc;
	}
	*doc = agent_json_parse(r.body, r.len, err, sizeof(err));
	agent_net_resp_free(&r);
	if (*doc == NULL) {
		agent_err("%s: %s", what, err);
		return AGENT_EPROTO;
	}
	return AGENT_OK;
}

static yajl_gen
agent_attest_gen(void)
{
	yajl_gen g;

	if ((g = yajl_gen_alloc(NULL)) == NULL) {
		agent_err("out of memory");
		return NULL;
	}
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	return g;
}

/* ---------------------------------------------------------------- enrollment */

/* 1 required, 0 not (or a server without attestation), or -exit code. */
static int
agent_attest_required(const struct agent_conf *c)
{
	struct agent_net_resp r;
	char path[256], err[128];
	yajl_val doc;
	int rc, req;

	snprintf(path, sizeof(path), "/device/v1/attest/%s", c->project);
	if ((rc = agent_attest_call(c, path, NULL, 0, &r)) != AGENT_OK)
		return -rc;
	if (r.status == 404) {
		/* Unknown project, or a server before attestation: EST answers. */
		agent_debug("GET %s: 404, enrolling without attestation", path);
		agent_net_resp_free(&r);
		return 0;
	}
	if (r.status != 200) {
		rc = agent_attest_refused("attestation policy", &r);
		agent_net_resp_free(&r);
		return -rc;
	}
	doc = agent_json_parse(r.body, r.len, err, sizeof(err));
	agent_net_resp_free(&r);
	if (doc == NULL || (req = agent_json_bool(doc, "required")) == -1) {
		agent_err("GET %s: %s", path, doc ? "no boolean \"required\"" : err);
		yajl_tree_free(doc);
		return -AGENT_EPROTO;
	}
	yajl_tree_free(doc);
	return req;
}

struct agent_attest_session {
	char		 id[33];
	unsigned char	*blob, *enc, *nonce;
	size_t		 blob_len, enc_len, nonce_len;
};

static void
agent_attest_session_free(struct agent_attest_session *s)
{
	free(s->blob);
	free(s->enc);
	free(s->nonce);
	memset(s, 0, sizeof(*s));
}

static int
agent_attest_challenge(const struct agent_conf *c, const struct agent_tpm_ids *ids,
    struct agent_attest_session *s)
{
	char path[256];
	const char *v, *what = NULL;
	yajl_val doc;
	yajl_gen g;
	int rc;

	memset(s, 0, sizeof(*s));
	if ((g = agent_attest_gen()) == NULL)
		return AGENT_EFAIL;
	if (agent_attest_b64(g, "ek_cert", ids->ek_cert.p, ids->ek_cert.len) == -1 ||
	    agent_attest_b64(g, "ek_public", ids->ek_public.p, ids->ek_public.len) == -1 ||
	    agent_attest_b64(g, "ak_public", ids->ak_public.p, ids->ak_public.len) == -1) {
		yajl_gen_free(g);
		return AGENT_EFAIL;
	}
	yajl_gen_map_close(g);
	snprintf(path, sizeof(path), "/device/v1/attest/%s/challenge", c->project);
	rc = agent_attest_json(c, path, g, 0, 201, "attestation challenge", &doc);
	yajl_gen_free(g);
	if (rc != AGENT_OK)
		return rc;
	if ((v = agent_json_str(doc, "session")) == NULL || strlen(v) != 32 ||
	    strspn(v, "0123456789abcdef") != 32)
		what = "session";
	else if (memcpy(s->id, v, 33) == NULL ||
	    (s->blob = agent_attest_field(doc, "credential_blob", 2 + 256, 0,
	    &s->blob_len)) == NULL || !agent_attest_is_tpm2b(s->blob, s->blob_len))
		what = "credential_blob";
	else if ((s->enc = agent_attest_field(doc, "encrypted_secret", 2 + 512, 0,
	    &s->enc_len)) == NULL || !agent_attest_is_tpm2b(s->enc, s->enc_len))
		what = "encrypted_secret";
	else if ((s->nonce = agent_attest_field(doc, "nonce", AGENT_TPM_NONCE, 1,
	    &s->nonce_len)) == NULL)
		what = "nonce";
	yajl_tree_free(doc);
	if (what != NULL) {
		agent_err("attestation challenge: missing or invalid %s", what);
		agent_attest_session_free(s);
		return AGENT_EPROTO;
	}
	return AGENT_OK;
}

static int
agent_attest_proof(const struct agent_conf *c, const struct agent_attest_session *s,
    const unsigned char secret[AGENT_TPM_SECRET], const struct agent_tpm_ids *ids,
    const struct agent_tpm_buf *info, const struct agent_tpm_buf *sig, char id_out[33])
{
	char path[256];
	const char *v;
	yajl_val doc;
	yajl_gen g;
	int rc;

	if ((g = agent_attest_gen()) == NULL)
		return AGENT_EFAIL;
	agent_attest_str(g, "session", s->id);
	if (agent_attest_b64(g, "secret", secret, AGENT_TPM_SECRET) == -1 ||
	    agent_attest_b64(g, "key_public", ids->key_public.p, ids->key_public.len) == -1 ||
	    agent_attest_b64(g, "certify_info", info->p, info->len) == -1 ||
	    agent_attest_b64(g, "certify_signature", sig->p, sig->len) == -1) {
		yajl_gen_free(g);
		return AGENT_EFAIL;
	}
	yajl_gen_map_close(g);
	snprintf(path, sizeof(path), "/device/v1/attest/%s/proof", c->project);
	rc = agent_attest_json(c, path, g, 0, 200, "attestation proof", &doc);
	yajl_gen_free(g);
	if (rc != AGENT_OK)
		return rc;
	if ((v = agent_json_str(doc, "device_id")) == NULL || strlen(v) != 32) {
		agent_err("attestation proof: missing or invalid device_id");
		yajl_tree_free(doc);
		return AGENT_EPROTO;
	}
	memcpy(id_out, v, 33);
	yajl_tree_free(doc);
	return AGENT_OK;
}

/* The device ID of the identity key, as the provider loads it for EST. */
static int
agent_attest_key_id(const struct agent_conf *c, const char *uri, char id[AGENT_DEVICE_ID])
{
	struct agent_conf ce = *c;
	EVP_PKEY *key;
	int rc;

	ce.tpm2_key = (char *)uri;
	if ((key = agent_key_load(&ce, 0)) == NULL)
		return -1;
	rc = agent_key_device_id(key, id);
	EVP_PKEY_free(key);
	return rc;
}

static int
agent_attest_record(const struct agent_conf *c, const char *uri, const char *result)
{
	struct agent_state st;

	if (agent_state_load(c, &st) == -1)
		return -1;
	snprintf(st.tpm2_key, sizeof(st.tpm2_key), "%s", uri);
	snprintf(st.attestation, sizeof(st.attestation), "%s", result);
	st.attested_at = time(NULL);
	return agent_state_save(c, &st);
}

int
agent_attest_enroll(const struct agent_conf *c, char key_uri[AGENT_ATTEST_KEY_MAX])
{
	struct agent_attest_session s = { 0 };
	struct agent_tpm_ids ids = { 0 };
	struct agent_tpm_buf info = { 0 }, sig = { 0 };
	struct agent_tpm *t = NULL;
	unsigned char secret[AGENT_TPM_SECRET];
	char mine[AGENT_DEVICE_ID], theirs[33], result[128];
	unsigned handle;
	int rc;

	key_uri[0] = '\0';
	if ((rc = agent_attest_required(c)) <= 0)
		return -rc;
	if (c->key_store != AGENT_KEY_TPM2) {
		agent_err("project %s requires TPM attestation: set key_store = tpm2 (the"
		    " identity key must be made in the TPM)", c->project);
		return AGENT_EUSAGE;
	}
	if (agent_tpm_identity_handle(c, &handle) == -1)
		return AGENT_EUSAGE;
	snprintf(key_uri, AGENT_ATTEST_KEY_MAX, "handle:0x%08x", handle);
	agent_info("project %s requires TPM attestation", c->project);
	rc = AGENT_EFAIL;
	if ((t = agent_tpm_open(c)) == NULL || agent_tpm_ensure(t, &ids) == -1)
		goto out;
	if ((rc = agent_attest_challenge(c, &ids, &s)) != AGENT_OK)
		goto out;
	rc = AGENT_EFAIL;
	if (agent_tpm_activate(t, s.blob, s.blob_len, s.enc, s.enc_len, secret) == -1 ||
	    agent_tpm_certify(t, s.nonce, s.nonce_len, &info, &sig) == -1)
		goto out;
	/* The TPM's work is done: let the provider have it alone for EST. */
	agent_tpm_close(t);
	t = NULL;
	if ((rc = agent_attest_proof(c, &s, secret, &ids, &info, &sig, theirs)) != AGENT_OK)
		goto out;
	rc = AGENT_EFAIL;
	if (agent_attest_key_id(c, key_uri, mine) == -1)
		goto out;
	if (strcmp(mine, theirs) != 0) {
		agent_err("attestation proof: the server names device %s, the identity key"
		    " is %s", theirs, mine);
		rc = AGENT_EPROTO;
		goto out;
	}
	snprintf(result, sizeof(result), "attested at enrollment (device %s)", mine);
	if (agent_attest_record(c, key_uri, result) == -1)
		goto out;
	agent_info("TPM attestation accepted for device %s", mine);
	rc = AGENT_OK;
out:
	OPENSSL_cleanse(secret, sizeof(secret));
	agent_tpm_buf_free(&info);
	agent_tpm_buf_free(&sig);
	agent_attest_session_free(&s);
	agent_tpm_ids_free(&ids);
	agent_tpm_close(t);
	if (rc != AGENT_OK)
		key_uri[0] = '\0';
	return rc;
}

int
agent_attest_conf(struct agent_conf *c)
{
	struct agent_state st;
	char *k;

	if (c->key_store != AGENT_KEY_TPM2 || c->tpm2_key[0] != '\0')
		return 0;
	/* A corrupt state file is reported by the command that needs it. */
	if (agent_state_load(c, &st) == -1 || st.tpm2_key[0] == '\0')
		return 0;
	if ((k = strdup(st.tpm2_key)) == NULL)
		return -1;
	free(c->tpm2_key);
	c->tpm2_key = k;
	return 0;
}

/* ---------------------------------------------------------------- quotes */

struct agent_attest_ask {
	unsigned char	*nonce;
	size_t		 nonce_len;
	unsigned	 mask;
};

static int
agent_attest_parse_ask(const struct agent_net_resp *r, struct agent_attest_ask *a)
{
	char err[128];
	const char *v, *what = NULL;
	yajl_val doc, pcrs;
	long long n;
	size_t i;

	memset(a, 0, sizeof(*a));
	if ((doc = agent_json_parse(r->body, r->len, err, sizeof(err))) == NULL) {
		agent_err("quote challenge: %s", err);
		return -1;
	}
	if ((a->nonce = agent_attest_field(doc, "nonce", AGENT_TPM_NONCE, 1,
	    &a->nonce_len)) == NULL)
		what = "nonce";
	else if ((v = agent_json_str(doc, "bank")) == NULL || strcmp(v, "sha256") != 0)
		what = "bank (only sha256 is quoted)";
	else if ((pcrs = agent_json_get(doc, "pcrs", yajl_t_array)) == NULL ||
	    pcrs->u.array.len == 0 || pcrs->u.array.len > AGENT_TPM_PCRS)
		what = "pcrs";
	else
		for (i = 0; i < pcrs->u.array.len && what == NULL; i++) {
			yajl_val p = pcrs->u.array.values[i];
			n = YAJL_IS_INTEGER(p) ? YAJL_GET_INTEGER(p) : -1;
			if (n < 0 || n >= AGENT_TPM_PCRS || (a->mask & (1u << n)))
				what = "pcrs";
			else
				a->mask |= 1u << n;
		}
	yajl_tree_free(doc);
	if (what != NULL) {
		agent_err("quote challenge: missing or invalid %s", what);
		free(a->nonce);
		a->nonce = NULL;
		return -1;
	}
	return 0;
}

/* The event log, when the platform has one we may read; NULL otherwise. */
static char *
agent_attest_eventlog(void)
{
	char *text = NULL, *b64;
	size_t len;

	if (agent_read_file(AGENT_ATTEST_EVENTLOG, AGENT_ATTEST_EVENTLOG_MAX, &text, &len) == -1) {
		if (errno == EFBIG)
			agent_info("%s is larger than %d bytes: quoting without it",
			    AGENT_ATTEST_EVENTLOG, AGENT_ATTEST_EVENTLOG_MAX);
		return NULL;
	}
	b64 = len > 0 ? agent_b64_encode((unsigned char *)text, len) : NULL;
	free(text);
	return b64;
}

static yajl_gen
agent_attest_quote_doc(const struct agent_attest_ask *a, const struct agent_tpm_quote *q)
{
	char key[4], hex[65], *log;
	yajl_gen g;
	unsigned i;

	if ((g = agent_attest_gen()) == NULL)
		return NULL;
	if (agent_attest_b64(g, "nonce", a->nonce, a->nonce_len) == -1 ||
	    agent_attest_b64(g, "quote", q->quote.p, q->quote.len) == -1 ||
	    agent_attest_b64(g, "signature", q->signature.p, q->signature.len) == -1) {
		yajl_gen_free(g);
		return NULL;
	}
	yajl_gen_string(g, (const unsigned char *)"pcrs", 4);
	yajl_gen_map_open(g);
	for (i = 0; i < AGENT_TPM_PCRS; i++)
		if (q->mask & (1u << i)) {
			snprintf(key, sizeof(key), "%u", i);
			agent_hex(q->value[i], 32, hex);
			agent_attest_str(g, key, hex);
		}
	yajl_gen_map_close(g);
	if ((log = agent_attest_eventlog()) != NULL) {
		agent_attest_str(g, "eventlog", log);
		free(log);
	}
	yajl_gen_map_close(g);
	return g;
}

/* The server's verdict on a quote, as status shows it. */
static void
agent_attest_verdict(const struct agent_net_resp *r, struct agent_state *st)
{
	char err[128], differ[128] = "";
	const char *state, *ref;
	yajl_val doc, d;
	size_t i, o = 0;

	if ((doc = agent_json_parse(r->body, r->len, err, sizeof(err))) == NULL ||
	    (state = agent_json_str(doc, "state")) == NULL ||
	    (ref = agent_json_str(doc, "reference")) == NULL ||
	    strspn(state, "abcdefghijklmnopqrstuvwxyz") != strlen(state) || strlen(state) > 16 ||
	    strspn(ref, "abcdefghijklmnopqrstuvwxyz") != strlen(ref) || strlen(ref) > 16) {
		agent_err("quote: the server's verdict is not understood");
		snprintf(st->attestation, sizeof(st->attestation), "quote: verdict not understood");
		yajl_tree_free(doc);
		return;
	}
	if ((d = agent_json_get(doc, "differ", yajl_t_array)) != NULL)
		for (i = 0; i < d->u.array.len && i < AGENT_TPM_PCRS; i++)
			if (YAJL_IS_INTEGER(d->u.array.values[i]) && o < sizeof(differ) - 8)
				o += (size_t)snprintf(differ + o, sizeof(differ) - o, "%s%lld",
				    o ? "," : "", YAJL_GET_INTEGER(d->u.array.values[i]));
	if (differ[0] != '\0')
		snprintf(st->attestation, sizeof(st->attestation),
		    "%s (reference %s; PCRs %s differ)", state, ref, differ);
	else
		snprintf(st->attestation, sizeof(st->attestation), "%s (reference %s)", state, ref);
	/* The server's verdict, not a failure of the agent: what follows from
	 * it (a refused update poll) is the error. */
	agent_info("quote: %s", st->attestation);
	yajl_tree_free(doc);
}

int
agent_attest_quote(const struct agent_conf *c, struct agent_state *st)
{
	struct agent_attest_ask a = { 0 };
	struct agent_tpm_quote q = { 0 };
	struct agent_net_resp r;
	struct agent_tpm *t = NULL;
	char detail[256];
	yajl_gen g = NULL;
	int rc;

	/* A file key store has no TPM, so no AK to quote with. */
	if (c->key_store != AGENT_KEY_TPM2)
		return AGENT_OK;
	if ((g = agent_attest_gen()) == NULL)
		return AGENT_EFAIL;
	yajl_gen_map_close(g);
	rc = agent_attest_call(c, "/device/v1/quote/challenge", g, 1, &r);
	yajl_gen_free(g);
	g = NULL;
	if (rc != AGENT_OK)
		return rc;
	if (r.status == 204 || r.status == 404) {
		/* Nothing asked (or a server without quotes). */
		agent_net_resp_free(&r);
		return AGENT_OK;
	}
	if (r.status != 200) {
		agent_net_detail(&r, detail, sizeof(detail));
		agent_err("quote challenge: HTTP %ld: %s", r.status, detail);
		agent_net_resp_free(&r);
		return AGENT_EPROTO;
	}
	rc = agent_attest_parse_ask(&r, &a);
	agent_net_resp_free(&r);
	if (rc == -1)
		return AGENT_EPROTO;
	rc = AGENT_EFAIL;
	if ((t = agent_tpm_open(c)) == NULL ||
	    agent_tpm_quote(t, a.nonce, a.nonce_len, a.mask, &q) == -1)
		goto out;
	agent_tpm_close(t);
	t = NULL;
	if ((g = agent_attest_quote_doc(&a, &q)) == NULL)
		goto out;
	if ((rc = agent_attest_call(c, "/device/v1/quote", g, 1, &r)) != AGENT_OK)
		goto out;
	st->attested_at = time(NULL);
	if (r.status == 200) {
		agent_attest_verdict(&r, st);
	} else {
		agent_net_detail(&r, detail, sizeof(detail));
		agent_err("quote refused: HTTP %ld: %s", r.status, detail);
		snprintf(st->attestation, sizeof(st->attestation), "quote refused: %.200s", detail);
		rc = r.status == 403 ? AGENT_EREFUSED : AGENT_EPROTO;
	}
	agent_net_resp_free(&r);
out:
	if (g != NULL)
		yajl_gen_free(g);
	agent_tpm_close(t);
	agent_tpm_quote_free(&q);
	free(a.nonce);
	return rc;
}

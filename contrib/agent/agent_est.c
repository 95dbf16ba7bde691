/* agent_est.c: the device side of EST. What the server sends back is
 * checked before it is stored: the certificate must carry our key and
 * chain to the pinned root through the project CA from /cacerts. */
#include "agent_est.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "agent.h"
#include "agent_attest.h"
#include "agent_conf.h"
#include "agent_json.h"
#include "agent_key.h"
#include "agent_net.h"
#include "agent_state.h"
#include "agent_util.h"

#define AGENT_EST_MAX	(256 * 1024)

static char *
agent_est_csr(EVP_PKEY *key, X509 *current, const char *device_id)
{
	X509_REQ *req;
	X509_NAME *name = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *san;
	unsigned char *der = NULL;
	char *b64 = NULL;
	int len, i;

	if ((req = X509_REQ_new()) == NULL || X509_REQ_set_version(req, 0) != 1)
		goto out;
	if (current != NULL) {
		/* Re-enrollment: the server wants the subject and SAN unchanged. */
		if (X509_REQ_set_subject_name(req, X509_get_subject_name(current)) != 1)
			goto out;
		if ((i = X509_get_ext_by_NID(current, NID_subject_alt_name, -1)) >= 0) {
			san = X509_get_ext(current, i);
			if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
			    sk_X509_EXTENSION_push(exts, san) == 0 ||
			    X509_REQ_add_extensions(req, exts) != 1)
				goto out;
		}
	} else {
		if ((name = X509_NAME_new()) == NULL ||
		    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		    (const unsigned char *)device_id, -1, -1, 0) != 1 ||
		    X509_REQ_set_subject_name(req, name) != 1)
			goto out;
	}
	if (X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	if ((len = i2d_X509_REQ(req, &der)) <= 0)
		goto out;
	b64 = agent_b64_encode(der, (size_t)len);
out:
	if (b64 == NULL)
		agent_err("cannot make the certificate request: %s", agent_ssl_err());
	sk_X509_EXTENSION_free(exts);	/* the extension belongs to current */
	X509_NAME_free(name);
	X509_REQ_free(req);
	OPENSSL_free(der);
	return b64;
}

/* The certificates of a base64 certs-only PKCS#7 answer. */
static STACK_OF(X509) *
agent_est_certs(const char *body, size_t len)
{
	STACK_OF(X509) *out = NULL, *in;
	const unsigned char *p;
	unsigned char *der;
	PKCS7 *p7 = NULL;
	size_t dlen;
	int i;

	if ((der = agent_b64_decode(body, len, &dlen)) == NULL)
		return NULL;
	p = der;
	if ((p7 = d2i_PKCS7(NULL, &p, (long)dlen)) == NULL || p != der + dlen ||
	    !PKCS7_type_is_signed(p7) || p7->d.sign == NULL ||
	    (in = p7->d.sign->cert) == NULL || sk_X509_num(in) < 1)
		goto out;
	if ((out = sk_X509_new_null()) == NULL)
		goto out;
	for (i = 0; i < sk_X509_num(in); i++) {
		X509 *x = sk_X509_value(in, i);
		if (X509_up_ref(x) != 1 || sk_X509_push(out, x) == 0) {
			sk_X509_pop_free(out, X509_free);
			out = NULL;
			goto out;
		}
	}
out:
	ERR_clear_error();
	PKCS7_free(p7);
	free(der);
	return out;
}

static char *
agent_est_url(const struct agent_conf *c, const char *op)
{
	char *u;

	if (asprintf(&u, "%s/%s/%s", c->est_url, c->project, op) == -1)
		return NULL;
	return u;
}

/* The project's chain (intermediates) from /cacerts. */
static int
agent_est_cacerts(const struct agent_conf *c, STACK_OF(X509) **chain)
{
	struct agent_net_req q = { .method = "GET", .out_fd = -1, .max_body = AGENT_EST_MAX };
	struct agent_net_resp r;
	STACK_OF(X509) *all;
	char *url;
	int rc, i;

	*chain = NULL;
	if ((url = agent_est_url(c, "cacerts")) == NULL)
		return AGENT_EFAIL;
	q.url = url;
	rc = agent_net_do(&q, &r);
	free(url);
	if (rc != AGENT_OK) {
		agent_err("%s", r.err);
		return rc;
	}
	if (r.status != 200 || (all = agent_est_certs(r.body, r.len)) == NULL) {
		agent_err("GET cacerts: HTTP %ld, expected a PKCS#7 of the project's CA"
		    " certificates", r.status);
		agent_net_resp_free(&r);
		return r.status == 404 ? AGENT_EUSAGE : AGENT_EPROTO;
	}
	agent_net_resp_free(&r);
	/* Keep the intermediates; the only root we trust is the pinned one. */
	for (i = sk_X509_num(all) - 1; i >= 0; i--) {
		X509 *x = sk_X509_value(all, i);
		if (X509_check_issued(x, x) == X509_V_OK)
			X509_free(sk_X509_delete(all, i));
	}
	*chain = all;
	return AGENT_OK;
}

/* A 200 answer: find our certificate, verify it, store it with the chain. */
static int
agent_est_accept(const struct agent_conf *c, EVP_PKEY *key, const struct agent_net_resp *r)
{
	STACK_OF(X509) *got, *chain = NULL;
	X509 *mine = NULL;
	const char *why;
	int i, rc;

	if ((got = agent_est_certs(r->body, r->len)) == NULL) {
		agent_err("the EST answer is not a base64 PKCS#7 of certificates");
		return AGENT_EPROTO;
	}
	for (i = 0; i < sk_X509_num(got) && mine == NULL; i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(got, i)), key) == 1)
			mine = sk_X509_value(got, i);
	ERR_clear_error();
	if (mine == NULL) {
		agent_err("the EST answer holds no certificate for the device key");
		rc = AGENT_EPROTO;
		goto out;
	}
	if ((rc = agent_est_cacerts(c, &chain)) != AGENT_OK)
		goto out;
	if (agent_ident_verify(c, mine, chain, &why) == -1) {
		agent_err("the issued certificate does not chain to the pinned root: %s", why);
		rc = AGENT_EUNTRUSTED;
		goto out;
	}
	rc = agent_ident_store(c, mine, chain) == 0 ? AGENT_OK : AGENT_EFAIL;
out:
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(got, X509_free);
	return rc;
}

static void
agent_est_sleep(long s)
{
	struct timespec ts = { s, 0 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int
agent_est_enroll(const struct agent_conf *c, const char *token, long wait, char id_out[33])
{
	struct agent_net_req q = { .method = "POST", .out_fd = -1, .max_body = AGENT_EST_MAX,
	    .content_type = "application/pkcs10", .accept = "application/pkcs7-mime" };
	struct agent_net_resp r;
	struct agent_ident id;
	struct agent_conf attested;
	EVP_PKEY *key;
	char *csr = NULL, *url = NULL, detail[256], key_uri[AGENT_ATTEST_KEY_MAX];
	time_t deadline = time(NULL) + wait;
	long delay;
	int rc, is_waiting = 0;

	if (agent_state_dir(c) == -1)
		return AGENT_EFAIL;
	/* Enrolled already: the same ID, nothing else. */
	if ((rc = agent_ident_load(c, &id)) == AGENT_OK) {
		memcpy(id_out, id.device_id, 33);
		agent_ident_free(&id);
		agent_info("already enrolled");
		return AGENT_OK;
	}
	if (rc != AGENT_ENOTENROLLED)
		return rc;
	/* A project that requires attestation gets the key the TPM proved. */
	if ((rc = agent_attest_enroll(c, key_uri)) != AGENT_OK)
		return rc;
	if (key_uri[0] != '\0') {
		attested = *c;
		attested.tpm2_key = key_uri;
		c = &attested;
	}
	if ((key = agent_key_load(c, 1)) == NULL)
		return AGENT_EFAIL;
	rc = AGENT_EFAIL;
	if (agent_key_device_id(key, id_out) == -1 ||
	    (csr = agent_est_csr(key, NULL, id_out)) == NULL ||
	    (url = agent_est_url(c, "simpleenroll")) == NULL)
		goto out;
	q.url = url;
	q.body = csr;
	q.body_len = strlen(csr);
	if (token != NULL || c->label[0] != '\0') {
		q.basic_user = c->label[0] != '\0' ? c->label : id_out;
		q.basic_pass = token ? token : "";
	}
	for (;;) {
		if ((rc = agent_net_do(&q, &r)) != AGENT_OK) {
			agent_err("%s", r.err);
			goto out;
		}
		agent_net_detail(&r, detail, sizeof(detail));
		switch (r.status) {
		case 200:
			rc = agent_est_accept(c, key, &r);
			agent_net_resp_free(&r);
			goto out;
		case 202:
		case 503:
			delay = r.retry_after > 0 ? r.retry_after : 60;
			if (delay > c->retry_max)
				delay = c->retry_max;
			agent_net_resp_free(&r);
			if (time(NULL) + delay > deadline) {
				agent_err("device %s: %s; gave up after waiting %ld s"
				    " (enroll_wait)", id_out, r.status == 202 ?
				    "still waiting for approval" : detail, wait);
				rc = r.status == 202 ? AGENT_EPENDING : AGENT_EPROTO;
				goto out;
			}
			if (!is_waiting)
				agent_info("device %s: %s; retrying for up to %ld s", id_out,
				    r.status == 202 ? "waiting for approval" : detail, wait);
			is_waiting = 1;
			agent_debug("retrying in %ld s", delay);
			agent_est_sleep(delay);
			continue;
		case 401:
			agent_err("enrollment token refused: %s", detail);
			rc = AGENT_ETOKEN;
			break;
		case 403:
			if (strstr(detail, "rejected") != NULL) {
				agent_err("enrollment rejected by an administrator: %s", detail);
				rc = AGENT_EREJECTED;
			} else {
				agent_err("enrollment refused: %s", detail);
				rc = AGENT_EREFUSED;
			}
			break;
		case 404:
			agent_err("project %s unknown to the server: %s", c->project, detail);
			rc = AGENT_EUSAGE;
			break;
		default:
			agent_err("simpleenroll: HTTP %ld: %s", r.status, detail);
			rc = AGENT_EPROTO;
			break;
		}
		agent_net_resp_free(&r);
		goto out;
	}
out:
	free(url);
	free(csr);
	EVP_PKEY_free(key);
	return rc;
}

int
agent_est_reenroll(const struct agent_conf *c, struct agent_ident *id)
{
	struct agent_net_req q = { .method = "POST", .out_fd = -1, .max_body = AGENT_EST_MAX,
	    .content_type = "application/pkcs10", .accept = "application/pkcs7-mime",
	    .client_auth = 1 };
	struct agent_net_resp r;
	struct agent_ident fresh;
	char *csr = NULL, *url = NULL, detail[256];
	int rc = AGENT_EFAIL;

	if ((csr = agent_est_csr(id->key, id->cert, NULL)) == NULL ||
	    (url = agent_est_url(c, "simplereenroll")) == NULL)
		goto out;
	q.url = url;
	q.body = csr;
	q.body_len = strlen(csr);
	agent_net_set_identity(id->cert, id->chain, id->key);
	if ((rc = agent_net_do(&q, &r)) != AGENT_OK) {
		agent_err("renewal: %s", r.err);
		goto out;
	}
	agent_net_detail(&r, detail, sizeof(detail));
	if (r.status == 200) {
		rc = agent_est_accept(c, id->key, &r);
	} else if (r.status == 401 || r.status == 403) {
		agent_err("renewal refused: HTTP %ld: %s", r.status, detail);
		rc = AGENT_EREFUSED;
	} else {
		agent_err("renewal: HTTP %ld: %s", r.status, detail);
		rc = r.status == 503 ? AGENT_ENONET : AGENT_EPROTO;
	}
	agent_net_resp_free(&r);
	if (rc == AGENT_OK) {
		/* Use the new certificate from now on. */
		if ((rc = agent_ident_load(c, &fresh)) == AGENT_OK) {
			agent_ident_free(id);
			*id = fresh;
			agent_net_set_identity(id->cert, id->chain, id->key);
		}
	}
out:
	free(url);
	free(csr);
	return rc;
}

int
agent_est_renewal_due(const struct agent_conf *c, const struct agent_ident *id)
{
	const ASN1_TIME *nb = X509_get0_notBefore(id->cert), *na = X509_get0_notAfter(id->cert);
	struct tm tb, ta;
	time_t b, a;

	if (ASN1_TIME_to_tm(nb, &tb) != 1 || ASN1_TIME_to_tm(na, &ta) != 1)
		return 1;
	b = timegm(&tb);
	a = timegm(&ta);
	return (double)(time(NULL) - b) >= c->renew_fraction * (double)(a - b);
}

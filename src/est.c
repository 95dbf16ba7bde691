/* est.c: EST handlers. Everything from the wire is hostile until OpenSSL
 * has parsed it and the checks here have passed. Nothing is signed before
 * the CSR's proof of possession verifies and the enrollment policy has
 * said yes (enroll_decide), and nothing is answered before the certificate
 * is committed (enroll_record). */
#include "est.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "audit.h"
#include "ca.h"
#include "db.h"
#include "enroll.h"
#include "est_csr.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "pki.h"
#include "tok.h"
#include "util.h"
#include "xmalloc.h"

#define EST_MAX_AUTH	1024
#define EST_LABEL_MAX	128
#define EST_RETRY_AFTER	"60"

struct est_enroll {
	struct http_req	*hr;
	char		 project[64];
	X509_REQ	*csr;
	char		 label[EST_LABEL_MAX + 1];
	unsigned char	 token_hash[32];
	int		 has_token;
	char		 device_id[CA_DEVICE_ID];
	unsigned char	 spki[32];
	char		 old_serial[CA_SERIAL_HEX];	/* re-enrollment */
	unsigned char	 old_sha256[32];
	X509		*peer;				/* re-enrollment */
	int		 is_reenroll;
	struct pki_ca	*ca;
	long long	 reservation;
	X509		*cert;
	char		 serial[CA_SERIAL_HEX];
	int		 attempts;
	int		 has_hold;	/* a token queue place (tok_hold) */
	/* Signed on a token worker; the loop keeps its hands off meanwhile. */
	struct pki_device_req dev;
	unsigned char	*der;
	int		 derlen;
	char		 subject[256];
	char		 err[256];
};

static void
est_enroll_free(struct est_enroll *e)
{
	X509_REQ_free(e->csr);
	X509_free(e->peer);
	X509_free(e->cert);
	OPENSSL_free(e->der);
	if (e->has_hold)
		tok_release();
	OPENSSL_cleanse(e->token_hash, sizeof(e->token_hash));
	free(e);
}

/* The {project} segment: project names (names.h) need no URL decoding;
 * anything else cannot be a project. */
static int
est_project(struct http_req *hr, char *out, size_t len)
{
	size_t n = hr->match.param_len[0];
	const char *p = hr->match.param[0];

	if (n >= len || !names_is_project(p, n))
		return -1;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

static void
est_reply_b64(struct http_req *hr, const char *ctype, const char *b64)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL || evbuffer_add(buf, b64, strlen(b64)) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	http_add_header(hr, "Content-Transfer-Encoding", "base64");
	http_reply(hr, 200, ctype, buf);
	evbuffer_free(buf);
}

static void
est_cacerts_got(struct pki_ca *ca, const char *err, void *arg)
{
	struct http_req *hr = arg;

	if (err != NULL) {
		http_reply_problem(hr, 503, NULL, "cannot load the project: %s", err);
		return;
	}
	if (ca == NULL) {
		http_reply_problem(hr, 404, NULL, "unknown project");
		return;
	}
	est_reply_b64(hr, "application/pkcs7-mime", ca->cacerts_b64);
}

static void
est_cacerts(struct http_req *hr)
{
	char project[64];

	if (est_project(hr, project, sizeof(project)) == -1) {
		http_reply_problem(hr, 404, NULL, "unknown project");
		return;
	}
	pki_project(hr->srv->pki, project, est_cacerts_got, hr);
}

static void
est_csrattrs(struct http_req *hr)
{
	static char *b64;
	ASN1_SEQUENCE_ANY *seq;
	ASN1_TYPE *t;
	unsigned char *der = NULL;
	int len;

	/* CsrAttrs (RFC 7030 4.5.2): ask for ecdsa-with-SHA256 signatures. */
	if (b64 == NULL) {
		if ((seq = sk_ASN1_TYPE_new_null()) == NULL || (t = ASN1_TYPE_new()) == NULL) {
			sk_ASN1_TYPE_free(seq);
			http_reply_problem(hr, 503, NULL, "out of memory");
			return;
		}
		ASN1_TYPE_set(t, V_ASN1_OBJECT, OBJ_nid2obj(NID_ecdsa_with_SHA256));
		sk_ASN1_TYPE_push(seq, t);
		len = i2d_ASN1_SEQUENCE_ANY(seq, &der);
		sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
		if (len > 0) {
			b64 = xmalloc(4 * ((size_t)len + 2) / 3 + 1);
			EVP_EncodeBlock((unsigned char *)b64, der, len);
		}
		OPENSSL_free(der);
		if (b64 == NULL) {
			http_reply_problem(hr, 503, NULL, "out of memory");
			return;
		}
	}
	est_reply_b64(hr, "application/csrattrs", b64);
}

/* The CSR of a request body: application/pkcs10, then est_csr_parse. */
static X509_REQ *
est_read_csr(struct http_req *hr, int *status, char *err, size_t errlen)
{
	struct evbuffer *body = http_body(hr);

	if (!util_media_type_is(http_header(hr, "Content-Type"),
	    "application/pkcs10")) {
		*status = 415;
		snprintf(err, errlen, "Content-Type must be application/pkcs10");
		return NULL;
	}
	return est_csr_parse(evbuffer_pullup(body, -1), evbuffer_get_length(body),
	    status, err, errlen);
}

static int
est_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* HTTP Basic (label:token) or Bearer. No header is fine: allowlist and
 * approval need none. Returns 0, or -1 with err for a malformed header. */
static int
est_credentials(struct http_req *hr, struct est_enroll *e, char *err, size_t errlen)
{
	const char *h = http_header(hr, "Authorization");
	char decoded[EST_MAX_AUTH];
	const char *token = NULL;
	unsigned char *raw;
	size_t n, rawlen;
	char *colon;

	if (h == NULL)
		return 0;
	if ((n = strlen(h)) > EST_MAX_AUTH) {
		snprintf(err, errlen, "Authorization header too long");
		return -1;
	}
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		token = h + 7;
	} else if (strncasecmp(h, "Basic ", 6) == 0) {
		if ((raw = util_base64_decode(h + 6, n - 6, &rawlen)) == NULL ||
		    rawlen >= sizeof(decoded) || memchr(raw, '\0', rawlen) != NULL) {
			free(raw);
			snprintf(err, errlen, "malformed Basic credentials");
			return -1;
		}
		memcpy(decoded, raw, rawlen);
		decoded[rawlen] = '\0';
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
		if ((colon = strchr(decoded, ':')) == NULL) {
			snprintf(err, errlen, "malformed Basic credentials");
			return -1;
		}
		*colon = '\0';
		if (strlen(decoded) > EST_LABEL_MAX || !est_printable(decoded)) {
			snprintf(err, errlen, "device label must be printable, at most %d bytes",
			    EST_LABEL_MAX);
			return -1;
		}
		memcpy(e->label, decoded, strlen(decoded) + 1);	/* length checked */
		token = colon + 1;
	} else {
		snprintf(err, errlen, "unsupported Authorization scheme");
		return -1;
	}
	if (token[0] != '\0') {
		enroll_token_hash(token, strlen(token), e->token_hash);
		e->has_token = 1;
	}
	OPENSSL_cleanse(decoded, sizeof(decoded));
	return 0;
}

static void	est_issue(struct est_enroll *, struct pki_ca *);

static void
est_recorded(enum enroll_result r, const char *detail, void *arg)
{
	struct est_enroll *e = arg;
	struct http_req *hr = e->hr;
	char *b64;

	switch (r) {
	case ENROLL_ISSUED:
		if ((b64 = ca_p7_certs_b64(&e->cert, 1)) == NULL) {
			/* Recorded but unsendable: the client retries and gets
			 * another; both are on record. */
			http_reply_problem(hr, 503, NULL, "out of memory");
			break;
		}
		log_info("est: %s device %s in %s, certificate %s",
		    e->is_reenroll ? "re-enrolled" : "enrolled", e->device_id,
		    e->project, e->serial);
		est_reply_b64(hr, "application/pkcs7-mime; smime-type=certs-only", b64);
		free(b64);
		break;
	case ENROLL_PENDING:
		http_add_header(hr, "Retry-After", EST_RETRY_AFTER);
		http_reply_problem(hr, 202, NULL, "device %s is waiting for approval",
		    e->device_id);
		break;
	case ENROLL_DENIED:
		http_add_header(hr, "WWW-Authenticate", "Basic realm=\"est\"");
		http_reply_problem(hr, 401, NULL, "%s", detail);
		break;
	case ENROLL_NOT_FOUND:
		http_reply_problem(hr, 404, NULL, "%s", detail);
		break;
	case ENROLL_FORBIDDEN:
		http_reply_problem(hr, 403, NULL, "%s", detail);
		break;
	case ENROLL_MISMATCH:
		http_reply_problem(hr, 400, NULL, "%s", detail);
		break;
	case ENROLL_SERIAL_TAKEN:
		/* 2^-127 per pair, but a collision must never reuse a serial;
		 * the rollback kept the reservation for the next signature. */
		if (e->attempts < 3) {
			est_issue(e, e->ca);
			return;
		}
		/* FALLTHROUGH */
	case ENROLL_RESERVED:
	case ENROLL_UNAVAILABLE:
		http_reply_problem(hr, 503, NULL, "database unavailable; no certificate was issued");
		break;
	case ENROLL_EXPIRED:
		http_add_header(hr, "Retry-After", "1");
		http_reply_problem(hr, 503, NULL, "%s", detail);
		break;
	case ENROLL_ERROR:
		log_warnx("est: enrollment failed: %s", detail ? detail : "?");
		http_reply_problem(hr, 500, NULL, "enrollment failed");
		break;
	}
	est_enroll_free(e);
}

/* On a token worker: everything the signature needs was copied into e. */
static void
est_sign(void *arg)
{
	struct est_enroll *e = arg;

	e->err[0] = '\0';
	e->cert = ca_issue(&e->dev.r, e->serial, e->err, sizeof(e->err));
	if (e->cert == NULL || (e->derlen = i2d_X509(e->cert, &e->der)) <= 0 ||
	    ca_name_text(X509_get_subject_name(e->cert), e->subject,
	    sizeof(e->subject)) == -1) {
		OPENSSL_free(e->der);
		e->der = NULL;
	}
}

static void
est_signed(void *arg, int is_cancelled)
{
	struct est_enroll *e = arg;
	struct enroll_record r;

	if (is_cancelled) {
		http_reply_problem(e->hr, 503, NULL, "%s; no certificate was issued",
		    WORK_CANCELLED_MSG);
		est_enroll_free(e);
		return;
	}
	if (e->der == NULL) {
		log_warnx("est: cannot issue for %s: %s", e->device_id, e->err);
		http_reply_problem(e->hr, 500, NULL, "cannot issue the certificate");
		est_enroll_free(e);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.reservation = e->reservation;
	r.serial = e->serial;
	r.cert_der = e->der;
	r.cert_len = e->derlen;
	r.subject = e->subject;
	r.not_before = pki_asn1_time(X509_get0_notBefore(e->cert));
	r.not_after = pki_asn1_time(X509_get0_notAfter(e->cert));
	enroll_record(e->hr->srv->db, &r, est_recorded, e);
	OPENSSL_free(e->der);
	e->der = NULL;
}

static void
est_issue(struct est_enroll *e, struct pki_ca *ca)
{
	struct http_req *hr = e->hr;

	e->attempts++;
	X509_free(e->cert);
	e->cert = NULL;
	pki_device_prepare(hr->srv->pki, ca, X509_REQ_get_X509_PUBKEY(e->csr),
	    e->device_id, &e->dev);
	/* The first signature has its place held since before the policy
	 * was asked; a retry after a serial collision takes any it gets. */
	if (e->has_hold) {
		e->has_hold = 0;
		if (tok_submit_held(est_sign, est_signed, e) == 0)
			return;
	} else if (tok_submit_urgent(est_sign, est_signed, e) == 0) {
		return;
	}
	/* A held or urgent place: refused only by a stopping pool. */
	http_add_header(hr, "Retry-After", TOK_RETRY_AFTER);
	http_reply_problem(hr, 503, NULL, "token busy: the signing queue is full or"
	    " closing; no certificate was issued");
	est_enroll_free(e);
}

/* The CA the decision named: the project's, or for re-enrollment the one
 * that issued the presented certificate, whatever the project is called. */
static void
est_ca_got(struct pki_ca *ca, const char *err, void *arg)
{
	struct est_enroll *e = arg;
	struct http_req *hr = e->hr;

	if (err != NULL || ca == NULL) {
		http_reply_problem(hr, 503, NULL, "cannot load the CA: %s",
		    err ? err : "gone");
		est_enroll_free(e);
		return;
	}
	if (e->is_reenroll && X509_check_issued(ca->signer.cert, e->peer) != X509_V_OK) {
		ERR_clear_error();
		http_reply_problem(hr, 403, NULL,
		    "client certificate was not issued by a project CA");
		est_enroll_free(e);
		return;
	}
	e->ca = ca;
	est_issue(e, ca);
}

static void
est_decided(enum enroll_result r, const char *detail,
    const struct enroll_grant *g, void *arg)
{
	struct est_enroll *e = arg;

	/* Refusals of both steps map to HTTP in one place. */
	if (r != ENROLL_RESERVED) {
		est_recorded(r, detail, e);
		return;
	}
	e->reservation = g->reservation;
	memcpy(e->device_id, g->device_id, sizeof(e->device_id));
	if (e->ca != NULL && e->ca->id == g->ca_id)
		est_issue(e, e->ca);
	else
		pki_ca_get(e->hr->srv->pki, g->ca_id, est_ca_got, e);
}

static void
est_decide(struct est_enroll *e)
{
	struct enroll_request q;

	memset(&q, 0, sizeof(q));
	q.spki_sha256 = e->spki;
	if (e->is_reenroll) {
		q.old_serial = e->old_serial;
		q.old_cert_sha256 = e->old_sha256;
	} else {
		q.project_id = e->ca->project_id;
		q.device_id = e->device_id;
		q.label = e->label[0] ? e->label : NULL;
		q.token_hash = e->has_token ? e->token_hash : NULL;
	}
	enroll_decide(e->hr->srv->db, &q, est_decided, e);
}

static void
est_project_got(struct pki_ca *ca, const char *err, void *arg)
{
	struct est_enroll *e = arg;
	struct http_req *hr = e->hr;

	if (err != NULL || ca == NULL) {
		if (err != NULL)
			http_reply_problem(hr, 503, NULL, "cannot load the project: %s", err);
		else
			http_reply_problem(hr, 404, NULL, "unknown project");
		est_enroll_free(e);
		return;
	}
	e->ca = ca;
	est_decide(e);
}

/* Re-enrollment: the identity is the current certificate's, and the CSR
 * must ask for exactly that (RFC 7030 4.2.2). */
static int
est_reenroll_checks(struct http_req *hr, struct est_enroll *e, int *status,
    char *err, size_t errlen)
{
	X509 *peer = http_peer_cert(hr);
	STACK_OF(X509_EXTENSION) *exts;
	GENERAL_NAMES *san;
	char want[96];
	int n;

	*status = 401;
	if (peer == NULL) {
		snprintf(err, errlen, "re-enrollment needs the current client certificate");
		return -1;
	}
	ca_serial_hex(X509_get0_serialNumber(peer), e->old_serial);
	/* The database decides whether it is current and unrevoked (resumed
	 * TLS sessions skip the handshake's check); it matches this exact
	 * certificate, not only its serial. */
	if (X509_digest(peer, EVP_sha256(), e->old_sha256, NULL) != 1 ||
	    X509_up_ref(peer) != 1) {
		*status = 503;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	e->peer = peer;
	*status = 400;
	if (X509_NAME_cmp(X509_REQ_get_subject_name(e->csr),
	    X509_get_subject_name(peer)) != 0) {
		snprintf(err, errlen, "CSR subject does not match the current certificate");
		return -1;
	}
	n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
	    e->device_id, sizeof(e->device_id));
	if (n != CA_DEVICE_ID - 1) {
		*status = 403;
		snprintf(err, errlen, "client certificate is not a device certificate");
		return -1;
	}
	snprintf(want, sizeof(want), "urn:quarklink:device:%s", e->device_id);
	exts = X509_REQ_get_extensions(e->csr);
	san = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	for (int i = 0; san != NULL && i < sk_GENERAL_NAME_num(san); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);

		if (gn->type != GEN_URI ||
		    (size_t)ASN1_STRING_length(gn->d.uniformResourceIdentifier) != strlen(want) ||
		    memcmp(ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier), want,
		    strlen(want)) != 0) {
			GENERAL_NAMES_free(san);
			snprintf(err, errlen, "CSR subjectAltName does not match the current certificate");
			return -1;
		}
	}
	GENERAL_NAMES_free(san);
	return 0;
}

/* A refusal (401, 403) is a security decision of the project named: one
 * audit row per refused request, written by audit.c (which caps the rate
 * an unauthenticated client can write at). */
static void
est_finish(struct http_req *hr, int status)
{
	struct est_enroll *e = hr->api;

	hr->api = NULL;
	if (status == 401 || status == 403)
		audit_est_refusal(hr->srv, e->project, e->device_id, e->is_reenroll,
		    http_peer_addr(hr), status, hr->problem);
}

static void
est_enroll_common(struct http_req *hr, int is_reenroll)
{
	struct est_enroll *e;
	char err[256], devid[CA_DEVICE_ID];
	int status;

	e = xcalloc(1, sizeof(*e));
	e->hr = hr;
	e->is_reenroll = is_reenroll;
	hr->api = e;
	hr->finish = est_finish;
	if (est_project(hr, e->project, sizeof(e->project)) == -1) {
		http_reply_problem(hr, 404, NULL, "unknown project");
		goto fail;
	}
	if ((e->csr = est_read_csr(hr, &status, err, sizeof(err))) == NULL) {
		http_reply_problem(hr, status, NULL, "%s", err);
		goto fail;
	}
	/* Before anything is decided: a full token queue refuses here, with
	 * nothing reserved, recorded or audited. */
	if (tok_hold() == -1) {
		http_add_header(hr, "Retry-After", TOK_RETRY_AFTER);
		http_reply_problem(hr, 503, NULL, "token busy: the signing queue is full;"
		    " try again");
		goto fail;
	}
	e->has_hold = 1;
	if (ca_device_id_spki(X509_REQ_get_X509_PUBKEY(e->csr), devid, e->spki) == -1) {
		http_reply_problem(hr, 400, NULL, "cannot encode the CSR public key");
		goto fail;
	}
	if (is_reenroll) {
		if (est_reenroll_checks(hr, e, &status, err, sizeof(err)) == -1) {
			/* RFC 9110 15.5.2: every 401 names a scheme; here it is
			 * the client certificate, which HTTP has no scheme for. */
			if (status == 401)
				http_add_header(hr, "WWW-Authenticate", "Basic realm=\"est\"");
			http_reply_problem(hr, status, NULL, "%s", err);
			goto fail;
		}
	} else {
		memcpy(e->device_id, devid, sizeof(devid));
		if (est_credentials(hr, e, err, sizeof(err)) == -1) {
			http_add_header(hr, "WWW-Authenticate", "Basic realm=\"est\"");
			http_reply_problem(hr, 401, NULL, "%s", err);
			goto fail;
		}
	}
	/* Re-enrollment is the device's, wherever its project now stands:
	 * the decision names its CA, not the label in the path. */
	if (is_reenroll)
		est_decide(e);
	else
		pki_project(hr->srv->pki, e->project, est_project_got, e);
	return;
fail:
	est_enroll_free(e);
}

static void
est_simpleenroll(struct http_req *hr)
{
	est_enroll_common(hr, 0);
}

static void
est_simplereenroll(struct http_req *hr)
{
	est_enroll_common(hr, 1);
}

const struct route est_routes[] = {
	{ "/.well-known/est/{project}/cacerts", EVHTTP_REQ_GET, ROUTE_DEVICE, est_cacerts, 0, NULL },
	{ "/.well-known/est/{project}/csrattrs", EVHTTP_REQ_GET, ROUTE_DEVICE, est_csrattrs, 0, NULL },
	{ "/.well-known/est/{project}/simpleenroll", EVHTTP_REQ_POST, ROUTE_DEVICE, est_simpleenroll, 0, NULL },
	{ "/.well-known/est/{project}/simplereenroll", EVHTTP_REQ_POST, ROUTE_DEVICE, est_simplereenroll, 0, NULL },
};
const size_t est_nroutes = sizeof(est_routes) / sizeof(est_routes[0]);

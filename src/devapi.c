/* devapi.c: /device/v1/ handlers. Identity comes only from a verified
 * client certificate, never from anything the request body says, and every
 * route checks that certificate and its device again per request. */
#include "devapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

#include "ca.h"
#include "devices.h"
#include "http.h"
#include "json.h"
#include "pki.h"
#include "xmalloc.h"

struct devapi_call {
	struct http_req	*hr;
	devapi_handler	 fn;
};

static void
devapi_no_cert(struct http_req *hr)
{
	http_reply_problem(hr, 401, NULL, "a verified client certificate is required");
}

/* One reply for every refusal of a presented certificate. */
void
devapi_refuse(struct http_req *hr, enum devices_trust t)
{
	static const char *const why[] = {
		[DEVICES_TRUST_UNKNOWN] = "client certificate is unknown",
		[DEVICES_TRUST_REVOKED] = "client certificate is revoked",
		[DEVICES_TRUST_EXPIRED] = "client certificate has expired",
		[DEVICES_TRUST_NOT_DEVICE] = "client certificate is not a device's",
		[DEVICES_TRUST_INACTIVE] = "device is disabled or not active",
		[DEVICES_TRUST_TAMPERED] = "device failed attestation: PCR values differ"
		    " from the reference; an admin must accept them",
	};

	if (t == DEVICES_TRUST_UNAVAILABLE || t == DEVICES_TRUST_OK)
		http_reply_problem(hr, 503, NULL, "cannot check the client certificate now");
	else
		http_reply_problem(hr, 403, NULL, "%s", why[t]);
}

static void
devapi_trusted(enum devices_trust t, void *arg)
{
	struct devapi_call c = *(struct devapi_call *)arg;
	X509 *cert = http_peer_cert(c.hr);	/* NULL once the client left */

	free(arg);
	if (t != DEVICES_TRUST_OK)
		devapi_refuse(c.hr, t);
	else if (cert == NULL)
		devapi_no_cert(c.hr);
	else
		c.fn(c.hr, cert);
}

/* A resumed TLS session skips the handshake's revocation check, and a
 * connection outlives a device being disabled, so the certificate and its
 * device are looked up in the database on every request: any node's
 * change is seen at once, with no cache to invalidate (one indexed lookup
 * per request; the device routes need the database anyway). Certificates
 * of a client_ca issuer are not ours to look up and pass as verified. */
void
devapi_authorize(struct http_req *hr, devapi_handler fn)
{
	X509 *cert = http_peer_cert(hr);
	struct devapi_call *c;
	struct pki_ca *ca;
	char serial[CA_SERIAL_HEX];

	if (cert == NULL) {
		devapi_no_cert(hr);
		return;
	}
	if ((ca = pki_issuer_of(hr->srv->pki, cert)) == NULL) {
		fn(hr, cert);
		return;
	}
	if (pki_is_revoked(hr->srv->pki, cert)) {
		devapi_refuse(hr, DEVICES_TRUST_REVOKED);
		return;
	}
	c = xmalloc(sizeof(*c));
	c->hr = hr;
	c->fn = fn;
	ca_serial_hex(X509_get0_serialNumber(cert), serial);
	devices_cert_trust(hr->srv->db, ca->id, serial, devapi_trusted, c);
}

static void
devapi_whoami_reply(struct http_req *hr, X509 *cert)
{
	char subject[512], issuer[512];
	BIGNUM *bn;
	char *serial;
	yajl_gen g;

	if (ca_name_text(X509_get_subject_name(cert), subject, sizeof(subject)) == -1 ||
	    ca_name_text(X509_get_issuer_name(cert), issuer, sizeof(issuer)) == -1 ||
	    (bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL)) == NULL) {
		http_reply_problem(hr, 500, NULL, "cannot read the client certificate");
		return;
	}
	serial = BN_bn2hex(bn);
	BN_free(bn);
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_str(g, "subject", subject);
	json_kv_str(g, "issuer", issuer);
	json_kv_str(g, "serial", serial);
	yajl_gen_map_close(g);
	OPENSSL_free(serial);
	http_reply_json(hr, 200, g);
}

static void
devapi_whoami(struct http_req *hr)
{
	devapi_authorize(hr, devapi_whoami_reply);
}

const struct route devapi_routes[] = {
	{ "/device/v1/whoami", EVHTTP_REQ_GET, ROUTE_DEVICE, devapi_whoami, 0, NULL },
};
const size_t devapi_nroutes = sizeof(devapi_routes) / sizeof(devapi_routes[0]);

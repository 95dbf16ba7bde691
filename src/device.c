/* device.c: /device/v1/ handlers. Identity comes only from a verified
 * client certificate, never from anything the request body says. */
#include "device.h"

#include <stdio.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/bn.h>
#include <openssl/x509.h>

#include "ca.h"
#include "http.h"
#include "json.h"

static void
device_whoami(struct http_req *hr)
{
	X509 *cert = http_peer_cert(hr);
	char subject[512], issuer[512];
	BIGNUM *bn;
	char *serial;
	yajl_gen g;

	if (cert == NULL) {
		http_reply_problem(hr, 401, NULL,
		    "a verified client certificate is required");
		return;
	}
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

const struct route device_routes[] = {
	{ "/device/v1/whoami", EVHTTP_REQ_GET, ROUTE_DEVICE, device_whoami, 0, NULL },
};
const size_t device_nroutes = sizeof(device_routes) / sizeof(device_routes[0]);

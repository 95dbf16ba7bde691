/* fuzz_est.c: what EST does with a request body before anything is signed:
 * base64 (with stray whitespace), DER PKCS#10, key policy, proof of
 * possession and the device ID. Must never crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char spki[32], *der;
	const unsigned char *p;
	char err[256], id[CA_DEVICE_ID];
	size_t len;
	X509_REQ *csr;
	EVP_PKEY *pub;

	if ((der = util_base64_decode((const char *)data, size, &len)) == NULL)
		return 0;
	p = der;
	csr = d2i_X509_REQ(NULL, &p, (long)len);
	if (csr != NULL && p == der + len && (pub = X509_REQ_get0_pubkey(csr)) != NULL &&
	    ca_key_acceptable(pub, err, sizeof(err)) == 0 &&
	    X509_REQ_verify(csr, pub) == 1 &&
	    ca_device_id_spki(X509_REQ_get_X509_PUBKEY(csr), id, spki) == 0 &&
	    id[CA_DEVICE_ID - 1] != '\0')
		abort();	/* the ID is always NUL-terminated */
	X509_REQ_free(csr);
	free(der);
	ERR_clear_error();
	return 0;
}

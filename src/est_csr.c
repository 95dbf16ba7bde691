/* est_csr.c: the EST request body parser. Everything in the body is
 * hostile until OpenSSL has parsed it and these checks pass; nothing here
 * signs, allocates beyond the CSR, or talks to anything. */
#include "est_csr.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "ca.h"
#include "util.h"

X509_REQ *
est_csr_parse(const unsigned char *body, size_t len, int *status, char *err,
    size_t errlen)
{
	size_t derlen = 0;
	const unsigned char *p;
	unsigned char *der;
	X509_REQ *csr = NULL;
	EVP_PKEY *pub;

	*status = 400;
	if (len > EST_CSR_MAX_BODY) {
		*status = 413;
		snprintf(err, errlen, "CSR body larger than %d bytes", EST_CSR_MAX_BODY);
		return NULL;
	}
	if (len == 0 || (der = util_base64_decode((const char *)body, len,
	    &derlen)) == NULL) {
		snprintf(err, errlen, "body is not valid base64");
		return NULL;
	}
	p = der;
	csr = d2i_X509_REQ(NULL, &p, (long)derlen);
	if (csr == NULL || p != der + derlen) {
		snprintf(err, errlen, "body is not a DER PKCS#10 request");
		goto fail;
	}
	if ((pub = X509_REQ_get0_pubkey(csr)) == NULL) {
		snprintf(err, errlen, "CSR has no usable public key");
		goto fail;
	}
	if (ca_key_acceptable(pub, err, errlen) == -1)
		goto fail;
	if (X509_REQ_verify(csr, pub) != 1) {
		snprintf(err, errlen, "CSR signature does not verify");
		goto fail;
	}
	free(der);
	ERR_clear_error();
	return csr;
fail:
	ERR_clear_error();
	X509_REQ_free(csr);
	free(der);
	return NULL;
}

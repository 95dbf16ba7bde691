/* fuzz_est.c: an EST request body through est_csr_parse, the function the
 * daemon's simpleenroll and simplereenroll run (base64 with stray
 * whitespace, DER PKCS#10 that parses whole, key policy, proof of
 * possession), then the device ID as the daemon derives it next. Must never
 * crash or leak; aborts when a result breaks est_csr.h's contract. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "ca.h"
#include "est_csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char spki[32];
	char err[256], id[CA_DEVICE_ID];
	X509_REQ *csr;
	int status = 0;

	memset(err, 'Z', sizeof(err));
	csr = est_csr_parse(data, size, &status, err, sizeof(err));
	if (ERR_peek_error() != 0)
		abort();	/* the error queue is left empty */
	if (csr == NULL) {
		/* A refusal is 400 or 413 with a one-line reason. */
		if ((status != 400 && status != 413) ||
		    memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' ||
		    strchr(err, '\n') != NULL)
			abort();
		if (status == 413 && size <= EST_CSR_MAX_BODY)
			abort();
		return 0;
	}
	/* Accepted: the proof of possession holds, and the ID is a string. */
	if (X509_REQ_verify(csr, X509_REQ_get0_pubkey(csr)) != 1)
		abort();
	memset(id, 'Z', sizeof(id));
	if (ca_device_id_spki(X509_REQ_get_X509_PUBKEY(csr), id, spki) == 0 &&
	    id[CA_DEVICE_ID - 1] != '\0')
		abort();
	X509_REQ_free(csr);
	ERR_clear_error();
	return 0;
}

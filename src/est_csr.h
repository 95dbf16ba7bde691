/* est_csr.h: an EST request body (RFC 8951: base64 of a DER PKCS#10, line
 * breaks and stray whitespace allowed) to a checked CSR. Pure: no HTTP, no
 * I/O, so fuzz/fuzz_est.c runs exactly what the daemon runs. */
#ifndef QL_EST_CSR_H
#define QL_EST_CSR_H

#include <stddef.h>

#include <openssl/x509.h>

#define EST_CSR_MAX_BODY	(64 * 1024)	/* a CSR is a few hundred bytes */

/* The CSR when the body is base64 of DER that parses whole, its key is
 * acceptable (ca_key_acceptable) and its self-signature (proof of
 * possession) verifies. Otherwise NULL with *status (400, or 413 for a body
 * over EST_CSR_MAX_BODY) and a one-line reason in err. The OpenSSL error
 * queue is left empty. Caller frees with X509_REQ_free. */
X509_REQ	*est_csr_parse(const unsigned char *body, size_t len, int *status,
		    char *err, size_t errlen) __attribute__((warn_unused_result));

#endif

/* tls.h: server TLS contexts. Policy lives here only: TLS 1.2 minimum,
 * AEAD suites only, client certificates requested but optional. */
#ifndef QL_TLS_H
#define QL_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* client_ca NULL or "": no client certificate is requested. */
SSL_CTX	*tls_ctx_new(const char *cert, const char *key, const char *client_ca,
	    char *err, size_t errlen);

#endif

/* tls.h: server TLS contexts. Policy lives here only: TLS 1.2 minimum,
 * AEAD suites only, client certificates requested but optional. */
#ifndef QL_TLS_H
#define QL_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* Client certificates are set up by pki_setup_client_tls(). */
SSL_CTX	*tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen);
/* quarklinkd -t: can this CA bundle be loaded? */
int	 tls_check_ca_file(const char *path, char *err, size_t errlen);

#endif

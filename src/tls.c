/* tls.c: build SSL_CTX objects from PEM files. Never logs key material. */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

/* TLS 1.2 suites: forward secret and AEAD only (TLS 1.3 suites all are). */
#define TLS_CIPHERS_12 \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static void
tls_err(char *err, size_t errlen, const char *what, const char *path)
{
	char buf[256] = "";
	unsigned long e, last = 0;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last != 0)
		ERR_error_string_n(last, buf, sizeof(buf));
	snprintf(err, errlen, "%s %s: %s", what, path, buf[0] ? buf : "failed");
}

SSL_CTX *
tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "quarklinkd";
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_err(err, errlen, "SSL_CTX_new", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* Send the chain the file holds instead of building one from the
	 * client-verify store on every handshake (clients pin the root). */
	SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
	if (SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12) != 1) {
		tls_err(err, errlen, "cipher list", "");
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_err(err, errlen, "cannot load certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		tls_err(err, errlen, "cannot load private key", key);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_err(err, errlen, "key does not match certificate", cert);
		goto fail;
	}
	/* Resumed sessions must keep the verified client identity. */
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

int
tls_check_ca_file(const char *path, char *err, size_t errlen)
{
	X509_STORE *st = X509_STORE_new();
	int ok = st != NULL && X509_STORE_load_file(st, path) == 1;

	if (!ok)
		tls_err(err, errlen, "cannot load client CA", path);
	X509_STORE_free(st);
	return ok ? 0 : -1;
}

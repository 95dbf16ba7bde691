/* p11.h: the only module that talks PKCS#11. Loads the module, opens the
 * token by label, logs in with the PIN from a private file, and keeps one
 * session per calling thread usable; generates and destroys keys. Signing
 * goes through OpenSSL with the EVP_PKEYs it loads (ca.c). Every function
 * but p11_get_stats calls the token: after start, only tok.c's workers
 * call them (see p11.c for what makes that safe). */
#ifndef QL_P11_H
#define QL_P11_H

#include <stddef.h>

#include <openssl/evp.h>

struct p11;

enum p11_key_type { P11_KEY_EC_P256, P11_KEY_RSA_3072 };

struct p11_settings {
	const char	*module;
	const char	*token_label;
	const char	*pin_file;
	const char	*softhsm2_conf;
	const char	*engine;	/* libp11's pkcs11.so */
};

struct p11	*p11_open(const struct p11_settings *, char *err, size_t errlen);
void		 p11_close(struct p11 *);
/* 0 when this thread's session is logged in; otherwise tries to reopen it
 * once and fills err with why it is not usable. One C_GetSessionInfo. */
int		 p11_check(struct p11 *, char *err, size_t errlen);
/* Close this thread's session (a worker that stops). */
void		 p11_thread_end(struct p11 *);

/* Generate a key pair on the token: sensitive, never extractable. */
int		 p11_generate_key(struct p11 *, const char *label,
		    enum p11_key_type, char *err, size_t errlen)
		    __attribute__((warn_unused_result));
int		 p11_has_key(struct p11 *, const char *label);
/* A fresh label "<prefix>-<8 hex digits>" for a key about to be made:
 * unique, since an earlier failed attempt may have left a key behind. */
int		 p11_label_new(const char *prefix, char *label, size_t len)
		    __attribute__((warn_unused_result));
/* Remove a key pair (private and public objects); 0 also when the label
 * names nothing. */
int		 p11_destroy_key(struct p11 *, const char *label, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

/* An AES-256 secret key on the token (sensitive, never extractable,
 * encrypt/decrypt only) to protect small secrets such as image content
 * keys; p11_destroy_key removes it. */
int		 p11_generate_secret(struct p11 *, const char *label, char *err,
		    size_t errlen) __attribute__((warn_unused_result));
/* AES-256-GCM with the token's secret key label, 16-byte tag, in one
 * C_Encrypt/C_Decrypt: encrypt writes inlen + 16 bytes to out, decrypt
 * (in = ciphertext || tag) inlen - 16, and fails when the tag does not
 * match. Meant for a few dozen bytes. */
int		 p11_secret_gcm(struct p11 *, const char *label, int is_encrypt,
		    const unsigned char iv[12], const unsigned char *aad,
		    size_t aadlen, const unsigned char *in, size_t inlen,
		    unsigned char *out, char *err, size_t errlen)
		    __attribute__((warn_unused_result));

/* Token operations since start, for /metrics. Signatures are counted by
 * ca.c, which makes every one of them. */
struct p11_stats {
	unsigned long long	 keys_generated;
	unsigned long long	 keys_destroyed;
};
void		 p11_get_stats(const struct p11 *, struct p11_stats *);
/* EVP_PKEYs that refer to the token key (through libp11's engine): the
 * private one signs with OpenSSL's own functions, the key never leaves. */
EVP_PKEY	*p11_load_private(struct p11 *, const char *label, char *err,
		    size_t errlen);
EVP_PKEY	*p11_load_public(struct p11 *, const char *label, char *err,
		    size_t errlen);

#endif

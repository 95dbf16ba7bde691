/* agent_key.h: the device key, in a file or in a TPM 2.0. */
#ifndef QL_AGENT_KEY_H
#define QL_AGENT_KEY_H

#include <openssl/evp.h>

struct agent_conf;

#define AGENT_DEVICE_ID	33	/* 32 base32 characters and a NUL */

/* Providers for the key store (tpm2: the tpm2 provider preferred, the
 * random generator kept on the default provider). Once, before any key. */
int	 agent_key_init(const struct agent_conf *) __attribute__((warn_unused_result));
/* Unload the providers (after every key is freed). */
void	 agent_key_cleanup(void);
/* The device key; created when missing and create is set. NULL if absent
 * (errno ENOENT) or unusable (message printed). */
EVP_PKEY *agent_key_load(const struct agent_conf *, int create);
/* The device ID of a public key: base32 (lowercase, no padding) of the
 * first 20 bytes of SHA-256 over its DER SubjectPublicKeyInfo. */
int	 agent_key_device_id(EVP_PKEY *, char out[AGENT_DEVICE_ID])
	    __attribute__((warn_unused_result));
int	 agent_key_device_id_x509(void *x509, char out[AGENT_DEVICE_ID])
	    __attribute__((warn_unused_result));

#endif

/* attest_soft.h: a TPM's half of attestation in software, for the tests,
 * the fuzz seeds and bench/attest-load: TPM2B_PUBLIC of OpenSSL keys,
 * TPMS_ATTEST signed as a TPM signs it, and ActivateCredential written
 * independently of src/attest_crypto.c (OpenSSL's KBKDF rather than its
 * KDFa loop), so a shared mistake cannot make both sides agree. */
#ifndef QL_ATTEST_SOFT_H
#define QL_ATTEST_SOFT_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <tss2_mu.h>
#pragma GCC diagnostic pop

#include "attest_crypto.h"

/* The TPMT_PUBLIC a TPM would report for key in role (TCG EK template
 * attributes, an AK, an identity key). */
int	attest_soft_tpmt(EVP_PKEY *key, enum attest_role role, TPMT_PUBLIC *out);
/* TPM2B_PUBLIC (with size) of p into buf; its length, 0 on error. */
size_t	attest_soft_public(const TPMT_PUBLIC *p, unsigned char *buf, size_t max);
/* TPM Name of a marshalled TPM2B_PUBLIC: SHA-256 name, 34 bytes. */
void	attest_soft_name(const unsigned char *pub, size_t len, unsigned char name[34]);
/* TPMT_SIGNATURE by key over SHA-256(data): ECDSA or RSASSA. */
size_t	attest_soft_sign(EVP_PKEY *key, const unsigned char *data, size_t len,
	    unsigned char *sig, size_t max);
/* TPM2B_ATTEST of a, and its TPMT_SIGNATURE by ak. */
size_t	attest_soft_attest(const TPMS_ATTEST *a, unsigned char *buf, size_t max);
/* A TPMS_ATTEST of Certify (type 0x8017) of name with extraData nonce;
 * of Quote (0x8018) over the SHA-256 PCRs of mask, with digest. */
void	attest_soft_certify_info(TPMS_ATTEST *a, const unsigned char *nonce, size_t nonce_len,
	    const unsigned char *name, size_t name_len);
void	attest_soft_quote_info(TPMS_ATTEST *a, const unsigned char *nonce, size_t nonce_len,
	    unsigned mask, const unsigned char digest[32]);
/* TPM2_ActivateCredential with the EK's private key: 0 and the secret,
 * or -1 when the blob does not open (HMAC, sizes, decryption). */
int	attest_soft_activate(EVP_PKEY *ek, const unsigned char *ak_name, size_t ak_name_len,
	    const unsigned char *blob, size_t blob_len, const unsigned char *enc, size_t enc_len,
	    unsigned char *secret, size_t *secret_len);

/* A certificate for key: a CA (issuer NULL, self-signed) or, signed by
 * issuer, an EK certificate (keyEncipherment) with serial, plus an
 * extension of OID critical_oid marked critical (may be NULL). NULL on
 * error. */
X509	*attest_soft_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
	    EVP_PKEY *issuer_key, long serial, const char *critical_oid);

#endif

/* attest_crypto.h: the server's half of TPM 2.0 attestation, in software:
 * TPM structures are decoded with libtss2-mu (Debian's libtss2-mu0, the
 * TSS's own marshalling code, rather than a parser of ours), everything
 * cryptographic is OpenSSL. No I/O, no database, no TPM: the device's TPM
 * does its half and sends the results (see quarklink-attest(7)).
 *
 * Every check returns 0 on success and -1 on refusal with *why set to a
 * static one-line reason fit for a 4xx reply. */
#ifndef QL_ATTEST_CRYPTO_H
#define QL_ATTEST_CRYPTO_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define ATTEST_NONCE_LEN	32
#define ATTEST_SECRET_LEN	32
#define ATTEST_NAME_MAX		(2 + 64)	/* nameAlg || digest */
#define ATTEST_PCR_MAX		24

/* A TPM2B_PUBLIC as received: its public key and its TPM Name. */
struct attest_key {
	EVP_PKEY	*pkey;
	unsigned	 attributes;	/* TPMA_OBJECT */
	unsigned	 type;		/* TPM2_ALG_RSA / TPM2_ALG_ECC */
	unsigned char	 name[ATTEST_NAME_MAX];
	size_t		 name_len;
	unsigned char	 spki_sha256[32];	/* of pkey's SubjectPublicKeyInfo */
	void		*tpm;		/* the decoded TPMT_PUBLIC (private) */
};

enum attest_role {
	ATTEST_EK,		/* RSA 2048 storage key, TCG default EK template */
	ATTEST_AK,		/* restricted signing, fixedTPM, fixedParent,
				 * sensitiveDataOrigin; ECDSA P-256 or RSASSA 2048 */
	ATTEST_IDENTITY,	/* unrestricted signing, fixedTPM, fixedParent,
				 * sensitiveDataOrigin; the CSR's key */
};

/* Decode a TPM2B_PUBLIC (size prefix included) and check it fits role. */
int	attest_key_parse(const unsigned char *, size_t, enum attest_role,
	    struct attest_key *, const char **why);
void	attest_key_clear(struct attest_key *);

/* The EK certificate names the same public key as ek. */
int	attest_ek_matches(X509 *ek_cert, const struct attest_key *ek,
	    const char **why);
/* The EK certificate chains (through chain, may be NULL) to one of the
 * manufacturer CAs in trusted. EK certificates carry TCG extensions
 * OpenSSL does not know; those are accepted, nothing else is relaxed. */
int	attest_ek_verify(X509_STORE *trusted, X509 *ek_cert,
	    STACK_OF(X509) *chain, const char **why);

/* TPM2_MakeCredential in software: blob is a TPM2B_ID_OBJECT, enc a
 * TPM2B_ENCRYPTED_SECRET, both size-prefixed, malloc'ed, the caller's. */
int	attest_make_credential(const struct attest_key *ek,
	    const unsigned char *ak_name, size_t ak_name_len,
	    const unsigned char secret[ATTEST_SECRET_LEN],
	    unsigned char **blob, size_t *blob_len,
	    unsigned char **enc, size_t *enc_len, const char **why);

/* A TPM2B_ATTEST of TPM2_Certify signed (TPMT_SIGNATURE) by ak, carrying
 * nonce as extraData, certifying the key whose Name is certified's. */
int	attest_certify_verify(const struct attest_key *ak,
	    const unsigned char *attest, size_t attest_len,
	    const unsigned char *sig, size_t sig_len,
	    const unsigned char nonce[ATTEST_NONCE_LEN],
	    const struct attest_key *certified, const char **why);

/* The PCR values a quote is checked against, in the SHA-256 bank. */
struct attest_pcrs {
	unsigned	 mask;		/* bit n: PCR n */
	unsigned char	 value[ATTEST_PCR_MAX][32];
};

/* A TPM2B_ATTEST of TPM2_Quote signed by ak, carrying nonce, selecting
 * exactly the SHA-256 PCRs of asked_mask, whose pcrDigest is the SHA-256 of
 * the values of pcrs (ascending PCR order) and pcrs->mask == asked_mask. */
int	attest_quote_verify(const struct attest_key *ak,
	    const unsigned char *attest, size_t attest_len,
	    const unsigned char *sig, size_t sig_len,
	    const unsigned char nonce[ATTEST_NONCE_LEN], unsigned asked_mask,
	    const struct attest_pcrs *pcrs, const char **why);

#endif

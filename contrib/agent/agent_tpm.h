/* agent_tpm.h: the TPM 2.0 work of attestation, through libtss2-esys
 * directly (the tpm2-openssl provider signs and agrees keys; it cannot
 * create an EK, activate a credential, certify or quote). Keys live at
 * persistent handles (configurable) and are made once, when absent; every
 * transient object and session is flushed before a function returns.
 * Everything handed out is in TPM wire format as Tss2_MU_*_Marshal writes
 * it, TPM2B types with their size prefix (the wire contract of
 * quarklink-attest(7)). */
#ifndef QL_AGENT_TPM_H
#define QL_AGENT_TPM_H

#include <stddef.h>

struct agent_conf;
struct agent_tpm;

#define AGENT_TPM_NONCE		32
#define AGENT_TPM_SECRET	32
#define AGENT_TPM_PCRS		24	/* PCRs 0..23 of the SHA-256 bank */

/* Bytes handed out: malloc'ed, the caller frees with agent_tpm_buf_free. */
struct agent_tpm_buf {
	unsigned char	*p;
	size_t		 len;
};

/* What the device sends to open an attestation session. */
struct agent_tpm_ids {
	struct agent_tpm_buf	 ek_public;	/* TPM2B_PUBLIC */
	struct agent_tpm_buf	 ek_cert;	/* DER, from NV 0x01c00002 */
	struct agent_tpm_buf	 ak_public;	/* TPM2B_PUBLIC */
	struct agent_tpm_buf	 key_public;	/* TPM2B_PUBLIC of the identity key */
};

struct agent_tpm_quote {
	struct agent_tpm_buf	 quote;		/* TPM2B_ATTEST */
	struct agent_tpm_buf	 signature;	/* TPMT_SIGNATURE */
	unsigned		 mask;		/* the PCRs quoted */
	unsigned char		 value[AGENT_TPM_PCRS][32];
};

/* Connect through the tpm2_tcti setting (default device:/dev/tpmrm0).
 * NULL with the reason printed. */
struct agent_tpm *agent_tpm_open(const struct agent_conf *);
void	agent_tpm_close(struct agent_tpm *);

/* The identity key's persistent handle from tpm2_key ("handle:0x81......",
 * empty: 0x81000002). -1 with the reason printed if tpm2_key names no handle. */
int	agent_tpm_identity_handle(const struct agent_conf *, unsigned *handle)
	    __attribute__((warn_unused_result));

/* Make what is missing (EK, AK under the EK, SRK, identity key under the
 * SRK, each persisted at its handle) and read the public parts and the EK
 * certificate. 0, or -1 with the reason printed. */
int	agent_tpm_ensure(struct agent_tpm *, struct agent_tpm_ids *)
	    __attribute__((warn_unused_result));
void	agent_tpm_ids_free(struct agent_tpm_ids *);

/* TPM2_ActivateCredential with the AK and the EK: the 32-byte secret the
 * server sealed to them. blob is a TPM2B_ID_OBJECT, enc a
 * TPM2B_ENCRYPTED_SECRET (size prefixes included). */
int	agent_tpm_activate(struct agent_tpm *, const unsigned char *blob, size_t blob_len,
	    const unsigned char *enc, size_t enc_len, unsigned char secret[AGENT_TPM_SECRET])
	    __attribute__((warn_unused_result));
/* TPM2_Certify(identity key, AK, qualifyingData = nonce). */
int	agent_tpm_certify(struct agent_tpm *, const unsigned char *nonce, size_t nonce_len,
	    struct agent_tpm_buf *info, struct agent_tpm_buf *sig)
	    __attribute__((warn_unused_result));
/* PCR_Read and TPM2_Quote(AK, nonce) over the SHA-256 PCRs of mask; the
 * values read are those the quote's pcrDigest covers (read again if a PCR
 * changed in between). */
int	agent_tpm_quote(struct agent_tpm *, const unsigned char *nonce, size_t nonce_len,
	    unsigned mask, struct agent_tpm_quote *)
	    __attribute__((warn_unused_result));
void	agent_tpm_quote_free(struct agent_tpm_quote *);

void	agent_tpm_buf_free(struct agent_tpm_buf *);

#endif

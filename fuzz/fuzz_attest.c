/* fuzz_attest.c: what a device sends for attestation through
 * src/attest_crypto.c: TPM2B_PUBLIC of each role, TPM2B_ATTEST of Certify
 * and Quote with their TPMT_SIGNATURE, MakeCredential to a parsed EK.
 * Input: one byte of mode, then fields each prefixed by a 2-byte
 * big-endian length (fuzz_attest_field); seeds in corpus/attest/ are made
 * by "attest_tool fuzzseeds DIR". Must never crash or leak; aborts when a
 * result breaks attest_crypto.h's contract (a refusal has a one-line
 * reason and leaves no key and no error queue; a key has its Name). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "attest_crypto.h"

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* libtss2-mu logs each malformed structure to stderr, as in the daemon
 * (main.c silences it the same way). */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	setenv("TSS2_LOG", "all+none", 0);
	return 0;
}

struct fuzz_attest_in {
	const uint8_t	*p;
	size_t		 left;
};

static const uint8_t *
fuzz_attest_field(struct fuzz_attest_in *in, size_t *len)
{
	const uint8_t *f;

	if (in->left < 2) {
		*len = 0;
		return in->p;
	}
	*len = (size_t)in->p[0] << 8 | in->p[1];
	in->p += 2;
	in->left -= 2;
	if (*len > in->left)
		*len = in->left;
	f = in->p;
	in->p += *len;
	in->left -= *len;
	return f;
}

static void
fuzz_attest_refusal(int rc, const char *why)
{
	if (rc != -1 || why == NULL || why[0] == '\0' || strchr(why, '\n') != NULL ||
	    ERR_peek_error() != 0)
		abort();
}

/* 0 and a key with its Name, or -1 and nothing. */
static int
fuzz_attest_key(const uint8_t *b, size_t len, enum attest_role role, struct attest_key *k)
{
	const char *why = NULL;
	int rc = attest_key_parse(b, len, role, k, &why);

	if (rc == 0) {
		if (k->pkey == NULL || k->tpm == NULL || k->name_len != 34 ||
		    ERR_peek_error() != 0)
			abort();
		return 0;
	}
	fuzz_attest_refusal(rc, why);
	if (k->pkey != NULL || k->tpm != NULL)
		abort();
	return -1;
}

static void
fuzz_attest_makecred(struct fuzz_attest_in *in)
{
	static const unsigned char secret[ATTEST_SECRET_LEN] = { 1, 2, 3 };
	struct attest_key ek;
	const uint8_t *b, *name;
	unsigned char *blob, *enc;
	size_t len, name_len, blob_len, enc_len;
	const char *why = NULL;
	int rc;

	b = fuzz_attest_field(in, &len);
	name = fuzz_attest_field(in, &name_len);
	if (fuzz_attest_key(b, len, ATTEST_EK, &ek) == -1)
		return;
	rc = attest_make_credential(&ek, name, name_len, secret, &blob, &blob_len, &enc,
	    &enc_len, &why);
	if (rc == 0) {
		if (blob_len != 2 + 2 + 32 + 2 + ATTEST_SECRET_LEN || enc_len != 2 + 256)
			abort();
		free(blob);
		free(enc);
	} else {
		fuzz_attest_refusal(rc, why);
		if (blob != NULL || enc != NULL)
			abort();
	}
	attest_key_clear(&ek);
}

static void
fuzz_attest_certify(struct fuzz_attest_in *in)
{
	unsigned char nonce[ATTEST_NONCE_LEN];
	struct attest_key ak, key;
	const uint8_t *akb, *kb, *a, *s, *n;
	size_t ak_len, k_len, a_len, s_len, n_len;
	const char *why = NULL;
	int rc;

	akb = fuzz_attest_field(in, &ak_len);
	kb = fuzz_attest_field(in, &k_len);
	a = fuzz_attest_field(in, &a_len);
	s = fuzz_attest_field(in, &s_len);
	n = fuzz_attest_field(in, &n_len);
	memset(nonce, 0, sizeof(nonce));
	memcpy(nonce, n, n_len < sizeof(nonce) ? n_len : sizeof(nonce));
	if (fuzz_attest_key(akb, ak_len, ATTEST_AK, &ak) == -1)
		return;
	if (fuzz_attest_key(kb, k_len, ATTEST_IDENTITY, &key) == 0) {
		rc = attest_certify_verify(&ak, a, a_len, s, s_len, nonce, &key, &why);
		if (rc != 0)
			fuzz_attest_refusal(rc, why);
		attest_key_clear(&key);
	}
	attest_key_clear(&ak);
}

static void
fuzz_attest_quote(struct fuzz_attest_in *in)
{
	unsigned char nonce[ATTEST_NONCE_LEN];
	struct attest_pcrs pcrs;
	struct attest_key ak;
	const uint8_t *akb, *a, *s, *n, *v;
	size_t ak_len, a_len, s_len, n_len, v_len;
	unsigned mask;
	const char *why = NULL;
	int rc;

	akb = fuzz_attest_field(in, &ak_len);
	a = fuzz_attest_field(in, &a_len);
	s = fuzz_attest_field(in, &s_len);
	n = fuzz_attest_field(in, &n_len);
	v = fuzz_attest_field(in, &v_len);	/* 3 bytes of mask, then values */
	memset(nonce, 0, sizeof(nonce));
	memcpy(nonce, n, n_len < sizeof(nonce) ? n_len : sizeof(nonce));
	memset(&pcrs, 0, sizeof(pcrs));
	mask = v_len >= 3 ? (unsigned)v[0] | (unsigned)v[1] << 8 | (unsigned)v[2] << 16 : 0;
	pcrs.mask = mask;
	if (v_len > 3)
		memcpy(pcrs.value, v + 3, v_len - 3 < sizeof(pcrs.value) ? v_len - 3 :
		    sizeof(pcrs.value));
	if (fuzz_attest_key(akb, ak_len, ATTEST_AK, &ak) == -1)
		return;
	rc = attest_quote_verify(&ak, a, a_len, s, s_len, nonce, mask, &pcrs, &why);
	if (rc != 0)
		fuzz_attest_refusal(rc, why);
	attest_key_clear(&ak);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_attest_in in;
	struct attest_key k;
	const uint8_t *b;
	size_t len;

	if (size < 1)
		return 0;
	in.p = data + 1;
	in.left = size - 1;
	switch (data[0] % 6) {
	case 0:
	case 1:
	case 2:
		b = fuzz_attest_field(&in, &len);
		if (fuzz_attest_key(b, len, (enum attest_role)(data[0] % 3), &k) == 0)
			attest_key_clear(&k);
		break;
	case 3:
		fuzz_attest_makecred(&in);
		break;
	case 4:
		fuzz_attest_certify(&in);
		break;
	default:
		fuzz_attest_quote(&in);
		break;
	}
	return 0;
}

/* check_attest_crypto.c: the server's half of TPM attestation against a
 * TPM's half done in software (attest_soft.c): key roles and their
 * refusals, MakeCredential opened by an independent ActivateCredential,
 * certify and quote accepted when right and refused, with the reason, for
 * each way they can be wrong; EK certificate chain and match. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "attest_crypto.h"
#include "attest_soft.h"

#define N(a)	(sizeof(a) / sizeof((a)[0]))

/* Keys made once (unchecked fixture): RSA generation is slow. */
static EVP_PKEY *ek_key, *ek2_key, *ak_key, *ak2_key, *akrsa_key, *id_key, *id2_key, *p384_key;

static EVP_PKEY *
gen(const char *alg, const char *param)
{
	EVP_PKEY *k;

	if (strcmp(alg, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	ck_assert_ptr_nonnull(k);
	return k;
}

static void
keys_setup(void)
{
	ek_key = gen("RSA", NULL);
	ek2_key = gen("RSA", NULL);
	akrsa_key = gen("RSA", NULL);
	ak_key = gen("EC", "P-256");
	ak2_key = gen("EC", "P-256");
	id_key = gen("EC", "P-256");
	id2_key = gen("EC", "P-256");
	p384_key = gen("EC", "P-384");
}

static void
keys_teardown(void)
{
	EVP_PKEY_free(ek_key);
	EVP_PKEY_free(ek2_key);
	EVP_PKEY_free(akrsa_key);
	EVP_PKEY_free(ak_key);
	EVP_PKEY_free(ak2_key);
	EVP_PKEY_free(id_key);
	EVP_PKEY_free(id2_key);
	EVP_PKEY_free(p384_key);
}

/* A marshalled TPM2B_PUBLIC of key in role, after mutate (may be NULL). */
struct pub {
	unsigned char	 b[sizeof(TPM2B_PUBLIC) + 2];
	size_t		 len;
};

static void
make_pub(EVP_PKEY *key, enum attest_role role, void (*mutate)(TPMT_PUBLIC *), struct pub *out)
{
	TPMT_PUBLIC p;

	ck_assert_int_eq(attest_soft_tpmt(key, role, &p), 0);
	if (mutate != NULL)
		mutate(&p);
	out->len = attest_soft_public(&p, out->b, sizeof(out->b));
	ck_assert_uint_gt(out->len, 0);
}

static void
parse_ok(EVP_PKEY *key, enum attest_role role, struct attest_key *k)
{
	struct pub p;
	const char *why = NULL;

	make_pub(key, role, NULL, &p);
	if (attest_key_parse(p.b, p.len, role, k, &why) != 0)
		ck_abort_msg("parse of a good key refused: %s", why);
}

/* ---------------------------------------------------------------- roles */

static void m_no_fixedtpm(TPMT_PUBLIC *p) { p->objectAttributes &= ~TPMA_OBJECT_FIXEDTPM; }
static void m_no_fixedparent(TPMT_PUBLIC *p) { p->objectAttributes &= ~TPMA_OBJECT_FIXEDPARENT; }
static void m_no_sdo(TPMT_PUBLIC *p) { p->objectAttributes &= ~TPMA_OBJECT_SENSITIVEDATAORIGIN; }
static void m_no_restricted(TPMT_PUBLIC *p) { p->objectAttributes &= ~TPMA_OBJECT_RESTRICTED; }
static void m_restricted(TPMT_PUBLIC *p) { p->objectAttributes |= TPMA_OBJECT_RESTRICTED; }
static void m_decrypt(TPMT_PUBLIC *p) { p->objectAttributes |= TPMA_OBJECT_DECRYPT; }
static void m_no_sign(TPMT_PUBLIC *p) { p->objectAttributes &= ~TPMA_OBJECT_SIGN_ENCRYPT; }
static void m_sign(TPMT_PUBLIC *p) { p->objectAttributes |= TPMA_OBJECT_SIGN_ENCRYPT; }
static void m_sha1_name(TPMT_PUBLIC *p) { p->nameAlg = TPM2_ALG_SHA1; }
static void m_ecdsa_sha1(TPMT_PUBLIC *p) { p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA1; }
static void m_ecc_null_scheme(TPMT_PUBLIC *p) { p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL; }
static void m_p384(TPMT_PUBLIC *p) { p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P384; }
static void m_aes256(TPMT_PUBLIC *p) { p->parameters.rsaDetail.symmetric.keyBits.aes = 256; }
static void m_rsa_pss(TPMT_PUBLIC *p) { p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSAPSS; }
static void m_bad_point(TPMT_PUBLIC *p) { p->unique.ecc.y.buffer[31] ^= 1; }
static void m_exp3(TPMT_PUBLIC *p) { p->parameters.rsaDetail.exponent = 3; }
static void m_even_n(TPMT_PUBLIC *p) { p->unique.rsa.buffer[255] &= 0xfe; }
static void m_short_n(TPMT_PUBLIC *p) { p->unique.rsa.buffer[0] = 0x7f; }

static const struct {
	EVP_PKEY		**key;
	enum attest_role	 tmpl;		/* the attributes made */
	enum attest_role	 role;		/* the role checked */
	void			(*mutate)(TPMT_PUBLIC *);
	const char		*want;		/* NULL: accepted */
} roles[] = {
	{ &ek_key, ATTEST_EK, ATTEST_EK, NULL, NULL },
	{ &ak_key, ATTEST_AK, ATTEST_AK, NULL, NULL },
	{ &akrsa_key, ATTEST_AK, ATTEST_AK, NULL, NULL },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, NULL, NULL },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_ecc_null_scheme, NULL },
	{ &akrsa_key, ATTEST_IDENTITY, ATTEST_IDENTITY, NULL, NULL },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_no_fixedtpm, "AK is not fixedTPM" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_no_fixedparent, "AK is not fixedParent" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_no_sdo, "AK is not sensitiveDataOrigin (its key was imported)" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_no_restricted, "AK is not a restricted key" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_decrypt, "AK is a decryption key" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_no_sign, "AK is not a signing key" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_sha1_name, "AK's name algorithm is not SHA-256" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_ecdsa_sha1, "AK's scheme is not ECDSA with SHA-256" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_ecc_null_scheme, "AK's scheme is not ECDSA with SHA-256" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_p384, "AK is not on the NIST P-256 curve" },
	{ &ak_key, ATTEST_AK, ATTEST_AK, m_bad_point, "AK's public key is not valid" },
	{ &akrsa_key, ATTEST_AK, ATTEST_AK, m_rsa_pss, "AK's scheme is not RSASSA with SHA-256" },
	{ &akrsa_key, ATTEST_AK, ATTEST_AK, m_exp3, "signing key has an unusual RSA exponent" },
	{ &akrsa_key, ATTEST_AK, ATTEST_AK, m_even_n, "AK's public key is not valid" },
	{ &ek_key, ATTEST_EK, ATTEST_EK, m_even_n, "EK's public key is not valid" },
	{ &ek_key, ATTEST_EK, ATTEST_EK, m_short_n, "EK's public key is not valid" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_no_fixedtpm, "identity key is not fixedTPM" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_no_fixedparent, "identity key is not fixedParent" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_no_sdo,
	    "identity key is not sensitiveDataOrigin (its key was imported)" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_restricted, "identity key is restricted" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_decrypt, "identity key is a decryption key" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_IDENTITY, m_no_sign, "identity key is not a signing key" },
	{ &ak_key, ATTEST_AK, ATTEST_IDENTITY, NULL, "identity key is restricted" },
	{ &id_key, ATTEST_IDENTITY, ATTEST_AK, NULL, "AK is not a restricted key" },
	{ &ek_key, ATTEST_EK, ATTEST_EK, m_aes256, "EK's symmetric algorithm is not AES-128-CFB" },
	{ &ek_key, ATTEST_EK, ATTEST_EK, m_sign, "EK is a signing key" },
	{ &ek_key, ATTEST_EK, ATTEST_EK, m_no_fixedtpm, "EK is not fixedTPM" },
	{ &ek_key, ATTEST_EK, ATTEST_EK, m_sha1_name, "EK's name algorithm is not SHA-256" },
	{ &ek_key, ATTEST_EK, ATTEST_AK, NULL, "AK is not a signing key" },
	{ &ak_key, ATTEST_AK, ATTEST_EK, NULL, "EK is not a decryption (storage) key" },
};

START_TEST(test_attest_key_roles_table)
{
	struct attest_key k;
	struct pub p;
	const char *why = NULL;
	int rc;

	make_pub(*roles[_i].key, roles[_i].tmpl, roles[_i].mutate, &p);
	rc = attest_key_parse(p.b, p.len, roles[_i].role, &k, &why);
	if (roles[_i].want == NULL) {
		if (rc != 0)
			ck_abort_msg("case %d refused: %s", _i, why);
		ck_assert_ptr_nonnull(k.pkey);
		attest_key_clear(&k);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_ptr_null(k.pkey);
		ck_assert_str_eq(why, roles[_i].want);
	}
}
END_TEST

START_TEST(test_attest_key_parse_malformed_refused)
{
	struct attest_key k;
	struct pub p;
	unsigned char b[sizeof(p.b) + 1];
	const char *why = NULL;

	make_pub(ak_key, ATTEST_AK, NULL, &p);
	ck_assert_int_eq(attest_key_parse(p.b, p.len - 1, ATTEST_AK, &k, &why), -1);
	ck_assert_str_eq(why, "AK public is not a TPM2B_PUBLIC");
	memcpy(b, p.b, p.len);
	b[p.len] = 0;	/* one byte after the structure */
	ck_assert_int_eq(attest_key_parse(b, p.len + 1, ATTEST_AK, &k, &why), -1);
	ck_assert_str_eq(why, "AK public is not a TPM2B_PUBLIC");
	b[1]--;		/* the size prefix one short of the structure */
	ck_assert_int_eq(attest_key_parse(b, p.len, ATTEST_AK, &k, &why), -1);
	ck_assert_int_eq(attest_key_parse(p.b, 1, ATTEST_EK, &k, &why), -1);
	ck_assert_str_eq(why, "EK public is not a TPM2B_PUBLIC");
	ck_assert_int_eq(attest_key_parse(NULL, 0, ATTEST_IDENTITY, &k, &why), -1);
	ck_assert_str_eq(why, "identity key public is not a TPM2B_PUBLIC");
}
END_TEST

START_TEST(test_attest_key_name_and_spki)
{
	struct attest_key k;
	struct pub p;
	unsigned char want[34], spki[32], *der = NULL;
	const char *why;
	int len;

	make_pub(ak_key, ATTEST_AK, NULL, &p);
	ck_assert_int_eq(attest_key_parse(p.b, p.len, ATTEST_AK, &k, &why), 0);
	attest_soft_name(p.b, p.len, want);
	ck_assert_uint_eq(k.name_len, 34);
	ck_assert_mem_eq(k.name, want, 34);
	len = i2d_PUBKEY(ak_key, &der);
	ck_assert_int_gt(len, 0);
	SHA256(der, (size_t)len, spki);
	OPENSSL_free(der);
	ck_assert_mem_eq(k.spki_sha256, spki, 32);
	ck_assert_int_eq(EVP_PKEY_eq(k.pkey, ak_key), 1);
	ck_assert_uint_eq(k.type, TPM2_ALG_ECC);
	attest_key_clear(&k);
}
END_TEST

/* ---------------------------------------------------------------- MakeCredential */

START_TEST(test_attest_make_credential_activates)
{
	struct attest_key ek, ek2, ak, ak2;
	unsigned char secret[ATTEST_SECRET_LEN], got[64], *blob, *enc;
	size_t blob_len, enc_len, got_len;
	const char *why;

	parse_ok(ek_key, ATTEST_EK, &ek);
	parse_ok(ek2_key, ATTEST_EK, &ek2);
	parse_ok(ak_key, ATTEST_AK, &ak);
	parse_ok(ak2_key, ATTEST_AK, &ak2);
	ck_assert_int_eq(RAND_bytes(secret, sizeof(secret)), 1);
	ck_assert_int_eq(attest_make_credential(&ek, ak.name, ak.name_len, secret, &blob,
	    &blob_len, &enc, &enc_len, &why), 0);
	/* size || TPM2B_DIGEST(HMAC) || encIdentity; size || RSA 2048 block */
	ck_assert_uint_eq(blob_len, 2 + 2 + 32 + 2 + 32);
	ck_assert_uint_eq(enc_len, 2 + 256);
	ck_assert_int_eq(attest_soft_activate(ek_key, ak.name, ak.name_len, blob, blob_len,
	    enc, enc_len, got, &got_len), 0);
	ck_assert_uint_eq(got_len, sizeof(secret));
	ck_assert_mem_eq(got, secret, sizeof(secret));
	/* Bound to the AK's Name and to the EK. */
	ck_assert_int_eq(attest_soft_activate(ek_key, ak2.name, ak2.name_len, blob, blob_len,
	    enc, enc_len, got, &got_len), -1);
	ck_assert_int_eq(attest_soft_activate(ek2_key, ak.name, ak.name_len, blob, blob_len,
	    enc, enc_len, got, &got_len), -1);
	blob[blob_len - 1] ^= 1;
	ck_assert_int_eq(attest_soft_activate(ek_key, ak.name, ak.name_len, blob, blob_len,
	    enc, enc_len, got, &got_len), -1);
	free(blob);
	free(enc);
	/* Refusals: no RSA EK, no SHA-256 Name. */
	ck_assert_int_eq(attest_make_credential(&ak, ak.name, ak.name_len, secret, &blob,
	    &blob_len, &enc, &enc_len, &why), -1);
	ck_assert_str_eq(why, "MakeCredential needs an RSA EK");
	ck_assert_ptr_null(blob);
	ck_assert_int_eq(attest_make_credential(&ek, ak.name, 20, secret, &blob,
	    &blob_len, &enc, &enc_len, &why), -1);
	ck_assert_str_eq(why, "AK name is not a SHA-256 TPM Name");
	attest_key_clear(&ek);
	attest_key_clear(&ek2);
	attest_key_clear(&ak);
	attest_key_clear(&ak2);
}
END_TEST

/* ---------------------------------------------------------------- Certify */

enum tamper {
	T_NONE, T_NONCE, T_NAME, T_OTHER_AK, T_TYPE, T_SIGBYTE, T_MAGIC, T_TRAILING,
	T_MASK, T_PCRS_MASK, T_DIGEST, T_TWO_BANKS, T_SHA1_BANK, T_SHORT_NONCE, T_RSA_AK,
	T_SIG_SCHEME,
};

struct signed_attest {
	unsigned char	 a[sizeof(TPM2B_ATTEST) + 1];
	size_t		 a_len;
	unsigned char	 s[sizeof(TPMT_SIGNATURE)];
	size_t		 s_len;
};

static void
sign_attest(const TPMS_ATTEST *info, EVP_PKEY *signer, struct signed_attest *out)
{
	out->a_len = attest_soft_attest(info, out->a, sizeof(out->a));
	ck_assert_uint_gt(out->a_len, 2);
	out->s_len = attest_soft_sign(signer, out->a + 2, out->a_len - 2, out->s, sizeof(out->s));
	ck_assert_uint_gt(out->s_len, 0);
}

static const struct {
	enum tamper	 t;
	const char	*want;
} certify_cases[] = {
	{ T_NONE, NULL },
	{ T_RSA_AK, NULL },
	{ T_NONCE, "attestation does not carry this challenge's nonce" },
	{ T_SHORT_NONCE, "attestation does not carry this challenge's nonce" },
	{ T_NAME, "certification is not of this key (its Name differs)" },
	{ T_OTHER_AK, "signature does not verify with the AK" },
	{ T_TYPE, "attestation is not a TPM2_Certify result" },
	{ T_SIGBYTE, "signature does not verify with the AK" },
	{ T_MAGIC, "attestation was not generated by a TPM (magic)" },
	{ T_TRAILING, "attestation is not a TPM2B_ATTEST" },
	{ T_SIG_SCHEME, "signature is not ECDSA with SHA-256, the AK's scheme" },
};

START_TEST(test_attest_certify_table)
{
	struct attest_key ak, id, other;
	unsigned char nonce[ATTEST_NONCE_LEN], wrong[ATTEST_NONCE_LEN];
	struct signed_attest sa;
	TPMS_ATTEST info;
	EVP_PKEY *signer;
	enum tamper t = certify_cases[_i].t;
	const struct attest_key *verifier = &ak, *certified = &id;
	const unsigned char *check_nonce = nonce;
	const char *why = NULL;
	int rc;

	parse_ok(t == T_RSA_AK ? akrsa_key : ak_key, ATTEST_AK, &ak);
	parse_ok(id_key, ATTEST_IDENTITY, &id);
	parse_ok(t == T_OTHER_AK ? ak2_key : id2_key, t == T_OTHER_AK ? ATTEST_AK : ATTEST_IDENTITY,
	    &other);
	signer = t == T_RSA_AK ? akrsa_key : ak_key;
	RAND_bytes(nonce, sizeof(nonce));
	memcpy(wrong, nonce, sizeof(nonce));
	wrong[7] ^= 0x40;
	attest_soft_certify_info(&info, nonce, t == T_SHORT_NONCE ? 16 : sizeof(nonce),
	    id.name, id.name_len);
	if (t == T_TYPE)
		attest_soft_quote_info(&info, nonce, sizeof(nonce), 0xff, id.name + 2);
	if (t == T_MAGIC)
		info.magic ^= 1;
	sign_attest(&info, signer, &sa);
	if (t == T_NONCE)
		check_nonce = wrong;
	if (t == T_NAME)
		certified = &other;
	if (t == T_OTHER_AK)
		verifier = &other;
	if (t == T_SIGBYTE)
		sa.s[sa.s_len - 3] ^= 0x01;
	if (t == T_TRAILING)
		sa.a[sa.a_len++] = 0;
	if (t == T_SIG_SCHEME) {
		sa.s[0] = (unsigned char)(TPM2_ALG_SM2 >> 8);
		sa.s[1] = (unsigned char)(TPM2_ALG_SM2 & 0xff);
	}
	rc = attest_certify_verify(verifier, sa.a, sa.a_len, sa.s, sa.s_len, check_nonce,
	    certified, &why);
	if (certify_cases[_i].want == NULL) {
		if (rc != 0)
			ck_abort_msg("case %d refused: %s", _i, why);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(why, certify_cases[_i].want);
	}
	attest_key_clear(&ak);
	attest_key_clear(&id);
	attest_key_clear(&other);
}
END_TEST

/* ---------------------------------------------------------------- Quote */

static const struct {
	enum tamper	 t;
	const char	*want;
} quote_cases[] = {
	{ T_NONE, NULL },
	{ T_RSA_AK, NULL },
	{ T_NONCE, "attestation does not carry this challenge's nonce" },
	{ T_OTHER_AK, "signature does not verify with the AK" },
	{ T_TYPE, "attestation is not a TPM2_Quote result" },
	{ T_SIGBYTE, "signature does not verify with the AK" },
	{ T_MASK, "quote is over other PCRs than asked" },
	{ T_PCRS_MASK, "PCR values given are not those of the PCRs asked" },
	{ T_DIGEST, "PCR values do not hash to the quote's pcrDigest" },
	{ T_TWO_BANKS, "quote does not select exactly one PCR bank" },
	{ T_SHA1_BANK, "quote is not over the SHA-256 PCR bank" },
};

START_TEST(test_attest_quote_table)
{
	struct attest_key ak, other;
	struct attest_pcrs pcrs;
	struct signed_attest sa;
	unsigned char nonce[ATTEST_NONCE_LEN], digest[32];
	TPMS_ATTEST info;
	EVP_MD_CTX *md;
	enum tamper t = quote_cases[_i].t;
	unsigned mask = 0xff, asked = 0xff, i;
	const struct attest_key *verifier = &ak;
	const char *why = NULL;
	int rc;

	parse_ok(t == T_RSA_AK ? akrsa_key : ak_key, ATTEST_AK, &ak);
	parse_ok(ak2_key, ATTEST_AK, &other);
	RAND_bytes(nonce, sizeof(nonce));
	memset(&pcrs, 0, sizeof(pcrs));
	pcrs.mask = mask;
	for (i = 0; i < 8; i++)
		memset(pcrs.value[i], (int)(0x10 + i), 32);
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (i = 0; i < 8; i++)
		EVP_DigestUpdate(md, pcrs.value[i], 32);
	EVP_DigestFinal_ex(md, digest, NULL);
	EVP_MD_CTX_free(md);
	attest_soft_quote_info(&info, nonce, sizeof(nonce), mask, digest);
	if (t == T_TYPE)
		attest_soft_certify_info(&info, nonce, sizeof(nonce), digest, 32);
	if (t == T_TWO_BANKS) {
		info.attested.quote.pcrSelect.count = 2;
		info.attested.quote.pcrSelect.pcrSelections[1] =
		    info.attested.quote.pcrSelect.pcrSelections[0];
		info.attested.quote.pcrSelect.pcrSelections[1].hash = TPM2_ALG_SHA1;
	}
	if (t == T_SHA1_BANK)
		info.attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA1;
	sign_attest(&info, t == T_RSA_AK ? akrsa_key : ak_key, &sa);
	if (t == T_NONCE)
		nonce[0] ^= 1;
	if (t == T_OTHER_AK)
		verifier = &other;
	if (t == T_SIGBYTE)
		sa.s[sa.s_len - 1] ^= 0x80;
	if (t == T_MASK)
		asked = 0x7f;
	if (t == T_PCRS_MASK)
		pcrs.mask = 0x1ff;
	if (t == T_DIGEST)
		pcrs.value[3][5] ^= 1;
	rc = attest_quote_verify(verifier, sa.a, sa.a_len, sa.s, sa.s_len, nonce, asked,
	    &pcrs, &why);
	if (quote_cases[_i].want == NULL) {
		if (rc != 0)
			ck_abort_msg("case %d refused: %s", _i, why);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(why, quote_cases[_i].want);
	}
	attest_key_clear(&ak);
	attest_key_clear(&other);
}
END_TEST

/* ---------------------------------------------------------------- EK certificate */

START_TEST(test_attest_ek_cert_chain_and_match)
{
	EVP_PKEY *ca_key = gen("EC", "P-256"), *ca2_key = gen("EC", "P-256");
	X509 *ca = attest_soft_cert(ca_key, "maker root", NULL, ca_key, 1, NULL);
	X509 *ca2 = attest_soft_cert(ca2_key, "other maker", NULL, ca2_key, 1, NULL);
	/* 2.23.133.2.16, TCG's tpmSpecification, marked critical */
	X509 *ek = attest_soft_cert(ek_key, "ek", ca, ca_key, 2, "2.23.133.2.16");
	X509 *ek_unknown = attest_soft_cert(ek_key, "ek", ca, ca_key, 3, "1.3.6.1.4.1.99999.1");
	X509_STORE *store = X509_STORE_new(), *store2 = X509_STORE_new();
	struct attest_key ekk, ek2k;

	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(ca2);
	ck_assert_ptr_nonnull(ek);
	ck_assert_ptr_nonnull(ek_unknown);
	const char *why = NULL;

	X509_STORE_add_cert(store, ca);
	X509_STORE_add_cert(store2, ca2);
	if (attest_ek_verify(store, ek, NULL, &why) != 0)
		ck_abort_msg("EK certificate refused: %s", why);
	ck_assert_int_eq(attest_ek_verify(store2, ek, NULL, &why), -1);
	ck_assert_str_eq(why, "EK certificate does not chain to a trusted TPM manufacturer CA");
	ck_assert_int_eq(attest_ek_verify(store, ek_unknown, NULL, &why), -1);
	ck_assert_str_eq(why, "EK certificate has an unknown critical extension");

	parse_ok(ek_key, ATTEST_EK, &ekk);
	parse_ok(ek2_key, ATTEST_EK, &ek2k);
	ck_assert_int_eq(attest_ek_matches(ek, &ekk, &why), 0);
	ck_assert_int_eq(attest_ek_matches(ek, &ek2k, &why), -1);
	ck_assert_str_eq(why, "EK certificate does not match EK public");
	attest_key_clear(&ekk);
	attest_key_clear(&ek2k);
	X509_STORE_free(store);
	X509_STORE_free(store2);
	X509_free(ek);
	X509_free(ek_unknown);
	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(ca2_key);
}
END_TEST

static Suite *
check_attest_crypto_suite(void)
{
	Suite *s = suite_create("attest_crypto");
	TCase *tc = tcase_create("attest_crypto");

	tcase_add_unchecked_fixture(tc, keys_setup, keys_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_attest_key_roles_table, 0, (int)N(roles));
	tcase_add_test(tc, test_attest_key_parse_malformed_refused);
	tcase_add_test(tc, test_attest_key_name_and_spki);
	tcase_add_test(tc, test_attest_make_credential_activates);
	tcase_add_loop_test(tc, test_attest_certify_table, 0, (int)N(certify_cases));
	tcase_add_loop_test(tc, test_attest_quote_table, 0, (int)N(quote_cases));
	tcase_add_test(tc, test_attest_ek_cert_chain_and_match);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_attest_crypto_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

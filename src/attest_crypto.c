/* attest_crypto.c: the server's software half of TPM 2.0 attestation.
 * TPM structures come in through libtss2-mu's unmarshalling and nothing
 * else; keys, signatures, RSA-OAEP, HMAC and AES are OpenSSL's. Pure
 * functions of their arguments: no globals, no I/O, no logging (the caller
 * logs the reason once). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* tss2_mu.h declares Marshal functions of a structure tss2 itself marks
 * deprecated; we use none of them. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <tss2_mu.h>
#pragma GCC diagnostic pop

#include "attest_crypto.h"

#define ATTEST_RSA_BYTES	256	/* RSA 2048 */
#define ATTEST_P256_BYTES	32
#define ATTEST_AES_BYTES	16	/* AES-128 */

/* Every attribute a role cares about, set or clear, with its refusal.
 * Checked in this order, so a key missing several is refused for the
 * first one listed. */
struct attest_attr_rule {
	enum attest_role	 role;
	TPMA_OBJECT		 bit;
	int			 must_be_set;
	const char		*why;
};

static const struct attest_attr_rule attest_attr_rules[] = {
	{ ATTEST_EK, TPMA_OBJECT_RESTRICTED, 1, "EK is not a restricted key" },
	{ ATTEST_EK, TPMA_OBJECT_DECRYPT, 1, "EK is not a decryption (storage) key" },
	{ ATTEST_EK, TPMA_OBJECT_SIGN_ENCRYPT, 0, "EK is a signing key" },
	{ ATTEST_EK, TPMA_OBJECT_FIXEDTPM, 1, "EK is not fixedTPM" },
	{ ATTEST_EK, TPMA_OBJECT_FIXEDPARENT, 1, "EK is not fixedParent" },
	{ ATTEST_AK, TPMA_OBJECT_RESTRICTED, 1, "AK is not a restricted key" },
	{ ATTEST_AK, TPMA_OBJECT_SIGN_ENCRYPT, 1, "AK is not a signing key" },
	{ ATTEST_AK, TPMA_OBJECT_DECRYPT, 0, "AK is a decryption key" },
	{ ATTEST_AK, TPMA_OBJECT_FIXEDTPM, 1, "AK is not fixedTPM" },
	{ ATTEST_AK, TPMA_OBJECT_FIXEDPARENT, 1, "AK is not fixedParent" },
	{ ATTEST_AK, TPMA_OBJECT_SENSITIVEDATAORIGIN, 1,
	    "AK is not sensitiveDataOrigin (its key was imported)" },
	{ ATTEST_IDENTITY, TPMA_OBJECT_SIGN_ENCRYPT, 1, "identity key is not a signing key" },
	{ ATTEST_IDENTITY, TPMA_OBJECT_RESTRICTED, 0, "identity key is restricted" },
	{ ATTEST_IDENTITY, TPMA_OBJECT_DECRYPT, 0, "identity key is a decryption key" },
	{ ATTEST_IDENTITY, TPMA_OBJECT_FIXEDTPM, 1, "identity key is not fixedTPM" },
	{ ATTEST_IDENTITY, TPMA_OBJECT_FIXEDPARENT, 1, "identity key is not fixedParent" },
	{ ATTEST_IDENTITY, TPMA_OBJECT_SENSITIVEDATAORIGIN, 1,
	    "identity key is not sensitiveDataOrigin (its key was imported)" },
};

static int
attest_fail(const char **why, const char *reason)
{
	*why = reason;
	ERR_clear_error();	/* the reason says it; leave no stale queue */
	return -1;
}

static int
attest_check_attributes(const TPMT_PUBLIC *p, enum attest_role role,
    const char **why)
{
	size_t i;
	int is_set;

	for (i = 0; i < sizeof(attest_attr_rules) / sizeof(attest_attr_rules[0]); i++) {
		if (attest_attr_rules[i].role != role)
			continue;
		is_set = (p->objectAttributes & attest_attr_rules[i].bit) != 0;
		if (is_set != attest_attr_rules[i].must_be_set)
			return attest_fail(why, attest_attr_rules[i].why);
	}
	return 0;
}

static int
attest_check_rsa_exponent(UINT32 e)
{
	return e == 0 || e == 65537;	/* 0 means the default, 2^16+1 */
}

/* The TCG default RSA EK template (EK Credential Profile 2.0, template
 * L-1): what MakeCredential derives its KDF and cipher from. */
static int
attest_check_ek(const TPMT_PUBLIC *p, const char **why)
{
	const TPMS_RSA_PARMS *r = &p->parameters.rsaDetail;

	if (p->type != TPM2_ALG_RSA)
		return attest_fail(why, "EK is not an RSA key (only RSA 2048 EKs are accepted)");
	if (r->keyBits != 2048 || p->unique.rsa.size != ATTEST_RSA_BYTES)
		return attest_fail(why, "EK is not an RSA 2048 key");
	if (!attest_check_rsa_exponent(r->exponent))
		return attest_fail(why, "EK has an unusual RSA exponent");
	if (r->symmetric.algorithm != TPM2_ALG_AES || r->symmetric.keyBits.aes != 128 ||
	    r->symmetric.mode.aes != TPM2_ALG_CFB)
		return attest_fail(why, "EK's symmetric algorithm is not AES-128-CFB");
	if (r->scheme.scheme != TPM2_ALG_NULL)
		return attest_fail(why, "EK has an asymmetric scheme (the EK template has none)");
	return 0;
}

/* scheme_ok: the signing scheme the role accepts for this key type. */
static int
attest_check_sign_scheme(const TPMT_PUBLIC *p, enum attest_role role,
    const char **why)
{
	TPMI_ALG_SIG_SCHEME s;
	TPMI_ALG_HASH h;

	if (p->type == TPM2_ALG_ECC) {
		s = p->parameters.eccDetail.scheme.scheme;
		h = p->parameters.eccDetail.scheme.details.anySig.hashAlg;
	} else {
		s = p->parameters.rsaDetail.scheme.scheme;
		h = p->parameters.rsaDetail.scheme.details.anySig.hashAlg;
	}
	/* An AK is restricted: the TPM signs only with its own scheme, so it
	 * must be the one we verify. An identity key signs the CSR through
	 * OpenSSL, which picks the scheme per signature. */
	if (role == ATTEST_IDENTITY && s == TPM2_ALG_NULL)
		return 0;
	if (p->type == TPM2_ALG_ECC && s == TPM2_ALG_ECDSA && h == TPM2_ALG_SHA256)
		return 0;
	if (p->type == TPM2_ALG_RSA && s == TPM2_ALG_RSASSA && h == TPM2_ALG_SHA256)
		return 0;
	if (role == ATTEST_IDENTITY && p->type == TPM2_ALG_RSA &&
	    s == TPM2_ALG_RSAPSS && h == TPM2_ALG_SHA256)
		return 0;
	if (role == ATTEST_AK)
		return attest_fail(why, p->type == TPM2_ALG_ECC ?
		    "AK's scheme is not ECDSA with SHA-256" :
		    "AK's scheme is not RSASSA with SHA-256");
	return attest_fail(why, "identity key's scheme is not a SHA-256 signature");
}

static int
attest_check_signing_key(const TPMT_PUBLIC *p, enum attest_role role,
    const char **why)
{
	if (p->type == TPM2_ALG_ECC) {
		const TPMS_ECC_PARMS *e = &p->parameters.eccDetail;

		if (e->curveID != TPM2_ECC_NIST_P256)
			return attest_fail(why, role == ATTEST_AK ?
			    "AK is not on the NIST P-256 curve" :
			    "identity key is not on the NIST P-256 curve");
		if (e->kdf.scheme != TPM2_ALG_NULL)
			return attest_fail(why, "signing key has a KDF scheme");
		if (e->symmetric.algorithm != TPM2_ALG_NULL)
			return attest_fail(why, "signing key has a symmetric algorithm");
		if (p->unique.ecc.x.size == 0 || p->unique.ecc.x.size > ATTEST_P256_BYTES ||
		    p->unique.ecc.y.size == 0 || p->unique.ecc.y.size > ATTEST_P256_BYTES)
			return attest_fail(why, "signing key's ECC point has a wrong size");
	} else if (p->type == TPM2_ALG_RSA) {
		const TPMS_RSA_PARMS *r = &p->parameters.rsaDetail;

		if (r->keyBits != 2048 || p->unique.rsa.size != ATTEST_RSA_BYTES)
			return attest_fail(why, role == ATTEST_AK ?
			    "AK is not an RSA 2048 key" : "identity key is not an RSA 2048 key");
		if (!attest_check_rsa_exponent(r->exponent))
			return attest_fail(why, "signing key has an unusual RSA exponent");
		if (r->symmetric.algorithm != TPM2_ALG_NULL)
			return attest_fail(why, "signing key has a symmetric algorithm");
	} else {
		return attest_fail(why, role == ATTEST_AK ?
		    "AK is neither an ECC nor an RSA key" :
		    "identity key is neither an ECC nor an RSA key");
	}
	return attest_check_sign_scheme(p, role, why);
}

static int
attest_check_role(const TPMT_PUBLIC *p, enum attest_role role, const char **why)
{
	if (p->nameAlg != TPM2_ALG_SHA256) {
		*why = role == ATTEST_EK ? "EK's name algorithm is not SHA-256" :
		    role == ATTEST_AK ? "AK's name algorithm is not SHA-256" :
		    "identity key's name algorithm is not SHA-256";
		return -1;
	}
	if (attest_check_attributes(p, role, why) == -1)
		return -1;
	if (role == ATTEST_EK)
		return attest_check_ek(p, why);
	return attest_check_signing_key(p, role, why);
}

static EVP_PKEY *
attest_pkey_rsa(const TPMT_PUBLIC *p)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *n = NULL, *e = NULL;
	UINT32 exp = p->parameters.rsaDetail.exponent;

	if ((n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size, NULL)) == NULL ||
	    (e = BN_new()) == NULL || !BN_set_word(e, exp == 0 ? 65537 : exp))
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(e);
	BN_free(n);
	return pkey;
}

static EVP_PKEY *
attest_pkey_ecc(const TPMT_PUBLIC *p)
{
	unsigned char point[1 + 2 * ATTEST_P256_BYTES];
	const TPM2B_ECC_PARAMETER *x = &p->unique.ecc.x, *y = &p->unique.ecc.y;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;
	char group[] = SN_X9_62_prime256v1;

	/* Uncompressed SEC1 point; the TPM may drop leading zero octets. */
	memset(point, 0, sizeof(point));
	point[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(point + 1 + ATTEST_P256_BYTES - x->size, x->buffer, x->size);
	memcpy(point + 1 + 2 * ATTEST_P256_BYTES - y->size, y->buffer, y->size);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/* An ECC point must be on the curve (EVP_PKEY_public_check: 0.08 ms).
 * For RSA that check is SP 800-56B's, a Miller-Rabin test of the
 * modulus, 6.5 ms here, on a request anyone can send before the EK
 * certificate is looked at; the server only encrypts to and verifies with
 * these keys, so a modulus of the full 2048 bits that is odd is enough. */
static int
attest_pkey_is_valid(EVP_PKEY *pkey, const TPMT_PUBLIC *p)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if (p->type == TPM2_ALG_RSA)
		return (p->unique.rsa.buffer[0] & 0x80) != 0 &&
		    (p->unique.rsa.buffer[ATTEST_RSA_BYTES - 1] & 1) != 0;
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL)
		return 0;
	ok = EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static int
attest_spki_sha256(EVP_PKEY *pkey, unsigned char out[32])
{
	unsigned char *der = NULL;
	int len;

	if ((len = i2d_PUBKEY(pkey, &der)) <= 0)
		return -1;
	SHA256(der, (size_t)len, out);
	OPENSSL_free(der);
	return 0;
}

int
attest_key_parse(const unsigned char *buf, size_t len, enum attest_role role,
    struct attest_key *key, const char **why)
{
	TPM2B_PUBLIC pub;
	TPMT_PUBLIC *tpm;
	size_t off = 0;

	memset(key, 0, sizeof(*key));
	memset(&pub, 0, sizeof(pub));
	if (buf == NULL || len < 2 || len > sizeof(TPM2B_PUBLIC) ||
	    Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &pub) != TSS2_RC_SUCCESS ||
	    off != len || (size_t)pub.size + 2 != len) {
		*why = role == ATTEST_EK ? "EK public is not a TPM2B_PUBLIC" :
		    role == ATTEST_AK ? "AK public is not a TPM2B_PUBLIC" :
		    "identity key public is not a TPM2B_PUBLIC";
		return -1;
	}
	if (attest_check_role(&pub.publicArea, role, why) == -1)
		return -1;
	key->pkey = pub.publicArea.type == TPM2_ALG_RSA ?
	    attest_pkey_rsa(&pub.publicArea) : attest_pkey_ecc(&pub.publicArea);
	if (key->pkey == NULL || !attest_pkey_is_valid(key->pkey, &pub.publicArea)) {
		attest_key_clear(key);
		return attest_fail(why, role == ATTEST_EK ? "EK's public key is not valid" :
		    role == ATTEST_AK ? "AK's public key is not valid" :
		    "identity key's public key is not valid");
	}
	if (attest_spki_sha256(key->pkey, key->spki_sha256) == -1 ||
	    (tpm = malloc(sizeof(*tpm))) == NULL) {
		attest_key_clear(key);
		return attest_fail(why, "out of memory decoding a TPM key");
	}
	*tpm = pub.publicArea;
	key->tpm = tpm;
	key->type = pub.publicArea.type;
	key->attributes = pub.publicArea.objectAttributes;
	/* Name = nameAlg || H(TPMT_PUBLIC as marshalled): hash the bytes the
	 * device sent, which are the bytes its TPM hashed. */
	key->name[0] = (unsigned char)(TPM2_ALG_SHA256 >> 8);
	key->name[1] = (unsigned char)(TPM2_ALG_SHA256 & 0xff);
	SHA256(buf + 2, len - 2, key->name + 2);
	key->name_len = 2 + SHA256_DIGEST_LENGTH;
	return 0;
}

void
attest_key_clear(struct attest_key *key)
{
	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key->tpm);
	memset(key, 0, sizeof(*key));
}

/* ---------------------------------------------------------------- EK */

int
attest_ek_matches(X509 *ek_cert, const struct attest_key *ek, const char **why)
{
	EVP_PKEY *cert_key;

	if (ek_cert == NULL || ek == NULL || ek->pkey == NULL)
		return attest_fail(why, "no EK certificate or EK public");
	if ((cert_key = X509_get0_pubkey(ek_cert)) == NULL)
		return attest_fail(why, "EK certificate has no readable public key");
	if (EVP_PKEY_eq(cert_key, ek->pkey) != 1)
		return attest_fail(why, "EK certificate does not match EK public");
	return 0;
}

/* TCG arcs (2.23.133): EK certificates may mark such extensions critical
 * (TPM specification attributes, the TCG SAN forms); OpenSSL knows none of
 * them. */
static int
attest_ext_is_tcg(const X509_EXTENSION *ext)
{
	static const unsigned char tcg[] = { 0x67, 0x81, 0x05 };	/* 2.23.133 */
	const ASN1_OBJECT *obj = X509_EXTENSION_get_object((X509_EXTENSION *)ext);
	const unsigned char *der = OBJ_get0_data(obj);

	return der != NULL && OBJ_length(obj) >= sizeof(tcg) &&
	    memcmp(der, tcg, sizeof(tcg)) == 0;
}

static int
attest_ek_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	const X509_EXTENSION *ext;
	X509 *cert;
	int i;

	if (ok || X509_STORE_CTX_get_error(ctx) != X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION)
		return ok;
	if ((cert = X509_STORE_CTX_get_current_cert(ctx)) == NULL)
		return 0;
	for (i = 0; i < X509_get_ext_count(cert); i++) {
		ext = X509_get_ext(cert, i);
		if (X509_EXTENSION_get_critical(ext) &&
		    !X509_supported_extension((X509_EXTENSION *)ext) &&
		    !attest_ext_is_tcg(ext))
			return 0;
	}
	return 1;
}

int
attest_ek_verify(X509_STORE *trusted, X509 *ek_cert, STACK_OF(X509) *chain,
    const char **why)
{
	X509_STORE_CTX *ctx;
	int rc, err;

	if (trusted == NULL || ek_cert == NULL)
		return attest_fail(why, "no EK certificate or no trusted TPM manufacturer CA");
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, trusted, ek_cert, chain)) {
		X509_STORE_CTX_free(ctx);
		return attest_fail(why, "out of memory verifying the EK certificate");
	}
	X509_STORE_CTX_set_verify_cb(ctx, attest_ek_verify_cb);
	rc = X509_verify_cert(ctx);
	err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	if (rc == 1)
		return 0;
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return attest_fail(why, "EK certificate (or a CA of its chain) has expired");
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return attest_fail(why, "EK certificate (or a CA of its chain) is not yet valid");
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return attest_fail(why, "EK certificate's signature does not verify");
	case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
		return attest_fail(why, "EK certificate has an unknown critical extension");
	default:
		return attest_fail(why, "EK certificate does not chain to a trusted TPM manufacturer CA");
	}
}

/* ---------------------------------------------------------------- MakeCredential */

/* KDFa (TPM 2.0 Part 1 §11.4.10.2, SP800-108 counter mode with HMAC):
 * K(i) = HMAC(key, [i]32 || label || 0x00 || contextU || contextV || [bits]32).
 * label is a C string; its terminating NUL is the 0x00. */
static int
attest_kdfa_sha256(const unsigned char *key, size_t key_len, const char *label,
    const unsigned char *ctx_u, size_t ctx_u_len, unsigned char *out, size_t bits)
{
	unsigned char msg[4 + 16 + ATTEST_NAME_MAX + 4], block[SHA256_DIGEST_LENGTH];
	size_t label_len = strlen(label) + 1, bytes = bits / 8, done, n, m;
	uint32_t i;
	unsigned int hlen;

	if (4 + label_len + ctx_u_len + 4 > sizeof(msg) || bits % 8 != 0)
		return -1;
	for (i = 1, done = 0; done < bytes; i++, done += n) {
		m = 0;
		msg[m++] = (unsigned char)(i >> 24);
		msg[m++] = (unsigned char)(i >> 16);
		msg[m++] = (unsigned char)(i >> 8);
		msg[m++] = (unsigned char)i;
		memcpy(msg + m, label, label_len);
		m += label_len;
		if (ctx_u_len > 0)
			memcpy(msg + m, ctx_u, ctx_u_len);
		m += ctx_u_len;
		msg[m++] = (unsigned char)(bits >> 24);
		msg[m++] = (unsigned char)(bits >> 16);
		msg[m++] = (unsigned char)(bits >> 8);
		msg[m++] = (unsigned char)bits;
		if (HMAC(EVP_sha256(), key, (int)key_len, msg, m, block, &hlen) == NULL)
			return -1;
		n = bytes - done < hlen ? bytes - done : hlen;
		memcpy(out + done, block, n);
	}
	OPENSSL_cleanse(block, sizeof(block));
	return 0;
}

/* The seed, RSA-OAEP(SHA-256) encrypted to the EK with label "IDENTITY"
 * and its NUL (Part 1 §B.10.3). */
static int
attest_seed_encrypt(EVP_PKEY *ek, const unsigned char *seed, size_t seed_len,
    unsigned char *out, size_t *out_len)
{
	static const char label[] = "IDENTITY";
	EVP_PKEY_CTX *ctx;
	unsigned char *l;
	int ok = 0;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL)
		return -1;
	if (EVP_PKEY_encrypt_init(ctx) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md(ctx, EVP_sha256()) > 0 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) > 0 &&
	    (l = OPENSSL_memdup(label, sizeof(label))) != NULL) {
		if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, l, sizeof(label)) <= 0)
			OPENSSL_free(l);
		else
			ok = EVP_PKEY_encrypt(ctx, out, out_len, seed, seed_len) > 0;
	}
	EVP_PKEY_CTX_free(ctx);
	return ok ? 0 : -1;
}

static int
attest_aes128_cfb(const unsigned char key[ATTEST_AES_BYTES], const unsigned char *in,
    size_t len, unsigned char *out)
{
	static const unsigned char iv[ATTEST_AES_BYTES];	/* zero (Part 1 §24.4) */
	EVP_CIPHER_CTX *c;
	int n1 = 0, n2 = 0, ok;

	if ((c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	ok = EVP_EncryptInit_ex(c, EVP_aes_128_cfb128(), NULL, key, iv) == 1 &&
	    EVP_EncryptUpdate(c, out, &n1, in, (int)len) == 1 &&
	    EVP_EncryptFinal_ex(c, out + n1, &n2) == 1 && (size_t)(n1 + n2) == len;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

static int
attest_marshal_tpm2b(TSS2_RC (*marshal)(const void *, uint8_t *, size_t, size_t *),
    const void *src, size_t max, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	size_t off = 0;

	if ((buf = malloc(max)) == NULL)
		return -1;
	if (marshal(src, buf, max, &off) != TSS2_RC_SUCCESS) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = off;
	return 0;
}

static TSS2_RC
attest_mu_id_object(const void *src, uint8_t *buf, size_t max, size_t *off)
{
	return Tss2_MU_TPM2B_ID_OBJECT_Marshal(src, buf, max, off);
}

static TSS2_RC
attest_mu_encrypted_secret(const void *src, uint8_t *buf, size_t max, size_t *off)
{
	return Tss2_MU_TPM2B_ENCRYPTED_SECRET_Marshal(src, buf, max, off);
}

int
attest_make_credential(const struct attest_key *ek, const unsigned char *ak_name,
    size_t ak_name_len, const unsigned char secret[ATTEST_SECRET_LEN],
    unsigned char **blob, size_t *blob_len, unsigned char **enc, size_t *enc_len,
    const char **why)
{
	unsigned char seed[32], sym[ATTEST_AES_BYTES], hmac_key[32];
	unsigned char plain[2 + ATTEST_SECRET_LEN], mac_in[2 + ATTEST_SECRET_LEN + ATTEST_NAME_MAX];
	unsigned char *enc_identity, *outer;
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	size_t es_len = sizeof(es.secret), ident_len = sizeof(plain);
	unsigned int mac_len;
	int rc = -1;

	*blob = *enc = NULL;
	*blob_len = *enc_len = 0;
	if (ek == NULL || ek->pkey == NULL || ek->type != TPM2_ALG_RSA ||
	    (ek->attributes & (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)) !=
	    (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT))
		return attest_fail(why, "MakeCredential needs an RSA EK");
	/* The Name the TPM will compute for the AK: nameAlg || SHA-256. */
	if (ak_name == NULL || ak_name_len != 2 + SHA256_DIGEST_LENGTH ||
	    ak_name[0] != (TPM2_ALG_SHA256 >> 8) || ak_name[1] != (TPM2_ALG_SHA256 & 0xff))
		return attest_fail(why, "AK name is not a SHA-256 TPM Name");
	memset(&id, 0, sizeof(id));
	memset(&es, 0, sizeof(es));
	if (RAND_bytes(seed, sizeof(seed)) != 1 ||
	    attest_seed_encrypt(ek->pkey, seed, sizeof(seed), es.secret, &es_len) == -1 ||
	    es_len > sizeof(es.secret)) {
		attest_fail(why, "could not encrypt the credential seed to the EK");
		goto out;
	}
	es.size = (UINT16)es_len;
	/* encIdentity = CFB(KDFa(seed, "STORAGE", Name(AK)), TPM2B_DIGEST(secret)) */
	plain[0] = 0;
	plain[1] = ATTEST_SECRET_LEN;
	memcpy(plain + 2, secret, ATTEST_SECRET_LEN);
	outer = id.credential;
	enc_identity = id.credential + 2 + SHA256_DIGEST_LENGTH;
	if (attest_kdfa_sha256(seed, sizeof(seed), "STORAGE", ak_name, ak_name_len,
	    sym, 8 * sizeof(sym)) == -1 ||
	    attest_aes128_cfb(sym, plain, sizeof(plain), enc_identity) == -1 ||
	    attest_kdfa_sha256(seed, sizeof(seed), "INTEGRITY", NULL, 0,
	    hmac_key, 8 * sizeof(hmac_key)) == -1) {
		attest_fail(why, "could not derive the credential keys");
		goto out;
	}
	/* outerHMAC = HMAC(KDFa(seed, "INTEGRITY"), encIdentity || Name(AK)) */
	memcpy(mac_in, enc_identity, ident_len);
	memcpy(mac_in + ident_len, ak_name, ak_name_len);
	outer[0] = 0;
	outer[1] = SHA256_DIGEST_LENGTH;
	if (HMAC(EVP_sha256(), hmac_key, sizeof(hmac_key), mac_in, ident_len + ak_name_len,
	    outer + 2, &mac_len) == NULL || mac_len != SHA256_DIGEST_LENGTH) {
		attest_fail(why, "could not compute the credential's HMAC");
		goto out;
	}
	id.size = (UINT16)(2 + SHA256_DIGEST_LENGTH + ident_len);
	if (attest_marshal_tpm2b(attest_mu_id_object, &id, sizeof(id), blob, blob_len) == -1 ||
	    attest_marshal_tpm2b(attest_mu_encrypted_secret, &es, sizeof(es), enc, enc_len) == -1) {
		free(*blob);
		*blob = NULL;
		*blob_len = 0;
		attest_fail(why, "out of memory marshalling the credential");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(sym, sizeof(sym));
	OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(&id, sizeof(id));
	return rc;
}

/* ---------------------------------------------------------------- Certify, Quote */

/* TPMT_SIGNATURE -> the DER or raw signature OpenSSL verifies. */
static int
attest_sig_verify(const struct attest_key *ak, const unsigned char *data, size_t data_len,
    const unsigned char *sig, size_t sig_len, const char **why)
{
	TPMT_SIGNATURE s;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *ec = NULL;
	BIGNUM *r = NULL, *sv = NULL;
	unsigned char *der = NULL;
	const unsigned char *raw;
	size_t off = 0, raw_len;
	int der_len, ok = 0;

	if (ak == NULL || ak->pkey == NULL || ak->tpm == NULL ||
	    !(ak->attributes & TPMA_OBJECT_RESTRICTED) || !(ak->attributes & TPMA_OBJECT_SIGN_ENCRYPT))
		return attest_fail(why, "no AK to verify the signature with");
	memset(&s, 0, sizeof(s));
	if (sig == NULL || sig_len > sizeof(TPMT_SIGNATURE) ||
	    Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &s) != TSS2_RC_SUCCESS ||
	    off != sig_len)
		return attest_fail(why, "signature is not a TPMT_SIGNATURE");
	if (ak->type == TPM2_ALG_ECC) {
		const TPMS_SIGNATURE_ECC *e = &s.signature.ecdsa;

		if (s.sigAlg != TPM2_ALG_ECDSA || e->hash != TPM2_ALG_SHA256)
			return attest_fail(why, "signature is not ECDSA with SHA-256, the AK's scheme");
		if (e->signatureR.size == 0 || e->signatureR.size > ATTEST_P256_BYTES ||
		    e->signatureS.size == 0 || e->signatureS.size > ATTEST_P256_BYTES)
			return attest_fail(why, "ECDSA signature has a wrong size");
		if ((ec = ECDSA_SIG_new()) == NULL ||
		    (r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL)) == NULL ||
		    (sv = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL)) == NULL ||
		    !ECDSA_SIG_set0(ec, r, sv))
			goto out;
		r = sv = NULL;
		if ((der_len = i2d_ECDSA_SIG(ec, &der)) <= 0)
			goto out;
		raw = der;
		raw_len = (size_t)der_len;
	} else {
		const TPMS_SIGNATURE_RSA *rs = &s.signature.rsassa;

		if (s.sigAlg != TPM2_ALG_RSASSA || rs->hash != TPM2_ALG_SHA256)
			return attest_fail(why, "signature is not RSASSA with SHA-256, the AK's scheme");
		if (rs->sig.size != ATTEST_RSA_BYTES)
			return attest_fail(why, "RSA signature has a wrong size");
		raw = rs->sig.buffer;
		raw_len = rs->sig.size;
	}
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, ak->pkey, NULL) != 1)
		goto out;
	ok = EVP_DigestVerify(md, raw, raw_len, data, data_len) == 1 ? 1 : -1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(ec);
	BN_free(r);
	BN_free(sv);
	if (ok == 1)
		return 0;
	return attest_fail(why, ok == 0 ? "could not verify the signature (out of memory?)" :
	    "signature does not verify with the AK");
}

/* Decode a TPM2B_ATTEST whole, check magic and type, and verify that ak
 * signed exactly its content (TPMS_ATTEST bytes, without the size). */
static int
attest_attest_open(const struct attest_key *ak, const unsigned char *attest,
    size_t attest_len, const unsigned char *sig, size_t sig_len, TPM2_ST type,
    const unsigned char nonce[ATTEST_NONCE_LEN], TPMS_ATTEST *out, const char **why)
{
	TPM2B_ATTEST a;
	size_t off = 0, off2 = 0;

	memset(&a, 0, sizeof(a));
	memset(out, 0, sizeof(*out));
	if (attest == NULL || attest_len < 2 || attest_len > sizeof(TPM2B_ATTEST) ||
	    Tss2_MU_TPM2B_ATTEST_Unmarshal(attest, attest_len, &off, &a) != TSS2_RC_SUCCESS ||
	    off != attest_len || (size_t)a.size + 2 != attest_len ||
	    Tss2_MU_TPMS_ATTEST_Unmarshal(a.attestationData, a.size, &off2, out) != TSS2_RC_SUCCESS ||
	    off2 != a.size)
		return attest_fail(why, "attestation is not a TPM2B_ATTEST");
	if (out->magic != TPM2_GENERATED_VALUE)
		return attest_fail(why, "attestation was not generated by a TPM (magic)");
	if (out->type != type)
		return attest_fail(why, type == TPM2_ST_ATTEST_CERTIFY ?
		    "attestation is not a TPM2_Certify result" :
		    "attestation is not a TPM2_Quote result");
	if (attest_sig_verify(ak, a.attestationData, a.size, sig, sig_len, why) == -1)
		return -1;
	if (out->extraData.size != ATTEST_NONCE_LEN ||
	    CRYPTO_memcmp(out->extraData.buffer, nonce, ATTEST_NONCE_LEN) != 0)
		return attest_fail(why, "attestation does not carry this challenge's nonce");
	return 0;
}

int
attest_certify_verify(const struct attest_key *ak, const unsigned char *attest,
    size_t attest_len, const unsigned char *sig, size_t sig_len,
    const unsigned char nonce[ATTEST_NONCE_LEN], const struct attest_key *certified,
    const char **why)
{
	TPMS_ATTEST a;
	const TPM2B_NAME *n;

	if (certified == NULL || certified->name_len == 0)
		return attest_fail(why, "no certified key");
	if (attest_attest_open(ak, attest, attest_len, sig, sig_len, TPM2_ST_ATTEST_CERTIFY,
	    nonce, &a, why) == -1)
		return -1;
	n = &a.attested.certify.name;
	if (n->size != certified->name_len ||
	    CRYPTO_memcmp(n->name, certified->name, certified->name_len) != 0)
		return attest_fail(why, "certification is not of this key (its Name differs)");
	return 0;
}

/* The TPML_PCR_SELECTION as a bit mask of SHA-256 PCRs, -1 when it is
 * anything but one SHA-256 bank of at most ATTEST_PCR_MAX PCRs. */
static int
attest_pcr_mask(const TPML_PCR_SELECTION *sel, unsigned *mask, const char **why)
{
	const TPMS_PCR_SELECTION *s;
	unsigned i;

	if (sel->count != 1)
		return attest_fail(why, "quote does not select exactly one PCR bank");
	s = &sel->pcrSelections[0];
	if (s->hash != TPM2_ALG_SHA256)
		return attest_fail(why, "quote is not over the SHA-256 PCR bank");
	*mask = 0;
	for (i = 0; i < s->sizeofSelect; i++) {
		if (i * 8 >= ATTEST_PCR_MAX) {
			if (s->pcrSelect[i] != 0)
				return attest_fail(why, "quote selects PCRs beyond 23");
			continue;
		}
		*mask |= (unsigned)s->pcrSelect[i] << (8 * i);
	}
	return 0;
}

int
attest_quote_verify(const struct attest_key *ak, const unsigned char *attest,
    size_t attest_len, const unsigned char *sig, size_t sig_len,
    const unsigned char nonce[ATTEST_NONCE_LEN], unsigned asked_mask,
    const struct attest_pcrs *pcrs, const char **why)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	const TPMS_QUOTE_INFO *q;
	TPMS_ATTEST a;
	EVP_MD_CTX *md;
	unsigned mask, i;
	int ok;

	if (pcrs == NULL || asked_mask == 0 || asked_mask >= (1u << ATTEST_PCR_MAX))
		return attest_fail(why, "no PCRs asked for");
	if (attest_attest_open(ak, attest, attest_len, sig, sig_len, TPM2_ST_ATTEST_QUOTE,
	    nonce, &a, why) == -1)
		return -1;
	q = &a.attested.quote;
	if (attest_pcr_mask(&q->pcrSelect, &mask, why) == -1)
		return -1;
	if (mask != asked_mask)
		return attest_fail(why, "quote is over other PCRs than asked");
	if (pcrs->mask != asked_mask)
		return attest_fail(why, "PCR values given are not those of the PCRs asked");
	if ((md = EVP_MD_CTX_new()) == NULL)
		return attest_fail(why, "out of memory hashing PCR values");
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < ATTEST_PCR_MAX; i++)
		if (mask & (1u << i))
			ok = EVP_DigestUpdate(md, pcrs->value[i], sizeof(pcrs->value[i])) == 1;
	ok = ok && EVP_DigestFinal_ex(md, digest, NULL) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return attest_fail(why, "could not hash the PCR values");
	if (q->pcrDigest.size != sizeof(digest) ||
	    CRYPTO_memcmp(q->pcrDigest.buffer, digest, sizeof(digest)) != 0)
		return attest_fail(why, "PCR values do not hash to the quote's pcrDigest");
	return 0;
}

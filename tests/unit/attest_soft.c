/* attest_soft.c: see attest_soft.h. Test support, never linked into the
 * daemon: it holds private keys, which the server never does. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "attest_soft.h"

/* PolicySecret(TPM_RH_ENDORSEMENT): the TCG default EK's authPolicy. */
static const unsigned char attest_soft_ek_policy[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d,
	0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
	0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

#define ATTEST_SOFT_KEYATTRS	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN)

int
attest_soft_tpmt(EVP_PKEY *key, enum attest_role role, TPMT_PUBLIC *p)
{
	unsigned char point[65];
	BIGNUM *n = NULL;
	size_t len;
	int ok = 0;

	memset(p, 0, sizeof(*p));
	p->nameAlg = TPM2_ALG_SHA256;
	switch (role) {
	case ATTEST_EK:
		p->objectAttributes = ATTEST_SOFT_KEYATTRS | TPMA_OBJECT_ADMINWITHPOLICY |
		    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
		p->authPolicy.size = sizeof(attest_soft_ek_policy);
		memcpy(p->authPolicy.buffer, attest_soft_ek_policy, sizeof(attest_soft_ek_policy));
		break;
	case ATTEST_AK:
		p->objectAttributes = ATTEST_SOFT_KEYATTRS | TPMA_OBJECT_USERWITHAUTH |
		    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
		break;
	case ATTEST_IDENTITY:
		p->objectAttributes = ATTEST_SOFT_KEYATTRS | TPMA_OBJECT_USERWITHAUTH |
		    TPMA_OBJECT_SIGN_ENCRYPT;
		break;
	}
	if (EVP_PKEY_is_a(key, "RSA")) {
		TPMS_RSA_PARMS *r = &p->parameters.rsaDetail;

		p->type = TPM2_ALG_RSA;
		r->keyBits = 2048;
		r->exponent = 0;
		if (role == ATTEST_EK) {
			r->symmetric.algorithm = TPM2_ALG_AES;
			r->symmetric.keyBits.aes = 128;
			r->symmetric.mode.aes = TPM2_ALG_CFB;
			r->scheme.scheme = TPM2_ALG_NULL;
		} else {
			r->symmetric.algorithm = TPM2_ALG_NULL;
			r->scheme.scheme = role == ATTEST_AK ? TPM2_ALG_RSASSA : TPM2_ALG_NULL;
			r->scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
		}
		if (!EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) ||
		    BN_num_bytes(n) > (int)sizeof(p->unique.rsa.buffer))
			goto out;
		p->unique.rsa.size = (UINT16)BN_bn2bin(n, p->unique.rsa.buffer);
	} else {
		TPMS_ECC_PARMS *e = &p->parameters.eccDetail;

		p->type = TPM2_ALG_ECC;
		e->symmetric.algorithm = TPM2_ALG_NULL;
		e->scheme.scheme = TPM2_ALG_ECDSA;
		e->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
		e->curveID = TPM2_ECC_NIST_P256;
		e->kdf.scheme = TPM2_ALG_NULL;
		if (!EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point,
		    sizeof(point), &len) || len != sizeof(point))
			goto out;
		p->unique.ecc.x.size = 32;
		memcpy(p->unique.ecc.x.buffer, point + 1, 32);
		p->unique.ecc.y.size = 32;
		memcpy(p->unique.ecc.y.buffer, point + 33, 32);
	}
	ok = 1;
out:
	BN_free(n);
	return ok ? 0 : -1;
}

size_t
attest_soft_public(const TPMT_PUBLIC *p, unsigned char *buf, size_t max)
{
	TPM2B_PUBLIC pub;
	size_t off = 0;

	memset(&pub, 0, sizeof(pub));
	pub.publicArea = *p;	/* size 0: the marshaller computes it */
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, max, &off) != TSS2_RC_SUCCESS)
		return 0;
	return off;
}

void
attest_soft_name(const unsigned char *pub, size_t len, unsigned char name[34])
{
	name[0] = 0x00;
	name[1] = 0x0b;
	SHA256(pub + 2, len - 2, name + 2);
}

size_t
attest_soft_sign(EVP_PKEY *key, const unsigned char *data, size_t len,
    unsigned char *out, size_t max)
{
	unsigned char der[512];
	const unsigned char *q = der;
	size_t der_len = sizeof(der), off = 0;
	TPMT_SIGNATURE s;
	EVP_MD_CTX *md;
	ECDSA_SIG *ec;
	const BIGNUM *r, *sv;
	int ok;

	if ((md = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) == 1 &&
	    EVP_DigestSign(md, der, &der_len, data, len) == 1;
	EVP_MD_CTX_free(md);
	if (!ok)
		return 0;
	memset(&s, 0, sizeof(s));
	if (EVP_PKEY_is_a(key, "RSA")) {
		s.sigAlg = TPM2_ALG_RSASSA;
		s.signature.rsassa.hash = TPM2_ALG_SHA256;
		s.signature.rsassa.sig.size = (UINT16)der_len;
		memcpy(s.signature.rsassa.sig.buffer, der, der_len);
	} else {
		if ((ec = d2i_ECDSA_SIG(NULL, &q, (long)der_len)) == NULL)
			return 0;
		ECDSA_SIG_get0(ec, &r, &sv);
		s.sigAlg = TPM2_ALG_ECDSA;
		s.signature.ecdsa.hash = TPM2_ALG_SHA256;
		s.signature.ecdsa.signatureR.size = 32;
		s.signature.ecdsa.signatureS.size = 32;
		ok = BN_bn2binpad(r, s.signature.ecdsa.signatureR.buffer, 32) == 32 &&
		    BN_bn2binpad(sv, s.signature.ecdsa.signatureS.buffer, 32) == 32;
		ECDSA_SIG_free(ec);
		if (!ok)
			return 0;
	}
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(&s, out, max, &off) != TSS2_RC_SUCCESS)
		return 0;
	return off;
}

size_t
attest_soft_attest(const TPMS_ATTEST *a, unsigned char *buf, size_t max)
{
	TPM2B_ATTEST t;
	size_t off = 0, inner = 0;

	memset(&t, 0, sizeof(t));
	if (Tss2_MU_TPMS_ATTEST_Marshal(a, t.attestationData, sizeof(t.attestationData),
	    &inner) != TSS2_RC_SUCCESS)
		return 0;
	t.size = (UINT16)inner;
	if (Tss2_MU_TPM2B_ATTEST_Marshal(&t, buf, max, &off) != TSS2_RC_SUCCESS)
		return 0;
	return off;
}

static void
attest_soft_attest_head(TPMS_ATTEST *a, TPM2_ST type, const unsigned char *nonce,
    size_t nonce_len)
{
	memset(a, 0, sizeof(*a));
	a->magic = TPM2_GENERATED_VALUE;
	a->type = type;
	a->qualifiedSigner.size = 34;
	a->qualifiedSigner.name[1] = 0x0b;
	memset(a->qualifiedSigner.name + 2, 0x5a, 32);
	a->extraData.size = (UINT16)nonce_len;
	memcpy(a->extraData.buffer, nonce, nonce_len);
	a->clockInfo.clock = 123456;
	a->clockInfo.resetCount = 1;
	a->clockInfo.safe = 1;
	a->firmwareVersion = 0x2019102300000000ull;
}

void
attest_soft_certify_info(TPMS_ATTEST *a, const unsigned char *nonce, size_t nonce_len,
    const unsigned char *name, size_t name_len)
{
	attest_soft_attest_head(a, TPM2_ST_ATTEST_CERTIFY, nonce, nonce_len);
	a->attested.certify.name.size = (UINT16)name_len;
	memcpy(a->attested.certify.name.name, name, name_len);
	a->attested.certify.qualifiedName.size = (UINT16)name_len;
	memcpy(a->attested.certify.qualifiedName.name, name, name_len);
	a->attested.certify.qualifiedName.name[2] ^= 0xff;
}

void
attest_soft_quote_info(TPMS_ATTEST *a, const unsigned char *nonce, size_t nonce_len,
    unsigned mask, const unsigned char digest[32])
{
	TPMS_PCR_SELECTION *s;

	attest_soft_attest_head(a, TPM2_ST_ATTEST_QUOTE, nonce, nonce_len);
	a->attested.quote.pcrSelect.count = 1;
	s = &a->attested.quote.pcrSelect.pcrSelections[0];
	s->hash = TPM2_ALG_SHA256;
	s->sizeofSelect = 3;
	s->pcrSelect[0] = (BYTE)(mask & 0xff);
	s->pcrSelect[1] = (BYTE)((mask >> 8) & 0xff);
	s->pcrSelect[2] = (BYTE)((mask >> 16) & 0xff);
	a->attested.quote.pcrDigest.size = 32;
	memcpy(a->attested.quote.pcrDigest.buffer, digest, 32);
}

/* SP800-108 counter-mode HMAC-SHA256 through OpenSSL's KBKDF: the fixed
 * input is [i]32 || label || 0x00 || context || [L]32, which is KDFa. */
static int
attest_soft_kdfa(const unsigned char *seed, size_t seed_len, const char *label,
    const unsigned char *context, size_t context_len, unsigned char *out, size_t out_len)
{
	OSSL_PARAM p[7], *q = p;
	EVP_KDF *kdf;
	EVP_KDF_CTX *ctx;
	char mac[] = "HMAC", digest[] = "SHA256", mode[] = "counter";
	int ok;

	if ((kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL)) == NULL)
		return -1;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return -1;
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac, 0);
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode, 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)seed, seed_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label,
	    strlen(label));
	if (context_len > 0)
		*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)context,
		    context_len);
	*q = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(ctx, out, out_len, p) == 1;
	EVP_KDF_CTX_free(ctx);
	return ok ? 0 : -1;
}

int
attest_soft_activate(EVP_PKEY *ek, const unsigned char *ak_name, size_t ak_name_len,
    const unsigned char *blob, size_t blob_len, const unsigned char *enc, size_t enc_len,
    unsigned char *secret, size_t *secret_len)
{
	static const char label[] = "IDENTITY";
	unsigned char seed[512], sym[16], hkey[32], mac[32], plain[256], mac_in[512];
	static const unsigned char iv[16];
	size_t seed_len = sizeof(seed), off = 0, ident_len;
	TPM2B_ID_OBJECT id;
	TPM2B_ENCRYPTED_SECRET es;
	TPM2B_DIGEST integrity, out;
	EVP_PKEY_CTX *pc;
	EVP_CIPHER_CTX *c;
	unsigned char *l;
	unsigned int mac_len;
	int n = 0, ok;

	memset(&id, 0, sizeof(id));
	memset(&es, 0, sizeof(es));
	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(blob, blob_len, &off, &id) != TSS2_RC_SUCCESS ||
	    off != blob_len)
		return -1;
	off = 0;
	if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(enc, enc_len, &off, &es) != TSS2_RC_SUCCESS ||
	    off != enc_len)
		return -1;
	if ((pc = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL)
		return -1;
	ok = EVP_PKEY_decrypt_init(pc) > 0 &&
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_OAEP_PADDING) > 0 &&
	    EVP_PKEY_CTX_set_rsa_oaep_md(pc, EVP_sha256()) > 0 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) > 0 &&
	    (l = OPENSSL_memdup(label, sizeof(label))) != NULL &&
	    EVP_PKEY_CTX_set0_rsa_oaep_label(pc, l, sizeof(label)) > 0 &&
	    EVP_PKEY_decrypt(pc, seed, &seed_len, es.secret, es.size) > 0;
	EVP_PKEY_CTX_free(pc);
	if (!ok)
		return -1;
	off = 0;
	if (Tss2_MU_TPM2B_DIGEST_Unmarshal(id.credential, id.size, &off, &integrity) !=
	    TSS2_RC_SUCCESS || integrity.size != 32)
		return -1;
	ident_len = id.size - off;
	if (ident_len > sizeof(plain) || ident_len + ak_name_len > sizeof(mac_in))
		return -1;
	if (attest_soft_kdfa(seed, seed_len, "INTEGRITY", NULL, 0, hkey, sizeof(hkey)) == -1)
		return -1;
	memcpy(mac_in, id.credential + off, ident_len);
	memcpy(mac_in + ident_len, ak_name, ak_name_len);
	if (HMAC(EVP_sha256(), hkey, sizeof(hkey), mac_in, ident_len + ak_name_len, mac,
	    &mac_len) == NULL || CRYPTO_memcmp(mac, integrity.buffer, 32) != 0)
		return -1;	/* TPM_RC_INTEGRITY */
	if (attest_soft_kdfa(seed, seed_len, "STORAGE", ak_name, ak_name_len, sym,
	    sizeof(sym)) == -1 || (c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	ok = EVP_DecryptInit_ex(c, EVP_aes_128_cfb128(), NULL, sym, iv) == 1 &&
	    EVP_DecryptUpdate(c, plain, &n, id.credential + off, (int)ident_len) == 1;
	EVP_CIPHER_CTX_free(c);
	off = 0;
	if (!ok || Tss2_MU_TPM2B_DIGEST_Unmarshal(plain, (size_t)n, &off, &out) !=
	    TSS2_RC_SUCCESS || off != (size_t)n)
		return -1;
	memcpy(secret, out.buffer, out.size);
	*secret_len = out.size;
	return 0;
}

static int
attest_soft_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static int
attest_soft_critical(X509 *x, const char *oid)
{
	static const unsigned char null_der[] = { 0x05, 0x00 };
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int ok = 0;

	if (obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, null_der, sizeof(null_der)) &&
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 1, os)) != NULL)
		ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return ok;
}

X509 *
attest_soft_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
    long serial, const char *critical_oid)
{
	X509 *x = X509_new();
	int is_ca = issuer == NULL, ok;

	if (x == NULL)
		return NULL;
	ok = X509_set_version(x, 2) && ASN1_INTEGER_set(X509_get_serialNumber(x), serial) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400) != NULL &&
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) &&
	    X509_set_issuer_name(x, X509_get_subject_name(is_ca ? x : issuer)) &&
	    X509_set_pubkey(x, key) &&
	    attest_soft_ext(x, is_ca ? x : issuer, NID_basic_constraints,
	    is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
	    attest_soft_ext(x, is_ca ? x : issuer, NID_key_usage,
	    is_ca ? "critical,keyCertSign,cRLSign" : "critical,keyEncipherment") &&
	    (critical_oid == NULL || attest_soft_critical(x, critical_oid)) &&
	    X509_sign(x, issuer_key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

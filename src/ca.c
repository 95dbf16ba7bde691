/* ca.c: X.509 certificates, CRLs and OCSP responses. Extensions go through
 * OpenSSL's own X509V3 machinery (no hand-built ASN.1); signing always
 * through OpenSSL with the signer's EVP_PKEY, which for CA keys refers to
 * the PKCS#11 token. */
#include "ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "names.h"
#include "util.h"

/* Every signature quarklinkd makes is one of these three calls, each a
 * token operation: counted as attempted, for /metrics. */
static atomic_ullong ca_nsigned[CA_SIGN_NKINDS];

static void
ca_count(enum ca_sign_kind k)
{
	atomic_fetch_add(&ca_nsigned[k], 1);
}

unsigned long long
ca_signatures(enum ca_sign_kind k)
{
	return atomic_load(&ca_nsigned[k]);
}

static void
ca_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "",
	    e ? ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error" : "");
	ERR_clear_error();
}

void
ca_serial_hex(const ASN1_INTEGER *ai, char out[CA_SERIAL_HEX])
{
	unsigned char buf[16] = { 0 };
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	int n = bn ? BN_num_bytes(bn) : -1;

	/* Our serials are 16 bytes and positive; anything else cannot be
	 * ours (and -S must never read as S). */
	if (n < 0 || n > 16 || BN_is_negative(bn)) {
		snprintf(out, CA_SERIAL_HEX, "%s", "-");
		BN_free(bn);
		return;
	}
	BN_bn2binpad(bn, buf, 16);
	BN_free(bn);
	util_hex(buf, 16, out);
}

/* 16 random bytes, top bit clear so the INTEGER is positive (RFC 5280
 * 4.1.2.2) and non-zero first byte so the encoding is always 16 bytes. */
static ASN1_INTEGER *
ca_serial_new(char hex[CA_SERIAL_HEX])
{
	unsigned char buf[16];
	ASN1_INTEGER *ai;
	BIGNUM *bn;

	if (RAND_bytes(buf, sizeof(buf)) != 1)
		return NULL;
	buf[0] &= 0x7f;
	buf[0] |= 0x01;
	if ((bn = BN_bin2bn(buf, sizeof(buf), NULL)) == NULL)
		return NULL;
	ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	util_hex(buf, sizeof(buf), hex);
	return ai;
}

static int
ca_device_id_der(unsigned char *der, int len, char out[CA_DEVICE_ID],
    unsigned char spki_sha256[32])
{
	unsigned int bits = 0, acc = 0, o = 0;

	if (len <= 0)
		return -1;
	util_sha256(der, (size_t)len, spki_sha256);
	OPENSSL_free(der);
	/* 20 bytes = 160 bits = exactly 32 base32 digits, no padding. */
	for (int i = 0; i < 20; i++) {
		acc = (acc << 8) | spki_sha256[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = NAMES_DEVICE_ID_CHARS[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	out[o] = '\0';
	return 0;
}

int
ca_der(X509 *cert, unsigned char **der, int *len)
{
	*der = NULL;
	*len = i2d_X509(cert, der);
	return *len > 0 ? 0 : -1;
}

int
ca_device_id(EVP_PKEY *pk, char out[CA_DEVICE_ID], unsigned char spki_sha256[32])
{
	unsigned char *der = NULL;
	/* Not in the call: C leaves the order of arguments open, and clang
	 * would pass der before i2d_PUBKEY has set it. */
	int len = i2d_PUBKEY(pk, &der);

	return ca_device_id_der(der, len, out, spki_sha256);
}

/* Same ID from the SubjectPublicKeyInfo as received (a CSR's), which is
 * the DER ca_device_id() would produce, without re-encoding the key. */
int
ca_device_id_spki(X509_PUBKEY *spki, char out[CA_DEVICE_ID],
    unsigned char spki_sha256[32])
{
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(spki, &der);

	return ca_device_id_der(der, len, out, spki_sha256);
}

int
ca_key_acceptable(EVP_PKEY *pk, char *err, size_t errlen)
{
	char group[64];
	int bits = EVP_PKEY_get_bits(pk);

	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (bits >= 2048 && bits <= 4096)
			return 0;
		snprintf(err, errlen, "RSA key of %d bits not accepted (2048-4096)", bits);
		return -1;
	}
	if (EVP_PKEY_is_a(pk, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(pk, "group", group,
		    sizeof(group), NULL) == 1 &&
		    (strcmp(group, "prime256v1") == 0 || strcmp(group, "secp384r1") == 0))
			return 0;
		snprintf(err, errlen, "EC curve not accepted (P-256 or P-384)");
		return -1;
	}
	snprintf(err, errlen, "key type not accepted (EC P-256/P-384 or RSA 2048-4096)");
	return -1;
}

int
ca_name_text(const X509_NAME *name, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int n;

	if (bio == NULL)
		return -1;
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	n = BIO_read(bio, buf, (int)len - 1);
	BIO_free(bio);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	return 0;
}

/* Put a received SubjectPublicKeyInfo into cert unchanged. */
static int
ca_copy_spki(X509 *cert, X509_PUBKEY *from)
{
	ASN1_OBJECT *alg;
	const ASN1_OBJECT *palg;
	const unsigned char *pk;
	const void *pval;
	X509_ALGOR *pa;
	void *param = NULL;
	unsigned char *copy;
	int pklen, ptype;

	if (!X509_PUBKEY_get0_param(&alg, &pk, &pklen, &pa, from))
		return -1;
	X509_ALGOR_get0(&palg, &ptype, &pval, pa);
	if (ptype == V_ASN1_OBJECT)
		param = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		param = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		return -1;
	if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) && param == NULL)
		return -1;
	if ((copy = OPENSSL_memdup(pk, (size_t)pklen)) == NULL) {
		ptype == V_ASN1_OBJECT ? ASN1_OBJECT_free(param) : ASN1_STRING_free(param);
		return -1;
	}
	if (!X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_dup(alg), ptype,
	    param, copy, pklen)) {
		OPENSSL_free(copy);
		return -1;
	}
	return 0;
}

static int
ca_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return -1;
	ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static int
ca_profile_exts(X509 *cert, X509V3_CTX *ctx, const struct ca_request *r)
{
	char buf[600];
	int rc = 0;

	rc |= ca_add_ext(cert, ctx, NID_subject_key_identifier, "hash");
	if (r->profile != CA_PROFILE_ROOT)
		rc |= ca_add_ext(cert, ctx, NID_authority_key_identifier, "keyid:always");
	switch (r->profile) {
	case CA_PROFILE_ROOT:
		rc |= ca_add_ext(cert, ctx, NID_basic_constraints, "critical,CA:TRUE");
		rc |= ca_add_ext(cert, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
		break;
	case CA_PROFILE_ISSUING:
		rc |= ca_add_ext(cert, ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
		rc |= ca_add_ext(cert, ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
		break;
	case CA_PROFILE_CODESIGN:
		rc |= ca_add_ext(cert, ctx, NID_basic_constraints, "critical,CA:FALSE");
		rc |= ca_add_ext(cert, ctx, NID_key_usage, "critical,digitalSignature");
		rc |= ca_add_ext(cert, ctx, NID_ext_key_usage, "codeSigning");
		break;
	case CA_PROFILE_DEVICE:
		rc |= ca_add_ext(cert, ctx, NID_basic_constraints, "critical,CA:FALSE");
		rc |= ca_add_ext(cert, ctx, NID_key_usage, "critical,digitalSignature");
		rc |= ca_add_ext(cert, ctx, NID_ext_key_usage, "clientAuth");
		if (r->ocsp_url != NULL) {
			snprintf(buf, sizeof(buf), "OCSP;URI:%s", r->ocsp_url);
			rc |= ca_add_ext(cert, ctx, NID_info_access, buf);
		}
		if (r->crl_url != NULL) {
			snprintf(buf, sizeof(buf), "URI:%s", r->crl_url);
			rc |= ca_add_ext(cert, ctx, NID_crl_distribution_points, buf);
		}
		break;
	case CA_PROFILE_TLS_SERVER:
		rc |= ca_add_ext(cert, ctx, NID_basic_constraints, "critical,CA:FALSE");
		rc |= ca_add_ext(cert, ctx, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		rc |= ca_add_ext(cert, ctx, NID_ext_key_usage, "serverAuth");
		break;
	}
	if (r->san != NULL)
		rc |= ca_add_ext(cert, ctx, NID_subject_alt_name, r->san);
	return rc ? -1 : 0;
}

X509 *
ca_issue(const struct ca_request *r, char serial_hex[CA_SERIAL_HEX], char *err,
    size_t errlen)
{
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();
	ASN1_INTEGER *serial = NULL;
	EVP_PKEY *signkey = r->issuer ? r->issuer->key : r->self_key;
	X509V3_CTX ctx;

	if (cert == NULL || name == NULL || (serial = ca_serial_new(serial_hex)) == NULL) {
		ca_err(err, errlen, "out of memory");
		goto fail;
	}
	if ((r->org != NULL && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)r->org, -1, -1, 0)) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)r->cn, -1, -1, 0)) {
		ca_err(err, errlen, "bad subject");
		goto fail;
	}
	if (!X509_set_version(cert, 2) || !X509_set_serialNumber(cert, serial) ||
	    !X509_set_subject_name(cert, name) ||
	    !X509_set_issuer_name(cert, r->issuer ?
	    X509_get_subject_name(r->issuer->cert) : name) ||
	    (r->spki ? ca_copy_spki(cert, r->spki) == -1 :
	    !X509_set_pubkey(cert, r->pubkey)) ||
	    /* Backdated a minute for clocks that run slightly behind. */
	    X509_gmtime_adj(X509_getm_notBefore(cert), -60) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(cert), r->days, 0, NULL) == NULL) {
		ca_err(err, errlen, "cannot fill certificate");
		goto fail;
	}
	X509V3_set_ctx(&ctx, r->issuer ? r->issuer->cert : cert, cert, NULL, NULL, 0);
	if (ca_profile_exts(cert, &ctx, r) == -1) {
		ca_err(err, errlen, "cannot add extensions");
		goto fail;
	}
	ca_count(CA_SIGN_CERT);
	if (X509_sign(cert, signkey, EVP_sha256()) <= 0) {
		ca_err(err, errlen, "signing failed");
		goto fail;
	}
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	return cert;
fail:
	ASN1_INTEGER_free(serial);
	X509_NAME_free(name);
	X509_free(cert);
	return NULL;
}

static int
ca_der_out(unsigned char *der, int n, unsigned char **out, size_t *len)
{
	if (n <= 0 || (*out = malloc((size_t)n)) == NULL) {
		OPENSSL_free(der);
		return -1;
	}
	memcpy(*out, der, (size_t)n);
	*len = (size_t)n;
	OPENSSL_free(der);
	return 0;
}

static int
ca_crl_add(X509_CRL *crl, const struct ca_revoked *rv)
{
	X509_REVOKED *r = X509_REVOKED_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, rv->revoked_at);
	ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *serial = NULL;
	int ok = 0;

	if (r == NULL || t == NULL || reason == NULL ||
	    BN_hex2bn(&bn, rv->serial_hex) == 0 ||
	    (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	if (!X509_REVOKED_set_serialNumber(r, serial) ||
	    !X509_REVOKED_set_revocationDate(r, t))
		goto out;
	/* RFC 5280 5.3.1: omit the extension rather than say unspecified. */
	if (rv->reason != 0 && (!ASN1_ENUMERATED_set(reason, rv->reason) ||
	    !X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0)))
		goto out;
	ok = X509_CRL_add0_revoked(crl, r);
out:
	if (!ok)
		X509_REVOKED_free(r);
	ASN1_TIME_free(t);
	ASN1_ENUMERATED_free(reason);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok ? 0 : -1;
}

int
ca_crl(const struct ca_signer *s, const struct ca_revoked *rv, size_t n,
    long long crl_number, int valid_hours, unsigned char **der, size_t *len,
    char *err, size_t errlen)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = ASN1_TIME_set(NULL, time(NULL));
	ASN1_TIME *next = ASN1_TIME_set(NULL, time(NULL) + valid_hours * 3600L);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	X509V3_CTX ctx;
	unsigned char *out = NULL;
	X509_EXTENSION *aki;
	int rc = -1, dlen;

	if (crl == NULL || last == NULL || next == NULL || num == NULL ||
	    !ASN1_INTEGER_set_int64(num, crl_number) ||
	    !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(s->cert)) ||
	    !X509_CRL_set1_lastUpdate(crl, last) ||
	    !X509_CRL_set1_nextUpdate(crl, next) ||
	    !X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0)) {
		ca_err(err, errlen, "cannot build CRL");
		goto out;
	}
	X509V3_set_ctx(&ctx, s->cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	if (aki == NULL || !X509_CRL_add_ext(crl, aki, -1)) {
		X509_EXTENSION_free(aki);
		ca_err(err, errlen, "cannot add CRL AKI");
		goto out;
	}
	X509_EXTENSION_free(aki);
	for (size_t i = 0; i < n; i++) {
		if (ca_crl_add(crl, &rv[i]) == -1) {
			ca_err(err, errlen, "cannot add a CRL entry");
			goto out;
		}
	}
	X509_CRL_sort(crl);
	ca_count(CA_SIGN_CRL);
	if (X509_CRL_sign(crl, s->key, EVP_sha256()) <= 0) {
		ca_err(err, errlen, "CRL signing failed");
		goto out;
	}
	dlen = i2d_X509_CRL(crl, &out);
	if (ca_der_out(out, dlen, der, len) == -1) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	X509_CRL_free(crl);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(num);
	return rc;
}

int
ca_ocsp_sign(const struct ca_signer *s, OCSP_REQUEST *req, OCSP_CERTID *id,
    enum ca_ocsp_status st, time_t revoked_at, int reason, int valid_hours,
    unsigned char **der, size_t *len)
{
	static const int status_map[] = {
		V_OCSP_CERTSTATUS_GOOD, V_OCSP_CERTSTATUS_REVOKED,
		V_OCSP_CERTSTATUS_UNKNOWN
	};
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
	ASN1_TIME *next = ASN1_TIME_set(NULL, time(NULL) + valid_hours * 3600L);
	ASN1_TIME *rev = st == CA_OCSP_REVOKED ? ASN1_TIME_set(NULL, revoked_at) : NULL;
	OCSP_RESPONSE *resp = NULL;
	unsigned char *out = NULL;
	int rc = -1, n;

	if (bs == NULL || now == NULL || next == NULL ||
	    (st == CA_OCSP_REVOKED && rev == NULL))
		goto out;
	if (OCSP_basic_add1_status(bs, id, status_map[st],
	    st == CA_OCSP_REVOKED ? reason : -1, rev, now, next) == NULL)
		goto out;
	if (req != NULL && OCSP_copy_nonce(bs, req) <= 0)
		goto out;
	/* Signed directly by the issuing CA: no responder certificate to send. */
	ca_count(CA_SIGN_OCSP);
	if (!OCSP_basic_sign(bs, s->cert, s->key, EVP_sha256(), NULL,
	    OCSP_NOCERTS | OCSP_RESPID_KEY))
		goto out;
	if ((resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) == NULL)
		goto out;
	n = i2d_OCSP_RESPONSE(resp, &out);
	rc = ca_der_out(out, n, der, len);
out:
	ERR_clear_error();
	OCSP_RESPONSE_free(resp);
	OCSP_BASICRESP_free(bs);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	ASN1_TIME_free(rev);
	return rc;
}

int
ca_ocsp_error(int status, unsigned char **der, size_t *len)
{
	OCSP_RESPONSE *resp = OCSP_response_create(status, NULL);
	unsigned char *out = NULL;
	int rc, n;

	if (resp == NULL)
		return -1;
	n = i2d_OCSP_RESPONSE(resp, &out);
	rc = ca_der_out(out, n, der, len);
	OCSP_RESPONSE_free(resp);
	return rc;
}

char *
ca_p7_certs_b64(X509 *const *certs, size_t n)
{
	PKCS7 *p7 = PKCS7_new();
	unsigned char *der = NULL;
	char *out = NULL;
	BIO *b64 = NULL, *mem = NULL;
	BUF_MEM *bm;
	int len;

	/* A degenerate SignedData: certificates, no signers (RFC 7030 4.1.3). */
	if (p7 == NULL || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!PKCS7_add_certificate(p7, certs[i]))
			goto out;
	if ((len = i2d_PKCS7(p7, &der)) <= 0)
		goto out;
	if ((b64 = BIO_new(BIO_f_base64())) == NULL ||
	    (mem = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	b64 = BIO_push(b64, mem);
	if (BIO_write(b64, der, len) != len || BIO_flush(b64) != 1)
		goto out;
	BIO_get_mem_ptr(mem, &bm);
	if ((out = malloc(bm->length + 1)) != NULL) {
		memcpy(out, bm->data, bm->length);
		out[bm->length] = '\0';
	}
out:
	if (b64 != NULL)
		BIO_free_all(b64);
	else
		BIO_free(mem);
	OPENSSL_free(der);
	PKCS7_free(p7);
	return out;
}

/* agent_stream.c: decrypting an encrypted image with bounded memory. A
 * segment is one read of at most segment_size + 16 bytes; nothing of it
 * is written before its tag verifies, so a tampered or truncated image
 * never reaches the install hook. */
#include "agent_stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

#include "agent.h"

/* Header (man/quarklink-image.5 is the reference): magic "QLSTREAM",
 * version 1, algorithm 1 (AES-256-GCM), segment size (32-bit BE), nonce
 * prefix (7 bytes), 3 reserved zero bytes: 24 bytes, and the associated
 * data of every segment. */
#define AGENT_STREAM_MAGIC	"QLSTREAM"
#define AGENT_STREAM_HDR	24

static int
agent_stream_read_full(int fd, unsigned char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = read(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int
agent_stream_write_full(int fd, const unsigned char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

int
agent_stream_header(int fd, long long segment_size, struct agent_stream *s, char *err,
    size_t errlen)
{
	unsigned char h[AGENT_STREAM_HDR];
	unsigned long seg;
	int i;

	if (lseek(fd, 0, SEEK_SET) == -1 || agent_stream_read_full(fd, h, sizeof(h)) == -1) {
		snprintf(err, errlen, "encrypted image: no header");
		return -1;
	}
	if (memcmp(h, AGENT_STREAM_MAGIC, 8) != 0 || h[8] != 1 || h[9] != 1) {
		snprintf(err, errlen, "encrypted image: unknown format");
		return -1;
	}
	seg = (unsigned long)h[10] << 24 | (unsigned long)h[11] << 16 | h[12] << 8 | h[13];
	for (i = 21; i < AGENT_STREAM_HDR; i++)
		if (h[i] != 0) {
			snprintf(err, errlen, "encrypted image: reserved header bytes set");
			return -1;
		}
	if (seg == 0 || (long long)seg != segment_size) {
		snprintf(err, errlen, "encrypted image: segment size %lu, manifest says %lld",
		    seg, segment_size);
		return -1;
	}
	memcpy(s->header, h, AGENT_STREAM_HDR);
	memcpy(s->prefix, h + 14, 7);
	s->segment_size = seg;
	s->header_len = AGENT_STREAM_HDR;
	return 0;
}

static int
agent_stream_open_segment(EVP_CIPHER_CTX *ctx, const struct agent_stream *s,
    unsigned long counter, int is_last, unsigned char *in, size_t len,
    unsigned char *out)
{
	unsigned char nonce[12];
	int n = 0, f = 0, a = 0;

	memcpy(nonce, s->prefix, 7);
	nonce[7] = (unsigned char)(counter >> 24);
	nonce[8] = (unsigned char)(counter >> 16);
	nonce[9] = (unsigned char)(counter >> 8);
	nonce[10] = (unsigned char)counter;
	nonce[11] = is_last ? 1 : 0;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, s->key, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &a, s->header, (int)s->header_len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, AGENT_STREAM_TAG,
	    in + len - AGENT_STREAM_TAG) != 1 ||
	    (len > AGENT_STREAM_TAG &&
	    EVP_DecryptUpdate(ctx, out, &n, in, (int)(len - AGENT_STREAM_TAG)) != 1) ||
	    EVP_DecryptFinal_ex(ctx, out + n, &f) != 1)
		return -1;
	return n + f;
}

int
agent_stream_decrypt(int in_fd, long long enc_size, const struct agent_stream *s,
    int out_fd, EVP_MD_CTX *md, long long *plain_size, char *err, size_t errlen)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *in = NULL, *out = NULL;
	long long left = enc_size - (long long)s->header_len, total = 0;
	size_t full = s->segment_size + AGENT_STREAM_TAG, len;
	unsigned long counter = 0;
	int n, is_last, rc = -1;

	if (left < AGENT_STREAM_TAG) {
		snprintf(err, errlen, "encrypted image: truncated");
		return -1;
	}
	if ((in = malloc(full)) == NULL || (out = malloc(full)) == NULL ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (lseek(in_fd, (off_t)s->header_len, SEEK_SET) == -1)
		goto out;
	while (left > 0) {
		is_last = left <= (long long)full;
		len = is_last ? (size_t)left : full;
		if (len < AGENT_STREAM_TAG || agent_stream_read_full(in_fd, in, len) == -1) {
			snprintf(err, errlen, "encrypted image: truncated segment %lu", counter);
			goto out;
		}
		if ((n = agent_stream_open_segment(ctx, s, counter, is_last, in, len, out)) < 0) {
			snprintf(err, errlen, "encrypted image: segment %lu does not authenticate",
			    counter);
			goto out;
		}
		if (agent_stream_write_full(out_fd, out, (size_t)n) == -1) {
			snprintf(err, errlen, "cannot write the decrypted image: %s",
			    strerror(errno));
			goto out;
		}
		if (md != NULL && EVP_DigestUpdate(md, out, (size_t)n) != 1)
			goto out;
		total += n;
		left -= (long long)len;
		if (counter == 0xffffffffUL && left > 0) {
			snprintf(err, errlen, "encrypted image: too many segments");
			goto out;
		}
		counter++;
	}
	*plain_size = total;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(out, out ? full : 0);
	free(in);
	free(out);
	return rc;
}

/* ---- key agreement by hand, for keys OpenSSL's CMS cannot drive ----
 *
 * OpenSSL 3.0 opens a KeyAgreeRecipientInfo only through a key exchange
 * that takes the X9.63 KDF parameters; a TPM key's (tpm2-openssl 1.1)
 * does raw ECDH only. So: raw ECDH with the device key (in the TPM), the
 * X9.63 KDF and AES key unwrap here, then the content decrypted with the
 * content-encryption key. The DER walk below reads only the fields OpenSSL
 * 3.0 has no getter for (the encrypted key, the content algorithm). */

struct agent_der {
	const unsigned char	*p, *end;
};

/* The next TLV: tag byte, contents. -1 at the end or on bad DER. */
static int
agent_der_next(struct agent_der *d, int *tag, struct agent_der *inner)
{
	size_t len = 0, n;
	const unsigned char *p = d->p;

	if (d->end - p < 2 || (p[0] & 0x1f) == 0x1f)
		return -1;
	*tag = p[0];
	if (p[1] < 0x80) {
		len = p[1];
		p += 2;
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 3 || (size_t)(d->end - p) < 2 + n)
			return -1;
		for (size_t i = 0; i < n; i++)
			len = len << 8 | p[2 + i];
		p += 2 + n;
	}
	if ((size_t)(d->end - p) < len)
		return -1;
	inner->p = p;
	inner->end = p + len;
	d->p = p + len;
	return 0;
}

/* Find, in the EnvelopedData DER, the first KeyAgreeRecipientInfo's last
 * encrypted key and the EncryptedContentInfo's algorithm and content. */
static int
agent_der_envelope(const unsigned char *der, size_t len, struct agent_der *enckey,
    struct agent_der *calg, struct agent_der *content)
{
	struct agent_der d = { der, der + len }, ci, ed, x, ri, kari, reks, rek, eci;
	int tag, found = 0;

	if (agent_der_next(&d, &tag, &ci) == -1 || tag != 0x30 ||
	    agent_der_next(&ci, &tag, &x) == -1 || tag != 0x06 ||
	    agent_der_next(&ci, &tag, &x) == -1 || tag != 0xa0 ||
	    agent_der_next(&x, &tag, &ed) == -1 || tag != 0x30 ||
	    agent_der_next(&ed, &tag, &x) == -1 || tag != 0x02)
		return -1;
	if (agent_der_next(&ed, &tag, &x) == -1)
		return -1;
	if (tag == 0xa0 && agent_der_next(&ed, &tag, &x) == -1)	/* originatorInfo */
		return -1;
	if (tag != 0x31)
		return -1;
	while (!found && agent_der_next(&x, &tag, &kari) == 0) {
		if (tag != 0xa1)	/* [1] KeyAgreeRecipientInfo */
			continue;
		ri = kari;
		while (agent_der_next(&ri, &tag, &reks) == 0)
			if (tag == 0x30 && ri.p == ri.end)
				break;	/* recipientEncryptedKeys: the last field */
		if (tag != 0x30 || ri.p != ri.end)
			return -1;
		while (agent_der_next(&reks, &tag, &rek) == 0) {
			struct agent_der f;
			if (tag != 0x30 || agent_der_next(&rek, &tag, &f) == -1 ||
			    agent_der_next(&rek, &tag, enckey) == -1 || tag != 0x04)
				return -1;
			found = 1;
		}
	}
	if (!found || agent_der_next(&ed, &tag, &eci) == -1 || tag != 0x30 ||
	    agent_der_next(&eci, &tag, &x) == -1 || tag != 0x06)
		return -1;
	/* The AlgorithmIdentifier with its header, for d2i_X509_ALGOR. */
	calg->p = eci.p;
	if (agent_der_next(&eci, &tag, &x) == -1 || tag != 0x30)
		return -1;
	calg->end = x.end;
	if (agent_der_next(&eci, &tag, content) == -1 || tag != 0x80)
		return -1;
	return 0;
}

static EVP_PKEY *
agent_stream_peer(EVP_PKEY *key, ASN1_BIT_STRING *pub)
{
	OSSL_PARAM_BLD *b = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *peer = NULL;
	char group[64];

	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
	    sizeof(group), NULL) != 1 || (b = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY,
	    ASN1_STRING_get0_data(pub), (size_t)ASN1_STRING_length(pub)) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(b)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
		peer = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	return peer;
}

static const char *
agent_stream_kdf_md(int nid)
{
	switch (nid) {
	case NID_dhSinglePass_stdDH_sha1kdf_scheme: return "SHA1";
	case NID_dhSinglePass_stdDH_sha224kdf_scheme: return "SHA224";
	case NID_dhSinglePass_stdDH_sha256kdf_scheme: return "SHA256";
	case NID_dhSinglePass_stdDH_sha384kdf_scheme: return "SHA384";
	case NID_dhSinglePass_stdDH_sha512kdf_scheme: return "SHA512";
	default: return NULL;
	}
}

static int
agent_stream_kari(const unsigned char *der, size_t len, CMS_ContentInfo *cms, EVP_PKEY *key,
    unsigned char k[32], char *err, size_t errlen)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	CMS_RecipientInfo *ri = NULL;
	X509_ALGOR *pubalg, *kalg, *wrap = NULL, *calg = NULL;
	ASN1_BIT_STRING *pub;
	ASN1_OCTET_STRING *ukm;
	struct agent_der enckey, calgd, content;
	EVP_PKEY_CTX *dctx = NULL;
	EVP_PKEY *peer = NULL;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	EVP_CIPHER_CTX *c = NULL;
	EVP_CIPHER *cipher = NULL;
	OSSL_PARAM kp[4];
	const ASN1_OBJECT *aoid;
	const void *aval;
	const unsigned char *p;
	unsigned char z[132], kek[32], cek[64], plain[96], *sinfo = NULL;
	const char *md;
	size_t zlen = sizeof(z), ceklen;
	int i, atype, n, f, sinfolen, rc = -1;

	for (i = 0; i < sk_CMS_RecipientInfo_num(ris) && ri == NULL; i++)
		if (CMS_RecipientInfo_type(sk_CMS_RecipientInfo_value(ris, i)) == CMS_RECIPINFO_AGREE)
			ri = sk_CMS_RecipientInfo_value(ris, i);
	if (ri == NULL || CMS_RecipientInfo_kari_get0_orig_id(ri, &pubalg, &pub, NULL, NULL,
	    NULL) != 1 || pub == NULL || CMS_RecipientInfo_kari_get0_alg(ri, &kalg, &ukm) != 1 ||
	    agent_der_envelope(der, len, &enckey, &calgd, &content) == -1) {
		snprintf(err, errlen, "the content key holds no key agreement for this device");
		goto out;
	}
	X509_ALGOR_get0(&aoid, &atype, &aval, kalg);
	if ((md = agent_stream_kdf_md(OBJ_obj2nid(aoid))) == NULL || atype != V_ASN1_SEQUENCE) {
		snprintf(err, errlen, "the content key uses an unsupported key agreement");
		goto out;
	}
	p = ASN1_STRING_get0_data(aval);
	if ((wrap = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(aval))) == NULL ||
	    OBJ_obj2nid(wrap->algorithm) != NID_id_aes256_wrap) {
		snprintf(err, errlen, "the content key uses an unsupported key wrap");
		goto out;
	}
	/* Raw ECDH with the device key: in the TPM for a tpm2 key. */
	if ((peer = agent_stream_peer(key, pub)) == NULL ||
	    (dctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dctx) != 1 || EVP_PKEY_derive_set_peer(dctx, peer) != 1 ||
	    EVP_PKEY_derive(dctx, z, &zlen) != 1) {
		snprintf(err, errlen, "key agreement with the device key failed: %s",
		    agent_ssl_err());
		goto out;
	}
	/* X9.63 KDF over the ECC-CMS-SharedInfo (RFC 5753). */
	if ((sinfolen = CMS_SharedInfo_encode(&sinfo, wrap, ukm, 32)) <= 0 ||
	    (kdf = EVP_KDF_fetch(NULL, "X963KDF", "provider=default")) == NULL ||
	    (kctx = EVP_KDF_CTX_new(kdf)) == NULL) {
		snprintf(err, errlen, "X9.63 KDF unavailable: %s", agent_ssl_err());
		goto out;
	}
	kp[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	kp[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, zlen);
	kp[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, sinfo, (size_t)sinfolen);
	kp[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, kek, sizeof(kek), kp) != 1)
		goto fail;
	/* AES-256 key unwrap of the content-encryption key. */
	if ((c = EVP_CIPHER_CTX_new()) == NULL ||
	    (cipher = EVP_CIPHER_fetch(NULL, "AES-256-WRAP", "provider=default")) == NULL)
		goto fail;
	EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
	if (enckey.end - enckey.p > (long)sizeof(cek) || enckey.end - enckey.p < 24 ||
	    EVP_DecryptInit_ex2(c, cipher, kek, NULL, NULL) != 1 ||
	    EVP_DecryptUpdate(c, cek, &n, enckey.p, (int)(enckey.end - enckey.p)) != 1 ||
	    EVP_DecryptFinal_ex(c, cek + n, &f) != 1)
		goto fail;
	ceklen = (size_t)(n + f);
	EVP_CIPHER_free(cipher);
	cipher = NULL;
	/* The content: 32 key bytes under the content cipher (AES-CBC). */
	p = calgd.p;
	if ((calg = d2i_X509_ALGOR(NULL, &p, calgd.end - calgd.p)) == NULL)
		goto fail;
	X509_ALGOR_get0(&aoid, &atype, &aval, calg);
	if (atype != V_ASN1_OCTET_STRING ||
	    (cipher = EVP_CIPHER_fetch(NULL, OBJ_nid2sn(OBJ_obj2nid(aoid)), "provider=default")) == NULL ||
	    EVP_CIPHER_get_mode(cipher) != EVP_CIPH_CBC_MODE ||
	    (size_t)EVP_CIPHER_get_key_length(cipher) != ceklen ||
	    ASN1_STRING_length(aval) != EVP_CIPHER_get_iv_length(cipher) ||
	    content.end - content.p > (long)sizeof(plain) - 16 ||
	    EVP_DecryptInit_ex2(c, cipher, cek, ASN1_STRING_get0_data(aval), NULL) != 1 ||
	    EVP_DecryptUpdate(c, plain, &n, content.p, (int)(content.end - content.p)) != 1 ||
	    EVP_DecryptFinal_ex(c, plain + n, &f) != 1)
		goto fail;
	if (n + f != 32) {
		snprintf(err, errlen, "the content key is %d bytes, expected 32", n + f);
		goto out;
	}
	memcpy(k, plain, 32);
	rc = 0;
	goto out;
fail:
	snprintf(err, errlen, "cannot unwrap the content key with the device key: %s",
	    agent_ssl_err());
out:
	OPENSSL_cleanse(z, sizeof(z));
	OPENSSL_cleanse(kek, sizeof(kek));
	OPENSSL_cleanse(cek, sizeof(cek));
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_free(sinfo);
	EVP_CIPHER_free(cipher);
	EVP_CIPHER_CTX_free(c);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(peer);
	X509_ALGOR_free(wrap);
	X509_ALGOR_free(calg);
	return rc;
}

int
agent_stream_unwrap(const unsigned char *der, size_t len, EVP_PKEY *key, void *cert,
    unsigned char k[32], char *err, size_t errlen)
{
	CMS_ContentInfo *cms;
	const unsigned char *p = der;
	BIO *out = NULL;
	char *data;
	long n;
	int rc = -1;

	if (len > 64 * 1024 || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL ||
	    p != der + len || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_enveloped) {
		snprintf(err, errlen, "the content key is not a DER CMS EnvelopedData");
		ERR_clear_error();
		return -1;
	}
	/* A key of another provider (the TPM): the key agreement by hand. */
	if (EVP_PKEY_get0_provider(key) != NULL &&
	    strcmp(OSSL_PROVIDER_get0_name(EVP_PKEY_get0_provider(key)), "default") != 0) {
		rc = agent_stream_kari(der, len, cms, key, k, err, errlen);
		CMS_ContentInfo_free(cms);
		return rc;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (CMS_decrypt(cms, key, cert, NULL, out, CMS_BINARY) != 1) {
		snprintf(err, errlen, "cannot unwrap the content key with the device key: %s",
		    agent_ssl_err());
		goto out;
	}
	if ((n = BIO_get_mem_data(out, &data)) != 32) {
		snprintf(err, errlen, "the content key is %ld bytes, expected 32", n);
		goto out;
	}
	memcpy(k, data, 32);
	rc = 0;
out:
	if (out != NULL) {
		if ((n = BIO_get_mem_data(out, &data)) > 0)
			OPENSSL_cleanse(data, (size_t)n);
		BIO_free(out);
	}
	CMS_ContentInfo_free(cms);
	return rc;
}

/* For the unit test: the hand-made path with any key. */
int
agent_stream_unwrap_kari(const unsigned char *der, size_t len, EVP_PKEY *key,
    unsigned char k[32], char *err, size_t errlen)
{
	CMS_ContentInfo *cms;
	const unsigned char *p = der;
	int rc;

	if ((cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL) {
		snprintf(err, errlen, "not CMS");
		return -1;
	}
	rc = agent_stream_kari(der, len, cms, key, k, err, errlen);
	CMS_ContentInfo_free(cms);
	return rc;
}

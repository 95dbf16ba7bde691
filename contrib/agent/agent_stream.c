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
#include <openssl/err.h>

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

/* An originator key whose algorithm has no parameters (what OpenSSL's
 * CMS_encrypt writes) makes OpenSSL 3.0 copy the curve from the device
 * key, which fails for a provider (TPM) key. Naming the device key's curve
 * explicitly lets OpenSSL build the peer key in the key's own provider. */
static void
agent_stream_kari_params(CMS_ContentInfo *cms, EVP_PKEY *key)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	const ASN1_OBJECT *aoid;
	X509_ALGOR *alg;
	ASN1_BIT_STRING *pub;
	const void *aval;
	char group[64];
	int i, atype, nid;

	if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), NULL) != 1 ||
	    (nid = OBJ_txt2nid(group)) == NID_undef) {
		ERR_clear_error();
		return;
	}
	for (i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
		if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_AGREE ||
		    CMS_RecipientInfo_kari_get0_orig_id(ri, &alg, &pub, NULL, NULL, NULL) != 1 ||
		    alg == NULL)
			continue;
		X509_ALGOR_get0(&aoid, &atype, &aval, alg);
		if (OBJ_obj2nid(aoid) == NID_X9_62_id_ecPublicKey &&
		    (atype == V_ASN1_UNDEF || atype == V_ASN1_NULL))
			X509_ALGOR_set0(alg, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
			    OBJ_nid2obj(nid));
	}
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
	if ((out = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	agent_stream_kari_params(cms, key);
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

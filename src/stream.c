/* stream.c: the STREAM segmented AEAD of encrypted images. Every segment is
 * AES-256-GCM under the image's content key with a nonce that no other
 * segment of any image shares (random prefix, counter, last-segment flag),
 * so a decoder that checks each tag in order detects tampering, reordering
 * and truncation while it streams. Never does I/O. */
#include "stream.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

uint64_t
stream_segments(uint64_t size)
{
	return size == 0 ? 1 : (size + STREAM_SEGMENT - 1) / STREAM_SEGMENT;
}

uint64_t
stream_encrypted_size(uint64_t size)
{
	return STREAM_HEADER_LEN + size + STREAM_TAG_LEN * stream_segments(size);
}

static void
stream_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

void
stream_header(const unsigned char prefix[STREAM_PREFIX_LEN],
    unsigned char out[STREAM_HEADER_LEN])
{
	memset(out, 0, STREAM_HEADER_LEN);
	memcpy(out, STREAM_MAGIC, 8);
	out[8] = STREAM_VERSION;
	out[9] = STREAM_ALG_AES256GCM;
	stream_be32(out + 10, STREAM_SEGMENT);
	memcpy(out + 14, prefix, STREAM_PREFIX_LEN);
	/* out[21..23]: reserved, zero */
}

int
stream_header_parse(const unsigned char hdr[STREAM_HEADER_LEN],
    unsigned char prefix[STREAM_PREFIX_LEN])
{
	unsigned char want[STREAM_HEADER_LEN];

	stream_header(hdr + 14, want);
	if (memcmp(hdr, want, STREAM_HEADER_LEN) != 0)
		return -1;
	memcpy(prefix, hdr + 14, STREAM_PREFIX_LEN);
	return 0;
}

void
stream_nonce(const unsigned char prefix[STREAM_PREFIX_LEN], uint32_t counter,
    int is_last, unsigned char nonce[12])
{
	memcpy(nonce, prefix, STREAM_PREFIX_LEN);
	stream_be32(nonce + STREAM_PREFIX_LEN, counter);
	nonce[11] = is_last ? 0x01 : 0x00;
}

static int
stream_gcm(int is_seal, const unsigned char key[STREAM_KEY_LEN],
    const unsigned char hdr[STREAM_HEADER_LEN], uint32_t counter, int is_last,
    const unsigned char *in, size_t len, unsigned char *tag, unsigned char *out)
{
	unsigned char nonce[12];
	EVP_CIPHER_CTX *c;
	int n, rc = -1;

	if (len > STREAM_SEGMENT || (c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	stream_nonce(hdr + 14, counter, is_last, nonce);
	if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, is_seal) != 1 ||
	    EVP_CipherUpdate(c, NULL, &n, hdr, STREAM_HEADER_LEN) != 1 ||
	    (len > 0 && EVP_CipherUpdate(c, out, &n, in, (int)len) != 1))
		goto out;
	if (!is_seal && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG,
	    STREAM_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(c, out + len, &n) != 1)
		goto out;
	if (is_seal && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG,
	    STREAM_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int
stream_seal(const unsigned char key[STREAM_KEY_LEN],
    const unsigned char hdr[STREAM_HEADER_LEN], uint32_t counter, int is_last,
    const unsigned char *in, size_t len, unsigned char *out)
{
	return stream_gcm(1, key, hdr, counter, is_last, in, len, out + len, out);
}

int
stream_open(const unsigned char key[STREAM_KEY_LEN],
    const unsigned char hdr[STREAM_HEADER_LEN], uint32_t counter, int is_last,
    const unsigned char *in, size_t inlen, unsigned char *out)
{
	unsigned char tag[STREAM_TAG_LEN];

	if (inlen < STREAM_TAG_LEN)
		return -1;
	memcpy(tag, in + inlen - STREAM_TAG_LEN, STREAM_TAG_LEN);
	return stream_gcm(0, key, hdr, counter, is_last, in,
	    inlen - STREAM_TAG_LEN, tag, out);
}

void
stream_enc_init(struct stream_enc *e, const unsigned char key[STREAM_KEY_LEN],
    const unsigned char prefix[STREAM_PREFIX_LEN], uint64_t size)
{
	memcpy(e->key, key, STREAM_KEY_LEN);
	stream_header(prefix, e->hdr);
	e->size = size;
	e->fed = 0;
	e->counter = 0;
	e->buffered = 0;
	e->has_header = 0;
}

size_t
stream_enc_bound(size_t len)
{
	return STREAM_HEADER_LEN + len + STREAM_SEGMENT +
	    (len / STREAM_SEGMENT + 2) * STREAM_TAG_LEN;
}

/* Seal the buffered segment into out; the last one is the one that ends
 * at the announced size. */
static int
stream_enc_flush(struct stream_enc *e, unsigned char *out, size_t *outlen)
{
	int is_last = e->fed == e->size;

	if (stream_seal(e->key, e->hdr, e->counter, is_last, e->seg, e->buffered,
	    out + *outlen) == -1)
		return -1;
	*outlen += e->buffered + STREAM_TAG_LEN;
	e->counter++;
	e->buffered = 0;
	return 0;
}

int
stream_enc_update(struct stream_enc *e, const unsigned char *in, size_t len,
    unsigned char *out, size_t *outlen)
{
	*outlen = 0;
	if (len > e->size - e->fed)
		return -1;
	if (!e->has_header) {
		memcpy(out, e->hdr, STREAM_HEADER_LEN);
		*outlen = STREAM_HEADER_LEN;
		e->has_header = 1;
	}
	while (len > 0) {
		size_t n = STREAM_SEGMENT - e->buffered;

		if (n > len)
			n = len;
		memcpy(e->seg + e->buffered, in, n);
		e->buffered += n;
		e->fed += n;
		in += n;
		len -= n;
		if (e->buffered == STREAM_SEGMENT &&
		    stream_enc_flush(e, out, outlen) == -1)
			return -1;
	}
	if (e->fed == e->size && (e->buffered > 0 || e->counter == 0) &&
	    stream_enc_flush(e, out, outlen) == -1)
		return -1;
	return 0;
}

void
stream_enc_clear(struct stream_enc *e)
{
	OPENSSL_cleanse(e->key, sizeof(e->key));
	OPENSSL_cleanse(e->seg, sizeof(e->seg));
}

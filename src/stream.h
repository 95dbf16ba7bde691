/* stream.h: the segmented AES-256-GCM "STREAM" construction of encrypted
 * images (man/quarklink-image.5): a 24-byte header, then 64 KiB plaintext
 * segments each sealed with its own nonce (prefix, counter, last flag) and
 * the header as associated data. Pure OpenSSL, no I/O. */
#ifndef QL_STREAM_H
#define QL_STREAM_H

#include <stddef.h>
#include <stdint.h>

#define STREAM_KEY_LEN		32
#define STREAM_PREFIX_LEN	7
#define STREAM_TAG_LEN		16
#define STREAM_HEADER_LEN	24
#define STREAM_SEGMENT		65536
#define STREAM_MAGIC		"QLSTREAM"
#define STREAM_VERSION		1
#define STREAM_ALG_AES256GCM	1

/* Segments of a plaintext of size bytes (an empty one still has one). */
uint64_t	stream_segments(uint64_t size);
/* Bytes of the encrypted form of size plaintext bytes, header included. */
uint64_t	stream_encrypted_size(uint64_t size);
void		stream_header(const unsigned char prefix[STREAM_PREFIX_LEN],
		    unsigned char out[STREAM_HEADER_LEN]);
/* The prefix of a header that is well-formed, or -1. */
int		stream_header_parse(const unsigned char hdr[STREAM_HEADER_LEN],
		    unsigned char prefix[STREAM_PREFIX_LEN])
		    __attribute__((warn_unused_result));
void		stream_nonce(const unsigned char prefix[STREAM_PREFIX_LEN],
		    uint32_t counter, int is_last, unsigned char nonce[12]);

/* Seal segment counter (len <= STREAM_SEGMENT bytes; only the last may be
 * shorter) into out: len + STREAM_TAG_LEN bytes. open is the inverse
 * (inlen = ciphertext + tag) and fails on any mismatch. */
int		stream_seal(const unsigned char key[STREAM_KEY_LEN],
		    const unsigned char hdr[STREAM_HEADER_LEN], uint32_t counter,
		    int is_last, const unsigned char *in, size_t len,
		    unsigned char *out) __attribute__((warn_unused_result));
int		stream_open(const unsigned char key[STREAM_KEY_LEN],
		    const unsigned char hdr[STREAM_HEADER_LEN], uint32_t counter,
		    int is_last, const unsigned char *in, size_t inlen,
		    unsigned char *out) __attribute__((warn_unused_result));

/* An encryptor fed the plaintext in pieces of any size: it writes the
 * header, then each segment as soon as it is complete (the last one when
 * the announced size has been fed). */
struct stream_enc {
	unsigned char	 key[STREAM_KEY_LEN];
	unsigned char	 hdr[STREAM_HEADER_LEN];
	uint64_t	 size;		/* plaintext bytes announced */
	uint64_t	 fed;		/* plaintext bytes fed so far */
	uint32_t	 counter;	/* next segment */
	size_t		 buffered;
	int		 has_header;	/* written to the output */
	unsigned char	 seg[STREAM_SEGMENT];
};

void		stream_enc_init(struct stream_enc *,
		    const unsigned char key[STREAM_KEY_LEN],
		    const unsigned char prefix[STREAM_PREFIX_LEN], uint64_t size);
/* The most bytes stream_enc_update can write for len bytes fed. */
size_t		stream_enc_bound(size_t len);
/* Feed len bytes (never more than announced in total); *outlen gets what
 * was written to out (at most stream_enc_bound(len)). */
int		stream_enc_update(struct stream_enc *, const unsigned char *in,
		    size_t len, unsigned char *out, size_t *outlen)
		    __attribute__((warn_unused_result));
/* Wipes the key. */
void		stream_enc_clear(struct stream_enc *);

#endif

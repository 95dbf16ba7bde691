/* check_stream.c: the STREAM encryptor over a table of plaintext sizes and
 * feeding piece sizes (each output checked segment by segment against
 * stream_open and the documented layout), and the decoder's refusals:
 * a changed byte, a truncated or dropped last segment, swapped segments,
 * a changed header. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"

#define CHECK_STREAM_N(a)	(sizeof(a) / sizeof((a)[0]))
#define SEG	STREAM_SEGMENT
#define CSEG	(STREAM_SEGMENT + STREAM_TAG_LEN)

static const unsigned char check_stream_key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const unsigned char check_stream_prefix[7] = { 0xa1, 0xb2, 0xc3, 0xd4,
    0xe5, 0xf6, 0x07 };

static const struct { uint64_t size; size_t piece; uint64_t nseg; } check_stream_cases[] = {
	{ 0, 1, 1 },
	{ 1, 1, 1 },
	{ 100, 7, 1 },
	{ SEG - 1, 4096, 1 },
	{ SEG, SEG, 1 },
	{ SEG, 1000, 1 },
	{ SEG + 1, SEG, 2 },
	{ 3 * SEG, 1048576, 3 },
	{ 3 * SEG + 17, 65535, 4 },
	{ 1048576 + 5, 1048576, 17 },
};

/* Encrypt size bytes of a pattern in pieces; returns the encrypted form. */
static unsigned char *
check_stream_encrypt(uint64_t size, size_t piece, unsigned char **plain,
    size_t *enclen)
{
	struct stream_enc *e = malloc(sizeof(*e));
	unsigned char *p = malloc(size + 1), *out, *tmp;
	size_t n, off = 0, total = 0;

	ck_assert_ptr_nonnull(e);
	for (uint64_t i = 0; i < size; i++)
		p[i] = (unsigned char)(i * 31 + 7);
	out = malloc(stream_encrypted_size(size));
	tmp = malloc(stream_enc_bound(piece));
	stream_enc_init(e, check_stream_key, check_stream_prefix, size);
	ck_assert_int_eq(stream_enc_update(e, NULL, 0, tmp, &n), 0);
	memcpy(out, tmp, n);
	total = n;
	while (off < size) {
		size_t k = size - off < piece ? size - off : piece;

		ck_assert_int_eq(stream_enc_update(e, p + off, k, tmp, &n), 0);
		ck_assert_uint_le(n, stream_enc_bound(k));
		ck_assert_uint_le(total + n, stream_encrypted_size(size));
		memcpy(out + total, tmp, n);
		total += n;
		off += k;
	}
	/* More than announced is refused. */
	ck_assert_int_eq(stream_enc_update(e, p, 1, tmp, &n), -1);
	stream_enc_clear(e);
	free(e);
	free(tmp);
	*plain = p;
	*enclen = total;
	return out;
}

/* Decode as man/quarklink-image.5 says; -1 on the first failure. */
static int
check_stream_decode(const unsigned char *in, size_t len, unsigned char *out,
    size_t *outlen)
{
	unsigned char prefix[7];
	size_t off = STREAM_HEADER_LEN;
	uint32_t i = 0;

	*outlen = 0;
	if (len < STREAM_HEADER_LEN + STREAM_TAG_LEN ||
	    stream_header_parse(in, prefix) == -1)
		return -1;
	do {
		size_t n = len - off > CSEG ? CSEG : len - off;
		int is_last = off + n == len;

		if (n < STREAM_TAG_LEN || stream_open(check_stream_key, in, i,
		    is_last, in + off, n, out + *outlen) == -1)
			return -1;
		*outlen += n - STREAM_TAG_LEN;
		off += n;
		i++;
	} while (off < len);
	return 0;
}

START_TEST(test_stream_roundtrip_cases)
{
	uint64_t size = check_stream_cases[_i].size;
	unsigned char *plain, *enc, *dec;
	size_t enclen, declen;

	enc = check_stream_encrypt(size, check_stream_cases[_i].piece, &plain, &enclen);
	ck_assert_uint_eq(enclen, stream_encrypted_size(size));
	ck_assert_uint_eq(stream_segments(size), check_stream_cases[_i].nseg);
	ck_assert_mem_eq(enc, STREAM_MAGIC, 8);
	ck_assert_int_eq(enc[8], 1);
	ck_assert_int_eq(enc[9], 1);
	ck_assert_int_eq(enc[10] << 24 | enc[11] << 16 | enc[12] << 8 | enc[13], SEG);
	ck_assert_mem_eq(enc + 14, check_stream_prefix, 7);
	dec = malloc(size + 1);
	ck_assert_int_eq(check_stream_decode(enc, enclen, dec, &declen), 0);
	ck_assert_uint_eq(declen, size);
	if (size > 0)
		ck_assert_mem_eq(dec, plain, size);
	free(dec);
	free(enc);
	free(plain);
}
END_TEST

START_TEST(test_stream_nonce_layout)
{
	unsigned char n[12];

	stream_nonce(check_stream_prefix, 0x01020304, 1, n);
	ck_assert_mem_eq(n, check_stream_prefix, 7);
	ck_assert_int_eq(n[7], 1);
	ck_assert_int_eq(n[8], 2);
	ck_assert_int_eq(n[9], 3);
	ck_assert_int_eq(n[10], 4);
	ck_assert_int_eq(n[11], 1);
	stream_nonce(check_stream_prefix, 5, 0, n);
	ck_assert_int_eq(n[10], 5);
	ck_assert_int_eq(n[11], 0);
}
END_TEST

/* Each way of breaking a 4-segment image is detected. */
enum check_stream_damage { FLIP_BODY, FLIP_TAG, FLIP_HEADER, TRUNC_LAST,
	DROP_LAST, SWAP_FIRST_TWO, TRUNC_TAIL_BYTE };

START_TEST(test_stream_damage_detected)
{
	uint64_t size = 3 * SEG + 1000;
	unsigned char *plain, *enc, *dec, *tmp;
	size_t enclen, declen;

	enc = check_stream_encrypt(size, 1048576, &plain, &enclen);
	dec = malloc(size + CSEG);
	switch (_i) {
	case FLIP_BODY:
		enc[STREAM_HEADER_LEN + CSEG + 5] ^= 0x01;
		break;
	case FLIP_TAG:
		enc[enclen - 1] ^= 0x80;
		break;
	case FLIP_HEADER:
		enc[21] ^= 0x01;	/* reserved byte: the header is AD too */
		break;
	case TRUNC_LAST:	/* cut at a segment boundary: last flag is 0 */
		enclen = STREAM_HEADER_LEN + 3 * CSEG;
		break;
	case DROP_LAST:
		enclen = STREAM_HEADER_LEN + 2 * CSEG;
		break;
	case SWAP_FIRST_TWO:
		tmp = malloc(CSEG);
		memcpy(tmp, enc + STREAM_HEADER_LEN, CSEG);
		memmove(enc + STREAM_HEADER_LEN, enc + STREAM_HEADER_LEN + CSEG, CSEG);
		memcpy(enc + STREAM_HEADER_LEN + CSEG, tmp, CSEG);
		free(tmp);
		break;
	case TRUNC_TAIL_BYTE:
		enclen--;
		break;
	}
	ck_assert_int_eq(check_stream_decode(enc, enclen, dec, &declen), -1);
	free(dec);
	free(enc);
	free(plain);
}
END_TEST

static Suite *
check_stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("stream");

	tcase_add_loop_test(tc, test_stream_roundtrip_cases, 0,
	    (int)CHECK_STREAM_N(check_stream_cases));
	tcase_add_test(tc, test_stream_nonce_layout);
	tcase_add_loop_test(tc, test_stream_damage_detected, FLIP_BODY,
	    TRUNC_TAIL_BYTE + 1);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_stream_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* check_sha256state.c: a SHA-256 stopped, saved, loaded and resumed at any
 * offset gives the digest of the whole (OpenSSL's one-shot SHA256), and a
 * saved state is refused at any other offset or when malformed. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "sha256state.h"

static unsigned char check_sha256state_data[300000];

static void
check_sha256state_oneshot(size_t n, unsigned char out[32])
{
	unsigned int len = 32;

	ck_assert_int_eq(EVP_Digest(check_sha256state_data, n, out, &len,
	    EVP_sha256(), NULL), 1);
}

/* Split n bytes at each cut, saving and loading the state at every cut. */
static void
check_sha256state_split(size_t n, const size_t *cuts, size_t ncuts)
{
	unsigned char buf[SHA256STATE_LEN], want[32], got[32];
	struct sha256state s;
	size_t at = 0;

	sha256state_init(&s);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : n;

		sha256state_update(&s, check_sha256state_data + at, end - at);
		at = end;
		sha256state_save(&s, buf);
		memset(&s, 0xa5, sizeof(s));
		ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf), at), 0);
	}
	sha256state_final(&s, got);
	check_sha256state_oneshot(n, want);
	ck_assert_mem_eq(got, want, 32);
}

START_TEST(test_sha256state_resume_at_any_offset)
{
	static const struct { size_t n; size_t cuts[4]; size_t ncuts; } cases[] = {
		{ 0, { 0 }, 0 },
		{ 1, { 0 }, 1 },
		{ 63, { 1, 62 }, 2 },
		{ 64, { 64 }, 1 },
		{ 65, { 63, 64 }, 2 },
		{ 1000, { 1, 2, 3, 999 }, 4 },
		{ 300000, { 65536, 131072, 200001, 299999 }, 4 },
	};

	for (size_t i = 0; i < sizeof(check_sha256state_data); i++)
		check_sha256state_data[i] = (unsigned char)(i * 131 + (i >> 8));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_sha256state_split(cases[i].n, cases[i].cuts, cases[i].ncuts);
}
END_TEST

START_TEST(test_sha256state_load_refuses_other_offsets)
{
	unsigned char buf[SHA256STATE_LEN];
	struct sha256state s;

	sha256state_init(&s);
	sha256state_update(&s, "abcdefghij", 10);
	sha256state_save(&s, buf);
	ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf), 10), 0);
	ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf), 11), -1);
	ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf), 74), -1);
	ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf) - 1, 10), -1);
	buf[0] = 2;	/* another version */
	ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf), 10), -1);
	buf[0] = 1;
	buf[41] = 64;	/* a buffered count no state has */
	ck_assert_int_eq(sha256state_load(&s, buf, sizeof(buf), 10), -1);
}
END_TEST

static Suite *
check_sha256state_suite(void)
{
	Suite *s = suite_create("sha256state");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_sha256state_resume_at_any_offset);
	tcase_add_test(tc, test_sha256state_load_refuses_other_offsets);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_sha256state_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

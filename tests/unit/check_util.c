/* check_util.c: the rules util.c is the one home of, as tables of cases:
 * which Content-Type values name a media type, and SHA-256 against the
 * FIPS 180-2 test vectors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct check_util_media_case {
	const char	*value;		/* NULL: no header */
	const char	*type;
	int		 is;
};

static const struct check_util_media_case check_util_media_cases[] = {
	{ "application/json", "application/json", 1 },
	{ "Application/JSON", "application/json", 1 },
	{ "application/json; charset=utf-8", "application/json", 1 },
	{ "application/json ;charset=utf-8", "application/json", 1 },
	{ "application/json\t; x=y", "application/json", 1 },
	{ "application/json ", "application/json", 1 },
	{ "application/jsonx", "application/json", 0 },
	{ "application/json x", "application/json", 0 },
	{ "application/jso", "application/json", 0 },
	{ "text/json", "application/json", 0 },
	{ "", "application/json", 0 },
	{ NULL, "application/json", 0 },
	{ "application/ocsp-request", "application/ocsp-request", 1 },
	{ "application/pkcs10", "application/ocsp-request", 0 },
	{ "text/csv;header=present", "text/csv", 1 },
};

START_TEST(test_util_media_type_cases)
{
	const struct check_util_media_case *c = &check_util_media_cases[_i];

	ck_assert_msg(util_media_type_is(c->value, c->type) == c->is,
	    "case %d: \"%s\" is %s: want %d", _i, c->value ? c->value : "(null)",
	    c->type, c->is);
}
END_TEST

struct check_util_sha256_case {
	const char	*in;
	const char	*hex;
};

static const struct check_util_sha256_case check_util_sha256_cases[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
};

START_TEST(test_util_sha256_cases)
{
	const struct check_util_sha256_case *c = &check_util_sha256_cases[_i];
	unsigned char md[32];
	char hex[65];

	util_sha256(c->in, strlen(c->in), md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	ck_assert_str_eq(hex, c->hex);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("rules");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_util_media_type_cases, 0,
	    (int)(sizeof(check_util_media_cases) / sizeof(check_util_media_cases[0])));
	tcase_add_loop_test(tc, test_util_sha256_cases, 0,
	    (int)(sizeof(check_util_sha256_cases) / sizeof(check_util_sha256_cases[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* check_names.c: names.c's alphabets as a table of cases: what can be a
 * project name, a user name, a device ID, and what cannot. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

enum check_names_kind { PROJECT, USER, DEVICE_ID };

struct check_names_case {
	enum check_names_kind	 kind;
	const char		*s;
	size_t			 n;	/* 0: strlen(s) */
	int			 ok;
};

#define DEV "abcdefghijklmnopqrstuvwxyz234567"

static const struct check_names_case check_names_cases[] = {
	{ PROJECT, "demo", 0, 1 },
	{ PROJECT, "p1-x", 0, 1 },
	{ PROJECT, "0", 0, 1 },
	{ PROJECT, "", 0, 0 },
	{ PROJECT, "-lead", 0, 0 },
	{ PROJECT, "Upper", 0, 0 },
	{ PROJECT, "a_b", 0, 0 },
	{ PROJECT, "a b", 0, 0 },
	{ PROJECT, "a/b", 0, 0 },
	{ PROJECT, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabc", 0, 1 },
	{ PROJECT, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", 0, 0 },
	{ PROJECT, "ab\0c", 4, 0 },
	{ USER, "admin", 0, 1 },
	{ USER, "A.b_c@d-e", 0, 1 },
	{ USER, "", 0, 0 },
	{ USER, "a b", 0, 0 },
	{ USER, "a:b", 0, 0 },
	{ USER, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd", 0, 1 },
	{ USER, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcde", 0, 0 },
	{ DEVICE_ID, DEV, 0, 1 },
	{ DEVICE_ID, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 1 },
	{ DEVICE_ID, DEV "a", 0, 0 },
	{ DEVICE_ID, "abcdefghijklmnopqrstuvwxyz23456", 0, 0 },
	{ DEVICE_ID, "abcdefghijklmnopqrstuvwxyz234568", 0, 0 },
	{ DEVICE_ID, "abcdefghijklmnopqrstuvwxyz234561", 0, 0 },
	{ DEVICE_ID, "Abcdefghijklmnopqrstuvwxyz234567", 0, 0 },
	{ DEVICE_ID, "abcdefghijklmnop\0rstuvwxyz234567", 32, 0 },
};

START_TEST(test_names_cases)
{
	const struct check_names_case *c = &check_names_cases[_i];
	size_t n = c->n ? c->n : strlen(c->s);
	int got;

	switch (c->kind) {
	case PROJECT: got = names_is_project(c->s, n); break;
	case USER: got = names_is_user(c->s, n); break;
	default: got = names_is_device_id(c->s, n); break;
	}
	ck_assert_msg(got == c->ok, "case %d \"%s\": got %d, want %d", _i, c->s,
	    got, c->ok);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("names");
	TCase *tc = tcase_create("alphabets");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_names_cases, 0,
	    (int)(sizeof(check_names_cases) / sizeof(check_names_cases[0])));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

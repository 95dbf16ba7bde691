/* check_range.c: one byte range against a size: inclusive bounds, the
 * end clamped to the size, suffix ranges, 416 only for a start past the
 * end, and everything malformed or multiple ignored (a whole 200). */
#include <check.h>
#include <stdlib.h>

#include "range.h"

#define CHECK_RANGE_N(a)	(sizeof(a) / sizeof((a)[0]))

static const struct {
	const char		*h;
	long long		 size;
	enum range_result	 want;
	long long		 from, to;
} check_range_cases[] = {
	{ NULL, 100, RANGE_IGNORE, 0, 0 },
	{ "bytes=0-9", 100, RANGE_OK, 0, 9 },
	{ "bytes=10-", 100, RANGE_OK, 10, 99 },
	{ "bytes=90-200", 100, RANGE_OK, 90, 99 },	/* end clamped */
	{ "bytes=99-99", 100, RANGE_OK, 99, 99 },
	{ "bytes=-10", 100, RANGE_OK, 90, 99 },
	{ "bytes=-1000", 100, RANGE_OK, 0, 99 },	/* the whole of it */
	{ "BYTES=1-2", 100, RANGE_OK, 1, 2 },
	{ "bytes=100-", 100, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=100-200", 100, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=-0", 100, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=0-", 0, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=-5", 0, RANGE_UNSATISFIABLE, 0, 0 },
	{ "bytes=5-1", 100, RANGE_IGNORE, 0, 0 },	/* last < first */
	{ "bytes=0-1,5-6", 100, RANGE_IGNORE, 0, 0 },	/* several */
	{ "bytes=-", 100, RANGE_IGNORE, 0, 0 },
	{ "bytes=a-b", 100, RANGE_IGNORE, 0, 0 },
	{ "bytes= 1-2", 100, RANGE_IGNORE, 0, 0 },
	{ "bytes=+1-2", 100, RANGE_IGNORE, 0, 0 },
	{ "bytes=1", 100, RANGE_IGNORE, 0, 0 },
	{ "items=1-2", 100, RANGE_IGNORE, 0, 0 },
	{ "bytes=99999999999999999999-", 100, RANGE_IGNORE, 0, 0 },	/* overflow */
	{ "bytes=1-99999999999999999999", 100, RANGE_IGNORE, 0, 0 },
	{ "bytes=0123456789012345678901234-", 100, RANGE_IGNORE, 0, 0 },	/* too long */
};

START_TEST(test_range_parse_table)
{
	long long from = 0, to = 0;
	enum range_result r = range_parse(check_range_cases[_i].h,
	    check_range_cases[_i].size, &from, &to);

	ck_assert_msg(r == check_range_cases[_i].want, "%s: result %d, want %d",
	    check_range_cases[_i].h ? check_range_cases[_i].h : "(null)", (int)r,
	    (int)check_range_cases[_i].want);
	if (r == RANGE_OK) {
		ck_assert_int_eq(from, check_range_cases[_i].from);
		ck_assert_int_eq(to, check_range_cases[_i].to);
	}
}
END_TEST

static Suite *
check_range_suite(void)
{
	Suite *s = suite_create("range");
	TCase *tc = tcase_create("range");

	tcase_add_loop_test(tc, test_range_parse_table, 0,
	    (int)CHECK_RANGE_N(check_range_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_range_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

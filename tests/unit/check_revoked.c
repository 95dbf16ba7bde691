/* check_revoked.c: the revoked set is keyed by issuing CA and serial
 * together: the same serial under another CA is another certificate; keys
 * are 32 lowercase hex digits; set/unset are idempotent. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "revoked.h"

#define CHECK_REVOKED_N(a)	(sizeof(a) / sizeof((a)[0]))
#define S1	"0123456789abcdef0123456789abcdef"
#define S2	"0123456789abcdef0123456789abcdee"

static const struct {
	const char	*serial;
	int		 ok;
} check_revoked_keys[] = {
	{ S1, 1 },
	{ "00000000000000000000000000000000", 1 },
	{ "0123456789ABCDEF0123456789ABCDEF", 0 },	/* upper case */
	{ "0123456789abcdef0123456789abcde", 0 },	/* 31 digits */
	{ "0123456789abcdef0123456789abcdef0", 0 },	/* 33 digits */
	{ "0123456789abcdef0123456789abcdeg", 0 },
	{ "-", 0 },					/* ca_serial_hex: not ours */
	{ "", 0 },
};

START_TEST(test_revoked_key_set_checks_serial)
{
	struct revoked_key k;
	int rc = revoked_key_set(&k, 1, check_revoked_keys[_i].serial);

	ck_assert_int_eq(rc == 0, check_revoked_keys[_i].ok);
	if (rc == 0) {
		ck_assert_int_eq(k.ca_id, 1);
		ck_assert_str_eq(k.serial, check_revoked_keys[_i].serial);
	}
}
END_TEST

/* After revoking (ca 1, S1) and (ca 2, S2): which pairs are revoked. */
static const struct {
	long long	 ca_id;
	const char	*serial;
	int		 is_revoked;
} check_revoked_lookups[] = {
	{ 1, S1, 1 },
	{ 2, S2, 1 },
	{ 2, S1, 0 },	/* S1 under another CA */
	{ 1, S2, 0 },
	{ 3, S1, 0 },
};

START_TEST(test_revoked_issuer_and_serial_together)
{
	struct revoked *r = revoked_new();
	struct revoked_key k;

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(revoked_key_set(&k, 1, S1), 0);
	ck_assert_int_eq(revoked_set(r, &k, 1), 0);
	ck_assert_int_eq(revoked_key_set(&k, 2, S2), 0);
	ck_assert_int_eq(revoked_set(r, &k, 1), 0);
	ck_assert_int_eq(revoked_key_set(&k, check_revoked_lookups[_i].ca_id,
	    check_revoked_lookups[_i].serial), 0);
	ck_assert_int_eq(revoked_has(r, &k), check_revoked_lookups[_i].is_revoked);
	revoked_free(r);
}
END_TEST

START_TEST(test_revoked_set_unset_idempotent)
{
	struct revoked *r = revoked_new();
	struct revoked_key a, b;

	ck_assert_int_eq(revoked_key_set(&a, 1, S1), 0);
	ck_assert_int_eq(revoked_key_set(&b, 2, S1), 0);
	ck_assert_int_eq(revoked_set(r, &a, 1), 0);
	ck_assert_int_eq(revoked_set(r, &a, 1), 0);
	ck_assert_int_eq(revoked_set(r, &b, 1), 0);
	ck_assert_int_eq(revoked_set(r, &a, 0), 0);
	ck_assert_int_eq(revoked_has(r, &a), 0);
	ck_assert_int_eq(revoked_has(r, &b), 1);	/* the other CA's stays */
	ck_assert_int_eq(revoked_set(r, &a, 0), 0);
	revoked_clear(r);
	ck_assert_int_eq(revoked_has(r, &b), 0);
	revoked_free(r);
}
END_TEST

/* NOTIFY ql_revocation payloads: "ca_id:serial:0|1" or nothing usable. */
static const struct {
	const char	*payload;
	int		 ok;
	long long	 ca_id;
	int		 is_revoked;
} check_revoked_payloads[] = {
	{ "1:" S1 ":1", 1, 1, 1 },
	{ "42:" S1 ":0", 1, 42, 0 },
	{ "9223372036854775807:" S1 ":1", 1, 9223372036854775807LL, 1 },
	{ "0:" S1 ":1", 0, 0, 0 },		/* ids start at 1 */
	{ "-1:" S1 ":1", 0, 0, 0 },
	{ "1:" S1 ":2", 0, 0, 0 },
	{ "1:" S1 ":", 0, 0, 0 },
	{ "1:" S1, 0, 0, 0 },
	{ "1:" S1 ":1:x", 0, 0, 0 },		/* the flag is one digit */
	{ "1:0123456789ABCDEF0123456789ABCDEF:1", 0, 0, 0 },
	{ "x:" S1 ":1", 0, 0, 0 },
	{ ":" S1 ":1", 0, 0, 0 },
	{ "", 0, 0, 0 },
	{ "1:" S1 ":1" "                                  ", 0, 0, 0 },	/* too long */
};

START_TEST(test_revoked_payload_parse)
{
	struct revoked_key k;
	int is_revoked = -1;
	int rc = revoked_payload_parse(check_revoked_payloads[_i].payload, &k,
	    &is_revoked);

	ck_assert_int_eq(rc == 0, check_revoked_payloads[_i].ok);
	if (rc == 0) {
		ck_assert_int_eq(k.ca_id, check_revoked_payloads[_i].ca_id);
		ck_assert_str_eq(k.serial, S1);
		ck_assert_int_eq(is_revoked, check_revoked_payloads[_i].is_revoked);
	}
}
END_TEST

START_TEST(test_revoked_payload_null)
{
	struct revoked_key k;
	int is_revoked;

	ck_assert_int_eq(revoked_payload_parse(NULL, &k, &is_revoked), -1);
}
END_TEST

static Suite *
check_revoked_suite(void)
{
	Suite *s = suite_create("revoked");
	TCase *tc = tcase_create("revoked");

	tcase_add_loop_test(tc, test_revoked_key_set_checks_serial, 0,
	    (int)CHECK_REVOKED_N(check_revoked_keys));
	tcase_add_loop_test(tc, test_revoked_issuer_and_serial_together, 0,
	    (int)CHECK_REVOKED_N(check_revoked_lookups));
	tcase_add_test(tc, test_revoked_set_unset_idempotent);
	tcase_add_loop_test(tc, test_revoked_payload_parse, 0,
	    (int)CHECK_REVOKED_N(check_revoked_payloads));
	tcase_add_test(tc, test_revoked_payload_null);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_revoked_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

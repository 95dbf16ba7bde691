/* check_www.c: www.c's pure parts: content types by extension, which names
 * count as content-hashed (cached as immutable), and If-None-Match lists. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "www.h"

/* www.c's request side is not under test here: these stand in for http.c,
 * which would pull the whole server into this program. */
void http_reply(struct http_req *hr, int st, const char *ct, struct evbuffer *b) { (void)hr; (void)st; (void)ct; (void)b; }
void http_reply_problem(struct http_req *hr, int st, const char *t, const char *fmt, ...) { (void)hr; (void)st; (void)t; (void)fmt; }
void http_add_header(struct http_req *hr, const char *n, const char *v) { (void)hr; (void)n; (void)v; }
const char *http_header(struct http_req *hr, const char *n) { (void)hr; (void)n; return NULL; }
int http_method(struct http_req *hr) { (void)hr; return 0; }

#define CHECK_WWW_N(a)	(sizeof(a) / sizeof((a)[0]))

static const struct { const char *name, *type; } check_www_types[] = {
	{ "/index.html", "text/html; charset=utf-8" },
	{ "/assets/app.js", "text/javascript; charset=utf-8" },
	{ "/assets/APP.JS", "text/javascript; charset=utf-8" },
	{ "/assets/app.css", "text/css; charset=utf-8" },
	{ "/vendor/vendor.json", "application/json" },
	{ "/assets/icon.svg", "image/svg+xml" },
	{ "/vendor/x.LICENSE.txt", "text/plain; charset=utf-8" },
	{ "/assets/noext", "application/octet-stream" },
	{ "/assets.d/noext", "application/octet-stream" },
	{ "/assets/x.exe", "application/octet-stream" },
};

START_TEST(test_www_content_type_cases)
{
	ck_assert_str_eq(www_content_type(check_www_types[_i].name),
	    check_www_types[_i].type);
}
END_TEST

static const struct { const char *name; int is_hashed; } check_www_hashed[] = {
	{ "/vendor/tus.8cbb1b63fccc3bba.js", 1 },
	{ "/assets/chunk.0123abcd.js", 1 },
	{ "uPlot.df630c6a8d6f8eea.css", 1 },
	{ "/assets/app.js", 0 },
	{ "/assets/chunk.0123abc.js", 0 },		/* 7 digits: too short */
	{ "/assets/chunk.0123ABCD.js", 0 },		/* upper case is not ours */
	{ "/assets/chunk.0123abcg.js", 0 },
	{ "/assets/0123abcd.js", 0 },			/* no name before it */
	{ "/assets/.0123abcd.js", 0 },
	{ "/assets/x.0123abcd", 0 },			/* hash is the extension */
	{ "/assets.0123abcd/app.js", 0 },		/* a directory's name */
	{ "/index.html", 0 },
	{ "", 0 },
};

START_TEST(test_www_is_hashed_cases)
{
	ck_assert_msg(www_is_hashed(check_www_hashed[_i].name) ==
	    check_www_hashed[_i].is_hashed, "%s", check_www_hashed[_i].name);
}
END_TEST

#define E "\"0123456789abcdef0123456789abcdef\""
static const struct { const char *inm; int matches; } check_www_inm[] = {
	{ E, 1 },
	{ "W/" E, 1 },
	{ "*", 1 },
	{ "\"aa\", " E, 1 },
	{ "\"aa\"," E ",\"bb\"", 1 },
	{ "  " E "  ", 1 },
	{ "\"aa\", W/" E, 1 },
	{ "", 0 },
	{ "\"aa\"", 0 },
	{ "0123456789abcdef0123456789abcdef", 0 },	/* not quoted */
	{ "\"0123456789abcdef0123456789abcde\"", 0 },
	{ E "x", 0 },
	{ ",,,", 0 },
};

START_TEST(test_www_etag_matches_cases)
{
	ck_assert_msg(www_etag_matches(check_www_inm[_i].inm, E) ==
	    check_www_inm[_i].matches, "%s", check_www_inm[_i].inm);
}
END_TEST

static Suite *
check_www_suite(void)
{
	Suite *s = suite_create("www");
	TCase *tc = tcase_create("pure");

	tcase_add_loop_test(tc, test_www_content_type_cases, 0,
	    (int)CHECK_WWW_N(check_www_types));
	tcase_add_loop_test(tc, test_www_is_hashed_cases, 0,
	    (int)CHECK_WWW_N(check_www_hashed));
	tcase_add_loop_test(tc, test_www_etag_matches_cases, 0,
	    (int)CHECK_WWW_N(check_www_inm));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_www_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* check_route.c: route_lookup over a fixed table (literal paths, {params},
 * trailing "*", per-listener routes, one path split over two entries), the
 * Allow header it feeds, and route_query_check. Handlers are dummies that record a tag. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "route.h"

#define CHECK_ROUTE_N(a)	(sizeof(a) / sizeof((a)[0]))

#define GET	EVHTTP_REQ_GET
#define HEAD	EVHTTP_REQ_HEAD
#define POST	EVHTTP_REQ_POST
#define PUT	EVHTTP_REQ_PUT
#define PATCH	EVHTTP_REQ_PATCH
#define DELETE	EVHTTP_REQ_DELETE
#define OPTIONS	EVHTTP_REQ_OPTIONS
#define ADM	ROUTE_ADMIN
#define DEV	ROUTE_DEVICE
#define PKI	ROUTE_PKI

/* Each handler leaves its own tag, so a match is checked by calling it. */
static int check_route_called;

static void check_route_h0(struct http_req *r) { check_route_called = 0; }
static void check_route_h1(struct http_req *r) { check_route_called = 1; }
static void check_route_h2(struct http_req *r) { check_route_called = 2; }
static void check_route_h3(struct http_req *r) { check_route_called = 3; }
static void check_route_h4(struct http_req *r) { check_route_called = 4; }
static void check_route_h5(struct http_req *r) { check_route_called = 5; }
static void check_route_h6(struct http_req *r) { check_route_called = 6; }
static void check_route_h7(struct http_req *r) { check_route_called = 7; }
static void check_route_h8(struct http_req *r) { check_route_called = 8; }
static void check_route_h9(struct http_req *r) { check_route_called = 9; }
static void check_route_h10(struct http_req *r) { check_route_called = 10; }
static void check_route_h11(struct http_req *r) { check_route_called = 11; }
static void check_route_h12(struct http_req *r) { check_route_called = 12; }

static const struct route check_route_table[] = {
	/* 0 */ { "/health", GET, ADM | DEV | PKI, check_route_h0, 0, NULL },
	/* 1 */ { "/api/v1/projects", GET, ADM, check_route_h1, 0, NULL },
	/* 2 */ { "/api/v1/projects", POST, ADM, check_route_h2, 0, NULL },
	/* 3 */ { "/api/v1/projects/{id}", GET | DELETE, ADM, check_route_h3, 0, NULL },
	/* 4 */ { "/api/v1/projects/{pid}/devices/{did}", GET | PATCH, ADM, check_route_h4, 0, NULL },
	/* 5 */ { "/.well-known/est/simpleenroll", POST, DEV, check_route_h5, 0, NULL },
	/* 6 */ { "/.well-known/est/cacerts", GET, DEV | PKI, check_route_h6, 0, NULL },
	/* 7 */ { "/pki/*", GET, PKI, check_route_h7, 0, NULL },
	/* 8 */ { "/", GET, PKI, check_route_h8, 0, NULL },
	/* 9 */ { "/config", GET, ADM, check_route_h9, 0, NULL },
	/* 10 */ { "/config", PUT, DEV, check_route_h10, 0, NULL },
	/* 11 */ { "/q/{a}/{b}/{c}/{d}", GET, ADM, check_route_h11, 0, NULL },
	/* 12 */ { "/files/{id}/*", PUT | GET, DEV, check_route_h12, 0, NULL },
};

struct check_route_case {
	unsigned		 listener;
	unsigned		 method;
	const char		*path;
	enum route_result	 result;
	int			 route;		/* index when FOUND */
	size_t			 nparams;
	const char		*param[ROUTE_MAX_PARAMS];
	unsigned		 allowed;	/* when METHOD_NOT_ALLOWED */
};

#define FOUND(l, m, p, r, n, ...) \
	{ (l), (m), (p), ROUTE_FOUND, (r), (n), { __VA_ARGS__ }, 0 }
#define NOTFOUND(l, m, p) \
	{ (l), (m), (p), ROUTE_NOT_FOUND, -1, 0, { NULL }, 0 }
#define NOTALLOWED(l, m, p, a) \
	{ (l), (m), (p), ROUTE_METHOD_NOT_ALLOWED, -1, 0, { NULL }, (a) }

static const struct check_route_case check_route_cases[] = {
	/* literal paths, on every listener the mask names */
	FOUND(ADM, GET, "/health", 0, 0, NULL),
	FOUND(DEV, GET, "/health", 0, 0, NULL),
	FOUND(PKI, GET, "/health", 0, 0, NULL),
	FOUND(ADM | DEV, GET, "/health", 0, 0, NULL),
	FOUND(PKI, GET, "/", 8, 0, NULL),
	FOUND(DEV, POST, "/.well-known/est/simpleenroll", 5, 0, NULL),
	FOUND(PKI, GET, "/.well-known/est/cacerts", 6, 0, NULL),
	FOUND(DEV, GET, "/.well-known/est/cacerts", 6, 0, NULL),
	/* one path, two entries, picked by method */
	FOUND(ADM, GET, "/api/v1/projects", 1, 0, NULL),
	FOUND(ADM, POST, "/api/v1/projects", 2, 0, NULL),
	/* one path, two entries, picked by listener */
	FOUND(ADM, GET, "/config", 9, 0, NULL),
	FOUND(DEV, PUT, "/config", 10, 0, NULL),
	/* HEAD is served by GET routes */
	FOUND(PKI, HEAD, "/health", 0, 0, NULL),
	FOUND(ADM, HEAD, "/api/v1/projects", 1, 0, NULL),
	FOUND(ADM, HEAD, "/api/v1/projects/5", 3, 1, "5"),
	FOUND(PKI, HEAD, "/pki/ca.crl", 7, 0, NULL),
	/* {params} point into the path with their length */
	FOUND(ADM, GET, "/api/v1/projects/42", 3, 1, "42"),
	FOUND(ADM, DELETE, "/api/v1/projects/abc-def_0", 3, 1, "abc-def_0"),
	FOUND(ADM, GET, "/api/v1/projects/%7Bid%7D", 3, 1, "%7Bid%7D"),
	FOUND(ADM, GET, "/api/v1/projects/{id}", 3, 1, "{id}"),
	FOUND(ADM, GET, "/api/v1/projects/p1/devices/d2", 4, 2, "p1", "d2"),
	FOUND(ADM, PATCH, "/api/v1/projects/x/devices/y", 4, 2, "x", "y"),
	FOUND(ADM, GET, "/q/1/22/333/4444", 11, 4, "1", "22", "333", "4444"),
	/* trailing "*" takes the rest, however deep, even empty */
	FOUND(PKI, GET, "/pki/ca.crl", 7, 0, NULL),
	FOUND(PKI, GET, "/pki/a/b/c", 7, 0, NULL),
	FOUND(PKI, GET, "/pki/", 7, 0, NULL),
	FOUND(PKI, GET, "/pki//", 7, 0, NULL),
	FOUND(DEV, PUT, "/files/f9/a/b", 12, 1, "f9"),
	FOUND(DEV, GET, "/files/f9/", 12, 1, "f9"),

	/* a route that exists only on another listener */
	NOTFOUND(DEV, GET, "/api/v1/projects"),
	NOTFOUND(PKI, POST, "/api/v1/projects"),
	NOTFOUND(ADM, POST, "/.well-known/est/simpleenroll"),
	NOTFOUND(ADM, GET, "/pki/ca.crl"),
	NOTFOUND(ADM, GET, "/"),
	NOTFOUND(PKI, GET, "/config"),
	NOTFOUND(0, GET, "/health"),
	/* trailing slash is another path */
	NOTFOUND(ADM, GET, "/health/"),
	NOTFOUND(ADM, GET, "/api/v1/projects/"),
	NOTFOUND(ADM, GET, "/api/v1/projects/7/"),
	/* empty segment where a param is expected */
	NOTFOUND(ADM, GET, "/api/v1/projects//devices/d"),
	NOTFOUND(ADM, GET, "/api/v1/projects/p/devices/"),
	NOTFOUND(ADM, GET, "/q/1//3/4"),
	NOTFOUND(DEV, GET, "/files//x"),
	/* extra or missing segments */
	NOTFOUND(ADM, GET, "/api/v1/projects/1/extra"),
	NOTFOUND(ADM, GET, "/api/v1/projects/1/devices/2/x"),
	NOTFOUND(ADM, GET, "/api/v1/projects/1/devices"),
	NOTFOUND(ADM, GET, "/q/1/2/3"),
	NOTFOUND(ADM, GET, "/q/1/2/3/4/5"),
	NOTFOUND(ADM, GET, "/health/x"),
	NOTFOUND(PKI, GET, "/pki"),
	NOTFOUND(DEV, GET, "/files/f9"),
	/* near misses on literals */
	NOTFOUND(ADM, GET, "/api/v1/project"),
	NOTFOUND(ADM, GET, "/api/v1/projectsX"),
	NOTFOUND(ADM, GET, "/HEALTH"),
	NOTFOUND(ADM, GET, "health"),
	NOTFOUND(ADM, GET, "//health"),
	NOTFOUND(ADM, GET, ""),
	NOTFOUND(PKI, GET, "*"),
	NOTFOUND(PKI, GET, "/pkix/a"),

	/* right path, wrong method: the union of what the path allows */
	NOTALLOWED(ADM, PUT, "/api/v1/projects", GET | POST),
	NOTALLOWED(ADM, DELETE, "/api/v1/projects", GET | POST),
	NOTALLOWED(ADM, POST, "/api/v1/projects/7", GET | DELETE),
	NOTALLOWED(ADM, PUT, "/api/v1/projects/7/devices/8", GET | PATCH),
	NOTALLOWED(DEV, GET, "/.well-known/est/simpleenroll", POST),
	NOTALLOWED(DEV, HEAD, "/.well-known/est/simpleenroll", POST),
	NOTALLOWED(DEV, PUT, "/.well-known/est/cacerts", GET),
	NOTALLOWED(ADM, DELETE, "/health", GET),
	NOTALLOWED(ADM, OPTIONS, "/health", GET),
	NOTALLOWED(PKI, POST, "/pki/x", GET),
	NOTALLOWED(PKI, POST, "/", GET),
	NOTALLOWED(DEV, DELETE, "/files/1/2", PUT | GET),
	/* methods of the same path on another listener are not offered */
	NOTALLOWED(ADM, PUT, "/config", GET),
	NOTALLOWED(DEV, GET, "/config", PUT),
	NOTALLOWED(DEV, HEAD, "/config", PUT),
};

START_TEST(test_route_lookup_cases)
{
	const struct check_route_case *tc = &check_route_cases[_i];
	struct route_match m;
	enum route_result rc;

	memset(&m, 0xa5, sizeof(m));
	rc = route_lookup(check_route_table, CHECK_ROUTE_N(check_route_table),
	    tc->listener, tc->method, tc->path, &m);
	ck_assert_msg(rc == tc->result, "%s (listener %u, method %u): "
	    "result %d, expected %d", tc->path, tc->listener, tc->method,
	    (int)rc, (int)tc->result);

	switch (tc->result) {
	case ROUTE_FOUND:
		ck_assert_msg(m.route == &check_route_table[tc->route],
		    "%s: matched route %td, expected %d", tc->path,
		    m.route - check_route_table, tc->route);
		check_route_called = -1;
		m.route->handler(NULL);
		ck_assert_int_eq(check_route_called, tc->route);
		ck_assert_uint_eq(m.nparams, tc->nparams);
		for (size_t i = 0; i < tc->nparams; i++) {
			size_t want = strlen(tc->param[i]);

			/* the param is a slice of the caller's path */
			ck_assert(m.param[i] >= tc->path &&
			    m.param[i] + m.param_len[i] <=
			    tc->path + strlen(tc->path));
			ck_assert_uint_eq(m.param_len[i], want);
			ck_assert_msg(memcmp(m.param[i], tc->param[i], want) == 0,
			    "%s: param %zu is \"%.*s\", expected \"%s\"",
			    tc->path, i, (int)m.param_len[i], m.param[i],
			    tc->param[i]);
		}
		break;
	case ROUTE_NOT_FOUND:
		ck_assert_ptr_null(m.route);
		ck_assert_uint_eq(m.nparams, 0);
		ck_assert_uint_eq(m.allowed, 0);
		break;
	case ROUTE_METHOD_NOT_ALLOWED:
		ck_assert_ptr_null(m.route);
		ck_assert_uint_eq(m.nparams, 0);
		ck_assert_msg(m.allowed == tc->allowed, "%s: allowed 0x%x, "
		    "expected 0x%x", tc->path, m.allowed, tc->allowed);
		break;
	}
}
END_TEST

/* An empty table finds nothing. */
START_TEST(test_route_lookup_empty_table_not_found)
{
	struct route_match m;

	ck_assert_int_eq(route_lookup(check_route_table, 0, ADM, GET,
	    "/health", &m), ROUTE_NOT_FOUND);
	ck_assert_ptr_null(m.route);
}
END_TEST

/* The first matching entry wins when two patterns cover one path. */
START_TEST(test_route_lookup_first_entry_wins)
{
	static const struct route table[] = {
		{ "/a/{x}", GET, ADM, check_route_h1, 0, NULL },
		{ "/a/b", GET, ADM, check_route_h2, 0, NULL },
		{ "/a/*", GET | POST, ADM, check_route_h3, 0, NULL },
	};
	struct route_match m;

	ck_assert_int_eq(route_lookup(table, 3, ADM, GET, "/a/b", &m),
	    ROUTE_FOUND);
	ck_assert_ptr_eq(m.route, &table[0]);
	ck_assert_uint_eq(m.nparams, 1);
	ck_assert_int_eq(route_lookup(table, 3, ADM, POST, "/a/b", &m),
	    ROUTE_FOUND);
	ck_assert_ptr_eq(m.route, &table[2]);
	ck_assert_uint_eq(m.nparams, 0);
}
END_TEST

struct check_route_allow_case {
	unsigned	 methods;
	const char	*want;
};

static const struct check_route_allow_case check_route_allow_cases[] = {
	{ 0, "" },
	{ GET, "GET, HEAD" },
	{ GET | HEAD, "GET, HEAD" },
	{ HEAD, "HEAD" },
	{ POST, "POST" },
	{ GET | POST, "GET, HEAD, POST" },
	{ POST | GET, "GET, HEAD, POST" },
	{ DELETE | GET, "GET, HEAD, DELETE" },
	{ DELETE | PATCH | PUT | POST, "POST, PUT, PATCH, DELETE" },
	{ PUT | OPTIONS, "PUT, OPTIONS" },
	{ GET | POST | PUT | PATCH | DELETE | OPTIONS,
	    "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" },
};

START_TEST(test_route_allow_header_cases)
{
	const struct check_route_allow_case *tc = &check_route_allow_cases[_i];
	char buf[128];

	memset(buf, 'Z', sizeof(buf));
	route_allow_header(tc->methods, buf, sizeof(buf));
	ck_assert_str_eq(buf, tc->want);
}
END_TEST

/* What a 405 reply would send, straight from a lookup. */
START_TEST(test_route_allow_header_from_lookup)
{
	struct route_match m;
	char buf[64];

	ck_assert_int_eq(route_lookup(check_route_table,
	    CHECK_ROUTE_N(check_route_table), ADM, PUT, "/api/v1/projects", &m),
	    ROUTE_METHOD_NOT_ALLOWED);
	route_allow_header(m.allowed, buf, sizeof(buf));
	ck_assert_str_eq(buf, "GET, HEAD, POST");
}
END_TEST

/* Every buffer size from 1 up: never writes past len, always terminates,
 * and what it writes is a prefix of the full header. */
START_TEST(test_route_allow_header_small_buffer_safe)
{
	static const char full[] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
	size_t len = (size_t)_i;
	char buf[sizeof(full) + 16];

	memset(buf, 'Z', sizeof(buf));
	route_allow_header(GET | POST | PUT | PATCH | DELETE | OPTIONS, buf, len);
	ck_assert_msg(memchr(buf, '\0', len) != NULL, "len %zu: unterminated",
	    len);
	for (size_t i = len; i < sizeof(buf); i++)
		ck_assert_msg(buf[i] == 'Z', "len %zu: wrote byte %zu", len, i);
	ck_assert_msg(strncmp(buf, full, strlen(buf)) == 0,
	    "len %zu: \"%s\" is not a prefix", len, buf);
	if (len >= sizeof(full))
		ck_assert_str_eq(buf, full);
	else
		ck_assert_uint_lt(strlen(buf), strlen(full));
}
END_TEST

/* Query strings against a route's declared names: what libevent's parser
 * would reject, what a handler would never read, and what is ambiguous. */
struct check_route_query_case {
	const char		*query;
	enum route_query_result	 result;
	const char		*name;		/* the name reported */
};

static const char *const check_route_query_names[] = {
	"limit", "after", "revoked", NULL
};

static const struct check_route_query_case check_route_query_cases[] = {
	{ NULL, ROUTE_QUERY_OK, "" },
	{ "", ROUTE_QUERY_OK, "" },
	{ "revoked=true", ROUTE_QUERY_OK, "" },
	{ "limit=5&after=abc&revoked=false", ROUTE_QUERY_OK, "" },
	{ "revoked=", ROUTE_QUERY_OK, "" },		/* the handler judges "" */
	{ "after=a%3Db%26c", ROUTE_QUERY_OK, "" },	/* encoded = and & */
	{ "after=x=y", ROUTE_QUERY_OK, "" },		/* value holds "=" */
	{ "revoked=true&x", ROUTE_QUERY_NO_VALUE, "x" },	/* issue 10 */
	{ "x&revoked=true", ROUTE_QUERY_NO_VALUE, "x" },
	{ "revoked", ROUTE_QUERY_NO_VALUE, "revoked" },
	{ "revoked=true&", ROUTE_QUERY_NO_NAME, "" },
	{ "&revoked=true", ROUTE_QUERY_NO_NAME, "" },
	{ "limit=1&&revoked=true", ROUTE_QUERY_NO_NAME, "" },
	{ "=true", ROUTE_QUERY_NO_NAME, "" },
	{ "revoked=true%00x", ROUTE_QUERY_NUL, "revoked" },
	{ "revoked=%00", ROUTE_QUERY_NUL, "revoked" },
	{ "revoked=%0", ROUTE_QUERY_OK, "" },
	{ "revokd=true", ROUTE_QUERY_UNKNOWN, "revokd" },
	{ "limit=1&Revoked=true", ROUTE_QUERY_UNKNOWN, "Revoked" },
	{ "revoke=true", ROUTE_QUERY_UNKNOWN, "revoke" },	/* a prefix */
	{ "revokedx=true", ROUTE_QUERY_UNKNOWN, "revokedx" },
	{ "revok%65d=true", ROUTE_QUERY_UNKNOWN, "revok%65d" },	/* not decoded */
	{ "a\"b=1", ROUTE_QUERY_UNKNOWN, "a?b" },	/* printable, no quote */
	{ "revoked=true&revoked=false", ROUTE_QUERY_REPEATED, "revoked" },
	{ "limit=1&after=2&limit=3", ROUTE_QUERY_REPEATED, "limit" },
};

START_TEST(test_route_query_cases)
{
	const struct check_route_query_case *tc = &check_route_query_cases[_i];
	enum route_query_result rc;
	char name[16];

	memset(name, 'Z', sizeof(name));
	rc = route_query_check(check_route_query_names, tc->query, name,
	    sizeof(name));
	ck_assert_msg(rc == tc->result, "\"%s\": result %d, expected %d",
	    tc->query ? tc->query : "(null)", (int)rc, (int)tc->result);
	if (rc != ROUTE_QUERY_OK && rc != ROUTE_QUERY_NO_NAME)
		ck_assert_str_eq(name, tc->name);
}
END_TEST

/* A route that declares nothing takes no parameter at all; a long name is
 * cut to the buffer. */
START_TEST(test_route_query_none_declared)
{
	char name[8];

	ck_assert_int_eq(route_query_check(NULL, "", name, sizeof(name)),
	    ROUTE_QUERY_OK);
	ck_assert_int_eq(route_query_check(NULL, "limit=1", name, sizeof(name)),
	    ROUTE_QUERY_UNKNOWN);
	ck_assert_str_eq(name, "limit");
	ck_assert_int_eq(route_query_check(NULL, "abcdefghijkl=1", name,
	    sizeof(name)), ROUTE_QUERY_UNKNOWN);
	ck_assert_str_eq(name, "abcdefg");
}
END_TEST

static Suite *
check_route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc;

	tc = tcase_create("lookup");
	tcase_add_loop_test(tc, test_route_lookup_cases, 0,
	    (int)CHECK_ROUTE_N(check_route_cases));
	tcase_add_test(tc, test_route_lookup_empty_table_not_found);
	tcase_add_test(tc, test_route_lookup_first_entry_wins);
	suite_add_tcase(s, tc);

	tc = tcase_create("query");
	tcase_add_loop_test(tc, test_route_query_cases, 0,
	    (int)CHECK_ROUTE_N(check_route_query_cases));
	tcase_add_test(tc, test_route_query_none_declared);
	suite_add_tcase(s, tc);

	tc = tcase_create("allow_header");
	tcase_add_loop_test(tc, test_route_allow_header_cases, 0,
	    (int)CHECK_ROUTE_N(check_route_allow_cases));
	tcase_add_test(tc, test_route_allow_header_from_lookup);
	tcase_add_loop_test(tc, test_route_allow_header_small_buffer_safe, 1,
	    (int)sizeof("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS") + 4);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_route_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

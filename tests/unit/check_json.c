/* check_json.c: json_parse (validity, depth bound, UTF-8, NUL, length not
 * NUL-terminated), member lookups, and generation through json_gen_* into
 * an evbuffer compared byte for byte with the expected document. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "json.h"

#define CHECK_JSON_N(a)	(sizeof(a) / sizeof((a)[0]))
/* A literal with its exact length, embedded NULs included. */
#define L(s)		{ (s), sizeof(s) - 1 }

struct check_json_text {
	const char	*s;
	size_t		 len;
};

static yajl_val
check_json_parse(const struct check_json_text *t, int max_depth, char *err,
    size_t errlen)
{
	char *copy;
	yajl_val v;

	/* An exact-size heap copy, so a read past len is an ASan error. */
	copy = malloc(t->len ? t->len : 1);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, t->s, t->len);
	v = json_parse(copy, t->len, max_depth, err, errlen);
	free(copy);
	return v;
}

/* Valid documents and the type of their root. */
struct check_json_ok_case {
	struct check_json_text	 in;
	yajl_type		 type;
};

static const struct check_json_ok_case check_json_ok_cases[] = {
	{ L("{}"), yajl_t_object },
	{ L("[]"), yajl_t_array },
	{ L("{\"a\":1}"), yajl_t_object },
	{ L(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n "), yajl_t_object },
	{ L("[1,-2,3.5,1e3,true,false,null,\"s\",{},[]]"), yajl_t_array },
	{ L("{\"a\":{\"b\":[1,{\"c\":null}]}}"), yajl_t_object },
	{ L("\"plain string\""), yajl_t_string },
	{ L("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\""), yajl_t_string },
	{ L("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""), yajl_t_string },
	{ L("42"), yajl_t_number },
	{ L("-0.5"), yajl_t_number },
	{ L("true"), yajl_t_true },
	{ L("false"), yajl_t_false },
	{ L("null"), yajl_t_null },
	{ L("{\"\":\"\"}"), yajl_t_object },
};

START_TEST(test_json_parse_valid)
{
	const struct check_json_ok_case *tc = &check_json_ok_cases[_i];
	char err[256] = "";
	yajl_val v;

	v = check_json_parse(&tc->in, JSON_MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(v != NULL, "%s: refused: %s", tc->in.s, err);
	ck_assert_int_eq(v->type, tc->type);
	yajl_tree_free(v);
}
END_TEST

/* Refused documents and the start of their error. */
struct check_json_err_case {
	struct check_json_text	 in;
	const char		*err_prefix;
};

static const struct check_json_err_case check_json_err_cases[] = {
	/* malformed */
	{ L(""), "malformed JSON" },
	{ L("   "), "malformed JSON" },
	{ L("{"), "malformed JSON" },
	{ L("{\"a\":"), "malformed JSON" },
	{ L("{\"a\":}"), "malformed JSON" },
	{ L("{\"a\" 1}"), "malformed JSON" },
	{ L("{\"a\":1,}"), "malformed JSON" },
	{ L("{a:1}"), "malformed JSON" },
	{ L("{'a':1}"), "malformed JSON" },
	{ L("{1:1}"), "malformed JSON" },
	{ L("[1,]"), "malformed JSON" },
	{ L("[1]]"), "malformed JSON" },
	{ L("[1 2]"), "malformed JSON" },
	{ L("1 2"), "malformed JSON" },
	{ L("{}{}"), "malformed JSON" },
	{ L("\"unterminated"), "malformed JSON" },
	{ L("\"bad \\x escape\""), "malformed JSON" },
	{ L("\"\\u12\""), "malformed JSON" },
	{ L("\"raw\nnewline\""), "malformed JSON" },
	{ L("nul"), "malformed JSON" },
	{ L("True"), "malformed JSON" },
	{ L("NaN"), "malformed JSON" },
	{ L("-"), "malformed JSON" },
	{ L("1."), "malformed JSON" },
	{ L("/* comment */ 1"), "malformed JSON" },
	{ L("// comment\n1"), "malformed JSON" },
	{ L("\xef\xbb\xbf{}"), "malformed JSON" },
	/* invalid UTF-8, in values, keys and outside strings */
	{ L("\"\xc3\x28\""), "malformed JSON" },
	{ L("\"\xff\""), "malformed JSON" },
	{ L("\"\x80\""), "malformed JSON" },
	{ L("\"\xe2\x82\""), "malformed JSON" },
	{ L("\"\xe2\x28\xa1\""), "malformed JSON" },
	{ L("\"\xf8\x88\x80\x80\x80\""), "malformed JSON" },
	{ L("{\"\xc3\":1}"), "malformed JSON" },
	{ L("[\"ok\",\"\xa0\xa1\"]"), "malformed JSON" },
	{ L("\xc3\xa9"), "malformed JSON" },
	/* a NUL byte anywhere inside len */
	{ L("\0"), "malformed JSON: NUL byte" },
	{ L("{\"a\":1}\0"), "malformed JSON: NUL byte" },
	{ L("\"a\0b\""), "malformed JSON: NUL byte" },
	{ L("\0{\"a\":1}"), "malformed JSON: NUL byte" },
};

START_TEST(test_json_parse_invalid_refused)
{
	const struct check_json_err_case *tc = &check_json_err_cases[_i];
	char err[256] = "";
	yajl_val v;

	v = check_json_parse(&tc->in, JSON_MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(v == NULL, "case %d accepted", _i);
	yajl_tree_free(v);
	ck_assert_msg(strncmp(err, tc->err_prefix, strlen(tc->err_prefix)) == 0,
	    "case %d: err \"%s\", expected \"%s...\"", _i, err, tc->err_prefix);
}
END_TEST

/* Depth: max_depth levels of arrays/objects pass, one more is refused. */
struct check_json_depth_case {
	int	 depth;
	int	 max_depth;
	int	 use_objects;
	int	 is_closed;	/* 0: stop after the openings */
	int	 is_ok;
};

static const struct check_json_depth_case check_json_depth_cases[] = {
	{ 1, JSON_MAX_DEPTH, 0, 1, 1 },
	{ JSON_MAX_DEPTH - 1, JSON_MAX_DEPTH, 0, 1, 1 },
	{ JSON_MAX_DEPTH, JSON_MAX_DEPTH, 0, 1, 1 },
	{ JSON_MAX_DEPTH, JSON_MAX_DEPTH, 1, 1, 1 },
	{ JSON_MAX_DEPTH + 1, JSON_MAX_DEPTH, 0, 1, 0 },
	{ JSON_MAX_DEPTH + 1, JSON_MAX_DEPTH, 1, 1, 0 },
	{ JSON_MAX_DEPTH + 1, JSON_MAX_DEPTH, 0, 0, 0 },
	{ 1000, JSON_MAX_DEPTH, 1, 1, 0 },
	/* far beyond any stack: refused by the streaming pass, no recursion */
	{ 1000000, JSON_MAX_DEPTH, 0, 0, 0 },
	{ 1000000, JSON_MAX_DEPTH, 0, 1, 0 },
	{ 1, 1, 0, 1, 1 },
	{ 2, 1, 0, 1, 0 },
	{ 2, 1, 1, 1, 0 },
	{ 0, 0, 0, 1, 1 },	/* a scalar has depth 0 */
	{ 1, 0, 0, 1, 0 },
	{ 1, 0, 1, 1, 0 },
};

START_TEST(test_json_parse_depth_limit)
{
	const struct check_json_depth_case *tc = &check_json_depth_cases[_i];
	static const char open_obj[] = "{\"k\":";
	size_t open_len = tc->use_objects ? sizeof(open_obj) - 1 : 1;
	size_t cap = (size_t)tc->depth * (open_len + 1) + 2, len = 0;
	struct check_json_text t;
	char err[256] = "", want[64];
	char *doc;
	yajl_val v;

	ck_assert_ptr_nonnull(doc = malloc(cap));
	for (int i = 0; i < tc->depth; i++) {
		memcpy(doc + len, tc->use_objects ? open_obj : "[", open_len);
		len += open_len;
	}
	doc[len++] = '1';
	if (tc->is_closed)
		for (int i = 0; i < tc->depth; i++)
			doc[len++] = tc->use_objects ? '}' : ']';
	t.s = doc;
	t.len = len;

	v = check_json_parse(&t, tc->max_depth, err, sizeof(err));
	free(doc);
	if (tc->is_ok) {
		ck_assert_msg(v != NULL, "depth %d max %d: %s", tc->depth,
		    tc->max_depth, err);
		yajl_tree_free(v);
		return;
	}
	ck_assert_msg(v == NULL, "depth %d max %d accepted", tc->depth,
	    tc->max_depth);
	snprintf(want, sizeof(want), "JSON nested deeper than %d levels",
	    tc->max_depth);
	ck_assert_str_eq(err, want);
}
END_TEST

/* len, not the NUL, ends the document: bytes after it are never read. */
struct check_json_prefix_case {
	const char	*buf;
	size_t		 len;
	int		 is_ok;
	long long	 a;	/* value of "a" in the parsed prefix */
};

static const struct check_json_prefix_case check_json_prefix_cases[] = {
	{ "{\"a\":1}garbage", 7, 1, 1 },
	{ "{\"a\":2}}}}", 7, 1, 2 },
	{ "{\"a\":3}\xff\xfe", 7, 1, 3 },
	{ "{\"a\":3}\0\0", 7, 1, 3 },
	{ "{\"a\":45}", 7, 0, 0 },	/* cut inside: "{\"a\":4" */
	{ "{\"a\":1}", 3, 0, 0 },
};

START_TEST(test_json_parse_len_bounds_document)
{
	const struct check_json_prefix_case *tc = &check_json_prefix_cases[_i];
	struct check_json_text t = { tc->buf, tc->len };
	char err[256] = "";
	yajl_val v, a;

	v = check_json_parse(&t, JSON_MAX_DEPTH, err, sizeof(err));
	if (!tc->is_ok) {
		ck_assert_ptr_null(v);
		ck_assert_msg(strncmp(err, "malformed JSON", 14) == 0, "%s", err);
		return;
	}
	ck_assert_msg(v != NULL, "case %d: %s", _i, err);
	ck_assert_ptr_nonnull(a = json_get(v, "a"));
	ck_assert(YAJL_IS_INTEGER(a));
	ck_assert_int_eq(YAJL_GET_INTEGER(a), tc->a);
	yajl_tree_free(v);
}
END_TEST

/* The error never overflows errlen. */
START_TEST(test_json_parse_error_truncated_to_errlen)
{
	struct check_json_text t = L("{");
	char err[16];

	memset(err, 'Z', sizeof(err));
	ck_assert_ptr_null(json_parse(t.s, t.len, JSON_MAX_DEPTH, err, 8));
	ck_assert_str_eq(err, "malform");
	ck_assert_int_eq(err[8], 'Z');
}
END_TEST

/* Member lookups on one document. */
static const char check_json_doc[] =
    "{\"name\":\"dev1\",\"count\":3,\"ok\":true,\"nil\":null,"
    "\"nested\":{\"x\":\"y\",\"n\":-7},\"arr\":[\"a\"],\"empty\":\"\","
    "\"esc\":\"a\\\"b\\u00e9\"}";

struct check_json_get_case {
	const char	*path[2];	/* key, then key in that member */
	yajl_type	 type;		/* of json_get; 0 with NULL for missing */
	int		 is_found;
	const char	*str;		/* json_get_str result, NULL if none */
	long long	 num;
};

static const struct check_json_get_case check_json_get_cases[] = {
	{ { "name", NULL }, yajl_t_string, 1, "dev1", 0 },
	{ { "empty", NULL }, yajl_t_string, 1, "", 0 },
	{ { "esc", NULL }, yajl_t_string, 1, "a\"b\xc3\xa9", 0 },
	{ { "count", NULL }, yajl_t_number, 1, NULL, 3 },
	{ { "ok", NULL }, yajl_t_true, 1, NULL, 0 },
	{ { "nil", NULL }, yajl_t_null, 1, NULL, 0 },
	{ { "nested", NULL }, yajl_t_object, 1, NULL, 0 },
	{ { "arr", NULL }, yajl_t_array, 1, NULL, 0 },
	{ { "nested", "x" }, yajl_t_string, 1, "y", 0 },
	{ { "nested", "n" }, yajl_t_number, 1, NULL, -7 },
	{ { "nested", "name" }, yajl_t_any, 0, NULL, 0 },
	{ { "missing", NULL }, yajl_t_any, 0, NULL, 0 },
	{ { "Name", NULL }, yajl_t_any, 0, NULL, 0 },
	{ { "nam", NULL }, yajl_t_any, 0, NULL, 0 },
	{ { "", NULL }, yajl_t_any, 0, NULL, 0 },
	/* json_get on a non-object member */
	{ { "arr", "0" }, yajl_t_any, 0, NULL, 0 },
	{ { "name", "x" }, yajl_t_any, 0, NULL, 0 },
	{ { "missing", "x" }, yajl_t_any, 0, NULL, 0 },
};

START_TEST(test_json_get_cases)
{
	const struct check_json_get_case *tc = &check_json_get_cases[_i];
	char err[256] = "";
	yajl_val root, obj, v;
	const char *key, *s;

	root = json_parse(check_json_doc, sizeof(check_json_doc) - 1,
	    JSON_MAX_DEPTH, err, sizeof(err));
	ck_assert_msg(root != NULL, "%s", err);
	obj = root;
	key = tc->path[0];
	if (tc->path[1] != NULL) {
		obj = json_get(root, tc->path[0]);
		key = tc->path[1];
	}
	v = json_get(obj, key);
	s = json_get_str(obj, key);
	if (!tc->is_found) {
		ck_assert_ptr_null(v);
		ck_assert_ptr_null(s);
	} else {
		ck_assert_ptr_nonnull(v);
		ck_assert_int_eq(v->type, tc->type);
		if (tc->str != NULL) {
			ck_assert_ptr_nonnull(s);
			ck_assert_str_eq(s, tc->str);
		} else {
			ck_assert_ptr_null(s);
		}
		if (tc->type == yajl_t_number) {
			ck_assert(YAJL_IS_INTEGER(v));
			ck_assert_int_eq(YAJL_GET_INTEGER(v), tc->num);
		}
	}
	yajl_tree_free(root);
}
END_TEST

START_TEST(test_json_get_null_and_non_object)
{
	char err[256] = "";
	yajl_val arr;

	ck_assert_ptr_null(json_get(NULL, "a"));
	ck_assert_ptr_null(json_get_str(NULL, "a"));
	arr = json_parse("[\"a\"]", 5, JSON_MAX_DEPTH, err, sizeof(err));
	ck_assert_ptr_nonnull(arr);
	ck_assert_ptr_null(json_get(arr, "a"));
	ck_assert_ptr_null(json_get_str(arr, "0"));
	yajl_tree_free(arr);
}
END_TEST

/* Generation: the bytes in the evbuffer, exactly. */
enum check_json_gen_kind { G_STR, G_INT, G_BOOL };

struct check_json_gen_case {
	enum check_json_gen_kind	 kind;
	const char			*key;
	const char			*str;
	long long			 num;
	const char			*want;
};

static const struct check_json_gen_case check_json_gen_cases[] = {
	{ G_STR, "a", "plain", 0, "{\"a\":\"plain\"}" },
	{ G_STR, "a", "", 0, "{\"a\":\"\"}" },
	{ G_STR, "a", NULL, 0, "{\"a\":null}" },
	{ G_STR, "q", "say \"hi\"", 0, "{\"q\":\"say \\\"hi\\\"\"}" },
	{ G_STR, "b", "back\\slash", 0, "{\"b\":\"back\\\\slash\"}" },
	{ G_STR, "c", "\n\r\t\b\f", 0, "{\"c\":\"\\n\\r\\t\\b\\f\"}" },
	{ G_STR, "c", "\x01\x1f", 0, "{\"c\":\"\\u0001\\u001F\"}" },
	{ G_STR, "c", "x\x7fy", 0, "{\"c\":\"x\x7fy\"}" },
	{ G_STR, "s", "</script>", 0, "{\"s\":\"</script>\"}" },
	{ G_STR, "u", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
	    "{\"u\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}" },
	{ G_STR, "k\"e\ny", "v", 0, "{\"k\\\"e\\ny\":\"v\"}" },
	{ G_STR, "", "v", 0, "{\"\":\"v\"}" },
	{ G_INT, "n", NULL, 0, "{\"n\":0}" },
	{ G_INT, "n", NULL, -1, "{\"n\":-1}" },
	{ G_INT, "n", NULL, 1234567890123LL, "{\"n\":1234567890123}" },
	{ G_INT, "n", NULL, LLONG_MAX, "{\"n\":9223372036854775807}" },
	{ G_INT, "n", NULL, LLONG_MIN, "{\"n\":-9223372036854775808}" },
	{ G_BOOL, "t", NULL, 1, "{\"t\":true}" },
	{ G_BOOL, "t", NULL, 0, "{\"t\":false}" },
	{ G_BOOL, "t", NULL, 42, "{\"t\":true}" },
};

static char *
check_json_drain(struct evbuffer *b)
{
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(evbuffer_remove(b, s, len), (int)len);
	s[len] = '\0';
	return s;
}

START_TEST(test_json_gen_cases)
{
	const struct check_json_gen_case *tc = &check_json_gen_cases[_i];
	struct evbuffer *b;
	yajl_gen g;
	char *out;

	ck_assert_ptr_nonnull(b = evbuffer_new());
	ck_assert_ptr_nonnull(g = json_gen_new());
	ck_assert_int_eq(yajl_gen_map_open(g), yajl_gen_status_ok);
	switch (tc->kind) {
	case G_STR:
		json_kv_str(g, tc->key, tc->str);
		break;
	case G_INT:
		json_kv_int(g, tc->key, tc->num);
		break;
	case G_BOOL:
		json_kv_bool(g, tc->key, (int)tc->num);
		break;
	}
	ck_assert_int_eq(yajl_gen_map_close(g), yajl_gen_status_ok);
	ck_assert_int_eq(json_gen_finish(g, b), 0);
	out = check_json_drain(b);
	ck_assert_str_eq(out, tc->want);
	free(out);
	evbuffer_free(b);
}
END_TEST

/* A whole document: several members, nesting through json_key, an array,
 * appended after what the buffer already holds; it parses back. */
START_TEST(test_json_gen_document_appends_and_round_trips)
{
	static const char want[] =
	    "HTTP body: {\"id\":\"p1\",\"count\":2,\"ok\":false,"
	    "\"owner\":{\"name\":\"a\\\"b\",\"age\":7},\"tags\":[\"x\",\"y\"]}";
	char err[256] = "";
	struct evbuffer *b;
	yajl_val v;
	yajl_gen g;
	char *out;

	ck_assert_ptr_nonnull(b = evbuffer_new());
	ck_assert_int_eq(evbuffer_add(b, "HTTP body: ", 11), 0);
	ck_assert_ptr_nonnull(g = json_gen_new());
	yajl_gen_map_open(g);
	json_kv_str(g, "id", "p1");
	json_kv_int(g, "count", 2);
	json_kv_bool(g, "ok", 0);
	json_key(g, "owner");
	yajl_gen_map_open(g);
	json_kv_str(g, "name", "a\"b");
	json_kv_int(g, "age", 7);
	yajl_gen_map_close(g);
	json_key(g, "tags");
	yajl_gen_array_open(g);
	yajl_gen_string(g, (const unsigned char *)"x", 1);
	yajl_gen_string(g, (const unsigned char *)"y", 1);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	ck_assert_int_eq(json_gen_finish(g, b), 0);
	out = check_json_drain(b);
	ck_assert_str_eq(out, want);

	v = json_parse(out + 11, strlen(out + 11), JSON_MAX_DEPTH, err,
	    sizeof(err));
	ck_assert_msg(v != NULL, "%s", err);
	ck_assert_str_eq(json_get_str(json_get(v, "owner"), "name"), "a\"b");
	yajl_tree_free(v);
	free(out);
	evbuffer_free(b);
}
END_TEST

/* Invalid UTF-8 in a generated string is scrubbed byte by byte to '?', so
 * the document stays well formed and the next member keeps its place
 * (yajl alone would drop the string and shift the keys). */
static const struct { const char *in, *out; } check_json_bad_utf8[] = {
	{ "\xc3\x28", "{\"a\":\"?(\",\"n\":1}" },
	{ "\xff", "{\"a\":\"?\",\"n\":1}" },
	{ "\x80", "{\"a\":\"?\",\"n\":1}" },
	{ "ok\xe2\x82", "{\"a\":\"ok??\",\"n\":1}" },
	{ "\xf8\x88\x80\x80\x80", "{\"a\":\"?????\",\"n\":1}" },
};

START_TEST(test_json_gen_invalid_utf8_scrubbed)
{
	struct evbuffer *b;
	yajl_gen g;
	size_t n;

	ck_assert_ptr_nonnull(b = evbuffer_new());
	ck_assert_ptr_nonnull(g = json_gen_new());
	yajl_gen_map_open(g);
	json_kv_str(g, "a", check_json_bad_utf8[_i].in);
	json_kv_int(g, "n", 1);
	yajl_gen_map_close(g);
	ck_assert_int_eq(json_gen_finish(g, b), 0);
	n = evbuffer_get_length(b);
	ck_assert_uint_eq(n, strlen(check_json_bad_utf8[_i].out));
	ck_assert_mem_eq(evbuffer_pullup(b, -1), check_json_bad_utf8[_i].out, n);
	evbuffer_free(b);
}
END_TEST

/* json.h promises a one-line reason; yajl's message ends in '\n'. */
START_TEST(test_json_parse_error_is_one_line)
{
	char err[256] = "";

	ck_assert_ptr_null(json_parse("{", 1, JSON_MAX_DEPTH, err, sizeof(err)));
	ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

/* json.h promises invalid UTF-8 is refused; yajl's lexer only checks the
 * byte pattern, so overlong forms, surrogates and > U+10FFFF pass. */
static const struct check_json_text check_json_bad_utf8_in[] = {
	L("\"\xc0\xaf\""),		/* overlong '/' */
	L("\"\xc0\x80\""),		/* overlong NUL */
	L("\"\xe0\x80\xaf\""),		/* overlong, 3 bytes */
	L("\"\xed\xa0\x80\""),		/* UTF-16 surrogate D800 */
	L("\"\xf4\x90\x80\x80\""),	/* U+110000 */
	L("\"\xf5\x80\x80\x80\""),
};

START_TEST(test_json_parse_overlong_utf8_refused)
{
	char err[256] = "";
	yajl_val v;

	v = check_json_parse(&check_json_bad_utf8_in[_i], JSON_MAX_DEPTH, err,
	    sizeof(err));
	yajl_tree_free(v);
	ck_assert_msg(v == NULL, "case %d accepted", _i);
	ck_assert(strncmp(err, "malformed JSON", 14) == 0);
}
END_TEST

static Suite *
check_json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_json_parse_valid, 0,
	    (int)CHECK_JSON_N(check_json_ok_cases));
	tcase_add_loop_test(tc, test_json_parse_invalid_refused, 0,
	    (int)CHECK_JSON_N(check_json_err_cases));
	tcase_add_loop_test(tc, test_json_parse_depth_limit, 0,
	    (int)CHECK_JSON_N(check_json_depth_cases));
	tcase_add_loop_test(tc, test_json_parse_len_bounds_document, 0,
	    (int)CHECK_JSON_N(check_json_prefix_cases));
	tcase_add_test(tc, test_json_parse_error_truncated_to_errlen);
	suite_add_tcase(s, tc);

	tc = tcase_create("get");
	tcase_add_loop_test(tc, test_json_get_cases, 0,
	    (int)CHECK_JSON_N(check_json_get_cases));
	tcase_add_test(tc, test_json_get_null_and_non_object);
	suite_add_tcase(s, tc);

	tc = tcase_create("gen");
	tcase_add_loop_test(tc, test_json_gen_cases, 0,
	    (int)CHECK_JSON_N(check_json_gen_cases));
	tcase_add_test(tc, test_json_gen_document_appends_and_round_trips);
	suite_add_tcase(s, tc);

	tc = tcase_create("utf8");
	tcase_add_loop_test(tc, test_json_gen_invalid_utf8_scrubbed, 0,
	    (int)CHECK_JSON_N(check_json_bad_utf8));
	tcase_add_test(tc, test_json_parse_error_is_one_line);
	tcase_add_loop_test(tc, test_json_parse_overlong_utf8_refused, 0,
	    (int)CHECK_JSON_N(check_json_bad_utf8_in));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_json_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

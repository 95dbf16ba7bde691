/* json.c: yajl wrappers. A document is parsed twice: a cheap streaming pass
 * that bounds depth (yajl's tree free recurses), then the tree build. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <yajl/yajl_parse.h>

#include "log.h"
#include "util.h"
#include "xmalloc.h"

static void *
json_malloc(void *ctx, size_t size)
{
	(void)ctx;
	return xmalloc(size);
}

static void *
json_realloc(void *ctx, void *p, size_t size)
{
	(void)ctx;
	return xrealloc(p, size);
}

static void
json_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* yajl's own buffers go through xmalloc too: a generator never fails. */
yajl_gen
json_gen_new(void)
{
	static yajl_alloc_funcs funcs = { json_malloc, json_realloc, json_free, NULL };
	yajl_gen g;

	if ((g = yajl_gen_alloc(&funcs)) == NULL)
		fatalx("yajl_gen_alloc: out of memory");
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	return g;
}

/* Invalid UTF-8 would make yajl drop the string and shift the document;
 * emit it with each bad byte replaced instead, so output stays well formed. */
static void
json_string(yajl_gen g, const char *val)
{
	size_t n = strlen(val);
	char *copy;

	if (util_utf8_valid((const unsigned char *)val, n)) {
		yajl_gen_string(g, (const unsigned char *)val, n);
		return;
	}
	copy = xstrdup(val);
	util_utf8_scrub(copy);
	yajl_gen_string(g, (const unsigned char *)copy, strlen(copy));
	free(copy);
}

void
json_key(yajl_gen g, const char *key)
{
	json_string(g, key);
}

void
json_kv_str(yajl_gen g, const char *key, const char *val)
{
	json_key(g, key);
	if (val == NULL)
		yajl_gen_null(g);
	else
		json_string(g, val);
}

void
json_kv_int(yajl_gen g, const char *key, long long val)
{
	json_key(g, key);
	yajl_gen_integer(g, val);
}

void
json_kv_bool(yajl_gen g, const char *key, int val)
{
	json_key(g, key);
	yajl_gen_bool(g, val);
}

int
json_gen_finish(yajl_gen g, struct evbuffer *buf)
{
	const unsigned char *out;
	size_t len;
	int rc = -1;

	if (yajl_gen_get_buf(g, &out, &len) == yajl_gen_status_ok &&
	    evbuffer_add(buf, out, len) == 0)
		rc = 0;
	yajl_gen_free(g);
	return rc;
}

struct json_depth {
	int	depth;
	int	max;
	int	has_nul;
};

static int
json_depth_open(void *ctx)
{
	struct json_depth *d = ctx;

	return ++d->depth <= d->max;
}

static int
json_depth_close(void *ctx)
{
	struct json_depth *d = ctx;

	d->depth--;
	return 1;
}

/* A NUL inside a string (\\u0000) would silently truncate it in C. */
static int
json_check_string(void *ctx, const unsigned char *s, size_t n)
{
	struct json_depth *d = ctx;

	if (memchr(s, '\0', n) != NULL) {
		d->has_nul = 1;
		return 0;
	}
	return 1;
}

static const yajl_callbacks json_depth_callbacks = {
	.yajl_string = json_check_string,
	.yajl_map_key = json_check_string,
	.yajl_start_map = json_depth_open,
	.yajl_end_map = json_depth_close,
	.yajl_start_array = json_depth_open,
	.yajl_end_array = json_depth_close,
};

static int
json_check(const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
	struct json_depth d = { 0, max_depth, 0 };
	yajl_handle h = yajl_alloc(&json_depth_callbacks, NULL, &d);
	yajl_status st;
	int rc = 0;

	if (h == NULL)
		fatalx("yajl_alloc: out of memory");
	st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	if (st == yajl_status_client_canceled && d.has_nul) {
		snprintf(err, errlen, "malformed JSON: NUL character in a string");
		rc = -1;
	} else if (st == yajl_status_client_canceled) {
		snprintf(err, errlen, "JSON nested deeper than %d levels", max_depth);
		rc = -1;
	} else if (st != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(h, 0, NULL, 0);

		snprintf(err, errlen, "malformed JSON: %s", (const char *)msg);
		err[strcspn(err, "\n")] = '\0';
		yajl_free_error(h, msg);
		rc = -1;
	}
	yajl_free(h);
	return rc;
}

yajl_val
json_parse(const char *text, size_t len, int max_depth, char *err, size_t errlen)
{
	char *copy;
	yajl_val v;

	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, errlen, "malformed JSON: NUL byte");
		return NULL;
	}
	/* yajl checks byte patterns only (overlongs, surrogates pass). */
	if (!util_utf8_valid((const unsigned char *)text, len)) {
		snprintf(err, errlen, "malformed JSON: invalid UTF-8");
		return NULL;
	}
	if (json_check(text, len, max_depth, err, errlen) == -1)
		return NULL;
	copy = xmalloc(len + 1);
	memcpy(copy, text, len);
	copy[len] = '\0';
	v = yajl_tree_parse(copy, err, errlen);
	free(copy);
	if (v == NULL)
		err[strcspn(err, "\n")] = '\0';
	return v;
}

yajl_val
json_get(yajl_val obj, const char *key)
{
	if (obj == NULL || !YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (strcmp(obj->u.object.keys[i], key) == 0)
			return obj->u.object.values[i];
	return NULL;
}

const char *
json_get_str(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);

	return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

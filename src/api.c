/* api.c: the toolkit every /api/v1/ handler uses once the front door
 * (api_front.c) has let a request in: who is calling, path parameters,
 * JSON bodies and members, query parameters, pagination, replies and the
 * mapping of database errors. It never decides who may call what. */
#include "api.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/crypto.h>

#include "api_ctx.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "xmalloc.h"

static struct api_ctx *
api_ctx(struct http_req *hr)
{
	return hr->api;
}

const struct auth *
api_auth(struct http_req *hr)
{
	return api_ctx(hr)->auth;
}

const char *
api_actor(struct http_req *hr)
{
	return api_ctx(hr)->auth->actor;
}

long long
api_project_id(struct http_req *hr)
{
	return api_ctx(hr)->project_id;
}

const char *
api_project_id_str(struct http_req *hr)
{
	return api_ctx(hr)->project_id_str;
}

const char *
api_project_name(struct http_req *hr)
{
	return api_ctx(hr)->project;
}

const char *
api_session_secret(struct http_req *hr)
{
	return api_ctx(hr)->is_session ? api_ctx(hr)->secret : NULL;
}

int
api_param(struct http_req *hr, size_t i, char *buf, size_t len)
{
	char raw[512];
	size_t n = hr->match.param_len[i];
	char *dec;
	size_t dlen;

	if (i >= hr->match.nparams || n >= sizeof(raw)) {
		http_reply_problem(hr, 404, NULL, "no such resource");
		return -1;
	}
	memcpy(raw, hr->match.param[i], n);
	raw[n] = '\0';
	dec = evhttp_uridecode(raw, 0, &dlen);
	if (dec == NULL || dlen == 0 || dlen >= len || memchr(dec, '\0', dlen) != NULL ||
	    !util_utf8_valid((unsigned char *)dec, dlen)) {
		free(dec);
		http_reply_problem(hr, 404, NULL, "no such resource");
		return -1;
	}
	memcpy(buf, dec, dlen + 1);
	free(dec);
	return 0;
}

int
api_param_id(struct http_req *hr, size_t i, char *buf, size_t len,
    const char *missing)
{
	const char *errstr;

	if (api_param(hr, i, buf, len) == -1)
		return -1;
	/* Ids start at 1: anything else cannot exist, so it is not found. */
	if (util_strtonum(buf, 1, LLONG_MAX, &errstr) == 0 || errstr != NULL) {
		http_reply_problem(hr, 404, NULL, "%s", missing);
		return -1;
	}
	return 0;
}

void *
api_alloc(struct http_req *hr, size_t size)
{
	(void)hr;
	return xcalloc(1, size);
}

yajl_val
api_body_json(struct http_req *hr, const char *const *keys)
{
	const char *ct = http_header(hr, "Content-Type");
	struct evbuffer *body = http_body(hr);
	size_t n = evbuffer_get_length(body);
	char err[256];
	yajl_val v;

	if (!util_media_type_is(ct, "application/json")) {
		http_reply_problem(hr, 415, NULL, "Content-Type must be application/json");
		return NULL;
	}
	if (n == 0) {
		http_reply_problem(hr, 400, NULL, "request body is empty");
		return NULL;
	}
	v = json_parse((const char *)evbuffer_pullup(body, -1), n, JSON_MAX_DEPTH,
	    err, sizeof(err));
	if (v == NULL) {
		http_reply_problem(hr, 400, NULL, "%s", err);
		return NULL;
	}
	if (!YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		http_reply_problem(hr, 400, NULL, "request body must be a JSON object");
		return NULL;
	}
	if (api_json_only(hr, v, keys) == -1) {
		yajl_tree_free(v);
		return NULL;
	}
	return v;
}

/* yajl keeps every copy of a repeated member and json_get finds the first,
 * so a repeated field would be read one way here and maybe another way by
 * a proxy in front: refused. A bit per allowed key keeps this linear. */
int
api_json_only(struct http_req *hr, yajl_val obj, const char *const *keys)
{
	unsigned long long seen = 0;

	for (size_t i = 0; i < obj->u.object.len; i++) {
		const char *k = obj->u.object.keys[i];
		size_t j;

		for (j = 0; keys[j] != NULL && strcmp(keys[j], k) != 0; j++)
			;
		if (keys[j] == NULL) {
			http_reply_problem(hr, 400, NULL, "unknown field \"%.64s\"", k);
			return -1;
		}
		if (j < 64 && (seen & (1ULL << j)) != 0) {
			http_reply_problem(hr, 400, NULL, "field \"%s\" is given twice", keys[j]);
			return -1;
		}
		if (j < 64)
			seen |= 1ULL << j;
	}
	return 0;
}

/* Member key: 1 with *v set, 0 when absent and optional, -1 after a 400. */
static int
api_json_member(struct http_req *hr, yajl_val obj, const char *key,
    int required, yajl_val *v)
{
	if ((*v = json_get(obj, key)) != NULL)
		return 1;
	if (!required)
		return 0;
	http_reply_problem(hr, 400, NULL, "field \"%s\" is required", key);
	return -1;
}

int
api_json_str(struct http_req *hr, yajl_val obj, const char *key, int required,
    size_t maxlen, const char **out)
{
	const char *s;
	yajl_val v;
	int rc;

	if ((rc = api_json_member(hr, obj, key, required, &v)) != 1)
		return rc;
	if (!YAJL_IS_STRING(v) || (s = v->u.string) == NULL) {
		http_reply_problem(hr, 400, NULL, "field \"%s\" must be a string", key);
		return -1;
	}
	if (strlen(s) > maxlen) {
		http_reply_problem(hr, 400, NULL, "field \"%s\" is longer than %zu bytes",
		    key, maxlen);
		return -1;
	}
	*out = s;
	return 0;
}

int
api_json_int(struct http_req *hr, yajl_val obj, const char *key, int required,
    long long min, long long max, long long *out)
{
	yajl_val v;
	int rc;

	if ((rc = api_json_member(hr, obj, key, required, &v)) != 1)
		return rc;
	if (!YAJL_IS_INTEGER(v)) {
		http_reply_problem(hr, 400, NULL, "field \"%s\" must be an integer", key);
		return -1;
	}
	if (YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max) {
		http_reply_problem(hr, 422, NULL, "field \"%s\" must be %lld-%lld",
		    key, min, max);
		return -1;
	}
	*out = YAJL_GET_INTEGER(v);
	return 0;
}

int
api_json_bool(struct http_req *hr, yajl_val obj, const char *key, int required,
    int *out)
{
	yajl_val v;
	int rc;

	if ((rc = api_json_member(hr, obj, key, required, &v)) != 1)
		return rc;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
		http_reply_problem(hr, 400, NULL, "field \"%s\" must be true or false", key);
		return -1;
	}
	*out = YAJL_IS_TRUE(v);
	return 0;
}

int
api_query_int(struct http_req *hr, const char *name, long long min,
    long long max, long long *out, int *present)
{
	char buf[32];
	const char *errstr;

	*present = 0;
	switch (http_query_param(hr, name, buf, sizeof(buf))) {
	case 0:
		return 0;
	case -1:
		errstr = "too large";
		break;
	default:
		*out = util_strtonum(buf, min, max, &errstr);
		break;
	}
	if (errstr != NULL) {
		http_reply_problem(hr, 400, NULL, "query parameter %s: %s (%lld-%lld)",
		    name, errstr, min, max);
		return -1;
	}
	*present = 1;
	return 0;
}

int
api_query_str(struct http_req *hr, const char *name, size_t maxlen, char *out,
    const char *detail)
{
	char buf[API_QUERY_MAX];
	size_t n;
	int rc;

	out[0] = '\0';
	if ((rc = http_query_param(hr, name, buf, sizeof(buf))) == 0)
		return 0;
	n = rc == 1 ? strlen(buf) : sizeof(buf);
	if (n <= maxlen && util_utf8_valid((const unsigned char *)buf, n)) {
		memcpy(out, buf, n + 1);
		return 1;
	}
	if (detail != NULL)
		http_reply_problem(hr, 400, NULL, "query parameter %s %s", name, detail);
	else
		http_reply_problem(hr, 400, NULL,
		    "query parameter %s must be at most %zu bytes of UTF-8", name, maxlen);
	return -1;
}

int
api_page(struct http_req *hr, char limit[API_LIMIT_LEN], char *after, size_t len)
{
	long long n = API_LIMIT_DEFAULT;
	int present, rc;

	if (api_query_int(hr, "limit", 1, API_LIMIT_MAX, &n, &present) == -1)
		return -1;
	snprintf(limit, API_LIMIT_LEN, "%lld", n);
	api_ctx(hr)->limit = (int)n;
	after[0] = '\0';
	if ((rc = http_query_param(hr, "after", after, len)) == -1 || (rc == 1 &&
	    !util_utf8_valid((unsigned char *)after, strlen(after)))) {
		after[0] = '\0';
		http_reply_problem(hr, 400, NULL, "query parameter after is not valid");
		return -1;
	}
	return 0;
}

int
api_page_id(struct http_req *hr, char limit[API_LIMIT_LEN], char *after,
    size_t len)
{
	const char *errstr;
	long long v;

	if (api_page(hr, limit, after, len) == -1)
		return -1;
	if (after[0] == '\0') {
		snprintf(after, len, "0");
		return 0;
	}
	v = util_strtonum(after, 0, LLONG_MAX, &errstr);
	if (errstr != NULL) {
		http_reply_problem(hr, 400, NULL, "query parameter after is not valid");
		return -1;
	}
	/* Canonical digits: the SQL compares it as a bigint. */
	snprintf(after, len, "%lld", v);
	return 0;
}

yajl_gen
api_list_begin(void)
{
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	json_key(g, "items");
	yajl_gen_array_open(g);
	return g;
}

void
api_list_end(struct http_req *hr, yajl_gen g, const char *next)
{
	yajl_gen_array_close(g);
	json_kv_str(g, "next", next);
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

void
api_list_page(struct http_req *hr, yajl_gen g, const PGresult *res, int key_col)
{
	int n = PQntuples(res);

	/* A full page may have more after it: its last key is the cursor. */
	api_list_end(hr, g, n > 0 && n == api_ctx(hr)->limit ?
	    PQgetvalue(res, n - 1, key_col) : NULL);
}

void
api_reply_list(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr, api_fields_fn fields, int key_col)
{
	yajl_gen g;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	g = api_list_begin();
	for (int i = 0; i < PQntuples(res); i++) {
		yajl_gen_map_open(g);
		fields(g, res, i, 0);
		yajl_gen_map_close(g);
	}
	api_list_page(hr, g, res, key_col);
}

void
api_reply_object(struct http_req *hr, int status, api_fields_fn fields,
    const PGresult *res, int col)
{
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	fields(g, res, 0, col);
	yajl_gen_map_close(g);
	http_reply_json(hr, status, g);
}

void
api_reply_one(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr, int status, api_fields_fn fields, int col,
    const char *missing)
{
	if (st != DB_OK)
		api_db_error(hr, st, res, errstr);
	else if (PQntuples(res) != 1)
		http_reply_problem(hr, 404, NULL, "%s", missing);
	else
		api_reply_object(hr, status, fields, res, col);
}

void
api_reply_done(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr, int status, const char *detail)
{
	if (st != DB_OK)
		api_db_error(hr, st, res, errstr);
	else if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		http_reply_problem(hr, status, NULL, "%s", detail);
	else
		http_reply(hr, 204, NULL, NULL);
}

void
api_reply_word(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr, const char *conflict, const char *missing)
{
	const char *s;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	s = PQgetvalue(res, 0, 0);
	if (strcmp(s, "ok") == 0)
		http_reply(hr, 204, NULL, NULL);
	else if (strcmp(s, "revoked") == 0)
		http_reply_problem(hr, 409, NULL, "%s", conflict);
	else
		http_reply_problem(hr, 404, NULL, "%s", missing);
}

struct api_secret *
api_secret_new(struct http_req *hr, unsigned char hash[32])
{
	struct api_secret *s;

	if ((s = api_alloc(hr, sizeof(*s))) == NULL)
		return NULL;
	s->hr = hr;
	if (auth_secret_new(s->secret) == -1) {
		api_secret_free(s);
		http_reply_problem(hr, 503, NULL, "no randomness");
		return NULL;
	}
	/* Lookups (bearer auth, EST) go by the SHA-256 of the string. */
	auth_hash(s->secret, hash);
	return s;
}

void
api_secret_free(struct api_secret *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

void
api_secret_reply(struct api_secret *s, const PGresult *res,
    api_fields_fn fields, int col, const char *location)
{
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	fields(g, res, 0, col);
	/* Shown here once; only its hash is stored. */
	json_kv_str(g, "token", s->secret);
	yajl_gen_map_close(g);
	http_add_header(s->hr, "Location", location);
	http_add_header(s->hr, "Cache-Control", "no-store");
	http_reply_json(s->hr, 201, g);
}

void
api_db_error(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (st == DB_UNAVAILABLE || state == NULL) {
		http_reply_problem(hr, 503, NULL, "database unavailable");
		return;
	}
	if (strcmp(state, "23505") == 0 || strcmp(state, "23503") == 0) {
		http_reply_problem(hr, 409, NULL, "conflict: %s", errstr ? errstr : state);
		return;
	}
	if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0) {
		http_reply_problem(hr, 422, NULL, "rejected: %s", errstr ? errstr : state);
		return;
	}
	log_warnx("api: %s %s: SQL error %s: %s", hr->method, hr->path, state,
	    errstr ? errstr : "");
	http_reply_problem(hr, 500, NULL, "internal error");
}

char *
api_scope(struct http_req *hr, int *is_oom)
{
	const struct auth *a = api_auth(hr);
	size_t len = 3 + a->nprojects * 21, off = 1;
	char *s;

	*is_oom = 0;
	if (a->is_all_projects)
		return NULL;
	s = xmalloc(len);
	s[0] = '{';
	for (size_t i = 0; i < a->nprojects; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%lld", i ? "," : "",
		    a->projects[i]);
	snprintf(s + off, len - off, "}");
	return s;
}

const char *
api_val(const PGresult *res, int row, int col)
{
	return db_val(res, row, col);
}

long long
api_val_int(const PGresult *res, int row, int col)
{
	return db_val_int(res, row, col);
}

void
api_not_implemented(struct http_req *hr)
{
	http_reply_problem(hr, 501, NULL, "not implemented yet");
}

/* api_enroll.c: enrollment tokens (secret shown once) and the allowlist
 * (bulk add as a JSON array or CSV) of a project. Every ID of a bulk add is
 * checked before anything is written, and the batch is one transaction. */
#include "api_enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "api.h"
#include "enroll.h"
#include "json.h"
#include "names.h"
#include "server.h"
#include "util.h"
#include "xmalloc.h"

#define API_ENROLL_ID_LEN	NAMES_DEVICE_ID_LEN
#define API_ENROLL_BULK_MAX	10000

/* ---- enrollment tokens ---- */

/* Columns from col: ENROLL_TOKEN_COLS. */
static void
api_enroll_token_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	json_kv_int(g, "id", api_val_int(res, i, col));
	json_kv_str(g, "name", api_val(res, i, col + 1));
	json_kv_int(g, "max_uses", api_val_int(res, i, col + 2));
	json_kv_int(g, "uses", api_val_int(res, i, col + 3));
	json_kv_str(g, "expires_at", api_val(res, i, col + 4));
	json_kv_str(g, "revoked_at", api_val(res, i, col + 5));
	json_kv_str(g, "created_at", api_val(res, i, col + 6));
}

static void
api_enroll_tokens_listed(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	api_reply_list(arg, st, res, errstr, api_enroll_token_fields, 0);
}

static void
api_enroll_tokens_list(struct http_req *hr)
{
	char after[32], limit[API_LIMIT_LEN];
	const char *v[3] = { api_project_id_str(hr), after, limit };

	if (api_page_id(hr, limit, after, sizeof(after)) == -1)
		return;
	db_query(hr->srv->db, &enroll_tokens_list, 3, v, NULL,
	    api_enroll_tokens_listed, hr);
}

static void
api_enroll_token_created(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct api_secret *n = arg;
	struct http_req *hr = n->hr;
	char loc[192];

	if (st != DB_OK)
		api_db_error(hr, st, res, errstr);
	else if (PQntuples(res) != 1)
		http_reply_problem(hr, 404, NULL, "no such project");
	else {
		snprintf(loc, sizeof(loc), "/api/v1/projects/%s/enrollment-tokens/%s",
		    api_project_name(hr), PQgetvalue(res, 0, 0));
		api_secret_reply(n, res, api_enroll_token_fields, 0, loc);
	}
	api_secret_free(n);
}

static void
api_enroll_token_create(struct http_req *hr)
{
	static const char *const keys[] = { "name", "max_uses", "valid_days", NULL };
	long long uses = 1000, days = 30;
	const char *name = NULL, *v[6];
	char uses_s[16], days_s[16];
	unsigned char hash[32];
	int len[6] = { -1, 32, -1, -1, -1, -1 };
	struct api_secret *n;
	yajl_val body;

	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, body, "name", 0, 128, &name) == -1 ||
	    api_json_int(hr, body, "max_uses", 0, 1, 100000000, &uses) == -1 ||
	    api_json_int(hr, body, "valid_days", 0, 1, 3650, &days) == -1) {
		yajl_tree_free(body);
		return;
	}
	if ((n = api_secret_new(hr, hash)) == NULL) {
		yajl_tree_free(body);
		return;
	}
	snprintf(uses_s, sizeof(uses_s), "%lld", uses);
	snprintf(days_s, sizeof(days_s), "%lld", days);
	v[0] = api_project_id_str(hr);
	v[1] = (const char *)hash;
	v[2] = uses_s;
	v[3] = days_s;
	v[4] = name;
	v[5] = api_actor(hr);
	db_query(hr->srv->db, &enroll_token_new, 6, v, len,
	    api_enroll_token_created, n);
	yajl_tree_free(body);
}

static void
api_enroll_revoked(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_word(arg, st, res, errstr, "enrollment token already revoked",
	    "no such enrollment token");
}

static void
api_enroll_token_revoke(struct http_req *hr)
{
	char id[32];
	const char *v[3] = { api_project_id_str(hr), id, api_actor(hr) };

	if (api_param_id(hr, 1, id, sizeof(id), "no such enrollment token") == -1)
		return;
	db_query(hr->srv->db, &enroll_token_revoke, 3, v, NULL,
	    api_enroll_revoked, hr);
}

/* ---- allowlist ---- */

static void
api_enroll_allow_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	json_kv_str(g, "device_id", PQgetvalue(res, i, col));
	json_kv_str(g, "created_at", PQgetvalue(res, i, col + 1));
}

static void
api_enroll_allow_listed(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	api_reply_list(arg, st, res, errstr, api_enroll_allow_fields, 0);
}

static void
api_enroll_allow_list(struct http_req *hr)
{
	char after[128], limit[API_LIMIT_LEN];
	const char *v[3] = { api_project_id_str(hr), after, limit };

	if (api_page(hr, limit, after, sizeof(after)) == -1)
		return;
	db_query(hr->srv->db, &enroll_allowlist_list, 3, v, NULL,
	    api_enroll_allow_listed, hr);
}

/* The IDs of a bulk add as a PostgreSQL array literal "{id,id}". Every ID
 * is [a-z2-7]{32}, so nothing needs quoting. */
struct api_enroll_ids {
	char	*text;
	size_t	 len, cap;
	size_t	 count;
};

static void
api_enroll_ids_add(struct api_enroll_ids *ids, const char *id)
{
	if (ids->text == NULL) {
		ids->cap = 2 + (size_t)API_ENROLL_BULK_MAX * (API_ENROLL_ID_LEN + 1);
		ids->text = xmalloc(ids->cap);
		ids->text[ids->len++] = '{';
	}
	if (ids->count > 0)
		ids->text[ids->len++] = ',';
	memcpy(ids->text + ids->len, id, API_ENROLL_ID_LEN);
	ids->len += API_ENROLL_ID_LEN;
	ids->count++;
}

/* One ID of a bulk add: -1 after the reply naming where it was. */
static int
api_enroll_bulk_one(struct http_req *hr, struct api_enroll_ids *ids,
    const char *s, size_t n, const char *where, size_t pos)
{
	if (ids->count == API_ENROLL_BULK_MAX) {
		http_reply_problem(hr, 413, NULL, "at most %d device IDs per request",
		    API_ENROLL_BULK_MAX);
		return -1;
	}
	if (!names_is_device_id(s, n)) {
		http_reply_problem(hr, 422, NULL, "%s %zu is not a device ID"
		    " (32 characters a-z 2-7); nothing was added", where, pos);
		return -1;
	}
	api_enroll_ids_add(ids, s);
	return 0;
}

/* A JSON array of IDs, or {"device_ids": [...]}. */
static int
api_enroll_bulk_json(struct http_req *hr, const char *text, size_t n,
    struct api_enroll_ids *ids)
{
	static const char *const keys[] = { "device_ids", NULL };
	char err[256];
	yajl_val doc, arr;
	int rc = -1;

	if ((doc = json_parse(text, n, JSON_MAX_DEPTH, err, sizeof(err))) == NULL) {
		http_reply_problem(hr, 400, NULL, "%s", err);
		return -1;
	}
	arr = doc;
	if (YAJL_IS_OBJECT(doc)) {
		if (api_json_only(hr, doc, keys) == -1)
			goto out;
		if ((arr = json_get(doc, "device_ids")) == NULL) {
			http_reply_problem(hr, 400, NULL, "field \"device_ids\" is required");
			goto out;
		}
	}
	if (!YAJL_IS_ARRAY(arr)) {
		http_reply_problem(hr, 400, NULL, "field \"device_ids\" must be an array"
		    " (or send the array itself)");
		goto out;
	}
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val e = arr->u.array.values[i];

		if (!YAJL_IS_STRING(e)) {
			http_reply_problem(hr, 400, NULL, "device_ids[%zu] must be a string", i);
			goto out;
		}
		if (api_enroll_bulk_one(hr, ids, e->u.string, strlen(e->u.string),
		    "device_ids index", i) == -1)
			goto out;
	}
	rc = 0;
out:
	yajl_tree_free(doc);
	return rc;
}

/* One ID per line; CRLF, blank lines, a UTF-8 BOM, surrounding blanks or
 * double quotes and a first line "device_id" (spreadsheet exports) are
 * fine. */
static int
api_enroll_bulk_csv(struct http_req *hr, const char *text, size_t n,
    struct api_enroll_ids *ids)
{
	const char *p = text, *end = text + n, *eol, *s, *e;
	size_t line = 0;

	if (n >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	for (; p < end; p = eol + 1) {
		if ((eol = memchr(p, '\n', (size_t)(end - p))) == NULL)
			eol = end;
		line++;
		s = p;
		e = eol;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e - s >= 2 && *s == '"' && e[-1] == '"')
			s++, e--;
		if (s == e)
			continue;
		if (ids->count == 0 && (size_t)(e - s) == 9 &&
		    strncasecmp(s, "device_id", 9) == 0)
			continue;
		if (api_enroll_bulk_one(hr, ids, s, (size_t)(e - s), "line", line) == -1)
			return -1;
	}
	return 0;
}

static void
api_enroll_allow_added(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct http_req *hr = arg;
	yajl_gen g;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_int(g, "added", api_val_int(res, 0, 0));
	json_kv_int(g, "already_present", api_val_int(res, 0, 1));
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static void
api_enroll_allow_add(struct http_req *hr)
{
	const char *ct = http_header(hr, "Content-Type");
	struct api_enroll_ids ids = { NULL, 0, 0, 0 };
	struct evbuffer *body;
	const char *text, *v[3];
	size_t n;
	int is_json, rc;

	/* ct first: once the client has gone there is no body either. */
	if (util_media_type_is(ct, "application/json"))
		is_json = 1;
	else if (util_media_type_is(ct, "text/csv"))
		is_json = 0;
	else {
		http_reply_problem(hr, 415, NULL,
		    "Content-Type must be application/json or text/csv");
		return;
	}
	body = http_body(hr);
	if ((n = evbuffer_get_length(body)) == 0) {
		http_reply_problem(hr, 400, NULL, "request body is empty");
		return;
	}
	text = (const char *)evbuffer_pullup(body, -1);
	if (!is_json && (memchr(text, '\0', n) != NULL ||
	    !util_utf8_valid((const unsigned char *)text, n))) {
		http_reply_problem(hr, 400, NULL, "CSV body is not UTF-8 text");
		return;
	}
	rc = is_json ? api_enroll_bulk_json(hr, text, n, &ids) :
	    api_enroll_bulk_csv(hr, text, n, &ids);
	if (rc == 0 && ids.count == 0) {
		http_reply_problem(hr, 422, NULL, "no device IDs given");
		rc = -1;
	}
	if (rc == -1) {
		free(ids.text);
		return;
	}
	ids.text[ids.len++] = '}';
	ids.text[ids.len] = '\0';
	v[0] = api_project_id_str(hr);
	v[1] = ids.text;
	v[2] = api_actor(hr);
	db_query(hr->srv->db, &enroll_allowlist_add, 3, v, NULL,
	    api_enroll_allow_added, hr);
	free(ids.text);
}

static void
api_enroll_allow_removed(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	api_reply_done(arg, st, res, errstr, 404, "device ID not on the allowlist");
}

static void
api_enroll_allow_remove(struct http_req *hr)
{
	char dev[API_ENROLL_ID_LEN + 2];
	const char *v[3] = { api_project_id_str(hr), dev, api_actor(hr) };

	if (api_param(hr, 1, dev, sizeof(dev)) == -1)
		return;
	if (!names_is_device_id(dev, strlen(dev))) {
		http_reply_problem(hr, 404, NULL, "device ID not on the allowlist");
		return;
	}
	db_query(hr->srv->db, &enroll_allowlist_remove, 3, v, NULL,
	    api_enroll_allow_removed, hr);
}

static const char *const api_enroll_tokens_list_query[] = {
	API_PAGE_QUERY, NULL
};
static const char *const api_enroll_allow_list_query[] = {
	API_PAGE_QUERY, NULL
};

const struct route api_enroll_routes[] = {
	{ "/api/v1/projects/{project}/enrollment-tokens", EVHTTP_REQ_GET, ROUTE_ADMIN, api_enroll_tokens_list, AUTH_VIEWER, api_enroll_tokens_list_query },
	{ "/api/v1/projects/{project}/enrollment-tokens", EVHTTP_REQ_POST, ROUTE_ADMIN, api_enroll_token_create, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/enrollment-tokens/{id}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_enroll_token_revoke, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/allowlist", EVHTTP_REQ_GET, ROUTE_ADMIN, api_enroll_allow_list, AUTH_VIEWER, api_enroll_allow_list_query },
	{ "/api/v1/projects/{project}/allowlist", EVHTTP_REQ_POST, ROUTE_ADMIN, api_enroll_allow_add, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/allowlist/{device}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_enroll_allow_remove, AUTH_OPERATOR, NULL },
};
const size_t api_enroll_nroutes = sizeof(api_enroll_routes) / sizeof(api_enroll_routes[0]);

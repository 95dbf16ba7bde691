/* api_users.c: users (admin only) and API tokens (secret shown once).
 * Passwords are hashed on the worker thread; secrets are never stored or
 * logged, only their SHA-256. A caller limited to some projects manages
 * only users and tokens inside them, and grants no more than it has. */
#include "api_users.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "server.h"
#include "users.h"
#include "xmalloc.h"

#define API_USERS_PW_MAX 1024

static int
api_users_role(struct http_req *hr, const char *role)
{
	enum auth_role r;

	if (role != NULL && auth_role_parse(role, &r) == -1) {
		http_reply_problem(hr, 422, NULL,
		    "field \"role\" must be admin, operator or viewer");
		return -1;
	}
	return 0;
}

/* "projects": absent (*given 0), null (*out NULL: every project) or an
 * array of project names as a literal "{a,b}" (caller frees). Project
 * names are [a-z0-9-], so they need no quoting; any other name cannot
 * exist and is refused like an unknown one. */
static int
api_users_projects(struct http_req *hr, yajl_val body, int *given, char **out)
{
	yajl_val v = json_get(body, "projects");
	size_t len = 3, off = 1;
	char *s;

	*given = 0;
	*out = NULL;
	if (v == NULL)
		return 0;
	*given = 1;
	if (YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v)) {
		http_reply_problem(hr, 400, NULL,
		    "field \"projects\" must be an array of project names or null");
		return -1;
	}
	if (v->u.array.len > AUTH_MAX_PROJECTS) {
		http_reply_problem(hr, 422, NULL, "field \"projects\" lists more than %d projects",
		    AUTH_MAX_PROJECTS);
		return -1;
	}
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		size_t n;

		if (!YAJL_IS_STRING(e)) {
			http_reply_problem(hr, 400, NULL, "projects[%zu] must be a string", i);
			return -1;
		}
		n = strlen(e->u.string);
		if (!names_is_project(e->u.string, n)) {
			http_reply_problem(hr, 422, NULL, "projects[%zu]: no such project", i);
			return -1;
		}
		len += n + 1;
	}
	s = xmalloc(len);
	s[0] = '{';
	for (size_t i = 0; i < v->u.array.len; i++)
		off += (size_t)snprintf(s + off, len - off, "%s%s", i ? "," : "",
		    v->u.array.values[i]->u.string);
	snprintf(s + off, len - off, "}");
	*out = s;
	return 0;
}

/* ---- users ---- */

static void
api_users_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	struct users_row u;
	const char *p, *comma;

	users_decode(res, i, col, &u);
	json_kv_str(g, "name", u.name);
	json_kv_str(g, "role", u.role);
	json_key(g, "projects");
	if (u.projects == NULL) {
		yajl_gen_null(g);
	} else {
		yajl_gen_array_open(g);
		for (p = u.projects; *p != '\0'; p = *comma ? comma + 1 : comma) {
			comma = p + strcspn(p, ",");
			yajl_gen_string(g, (const unsigned char *)p, (size_t)(comma - p));
		}
		yajl_gen_array_close(g);
	}
	json_kv_bool(g, "disabled", u.is_disabled);
	json_kv_str(g, "created_at", u.created_at);
}

static void
api_users_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_list(arg, st, res, errstr, api_users_fields, 0);
}

static void
api_users_list(struct http_req *hr)
{
	char after[128], limit[API_LIMIT_LEN], *scope;
	const char *v[3] = { after, limit, NULL };
	int is_oom;

	if (api_page(hr, limit, after, sizeof(after)) == -1)
		return;
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		return;
	v[2] = scope;
	db_query(hr->srv->db, &users_list, 3, v, NULL, api_users_listed, hr);
	free(scope);
}

/* A create or an update waiting for its password hash. */
struct api_users_change {
	struct http_req	*hr;
	char		 name[65];
	char		 role[16];		/* "" = unchanged */
	int		 disabled;		/* -1 = unchanged */
	int		 has_projects;
	char		*projects;		/* NULL = every project */
	char		 password[API_USERS_PW_MAX + 1];	/* "" = unchanged */
	int		 is_create;
};

static void
api_users_change_free(struct api_users_change *c)
{
	free(c->projects);
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

/* The status of a users or API tokens function (users_status_decode) as
 * HTTP, in this one place: 0 for USERS_OK, else -1 after the reply; scope
 * is the 422's detail for a grant beyond the caller's own projects. */
static int
api_users_status(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr, const char *scope)
{
	static const struct { int status; const char *detail; } http[] = {
		[USERS_NOT_FOUND] = { 404, "no such user" },
		[USERS_EXISTS] = { 409, "a user with that name exists" },
		[USERS_SELF] = { 409, "you cannot disable or demote yourself" },
		[USERS_LAST_ADMIN] = { 409, "this is the last enabled admin of"
		    " all projects; make another one first" },
	};
	enum users_status us;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return -1;
	}
	switch ((us = users_status_decode(res))) {
	case USERS_OK:
		return 0;
	case USERS_UNKNOWN_PROJECT:
		http_reply_problem(hr, 422, NULL, "no such project: %.63s",
		    PQgetvalue(res, 0, 1));
		break;
	case USERS_SCOPE:
		http_reply_problem(hr, 422, NULL, "%s", scope);
		break;
	case USERS_UNEXPECTED:
		log_warnx("api: %s %s: unexpected status %s", hr->method, hr->path,
		    PQgetvalue(res, 0, 0));
		http_reply_problem(hr, 500, NULL, "internal error");
		break;
	default:
		http_reply_problem(hr, http[us].status, NULL, "%s", http[us].detail);
		break;
	}
	return -1;
}

static void
api_users_done(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_users_change *c = arg;
	struct http_req *hr = c->hr;
	char loc[128];

	if (api_users_status(hr, st, res, errstr, "you may grant only"
	    " projects you can see; name them in \"projects\"") == 0) {
		if (c->is_create) {
			snprintf(loc, sizeof(loc), "/api/v1/users/%s", c->name);
			http_add_header(hr, "Location", loc);
		}
		api_reply_object(hr, c->is_create ? 201 : 200, api_users_fields, res, 2);
	}
	api_users_change_free(c);
}

static void
api_users_hashed(char *encoded, void *arg)
{
	struct api_users_change *c = arg;
	struct http_req *hr = c->hr;
	char *scope, self[24];
	const char *v[9];
	int is_oom;

	if (c->password[0] != '\0' && encoded == NULL) {
		http_reply_problem(hr, 503, NULL, "cannot hash the password");
		api_users_change_free(c);
		return;
	}
	OPENSSL_cleanse(c->password, sizeof(c->password));
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom) {
		api_users_change_free(c);
		return;
	}
	if (c->is_create) {
		v[0] = c->name;
		v[1] = encoded;
		v[2] = c->role;
		v[3] = c->projects;
		v[4] = scope;
		v[5] = api_actor(hr);
		db_query(hr->srv->db, &users_create_api, 6, v, NULL, api_users_done, c);
	} else {
		snprintf(self, sizeof(self), "%lld", api_auth(hr)->user_id);
		v[0] = c->name;
		v[1] = c->role[0] != '\0' ? c->role : NULL;
		v[2] = c->disabled == -1 ? NULL : c->disabled ? "true" : "false";
		v[3] = c->has_projects ? "true" : "false";
		v[4] = c->projects;
		v[5] = encoded;
		v[6] = scope;
		v[7] = api_auth(hr)->user_id != 0 ? self : NULL;
		v[8] = api_actor(hr);
		db_query(hr->srv->db, &users_update, 9, v, NULL, api_users_done, c);
	}
	free(scope);
}

/* Hash the new password first, if there is one. */
static void
api_users_run(struct api_users_change *c)
{
	if (c->password[0] != '\0')
		auth_password_hash(c->password, api_users_hashed, c);
	else
		api_users_hashed(NULL, c);
}

static struct api_users_change *
api_users_change_new(struct http_req *hr, yajl_val body, const char *pw,
    const char *role)
{
	struct api_users_change *c;
	const char *weak;

	if (pw != NULL && (weak = auth_password_weak(pw)) != NULL) {
		http_reply_problem(hr, 422, NULL, "%s", weak);
		return NULL;
	}
	if (api_users_role(hr, role) == -1)
		return NULL;
	if ((c = api_alloc(hr, sizeof(*c))) == NULL)
		return NULL;
	c->hr = hr;
	c->disabled = -1;
	if (api_users_projects(hr, body, &c->has_projects, &c->projects) == -1) {
		api_users_change_free(c);
		return NULL;
	}
	if (pw != NULL)
		snprintf(c->password, sizeof(c->password), "%s", pw);
	if (role != NULL)
		snprintf(c->role, sizeof(c->role), "%s", role);
	return c;
}

static void
api_users_create(struct http_req *hr)
{
	static const char *const keys[] = { "name", "password", "role", "projects", NULL };
	const char *name = NULL, *pw = NULL, *role = NULL;
	struct api_users_change *c;
	yajl_val body;

	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, body, "name", 1, 64, &name) == -1 ||
	    api_json_str(hr, body, "password", 1, API_USERS_PW_MAX, &pw) == -1 ||
	    api_json_str(hr, body, "role", 1, 16, &role) == -1) {
		yajl_tree_free(body);
		return;
	}
	if (!names_is_user(name, strlen(name))) {
		yajl_tree_free(body);
		http_reply_problem(hr, 422, NULL,
		    "field \"name\" must be 1-64 of A-Z a-z 0-9 . _ @ -");
		return;
	}
	if ((c = api_users_change_new(hr, body, pw, role)) == NULL) {
		yajl_tree_free(body);
		return;
	}
	c->is_create = 1;
	snprintf(c->name, sizeof(c->name), "%s", name);
	yajl_tree_free(body);
	api_users_run(c);
}

static void
api_users_update(struct http_req *hr)
{
	static const char *const keys[] = { "role", "disabled", "projects", "password", NULL };
	const char *pw = NULL, *role = NULL;
	struct api_users_change *c;
	char name[65];
	int disabled = -1;
	yajl_val body;

	if (api_param(hr, 0, name, sizeof(name)) == -1)
		return;
	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, body, "role", 0, 16, &role) == -1 ||
	    api_json_bool(hr, body, "disabled", 0, &disabled) == -1 ||
	    api_json_str(hr, body, "password", 0, API_USERS_PW_MAX, &pw) == -1) {
		yajl_tree_free(body);
		return;
	}
	if (body->u.object.len == 0) {
		yajl_tree_free(body);
		http_reply_problem(hr, 400, NULL, "nothing to change: give role,"
		    " disabled, projects or password");
		return;
	}
	if ((c = api_users_change_new(hr, body, pw, role)) == NULL) {
		yajl_tree_free(body);
		return;
	}
	c->disabled = disabled;
	snprintf(c->name, sizeof(c->name), "%s", name);
	yajl_tree_free(body);
	api_users_run(c);
}

/* ---- API tokens ---- */

/* The caller opens and closes the object. */
static void
api_users_token_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	struct users_token_row t;

	users_token_decode(res, i, col, &t);
	json_kv_int(g, "id", t.id);
	json_kv_str(g, "name", t.name);
	json_kv_str(g, "role", t.role);
	json_kv_str(g, "project", t.project);
	json_kv_str(g, "expires_at", t.expires_at);
	json_kv_str(g, "revoked_at", t.revoked_at);
	json_kv_str(g, "last_used", t.last_used);
	json_kv_str(g, "created_at", t.created_at);
}

static void
api_users_tokens_listed(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	api_reply_list(arg, st, res, errstr, api_users_token_fields, 0);
}

static void
api_users_tokens_list(struct http_req *hr)
{
	char after[32], limit[API_LIMIT_LEN], *scope;
	const char *v[3] = { after, limit, NULL };
	int is_oom;

	if (api_page_id(hr, limit, after, sizeof(after)) == -1)
		return;
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		return;
	v[2] = scope;
	db_query(hr->srv->db, &users_tokens_list, 3, v, NULL,
	    api_users_tokens_listed, hr);
	free(scope);
}

static void
api_users_token_created(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct api_secret *t = arg;
	char loc[64];

	if (api_users_status(t->hr, st, res, errstr, "you may create tokens only"
	    " for projects you can see; name one in \"project\"") == 0) {
		snprintf(loc, sizeof(loc), "/api/v1/api-tokens/%s", PQgetvalue(res, 0, 2));
		api_secret_reply(t, res, api_users_token_fields, 2, loc);
	}
	api_secret_free(t);
}

static void
api_users_token_create(struct http_req *hr)
{
	static const char *const keys[] = { "name", "role", "project",
	    "expires_in_days", NULL };
	const char *name = NULL, *role = NULL, *project = NULL, *v[8];
	char days_s[16], by[24], *scope = NULL;
	long long days = 0;
	unsigned char hash[32];
	int len[8] = { -1, 32, -1, -1, -1, -1, -1, -1 }, is_oom;
	struct api_secret *t = NULL;
	yajl_val body, pv;

	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	pv = json_get(body, "project");
	if (api_json_str(hr, body, "name", 1, 128, &name) == -1 ||
	    api_json_str(hr, body, "role", 1, 16, &role) == -1 ||
	    (pv != NULL && !YAJL_IS_NULL(pv) &&
	    api_json_str(hr, body, "project", 0, 63, &project) == -1) ||
	    api_json_int(hr, body, "expires_in_days", 0, 1, 3650, &days) == -1 ||
	    api_users_role(hr, role) == -1)
		goto out;
	if (name[0] == '\0') {
		http_reply_problem(hr, 422, NULL, "field \"name\" must not be empty");
		goto out;
	}
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		goto out;
	if ((t = api_secret_new(hr, hash)) == NULL)
		goto out;
	snprintf(days_s, sizeof(days_s), "%lld", days);
	snprintf(by, sizeof(by), "%lld", api_auth(hr)->user_id);
	v[0] = name;
	v[1] = (const char *)hash;
	v[2] = role;
	v[3] = project;
	v[4] = days ? days_s : NULL;
	v[5] = scope;
	v[6] = api_auth(hr)->user_id ? by : NULL;
	v[7] = api_actor(hr);
	db_query(hr->srv->db, &users_token_create, 8, v, len,
	    api_users_token_created, t);
	t = NULL;
out:
	if (t != NULL)
		api_secret_free(t);
	OPENSSL_cleanse(hash, sizeof(hash));
	free(scope);
	yajl_tree_free(body);
}

static void
api_users_token_revoked(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	api_reply_word(arg, st, res, errstr, "API token already revoked",
	    "no such API token");
}

static void
api_users_token_revoke(struct http_req *hr)
{
	char id[32], *scope;
	const char *v[3];
	int is_oom;

	if (api_param_id(hr, 0, id, sizeof(id), "no such API token") == -1)
		return;
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		return;
	v[0] = id;
	v[1] = scope;
	v[2] = api_actor(hr);
	db_query(hr->srv->db, &users_token_revoke, 3, v, NULL,
	    api_users_token_revoked, hr);
	free(scope);
}

static const char *const api_users_list_query[] = { API_PAGE_QUERY, NULL };
static const char *const api_users_tokens_list_query[] = {
	API_PAGE_QUERY, NULL
};

const struct route api_users_routes[] = {
	{ "/api/v1/users", EVHTTP_REQ_GET, ROUTE_ADMIN, api_users_list, AUTH_ADMIN, api_users_list_query },
	{ "/api/v1/users", EVHTTP_REQ_POST, ROUTE_ADMIN, api_users_create, AUTH_ADMIN, NULL },
	{ "/api/v1/users/{user}", EVHTTP_REQ_PATCH, ROUTE_ADMIN, api_users_update, AUTH_ADMIN, NULL },
	{ "/api/v1/api-tokens", EVHTTP_REQ_GET, ROUTE_ADMIN, api_users_tokens_list, AUTH_ADMIN, api_users_tokens_list_query },
	{ "/api/v1/api-tokens", EVHTTP_REQ_POST, ROUTE_ADMIN, api_users_token_create, AUTH_ADMIN, NULL },
	{ "/api/v1/api-tokens/{id}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_users_token_revoke, AUTH_ADMIN, NULL },
};
const size_t api_users_nroutes = sizeof(api_users_routes) / sizeof(api_users_routes[0]);

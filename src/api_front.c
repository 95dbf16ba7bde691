/* api_front.c: the admin API's front door. Every API request is
 * authenticated here before its handler runs; every state-changing request
 * that fails is written to the audit log (successful ones are audited by
 * the change's own transaction). It never builds a resource's reply. */
#include "api_front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "api.h"
#include "api_ctx.h"
#include "audit.h"
#include "auth.h"
#include "http.h"
#include "log.h"
#include "server.h"

#define API_FRONT_PROJECT_PREFIX "/api/v1/projects/{project}"

static const struct db_stmt api_front_project_lookup = {
	"api_project_lookup", "SELECT id FROM projects WHERE name = $1", 1 };

int
api_front_register(struct db_pool *db)
{
	return db_register(db, &api_front_project_lookup);
}

static int
api_front_is_write(struct http_req *hr)
{
	int m = http_method(hr);

	return m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != 0;
}

/* Refused or failed changes leave an audit row too. */
static void
api_front_finish(struct http_req *hr, int status)
{
	struct api_ctx *c = hr->api;

	if (c == NULL)
		return;
	if (c->auth != NULL && status >= 400 && api_front_is_write(hr) &&
	    hr->match.route != NULL)
		audit_api_refusal(hr->srv, c->auth->actor, hr->method,
		    hr->match.route->pattern, hr->path, status,
		    c->project_id ? c->project_id_str : NULL);
	free(c->auth);
	OPENSSL_cleanse(c->secret, sizeof(c->secret));
	free(c);
	hr->api = NULL;
}

/* "a=b; ql_session=XYZ" -> XYZ */
static int
api_front_cookie(struct http_req *hr, char *out, size_t len)
{
	const char *h = http_header(hr, "Cookie"), *p, *end;
	size_t name = strlen(API_COOKIE), n;

	if (h == NULL)
		return -1;
	for (p = h; (p = strstr(p, API_COOKIE "=")) != NULL; p += name) {
		if (p != h && p[-1] != ' ' && p[-1] != ';')
			continue;
		p += name + 1;
		end = strchr(p, ';');
		n = end ? (size_t)(end - p) : strlen(p);
		if (n == 0 || n >= len)
			return -1;
		memcpy(out, p, n);
		out[n] = '\0';
		return 0;
	}
	return -1;
}

static void
api_front_run(struct http_req *hr)
{
	struct api_ctx *c = hr->api;

	/* The client hung up during the lookups: nothing left to serve. */
	if (hr->req == NULL) {
		http_reply(hr, 499, NULL, NULL);
		return;
	}
	if ((int)c->auth->role < ROUTE_ROLE(hr->match.route->role)) {
		http_reply_problem(hr, 403, NULL, "the %s role may not do this",
		    auth_role_name(c->auth->role));
		return;
	}
	if ((hr->match.route->role & ROUTE_GLOBAL) && !c->auth->is_all_projects) {
		http_reply_problem(hr, 403, NULL,
		    "only a caller with access to every project may do this");
		return;
	}
	if (http_query_check(hr) == 0)
		hr->match.route->handler(hr);
}

static void
api_front_project_found(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	struct api_ctx *c = hr->api;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	/* Existence must not leak across project scopes, and a refusal is
	 * audited in a project only when the caller may see it (else in the
	 * installation's log), so no caller writes into another's log. */
	if (PQntuples(res) != 1 ||
	    !auth_sees_project(c->auth, api_val_int(res, 0, 0))) {
		http_reply_problem(hr, 404, NULL, "no such project");
		return;
	}
	c->project_id = api_val_int(res, 0, 0);
	snprintf(c->project_id_str, sizeof(c->project_id_str), "%lld",
	    c->project_id);
	api_front_run(hr);
}

static void
api_front_authenticated(struct auth *a, enum db_status st, void *arg)
{
	struct http_req *hr = arg;
	struct api_ctx *c = hr->api;
	const char *name = c->project;

	if (a == NULL) {
		if (st != DB_OK) {
			http_reply_problem(hr, 503, NULL, "database unavailable");
			return;
		}
		http_add_header(hr, "WWW-Authenticate", "Bearer realm=\"quarklink\"");
		http_reply_problem(hr, 401, NULL, c->is_session ?
		    "session expired or logged out" : "invalid, expired or revoked token");
		return;
	}
	c->auth = a;
	/* A cookie rides along on cross-site requests; the CSRF token, which
	 * only our own pages can read, must come with every change. */
	if (c->is_session && api_front_is_write(hr) &&
	    !auth_csrf_ok(c->secret, http_header(hr, API_CSRF_HEADER))) {
		http_reply_problem(hr, 403, NULL, "missing or wrong " API_CSRF_HEADER);
		return;
	}
	if (strncmp(hr->match.route->pattern, API_FRONT_PROJECT_PREFIX,
	    strlen(API_FRONT_PROJECT_PREFIX)) != 0) {
		api_front_run(hr);
		return;
	}
	if (api_param(hr, 0, c->project, sizeof(c->project)) == -1)
		return;
	db_query(hr->srv->db, &api_front_project_lookup, 1, &name, NULL,
	    api_front_project_found, hr);
}

void
api_front_dispatch(struct http_req *hr)
{
	const char *authz = http_header(hr, "Authorization");
	unsigned char hash[32];
	struct api_ctx *c;

	if ((c = api_alloc(hr, sizeof(*c))) == NULL)
		return;
	hr->api = c;
	hr->finish = api_front_finish;
	if (authz != NULL) {
		if (strncasecmp(authz, "Bearer ", 7) != 0 ||
		    strlen(authz + 7) >= sizeof(c->secret) + 16) {
			http_add_header(hr, "WWW-Authenticate", "Bearer realm=\"quarklink\"");
			http_reply_problem(hr, 401, NULL, "expected Authorization: Bearer TOKEN");
			return;
		}
		auth_hash(authz + 7, hash);
	} else if (api_front_cookie(hr, c->secret, sizeof(c->secret)) == 0) {
		c->is_session = 1;
		auth_hash(c->secret, hash);
	} else {
		http_add_header(hr, "WWW-Authenticate", "Bearer realm=\"quarklink\"");
		http_reply_problem(hr, 401, NULL, "log in or present a bearer token");
		return;
	}
	auth_lookup(hr->srv->db, c->is_session, hash, api_front_authenticated, hr);
}

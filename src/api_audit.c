/* api_audit.c: the audit log, newest first and filtered by the caller's
 * project scope (rows without a project only for callers of every
 * project), the verification of its hash chain against the latest signed
 * checkpoint, and the checkpoints themselves. */
#include "api_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "api.h"
#include "audit.h"
#include "checkpoint.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "util.h"

/* Longer values than a filter can match are refused, not ignored. */
#define API_AUDIT_FILTER_MAX 256

static void
api_audit_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	struct audit_row a;

	audit_decode(res, i, col, &a);
	json_kv_int(g, "id", a.id);
	json_kv_str(g, "at", a.at);
	json_kv_str(g, "actor", a.actor);
	json_kv_str(g, "action", a.action);
	json_kv_str(g, "object", a.object);
	json_kv_str(g, "result", a.result);
	json_kv_str(g, "detail", a.detail);
	json_kv_str(g, "project", a.project);
}

static void
api_audit_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (st == DB_SQL_ERROR && state != NULL && strncmp(state, "22", 2) == 0) {
		/* The only value PostgreSQL parses is since. */
		http_reply_problem(hr, 400, NULL,
		    "query parameter since is not an ISO 8601 timestamp");
		return;
	}
	api_reply_list(hr, st, res, errstr, api_audit_fields, 0);
}

static void
api_audit_list(struct http_req *hr)
{
	static const char *const names[] = { "actor", "action", "since", "project" };
	char f[4][API_AUDIT_FILTER_MAX + 1], after[32], limit[API_LIMIT_LEN], *scope;
	const char *v[7], *errstr;
	long long before;
	int is_oom, rc;

	if (api_page(hr, limit, after, sizeof(after)) == -1)
		return;
	v[1] = NULL;
	if (after[0] != '\0') {
		before = util_strtonum(after, 1, 9223372036854775807LL, &errstr);
		if (errstr != NULL) {
			http_reply_problem(hr, 400, NULL, "query parameter after is not valid");
			return;
		}
		snprintf(after, sizeof(after), "%lld", before);
		v[1] = after;
	}
	for (int i = 0; i < 4; i++) {
		if ((rc = api_query_str(hr, names[i], API_AUDIT_FILTER_MAX, f[i],
		    "is not valid")) == -1)
			return;
		v[2 + i] = rc ? f[i] : NULL;
	}
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		return;
	v[0] = scope;
	v[6] = limit;
	db_query(hr->srv->db, &audit_list, 7, v, NULL, api_audit_listed, hr);
	free(scope);
}

/* The latest checkpoint's state, its signature checked with the key on
 * the token (the database's copy of anything can be rewritten). */
static const char *
api_audit_checkpoint_state(struct http_req *hr, const struct audit_verify_row *v)
{
	const char *state = v->cp_state;

	if (strcmp(state, "none") == 0 || strcmp(state, "forged") == 0)
		return state;
	return checkpoint_verify(hr->srv, v->cp_signed, v->cp_signature) ?
	    state : "forged";
}

static void
api_audit_verified(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	struct audit_verify_row v;
	const char *state;
	yajl_gen g;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	audit_verify_decode(res, &v);
	state = api_audit_checkpoint_state(hr, &v);
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_int(g, "rows", v.rows);
	json_kv_bool(g, "ok", !v.is_broken &&
	    (strcmp(state, "ok") == 0 || strcmp(state, "none") == 0));
	if (v.is_broken)
		json_kv_int(g, "first_broken_id", v.broken_id);
	json_kv_str(g, "checkpoint", state);
	if (v.has_checkpoint) {
		json_kv_int(g, "checkpoint_id", v.cp_id);
		json_kv_int(g, "checkpoint_rows", v.cp_rows);
	}
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static void
api_audit_verify(struct http_req *hr)
{
	db_query(hr->srv->db, &audit_verify, 0, NULL, NULL, api_audit_verified, hr);
}

static void
api_audit_checkpoint_json(struct http_req *hr, int status, const PGresult *res)
{
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	json_kv_int(g, "id", api_val_int(res, 0, 0));
	json_kv_int(g, "rows", api_val_int(res, 0, 1));
	if (PQgetisnull(res, 0, 2))
		json_kv_str(g, "last_id", NULL);
	else
		json_kv_int(g, "last_id", api_val_int(res, 0, 2));
	json_kv_str(g, "head", PQgetvalue(res, 0, 3));
	json_kv_str(g, "at", PQgetvalue(res, 0, 4));
	json_kv_str(g, "signed_data", PQgetvalue(res, 0, 5));
	json_kv_str(g, "signature", PQgetvalue(res, 0, 6));
	json_kv_str(g, "algorithm", checkpoint_algorithm());
	json_kv_str(g, "public_key", checkpoint_public_pem(hr->srv));
	yajl_gen_map_close(g);
	http_reply_json(hr, status, g);
}

static void
api_audit_checkpoint_got(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct http_req *hr = arg;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_problem(hr, 404, NULL, "no checkpoint yet");
		return;
	}
	api_audit_checkpoint_json(hr, 200, res);
}

static void
api_audit_checkpoint_latest(struct http_req *hr)
{
	db_query(hr->srv->db, &checkpoint_latest, 0, NULL, NULL,
	    api_audit_checkpoint_got, hr);
}

static void
api_audit_checkpoint_made(enum checkpoint_status st, const PGresult *res,
    const char *err, void *arg)
{
	struct http_req *hr = arg;

	switch (st) {
	case CHECKPOINT_MADE:
		api_audit_checkpoint_json(hr, 201, res);
		break;
	case CHECKPOINT_REFUSED:
		http_reply_problem(hr, 409, NULL, "%s", err);
		break;
	case CHECKPOINT_UNAVAILABLE:
		http_reply_problem(hr, 503, NULL, "database unavailable");
		break;
	case CHECKPOINT_UNCHANGED:
	case CHECKPOINT_ERROR:
		log_warnx("api: checkpoint: %s", err ? err : "?");
		http_reply_problem(hr, 500, NULL, "cannot make a checkpoint");
		break;
	}
}

static void
api_audit_checkpoint_new(struct http_req *hr)
{
	checkpoint_make(hr->srv, api_audit_checkpoint_made, hr);
}

static const char *const api_audit_list_query[] = {
	API_PAGE_QUERY, "actor", "action", "since", "project", NULL
};

const struct route api_audit_routes[] = {
	{ "/api/v1/audit", EVHTTP_REQ_GET, ROUTE_ADMIN, api_audit_list, AUTH_VIEWER, api_audit_list_query },
	{ "/api/v1/audit/verify", EVHTTP_REQ_GET, ROUTE_ADMIN, api_audit_verify, AUTH_ADMIN | ROUTE_GLOBAL, NULL },
	{ "/api/v1/audit/checkpoints", EVHTTP_REQ_POST, ROUTE_ADMIN, api_audit_checkpoint_new, AUTH_ADMIN | ROUTE_GLOBAL, NULL },
	{ "/api/v1/audit/checkpoints/latest", EVHTTP_REQ_GET, ROUTE_ADMIN, api_audit_checkpoint_latest, AUTH_VIEWER | ROUTE_GLOBAL, NULL },
};
const size_t api_audit_nroutes = sizeof(api_audit_routes) / sizeof(api_audit_routes[0]);

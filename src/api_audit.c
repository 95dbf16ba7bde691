/* api_audit.c: the audit log, newest first and filtered by the caller's
 * project scope (rows without a project only for callers of every
 * project), and the verification of its hash chain. Read only. */
#include "api_audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "api.h"
#include "audit.h"
#include "json.h"
#include "server.h"
#include "util.h"

/* Longer values than a filter can match are refused, not ignored (up to
 * API_AUDIT_QUERY_MAX: http_query_param cannot tell longer from absent). */
#define API_AUDIT_FILTER_MAX 256
#define API_AUDIT_QUERY_MAX 4096

/* Query parameter name into buf (API_AUDIT_FILTER_MAX + 1 bytes): 1 when
 * given, 0 when absent, -1 after a 400. */
static int
api_audit_filter(struct http_req *hr, const char *name, char *buf)
{
	char big[API_AUDIT_QUERY_MAX];
	size_t n;

	if (http_query_param(hr, name, big, sizeof(big)) == -1)
		return 0;
	n = strlen(big);
	if (n > API_AUDIT_FILTER_MAX || !util_utf8_valid((unsigned char *)big, n)) {
		http_reply_problem(hr, 400, NULL, "query parameter %s is not valid", name);
		return -1;
	}
	memcpy(buf, big, n + 1);
	return 1;
}

static void
api_audit_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	yajl_gen g;

	if (st == DB_SQL_ERROR && state != NULL && strncmp(state, "22", 2) == 0) {
		/* The only value PostgreSQL parses is since. */
		http_reply_problem(hr, 400, NULL,
		    "query parameter since is not an ISO 8601 timestamp");
		return;
	}
	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	g = api_list_begin();
	for (int i = 0; i < PQntuples(res); i++) {
		yajl_gen_map_open(g);
		json_kv_int(g, "id", strtoll(PQgetvalue(res, i, 0), NULL, 10));
		json_kv_str(g, "at", PQgetvalue(res, i, 1));
		json_kv_str(g, "actor", PQgetvalue(res, i, 2));
		json_kv_str(g, "action", PQgetvalue(res, i, 3));
		json_kv_str(g, "object", api_val(res, i, 4));
		json_kv_str(g, "result", PQgetvalue(res, i, 5));
		json_kv_str(g, "detail", api_val(res, i, 6));
		json_kv_str(g, "project", api_val(res, i, 7));
		yajl_gen_map_close(g);
	}
	api_list_page(hr, g, res, 0);
}

static void
api_audit_list(struct http_req *hr)
{
	static const char *const names[] = { "actor", "action", "since", "project" };
	char f[4][API_AUDIT_FILTER_MAX + 1], after[32], limit_s[16], *scope;
	const char *v[7], *errstr;
	long long before;
	int limit, is_oom, rc;

	if (api_page(hr, &limit, after, sizeof(after)) == -1)
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
		if ((rc = api_audit_filter(hr, names[i], f[i])) == -1)
			return;
		v[2 + i] = rc ? f[i] : NULL;
	}
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		return;
	snprintf(limit_s, sizeof(limit_s), "%d", limit);
	v[0] = scope;
	v[6] = limit_s;
	db_query(hr->srv->db, &audit_list, 7, v, NULL, api_audit_listed, hr);
	free(scope);
}

static void
api_audit_verified(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	yajl_gen g;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_int(g, "rows", strtoll(PQgetvalue(res, 0, 0), NULL, 10));
	json_kv_bool(g, "ok", PQgetisnull(res, 0, 1));
	if (!PQgetisnull(res, 0, 1))
		json_kv_int(g, "first_broken_id", strtoll(PQgetvalue(res, 0, 1), NULL, 10));
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static void
api_audit_verify(struct http_req *hr)
{
	db_query(hr->srv->db, &audit_verify, 0, NULL, NULL, api_audit_verified, hr);
}

const struct route api_audit_routes[] = {
	{ "/api/v1/audit", EVHTTP_REQ_GET, ROUTE_ADMIN, api_audit_list, AUTH_VIEWER },
	{ "/api/v1/audit/verify", EVHTTP_REQ_GET, ROUTE_ADMIN, api_audit_verify, AUTH_ADMIN | ROUTE_GLOBAL },
};
const size_t api_audit_nroutes = sizeof(api_audit_routes) / sizeof(api_audit_routes[0]);

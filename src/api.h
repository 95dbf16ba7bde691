/* api.h: what every /api/v1/ handler shares: authentication before the
 * handler runs (session cookie + CSRF, or bearer token), role and project
 * scope checks, JSON bodies, pagination, and database error mapping.
 * Handlers build replies only through http_reply_* and these helpers. */
#ifndef QL_API_H
#define QL_API_H

#include <stddef.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "auth.h"
#include "db.h"
#include "http.h"

#define API_LIMIT_DEFAULT	100
#define API_LIMIT_MAX		1000
#define API_COOKIE		"ql_session"
#define API_CSRF_HEADER		"X-CSRF-Token"

/* Called by http.c for routes with a role: authenticates, resolves the
 * {project} of /api/v1/projects/{project}/..., checks role and scope, then
 * runs the route's handler. An invisible project is 404, not 403. */
void		 api_dispatch(struct http_req *);

const struct auth *api_auth(struct http_req *);
const char	*api_actor(struct http_req *);
long long	 api_project_id(struct http_req *);
const char	*api_project_name(struct http_req *);
/* The session secret from the cookie, or NULL for bearer callers. */
const char	*api_session_secret(struct http_req *);

/* Path parameter i, percent-decoded, 1..len-1 bytes of printable UTF-8. */
int		 api_param(struct http_req *, size_t i, char *buf, size_t len)
		    __attribute__((warn_unused_result));

/* The request body as JSON (Content-Type application/json, bounded depth,
 * strict UTF-8) or NULL after a 400/415 reply. Caller frees with
 * yajl_tree_free. */
yajl_val	 api_body_json(struct http_req *);
/* Typed members: 0 ok (out set, or untouched if absent and optional),
 * -1 after a 400 naming the field. */
int		 api_json_str(struct http_req *, yajl_val, const char *key,
		    int required, size_t maxlen, const char **out)
		    __attribute__((warn_unused_result));
int		 api_json_int(struct http_req *, yajl_val, const char *key,
		    int required, long long min, long long max, long long *out)
		    __attribute__((warn_unused_result));
int		 api_json_bool(struct http_req *, yajl_val, const char *key,
		    int required, int *out) __attribute__((warn_unused_result));
/* Refuse members not in the NULL-terminated list (typos are errors). */
int		 api_json_only(struct http_req *, yajl_val, const char *const *keys)
		    __attribute__((warn_unused_result));

/* ?limit=&after= keyset pagination; after is "" when absent. -1 after 400. */
int		 api_page(struct http_req *, int *limit, char *after, size_t len)
		    __attribute__((warn_unused_result));
/* {"items":[ ... ],"next":CURSOR|null}: begin opens the array. */
yajl_gen	 api_list_begin(void);
void		 api_list_end(struct http_req *, yajl_gen, const char *next);
/* api_list_end with next = column key_col of the last row of a full page. */
void		 api_list_page(struct http_req *, yajl_gen, const PGresult *,
		    int key_col);

/* A failed query as the right status: 503 unavailable, 409 conflict,
 * 422 constraint, 500 otherwise. */
void		 api_db_error(struct http_req *, enum db_status, const PGresult *,
		    const char *errstr);
/* Query parameter as a bounded number; -1 after a 400 naming it. */
int		 api_query_int(struct http_req *, const char *name, long long min,
		    long long max, long long *out, int *present)
		    __attribute__((warn_unused_result));

/* The caller's projects as a PostgreSQL array literal "{1,2}" for
 * "p.id = ANY($n::bigint[])" filters, NULL for all projects. Caller frees;
 * NULL with *is_oom set means a 503 has been sent. */
char		*api_scope(struct http_req *, int *is_oom);
/* A column value, NULL for SQL NULL (json_kv_str writes null). */
const char	*api_val(const PGresult *, int row, int col);

/* Placeholder handler for routes declared but not built yet: 501. */
void		 api_not_implemented(struct http_req *);

int		 api_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

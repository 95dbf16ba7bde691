/* api.h: what every /api/v1/ handler shares once the front door
 * (api_front.h) has authenticated the caller and checked role and project
 * scope: the caller, path parameters, JSON bodies, queries, pagination,
 * replies and database error mapping. Handlers build replies only through
 * http_reply_* and these helpers. */
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
#define API_LIMIT_LEN		8	/* "1000" as text */
#define API_ID_LEN		24	/* a bigint as text */
#define API_COOKIE		"ql_session"
#define API_CSRF_HEADER		"X-CSRF-Token"

const struct auth *api_auth(struct http_req *);
const char	*api_actor(struct http_req *);
long long	 api_project_id(struct http_req *);
/* The same id as text, for query parameters. */
const char	*api_project_id_str(struct http_req *);
const char	*api_project_name(struct http_req *);
/* The session secret from the cookie, or NULL for bearer callers. */
const char	*api_session_secret(struct http_req *);

/* Path parameter i, percent-decoded, 1..len-1 bytes of printable UTF-8. */
int		 api_param(struct http_req *, size_t i, char *buf, size_t len)
		    __attribute__((warn_unused_result));
/* Path parameter i as a positive integer id; 404 "missing" otherwise. */
int		 api_param_id(struct http_req *, size_t i, char *buf, size_t len,
		    const char *missing) __attribute__((warn_unused_result));

/* xcalloc: never NULL (xmalloc.h); the NULL checks of older callers are
 * harmless. */
void		*api_alloc(struct http_req *, size_t);

/* The request body as a JSON object of no members but the NULL-terminated
 * keys (Content-Type application/json, bounded depth, strict UTF-8), or
 * NULL after a 400/415 reply. Caller frees with yajl_tree_free. */
yajl_val	 api_body_json(struct http_req *, const char *const *keys);
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
/* Refuse members not in the NULL-terminated list (typos are errors) and
 * members given twice. */
int		 api_json_only(struct http_req *, yajl_val, const char *const *keys)
		    __attribute__((warn_unused_result));

/* The query parameters of api_page, for a list route's declaration. */
#define API_PAGE_QUERY		"limit", "after"
/* ?limit=&after= keyset pagination, limit as text; after is "" when
 * absent. -1 after 400. */
int		 api_page(struct http_req *, char limit[API_LIMIT_LEN], char *after,
		    size_t len) __attribute__((warn_unused_result));
/* api_page for lists ordered by an integer id: after is "0" when absent. */
int		 api_page_id(struct http_req *, char limit[API_LIMIT_LEN],
		    char *after, size_t len) __attribute__((warn_unused_result));
/* {"items":[ ... ],"next":CURSOR|null}: begin opens the array. */
yajl_gen	 api_list_begin(void);
void		 api_list_end(struct http_req *, yajl_gen, const char *next);
/* api_list_end with next = column key_col of the last row of a full page. */
void		 api_list_page(struct http_req *, yajl_gen, const PGresult *,
		    int key_col);

/* Writes the members of one JSON object (the caller opens and closes it)
 * from the columns of row that start at col. */
typedef void	(*api_fields_fn)(yajl_gen, const PGresult *, int row, int col);
/* Database callbacks' replies; each starts with api_db_error on failure.
 * list: every row as an object, paged by key_col. */
void		 api_reply_list(struct http_req *, enum db_status,
		    const PGresult *, const char *errstr, api_fields_fn, int key_col);
/* one: row 0 as an object with status, or 404 "missing" without a row. */
void		 api_reply_one(struct http_req *, enum db_status, const PGresult *,
		    const char *errstr, int status, api_fields_fn, int col,
		    const char *missing);
/* Row 0 as an object with status, when the caller has checked it is there. */
void		 api_reply_object(struct http_req *, int status, api_fields_fn,
		    const PGresult *, int col);
/* done: 204 when a change returned its row with a value in column 0, else
 * status (404 or 409) with detail. */
void		 api_reply_done(struct http_req *, enum db_status, const PGresult *,
		    const char *errstr, int status, const char *detail);
/* word: the status word of a revoke function: "ok" 204, "revoked" 409
 * conflict, anything else 404 missing. */
void		 api_reply_word(struct http_req *, enum db_status, const PGresult *,
		    const char *errstr, const char *conflict, const char *missing);

/* A created object's secret, shown once in the 201 and never stored:
 * the context a create carries to its callback. */
struct api_secret {
	struct http_req	*hr;
	char		 secret[AUTH_SECRET_LEN];
};
/* A new secret and its SHA-256, or NULL after a 503. */
struct api_secret *api_secret_new(struct http_req *, unsigned char hash[32]);
void		 api_secret_free(struct api_secret *);
/* 201: row 0's members, then "token"; Location, and no-store because the
 * body holds the secret. */
void		 api_secret_reply(struct api_secret *, const PGresult *,
		    api_fields_fn, int col, const char *location);

/* A failed query as the right status: 503 unavailable, 409 conflict,
 * 422 constraint, 500 otherwise. */
void		 api_db_error(struct http_req *, enum db_status, const PGresult *,
		    const char *errstr);
/* Query parameter as a bounded number; -1 after a 400 naming it. */
int		 api_query_int(struct http_req *, const char *name, long long min,
		    long long max, long long *out, int *present)
		    __attribute__((warn_unused_result));
/* Query parameter as at most maxlen bytes of UTF-8 into out (maxlen + 1
 * bytes): 1 present, 0 absent (out ""), -1 after a 400 "query parameter
 * NAME DETAIL", or "... must be at most MAXLEN bytes of UTF-8" when detail
 * is NULL. Values up to API_QUERY_MAX are read, so a longer filter is
 * refused rather than taken for an absent one. */
#define API_QUERY_MAX		4096
int		 api_query_str(struct http_req *, const char *name, size_t maxlen,
		    char *out, const char *detail) __attribute__((warn_unused_result));

/* The caller's projects as a PostgreSQL array literal "{1,2}" for
 * "p.id = ANY($n::bigint[])" filters, NULL for all projects. Caller frees.
 * *is_oom is always 0 now (xmalloc.h); it stays for the callers. */
char		*api_scope(struct http_req *, int *is_oom);
/* A column value, NULL for SQL NULL (json_kv_str writes null). */
const char	*api_val(const PGresult *, int row, int col);
/* A column holding an integer. */
long long	 api_val_int(const PGresult *, int row, int col);

/* Placeholder handler for routes declared but not built yet: 501. */
void		 api_not_implemented(struct http_req *);

#endif

/* enroll.c: enrollment records. The policy decides inside
 * ql_enroll_decide()/ql_reenroll_decide() before anything is signed, and
 * ql_enroll_commit() records the signed certificate (sql/006). */
#include "enroll.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth.h"
#include "db.h"
#include "util.h"
#include "xmalloc.h"

/* Both deciders answer result, detail, reservation, ca_id, device_id. */
static const struct db_stmt enroll_first = {
	"enroll_first", "SELECT result, detail, reservation, ca_id, $2::text"
	" FROM ql_enroll_decide($1::bigint, $2, $3, $4, $5)", 5 };
static const struct db_stmt enroll_again = {
	"enroll_again", "SELECT result, detail, reservation, ca_id, device_id"
	" FROM ql_reenroll_decide($1, $2, $3)", 3 };
static const struct db_stmt enroll_commit = {
	"enroll_commit", "SELECT result, detail FROM ql_enroll_commit($1::bigint,"
	" $2, $3, $4, to_timestamp($5::float8), to_timestamp($6::float8))", 6 };
/* Each change and its audit row are one statement, so one transaction. */
static const struct db_stmt enroll_token_insert = {
	"enroll_token_insert", "WITH t AS (INSERT INTO enrollment_tokens (project_id,"
	" token_hash, max_uses, expires_at) SELECT id, $2, $3::integer,"
	" now() + make_interval(days => $4::integer) FROM projects WHERE name = $1"
	" RETURNING id, project_id)"
	" SELECT t.id, ql_audit($5, 'enrollment_token.create', t.id::text, 'ok', NULL,"
	" t.project_id) FROM t", 5 };
/* Allowing again lifts the block of a device whose certificate was revoked. */
static const struct db_stmt enroll_allow_insert = {
	"enroll_allow_insert", "SELECT a.added FROM projects p,"
	" ql_allowlist_add(p.id, ARRAY[$2::text], $3) a WHERE p.name = $1", 3 };
/* Approval also lifts the block of a device whose certificate was revoked. */
static const struct db_stmt enroll_approve_update = {
	"enroll_approve_update", "SELECT r.result FROM projects p,"
	" ql_device_set_status(p.id, $2, 'approve', $3) r"
	" WHERE p.name = $1 AND r.result = 'ok'", 3 };
static const struct db_stmt enroll_revoke_update = {
	"enroll_revoke_update", "SELECT r.r_audit FROM ql_cert_revoke($1, $2::smallint,"
	" $3, 'reason ' || $2, (SELECT cas.project_id FROM certificates c"
	" JOIN cas ON cas.id = c.ca_id WHERE c.serial = $1)) r"
	" WHERE r.r_at IS NOT NULL", 3 };

#define ENROLL_ISO(col) "ql_iso(" col ")"
#define ENROLL_TOKEN_COLS "id, name, max_uses, uses, " ENROLL_ISO("expires_at") ", " \
	ENROLL_ISO("revoked_at") ", " ENROLL_ISO("created_at")

/* The admin API's statements: projects by id (already scope-checked). */
const struct db_stmt enroll_tokens_list = {
	"enroll_tokens_list", "SELECT " ENROLL_TOKEN_COLS " FROM enrollment_tokens"
	" WHERE project_id = $1::bigint AND id > $2::bigint ORDER BY id"
	" LIMIT $3::integer", 3 };
const struct db_stmt enroll_token_new = {
	"enroll_token_new", "WITH t AS (INSERT INTO enrollment_tokens (project_id,"
	" token_hash, max_uses, expires_at, name) VALUES ($1::bigint, $2, $3::integer,"
	" now() + make_interval(days => $4::integer), $5) RETURNING *)"
	" SELECT " ENROLL_TOKEN_COLS ", ql_audit($6, 'enrollment_token.create',"
	" t.id::text, 'ok', t.name, t.project_id) FROM t", 6 };
const struct db_stmt enroll_token_revoke = {
	"enroll_token_revoke", "SELECT ql_enrollment_token_revoke($1::bigint,"
	" $2::bigint, $3)", 3 };
const struct db_stmt enroll_allowlist_list = {
	"enroll_allowlist_list", "SELECT device_id, " ENROLL_ISO("created_at")
	" FROM allowlist WHERE project_id = $1::bigint AND device_id > $2"
	" ORDER BY device_id LIMIT $3::integer", 3 };
const struct db_stmt enroll_allowlist_add = {
	"enroll_allowlist_add", "SELECT added, already_present FROM"
	" ql_allowlist_add($1::bigint, $2::text[], $3)", 3 };
const struct db_stmt enroll_allowlist_remove = {
	"enroll_allowlist_remove", "WITH a AS (DELETE FROM allowlist"
	" WHERE project_id = $1::bigint AND device_id = $2"
	" RETURNING project_id, device_id)"
	" SELECT ql_audit($3, 'allowlist.remove', a.device_id, 'ok', NULL,"
	" a.project_id) FROM a", 3 };

struct enroll_ctx {
	enroll_cb	 cb;
	void		*arg;
	const char	*missing;	/* detail when no row came back */
};

int
enroll_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&enroll_first, &enroll_again, &enroll_commit, &enroll_token_insert,
		&enroll_allow_insert, &enroll_approve_update, &enroll_revoke_update,
		&enroll_tokens_list, &enroll_token_new, &enroll_token_revoke,
		&enroll_allowlist_list, &enroll_allowlist_add,
		&enroll_allowlist_remove,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

static struct enroll_ctx *
enroll_ctx_new(enroll_cb cb, void *arg, const char *missing)
{
	struct enroll_ctx *c = xmalloc(sizeof(*c));

	c->cb = cb;
	c->arg = arg;
	c->missing = missing;
	return c;
}

static enum enroll_result
enroll_result_code(const char *s)
{
	static const struct { const char *name; enum enroll_result r; } map[] = {
		{ "issued", ENROLL_ISSUED }, { "reserved", ENROLL_RESERVED },
		{ "expired", ENROLL_EXPIRED }, { "pending", ENROLL_PENDING },
		{ "denied", ENROLL_DENIED }, { "not_found", ENROLL_NOT_FOUND },
		{ "forbidden", ENROLL_FORBIDDEN }, { "mismatch", ENROLL_MISMATCH },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].name) == 0)
			return map[i].r;
	return ENROLL_ERROR;
}

static void
enroll_recorded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct enroll_ctx *c = arg;
	const char *state;

	if (st == DB_UNAVAILABLE) {
		c->cb(ENROLL_UNAVAILABLE, errstr, c->arg);
	} else if (st == DB_SQL_ERROR) {
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		c->cb(state && strcmp(state, "23505") == 0 ? ENROLL_SERIAL_TAKEN :
		    ENROLL_ERROR, errstr, c->arg);
	} else if (PQntuples(res) != 1) {
		c->cb(ENROLL_ERROR, "no result", c->arg);
	} else {
		c->cb(enroll_result_code(PQgetvalue(res, 0, 0)),
		    PQgetvalue(res, 0, 1), c->arg);
	}
	free(c);
}

void
enroll_record(struct db_pool *db, const struct enroll_record *r, enroll_cb cb,
    void *arg)
{
	char rid[24], nb[24], na[24];
	struct enroll_ctx *c = enroll_ctx_new(cb, arg, NULL);
	const char *v[6] = { rid, r->serial, (const char *)r->cert_der, r->subject,
	    nb, na };
	int len[6] = { -1, -1, r->cert_len, -1, -1, -1 };

	snprintf(rid, sizeof(rid), "%lld", r->reservation);
	snprintf(nb, sizeof(nb), "%lld", (long long)r->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)r->not_after);
	db_query(db, &enroll_commit, 6, v, len, enroll_recorded, c);
}

struct enroll_decision {
	enroll_decided_cb	 cb;
	void			*arg;
};

/* result, detail, reservation, ca_id, device_id */
static void
enroll_decided(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct enroll_decision *d = arg;
	struct enroll_grant g;
	enum enroll_result r;
	const char *errs = NULL;

	if (st != DB_OK || PQntuples(res) != 1) {
		d->cb(st == DB_UNAVAILABLE ? ENROLL_UNAVAILABLE : ENROLL_ERROR,
		    st == DB_OK ? "no result" : errstr, NULL, d->arg);
		free(d);
		return;
	}
	r = enroll_result_code(PQgetvalue(res, 0, 0));
	if (r != ENROLL_RESERVED) {
		d->cb(r, PQgetvalue(res, 0, 1), NULL, d->arg);
		free(d);
		return;
	}
	memset(&g, 0, sizeof(g));
	g.reservation = util_strtonum(PQgetvalue(res, 0, 2), 1, LLONG_MAX, &errs);
	if (errs == NULL)
		g.ca_id = util_strtonum(PQgetvalue(res, 0, 3), 1, LLONG_MAX, &errs);
	if (errs != NULL || PQgetlength(res, 0, 4) != (int)sizeof(g.device_id) - 1)
		d->cb(ENROLL_ERROR, "malformed decision", NULL, d->arg);
	else {
		memcpy(g.device_id, PQgetvalue(res, 0, 4), sizeof(g.device_id) - 1);
		d->cb(ENROLL_RESERVED, NULL, &g, d->arg);
	}
	free(d);
}

void
enroll_decide(struct db_pool *db, const struct enroll_request *q,
    enroll_decided_cb cb, void *arg)
{
	struct enroll_decision *d = xmalloc(sizeof(*d));
	char pid[24];

	d->cb = cb;
	d->arg = arg;
	if (q->old_serial != NULL) {
		const char *v[3] = { q->old_serial, (const char *)q->old_cert_sha256,
		    (const char *)q->spki_sha256 };
		int len[3] = { -1, 32, 32 };

		db_query(db, &enroll_again, 3, v, len, enroll_decided, d);
	} else {
		const char *v[5] = { pid, q->device_id, q->label,
		    (const char *)q->token_hash, (const char *)q->spki_sha256 };
		int len[5] = { -1, -1, -1, q->token_hash ? 32 : -1, 32 };

		snprintf(pid, sizeof(pid), "%lld", q->project_id);
		db_query(db, &enroll_first, 5, v, len, enroll_decided, d);
	}
}

void
enroll_token_hash(const char *secret, size_t len, unsigned char out[32])
{
	util_sha256(secret, len, out);
}

/* Zero rows back means the named object does not exist. */
static void
enroll_changed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct enroll_ctx *c = arg;

	if (st != DB_OK)
		c->cb(st == DB_UNAVAILABLE ? ENROLL_UNAVAILABLE : ENROLL_ERROR,
		    errstr, c->arg);
	else if (PQntuples(res) == 0)
		c->cb(ENROLL_NOT_FOUND, c->missing, c->arg);
	else
		c->cb(ENROLL_ISSUED, NULL, c->arg);
	free(c);
}

void
enroll_token_create(struct db_pool *db, const char *actor, const char *project,
    int max_uses, int valid_days, char secret[ENROLL_TOKEN_LEN], enroll_cb cb,
    void *arg)
{
	unsigned char hash[32];
	char uses[16], days[16];
	struct enroll_ctx *c;

	/* 256 random bits, printable and safe as an HTTP Basic password. */
	if (auth_secret_new(secret) == -1) {
		cb(ENROLL_ERROR, "no randomness", arg);
		return;
	}
	enroll_token_hash(secret, strlen(secret), hash);
	c = enroll_ctx_new(cb, arg, "unknown project");
	snprintf(uses, sizeof(uses), "%d", max_uses);
	snprintf(days, sizeof(days), "%d", valid_days);
	{
		const char *v[5] = { project, (const char *)hash, uses, days, actor };
		int len[5] = { -1, 32, -1, -1, -1 };

		db_query(db, &enroll_token_insert, 5, v, len, enroll_changed, c);
	}
}

static void
enroll_three(struct db_pool *db, const struct db_stmt *st, const char *a,
    const char *b, const char *actor, const char *missing, enroll_cb cb,
    void *arg)
{
	struct enroll_ctx *c = enroll_ctx_new(cb, arg, missing);
	const char *v[3] = { a, b, actor };

	db_query(db, st, 3, v, NULL, enroll_changed, c);
}

void
enroll_allow(struct db_pool *db, const char *actor, const char *project,
    const char *device_id, enroll_cb cb, void *arg)
{
	enroll_three(db, &enroll_allow_insert, project, device_id, actor,
	    "unknown project", cb, arg);
}

void
enroll_approve(struct db_pool *db, const char *actor, const char *project,
    const char *device_id, enroll_cb cb, void *arg)
{
	enroll_three(db, &enroll_approve_update, project, device_id, actor,
	    "no pending or revoked device with that ID in that project", cb, arg);
}

void
enroll_revoke(struct db_pool *db, const char *actor, const char *serial,
    int reason, enroll_cb cb, void *arg)
{
	char r[8];

	snprintf(r, sizeof(r), "%d", reason);
	enroll_three(db, &enroll_revoke_update, serial, r, actor,
	    "no unrevoked certificate with that serial", cb, arg);
}

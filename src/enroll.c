/* enroll.c: enrollment records. Policy is decided inside ql_enroll() so
 * the check and the write are one transaction. */
#include "enroll.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "db.h"

static const struct db_stmt enroll_first = {
	"enroll_first", "SELECT result, detail FROM ql_enroll($1, $2, $3, $4, $5,"
	" $6, $7, $8, to_timestamp($9::float8), to_timestamp($10::float8))", 10 };
static const struct db_stmt enroll_again = {
	"enroll_again", "SELECT result, detail FROM ql_reenroll($1, $2, $3, $4, $5,"
	" $6, to_timestamp($7::float8), to_timestamp($8::float8))", 8 };
/* Each change and its audit row are one statement, so one transaction. */
static const struct db_stmt enroll_token_insert = {
	"enroll_token_insert", "WITH t AS (INSERT INTO enrollment_tokens (project_id,"
	" token_hash, max_uses, expires_at) SELECT id, $2, $3::integer,"
	" now() + make_interval(days => $4::integer) FROM projects WHERE name = $1"
	" RETURNING id, project_id)"
	" SELECT t.id, ql_audit($5, 'enrollment_token.create', t.id::text, 'ok', NULL,"
	" t.project_id) FROM t", 5 };
static const struct db_stmt enroll_allow_insert = {
	"enroll_allow_insert", "WITH a AS (INSERT INTO allowlist (project_id, device_id)"
	" SELECT id, $2 FROM projects WHERE name = $1 ON CONFLICT DO NOTHING"
	" RETURNING project_id, device_id)"
	" SELECT ql_audit($3, 'allowlist.add', a.device_id, 'ok', NULL, a.project_id)"
	" FROM a", 3 };
static const struct db_stmt enroll_approve_update = {
	"enroll_approve_update", "WITH d AS (UPDATE devices SET status = 'approved'"
	" FROM projects p WHERE p.id = devices.project_id AND p.name = $1"
	" AND devices.device_id = $2 AND devices.status = 'pending'"
	" RETURNING devices.project_id, devices.device_id)"
	" SELECT ql_audit($3, 'device.approve', d.device_id, 'ok', NULL, d.project_id)"
	" FROM d", 3 };
static const struct db_stmt enroll_revoke_update = {
	"enroll_revoke_update", "WITH r AS (UPDATE certificates SET revoked_at = now(),"
	" revocation_reason = $2::smallint WHERE serial = $1 AND revoked_at IS NULL"
	" RETURNING serial, ca_id)"
	" SELECT ql_audit($3, 'certificate.revoke', r.serial, 'ok', 'reason ' || $2,"
	" (SELECT project_id FROM cas WHERE cas.id = r.ca_id)) FROM r", 3 };

#define ENROLL_ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
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
		&enroll_first, &enroll_again, &enroll_token_insert,
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
	struct enroll_ctx *c = malloc(sizeof(*c));

	if (c == NULL) {
		cb(ENROLL_ERROR, "out of memory", arg);
		return NULL;
	}
	c->cb = cb;
	c->arg = arg;
	c->missing = missing;
	return c;
}

static enum enroll_result
enroll_result_code(const char *s)
{
	static const struct { const char *name; enum enroll_result r; } map[] = {
		{ "issued", ENROLL_ISSUED }, { "pending", ENROLL_PENDING },
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
	char nb[24], na[24];
	struct enroll_ctx *c = enroll_ctx_new(cb, arg, NULL);

	if (c == NULL)
		return;
	snprintf(nb, sizeof(nb), "%lld", (long long)r->not_before);
	snprintf(na, sizeof(na), "%lld", (long long)r->not_after);
	if (r->old_serial != NULL) {
		const char *v[8] = { r->project, r->old_serial,
		    (const char *)r->spki_sha256, r->serial,
		    (const char *)r->cert_der, r->subject, nb, na };
		int len[8] = { -1, -1, 32, -1, r->cert_len, -1, -1, -1 };

		db_query(db, &enroll_again, 8, v, len, enroll_recorded, c);
	} else {
		const char *v[10] = { r->project, r->device_id, r->label,
		    (const char *)r->token_hash, (const char *)r->spki_sha256,
		    r->serial, (const char *)r->cert_der, r->subject, nb, na };
		int len[10] = { -1, -1, -1, r->token_hash ? 32 : -1, 32, -1,
		    r->cert_len, -1, -1, -1 };

		db_query(db, &enroll_first, 10, v, len, enroll_recorded, c);
	}
}

void
enroll_token_hash(const char *secret, size_t len, unsigned char out[32])
{
	EVP_Digest(secret, len, out, NULL, EVP_sha256(), NULL);
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
	unsigned char rnd[32], hash[32];
	char uses[16], days[16];
	struct enroll_ctx *c;
	int n;

	/* 256 random bits, printable and safe as an HTTP Basic password. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		cb(ENROLL_ERROR, "no randomness", arg);
		return;
	}
	n = EVP_EncodeBlock((unsigned char *)secret, rnd, sizeof(rnd));
	for (int i = 0; i < n; i++)
		if (secret[i] == '+' || secret[i] == '/' || secret[i] == '=')
			secret[i] = secret[i] == '+' ? '-' : secret[i] == '/' ? '_' : '\0';
	enroll_token_hash(secret, strlen(secret), hash);
	if ((c = enroll_ctx_new(cb, arg, "unknown project")) == NULL)
		return;
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

	if (c != NULL)
		db_query(db, st, 3, v, NULL, enroll_changed, c);
}

void
enroll_allow(struct db_pool *db, const char *actor, const char *project,
    const char *device_id, enroll_cb cb, void *arg)
{
	enroll_three(db, &enroll_allow_insert, project, device_id, actor,
	    "unknown project or already allowed", cb, arg);
}

void
enroll_approve(struct db_pool *db, const char *actor, const char *project,
    const char *device_id, enroll_cb cb, void *arg)
{
	enroll_three(db, &enroll_approve_update, project, device_id, actor,
	    "no pending device with that ID in that project", cb, arg);
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

/* users.c: users, sessions and API tokens in SQL. Each change carries its
 * audit row in the same statement. */
#include "users.h"

#include <stddef.h>
#include <string.h>

const struct db_stmt users_by_name = {
	"users_by_name", "SELECT id, password_hash, disabled_at IS NOT NULL, role"
	" FROM users WHERE name = $1", 1 };
const struct db_stmt users_password_of = {
	"users_password_of", "SELECT password_hash FROM users WHERE id = $1::bigint"
	" AND disabled_at IS NULL", 1 };
const struct db_stmt users_session_create = {
	"users_session_create", "WITH s AS (INSERT INTO sessions (id_hash, user_id,"
	" expires_at) VALUES ($1, $2::bigint, now() + interval '12 hours') RETURNING user_id)"
	" SELECT ql_audit($3, 'login', $4, 'ok', NULL, NULL) FROM s", 4 };
const struct db_stmt users_session_delete = {
	"users_session_delete", "WITH s AS (DELETE FROM sessions WHERE id_hash = $1"
	" RETURNING user_id) SELECT ql_audit($2, 'logout', NULL, 'ok', NULL, NULL) FROM s", 2 };
const struct db_stmt users_login_refused = {
	"users_login_refused", "SELECT ql_audit($1, 'login', $2, 'denied', $3, NULL)", 3 };
const struct db_stmt users_create = {
	"users_create", "WITH u AS (INSERT INTO users (name, password_hash, role, projects)"
	" VALUES ($1, $2, $3, $4::bigint[]) RETURNING id, name)"
	" SELECT u.id, ql_audit($5, 'user.create', u.name, 'ok', 'role ' || $3, NULL)"
	" FROM u", 5 };
const struct db_stmt users_set_password = {
	"users_set_password", "WITH u AS (UPDATE users SET password_hash = $2,"
	" password_changed_at = now() WHERE id = $1::bigint RETURNING name)"
	" SELECT ql_audit($3, 'user.password', u.name, 'ok', NULL, NULL) FROM u", 3 };

/* The admin API: users and API tokens. Rows come from the views and
 * functions of sql/005_users.sql. */
const struct db_stmt users_list = {
	"users_list", "SELECT name, role, projects, disabled, created_at"
	" FROM ql_users_v WHERE ($3::bigint[] IS NULL OR (project_ids IS NOT NULL"
	" AND project_ids <@ $3::bigint[])) AND name > $1 ORDER BY name"
	" LIMIT $2::integer", 3 };
const struct db_stmt users_create_api = {
	"users_create_api", "SELECT status, detail, name, role, projects, disabled,"
	" created_at FROM ql_user_create($1, $2, $3, $4::text[], $5::bigint[], $6)", 6 };
const struct db_stmt users_update = {
	"users_update", "SELECT status, detail, name, role, projects, disabled,"
	" created_at FROM ql_user_update($1, $2, $3::boolean, $4::boolean,"
	" $5::text[], $6, $7::bigint[], $8::bigint, $9)", 9 };
const struct db_stmt users_tokens_list = {
	"users_tokens_list", "SELECT id, name, role, project, expires_at,"
	" revoked_at, last_used, created_at FROM ql_api_tokens_v"
	" WHERE ($3::bigint[] IS NULL OR project_id = ANY($3::bigint[]))"
	" AND id > $1::bigint ORDER BY id LIMIT $2::integer", 3 };
const struct db_stmt users_token_create = {
	"users_token_create", "SELECT status, detail, id, name, role, project,"
	" expires_at, revoked_at, last_used, created_at FROM ql_api_token_create($1,"
	" $2, $3, $4, $5::integer, $6::bigint[], $7::bigint, $8)", 8 };
const struct db_stmt users_token_revoke = {
	"users_token_revoke", "SELECT ql_api_token_revoke($1::bigint, $2::bigint[], $3)", 3 };

void
users_decode(const PGresult *res, int i, int col, struct users_row *u)
{
	u->name = PQgetvalue(res, i, col);
	u->role = PQgetvalue(res, i, col + 1);
	u->projects = db_val(res, i, col + 2);
	u->is_disabled = db_val_bool(res, i, col + 3);
	u->created_at = PQgetvalue(res, i, col + 4);
}

void
users_token_decode(const PGresult *res, int i, int col, struct users_token_row *t)
{
	t->id = db_val_int(res, i, col);
	t->name = PQgetvalue(res, i, col + 1);
	t->role = PQgetvalue(res, i, col + 2);
	t->project = db_val(res, i, col + 3);
	t->expires_at = db_val(res, i, col + 4);
	t->revoked_at = db_val(res, i, col + 5);
	t->last_used = db_val(res, i, col + 6);
	t->created_at = db_val(res, i, col + 7);
}

enum users_status
users_status_decode(const PGresult *res)
{
	static const struct { const char *word; enum users_status st; } map[] = {
		{ "ok", USERS_OK }, { "not_found", USERS_NOT_FOUND },
		{ "exists", USERS_EXISTS }, { "self", USERS_SELF },
		{ "last_admin", USERS_LAST_ADMIN },
		{ "unknown_project", USERS_UNKNOWN_PROJECT }, { "scope", USERS_SCOPE },
	};
	const char *s = PQgetvalue(res, 0, 0);

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].word) == 0)
			return map[i].st;
	return USERS_UNEXPECTED;
}

int
users_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&users_by_name, &users_password_of, &users_session_create,
		&users_session_delete, &users_login_refused, &users_create,
		&users_set_password, &users_list, &users_create_api, &users_update,
		&users_tokens_list, &users_token_create, &users_token_revoke,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

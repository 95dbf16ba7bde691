/* users.c: users, sessions and API tokens in SQL. Each change carries its
 * audit row in the same statement. */
#include "users.h"

#include <stddef.h>

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

int
users_register(struct db_pool *db)
{
	const struct db_stmt *s[] = {
		&users_by_name, &users_password_of, &users_session_create,
		&users_session_delete, &users_login_refused, &users_create,
		&users_set_password,
	};

	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		if (db_register(db, s[i]) == -1)
			return -1;
	return 0;
}

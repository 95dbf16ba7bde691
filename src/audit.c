/* audit.c: SQL of the audit resource: reading the log within the caller's
 * project scope and walking its hash chain. Nothing here writes a row;
 * ql_audit() is called by every change's own statement. */
#include "audit.h"

#include <stddef.h>

const struct db_stmt audit_list = {
	"audit_list", "SELECT a.id, to_char(a.at AT TIME ZONE 'UTC',"
	" 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), a.actor, a.action, a.object, a.result,"
	" a.detail, p.name FROM audit_log a LEFT JOIN projects p ON p.id = a.project_id"
	" WHERE ($1::bigint[] IS NULL OR a.project_id = ANY($1::bigint[]))"
	" AND ($2::bigint IS NULL OR a.id < $2::bigint)"
	" AND ($3::text IS NULL OR a.actor = $3::text)"
	" AND ($4::text IS NULL OR starts_with(a.action, $4::text))"
	" AND ($5::timestamptz IS NULL OR a.at >= $5::timestamptz)"
	" AND ($6::text IS NULL OR a.project_id = (SELECT id FROM projects"
	" WHERE name = $6::text))"
	" ORDER BY a.id DESC LIMIT $7::integer", 7 };
const struct db_stmt audit_verify = {
	"audit_verify", "SELECT rows, broken_id FROM ql_audit_verify()", 0 };

int
audit_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&audit_list, &audit_verify,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

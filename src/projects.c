/* projects.c: projects in SQL, each change with its audit row. */
#include "projects.h"

#include <stddef.h>

#define PROJECTS_COLS "p.id, p.name, p.policy_token, p.policy_allowlist," \
	" p.policy_approval, p.cert_validity_days," \
	" ql_iso(p.created_at)," \
	" (SELECT count(*) FROM devices d WHERE d.project_id = p.id)," \
	" p.policy_tpm, p.attest_pcrs, p.attest_refuse_tampered"

const struct db_stmt projects_list = {
	"projects_list", "SELECT " PROJECTS_COLS " FROM projects p"
	" WHERE ($1::bigint[] IS NULL OR p.id = ANY($1::bigint[])) AND p.name > $2"
	" ORDER BY p.name LIMIT $3::integer", 3 };
const struct db_stmt projects_get = {
	"projects_get", "SELECT " PROJECTS_COLS " FROM projects p WHERE p.id = $1::bigint", 1 };
const struct db_stmt projects_by_name = {
	"projects_by_name", "SELECT " PROJECTS_COLS " FROM projects p WHERE p.name = $1", 1 };
/* An all-off policy is refused (no row) unless the project already had
 * one, so that such a project can still be renamed or fixed. */
const struct db_stmt projects_update = {
	"projects_update", "WITH p AS (UPDATE projects SET name = coalesce($2, name),"
	" policy_token = coalesce($3::boolean, policy_token),"
	" policy_allowlist = coalesce($4::boolean, policy_allowlist),"
	" policy_approval = coalesce($5::boolean, policy_approval),"
	" cert_validity_days = coalesce($6::integer, cert_validity_days),"
	" policy_tpm = coalesce($8::boolean, policy_tpm),"
	" attest_pcrs = coalesce($9::integer, attest_pcrs),"
	" attest_refuse_tampered = coalesce($10::boolean, attest_refuse_tampered)"
	" WHERE id = $1::bigint AND (coalesce($3::boolean, policy_token)"
	" OR coalesce($4::boolean, policy_allowlist)"
	" OR coalesce($5::boolean, policy_approval) OR coalesce($8::boolean, policy_tpm)"
	" OR NOT (policy_token OR policy_allowlist OR policy_approval OR policy_tpm))"
	" RETURNING *), a AS (SELECT ql_audit($7, 'project.update',"
	" p.name, 'ok', format('policy token=%s allowlist=%s approval=%s tpm=%s,"
	" attestation pcrs=%s refuse_tampered=%s', p.policy_token, p.policy_allowlist,"
	" p.policy_approval, p.policy_tpm, p.attest_pcrs, p.attest_refuse_tampered),"
	" p.id) FROM p)"
	" SELECT " PROJECTS_COLS " FROM p, a", 10 };
/* The CAs' key labels come back so the keys can go once this commits. */
const struct db_stmt projects_delete = {
	"projects_delete", "WITH k AS (SELECT string_agg(key_label, ',') AS labels"
	" FROM cas WHERE project_id = $1::bigint),"
	" p AS (DELETE FROM projects WHERE id = $1::bigint"
	" AND NOT EXISTS (SELECT 1 FROM devices WHERE project_id = $1::bigint)"
	" RETURNING id, name)"
	" SELECT ql_audit($2, 'project.delete', p.name, 'ok', k.labels, p.id),"
	" k.labels FROM p, k", 2 };

void
projects_decode(const PGresult *res, int i, int col, struct projects_row *p)
{
	p->id = db_val_int(res, i, col);
	p->name = PQgetvalue(res, i, col + 1);
	p->policy_token = db_val_bool(res, i, col + 2);
	p->policy_allowlist = db_val_bool(res, i, col + 3);
	p->policy_approval = db_val_bool(res, i, col + 4);
	p->cert_validity_days = db_val_int(res, i, col + 5);
	p->created_at = PQgetvalue(res, i, col + 6);
	p->devices = db_val_int(res, i, col + 7);
	p->policy_tpm = db_val_bool(res, i, col + 8);
	p->attest_pcrs = (unsigned)db_val_int(res, i, col + 9);
	p->attest_refuse_tampered = db_val_bool(res, i, col + 10);
}

int
projects_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&projects_list, &projects_get, &projects_by_name, &projects_update, &projects_delete,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

/* certs.c: SQL of the certs resource; every change carries its audit row in
 * the same statement. A revocation is ql_cert_revoke (sql/013), whose
 * trigger (sql/002_ca.sql) tells every node's OCSP and CRL before the reply. */
#include "certs.h"

#include <stddef.h>

const struct db_stmt certs_list = {
	"certs_list", "SELECT serial, device_id, subject, not_before, not_after,"
	" revoked_at, revocation_reason FROM ql_certs_list($1::bigint, $2,"
	" $3::boolean, $4::integer, $5::boolean, $6, $7::integer)", 7 };
const struct db_stmt certs_get = {
	"certs_get", "SELECT v.serial, v.device_id, v.subject, v.not_before,"
	" v.not_after, v.revoked_at, v.revocation_reason, c.cert_der"
	" FROM ql_certs_api v JOIN certificates c ON c.serial = v.serial"
	" WHERE v.serial = $2"
	" AND v.ca_id IN (SELECT id FROM cas WHERE project_id = $1::bigint)", 2 };
/* A concurrent revocation makes ql_cert_revoke find revoked_at set, so
 * r_at is NULL and the caller says 409. */
const struct db_stmt certs_revoke = {
	"certs_revoke", "WITH cur AS (SELECT v.* FROM ql_certs_api v"
	" WHERE v.serial = $2"
	" AND v.ca_id IN (SELECT id FROM cas WHERE project_id = $1::bigint)),"
	" r AS (SELECT k.r_at, k.r_audit FROM cur,"
	" ql_cert_revoke(cur.serial, $3::smallint, $4, $5, $1::bigint) k)"
	" SELECT cur.serial, cur.device_id, cur.subject, cur.not_before, cur.not_after,"
	" coalesce(ql_iso(r.r_at), cur.revoked_at),"
	" CASE WHEN r.r_at IS NOT NULL THEN $3::smallint ELSE cur.revocation_reason END,"
	" c.cert_der, r.r_at IS NOT NULL, r.r_audit"
	" FROM cur JOIN certificates c ON c.serial = cur.serial"
	" LEFT JOIN r ON true", 5 };

void
certs_decode(const PGresult *res, int i, int col, struct certs_row *c)
{
	c->serial = PQgetvalue(res, i, col);
	c->device_id = db_val(res, i, col + 1);
	c->subject = PQgetvalue(res, i, col + 2);
	c->not_before = PQgetvalue(res, i, col + 3);
	c->not_after = PQgetvalue(res, i, col + 4);
	c->revoked_at = db_val(res, i, col + 5);
	c->revocation_reason = PQgetisnull(res, i, col + 6) ? -1 :
	    (int)db_val_int(res, i, col + 6);
}

int
certs_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&certs_list, &certs_get, &certs_revoke,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

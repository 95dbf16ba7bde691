/* devices.c: SQL of the devices resource; every change carries its audit row in
 * the same transaction (the functions of sql/004_devices.sql). */
#include "devices.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICES_COLS "device_id, label, status, tag_list, created_at, last_seen," \
	" installed_version, cert_serial, cert_not_after, att_state, ek_sha256," \
	" ak_name, attested_at, last_quote_at, pcr_differ"
#define DEVICES_DEV_COLS "(r.dev).device_id, (r.dev).label, (r.dev).status," \
	" (r.dev).tag_list, (r.dev).created_at, (r.dev).last_seen," \
	" (r.dev).installed_version, (r.dev).cert_serial, (r.dev).cert_not_after," \
	" (r.dev).att_state, (r.dev).ek_sha256, (r.dev).ak_name, (r.dev).attested_at," \
	" (r.dev).last_quote_at, (r.dev).pcr_differ"

const struct db_stmt devices_list = {
	"devices_list", "SELECT " DEVICES_COLS " FROM ql_devices_list($1::bigint,"
	" $2, $3, $4, $5, $6::integer)", 6 };
const struct db_stmt devices_get = {
	"devices_get", "SELECT " DEVICES_COLS " FROM ql_devices_api"
	" WHERE project_id = $1::bigint AND device_id = $2", 2 };
const struct db_stmt devices_set_status = {
	"devices_set_status", "SELECT r.result, " DEVICES_DEV_COLS
	" FROM ql_device_set_status($1::bigint, $2, $3, $4) r", 4 };
const struct db_stmt devices_set_tags = {
	"devices_set_tags", "SELECT r.result, " DEVICES_DEV_COLS
	" FROM ql_device_set_tags($1::bigint, $2, $3, $4) r", 4 };
const struct db_stmt devices_attest_accept = {
	"devices_attest_accept", "SELECT r.result, " DEVICES_DEV_COLS
	" FROM ql_attest_accept($1::bigint, $2, $3) r", 3 };
const struct db_stmt devices_delete = {
	"devices_delete", "SELECT ql_device_delete($1::bigint, $2, $3)", 3 };
static const struct db_stmt devices_trust_get = {
	"devices_trust_get", "SELECT CASE WHEN c.revoked_at IS NOT NULL THEN 'revoked'"
	" WHEN c.not_after <= now() THEN 'expired'"
	" WHEN c.kind <> 'device' OR d.id IS NULL THEN 'not_device'"
	" WHEN d.status NOT IN ('active', 'approved') THEN 'inactive'"
	" ELSE 'ok' END FROM certificates c LEFT JOIN devices d ON d.id = c.device"
	" WHERE c.serial = $1 AND c.ca_id = $2::bigint", 2 };

void
devices_decode(const PGresult *res, int i, int col, struct devices_row *d)
{
	d->device_id = PQgetvalue(res, i, col);
	d->label = db_val(res, i, col + 1);
	d->status = PQgetvalue(res, i, col + 2);
	d->tags = PQgetvalue(res, i, col + 3);
	d->created_at = PQgetvalue(res, i, col + 4);
	d->last_seen = db_val(res, i, col + 5);
	d->installed_version = db_val(res, i, col + 6);
	d->cert_serial = db_val(res, i, col + 7);
	d->cert_not_after = PQgetvalue(res, i, col + 8);
	d->att_state = PQgetvalue(res, i, col + 9);
	d->ek_sha256 = db_val(res, i, col + 10);
	d->ak_name = db_val(res, i, col + 11);
	d->attested_at = db_val(res, i, col + 12);
	d->last_quote_at = db_val(res, i, col + 13);
	d->pcr_differ = PQgetvalue(res, i, col + 14);
}

enum devices_change
devices_change_decode(const PGresult *res)
{
	const char *s = PQgetvalue(res, 0, 0);

	if (strcmp(s, "ok") == 0)
		return DEVICES_CHANGED;
	return strcmp(s, "not_found") == 0 ? DEVICES_CHANGE_NOT_FOUND :
	    DEVICES_CHANGE_CONFLICT;
}

int
devices_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&devices_list, &devices_get, &devices_set_status, &devices_set_tags,
		&devices_delete, &devices_trust_get, &devices_attest_accept,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

struct devices_trust_call {
	devices_trust_cb	 cb;
	void			*arg;
};

static void
devices_trust_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	static const struct { const char *name; enum devices_trust v; } map[] = {
		{ "ok", DEVICES_TRUST_OK }, { "revoked", DEVICES_TRUST_REVOKED },
		{ "expired", DEVICES_TRUST_EXPIRED },
		{ "not_device", DEVICES_TRUST_NOT_DEVICE },
		{ "inactive", DEVICES_TRUST_INACTIVE },
	};
	struct devices_trust_call c = *(struct devices_trust_call *)arg;
	enum devices_trust v = DEVICES_TRUST_UNAVAILABLE;

	(void)errstr;
	free(arg);
	if (st == DB_OK && PQntuples(res) == 0)
		v = DEVICES_TRUST_UNKNOWN;
	for (size_t i = 0; st == DB_OK && PQntuples(res) == 1 &&
	    i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(PQgetvalue(res, 0, 0), map[i].name) == 0)
			v = map[i].v;
	c.cb(v, c.arg);
}

void
devices_cert_trust(struct db_pool *db, long long ca_id, const char *serial,
    devices_trust_cb cb, void *arg)
{
	struct devices_trust_call *c = xmalloc(sizeof(*c));
	char id[24];
	const char *v[2] = { serial, id };

	c->cb = cb;
	c->arg = arg;
	snprintf(id, sizeof(id), "%lld", ca_id);
	db_query(db, &devices_trust_get, 2, v, NULL, devices_trust_got, c);
}

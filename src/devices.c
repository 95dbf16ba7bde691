/* devices.c: SQL of the devices resource; every change carries its audit row in
 * the same transaction (the functions of sql/004_devices.sql). */
#include "devices.h"

#include <stddef.h>

#define DEVICES_COLS "device_id, label, status, tag_list, created_at, last_seen," \
	" installed_version, cert_serial, cert_not_after"
#define DEVICES_DEV_COLS "(r.dev).device_id, (r.dev).label, (r.dev).status," \
	" (r.dev).tag_list, (r.dev).created_at, (r.dev).last_seen," \
	" (r.dev).installed_version, (r.dev).cert_serial, (r.dev).cert_not_after"

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
const struct db_stmt devices_delete = {
	"devices_delete", "SELECT ql_device_delete($1::bigint, $2, $3)", 3 };

int
devices_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&devices_list, &devices_get, &devices_set_status, &devices_set_tags,
		&devices_delete,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

/* deploy.c: the statements of deployments and of the device update API.
 * Everything that decides (who gets what, legal transitions, group
 * advancement) is one SQL function each, so several nodes agree. */
#include "deploy.h"

#include <stddef.h>

#define DEPLOY_TS(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define DEPLOY_COUNT(s) ", count(*) FILTER (WHERE dd.state = '" s "')"
#define DEPLOY_COUNTS DEPLOY_COUNT("pending") DEPLOY_COUNT("downloading") \
	DEPLOY_COUNT("installing") DEPLOY_COUNT("installed") \
	DEPLOY_COUNT("failed") DEPLOY_COUNT("cancelled")
#define DEPLOY_ROW "SELECT d.id, d.image_id, d.image_name, d.image_version," \
	" d.target_tag, d.success_threshold, d.error_threshold, d.status," \
	" d.current_group, d.pause_reason, d.created_by, " DEPLOY_TS("d.created_at") \
	", " DEPLOY_TS("d.updated_at") ", " DEPLOY_TS("d.finished_at") \
	DEPLOY_COUNTS " FROM deployments d LEFT JOIN device_deployments dd" \
	" ON dd.deployment_id = d.id WHERE d.project_id = $1::bigint"

const char *const deploy_states[] = {
	"pending", "downloading", "installing", "installed", "failed", "cancelled",
};

const struct db_stmt deploy_create = {
	"deploy_create", "SELECT result, id, detail FROM ql_deploy_create($1::bigint,"
	" $2::bigint, $3, $4::text[], $5::integer[], $6::integer, $7::integer, $8)", 8 };
const struct db_stmt deploy_action = {
	"deploy_action", "SELECT result, detail FROM ql_deploy_action($1::bigint,"
	" $2::bigint, $3, $4)", 4 };
const struct db_stmt deploy_list = {
	"deploy_list", DEPLOY_ROW " AND d.id > $2::bigint GROUP BY d.id"
	" ORDER BY d.id LIMIT $3::integer", 3 };
const struct db_stmt deploy_get = {
	"deploy_get", DEPLOY_ROW " AND d.id = $2::bigint GROUP BY d.id", 2 };
const struct db_stmt deploy_groups = {
	"deploy_groups", "SELECT g.ord, g.kind, g.amount, g.size, "
	DEPLOY_TS("g.started_at") DEPLOY_COUNTS " FROM deployments d"
	" JOIN deployment_groups g ON g.deployment_id = d.id"
	" LEFT JOIN device_deployments dd ON dd.deployment_id = d.id"
	" AND dd.group_ord = g.ord WHERE d.project_id = $1::bigint AND d.id = $2::bigint"
	" GROUP BY g.ord, g.kind, g.amount, g.size, g.started_at ORDER BY g.ord", 2 };
const struct db_stmt deploy_devices = {
	"deploy_devices", "SELECT v.device_id, dd.group_ord, dd.state, dd.progress,"
	" dd.detail, " DEPLOY_TS("dd.created_at") ", " DEPLOY_TS("dd.updated_at") ", "
	DEPLOY_TS("dd.started_at") ", " DEPLOY_TS("dd.finished_at")
	" FROM deployments d JOIN device_deployments dd ON dd.deployment_id = d.id"
	" JOIN devices v ON v.id = dd.device_id WHERE d.project_id = $1::bigint"
	" AND d.id = $2::bigint AND v.device_id > $3 AND ($5::text IS NULL OR"
	" dd.state = $5) ORDER BY v.device_id LIMIT $4::integer", 5 };
/* The LEFT JOIN keeps one row for a device without deployments, so that
 * only an unknown device has none. */
const struct db_stmt deploy_history = {
	"deploy_history", "WITH v AS (SELECT id, device_id FROM devices WHERE"
	" project_id = $1::bigint AND device_id = $2) SELECT x.* FROM v LEFT JOIN"
	" LATERAL (SELECT d.id, d.image_id, d.image_name, d.image_version,"
	" d.target_tag, d.status, v.device_id, dd.group_ord, dd.state, dd.progress, dd.detail, ql_iso(dd.created_at) AS c,"
	" ql_iso(dd.updated_at) AS u, ql_iso(dd.started_at) AS s,"
	" ql_iso(dd.finished_at) AS f FROM device_deployments dd"
	" JOIN deployments d ON d.id = dd.deployment_id WHERE dd.device_id = v.id"
	" AND ($3::bigint = 0 OR dd.deployment_id < $3::bigint)"
	" ORDER BY dd.deployment_id DESC LIMIT $4::integer) x ON true", 4 };

const struct db_stmt deploy_device_update = {
	"deploy_device_update", "SELECT x.ca, x.serial, u.trust, u.device, u.project,"
	" u.deployment, u.image, u.name, u.version, u.size, u.sha256, u.encrypted,"
	" u.encrypted_size, u.manifest, u.upload_id"
	" FROM unnest($1::bigint[], $2::text[]) AS x(ca, serial),"
	" LATERAL ql_device_update(x.ca, x.serial) AS u", 2 };
const struct db_stmt deploy_report = {
	"deploy_report", "SELECT result, detail FROM ql_deploy_report($1::bigint,"
	" $2::bigint, $3, $4::integer, $5, $6)", 6 };
const struct db_stmt deploy_signature = {
	"deploy_signature", "SELECT ql_image_signature($1::bigint)", 1 };
const struct db_stmt deploy_seen = {
	"deploy_seen", "SELECT ql_devices_seen($1::bigint[], $2::bigint[])", 2 };

int
deploy_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&deploy_create, &deploy_action, &deploy_list, &deploy_get,
		&deploy_groups, &deploy_devices, &deploy_history, &deploy_device_update,
		&deploy_report, &deploy_signature, &deploy_seen,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

/* deploy.h: SQL of deployments (admin side) and of the device update API
 * (device side). State rules live in sql/011_deployments.sql; handlers in
 * api_deploy.c and devupdate.c compose parameters only. */
#ifndef QL_DEPLOY_H
#define QL_DEPLOY_H

#include "db.h"

/* Deployment rows (deploy_list, deploy_get) come back as DEPLOY_NCOLS
 * columns: id, image_id, image_name, image_version, target_tag,
 * success_threshold, error_threshold, status, current_group, pause_reason,
 * created_by, created_at, updated_at, finished_at, then the device counts
 * per state: pending, downloading, installing, installed, failed, cancelled. */
#define DEPLOY_NCOLS		20
#define DEPLOY_COL_COUNTS	14
extern const char *const deploy_states[];	/* the six, in that order */

/* $1 project, $2 image id, $3 tag|NULL, $4 kinds text[], $5 amounts int[],
 * $6 success, $7 error, $8 actor: result, id, detail */
extern const struct db_stmt deploy_create;
/* $1 project, $2 id, $3 pause|resume|cancel, $4 actor: result, detail */
extern const struct db_stmt deploy_action;
/* $1 project, $2 after id, $3 limit: deployment rows */
extern const struct db_stmt deploy_list;
/* $1 project, $2 id: one deployment row or none */
extern const struct db_stmt deploy_get;
/* $1 project, $2 id: per group ord, kind, amount, size, started_at, then
 * counts per state as in deployment rows */
extern const struct db_stmt deploy_groups;
/* $1 project, $2 id, $3 after device_id, $4 limit, $5 state|NULL:
 * device_id, group, state, progress, detail, created_at, updated_at,
 * started_at, finished_at */
extern const struct db_stmt deploy_devices;
/* $1 project, $2 device ID, $3 before deployment id ("0": the newest), $4
 * limit: no row when the project has no such device; one row of NULLs when
 * it took part in no deployment (before $3); else per deployment, newest
 * first: id, image_id, image_name, image_version, target_tag, status, then
 * the columns of deploy_devices */
extern const struct db_stmt deploy_history;

/* Device side. $1 CA ids bigint[], $2 serials text[] (pairs): per pair
 * ca, serial, then ql_device_update's trust, device, project, deployment,
 * image, name, version, size, sha256 hex, encrypted, encrypted_size,
 * manifest base64, upload_id */
extern const struct db_stmt deploy_device_update;
/* $1 device, $2 deployment, $3 state, $4 progress|NULL, $5 detail|NULL,
 * $6 version|NULL: result, detail */
extern const struct db_stmt deploy_report;
/* Binary results. $1 image id: signature DER or NULL */
extern const struct db_stmt deploy_signature;
/* $1 device ids bigint[], $2 epoch seconds bigint[] */
extern const struct db_stmt deploy_seen;

int	deploy_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

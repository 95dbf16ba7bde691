/* projects.h: SQL of projects for the admin API (creation itself goes
 * through pki_project_create, which makes the keys). Rows come back as:
 * id, name, policy_token, policy_allowlist, policy_approval,
 * cert_validity_days, created_at, device count. */
#ifndef QL_PROJECTS_H
#define QL_PROJECTS_H

#include "db.h"

/* $1 visible ids ("{1,2}" or NULL = all), $2 after name, $3 limit */
extern const struct db_stmt projects_list;
/* $1 id */
extern const struct db_stmt projects_get;
/* $1 name */
extern const struct db_stmt projects_by_name;
/* $1 id, $2 name|NULL, $3 token|NULL, $4 allowlist|NULL, $5 approval|NULL,
 * $6 validity|NULL, $7 actor */
extern const struct db_stmt projects_update;
/* $1 id, $2 actor: 0 rows when the project still has devices, else the
 * audit id and its CAs' token key labels ("label,label") */
extern const struct db_stmt projects_delete;

int	projects_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

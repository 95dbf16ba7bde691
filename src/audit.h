/* audit.h: SQL of the audit resource for the admin API (statements and their
 * audit rows); handlers in api_audit.c compose parameters only. */
#ifndef QL_AUDIT_H
#define QL_AUDIT_H

#include "db.h"

/* $1 scope ("{1,2}" or NULL = all, then rows without a project too),
 * $2 before id|NULL, $3 actor|NULL, $4 action prefix|NULL, $5 since|NULL,
 * $6 project name|NULL, $7 limit -> id, at, actor, action, object, result,
 * detail, project name; newest first */
extern const struct db_stmt audit_list;
/* -> rows, first broken id|NULL (ql_audit_verify) */
extern const struct db_stmt audit_verify;

/* One row of audit_list; strings point into the result, NULL for NULL. */
struct audit_row {
	long long	 id;
	const char	*at;
	const char	*actor;
	const char	*action;
	const char	*object;
	const char	*result;
	const char	*detail;
	const char	*project;
};
/* Row i of a result whose audit columns start at col. */
void	audit_decode(const PGresult *, int row, int col, struct audit_row *);

/* The one row of audit_verify. */
struct audit_verify_row {
	long long	 rows;
	int		 is_broken;
	long long	 broken_id;	/* the first row whose hash is wrong */
	int		 has_checkpoint;
	long long	 cp_id, cp_rows;
	const char	*cp_signed;	/* the signed text and its signature */
	const char	*cp_signature;
	const char	*cp_state;	/* none, ok, forged, ... (sql/007) */
};
void	audit_verify_decode(const PGresult *, struct audit_verify_row *);

int	audit_register(struct db_pool *) __attribute__((warn_unused_result));

struct server;
/* EST refusals, beyond this many a minute installation-wide, are counted
 * and recorded as one installation-level row at the end of the minute: an
 * unauthenticated client cannot grow the log faster than that. */
#define AUDIT_EST_REFUSALS_PER_MINUTE 60
/* One audit row for a refused EST request, in the project named if it
 * exists (none otherwise: no project, no decision of one). device_id may
 * be "" when the request named none. */
/* One audit row for a refused or failed change through the admin API
 * (status >= 400): "error" from 500 on, else "denied"; project_id is the
 * project's id as text, or NULL for the installation's log. */
void	audit_api_refusal(struct server *, const char *actor, const char *method,
	    const char *pattern, const char *path, int status,
	    const char *project_id);
void	audit_est_refusal(struct server *, const char *project,
	    const char *device_id, int is_reenroll, const char *peer, int status,
	    const char *detail);

#endif

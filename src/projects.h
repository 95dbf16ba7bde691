/* projects.h: SQL of projects for the admin API (creation itself goes
 * through pki_project_create, which makes the keys). Rows come back as
 * PROJECTS_NCOLS columns that projects_decode reads. */
#ifndef QL_PROJECTS_H
#define QL_PROJECTS_H

#include "db.h"

#define PROJECTS_NCOLS	11

/* One project row; strings point into the result. */
struct projects_row {
	long long	 id;
	const char	*name;
	int		 policy_token, policy_allowlist, policy_approval;
	long long	 cert_validity_days;
	const char	*created_at;	/* ISO 8601 UTC */
	long long	 devices;	/* how many the project has */
	int		 policy_tpm;
	unsigned	 attest_pcrs;	/* bit n: PCR n of the SHA-256 bank */
	int		 attest_refuse_tampered;
};

/* Row i of a result whose project columns start at col. */
void	projects_decode(const PGresult *, int row, int col, struct projects_row *);

/* $1 visible ids ("{1,2}" or NULL = all), $2 after name, $3 limit */
extern const struct db_stmt projects_list;
/* $1 id */
extern const struct db_stmt projects_get;
/* $1 name */
extern const struct db_stmt projects_by_name;
/* $1 id, $2 name|NULL, $3 token|NULL, $4 allowlist|NULL, $5 approval|NULL,
 * $6 validity|NULL, $7 actor, $8 tpm|NULL, $9 PCR mask|NULL,
 * $10 refuse_tampered|NULL: no row when the change would leave no policy on */
extern const struct db_stmt projects_update;
/* $1 id, $2 actor: 0 rows when the project still has devices, else the
 * audit id and its CAs' token key labels ("label,label") */
extern const struct db_stmt projects_delete;

int	projects_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

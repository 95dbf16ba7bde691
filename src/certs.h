/* certs.h: SQL of the certs resource for the admin API (statements and their
 * audit rows); handlers in api_certs.c compose parameters only.
 * Certificate rows come back as: serial, device_id, subject, not_before,
 * not_after, revoked_at, revocation_reason (code), and for one certificate
 * also cert_der (bytea). Only kind 'device' certificates of the project's
 * CAs are seen. */
#ifndef QL_CERTS_H
#define QL_CERTS_H

#include "db.h"

#define CERTS_NCOLS	7

/* One certificate row; strings point into the result, NULL for SQL NULL. */
struct certs_row {
	const char	*serial;
	const char	*device_id;
	const char	*subject;
	const char	*not_before;
	const char	*not_after;
	const char	*revoked_at;
	int		 revocation_reason;	/* RFC 5280 code, -1 when none */
};

/* Row i of a result whose certificate columns start at col. */
void	certs_decode(const PGresult *, int row, int col, struct certs_row *);

/* $1 project id, $2 device_id|NULL (then P0002 if no such device),
 * $3 valid|NULL, $4 expiring within days|NULL, $5 revoked|NULL,
 * $6 after serial ("" for the first page), $7 limit */
extern const struct db_stmt certs_list;
/* $1 project id, $2 serial: one row with cert_der, or none */
extern const struct db_stmt certs_get;
/* $1 project id, $2 serial, $3 reason code, $4 actor, $5 audit detail:
 * none when the project has no such certificate; else the row with
 * cert_der, then whether this statement revoked it (false: it already
 * was), then the audit row id */
extern const struct db_stmt certs_revoke;

int	certs_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

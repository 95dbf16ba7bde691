/* devices.h: SQL of the devices resource for the admin API (statements and their
 * audit rows); handlers in api_devices.c compose parameters only.
 * Device rows come back as DEVICES_NCOLS columns that devices_decode
 * reads. */
#ifndef QL_DEVICES_H
#define QL_DEVICES_H

#include "db.h"

#define DEVICES_NCOLS	15
#define DEVICES_TAG_SEP	'\037'

/* One device row; strings point into the result, NULL for SQL NULL. */
struct devices_row {
	const char	*device_id;
	const char	*label;
	const char	*status;
	const char	*tags;		/* joined with DEVICES_TAG_SEP, "" for none */
	const char	*created_at;
	const char	*last_seen;
	const char	*installed_version;
	const char	*cert_serial;	/* the current certificate, or NULL */
	const char	*cert_not_after;
	const char	*att_state;	/* none, trusted, tampered */
	const char	*ek_sha256;	/* hex, NULL: not attested */
	const char	*ak_name;	/* hex */
	const char	*attested_at;
	const char	*last_quote_at;
	const char	*pcr_differ;	/* "n,m", "" for none */
};

/* Row i of a result whose device columns start at col. */
void	devices_decode(const PGresult *, int row, int col, struct devices_row *);

/* The result word of devices_set_status and devices_set_tags (column 0,
 * before the device row), as a type. */
enum devices_change {
	DEVICES_CHANGED,
	DEVICES_CHANGE_NOT_FOUND,
	DEVICES_CHANGE_CONFLICT,	/* not allowed from the device's status */
};
enum devices_change devices_change_decode(const PGresult *);

/* $1 project id, $2 status|NULL, $3 tag|NULL, $4 prefix|NULL, $5 after
 * device_id ("" for the first page), $6 limit: device rows */
extern const struct db_stmt devices_list;
/* $1 project id, $2 device_id: one device row or none */
extern const struct db_stmt devices_get;
/* $1 project id, $2 device_id, $3 approve|reject|disable|enable, $4 actor:
 * result ('ok', 'conflict', 'not_found') then the device row */
extern const struct db_stmt devices_set_status;
/* $1 project id, $2 device_id, $3 tags joined with ',', $4 actor: as above */
extern const struct db_stmt devices_set_tags;
/* $1 project id, $2 device_id, $3 actor: a tampered device's last quoted
 * PCR values become its reference (conflict: it is not tampered); as above */
extern const struct db_stmt devices_attest_accept;
/* $1 project id, $2 device_id, $3 actor: revokes the device's certificates
 * and deletes it; one row, NULL when there is no such device */
extern const struct db_stmt devices_delete;

int	devices_register(struct db_pool *) __attribute__((warn_unused_result));

/* May a client certificate of ours speak for its device right now? */
enum devices_trust {
	DEVICES_TRUST_OK,
	DEVICES_TRUST_UNKNOWN,		/* no such certificate of that CA */
	DEVICES_TRUST_REVOKED,
	DEVICES_TRUST_EXPIRED,
	DEVICES_TRUST_NOT_DEVICE,	/* a listener's certificate, or device deleted */
	DEVICES_TRUST_INACTIVE,		/* device disabled, rejected or pending */
	DEVICES_TRUST_TAMPERED,		/* PCRs differ, project refuses (update API) */
	DEVICES_TRUST_UNAVAILABLE,	/* database error: decide nothing */
};
typedef void (*devices_trust_cb)(enum devices_trust, void *arg);
/* The certificate (issuing CA id, serial hex) and its device as the
 * database has them now: one indexed lookup, every node sees one truth. */
void	devices_cert_trust(struct db_pool *, long long ca_id, const char *serial,
	    devices_trust_cb, void *arg);

#endif

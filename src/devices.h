/* devices.h: SQL of the devices resource for the admin API (statements and their
 * audit rows); handlers in api_devices.c compose parameters only.
 * Device rows come back as DEVICES_NCOLS columns: device_id, label, status,
 * tags (joined with U+001F), created_at, last_seen, installed_version,
 * current certificate serial and not_after (NULL when none). */
#ifndef QL_DEVICES_H
#define QL_DEVICES_H

#include "db.h"

#define DEVICES_NCOLS	9
#define DEVICES_TAG_SEP	'\037'

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
	DEVICES_TRUST_UNAVAILABLE,	/* database error: decide nothing */
};
typedef void (*devices_trust_cb)(enum devices_trust, void *arg);
/* The certificate (issuing CA id, serial hex) and its device as the
 * database has them now: one indexed lookup, every node sees one truth. */
void	devices_cert_trust(struct db_pool *, long long ca_id, const char *serial,
	    devices_trust_cb, void *arg);

#endif

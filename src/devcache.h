/* devcache.h: what the update API answers each device certificate, kept in
 * memory so an idle poll costs no database query. Filled from one SQL
 * function (ql_device_update), forgotten on NOTIFY ql_deploy (any node's
 * change), after every reconnect (notifications may have been missed), and
 * after DEVCACHE_TTL seconds at the latest. Revocation is not cached here:
 * callers check pki_is_revoked first (kept in step through ql_revocation). */
#ifndef QL_DEVCACHE_H
#define QL_DEVCACHE_H

#include <stddef.h>
#include <sys/queue.h>
#include <time.h>

#include "ca.h"
#include "db.h"
#include "devices.h"

#define DEVCACHE_TTL		300	/* seconds: a bound if a NOTIFY is lost */
#define DEVCACHE_MAX		200000	/* entries; the oldest go first */
#define DEVCACHE_UPLOAD_ID	32
#define DEVCACHE_ETAG		24

struct devcache_entry {
	long long		 ca_id;
	char			 serial[CA_SERIAL_HEX];
	enum devices_trust	 trust;
	long long		 device;	/* devices.id; 0 when unknown */
	long long		 project;
	/* the deployment that applies now; 0: nothing to do */
	long long		 deployment;
	long long		 image;
	int			 is_encrypted;
	long long		 size;		/* of what is served: encrypted or plain */
	char			 sha256[65];	/* of the plain image */
	char			 upload_id[DEVCACHE_UPLOAD_ID + 1];
	char			*doc;		/* the update document; NULL: 204 */
	size_t			 doclen;
	char			 etag[DEVCACHE_ETAG];	/* quoted */
	time_t			 filled;
	int			 is_cached;	/* else freed after the fill callback */
	LIST_ENTRY(devcache_entry) by_cert;
	LIST_ENTRY(devcache_entry) by_device;
	TAILQ_ENTRY(devcache_entry) age;
};

/* Once, before db_pool_start: statements are deploy.c's; this listens. */
int	devcache_register(struct db_pool *) __attribute__((warn_unused_result));
/* A fresh entry, or NULL: fill it. */
struct devcache_entry *devcache_get(long long ca_id, const char *serial);
/* Query and cache; cb gets the entry (valid during the call only) or NULL
 * when the database cannot answer. */
typedef void (*devcache_cb)(struct devcache_entry *, void *arg);
void	devcache_fill(struct db_pool *, long long ca_id, const char *serial,
	    devcache_cb, void *arg);
/* This node changed the device's state: forget it now. */
void	devcache_forget_device(long long device);
size_t	devcache_count(void);
void	devcache_clear(void);

#endif

/* revoked.h: the in-memory set of revoked certificates the TLS verify
 * callback consults, the (issuing CA, serial) key that the set and the
 * OCSP cache share, and the revocation notice both listen for. Status is looked up by issuer and serial together
 * (design.md): one CA's revocation says nothing about another CA's serial. */
#ifndef QL_REVOKED_H
#define QL_REVOKED_H

#include <stddef.h>

#include "ca.h"

struct revoked_key {
	long long	 ca_id;			/* cas.id of the issuer */
	char		 serial[CA_SERIAL_HEX];
};

struct revoked;

/* NOTIFY ql_revocation's payload "ca_id:serial:1" (revoked) or
 * "ca_id:serial:0" (reinstated): 0 with key and *is_revoked set, -1 for
 * anything else (which a listener answers by reloading everything). */
int		 revoked_payload_parse(const char *payload, struct revoked_key *,
		    int *is_revoked) __attribute__((warn_unused_result));

/* tsearch(3) comparator for anything that starts with a revoked_key. */
int		 revoked_key_cmp(const void *, const void *);
/* 0 and key filled in, or -1 when serial is not 32 lowercase hex digits. */
int		 revoked_key_set(struct revoked_key *, long long ca_id,
		    const char *serial) __attribute__((warn_unused_result));

struct revoked	*revoked_new(void);
void		 revoked_free(struct revoked *);
void		 revoked_clear(struct revoked *);
/* -1 only when out of memory. */
int		 revoked_set(struct revoked *, const struct revoked_key *,
		    int is_revoked) __attribute__((warn_unused_result));
int		 revoked_has(struct revoked *, const struct revoked_key *);

#endif

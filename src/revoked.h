/* revoked.h: the in-memory set of revoked certificates the TLS verify
 * callback consults, and the (issuing CA, serial) key that the set and the
 * OCSP cache share. Status is looked up by issuer and serial together
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

/* ocsp.h: the OCSP responder and its per-certificate response cache. */
#ifndef QL_OCSP_H
#define QL_OCSP_H

#include <stddef.h>

#include "pki.h"

struct server;
struct db_pool;
struct ocsp;
struct revoked_key;

struct ocsp	*ocsp_new(struct server *);
void		 ocsp_free(struct ocsp *);
int		 ocsp_register(struct db_pool *) __attribute__((warn_unused_result));
/* der is an OCSP request; the callback gets a DER OCSP response (an error
 * status for malformed requests or unknown issuers). */
void		 ocsp_answer(struct ocsp *, const unsigned char *der, size_t len,
		    pki_blob_cb, void *arg);
/* A certificate's status changed, or (clear) may have while we were not
 * listening: drop what is cached for that issuer and serial. */
void		 ocsp_forget(struct ocsp *, const struct revoked_key *);
void		 ocsp_clear(struct ocsp *);

#endif

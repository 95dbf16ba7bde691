/* pki_int.h: what the pki files share and no other module sees: the
 * registry of loaded CAs (pki.c) that bootstrap (pki_boot.c), project
 * creation (pki_project.c), revocation and client trust (pki_revoked.c)
 * and the CRL cache (pki_crl.c) build on. */
#ifndef QL_PKI_INT_H
#define QL_PKI_INT_H

#include <libpq-fe.h>

#include "pki.h"

struct revoked;

#define PKI_SELECT_CA \
	"SELECT c.id, coalesce(p.id, 0), coalesce(p.name, 'root'), c.key_label," \
	" c.cert_der, coalesce(p.cert_validity_days, 0)" \
	" FROM cas c LEFT JOIN projects p ON p.id = c.project_id WHERE "

struct pki_waiter {
	struct pki_waiter	*next;
	pki_blob_cb		 cb;
	void			*arg;
};

struct pki {
	struct server		*srv;
	struct pki_ca		*cas;		/* root first, then projects */
	struct pki_ca		*root;
	X509_STORE		*store;		/* client CAs: the device listener's */
	struct revoked		*revoked;
	char			 url[256];
};

void		 pki_ca_free(struct pki_ca *);
struct pki_ca	*pki_find(struct pki *, const char *name, long long id);
/* Keep the first copy when two loads race; returns the one to use. */
struct pki_ca	*pki_add(struct pki *, struct pki_ca *);
/* The CA of a PKI_SELECT_CA row, its key loaded on a token worker, then
 * added: cb(ca) on the loop, or cb(NULL, err) ("token busy" when the
 * queue refused; is_urgent: tok_submit_urgent). */
void		 pki_ca_load(struct pki *, const PGresult *, int row, int is_urgent,
		    pki_ca_cb, void *arg);

/* On a token worker: a fresh key pair with a unique label. */
int		 pki_new_key(struct pki *, const char *prefix, char *label,
		    size_t labellen, EVP_PKEY **priv, EVP_PKEY **pub, char *err,
		    size_t errlen) __attribute__((warn_unused_result));

int		 pki_revoked_register(struct pki *) __attribute__((warn_unused_result));
int		 pki_crl_register(struct pki *) __attribute__((warn_unused_result));
int		 pki_project_register(struct pki *) __attribute__((warn_unused_result));
int		 pki_boot_register(struct pki *) __attribute__((warn_unused_result));
/* The revoked set from the database; cb(NULL) once loaded. */
void		 pki_revoked_load(struct pki *, pki_done_cb, void *arg);

#endif

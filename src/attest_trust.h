/* attest_trust.h: the TPM manufacturer CAs an EK certificate may chain to:
 * the installation's, from [attest] manufacturer_cas (PEM files, or
 * directories of them, read at start and on SIGHUP), and a project's,
 * added through the admin API and handed over from the database. */
#ifndef QL_ATTEST_TRUST_H
#define QL_ATTEST_TRUST_H

#include <stddef.h>

#include <openssl/x509.h>

#include "attest.h"

#define ATTEST_TRUST_MAX	1024	/* installation CAs */
#define ATTEST_TRUST_FILE_MAX	(1024 * 1024)	/* bytes of one PEM file */

/* Read every certificate of paths (space-separated; "" for none). On
 * success the set replaces the installation's; on failure (err says
 * "FILE: reason") the old set stays. */
int	 attest_trust_load(const char *paths, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
size_t	 attest_trust_count(void);
void	 attest_trust_free(void);
/* The installation's CAs and the project's, as one store to verify an EK
 * certificate with; a project CA that does not parse is skipped. */
X509_STORE *attest_trust_store(const struct attest_project *);

/* One PEM certificate (nothing else in text), for the admin API: the
 * X509, or NULL with *why a one-line reason. */
X509	*attest_trust_pem(const char *text, size_t len, const char **why);

#endif

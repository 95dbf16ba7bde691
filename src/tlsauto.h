/* tlsauto.h: server certificates for the TLS listeners, from the root. */
#ifndef QL_TLSAUTO_H
#define QL_TLSAUTO_H

#include "pki.h"

struct server;
struct db_pool;

int	tlsauto_register(struct db_pool *) __attribute__((warn_unused_result));
/* Reuse or issue STATE_DIR/NAME-auto.{crt,key}; on success *cert_path and
 * *key_path name those files. */
void	tlsauto_issue(struct server *, const char *name, char **cert_path,
	    char **key_path, pki_done_cb, void *arg);

#endif

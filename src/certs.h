/* certs.h: SQL of the certs resource for the admin API (statements and their
 * audit rows); handlers in api_certs.c compose parameters only. */
#ifndef QL_CERTS_H
#define QL_CERTS_H

#include "db.h"

int	certs_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

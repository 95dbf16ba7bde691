/* audit.h: SQL of the audit resource for the admin API (statements and their
 * audit rows); handlers in api_audit.c compose parameters only. */
#ifndef QL_AUDIT_H
#define QL_AUDIT_H

#include "db.h"

int	audit_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

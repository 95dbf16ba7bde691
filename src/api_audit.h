/* api_audit.h: /api/v1/ routes of this resource (see api_audit.c). */
#ifndef QL_API_AUDIT_H
#define QL_API_AUDIT_H

#include <stddef.h>

#include "route.h"

extern const struct route api_audit_routes[];
extern const size_t api_audit_nroutes;

#endif

/* api_certs.h: /api/v1/ routes of this resource (see api_certs.c). */
#ifndef QL_API_CERTS_H
#define QL_API_CERTS_H

#include <stddef.h>

#include "route.h"

extern const struct route api_certs_routes[];
extern const size_t api_certs_nroutes;

#endif

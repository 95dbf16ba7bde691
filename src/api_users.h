/* api_users.h: /api/v1/ routes of this resource (see api_users.c). */
#ifndef QL_API_USERS_H
#define QL_API_USERS_H

#include <stddef.h>

#include "route.h"

extern const struct route api_users_routes[];
extern const size_t api_users_nroutes;

#endif

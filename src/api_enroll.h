/* api_enroll.h: /api/v1/ routes of this resource (see api_enroll.c). */
#ifndef QL_API_ENROLL_H
#define QL_API_ENROLL_H

#include <stddef.h>

#include "route.h"

extern const struct route api_enroll_routes[];
extern const size_t api_enroll_nroutes;

#endif

/* devapi.h: the device API under /device/v1/ (device listener, mTLS). */
#ifndef QL_DEVAPI_H
#define QL_DEVAPI_H

#include <stddef.h>

#include "route.h"

extern const struct route devapi_routes[];
extern const size_t devapi_nroutes;

#endif

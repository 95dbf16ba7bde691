/* api_devices.h: /api/v1/ routes of this resource (see api_devices.c). */
#ifndef QL_API_DEVICES_H
#define QL_API_DEVICES_H

#include <stddef.h>

#include "route.h"

extern const struct route api_devices_routes[];
extern const size_t api_devices_nroutes;

#endif

/* device.h: the device API under /device/v1/ (device listener, mTLS). */
#ifndef QL_DEVICE_H
#define QL_DEVICE_H

#include <stddef.h>

#include "route.h"

extern const struct route device_routes[];
extern const size_t device_nroutes;

#endif

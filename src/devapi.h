/* devapi.h: the device API under /device/v1/ (device listener, mTLS). */
#ifndef QL_DEVAPI_H
#define QL_DEVAPI_H

#include <stddef.h>

#include "devices.h"
#include "route.h"

struct http_req;

extern const struct route devapi_routes[];
extern const size_t devapi_nroutes;

/* The reply to a device whose certificate or status does not pass: 403
 * naming why, or 503 when it cannot be checked now. */
void	devapi_refuse(struct http_req *, enum devices_trust);

#endif

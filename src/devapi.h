/* devapi.h: the device API under /device/v1/ (device listener, mTLS). */
#ifndef QL_DEVAPI_H
#define QL_DEVAPI_H

#include <stddef.h>

#include <openssl/x509.h>

#include "devices.h"
#include "route.h"

struct http_req;

extern const struct route devapi_routes[];
extern const size_t devapi_nroutes;

/* The reply to a device whose certificate or status does not pass: 403
 * naming why, or 503 when it cannot be checked now. */
void	devapi_refuse(struct http_req *, enum devices_trust);

/* fn runs once the verified client certificate and its device pass the
 * database's check (otherwise the refusal is answered); certificates of a
 * client_ca issuer pass as they are. */
typedef void (*devapi_handler)(struct http_req *, X509 *cert);
void	devapi_authorize(struct http_req *, devapi_handler);

#endif

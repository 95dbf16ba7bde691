/* api_audit.c: the audit log (filtered by the caller's project scope) and
 * the verification of its hash chain; also serves the OpenAPI document. */
#include "api_audit.h"

#include <event2/http.h>

#include "api.h"

const struct route api_audit_routes[] = {
	{ "/api/v1/audit", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/audit/verify", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
};
const size_t api_audit_nroutes = sizeof(api_audit_routes) / sizeof(api_audit_routes[0]);

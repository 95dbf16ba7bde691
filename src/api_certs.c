/* api_certs.c: certificates of a project or device: list with filters,
 * get (PEM and parsed fields), revoke with a reason. */
#include "api_certs.h"

#include <event2/http.h>

#include "api.h"

const struct route api_certs_routes[] = {
	{ "/api/v1/projects/{project}/certificates", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/projects/{project}/certificates/{serial}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/projects/{project}/certificates/{serial}/revoke", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/devices/{device}/certificates", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
};
const size_t api_certs_nroutes = sizeof(api_certs_routes) / sizeof(api_certs_routes[0]);

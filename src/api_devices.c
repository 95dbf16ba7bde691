/* api_devices.c: devices of a project: list with filters, get, approve,
 * reject, disable, enable, tags, delete (which revokes its certificates). */
#include "api_devices.h"

#include <event2/http.h>

#include "api.h"

const struct route api_devices_routes[] = {
	{ "/api/v1/projects/{project}/devices", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/projects/{project}/devices/{device}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/projects/{project}/devices/{device}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/devices/{device}/approve", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/devices/{device}/reject", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/devices/{device}/disable", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/devices/{device}/enable", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/devices/{device}/tags", EVHTTP_REQ_PUT, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
};
const size_t api_devices_nroutes = sizeof(api_devices_routes) / sizeof(api_devices_routes[0]);

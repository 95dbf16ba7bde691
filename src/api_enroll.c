/* api_enroll.c: enrollment tokens (secret shown once) and the allowlist
 * (bulk add as a JSON array or CSV) of a project. */
#include "api_enroll.h"

#include <event2/http.h>

#include "api.h"

const struct route api_enroll_routes[] = {
	{ "/api/v1/projects/{project}/enrollment-tokens", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/projects/{project}/enrollment-tokens", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/enrollment-tokens/{id}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/allowlist", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_VIEWER },
	{ "/api/v1/projects/{project}/allowlist", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
	{ "/api/v1/projects/{project}/allowlist/{device}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_not_implemented, AUTH_OPERATOR },
};
const size_t api_enroll_nroutes = sizeof(api_enroll_routes) / sizeof(api_enroll_routes[0]);

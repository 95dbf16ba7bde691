/* api_users.c: users (admin only) and API tokens (secret shown once). */
#include "api_users.h"

#include <event2/http.h>

#include "api.h"

const struct route api_users_routes[] = {
	{ "/api/v1/users", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
	{ "/api/v1/users", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
	{ "/api/v1/users/{user}", EVHTTP_REQ_PATCH, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
	{ "/api/v1/api-tokens", EVHTTP_REQ_GET, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
	{ "/api/v1/api-tokens", EVHTTP_REQ_POST, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
	{ "/api/v1/api-tokens/{id}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_not_implemented, AUTH_ADMIN },
};
const size_t api_users_nroutes = sizeof(api_users_routes) / sizeof(api_users_routes[0]);

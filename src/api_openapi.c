/* api_openapi.c: serves the OpenAPI 3.1 document compiled into the binary
 * from doc/openapi.json, so the served copy is always the shipped one. */
#include "api_openapi.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "http.h"

static void
api_openapi_get(struct http_req *hr)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL || evbuffer_add_reference(buf, api_openapi_doc,
	    strlen(api_openapi_doc), NULL, NULL) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	http_add_header(hr, "Cache-Control", "max-age=300");
	http_reply(hr, 200, "application/json", buf);
	evbuffer_free(buf);
}

const struct route api_openapi_routes[] = {
	{ "/api/v1/openapi.json", EVHTTP_REQ_GET, ROUTE_ADMIN, api_openapi_get, 0, NULL },
};
const size_t api_openapi_nroutes = sizeof(api_openapi_routes) / sizeof(api_openapi_routes[0]);

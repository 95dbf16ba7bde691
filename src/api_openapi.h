/* api_openapi.h: GET /api/v1/openapi.json, the document in doc/. */
#ifndef QL_API_OPENAPI_H
#define QL_API_OPENAPI_H

#include <stddef.h>

#include "route.h"

extern const struct route api_openapi_routes[];
extern const size_t api_openapi_nroutes;
extern const char api_openapi_doc[];	/* generated from doc/openapi.json */

#endif

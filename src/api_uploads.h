/* api_uploads.h: /api/v1/uploads/, the tus 1.0 resumable upload protocol
 * (core, creation, termination); see api_uploads.c. */
#ifndef QL_API_UPLOADS_H
#define QL_API_UPLOADS_H

#include <stddef.h>

#include "route.h"

#include "paths.h"

#define API_UPLOADS_PREFIX	PATH_UPLOADS

extern const struct route api_uploads_routes[];
extern const size_t api_uploads_nroutes;

#endif

/* api_images.h: /api/v1/ routes of the images resource (see api_images.c). */
#ifndef QL_API_IMAGES_H
#define QL_API_IMAGES_H

#include <stddef.h>

#include "route.h"

extern const struct route api_images_routes[];
extern const size_t api_images_nroutes;

#endif

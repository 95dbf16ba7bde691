/* api_imgsign.h: /api/v1/ routes of image signing (see api_imgsign.c). */
#ifndef QL_API_IMGSIGN_H
#define QL_API_IMGSIGN_H

#include <stddef.h>

#include "route.h"

extern const struct route api_imgsign_routes[];
extern const size_t api_imgsign_nroutes;

#endif

/* est.h: EST (RFC 7030, RFC 8951) on the device listener. */
#ifndef QL_EST_H
#define QL_EST_H

#include <stddef.h>

#include "route.h"

extern const struct route est_routes[];
extern const size_t est_nroutes;

#endif

/* api_health.h: liveness, readiness and test-only debug routes. */
#ifndef QL_API_HEALTH_H
#define QL_API_HEALTH_H

#include <stddef.h>

#include "route.h"

struct db_pool;

extern const struct route api_health_routes[];
extern const size_t api_health_nroutes;

int	api_health_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

/* api_deploy.h: /api/v1/projects/{project}/deployments: staged rollouts. */
#ifndef QL_API_DEPLOY_H
#define QL_API_DEPLOY_H

#include <stddef.h>

#include "route.h"

extern const struct route api_deploy_routes[];
extern const size_t api_deploy_nroutes;

#endif

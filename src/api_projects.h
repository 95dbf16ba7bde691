/* api_projects.h: /api/v1/projects. */
#ifndef QL_API_PROJECTS_H
#define QL_API_PROJECTS_H

#include <stddef.h>

#include "route.h"

extern const struct route api_projects_routes[];
extern const size_t api_projects_nroutes;

#endif

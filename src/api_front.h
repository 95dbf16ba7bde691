/* api_front.h: the admin API's front door. Every route with a role comes
 * here first: authentication (session cookie + CSRF, or bearer token),
 * the {project} of /api/v1/projects/{project}/..., role and project scope,
 * then the route's handler. Handlers use api.h, never this. */
#ifndef QL_API_FRONT_H
#define QL_API_FRONT_H

#include "db.h"

struct http_req;

/* Called for routes with a role: authenticates, resolves the project,
 * checks role and scope, then runs the route's handler. An invisible
 * project is 404, not 403. */
void	api_front_dispatch(struct http_req *);

int	api_front_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

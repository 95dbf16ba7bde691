/* routes.h: every route the daemon serves, in one table gathered from
 * each handler module's routes, and who authenticates the routes that
 * carry a role (the API front door). http.c serves the table it is given;
 * it knows no handler. */
#ifndef QL_ROUTES_H
#define QL_ROUTES_H

struct server;

/* Builds the table once and hands it and the front door to srv. */
void	routes_install(struct server *);
/* Every route served, one line each, for the OpenAPI check
 * (quarklinkd --list-routes). */
void	routes_print(void);

#endif

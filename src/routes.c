/* routes.c: the one table of routes. A new handler module adds its header
 * and one line to routes_modules; the format of its entries (struct route,
 * ending with the query parameters it reads) is route.h's. */
#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "api_attest.h"
#include "api_audit.h"
#include "api_certs.h"
#include "api_deploy.h"
#include "api_devices.h"
#include "api_enroll.h"
#include "api_front.h"
#include "api_health.h"
#include "api_images.h"
#include "api_install.h"
#include "api_imgsign.h"
#include "api_openapi.h"
#include "api_pki.h"
#include "api_projects.h"
#include "api_session.h"
#include "api_uploads.h"
#include "api_users.h"
#include "auth.h"
#include "devapi.h"
#include "devattest.h"
#include "devupdate.h"
#include "est.h"
#include "log.h"
#include "route.h"
#include "server.h"
#include "www.h"

#define ROUTES_MAX 256

static struct route	routes_table[ROUTES_MAX];
static size_t		routes_n;

static void
routes_add(const struct route *r, size_t n)
{
	if (routes_n + n > ROUTES_MAX)
		fatalx("route table full");
	memcpy(&routes_table[routes_n], r, n * sizeof(*r));
	routes_n += n;
}

static void
routes_init(void)
{
	static const struct { const struct route *r; const size_t *n; } mods[] = {
		{ api_health_routes, &api_health_nroutes },
		{ devapi_routes, &devapi_nroutes },
		{ devupdate_routes, &devupdate_nroutes },
		{ devattest_routes, &devattest_nroutes },
		{ est_routes, &est_nroutes },
		{ api_pki_routes, &api_pki_nroutes },
		{ api_session_routes, &api_session_nroutes },
		{ api_install_routes, &api_install_nroutes },
		{ api_projects_routes, &api_projects_nroutes },
		{ api_devices_routes, &api_devices_nroutes },
		{ api_certs_routes, &api_certs_nroutes },
		{ api_enroll_routes, &api_enroll_nroutes },
		{ api_attest_routes, &api_attest_nroutes },
		{ api_users_routes, &api_users_nroutes },
		{ api_audit_routes, &api_audit_nroutes },
		{ api_imgsign_routes, &api_imgsign_nroutes },
		{ api_deploy_routes, &api_deploy_nroutes },
		{ api_openapi_routes, &api_openapi_nroutes },
		{ api_uploads_routes, &api_uploads_nroutes },
		{ api_images_routes, &api_images_nroutes },
		{ www_routes, &www_nroutes },
	};

	routes_n = 0;
	for (size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++)
		routes_add(mods[i].r, *mods[i].n);
}

void
routes_install(struct server *srv)
{
	routes_init();
	srv->routes = routes_table;
	srv->nroutes = routes_n;
	srv->authenticate = api_front_dispatch;
}

void
routes_print(void)
{
	char allow[128];

	routes_init();
	for (size_t i = 0; i < routes_n; i++) {
		const struct route *r = &routes_table[i];

		route_allow_header(r->methods, allow, sizeof(allow));
		printf("%s\t%s\t%s\t%s\t%s\t", r->listeners & ROUTE_ADMIN ? "admin" :
		    r->listeners & ROUTE_DEVICE ? "device" : "pki", allow,
		    r->pattern, auth_role_name((enum auth_role)ROUTE_ROLE(r->role)),
		    r->role & ROUTE_GLOBAL ? "global" : "scoped");
		for (size_t q = 0; r->query != NULL && r->query[q] != NULL; q++)
			printf("%s%s", q ? "," : "", r->query[q]);
		printf("%s\n", r->query == NULL ? "-" : "");
	}
}

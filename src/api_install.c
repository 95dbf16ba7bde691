/* api_install.c: GET /api/v1/installation, the addresses an agent's
 * configuration needs. The web UI builds the enrollment command line from
 * it: the browser's own address is the admin listener's, which need not be
 * the device listener's host, and never tells its port. */
#include "api_install.h"

#include <stdio.h>
#include <string.h>

#include <event2/http.h>

#include "auth.h"
#include "conf.h"
#include "http.h"
#include "json.h"
#include "pki.h"
#include "server.h"
#include "util.h"

#define API_INSTALL_EST_PATH "/.well-known/est"

/* device.url, else the device listener's public address; "" when neither
 * (the listener is off on this node and no url says where it runs). */
static void
api_install_device_url(const struct server *srv, char *out, size_t len)
{
	const struct http_listener *l = NULL;

	for (size_t i = 0; i < SERVER_NLISTENERS; i++)
		if (srv->listeners[i].bit == ROUTE_DEVICE)
			l = &srv->listeners[i];
	out[0] = '\0';
	if (srv->conf->device_url[0] != '\0')
		snprintf(out, len, "%s", srv->conf->device_url);
	else if (l != NULL && l->public_addr[0] != '\0')
		snprintf(out, len, "https://%s", l->public_addr);
	util_url_base(out);
}

static void
api_install_get(struct http_req *hr)
{
	char dev[320], est[sizeof(dev) + sizeof(API_INSTALL_EST_PATH)];
	yajl_gen g = json_gen_new();

	api_install_device_url(hr->srv, dev, sizeof(dev));
	snprintf(est, sizeof(est), "%s%s", dev, API_INSTALL_EST_PATH);
	yajl_gen_map_open(g);
	json_kv_str(g, "device_url", dev[0] ? dev : NULL);
	json_kv_str(g, "est_url", dev[0] ? est : NULL);
	json_kv_str(g, "pki_url", pki_url(hr->srv->pki));
	json_kv_str(g, "root_ca_url", "/api/v1/pki/root.crt");
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

const struct route api_install_routes[] = {
	{ "/api/v1/installation", EVHTTP_REQ_GET, ROUTE_ADMIN, api_install_get, AUTH_VIEWER, NULL },
};
const size_t api_install_nroutes = sizeof(api_install_routes) / sizeof(api_install_routes[0]);

/* api_health.c: /healthz (process up), /readyz (database and token usable;
 * the token as the workers' periodic check last found it, never a token
 * call per request), /metrics (Prometheus text format: token operations)
 * and, only with debug_endpoints, /debug/sleep for shutdown tests. */
#include "api_health.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "ca.h"
#include "conf.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "p11.h"
#include "tok.h"
#include "util.h"
#include "xmalloc.h"

static const struct db_stmt api_health_ping = {
	"health_ping", "SELECT 1", 0
};
static const struct db_stmt api_health_sleep = {
	"health_sleep", "SELECT pg_sleep($1::float8 / 1000)", 1
};

struct api_health_ready {
	struct http_req	*hr;
	int		 is_p11_ok;
	char		 p11_err[256];
};

static void
api_health_healthz(struct http_req *hr)
{
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	json_kv_str(g, "status", "ok");
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static void
api_health_ready_reply(struct api_health_ready *r, const char *db_err)
{
	int is_ready = r->is_p11_ok && db_err == NULL;
	char dbmsg[320], p11msg[320];
	yajl_gen g = json_gen_new();

	snprintf(dbmsg, sizeof(dbmsg), "unavailable: %s", db_err ? db_err : "");
	snprintf(p11msg, sizeof(p11msg), "unavailable: %s", r->p11_err);
	yajl_gen_map_open(g);
	json_kv_str(g, "status", is_ready ? "ready" : "not ready");
	json_kv_str(g, "database", db_err == NULL ? "ok" : dbmsg);
	json_kv_str(g, "pkcs11", r->is_p11_ok ? "ok" : p11msg);
	yajl_gen_map_close(g);
	http_reply_json(r->hr, is_ready ? 200 : 503, g);
	free(r);
}

static void
api_health_ping_done(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	(void)res;
	api_health_ready_reply(arg, st == DB_OK ? NULL :
	    (errstr ? errstr : "query failed"));
}

static void
api_health_readyz(struct http_req *hr)
{
	struct server *srv = hr->srv;
	struct api_health_ready *r;

	r = xcalloc(1, sizeof(*r));
	r->hr = hr;
	r->is_p11_ok = tok_is_ready(r->p11_err, sizeof(r->p11_err));
	if (db_connected(srv->db) == 0) {
		api_health_ready_reply(r, db_last_error(srv->db));
		return;
	}
	db_query(srv->db, &api_health_ping, 0, NULL, NULL, api_health_ping_done, r);
}

/* Prometheus text exposition 0.0.4: counters since start. */
static void
api_health_metrics(struct http_req *hr)
{
	static const char *const kinds[CA_SIGN_NKINDS] = { "certificate", "crl", "ocsp" };
	struct evbuffer *buf = evbuffer_new();
	struct p11_stats st;
	int rc = 0;

	if (buf == NULL) {
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	p11_get_stats(hr->srv->p11, &st);
	rc |= evbuffer_add_printf(buf, "# HELP quarklink_token_signatures_total"
	    " Signatures made with keys on the PKCS#11 token.\n"
	    "# TYPE quarklink_token_signatures_total counter\n") < 0;
	for (int k = 0; k < CA_SIGN_NKINDS; k++)
		rc |= evbuffer_add_printf(buf,
		    "quarklink_token_signatures_total{kind=\"%s\"} %llu\n", kinds[k],
		    ca_signatures((enum ca_sign_kind)k)) < 0;
	rc |= evbuffer_add_printf(buf, "# HELP quarklink_token_keys_generated_total"
	    " Key pairs generated on the PKCS#11 token.\n"
	    "# TYPE quarklink_token_keys_generated_total counter\n"
	    "quarklink_token_keys_generated_total %llu\n"
	    "# HELP quarklink_token_keys_destroyed_total"
	    " Key pairs destroyed on the PKCS#11 token.\n"
	    "# TYPE quarklink_token_keys_destroyed_total counter\n"
	    "quarklink_token_keys_destroyed_total %llu\n",
	    st.keys_generated, st.keys_destroyed) < 0;
	rc |= evbuffer_add_printf(buf, "# HELP quarklink_token_queue_jobs"
	    " Token operations queued or running on the workers.\n"
	    "# TYPE quarklink_token_queue_jobs gauge\n"
	    "quarklink_token_queue_jobs %d\n"
	    "# HELP quarklink_token_queue_refused_total"
	    " Token operations refused because the queue was full.\n"
	    "# TYPE quarklink_token_queue_refused_total counter\n"
	    "quarklink_token_queue_refused_total %llu\n",
	    tok_pending(), tok_refused()) < 0;
	if (rc)
		http_reply_problem(hr, 503, NULL, "out of memory");
	else
		http_reply(hr, 200, "text/plain; version=0.0.4; charset=utf-8", buf);
	evbuffer_free(buf);
}

struct api_health_sleep {
	struct http_req	*hr;
	long long	 ms;
};

static void
api_health_sleep_done(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_health_sleep *sl = arg;
	struct http_req *hr = sl->hr;
	long long ms = sl->ms;
	yajl_gen g;

	(void)res;
	free(sl);
	if (st != DB_OK) {
		http_reply_problem(hr, 503, NULL, "database: %s",
		    errstr ? errstr : "unavailable");
		return;
	}
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_int(g, "slept_ms", ms);
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static void
api_health_debug_sleep(struct http_req *hr)
{
	char ms[32];
	const char *errstr, *param = ms;
	struct api_health_sleep *sl;
	long long n;

	if (!hr->srv->conf->debug_endpoints) {
		http_reply_problem(hr, 404, NULL, "no route for %s", hr->path);
		return;
	}
	if (http_query_param(hr, "ms", ms, sizeof(ms)) != 1) {
		http_reply_problem(hr, 400, NULL, "query parameter ms is required");
		return;
	}
	n = util_strtonum(ms, 0, 60000, &errstr);
	if (errstr != NULL) {
		http_reply_problem(hr, 400, NULL, "ms: %s (0-60000)", errstr);
		return;
	}
	sl = xmalloc(sizeof(*sl));
	sl->hr = hr;
	sl->ms = n;
	db_query(hr->srv->db, &api_health_sleep, 1, &param, NULL,
	    api_health_sleep_done, sl);
}

static const char *const api_health_debug_sleep_query[] = { "ms", NULL };

const struct route api_health_routes[] = {
	{ "/healthz", EVHTTP_REQ_GET, ROUTE_ADMIN, api_health_healthz, 0, NULL },
	{ "/readyz", EVHTTP_REQ_GET, ROUTE_ADMIN, api_health_readyz, 0, NULL },
	{ "/metrics", EVHTTP_REQ_GET, ROUTE_ADMIN, api_health_metrics, 0, NULL },
	{ "/debug/sleep", EVHTTP_REQ_GET, ROUTE_ADMIN, api_health_debug_sleep, 0, api_health_debug_sleep_query },
};
const size_t api_health_nroutes = sizeof(api_health_routes) / sizeof(api_health_routes[0]);

int
api_health_register(struct db_pool *db)
{
	if (db_register(db, &api_health_ping) == -1 ||
	    db_register(db, &api_health_sleep) == -1)
		return -1;
	return 0;
}

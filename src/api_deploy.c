/* api_deploy.c: deployments of a project: create (a signed image, to all
 * devices or a tag, in ordered groups with success and error thresholds),
 * list, get with per-group and per-state counts, the per-device states,
 * pause, resume, cancel; and the deployments of one device, newest first. Who gets what and when is decided in SQL
 * (sql/011_deployments.sql); this file checks input and shapes replies. */
#include "api_deploy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "api.h"
#include "deploy.h"
#include "devcache.h"
#include "json.h"
#include "names.h"
#include "server.h"
#include "util.h"

#define API_DEPLOY_GROUPS_MAX	16
#define API_DEPLOY_COUNT_MAX	1000000
#define API_DEPLOY_TAG_MAX	64
#define API_DEPLOY_DEVICE_ID	32
#define API_DEPLOY_MISSING	"no such deployment"

static void
api_deploy_counts(yajl_gen g, const PGresult *res, int i, int col)
{
	long long total = 0;

	json_key(g, "counts");
	yajl_gen_map_open(g);
	for (int s = 0; s < 6; s++) {
		json_kv_int(g, deploy_states[s], api_val_int(res, i, col + s));
		total += api_val_int(res, i, col + s);
	}
	json_kv_int(g, "total", total);
	yajl_gen_map_close(g);
}

/* "image" and "target" of a deployment row whose id is column off. */
static void
api_deploy_image_target(yajl_gen g, const PGresult *res, int i, int off)
{
	const char *tag = api_val(res, i, off + 4);

	json_key(g, "image");
	yajl_gen_map_open(g);
	json_key(g, "id");
	if (PQgetisnull(res, i, off + 1))
		yajl_gen_null(g);	/* deleted after the deployment ended */
	else
		yajl_gen_integer(g, api_val_int(res, i, off + 1));
	json_kv_str(g, "name", PQgetvalue(res, i, off + 2));
	json_kv_str(g, "version", PQgetvalue(res, i, off + 3));
	yajl_gen_map_close(g);
	if (tag == NULL)
		json_kv_str(g, "target", "all");
	else {
		json_key(g, "target");
		yajl_gen_map_open(g);
		json_kv_str(g, "tag", tag);
		yajl_gen_map_close(g);
	}
}

/* One deployment row (deploy.h) starting at column off. */
static void
api_deploy_fields(yajl_gen g, const PGresult *res, int i, int off)
{
	json_kv_int(g, "id", api_val_int(res, i, off));
	api_deploy_image_target(g, res, i, off);
	json_kv_int(g, "success_threshold", api_val_int(res, i, off + 5));
	json_kv_int(g, "error_threshold", api_val_int(res, i, off + 6));
	json_kv_str(g, "status", PQgetvalue(res, i, off + 7));
	json_kv_int(g, "current_group", api_val_int(res, i, off + 8) + 1);
	json_kv_str(g, "pause_reason", api_val(res, i, off + 9));
	json_kv_str(g, "created_by", PQgetvalue(res, i, off + 10));
	json_kv_str(g, "created_at", PQgetvalue(res, i, off + 11));
	json_kv_str(g, "updated_at", PQgetvalue(res, i, off + 12));
	json_kv_str(g, "finished_at", api_val(res, i, off + 13));
	api_deploy_counts(g, res, i, off + DEPLOY_COL_COUNTS);
}

/* ---- get: the deployment row, then its groups ---- */

struct api_deploy_get {
	struct http_req	*hr;
	int		 status;	/* 200, or 201 after a create */
	char		 id[API_ID_LEN];
	PGresult	*row;
};

static void
api_deploy_got_groups(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_deploy_get *c = arg;
	struct http_req *hr = c->hr;
	char loc[160];
	yajl_gen g;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		goto out;
	}
	g = json_gen_new();
	yajl_gen_map_open(g);
	api_deploy_fields(g, c->row, 0, 0);
	json_key(g, "groups");
	yajl_gen_array_open(g);
	for (int i = 0; i < PQntuples(res); i++) {
		yajl_gen_map_open(g);
		json_kv_int(g, "index", api_val_int(res, i, 0) + 1);
		json_kv_int(g, PQgetvalue(res, i, 1), api_val_int(res, i, 2));
		json_kv_int(g, "size", api_val_int(res, i, 3));
		json_kv_str(g, "started_at", api_val(res, i, 4));
		api_deploy_counts(g, res, i, 5);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	if (c->status == 201) {
		snprintf(loc, sizeof(loc), "/api/v1/projects/%s/deployments/%s",
		    api_project_name(hr), c->id);
		http_add_header(hr, "Location", loc);
	}
	http_reply_json(hr, c->status, g);
out:
	PQclear(c->row);
	free(c);
}

static void
api_deploy_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_deploy_get *c = arg;
	const char *v[2] = { api_project_id_str(c->hr), c->id };

	if (st != DB_OK || PQntuples(res) != 1) {
		if (st != DB_OK)
			api_db_error(c->hr, st, res, errstr);
		else
			http_reply_problem(c->hr, 404, NULL, API_DEPLOY_MISSING);
		free(c);
		return;
	}
	if ((c->row = PQcopyResult(res, PG_COPYRES_ATTRS | PG_COPYRES_TUPLES)) == NULL) {
		http_reply_problem(c->hr, 503, NULL, "out of memory");
		free(c);
		return;
	}
	db_query(c->hr->srv->db, &deploy_groups, 2, v, NULL, api_deploy_got_groups, c);
}

static void
api_deploy_reply(struct http_req *hr, const char *id, int status)
{
	struct api_deploy_get *c;
	const char *v[2];

	if ((c = api_alloc(hr, sizeof(*c))) == NULL)
		return;
	c->hr = hr;
	c->status = status;
	snprintf(c->id, sizeof(c->id), "%s", id);
	v[0] = api_project_id_str(hr);
	v[1] = c->id;
	db_query(hr->srv->db, &deploy_get, 2, v, NULL, api_deploy_got, c);
}

static void
api_deploy_get(struct http_req *hr)
{
	char id[API_ID_LEN];

	if (api_param_id(hr, 1, id, sizeof(id), API_DEPLOY_MISSING) == -1)
		return;
	api_deploy_reply(hr, id, 200);
}

/* ---- list ---- */

static void
api_deploy_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_list(arg, st, res, errstr, api_deploy_fields, 0);
}

static void
api_deploy_list(struct http_req *hr)
{
	char limit[API_LIMIT_LEN], after[API_ID_LEN];
	const char *v[3] = { api_project_id_str(hr), after, limit };

	if (api_page_id(hr, limit, after, sizeof(after)) == -1)
		return;
	db_query(hr->srv->db, &deploy_list, 3, v, NULL, api_deploy_listed, hr);
}

/* ---- per-device states ---- */

static void
api_deploy_device_fields(yajl_gen g, const PGresult *res, int i, int off)
{
	json_kv_str(g, "device_id", PQgetvalue(res, i, off));
	json_kv_int(g, "group", api_val_int(res, i, off + 1) + 1);
	json_kv_str(g, "state", PQgetvalue(res, i, off + 2));
	json_key(g, "progress");
	if (PQgetisnull(res, i, off + 3))
		yajl_gen_null(g);
	else
		yajl_gen_integer(g, api_val_int(res, i, off + 3));
	json_kv_str(g, "detail", api_val(res, i, off + 4));
	json_kv_str(g, "created_at", PQgetvalue(res, i, off + 5));
	json_kv_str(g, "updated_at", PQgetvalue(res, i, off + 6));
	json_kv_str(g, "started_at", api_val(res, i, off + 7));
	json_kv_str(g, "finished_at", api_val(res, i, off + 8));
}

static void
api_deploy_devices_listed(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	api_reply_list(arg, st, res, errstr, api_deploy_device_fields, 0);
}

static void
api_deploy_devices(struct http_req *hr)
{
	char id[API_ID_LEN], limit[API_LIMIT_LEN], after[API_DEPLOY_DEVICE_ID + 1];
	char state[16 + 1];
	const char *v[5] = { api_project_id_str(hr), id, after, limit, NULL };
	int has_state;
	size_t i;

	if (api_param_id(hr, 1, id, sizeof(id), API_DEPLOY_MISSING) == -1 ||
	    api_page(hr, limit, after, sizeof(after)) == -1 ||
	    (has_state = api_query_str(hr, "state", sizeof(state) - 1, state,
	    NULL)) == -1)
		return;
	if (has_state) {
		for (i = 0; i < 6 && strcmp(deploy_states[i], state) != 0; i++)
			;
		if (i == 6) {
			http_reply_problem(hr, 400, NULL, "query parameter state must be"
			    " pending, downloading, installing, installed, failed or"
			    " cancelled");
			return;
		}
		v[4] = state;
	}
	db_query(hr->srv->db, &deploy_devices, 5, v, NULL,
	    api_deploy_devices_listed, hr);
}

/* ---- a device's deployments (its update history) ---- */

static void
api_deploy_history_fields(yajl_gen g, const PGresult *res, int i, int off)
{
	json_kv_int(g, "deployment", api_val_int(res, i, off));
	api_deploy_image_target(g, res, i, off);
	json_kv_str(g, "deployment_status", PQgetvalue(res, i, off + 5));
	api_deploy_device_fields(g, res, i, off + 6);
}

static void
api_deploy_history_listed(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct http_req *hr = arg;

	if (st == DB_OK && PQntuples(res) == 0)
		http_reply_problem(hr, 404, NULL, "no such device");
	else if (st == DB_OK && PQgetisnull(res, 0, 0))
		api_list_end(hr, api_list_begin(), NULL);
	else
		api_reply_list(hr, st, res, errstr, api_deploy_history_fields, 0);
}

static void
api_deploy_history(struct http_req *hr)
{
	char id[API_DEPLOY_DEVICE_ID + 1], limit[API_LIMIT_LEN], after[API_ID_LEN];
	const char *v[4] = { api_project_id_str(hr), id, after, limit };

	if (api_param(hr, 1, id, sizeof(id)) == -1)
		return;
	if (!names_is_device_id(id, strlen(id))) {
		http_reply_problem(hr, 404, NULL, "no such device");
		return;
	}
	if (api_page_id(hr, limit, after, sizeof(after)) == -1)
		return;
	db_query(hr->srv->db, &deploy_history, 4, v, NULL,
	    api_deploy_history_listed, hr);
}

/* ---- create ---- */

struct api_deploy_new {
	char	 tag[API_DEPLOY_TAG_MAX + 1];
	int	 has_tag;
	char	 kinds[API_DEPLOY_GROUPS_MAX * 8 + 3];
	char	 amounts[API_DEPLOY_GROUPS_MAX * 8 + 3];
	char	 image[API_ID_LEN];
	char	 success[8], error[8];
};

static int
api_deploy_target(struct http_req *hr, yajl_val body, struct api_deploy_new *n)
{
	static const char *const keys[] = { "tag", NULL };
	yajl_val t = json_get(body, "target");
	const char *tag = NULL;
	size_t len;

	if (t == NULL || (YAJL_IS_STRING(t) && t->u.string != NULL && strcmp(t->u.string, "all") == 0))
		return 0;
	if (!YAJL_IS_OBJECT(t)) {
		http_reply_problem(hr, 400, NULL, "field \"target\" must be \"all\""
		    " or {\"tag\": \"...\"}");
		return -1;
	}
	if (api_json_only(hr, t, keys) == -1 ||
	    api_json_str(hr, t, "tag", 1, API_DEPLOY_TAG_MAX, &tag) == -1)
		return -1;
	len = strlen(tag);
	if (len == 0 || strspn(tag, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._:-") != len) {
		http_reply_problem(hr, 400, NULL, "field \"target.tag\" must be 1-%d"
		    " characters of A-Z a-z 0-9 . _ : -", API_DEPLOY_TAG_MAX);
		return -1;
	}
	memcpy(n->tag, tag, len + 1);
	n->has_tag = 1;
	return 0;
}

/* groups: [{"count":N} | {"percent":P}, ...] as two array literals. */
static int
api_deploy_groups_body(struct http_req *hr, yajl_val body, struct api_deploy_new *n)
{
	static const char *const keys[] = { "count", "percent", NULL };
	yajl_val gs = json_get(body, "groups");
	size_t ko = 1, ao = 1;

	if (gs == NULL) {
		snprintf(n->kinds, sizeof(n->kinds), "{percent}");
		snprintf(n->amounts, sizeof(n->amounts), "{100}");
		return 0;
	}
	if (!YAJL_IS_ARRAY(gs) || gs->u.array.len == 0 ||
	    gs->u.array.len > API_DEPLOY_GROUPS_MAX) {
		http_reply_problem(hr, 400, NULL, "field \"groups\" must be an array of"
		    " 1-%d objects", API_DEPLOY_GROUPS_MAX);
		return -1;
	}
	n->kinds[0] = n->amounts[0] = '{';
	for (size_t i = 0; i < gs->u.array.len; i++) {
		yajl_val g = gs->u.array.values[i];
		long long amount = -1;
		int is_count;

		if (!YAJL_IS_OBJECT(g) || g->u.object.len != 1) {
			http_reply_problem(hr, 400, NULL, "groups[%zu] must be {\"count\": N}"
			    " or {\"percent\": P}", i);
			return -1;
		}
		if (api_json_only(hr, g, keys) == -1)
			return -1;
		is_count = json_get(g, "count") != NULL;
		if (api_json_int(hr, g, is_count ? "count" : "percent", 1, 1,
		    is_count ? API_DEPLOY_COUNT_MAX : 100, &amount) == -1)
			return -1;
		ko += (size_t)snprintf(n->kinds + ko, sizeof(n->kinds) - ko, "%s%s",
		    i ? "," : "", is_count ? "count" : "percent");
		ao += (size_t)snprintf(n->amounts + ao, sizeof(n->amounts) - ao, "%s%lld",
		    i ? "," : "", amount);
	}
	snprintf(n->kinds + ko, sizeof(n->kinds) - ko, "}");
	snprintf(n->amounts + ao, sizeof(n->amounts) - ao, "}");
	return 0;
}

static void
api_deploy_created(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	const char *result;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_problem(hr, 500, NULL, "internal error");
		return;
	}
	result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "ok") == 0)
		api_deploy_reply(hr, PQgetvalue(res, 0, 1), 201);
	else if (strcmp(result, "no_image") == 0)
		http_reply_problem(hr, 404, NULL, "no such image");
	else
		http_reply_problem(hr, 409, NULL, "%s", PQgetvalue(res, 0, 2));
}

static void
api_deploy_create(struct http_req *hr)
{
	static const char *const keys[] = {
		"image", "target", "groups", "success_threshold", "error_threshold", NULL
	};
	struct api_deploy_new n;
	long long image = 0, success = 100, error = 50;
	const char *v[8];
	yajl_val body;

	memset(&n, 0, sizeof(n));
	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	/* Members that are there are checked before a missing one is named. */
	if (api_deploy_target(hr, body, &n) == -1 ||
	    api_deploy_groups_body(hr, body, &n) == -1 ||
	    api_json_int(hr, body, "success_threshold", 0, 1, 100, &success) == -1 ||
	    api_json_int(hr, body, "error_threshold", 0, 0, 100, &error) == -1 ||
	    api_json_int(hr, body, "image", 1, 1, INT64_MAX, &image) == -1) {
		yajl_tree_free(body);
		return;
	}
	yajl_tree_free(body);
	snprintf(n.image, sizeof(n.image), "%lld", image);
	snprintf(n.success, sizeof(n.success), "%lld", success);
	snprintf(n.error, sizeof(n.error), "%lld", error);
	v[0] = api_project_id_str(hr);
	v[1] = n.image;
	v[2] = n.has_tag ? n.tag : NULL;
	v[3] = n.kinds;
	v[4] = n.amounts;
	v[5] = n.success;
	v[6] = n.error;
	v[7] = api_actor(hr);
	db_query(hr->srv->db, &deploy_create, 8, v, NULL, api_deploy_created, hr);
}

/* ---- pause, resume, cancel ---- */

struct api_deploy_act {
	struct http_req	*hr;
	char		 id[API_ID_LEN];
};

static void
api_deploy_acted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_deploy_act a = *(struct api_deploy_act *)arg;
	const char *result;

	free(arg);
	if (st != DB_OK) {
		api_db_error(a.hr, st, res, errstr);
		return;
	}
	result = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
	if (strcmp(result, "ok") == 0)
		api_deploy_reply(a.hr, a.id, 200);
	else if (strcmp(result, "not_found") == 0)
		http_reply_problem(a.hr, 404, NULL, API_DEPLOY_MISSING);
	else if (strcmp(result, "conflict") == 0)
		http_reply_problem(a.hr, 409, NULL, "%s", PQgetvalue(res, 0, 1));
	else
		http_reply_problem(a.hr, 500, NULL, "internal error");
}

static void
api_deploy_act(struct http_req *hr, const char *action)
{
	struct api_deploy_act *a;
	const char *v[4];

	if ((a = api_alloc(hr, sizeof(*a))) == NULL)
		return;
	a->hr = hr;
	if (api_param_id(hr, 1, a->id, sizeof(a->id), API_DEPLOY_MISSING) == -1) {
		free(a);
		return;
	}
	v[0] = api_project_id_str(hr);
	v[1] = a->id;
	v[2] = action;
	v[3] = api_actor(hr);
	db_query(hr->srv->db, &deploy_action, 4, v, NULL, api_deploy_acted, a);
}

static void
api_deploy_pause(struct http_req *hr)
{
	api_deploy_act(hr, "pause");
}

static void
api_deploy_resume(struct http_req *hr)
{
	api_deploy_act(hr, "resume");
}

static void
api_deploy_cancel(struct http_req *hr)
{
	api_deploy_act(hr, "cancel");
}

static const char *const api_deploy_list_query[] = { API_PAGE_QUERY, NULL };
static const char *const api_deploy_devices_query[] = {
	API_PAGE_QUERY, "state", NULL
};

#define API_DEPLOY_PATH "/api/v1/projects/{project}/deployments"
const struct route api_deploy_routes[] = {
	{ API_DEPLOY_PATH, EVHTTP_REQ_GET, ROUTE_ADMIN, api_deploy_list, AUTH_VIEWER, api_deploy_list_query },
	{ API_DEPLOY_PATH, EVHTTP_REQ_POST, ROUTE_ADMIN, api_deploy_create, AUTH_OPERATOR, NULL },
	{ API_DEPLOY_PATH "/{deployment}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_deploy_get, AUTH_VIEWER, NULL },
	{ API_DEPLOY_PATH "/{deployment}/devices", EVHTTP_REQ_GET, ROUTE_ADMIN, api_deploy_devices, AUTH_VIEWER, api_deploy_devices_query },
	{ API_DEPLOY_PATH "/{deployment}/pause", EVHTTP_REQ_POST, ROUTE_ADMIN, api_deploy_pause, AUTH_OPERATOR, NULL },
	{ API_DEPLOY_PATH "/{deployment}/resume", EVHTTP_REQ_POST, ROUTE_ADMIN, api_deploy_resume, AUTH_OPERATOR, NULL },
	{ API_DEPLOY_PATH "/{deployment}/cancel", EVHTTP_REQ_POST, ROUTE_ADMIN, api_deploy_cancel, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/deployments", EVHTTP_REQ_GET, ROUTE_ADMIN, api_deploy_history, AUTH_VIEWER, api_deploy_list_query },
};
const size_t api_deploy_nroutes = sizeof(api_deploy_routes) / sizeof(api_deploy_routes[0]);

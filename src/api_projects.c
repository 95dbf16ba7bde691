/* api_projects.c: list, get, create (which creates the project's CAs and
 * signing key on the token), update, and delete when empty. */
#include "api_projects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "api.h"
#include "json.h"
#include "pki.h"
#include "projects.h"
#include "server.h"

#define API_PROJECTS_NPOLICIES	4	/* token, allowlist, approval, tpm */
#define API_PROJECTS_PCR_MAX	24	/* PCRs 0-23 of a PC client TPM */

static void
api_projects_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	struct projects_row p;

	projects_decode(res, i, col, &p);
	json_kv_str(g, "name", p.name);
	json_key(g, "policy");
	yajl_gen_map_open(g);
	json_kv_bool(g, "token", p.policy_token);
	json_kv_bool(g, "allowlist", p.policy_allowlist);
	json_kv_bool(g, "approval", p.policy_approval);
	json_kv_bool(g, "tpm", p.policy_tpm);
	yajl_gen_map_close(g);
	json_key(g, "attestation");
	yajl_gen_map_open(g);
	json_key(g, "pcrs");
	yajl_gen_array_open(g);
	for (int n = 0; n < API_PROJECTS_PCR_MAX; n++)
		if (p.attest_pcrs & (1u << n))
			yajl_gen_integer(g, n);
	yajl_gen_array_close(g);
	json_kv_bool(g, "refuse_tampered", p.attest_refuse_tampered);
	yajl_gen_map_close(g);
	json_kv_int(g, "cert_validity_days", p.cert_validity_days);
	json_kv_str(g, "created_at", p.created_at);
	json_kv_int(g, "devices", p.devices);
}

static void
api_projects_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_list(arg, st, res, errstr, api_projects_fields, 1);
}

static void
api_projects_list(struct http_req *hr)
{
	char after[128], limit[API_LIMIT_LEN], *scope;
	const char *v[3] = { NULL, after, limit };
	int is_oom;

	if (api_page(hr, limit, after, sizeof(after)) == -1)
		return;
	if ((scope = api_scope(hr, &is_oom)) == NULL && is_oom)
		return;
	v[0] = scope;
	db_query(hr->srv->db, &projects_list, 3, v, NULL, api_projects_listed, hr);
	free(scope);
}

static void
api_projects_one(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;

	api_reply_one(hr, st, res, errstr, http_method(hr) == EVHTTP_REQ_POST ?
	    201 : 200, api_projects_fields, 0, "no such project");
}

static void
api_projects_get(struct http_req *hr)
{
	const char *v = api_project_id_str(hr);

	db_query(hr->srv->db, &projects_get, 1, &v, NULL, api_projects_one, hr);
}

struct api_projects_new {
	struct http_req	*hr;
	char		 name[64];
};

static void
api_projects_found_new(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct api_projects_new *p = arg;
	struct http_req *hr = p->hr;

	free(p);
	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	http_add_header(hr, "Location", "/api/v1/projects");
	api_projects_one(st, res, errstr, hr);
}

static void
api_projects_created(enum pki_create_status st, const char *err, void *arg)
{
	static const int status[] = {
		[PKI_CREATE_EXISTS] = 409, [PKI_CREATE_INVALID] = 422,
		[PKI_CREATE_FAILED] = 503,
	};
	struct api_projects_new *p = arg;
	const char *name = p->name;

	if (st != PKI_CREATED) {
		http_reply_problem(p->hr, status[st], NULL, "%s", err);
		free(p);
		return;
	}
	db_query(p->hr->srv->db, &projects_by_name, 1, &name, NULL,
	    api_projects_found_new, p);
}

static int
api_projects_policy(struct http_req *hr, yajl_val body, int *pol, int *given)
{
	static const char *const keys[] = { "token", "allowlist", "approval", "tpm",
	    NULL };
	yajl_val v = json_get(body, "policy");

	for (int i = 0; i < API_PROJECTS_NPOLICIES; i++)
		given[i] = 0;
	if (v == NULL)
		return 0;
	if (!YAJL_IS_OBJECT(v)) {
		http_reply_problem(hr, 400, NULL, "field \"policy\" must be an object");
		return -1;
	}
	if (api_json_only(hr, v, keys) == -1)
		return -1;
	for (int i = 0; i < API_PROJECTS_NPOLICIES; i++) {
		pol[i] = -1;
		if (api_json_bool(hr, v, keys[i], 0, &pol[i]) == -1)
			return -1;
		given[i] = pol[i] != -1;
	}
	return 0;
}

/* "attestation": {"pcrs": [n, ...], "refuse_tampered": bool}, each
 * optional: *mask and *refuse stay -1 when not given. */
static int
api_projects_attestation(struct http_req *hr, yajl_val body, long long *mask,
    int *refuse)
{
	static const char *const keys[] = { "pcrs", "refuse_tampered", NULL };
	static const char *const bad = "field \"attestation.pcrs\" must be an"
	    " array of distinct PCR numbers 0-23";
	yajl_val v = json_get(body, "attestation"), pcrs;

	*mask = -1;
	*refuse = -1;
	if (v == NULL)
		return 0;
	if (!YAJL_IS_OBJECT(v)) {
		http_reply_problem(hr, 400, NULL, "field \"attestation\" must be an object");
		return -1;
	}
	if (api_json_only(hr, v, keys) == -1 ||
	    api_json_bool(hr, v, "refuse_tampered", 0, refuse) == -1)
		return -1;
	if ((pcrs = json_get(v, "pcrs")) == NULL)
		return 0;
	if (!YAJL_IS_ARRAY(pcrs)) {
		http_reply_problem(hr, 400, NULL, "%s", bad);
		return -1;
	}
	*mask = 0;
	for (size_t i = 0; i < pcrs->u.array.len; i++) {
		yajl_val n = pcrs->u.array.values[i];
		long long pcr;

		if (!YAJL_IS_INTEGER(n) || (pcr = YAJL_GET_INTEGER(n)) < 0 ||
		    pcr >= API_PROJECTS_PCR_MAX || (*mask & (1LL << pcr))) {
			http_reply_problem(hr, 400, NULL, "%s", bad);
			return -1;
		}
		*mask |= 1LL << pcr;
	}
	return 0;
}

static void
api_projects_create(struct http_req *hr)
{
	static const char *const keys[] = { "name", "policy", "cert_validity_days", NULL };
	int pol[API_PROJECTS_NPOLICIES] = { 1, 0, 0, 0 }, given[API_PROJECTS_NPOLICIES];
	long long days = 0;
	const char *name = NULL;
	struct api_projects_new *p;
	yajl_val v;

	if ((v = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, v, "name", 1, 63, &name) == -1 ||
	    api_projects_policy(hr, v, pol, given) == -1 ||
	    api_json_int(hr, v, "cert_validity_days", 0, 1, 3650, &days) == -1) {
		yajl_tree_free(v);
		return;
	}
	if (!given[0] && !given[1] && !given[2] && !given[3])
		pol[0] = 1, pol[1] = pol[2] = pol[3] = 0;
	for (int i = 0; i < API_PROJECTS_NPOLICIES; i++)
		if (pol[i] == -1)
			pol[i] = 0;
	if (!pol[0] && !pol[1] && !pol[2] && !pol[3]) {
		yajl_tree_free(v);
		http_reply_problem(hr, 422, NULL, "at least one enrollment policy must be on");
		return;
	}
	if ((p = api_alloc(hr, sizeof(*p))) == NULL) {
		yajl_tree_free(v);
		return;
	}
	p->hr = hr;
	snprintf(p->name, sizeof(p->name), "%s", name);
	yajl_tree_free(v);
	pki_project_create(hr->srv->pki, api_actor(hr), p->name, pol[0], pol[1],
	    pol[2], pol[3], (int)days, api_projects_created, p);
}

/* No row: the change would have turned every policy off. */
static void
api_projects_updated(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;

	if (st == DB_OK && PQntuples(res) == 0)
		http_reply_problem(hr, 422, NULL, "at least one enrollment policy must be on");
	else
		api_projects_one(st, res, errstr, hr);
}

static void
api_projects_update(struct http_req *hr)
{
	static const char *const keys[] = { "name", "policy", "cert_validity_days",
	    "attestation", NULL };
	int pol[API_PROJECTS_NPOLICIES] = { -1, -1, -1, -1 };
	int given[API_PROJECTS_NPOLICIES], refuse;
	long long days = 0, mask;
	const char *name = NULL, *v[10];
	char days_s[24], mask_s[24];
	yajl_val body;

	if ((body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, body, "name", 0, 63, &name) == -1 ||
	    api_projects_policy(hr, body, pol, given) == -1 ||
	    api_json_int(hr, body, "cert_validity_days", 0, 1, 3650, &days) == -1 ||
	    api_projects_attestation(hr, body, &mask, &refuse) == -1) {
		yajl_tree_free(body);
		return;
	}
	if (name != NULL && strcmp(name, "root") == 0) {
		yajl_tree_free(body);
		http_reply_problem(hr, 422, NULL, "the name root is reserved");
		return;
	}
	snprintf(days_s, sizeof(days_s), "%lld", days);
	snprintf(mask_s, sizeof(mask_s), "%lld", mask);
	v[0] = api_project_id_str(hr);
	v[1] = name;
	for (int i = 0; i < 3; i++)
		v[2 + i] = given[i] ? (pol[i] ? "true" : "false") : NULL;
	v[5] = days ? days_s : NULL;
	v[6] = api_actor(hr);
	v[7] = given[3] ? (pol[3] ? "true" : "false") : NULL;
	v[8] = mask >= 0 ? mask_s : NULL;
	v[9] = refuse == -1 ? NULL : refuse ? "true" : "false";
	/* Values are copied by db_query before the tree goes. */
	db_query(hr->srv->db, &projects_update, 10, v, NULL, api_projects_updated, hr);
	yajl_tree_free(body);
}

/* The project exists (resolved before the handler): no row means the
 * delete found devices. Its token keys go only after the rows are gone. */
static void
api_projects_keys_gone(const char *err, void *arg)
{
	(void)err;	/* logged by pki; the rows are gone either way */
	http_reply(arg, 204, NULL, NULL);
}

static void
api_projects_deleted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;

	/* The 204 once the keys are off the token (a token worker's job). */
	if (st == DB_OK && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
	    !PQgetisnull(res, 0, 1)) {
		pki_project_keys_destroy(hr->srv->pki, PQgetvalue(res, 0, 1),
		    api_projects_keys_gone, hr);
		return;
	}
	api_reply_done(hr, st, res, errstr, 409, "project still has devices");
}

static void
api_projects_delete(struct http_req *hr)
{
	const char *v[2] = { api_project_id_str(hr), api_actor(hr) };

	db_query(hr->srv->db, &projects_delete, 2, v, NULL, api_projects_deleted, hr);
}

static const char *const api_projects_list_query[] = { API_PAGE_QUERY, NULL };

const struct route api_projects_routes[] = {
	{ "/api/v1/projects", EVHTTP_REQ_GET, ROUTE_ADMIN, api_projects_list, AUTH_VIEWER, api_projects_list_query },
	{ "/api/v1/projects", EVHTTP_REQ_POST, ROUTE_ADMIN, api_projects_create, AUTH_ADMIN | ROUTE_GLOBAL, NULL },
	{ "/api/v1/projects/{project}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_projects_get, AUTH_VIEWER, NULL },
	{ "/api/v1/projects/{project}", EVHTTP_REQ_PATCH, ROUTE_ADMIN, api_projects_update, AUTH_ADMIN, NULL },
	{ "/api/v1/projects/{project}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_projects_delete, AUTH_ADMIN, NULL },
};
const size_t api_projects_nroutes = sizeof(api_projects_routes) / sizeof(api_projects_routes[0]);

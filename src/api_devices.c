/* api_devices.c: devices of a project: list with filters, get, approve,
 * reject, disable, enable, tags, delete (which revokes its certificates).
 * Query values reach SQL only as parameters; state rules live in SQL. */
#include "api_devices.h"

#include <string.h>

#include <event2/http.h>

#include "api.h"
#include "devices.h"
#include "json.h"
#include "names.h"
#include "server.h"
#include "util.h"

#define API_DEVICES_ID_LEN	NAMES_DEVICE_ID_LEN
#define API_DEVICES_TAG_MAX	64
#define API_DEVICES_TAGS_MAX	32
#define API_DEVICES_Q_MAX	64
/* Larger than any query value worth reading: http_query_param refuses a
 * longer one rather than drop the filter without a word. */
#define API_DEVICES_QBUF	4096

/* "attestation": what the TPM attestation and quotes left (sql/014). */
static void
api_devices_attestation(yajl_gen g, const struct devices_row *d)
{
	const char *p = d->pcr_differ;
	const char *errstr;
	char num[8];
	long long v;
	size_t n;

	json_key(g, "attestation");
	yajl_gen_map_open(g);
	json_kv_str(g, "state", d->att_state);
	json_kv_str(g, "ek_sha256", d->ek_sha256);
	json_kv_str(g, "ak_name", d->ak_name);
	json_kv_str(g, "attested_at", d->attested_at);
	json_kv_str(g, "last_quote_at", d->last_quote_at);
	json_key(g, "differ");
	yajl_gen_array_open(g);
	while (*p != '\0') {
		n = strcspn(p, ",");
		if (n < sizeof(num)) {
			memcpy(num, p, n);
			num[n] = '\0';
			errstr = NULL;
			v = util_strtonum(num, 0, 23, &errstr);
			if (errstr == NULL)
				yajl_gen_integer(g, v);
		}
		p += n + (p[n] == ',');
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

static void
api_devices_fields(yajl_gen g, const PGresult *res, int i, int off)
{
	struct devices_row d;
	const char *tags, *end;

	devices_decode(res, i, off, &d);
	tags = d.tags;
	json_kv_str(g, "device_id", d.device_id);
	json_kv_str(g, "label", d.label);
	json_kv_str(g, "status", d.status);
	json_key(g, "tags");
	yajl_gen_array_open(g);
	while (*tags != '\0') {
		if ((end = strchr(tags, DEVICES_TAG_SEP)) == NULL)
			end = tags + strlen(tags);
		/* ASCII when set through the API (api_devices_tag_ok). */
		if (util_utf8_valid((const unsigned char *)tags, (size_t)(end - tags)))
			yajl_gen_string(g, (const unsigned char *)tags,
			    (size_t)(end - tags));
		tags = *end ? end + 1 : end;
	}
	yajl_gen_array_close(g);
	json_kv_str(g, "created_at", d.created_at);
	json_kv_str(g, "last_seen", d.last_seen);
	json_kv_str(g, "installed_version", d.installed_version);
	json_key(g, "certificate");
	if (d.cert_serial == NULL)
		yajl_gen_null(g);
	else {
		yajl_gen_map_open(g);
		json_kv_str(g, "serial", d.cert_serial);
		json_kv_str(g, "not_after", d.cert_not_after);
		yajl_gen_map_close(g);
	}
	api_devices_attestation(g, &d);
}

/* The {device} path parameter; 404 unless it can be a device ID. */
static int
api_devices_param(struct http_req *hr, char id[API_DEVICES_ID_LEN + 1])
{
	if (api_param(hr, 1, id, API_DEVICES_ID_LEN + 1) == -1)
		return -1;
	if (!names_is_device_id(id, strlen(id))) {
		http_reply_problem(hr, 404, NULL, "no such device");
		return -1;
	}
	return 0;
}

static int
api_devices_tag_ok(const char *t, size_t len)
{
	return len >= 1 && len <= API_DEVICES_TAG_MAX && strspn(t,
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == len;
}

static void
api_devices_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_list(arg, st, res, errstr, api_devices_fields, 0);
}

static void
api_devices_list(struct http_req *hr)
{
	static const char *const statuses[] = {
		"pending", "approved", "active", "rejected", "disabled", "revoked", NULL
	};
	char after[API_DEVICES_QBUF], status[16 + 1], tag[API_DEVICES_TAG_MAX + 1];
	char q[API_DEVICES_Q_MAX + 1], limit[API_LIMIT_LEN];
	const char *v[6];
	int has_status, has_tag, has_q;
	size_t i;

	if (api_page(hr, limit, after, sizeof(after)) == -1 ||
	    (has_status = api_query_str(hr, "status", sizeof(status) - 1, status,
	    NULL)) == -1 ||
	    (has_tag = api_query_str(hr, "tag", API_DEVICES_TAG_MAX, tag, NULL)) == -1 ||
	    (has_q = api_query_str(hr, "q", API_DEVICES_Q_MAX, q, NULL)) == -1)
		return;
	if (has_status) {
		for (i = 0; statuses[i] != NULL && strcmp(statuses[i], status) != 0; i++)
			;
		if (statuses[i] == NULL) {
			http_reply_problem(hr, 400, NULL, "query parameter status must be"
			    " pending, approved, active, rejected, disabled or revoked");
			return;
		}
	}
	/* A tag that could never be set matches nothing: no error, no rows. */
	if (has_tag && tag[0] == '\0') {
		http_reply_problem(hr, 400, NULL, "query parameter tag is empty");
		return;
	}
	v[0] = api_project_id_str(hr);
	v[1] = has_status ? status : NULL;
	v[2] = has_tag ? tag : NULL;
	v[3] = has_q && q[0] != '\0' ? q : NULL;
	v[4] = after;
	v[5] = limit;
	db_query(hr->srv->db, &devices_list, 6, v, NULL, api_devices_listed, hr);
}

static void
api_devices_one(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_one(arg, st, res, errstr, 200, api_devices_fields, 0,
	    "no such device");
}

static void
api_devices_get(struct http_req *hr)
{
	char id[API_DEVICES_ID_LEN + 1];
	const char *v[2] = { api_project_id_str(hr), id };

	if (api_devices_param(hr, id) == -1)
		return;
	db_query(hr->srv->db, &devices_get, 2, v, NULL, api_devices_one, hr);
}

/* result, then the device row: 'ok', 'conflict' or 'not_found'. */
static void
api_devices_changed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	struct devices_row d;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	if (PQntuples(res) != 1) {
		http_reply_problem(hr, 500, NULL, "internal error");
		return;
	}
	switch (devices_change_decode(res)) {
	case DEVICES_CHANGE_NOT_FOUND:
		http_reply_problem(hr, 404, NULL, "no such device");
		break;
	case DEVICES_CHANGE_CONFLICT:
		devices_decode(res, 0, 1, &d);
		http_reply_problem(hr, 409, NULL, "the device is %s", d.status);
		break;
	case DEVICES_CHANGED:
		api_reply_object(hr, 200, api_devices_fields, res, 1);
		break;
	}
}

static void
api_devices_set_status(struct http_req *hr, const char *action)
{
	char id[API_DEVICES_ID_LEN + 1];
	const char *v[4] = { api_project_id_str(hr), id, action, api_actor(hr) };

	if (api_devices_param(hr, id) == -1)
		return;
	db_query(hr->srv->db, &devices_set_status, 4, v, NULL,
	    api_devices_changed, hr);
}

static void
api_devices_approve(struct http_req *hr)
{
	api_devices_set_status(hr, "approve");
}

static void
api_devices_reject(struct http_req *hr)
{
	api_devices_set_status(hr, "reject");
}

static void
api_devices_disable(struct http_req *hr)
{
	api_devices_set_status(hr, "disable");
}

static void
api_devices_enable(struct http_req *hr)
{
	api_devices_set_status(hr, "enable");
}

/* {"tags":[...]}: joined with ',' into out (no tag may hold one). */
static int
api_devices_tags_body(struct http_req *hr, yajl_val body, char *out, size_t len)
{
	yajl_val tags;
	size_t off = 0, n;

	if ((tags = json_get(body, "tags")) == NULL) {
		http_reply_problem(hr, 400, NULL, "field \"tags\" is required");
		return -1;
	}
	if (!YAJL_IS_ARRAY(tags)) {
		http_reply_problem(hr, 400, NULL, "field \"tags\" must be an array of strings");
		return -1;
	}
	for (size_t i = 0; i < tags->u.array.len; i++)
		if (!YAJL_IS_STRING(tags->u.array.values[i])) {
			http_reply_problem(hr, 400, NULL,
			    "field \"tags\" must be an array of strings");
			return -1;
		}
	if (tags->u.array.len > API_DEVICES_TAGS_MAX) {
		http_reply_problem(hr, 422, NULL, "field \"tags\" holds more than %d tags",
		    API_DEVICES_TAGS_MAX);
		return -1;
	}
	out[0] = '\0';
	for (size_t i = 0; i < tags->u.array.len; i++) {
		const char *t = YAJL_GET_STRING(tags->u.array.values[i]);

		n = strlen(t);
		if (!api_devices_tag_ok(t, n)) {
			http_reply_problem(hr, 422, NULL, "field \"tags\": each tag must be"
			    " 1-%d characters of A-Z a-z 0-9 . _ : -", API_DEVICES_TAG_MAX);
			return -1;
		}
		if (off + n + 2 > len) {
			http_reply_problem(hr, 422, NULL, "field \"tags\" is too long");
			return -1;
		}
		if (off > 0)
			out[off++] = ',';
		memcpy(out + off, t, n + 1);
		off += n;
	}
	return 0;
}

static void
api_devices_tags(struct http_req *hr)
{
	char id[API_DEVICES_ID_LEN + 1];
	static const char *const keys[] = { "tags", NULL };
	char joined[API_DEVICES_TAGS_MAX * (API_DEVICES_TAG_MAX + 1) + 1];
	const char *v[4] = { api_project_id_str(hr), id, joined, api_actor(hr) };
	yajl_val body;

	if (api_devices_param(hr, id) == -1 || (body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_devices_tags_body(hr, body, joined, sizeof(joined)) == -1) {
		yajl_tree_free(body);
		return;
	}
	yajl_tree_free(body);
	db_query(hr->srv->db, &devices_set_tags, 4, v, NULL, api_devices_changed, hr);
}

/* result, then the device row: 'ok', 'conflict' or 'not_found'. */
static void
api_devices_accepted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	struct devices_row d;

	if (st == DB_OK && PQntuples(res) == 1 &&
	    devices_change_decode(res) == DEVICES_CHANGE_CONFLICT) {
		devices_decode(res, 0, 1, &d);
		http_reply_problem(hr, 409, NULL, "the device's attestation state is %s,"
		    " not tampered: there is nothing to accept", d.att_state);
		return;
	}
	api_devices_changed(st, res, errstr, arg);
}

/* The last quoted PCR values become the reference (admins only). */
static void
api_devices_attest_accept(struct http_req *hr)
{
	char id[API_DEVICES_ID_LEN + 1];
	const char *v[3] = { api_project_id_str(hr), id, api_actor(hr) };

	if (api_devices_param(hr, id) == -1)
		return;
	db_query(hr->srv->db, &devices_attest_accept, 3, v, NULL,
	    api_devices_accepted, hr);
}

/* ql_device_delete: NULL when there is no such device. */
static void
api_devices_deleted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_done(arg, st, res, errstr, 404, "no such device");
}

static void
api_devices_delete(struct http_req *hr)
{
	char id[API_DEVICES_ID_LEN + 1];
	const char *v[3] = { api_project_id_str(hr), id, api_actor(hr) };

	if (api_devices_param(hr, id) == -1)
		return;
	db_query(hr->srv->db, &devices_delete, 3, v, NULL, api_devices_deleted, hr);
}

static const char *const api_devices_list_query[] = {
	API_PAGE_QUERY, "status", "tag", "q", NULL
};

const struct route api_devices_routes[] = {
	{ "/api/v1/projects/{project}/devices", EVHTTP_REQ_GET, ROUTE_ADMIN, api_devices_list, AUTH_VIEWER, api_devices_list_query },
	{ "/api/v1/projects/{project}/devices/{device}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_devices_get, AUTH_VIEWER, NULL },
	{ "/api/v1/projects/{project}/devices/{device}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_devices_delete, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/approve", EVHTTP_REQ_POST, ROUTE_ADMIN, api_devices_approve, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/reject", EVHTTP_REQ_POST, ROUTE_ADMIN, api_devices_reject, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/disable", EVHTTP_REQ_POST, ROUTE_ADMIN, api_devices_disable, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/enable", EVHTTP_REQ_POST, ROUTE_ADMIN, api_devices_enable, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/tags", EVHTTP_REQ_PUT, ROUTE_ADMIN, api_devices_tags, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/attestation/accept", EVHTTP_REQ_POST, ROUTE_ADMIN, api_devices_attest_accept, AUTH_ADMIN, NULL },
};
const size_t api_devices_nroutes = sizeof(api_devices_routes) / sizeof(api_devices_routes[0]);

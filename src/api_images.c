/* api_images.c: images of a project: list (by name), get, delete (refused
 * while deployed), and the content streamed back from PostgreSQL one chunk
 * row at a time: the next row is read only once the previous one has been
 * written to the socket, so a download holds one row whatever its size. */
#include "api_images.h"

#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "api.h"
#include "images.h"
#include "imgstream.h"
#include "json.h"
#include "server.h"
#include "uploads.h"

#define API_IMAGES_QBUF		4096

/* One image row starting at column off (see images.h). */
static void
api_images_fields(yajl_gen g, const PGresult *res, int i, int off)
{
	const char *hw = PQgetvalue(res, i, off + 6), *end;

	json_kv_int(g, "id", api_val_int(res, i, off));
	json_kv_str(g, "name", PQgetvalue(res, i, off + 1));
	json_kv_str(g, "version", PQgetvalue(res, i, off + 2));
	json_kv_int(g, "size", api_val_int(res, i, off + 3));
	json_kv_str(g, "sha256", PQgetvalue(res, i, off + 4));
	json_kv_str(g, "status", PQgetvalue(res, i, off + 5));
	json_key(g, "hardware");
	yajl_gen_array_open(g);
	while (*hw != '\0') {	/* [A-Za-z0-9._:-] each (uploads_meta_parse) */
		if ((end = strchr(hw, ',')) == NULL)
			end = hw + strlen(hw);
		yajl_gen_string(g, (const unsigned char *)hw, (size_t)(end - hw));
		hw = *end ? end + 1 : end;
	}
	yajl_gen_array_close(g);
	json_kv_bool(g, "encrypt", PQgetvalue(res, i, off + 7)[0] == 't');
	json_kv_str(g, "uploaded_by", PQgetvalue(res, i, off + 8));
	json_kv_str(g, "created_at", PQgetvalue(res, i, off + 9));
}

static void
api_images_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_list(arg, st, res, errstr, api_images_fields, 0);
}

static void
api_images_list(struct http_req *hr)
{
	char after[API_IMAGES_QBUF], limit[API_LIMIT_LEN];
	char name[UPLOADS_NAME_MAX + 1];
	const char *v[4];
	int has_name;

	if (api_page_id(hr, limit, after, sizeof(after)) == -1 ||
	    (has_name = api_query_str(hr, "name", UPLOADS_NAME_MAX, name,
	    NULL)) == -1)
		return;
	if (has_name && name[0] == '\0') {
		http_reply_problem(hr, 400, NULL, "query parameter name is empty");
		return;
	}
	v[0] = api_project_id_str(hr);
	v[1] = has_name ? name : NULL;
	v[2] = after;
	v[3] = limit;
	db_query(hr->srv->db, &images_list, 4, v, NULL, api_images_listed, hr);
}

static void
api_images_one(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_one(arg, st, res, errstr, 200, api_images_fields, 0,
	    "no such image");
}

static void
api_images_get(struct http_req *hr)
{
	char id[API_ID_LEN];
	const char *v[2] = { api_project_id_str(hr), id };

	if (api_param_id(hr, 1, id, sizeof(id), "no such image") == -1)
		return;
	db_query(hr->srv->db, &images_get, 2, v, NULL, api_images_one, hr);
}

static void
api_images_deleted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	const char *result;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "ok") == 0) {
		uploads_expiry_kick();	/* its bytes, in bounded batches */
		http_reply(hr, 204, NULL, NULL);
	} else if (strcmp(result, "deployed") == 0)
		http_reply_problem(hr, 409, NULL, "the image is deployed: cancel or"
		    " finish its deployments first");
	else
		http_reply_problem(hr, 404, NULL, "no such image");
}

static void
api_images_delete(struct http_req *hr)
{
	char id[API_ID_LEN];
	const char *v[3] = { api_project_id_str(hr), id, NULL };

	if (api_param_id(hr, 1, id, sizeof(id), "no such image") == -1)
		return;
	v[2] = api_actor(hr);
	db_query(hr->srv->db, &images_delete, 3, v, NULL, api_images_deleted, hr);
}

/* ---------------------------------------------------------- content */

/* The image's stored bytes, streamed a piece at a time (imgstream.c). */
static void
api_images_content_found(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct http_req *hr = arg;
	char len[24];
	long long size;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_reply_one(hr, st, res, errstr, 200, api_images_fields, 0,
		    "no such image");
		return;
	}
	size = api_val_int(res, 0, 3);
	snprintf(len, sizeof(len), "%lld", size);
	http_add_header(hr, "Content-Length", len);	/* not chunked */
	if (size == 0) {
		http_reply(hr, 200, "application/octet-stream", NULL);
		return;
	}
	imgstream_start(hr, 200, PQgetvalue(res, 0, 10), 0, 0, size, NULL,
	    NULL);	/* on -1 hr got its 503: nothing to undo */
}

static void
api_images_content(struct http_req *hr)
{
	char id[API_ID_LEN];
	const char *v[2] = { api_project_id_str(hr), id };

	if (api_param_id(hr, 1, id, sizeof(id), "no such image") == -1)
		return;
	db_query(hr->srv->db, &images_get, 2, v, NULL, api_images_content_found, hr);
}

static const char *const api_images_list_query[] = {
	API_PAGE_QUERY, "name", NULL
};

const struct route api_images_routes[] = {
	{ "/api/v1/projects/{project}/images", EVHTTP_REQ_GET, ROUTE_ADMIN, api_images_list, AUTH_VIEWER, api_images_list_query },
	{ "/api/v1/projects/{project}/images/{image}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_images_get, AUTH_VIEWER, NULL },
	{ "/api/v1/projects/{project}/images/{image}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_images_delete, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/images/{image}/content", EVHTTP_REQ_GET, ROUTE_ADMIN, api_images_content, AUTH_OPERATOR, NULL },
};
const size_t api_images_nroutes = sizeof(api_images_routes) / sizeof(api_images_routes[0]);

/* api_imgsign.c: signing an image (operator, audited) and reading back its
 * detached signature and signed manifest as DER. The signing itself, and
 * the encryption of an image that asks for it, is imgsign.c's job; this
 * file checks the request and maps the outcome to HTTP once. */
#include "api_imgsign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "api.h"
#include "imgsign.h"
#include "json.h"
#include "server.h"
#include "tok.h"
#include "util.h"

#define API_IMGSIGN_MISSING	"no such image"

/* The IMGSIGN_NCOLS columns of imgsign.h, in that order. */
static void
api_imgsign_fields(yajl_gen g, const PGresult *res, int row, int col)
{
	const char *hw = api_val(res, row, col + 6);
	char err[64];
	yajl_val v = hw ? json_parse(hw, strlen(hw), 2, err, sizeof(err)) : NULL;

	json_kv_int(g, "id", api_val_int(res, row, col));
	json_kv_str(g, "name", api_val(res, row, col + 1));
	json_kv_str(g, "version", api_val(res, row, col + 2));
	json_kv_int(g, "size", api_val_int(res, row, col + 3));
	json_kv_str(g, "sha256", api_val(res, row, col + 4));
	json_kv_str(g, "status", api_val(res, row, col + 5));
	json_key(g, "hardware");
	yajl_gen_array_open(g);
	for (size_t i = 0; v != NULL && YAJL_IS_ARRAY(v) && i < v->u.array.len; i++)
		if (YAJL_IS_STRING(v->u.array.values[i]))
			yajl_gen_string(g, (const unsigned char *)v->u.array.values[i]->u.string,
			    strlen(v->u.array.values[i]->u.string));
	yajl_gen_array_close(g);
	yajl_tree_free(v);
	json_kv_bool(g, "encrypted", api_val(res, row, col + 7)[0] == 't');
	if (api_val(res, row, col + 8) != NULL)
		json_kv_int(g, "encrypted_size", api_val_int(res, row, col + 8));
	json_kv_str(g, "signed_by", api_val(res, row, col + 9));
	json_kv_str(g, "signed_at", api_val(res, row, col + 10));
	json_kv_str(g, "expires_at", api_val(res, row, col + 11));
	json_kv_str(g, "created_at", api_val(res, row, col + 12));
}

static void
api_imgsign_done(enum imgsign_status st, const PGresult *res, const char *err,
    void *arg)
{
	struct http_req *hr = arg;

	switch (st) {
	case IMGSIGN_OK:
		api_reply_object(hr, 200, api_imgsign_fields, res, 0);
		return;
	case IMGSIGN_MISSING:
		http_reply_problem(hr, 404, NULL, API_IMGSIGN_MISSING);
		return;
	case IMGSIGN_SIGNED:
	case IMGSIGN_BUSY:
		http_reply_problem(hr, 409, NULL, "%s", err);
		return;
	case IMGSIGN_FULL:
		http_add_header(hr, "Retry-After", "5");
		http_reply_problem(hr, 503, NULL, "%s", err);
		return;
	case IMGSIGN_TOKEN_BUSY:
		http_add_header(hr, "Retry-After", TOK_RETRY_AFTER);
		http_reply_problem(hr, 503, NULL, "%s", err);
		return;
	case IMGSIGN_FAILED:
		break;
	}
	http_reply_problem(hr, 503, NULL, "the image could not be signed: %s", err);
}

/* "hardware": an array of at most IMGSIGN_HW_MAX names; 0 with *names
 * set (NULL when absent), -1 after a 400. */
static int
api_imgsign_hardware(struct http_req *hr, yajl_val body, const char ***names,
    size_t *n)
{
	yajl_val v = json_get(body, "hardware");

	*names = NULL;
	*n = 0;
	if (v == NULL)
		return 0;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len > IMGSIGN_HW_MAX) {
		http_reply_problem(hr, 400, NULL, "field \"hardware\" must be an array"
		    " of at most %d names", IMGSIGN_HW_MAX);
		return -1;
	}
	if ((*names = api_alloc(hr, (v->u.array.len + 1) * sizeof(**names))) == NULL)
		return -1;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];

		if (!YAJL_IS_STRING(e) || !imgsign_hardware_ok(e->u.string)) {
			free(*names);
			*names = NULL;
			http_reply_problem(hr, 400, NULL, "field \"hardware\": each name"
			    " must be 1-%d characters of [A-Za-z0-9._:-]",
			    IMGSIGN_HW_LEN);
			return -1;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp((*names)[k], e->u.string) == 0) {
				free(*names);
				*names = NULL;
				http_reply_problem(hr, 400, NULL, "field \"hardware\""
				    " names %.64s twice", e->u.string);
				return -1;
			}
		(*names)[i] = e->u.string;
	}
	*n = v->u.array.len;
	return 0;
}

/* POST .../images/{image}/sign: an empty body takes the defaults. */
static void
api_imgsign_sign(struct http_req *hr)
{
	static const char *const keys[] = { "expires_in_days", "hardware", NULL };
	char id[API_ID_LEN];
	struct imgsign_request r = {
		.project_id = api_project_id(hr), .project = api_project_name(hr),
		.actor = api_actor(hr), .days = IMGSIGN_DAYS_DEFAULT,
	};
	const char **names = NULL;
	yajl_val body = NULL;
	long long days = IMGSIGN_DAYS_DEFAULT;
	const char *errstr;

	/* The body first: a malformed request is 400 whatever it names. */
	if (evbuffer_get_length(http_body(hr)) > 0 ||
	    http_header(hr, "Content-Type") != NULL) {
		if ((body = api_body_json(hr, keys)) == NULL)
			return;
		if (api_json_int(hr, body, "expires_in_days", 0, 1, IMGSIGN_DAYS_MAX,
		    &days) == -1 || api_imgsign_hardware(hr, body, &names,
		    &r.nhardware) == -1) {
			yajl_tree_free(body);
			return;
		}
	}
	if (api_param_id(hr, 1, id, sizeof(id), API_IMGSIGN_MISSING) == -1) {
		free(names);
		yajl_tree_free(body);
		return;
	}
	r.image_id = util_strtonum(id, 1, INT64_MAX, &errstr);
	r.days = (int)days;
	r.hardware = names;
	imgsign_sign(hr->srv, &r, api_imgsign_done, hr);
	free(names);
	yajl_tree_free(body);
}

static void
api_imgsign_blob(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr, const char *ctype)
{
	struct evbuffer *buf;
	unsigned char *der;
	size_t len;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		http_reply_problem(hr, 404, NULL, "no such signed image");
		return;
	}
	der = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
	if (der == NULL || (buf = evbuffer_new()) == NULL) {
		PQfreemem(der);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	if (evbuffer_add(buf, der, len) == -1)
		http_reply_problem(hr, 503, NULL, "out of memory");
	else
		http_reply(hr, 200, ctype, buf);
	evbuffer_free(buf);
	PQfreemem(der);
}

static void
api_imgsign_sig_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_imgsign_blob(arg, st, res, errstr, "application/pkcs7-signature");
}

static void
api_imgsign_man_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_imgsign_blob(arg, st, res, errstr, "application/pkcs7-mime");
}

static void
api_imgsign_get(struct http_req *hr, const struct db_stmt *stmt, db_cb cb)
{
	char id[API_ID_LEN];
	const char *v[2] = { api_project_id_str(hr), id };

	if (api_param_id(hr, 1, id, sizeof(id), "no such signed image") == -1)
		return;
	db_query(hr->srv->db, stmt, 2, v, NULL, cb, hr);
}

static void
api_imgsign_signature(struct http_req *hr)
{
	api_imgsign_get(hr, &imgsign_get_signature, api_imgsign_sig_got);
}

static void
api_imgsign_manifest(struct http_req *hr)
{
	api_imgsign_get(hr, &imgsign_get_manifest, api_imgsign_man_got);
}

const struct route api_imgsign_routes[] = {
	{ "/api/v1/projects/{project}/images/{image}/sign", EVHTTP_REQ_POST, ROUTE_ADMIN, api_imgsign_sign, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/images/{image}/signature", EVHTTP_REQ_GET, ROUTE_ADMIN, api_imgsign_signature, AUTH_VIEWER, NULL },
	{ "/api/v1/projects/{project}/images/{image}/manifest", EVHTTP_REQ_GET, ROUTE_ADMIN, api_imgsign_manifest, AUTH_VIEWER, NULL },
};
const size_t api_imgsign_nroutes = sizeof(api_imgsign_routes) / sizeof(api_imgsign_routes[0]);

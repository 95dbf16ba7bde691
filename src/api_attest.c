/* api_attest.c: list, add (one PEM CA certificate, checked here) and
 * delete a project's TPM manufacturer CAs; each change is audited in the
 * statement that makes it (attest.c). */
#include "api_attest.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/x509.h>

#include "api.h"
#include "attest.h"
#include "attest_trust.h"
#include "ca.h"
#include "json.h"
#include "server.h"
#include "util.h"

#define API_ATTEST_PEM_MAX	(64 * 1024)

/* id, subject, sha256, created_at */
static void
api_attest_ca_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	json_kv_int(g, "id", api_val_int(res, i, col));
	json_kv_str(g, "subject", api_val(res, i, col + 1));
	json_kv_str(g, "sha256", api_val(res, i, col + 2));
	json_kv_str(g, "created_at", api_val(res, i, col + 3));
}

static void
api_attest_cas_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_list(arg, st, res, errstr, api_attest_ca_fields, 0);
}

static void
api_attest_cas_list(struct http_req *hr)
{
	char after[32], limit[API_LIMIT_LEN];
	const char *v[3] = { api_project_id_str(hr), after, limit };

	if (api_page_id(hr, limit, after, sizeof(after)) == -1)
		return;
	db_query(hr->srv->db, &attest_cas_list, 3, v, NULL, api_attest_cas_listed, hr);
}

/* result (ok | exists | full), then the CA row. */
static void
api_attest_ca_added(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;
	const char *r;
	char loc[128];

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	r = PQgetvalue(res, 0, 0);
	if (strcmp(r, "exists") == 0)
		http_reply_problem(hr, 409, NULL, "the project already trusts this CA");
	else if (strcmp(r, "full") == 0)
		http_reply_problem(hr, 422, NULL, "a project trusts at most %d TPM"
		    " manufacturer CAs", ATTEST_PROJECT_CAS_MAX);
	else {
		snprintf(loc, sizeof(loc), "/api/v1/projects/%s/tpm-cas/%s",
		    api_project_name(hr), PQgetvalue(res, 0, 1));
		http_add_header(hr, "Location", loc);
		api_reply_object(hr, 201, api_attest_ca_fields, res, 1);
	}
}

static void
api_attest_ca_add(struct http_req *hr)
{
	const char *ct = http_header(hr, "Content-Type"), *why;
	struct evbuffer *body = http_body(hr);
	size_t n = evbuffer_get_length(body);
	unsigned char *der = NULL;
	char subject[512];
	const char *v[4];
	int len[4] = { -1, 0, -1, -1 };
	X509 *x;

	if (!util_media_type_is(ct, "application/x-pem-file") &&
	    !util_media_type_is(ct, "application/pem-certificate-chain") &&
	    !util_media_type_is(ct, "text/plain")) {
		http_reply_problem(hr, 415, NULL, "Content-Type must be"
		    " application/x-pem-file");
		return;
	}
	if (n > API_ATTEST_PEM_MAX) {
		http_reply_problem(hr, 413, NULL, "request body is larger than %d bytes",
		    API_ATTEST_PEM_MAX);
		return;
	}
	if ((x = attest_trust_pem((const char *)evbuffer_pullup(body, -1), n,
	    &why)) == NULL) {
		http_reply_problem(hr, 400, NULL, "%s", why);
		return;
	}
	if (ca_name_text(X509_get_subject_name(x), subject, sizeof(subject)) == -1 ||
	    (len[1] = i2d_X509(x, &der)) <= 0) {
		X509_free(x);
		http_reply_problem(hr, 400, NULL, "cannot encode the certificate");
		return;
	}
	X509_free(x);
	v[0] = api_project_id_str(hr);
	v[1] = (const char *)der;
	v[2] = subject;
	v[3] = api_actor(hr);
	db_query(hr->srv->db, &attest_ca_add, 4, v, len, api_attest_ca_added, hr);
	OPENSSL_free(der);
}

static void
api_attest_ca_deleted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	api_reply_done(arg, st, res, errstr, 404, "no such TPM manufacturer CA");
}

static void
api_attest_ca_delete(struct http_req *hr)
{
	char id[API_ID_LEN];
	const char *v[3] = { api_project_id_str(hr), id, api_actor(hr) };

	if (api_param_id(hr, 1, id, sizeof(id), "no such TPM manufacturer CA") == -1)
		return;
	db_query(hr->srv->db, &attest_ca_delete, 3, v, NULL, api_attest_ca_deleted, hr);
}

static const char *const api_attest_list_query[] = { API_PAGE_QUERY, NULL };

const struct route api_attest_routes[] = {
	{ "/api/v1/projects/{project}/tpm-cas", EVHTTP_REQ_GET, ROUTE_ADMIN, api_attest_cas_list, AUTH_VIEWER, api_attest_list_query },
	{ "/api/v1/projects/{project}/tpm-cas", EVHTTP_REQ_POST, ROUTE_ADMIN, api_attest_ca_add, AUTH_ADMIN, NULL },
	{ "/api/v1/projects/{project}/tpm-cas/{id}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_attest_ca_delete, AUTH_ADMIN, NULL },
};
const size_t api_attest_nroutes = sizeof(api_attest_routes) / sizeof(api_attest_routes[0]);

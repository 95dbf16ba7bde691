/* api_certs.c: certificates of a project or device: list with filters,
 * get (PEM and fields parsed by OpenSSL from the stored DER), revoke with
 * a reason. Never parses a certificate by hand. */
#include "api_certs.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "api.h"
#include "certs.h"
#include "json.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "xmalloc.h"

#define API_CERTS_SERIAL_LEN	32
#define API_CERTS_DEVICE_LEN	32
/* Larger than any query value worth reading: http_query_param refuses a
 * longer one rather than drop the filter without a word. */
#define API_CERTS_QBUF		4096

/* RFC 5280 section 5.3.1 CRLReason; 7 is not used. */
static const char *const api_certs_reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
	"superseded", "cessationOfOperation", "certificateHold", NULL,
	"removeFromCRL", "privilegeWithdrawn", "aACompromise",
};
#define API_CERTS_NREASONS \
	(int)(sizeof(api_certs_reasons) / sizeof(api_certs_reasons[0]))
/* Reasons that do not mean revoked: a hold needs a release, and revocation
 * here is final; OpenSSL reads a full-CRL entry with removeFromCRL as not
 * revoked. sql/008 refuses them too. */
#define API_CERTS_REASON_IS_REFUSED(c)	((c) == 6 || (c) == 8)

static const struct {
	uint32_t	 bit;
	const char	*name;
} api_certs_key_usages[] = {
	{ KU_DIGITAL_SIGNATURE, "digitalSignature" },
	{ KU_NON_REPUDIATION, "contentCommitment" },
	{ KU_KEY_ENCIPHERMENT, "keyEncipherment" },
	{ KU_DATA_ENCIPHERMENT, "dataEncipherment" },
	{ KU_KEY_AGREEMENT, "keyAgreement" },
	{ KU_KEY_CERT_SIGN, "keyCertSign" },
	{ KU_CRL_SIGN, "cRLSign" },
	{ KU_ENCIPHER_ONLY, "encipherOnly" },
	{ KU_DECIPHER_ONLY, "decipherOnly" },
};

/* A string that came from a certificate: as it is when it is valid UTF-8
 * without NULs, else a copy cut at the first NUL with bad bytes replaced. */
static void
api_certs_str(yajl_gen g, const char *s, size_t len)
{
	char *copy;

	if (memchr(s, '\0', len) == NULL &&
	    util_utf8_valid((const unsigned char *)s, len)) {
		yajl_gen_string(g, (const unsigned char *)s, len);
		return;
	}
	copy = xmalloc(len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	util_utf8_scrub(copy);
	yajl_gen_string(g, (const unsigned char *)copy, strlen(copy));
	free(copy);
}

static void
api_certs_bio_str(yajl_gen g, const char *key, BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);

	json_key(g, key);
	if (n < 0 || p == NULL)
		yajl_gen_null(g);
	else
		api_certs_str(g, p, (size_t)n);
}

static void
api_certs_key(yajl_gen g, X509 *x)
{
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char group[64];
	int id;

	json_key(g, "key");
	if (pk == NULL) {
		yajl_gen_null(g);
		return;
	}
	id = EVP_PKEY_get_base_id(pk);
	yajl_gen_map_open(g);
	json_kv_str(g, "type", id == EVP_PKEY_EC ? "EC" : id == EVP_PKEY_RSA ? "RSA" :
	    id == EVP_PKEY_ED25519 ? "Ed25519" : id == EVP_PKEY_ED448 ? "Ed448" :
	    OBJ_nid2sn(id) ? OBJ_nid2sn(id) : "unknown");
	json_kv_int(g, "bits", EVP_PKEY_get_bits(pk));
	if (id == EVP_PKEY_EC && EVP_PKEY_get_utf8_string_param(pk,
	    OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1)
		json_kv_str(g, "curve", group);
	yajl_gen_map_close(g);
}

static void
api_certs_sans(yajl_gen g, X509 *x)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

	json_key(g, "san_uris");
	yajl_gen_array_open(g);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;

		if (gn->type != GEN_URI)
			continue;
		s = gn->d.uniformResourceIdentifier;
		api_certs_str(g, (const char *)ASN1_STRING_get0_data(s),
		    (size_t)ASN1_STRING_length(s));
	}
	yajl_gen_array_close(g);
	GENERAL_NAMES_free(gens);
}

static void
api_certs_usages(yajl_gen g, X509 *x)
{
	EXTENDED_KEY_USAGE *eku;
	uint32_t ku = X509_get_key_usage(x);
	char oid[128];

	json_key(g, "key_usage");
	yajl_gen_array_open(g);
	for (size_t i = 0; ku != UINT32_MAX &&
	    i < sizeof(api_certs_key_usages) / sizeof(api_certs_key_usages[0]); i++)
		if (ku & api_certs_key_usages[i].bit)
			api_certs_str(g, api_certs_key_usages[i].name,
			    strlen(api_certs_key_usages[i].name));
	yajl_gen_array_close(g);

	json_key(g, "extended_key_usage");
	yajl_gen_array_open(g);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	for (int i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
		const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(eku, i);
		int nid = OBJ_obj2nid(o);

		if (nid != NID_undef)
			api_certs_str(g, OBJ_nid2sn(nid), strlen(OBJ_nid2sn(nid)));
		else if (OBJ_obj2txt(oid, sizeof(oid), o, 1) > 0)
			api_certs_str(g, oid, strlen(oid));
	}
	yajl_gen_array_close(g);
	EXTENDED_KEY_USAGE_free(eku);
}

/* pem, issuer, key, san_uris, key_usage, extended_key_usage from the DER. */
static int
api_certs_parsed(yajl_gen g, const PGresult *res, int i, int col)
{
	unsigned char *der;
	const unsigned char *p;
	size_t len;
	X509 *x = NULL;
	BIO *pem = NULL, *issuer = NULL;
	int rc = -1;

	der = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, col), &len);
	if (der == NULL || len > LONG_MAX)
		goto out;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != der + len)
		goto out;
	if ((pem = BIO_new(BIO_s_mem())) == NULL ||
	    (issuer = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_X509(pem, x) != 1 ||
	    X509_NAME_print_ex(issuer, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) < 0)
		goto out;
	api_certs_bio_str(g, "pem", pem);
	api_certs_bio_str(g, "issuer", issuer);
	api_certs_key(g, x);
	api_certs_sans(g, x);
	api_certs_usages(g, x);
	rc = 0;
out:
	BIO_free(issuer);
	BIO_free(pem);
	X509_free(x);
	PQfreemem(der);
	return rc;
}

/* One certificate row from column col (see certs.h). */
static void
api_certs_fields(yajl_gen g, const PGresult *res, int i, int col)
{
	struct certs_row c;

	certs_decode(res, i, col, &c);
	json_kv_str(g, "serial", c.serial);
	json_kv_str(g, "device_id", c.device_id);
	json_kv_str(g, "subject", c.subject);
	json_kv_str(g, "not_before", c.not_before);
	json_kv_str(g, "not_after", c.not_after);
	json_kv_str(g, "revoked_at", c.revoked_at);
	json_kv_str(g, "revocation_reason", c.revocation_reason >= 0 &&
	    c.revocation_reason < API_CERTS_NREASONS ?
	    api_certs_reasons[c.revocation_reason] : NULL);
}

/* Row 0 with the fields parsed from its DER. */
static void
api_certs_reply_one(struct http_req *hr, const PGresult *res)
{
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	api_certs_fields(g, res, 0, 0);
	if (api_certs_parsed(g, res, 0, CERTS_NCOLS) == -1) {
		yajl_gen_free(g);
		log_warnx("api: certificate %s: stored DER does not parse",
		    PQgetvalue(res, 0, 0));
		http_reply_problem(hr, 500, NULL, "the stored certificate cannot be parsed");
		return;
	}
	yajl_gen_map_close(g);
	http_reply_json(hr, 200, g);
}

static int
api_certs_is_no_device(enum db_status st, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return st == DB_SQL_ERROR && state != NULL && strcmp(state, "P0002") == 0;
}

static void
api_certs_listed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;

	if (api_certs_is_no_device(st, res)) {
		/* /devices/{device}/certificates: 404; ?device= filter: no rows. */
		if (strstr(hr->match.route->pattern, "{device}") != NULL)
			http_reply_problem(hr, 404, NULL, "no such device");
		else
			api_list_end(hr, api_list_begin(), NULL);
		return;
	}
	api_reply_list(hr, st, res, errstr, api_certs_fields, 0);
}

/* ?name=true|false: 0 absent, 1 present (*out set), -1 after 400. */
static int
api_certs_query_bool(struct http_req *hr, const char *name, const char **out)
{
	char buf[API_CERTS_QBUF];
	int rc;

	if ((rc = http_query_param(hr, name, buf, sizeof(buf))) == 0)
		return 0;
	if (rc == 1 && strcmp(buf, "true") == 0)
		*out = "true";
	else if (rc == 1 && strcmp(buf, "false") == 0)
		*out = "false";
	else {
		http_reply_problem(hr, 400, NULL, "query parameter %s must be true or false",
		    name);
		return -1;
	}
	return 1;
}

static void
api_certs_list_for(struct http_req *hr, const char *device)
{
	char after[API_CERTS_QBUF], limit[API_LIMIT_LEN], days_s[16];
	const char *v[7] = { api_project_id_str(hr), device, NULL, NULL, NULL,
	    after, limit };
	long long days;
	int has_days;

	if (api_page(hr, limit, after, sizeof(after)) == -1 ||
	    api_certs_query_bool(hr, "valid", &v[2]) == -1 ||
	    api_query_int(hr, "expiring_within", 1, 3650, &days, &has_days) == -1 ||
	    api_certs_query_bool(hr, "revoked", &v[4]) == -1)
		return;
	if (has_days) {
		snprintf(days_s, sizeof(days_s), "%lld", days);
		v[3] = days_s;
	}
	db_query(hr->srv->db, &certs_list, 7, v, NULL, api_certs_listed, hr);
}

static void
api_certs_list(struct http_req *hr)
{
	char device[API_QUERY_MAX];
	int rc;

	/* An unknown device in the filter simply matches nothing. */
	if ((rc = api_query_str(hr, "device", sizeof(device) - 1, device,
	    "is not valid")) != -1)
		api_certs_list_for(hr, rc ? device : NULL);
}

static void
api_certs_list_device(struct http_req *hr)
{
	char device[API_CERTS_DEVICE_LEN + 1];

	if (api_param(hr, 1, device, sizeof(device)) == -1)
		return;
	api_certs_list_for(hr, device);
}

/* The {serial} path parameter, lower-cased; 404 unless 32 hex digits. */
static int
api_certs_serial(struct http_req *hr, char serial[API_CERTS_SERIAL_LEN + 1])
{
	if (api_param(hr, 1, serial, API_CERTS_SERIAL_LEN + 1) == -1)
		return -1;
	for (char *p = serial; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	if (strlen(serial) != API_CERTS_SERIAL_LEN ||
	    strspn(serial, "0123456789abcdef") != API_CERTS_SERIAL_LEN) {
		http_reply_problem(hr, 404, NULL, "no such certificate");
		return -1;
	}
	return 0;
}

/* 0 when res holds the certificate, -1 after the error reply. */
static int
api_certs_found(struct http_req *hr, enum db_status st, const PGresult *res,
    const char *errstr)
{
	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return -1;
	}
	if (PQntuples(res) != 1) {
		http_reply_problem(hr, 404, NULL, "no such certificate");
		return -1;
	}
	return 0;
}

static void
api_certs_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	if (api_certs_found(arg, st, res, errstr) == 0)
		api_certs_reply_one(arg, res);
}

static void
api_certs_get(struct http_req *hr)
{
	char serial[API_CERTS_SERIAL_LEN + 1];
	const char *v[2] = { api_project_id_str(hr), serial };

	if (api_certs_serial(hr, serial) == -1)
		return;
	db_query(hr->srv->db, &certs_get, 2, v, NULL, api_certs_got, hr);
}

static void
api_certs_revoked(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct http_req *hr = arg;

	if (api_certs_found(hr, st, res, errstr) == -1)
		return;
	if (PQgetvalue(res, 0, CERTS_NCOLS + 1)[0] != 't') {
		http_reply_problem(hr, 409, NULL, "the certificate is already revoked");
		return;
	}
	api_certs_reply_one(hr, res);
}

/* 0 once a known reason is accepted, -1 after the 400 for a refused one. */
static int
api_certs_reason_ok(struct http_req *hr, int code)
{
	if (!API_CERTS_REASON_IS_REFUSED(code))
		return 0;
	http_reply_problem(hr, 400, NULL, "reason %s (%d) is not accepted: it does not"
	    " revoke, and revocation is final", api_certs_reasons[code], code);
	return -1;
}

/* "reason": a name of RFC 5280 or its code; absent: unspecified. */
static int
api_certs_reason(struct http_req *hr, yajl_val body, int *code)
{
	yajl_val v = json_get(body, "reason");

	*code = 0;
	if (v == NULL)
		return 0;
	if (YAJL_IS_STRING(v)) {
		for (int i = 0; i < API_CERTS_NREASONS; i++)
			if (api_certs_reasons[i] != NULL &&
			    strcmp(api_certs_reasons[i], v->u.string) == 0) {
				*code = i;
				return api_certs_reason_ok(hr, i);
			}
	} else if (YAJL_IS_INTEGER(v)) {
		long long n = YAJL_GET_INTEGER(v);

		if (n >= 0 && n < API_CERTS_NREASONS && api_certs_reasons[n] != NULL) {
			*code = (int)n;
			return api_certs_reason_ok(hr, *code);
		}
	} else {
		http_reply_problem(hr, 400, NULL,
		    "field \"reason\" must be a reason name or code");
		return -1;
	}
	http_reply_problem(hr, 422, NULL, "field \"reason\" must be an RFC 5280 reason"
	    " (keyCompromise, superseded, ...) or its code 0-5, 9 or 10");
	return -1;
}

static void
api_certs_revoke(struct http_req *hr)
{
	static const char *const keys[] = { "reason", NULL };
	char serial[API_CERTS_SERIAL_LEN + 1], code_s[8], detail[64];
	const char *v[5] = { api_project_id_str(hr), serial, code_s, api_actor(hr),
	    detail };
	yajl_val body;
	int code;

	if (api_certs_serial(hr, serial) == -1 || (body = api_body_json(hr, keys)) == NULL)
		return;
	if (api_certs_reason(hr, body, &code) == -1) {
		yajl_tree_free(body);
		return;
	}
	yajl_tree_free(body);
	snprintf(code_s, sizeof(code_s), "%d", code);
	snprintf(detail, sizeof(detail), "reason %s", api_certs_reasons[code]);
	db_query(hr->srv->db, &certs_revoke, 5, v, NULL, api_certs_revoked, hr);
}

static const char *const api_certs_list_query[] = {
	API_PAGE_QUERY, "valid", "expiring_within", "revoked", "device", NULL
};
static const char *const api_certs_list_device_query[] = {
	API_PAGE_QUERY, "valid", "expiring_within", "revoked", NULL
};

const struct route api_certs_routes[] = {
	{ "/api/v1/projects/{project}/certificates", EVHTTP_REQ_GET, ROUTE_ADMIN, api_certs_list, AUTH_VIEWER, api_certs_list_query },
	{ "/api/v1/projects/{project}/certificates/{serial}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_certs_get, AUTH_VIEWER, NULL },
	{ "/api/v1/projects/{project}/certificates/{serial}/revoke", EVHTTP_REQ_POST, ROUTE_ADMIN, api_certs_revoke, AUTH_OPERATOR, NULL },
	{ "/api/v1/projects/{project}/devices/{device}/certificates", EVHTTP_REQ_GET, ROUTE_ADMIN, api_certs_list_device, AUTH_VIEWER, api_certs_list_device_query },
};
const size_t api_certs_nroutes = sizeof(api_certs_routes) / sizeof(api_certs_routes[0]);

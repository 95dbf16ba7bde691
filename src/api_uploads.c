/* api_uploads.c: tus 1.0 (core, creation, termination) on the admin
 * listener. An upload belongs to the project named in its Upload-Metadata;
 * every request checks the caller may see that project (404 otherwise, as
 * for any invisible object). A PATCH body is at most images.max_chunk_size
 * (http_conn refuses larger ones before buffering them); its bytes, new
 * offset and SHA-256 state are written in one transaction, and only after
 * the commit does the reply name the new offset. */
#include "api_uploads.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/rand.h>

#include "api.h"
#include "conf.h"
#include "names.h"
#include "server.h"
#include "sha256state.h"
#include "uploads.h"
#include "util.h"
#include "xmalloc.h"

#define API_UPLOADS_TUS		"1.0.0"
#define API_UPLOADS_CT		"application/offset+octet-stream"

/* What a request carries between its queries. */
struct api_uploads_op {
	struct http_req		*hr;
	char			 id[UPLOADS_ID_LEN + 1];
	long long		 project_id;
	long long		 offset;	/* Upload-Offset of a PATCH */
	struct uploads_meta	 meta;		/* POST */
	long long		 length;	/* Upload-Length */
	/* PATCH: the body's length, the piece taken from it (the body drains
	 * as it is stored), and how much is stored */
	unsigned char		*piecebuf;
	size_t			 n;
	size_t			 done;
	size_t			 piece;		/* of the statement in flight */
	struct sha256state	 sha;
};

static void
api_uploads_op_free(struct api_uploads_op *op)
{
	free(op->piecebuf);
	free(op);
}

static struct api_uploads_op *
api_uploads_op(struct http_req *hr)
{
	struct api_uploads_op *op = api_alloc(hr, sizeof(*op));

	op->hr = hr;
	return op;
}

/* A header sent at most once: its value or NULL; *is_repeated when it
 * came twice (which one counts would be a guess: refused). */
static const char *
api_uploads_header(struct http_req *hr, const char *name, int *is_repeated)
{
	struct evkeyval *kv;
	const char *v = NULL;

	*is_repeated = 0;
	if (hr->req == NULL)
		return NULL;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(hr->req), next)
		if (strcasecmp(kv->key, name) == 0) {
			if (v != NULL)
				*is_repeated = 1;
			v = kv->value;
		}
	return v;
}

/* The tus headers, each at most once: 0, or -1 after a 400. */
static int
api_uploads_once(struct http_req *hr)
{
	static const char *const names[] = { "Tus-Resumable", "Upload-Length",
	    "Upload-Offset", "Upload-Metadata", "Content-Type" };
	int is_repeated;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		(void)api_uploads_header(hr, names[i], &is_repeated);
		if (is_repeated) {
			http_reply_problem(hr, 400, NULL, "%s sent more than once",
			    names[i]);
			return -1;
		}
	}
	return 0;
}

/* A decimal header of 0..max: 1, 0 absent, -1 malformed. */
static int
api_uploads_num(struct http_req *hr, const char *name, long long max,
    long long *out)
{
	const char *v = http_header(hr, name), *errstr;

	if (v == NULL)
		return 0;
	if (strspn(v, "0123456789") != strlen(v) || strlen(v) == 0 || strlen(v) > 19)
		return -1;
	*out = util_strtonum(v, 0, max, &errstr);
	return errstr == NULL ? 1 : -1;
}

/* Tus-Resumable on every request but OPTIONS (tus 1.0 "Tus-Resumable"):
 * 412 with the version we speak otherwise. */
static int
api_uploads_tus(struct http_req *hr)
{
	const char *v = http_header(hr, "Tus-Resumable");

	http_add_header(hr, "Tus-Resumable", API_UPLOADS_TUS);
	if (api_uploads_once(hr) == -1)
		return -1;
	if (v != NULL && strcmp(v, API_UPLOADS_TUS) == 0)
		return 0;
	http_add_header(hr, "Tus-Version", API_UPLOADS_TUS);
	http_reply_problem(hr, 412, NULL, "Tus-Resumable: " API_UPLOADS_TUS
	    " is required%s", v == NULL ? "" : "; this server speaks only 1.0.0");
	return -1;
}

/* The {upload} path parameter; 404 unless it can be an upload id. */
static int
api_uploads_param(struct http_req *hr, char id[UPLOADS_ID_LEN + 1])
{
	if (api_param(hr, 0, id, UPLOADS_ID_LEN + 1) == -1)
		return -1;
	if (strlen(id) != UPLOADS_ID_LEN ||
	    strspn(id, NAMES_BASE32_CHARS) != UPLOADS_ID_LEN) {
		http_reply_problem(hr, 404, NULL, "no such upload");
		return -1;
	}
	return 0;
}

static void
api_uploads_id_new(char id[UPLOADS_ID_LEN + 1])
{
	static const char alpha[] = NAMES_BASE32_CHARS;
	unsigned char r[UPLOADS_ID_LEN];

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("RAND_bytes failed");
	for (size_t i = 0; i < UPLOADS_ID_LEN; i++)
		id[i] = alpha[r[i] & 31];	/* 256 = 8 * 32: uniform */
	id[UPLOADS_ID_LEN] = '\0';
}

static void
api_uploads_set_num(struct http_req *hr, const char *name, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	http_add_header(hr, name, buf);
}

/* ---------------------------------------------------------- OPTIONS */

static void
api_uploads_options(struct http_req *hr)
{
	struct conf *cf = hr->srv->conf;

	http_add_header(hr, "Tus-Resumable", API_UPLOADS_TUS);
	http_add_header(hr, "Tus-Version", API_UPLOADS_TUS);
	http_add_header(hr, "Tus-Extension", "creation,termination");
	api_uploads_set_num(hr, "Tus-Max-Size", cf->img_max_size);
	/* Not tus: the largest PATCH body, for clients choosing a chunkSize. */
	api_uploads_set_num(hr, "Quarklink-Max-Chunk-Size", cf->img_max_chunk);
	http_reply(hr, 204, NULL, NULL);
}

/* ---------------------------------------------------------- POST */

static void
api_uploads_created(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;
	char loc[sizeof(API_UPLOADS_PREFIX) + UPLOADS_ID_LEN];

	if (st != DB_OK) {
		free(op);
		api_db_error(hr, st, res, errstr);
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "not_newer") == 0) {
		http_reply_problem(hr, 409, NULL, "image %s of project %s already has"
		    " version %s or a newer one: versions must increase",
		    op->meta.name, op->meta.project, op->meta.version);
		free(op);
		return;
	}
	snprintf(loc, sizeof(loc), API_UPLOADS_PREFIX "%s", op->id);
	free(op);
	http_add_header(hr, "Location", loc);
	http_add_header(hr, "Upload-Offset", "0");
	http_reply(hr, 201, NULL, NULL);
}

static void
api_uploads_project(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;
	struct conf *cf = hr->srv->conf;
	char pid[API_ID_LEN], len[API_ID_LEN], expiry[API_ID_LEN];
	const char *v[11];
	int lengths[11];

	if (st != DB_OK) {
		free(op);
		api_db_error(hr, st, res, errstr);
		return;
	}
	if (PQntuples(res) != 1 || !auth_sees_project(api_auth(hr),
	    api_val_int(res, 0, 0))) {
		free(op);
		http_reply_problem(hr, 404, NULL, "no such project");
		return;
	}
	op->project_id = api_val_int(res, 0, 0);
	api_uploads_id_new(op->id);
	snprintf(pid, sizeof(pid), "%lld", op->project_id);
	snprintf(len, sizeof(len), "%lld", op->length);
	snprintf(expiry, sizeof(expiry), "%lld", cf->img_upload_expiry);
	for (int i = 0; i < 11; i++)
		lengths[i] = -1;
	v[0] = op->id;
	v[1] = pid;
	v[2] = op->meta.name;
	v[3] = op->meta.version;
	v[4] = len;
	v[5] = op->meta.has_sha256 ? (const char *)op->meta.sha256 : NULL;
	lengths[5] = 32;
	v[6] = op->meta.hardware;
	v[7] = op->meta.is_encrypt ? "true" : "false";
	v[8] = op->meta.has_filename ? op->meta.filename : NULL;
	v[9] = api_actor(hr);
	v[10] = expiry;
	if (v[5] == NULL)
		lengths[5] = -1;
	db_query(hr->srv->db, &uploads_create, 11, v, lengths, api_uploads_created, op);
}

static void
api_uploads_create(struct http_req *hr)
{
	struct conf *cf = hr->srv->conf;
	struct api_uploads_op *op;
	const char *errstr;
	struct evbuffer *body;
	int rc;

	if (api_uploads_tus(hr) == -1)
		return;
	op = api_uploads_op(hr);
	if (http_header(hr, "Upload-Defer-Length") != NULL) {
		free(op);
		http_reply_problem(hr, 400, NULL, "Upload-Defer-Length is not"
		    " supported: send Upload-Length");
		return;
	}
	if ((rc = api_uploads_num(hr, "Upload-Length", LLONG_MAX, &op->length)) != 1 ||
	    op->length < 1) {
		free(op);
		http_reply_problem(hr, 400, NULL, "Upload-Length must be a number of"
		    " bytes, at least 1");
		return;
	}
	if (op->length > cf->img_max_size) {
		free(op);
		api_uploads_set_num(hr, "Tus-Max-Size", cf->img_max_size);
		http_reply_problem(hr, 413, NULL, "Upload-Length %s is more than"
		    " Tus-Max-Size %lld", http_header(hr, "Upload-Length"),
		    cf->img_max_size);
		return;
	}
	if ((body = http_body(hr)) != NULL && evbuffer_get_length(body) > 0) {
		free(op);
		http_reply_problem(hr, 400, NULL, "send the bytes with PATCH, not"
		    " with the creation request");
		return;
	}
	if (uploads_meta_parse(http_header(hr, "Upload-Metadata"), &op->meta,
	    &errstr) == -1) {
		free(op);
		http_reply_problem(hr, 400, NULL, "%s", errstr);
		return;
	}
	{
		const char *v[1] = { op->meta.project };

		db_query(hr->srv->db, &uploads_project, 1, v, NULL,
		    api_uploads_project, op);
	}
}

/* ---------------------------------------------------------- lookup */

/* The upload of op->id as uploads_get has it, or NULL after a 404. The
 * caller's project scope decides whether it exists for them. */
static int
api_uploads_found(struct api_uploads_op *op, enum db_status st,
    const PGresult *res, const char *errstr)
{
	struct http_req *hr = op->hr;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return -1;
	}
	if (PQntuples(res) != 1 || !auth_sees_project(api_auth(hr),
	    api_val_int(res, 0, 0))) {
		http_reply_problem(hr, 404, NULL, "no such upload");
		return -1;
	}
	op->project_id = api_val_int(res, 0, 0);
	return 0;
}

static void
api_uploads_lookup(struct http_req *hr, struct api_uploads_op *op, db_cb cb)
{
	const char *v[1] = { op->id };

	db_query(hr->srv->db, &uploads_get, 1, v, NULL, cb, op);
}

/* ---------------------------------------------------------- HEAD */

static void
api_uploads_headed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;

	if (api_uploads_found(op, st, res, errstr) == -1) {
		free(op);
		return;
	}
	free(op);
	http_add_header(hr, "Upload-Offset", PQgetvalue(res, 0, 2));
	http_add_header(hr, "Upload-Length", PQgetvalue(res, 0, 1));
	http_add_header(hr, "Cache-Control", "no-store");
	http_reply(hr, 200, NULL, NULL);
}

static void
api_uploads_head(struct http_req *hr)
{
	struct api_uploads_op *op;

	op = api_uploads_op(hr);
	/* An id that cannot exist is 404 whatever the headers say. */
	if (api_uploads_param(hr, op->id) == -1 || api_uploads_tus(hr) == -1) {
		free(op);
		return;
	}
	api_uploads_lookup(hr, op, api_uploads_headed);
}

/* ---------------------------------------------------------- PATCH */

static void	api_uploads_step(struct api_uploads_op *);

static void
api_uploads_patched(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;
	const char *result;

	if (st != DB_OK) {
		api_uploads_op_free(op);
		api_db_error(hr, st, res, errstr);
		return;
	}
	result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "ok") == 0) {
		op->done += op->piece;
		if (op->done < op->n) {
			api_uploads_step(op);
			return;
		}
		http_add_header(hr, "Upload-Offset", PQgetvalue(res, 0, 1));
		/* Not tus: the image this PATCH completed. */
		if (!PQgetisnull(res, 0, 2))
			http_add_header(hr, "Quarklink-Image-Id",
			    PQgetvalue(res, 0, 2));
		api_uploads_op_free(op);
		http_reply(hr, 204, NULL, NULL);
		return;
	}
	if (strcmp(result, "conflict") == 0)
		http_reply_problem(hr, 409, NULL, "Upload-Offset %lld is not the"
		    " upload's offset %s: ask with HEAD", op->offset + op->done,
		    PQgetvalue(res, 0, 1));
	else if (strcmp(result, "completed") == 0)
		http_reply_problem(hr, 410, NULL, "the upload is complete");
	else if (strcmp(result, "too_long") == 0)
		http_reply_problem(hr, 400, NULL, "the body would pass Upload-Length");
	else if (strcmp(result, "sha256_mismatch") == 0)
		http_reply_problem(hr, 422, NULL, "the bytes do not match the"
		    " announced sha256; the last %zu bytes were not stored (HEAD"
		    " tells the offset)", op->piece);
	else if (strcmp(result, "not_newer") == 0)
		http_reply_problem(hr, 409, NULL, "an image of that name already has"
		    " this version or a newer one: versions must increase");
	else
		http_reply_problem(hr, 404, NULL, "no such upload");
	api_uploads_op_free(op);
}

/* Store the next piece of the body: its rows, the offset after it and the
 * SHA-256 state there, in one transaction. A PATCH is written as pieces of
 * at most UPLOADS_STMT_MAX, one after the other, because libpq moves the
 * rest of its output buffer down after every partial socket write: one
 * statement of a whole 200 MiB PATCH took over 15 s that way (quadratic),
 * pieces of 4 MiB cost a few ms. Each piece is consistent on its own
 * (rows, offset and hash state together), so a crash between pieces
 * leaves a shorter offset that HEAD reports, as tus allows. */
static void
api_uploads_step(struct api_uploads_op *op)
{
	struct http_req *hr = op->hr;
	struct conf *cf = hr->srv->conf;
	unsigned char saved[SHA256STATE_LEN], digest[32];
	char pid[API_ID_LEN], off[API_ID_LEN], expiry[API_ID_LEN];
	const char *v[8];
	int lengths[8] = { -1, -1, -1, 0, SHA256STATE_LEN, 32, -1, -1 };
	long long at = op->offset + (long long)op->done;
	int is_last;

	/* The body belongs to the request: gone with the client. What is
	 * stored stays; HEAD tells where to resume. */
	if (hr->req == NULL) {
		api_uploads_op_free(op);
		http_reply(hr, 499, NULL, NULL);
		return;
	}
	op->piece = op->n - op->done;
	if (op->piece > UPLOADS_STMT_MAX)
		op->piece = UPLOADS_STMT_MAX;
	is_last = at + (long long)op->piece == op->length;
	if (evbuffer_remove(http_body(hr), op->piecebuf, op->piece) !=
	    (int)op->piece) {
		api_uploads_op_free(op);
		http_reply_problem(hr, 500, NULL, "internal error");
		return;
	}
	sha256state_update(&op->sha, op->piecebuf, op->piece);
	sha256state_save(&op->sha, saved);
	if (is_last)
		sha256state_final(&op->sha, digest);
	snprintf(pid, sizeof(pid), "%lld", op->project_id);
	snprintf(off, sizeof(off), "%lld", at);
	snprintf(expiry, sizeof(expiry), "%lld", cf->img_upload_expiry);
	lengths[3] = (int)op->piece;
	v[0] = op->id;
	v[1] = pid;
	v[2] = off;
	v[3] = (const char *)op->piecebuf;
	v[4] = (const char *)saved;
	v[5] = is_last ? (const char *)digest : NULL;
	v[6] = expiry;
	v[7] = api_actor(hr);
	db_query(hr->srv->db, &uploads_patch, 8, v, lengths, api_uploads_patched, op);
}

/* Resume the hash from the stored state, then store the body piece by
 * piece (api_uploads_step). */
static void
api_uploads_write(struct api_uploads_op *op, const PGresult *res)
{
	struct http_req *hr = op->hr;
	struct evbuffer *body = http_body(hr);
	unsigned char *raw = NULL;
	size_t rawlen = 0;
	int is_ok;

	op->n = evbuffer_get_length(body);
	op->length = api_val_int(res, 0, 1);
	if ((long long)op->n > op->length - op->offset) {
		http_reply_problem(hr, 400, NULL, "a body of %zu bytes at offset %s"
		    " would pass Upload-Length %lld", op->n, PQgetvalue(res, 0, 2),
		    op->length);
		free(op);
		return;
	}
	if (PQgetisnull(res, 0, 3))
		sha256state_init(&op->sha);
	else if ((raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 3),
	    &rawlen)) == NULL) {
		free(op);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	is_ok = raw == NULL ? op->offset == 0 :
	    sha256state_load(&op->sha, raw, rawlen, (uint64_t)op->offset) == 0;
	PQfreemem(raw);
	if (!is_ok) {
		log_warnx("upload %s: stored SHA-256 state does not match offset %lld",
		    op->id, op->offset);
		free(op);
		http_reply_problem(hr, 500, NULL, "internal error");
		return;
	}
	op->piecebuf = xmalloc(op->n < UPLOADS_STMT_MAX ? op->n + 1 :
	    UPLOADS_STMT_MAX);
	api_uploads_step(op);
}

static void
api_uploads_patch_found(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;

	if (api_uploads_found(op, st, res, errstr) == -1) {
		free(op);
		return;
	}
	if (hr->req == NULL) {		/* the client left: store nothing */
		free(op);
		http_reply(hr, 499, NULL, NULL);
		return;
	}
	if (!PQgetisnull(res, 0, 4)) {
		free(op);
		http_reply_problem(hr, 410, NULL, "the upload is complete");
		return;
	}
	if (api_val_int(res, 0, 2) != op->offset) {
		http_reply_problem(hr, 409, NULL, "Upload-Offset %lld is not the"
		    " upload's offset %s: ask with HEAD", op->offset,
		    PQgetvalue(res, 0, 2));
		free(op);
		return;
	}
	api_uploads_write(op, res);
}

static void
api_uploads_patch(struct http_req *hr)
{
	struct conf *cf = hr->srv->conf;
	const char *ct = http_header(hr, "Content-Type");
	struct api_uploads_op *op;
	size_t n;

	op = api_uploads_op(hr);
	/* An id that cannot exist is 404 whatever the headers say. */
	if (api_uploads_param(hr, op->id) == -1 || api_uploads_tus(hr) == -1) {
		free(op);
		return;
	}
	if (!util_media_type_is(ct, API_UPLOADS_CT)) {
		free(op);
		http_reply_problem(hr, 415, NULL, "Content-Type must be " API_UPLOADS_CT);
		return;
	}
	if (api_uploads_num(hr, "Upload-Offset", LLONG_MAX, &op->offset) != 1) {
		free(op);
		http_reply_problem(hr, 400, NULL, "Upload-Offset must be a number of bytes");
		return;
	}
	/* http_conn refused larger bodies before reading them; a chunked one
	 * is counted there too. Checked again here, where the limit is used. */
	if ((n = evbuffer_get_length(http_body(hr))) > (size_t)cf->img_max_chunk) {
		free(op);
		http_reply_problem(hr, 413, NULL, "a PATCH body may hold at most %lld"
		    " bytes (images.max_chunk_size)", cf->img_max_chunk);
		return;
	}
	api_uploads_lookup(hr, op, api_uploads_patch_found);
}

/* ---------------------------------------------------------- DELETE */

static void
api_uploads_deleted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;
	const char *result;

	free(op);
	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	result = PQgetvalue(res, 0, 0);
	if (strcmp(result, "ok") == 0) {
		uploads_expiry_kick();
		http_reply(hr, 204, NULL, NULL);
	} else if (strcmp(result, "completed") == 0)
		http_reply_problem(hr, 410, NULL, "the upload is complete: delete"
		    " the image instead");
	else
		http_reply_problem(hr, 404, NULL, "no such upload");
}

static void
api_uploads_delete_found(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct api_uploads_op *op = arg;
	struct http_req *hr = op->hr;
	char pid[API_ID_LEN];
	const char *v[3] = { op->id, pid, NULL };

	if (api_uploads_found(op, st, res, errstr) == -1) {
		free(op);
		return;
	}
	snprintf(pid, sizeof(pid), "%lld", op->project_id);
	v[2] = api_actor(hr);
	db_query(hr->srv->db, &uploads_delete, 3, v, NULL, api_uploads_deleted, op);
}

static void
api_uploads_delete(struct http_req *hr)
{
	struct api_uploads_op *op;

	op = api_uploads_op(hr);
	/* An id that cannot exist is 404 whatever the headers say. */
	if (api_uploads_param(hr, op->id) == -1 || api_uploads_tus(hr) == -1) {
		free(op);
		return;
	}
	api_uploads_lookup(hr, op, api_uploads_delete_found);
}

const struct route api_uploads_routes[] = {
	{ "/api/v1/uploads/", EVHTTP_REQ_OPTIONS, ROUTE_ADMIN, api_uploads_options, AUTH_OPERATOR, NULL },
	{ "/api/v1/uploads/", EVHTTP_REQ_POST, ROUTE_ADMIN, api_uploads_create, AUTH_OPERATOR, NULL },
	{ "/api/v1/uploads/{upload}", EVHTTP_REQ_GET, ROUTE_ADMIN, api_uploads_head, AUTH_OPERATOR, NULL },
	{ "/api/v1/uploads/{upload}", EVHTTP_REQ_PATCH, ROUTE_ADMIN, api_uploads_patch, AUTH_OPERATOR, NULL },
	{ "/api/v1/uploads/{upload}", EVHTTP_REQ_DELETE, ROUTE_ADMIN, api_uploads_delete, AUTH_OPERATOR, NULL },
};
const size_t api_uploads_nroutes = sizeof(api_uploads_routes) / sizeof(api_uploads_routes[0]);

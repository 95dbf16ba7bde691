/* attest.c: attestation records through db.c's asynchronous API; the rules
 * (one try per session, one use per nonce, the reference comparison) are
 * the SQL functions of sql/014_attest.sql. Binary values go as binary
 * parameters and come back base64, decoded next to their SELECT. */
#include "attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xmalloc.h"

static const struct db_stmt attest_project_stmt = {
	"attest_project", "SELECT p.id, p.policy_tpm, p.attest_pcrs,"
	" encode(c.cert_der, 'base64') FROM projects p"
	" LEFT JOIN tpm_cas c ON c.project_id = p.id WHERE p.name = $1"
	" ORDER BY c.id", 1 };
static const struct db_stmt attest_session_insert = {
	"attest_session_insert", "SELECT ql_attest_session_new($1::bigint, $2, $3, $4,"
	" $5, $6, $7, $8::integer)", 8 };
static const struct db_stmt attest_session_try_stmt = {
	"attest_session_try", "SELECT encode(secret_sha256, 'base64'),"
	" encode(nonce, 'base64'), encode(ak_public, 'base64')"
	" FROM ql_attest_session_try($1, $2)", 2 };
static const struct db_stmt attest_session_prove_stmt = {
	"attest_session_prove", "SELECT ql_attest_session_prove($1, $2, $3::integer)", 3 };
static const struct db_stmt attest_quote_challenge_stmt = {
	"attest_quote_challenge", "SELECT ql_quote_challenge($1::bigint, $2, $3,"
	" $4::integer)", 4 };
static const struct db_stmt attest_quote_get_stmt = {
	"attest_quote_get", "SELECT device, pcr_mask, encode(ak_public, 'base64')"
	" FROM ql_quote_get($1::bigint, $2, $3)", 3 };
static const struct db_stmt attest_quote_record_stmt = {
	"attest_quote_record", "SELECT state, reference, differ"
	" FROM ql_quote_record($1::bigint, $2, $3::jsonb)", 3 };

#define ATTEST_CA_COLS "id, subject, encode(sha256, 'hex'), ql_iso(created_at)"
const struct db_stmt attest_cas_list = {
	"attest_cas_list", "SELECT " ATTEST_CA_COLS " FROM tpm_cas"
	" WHERE project_id = $1::bigint AND id > $2::bigint ORDER BY id"
	" LIMIT $3::integer", 3 };
const struct db_stmt attest_ca_add = {
	"attest_ca_add", "SELECT result, id, subject, sha256, created_at"
	" FROM ql_tpm_ca_add($1::bigint, $2, $3, $4)", 4 };
const struct db_stmt attest_ca_delete = {
	"attest_ca_delete", "WITH c AS (DELETE FROM tpm_cas WHERE project_id = $1::bigint"
	" AND id = $2::bigint RETURNING id, project_id, sha256, subject)"
	" SELECT ql_audit($3, 'tpm_ca.delete', c.id::text, 'ok', 'sha256 '"
	" || encode(c.sha256, 'hex') || ' ' || c.subject, c.project_id) FROM c", 3 };

int
attest_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&attest_project_stmt, &attest_session_insert, &attest_session_try_stmt,
		&attest_session_prove_stmt, &attest_quote_challenge_stmt,
		&attest_quote_get_stmt, &attest_quote_record_stmt, &attest_cas_list,
		&attest_ca_add, &attest_ca_delete,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

/* One context for every query: the caller's callback, by kind. */
struct attest_call {
	union {
		attest_cb		 done;
		attest_project_cb	 project;
		attest_tried_cb		 tried;
		attest_mask_cb		 mask;
		attest_quote_ctx_cb	 quote_ctx;
		attest_quote_cb		 quote;
	}		 cb;
	void		*arg;
};

static struct attest_call *
attest_call_new(void *arg)
{
	struct attest_call *c = xcalloc(1, sizeof(*c));

	c->arg = arg;
	return c;
}

/* The failure of a query, or ATTEST_OK to read its rows. */
static enum attest_result
attest_status(enum db_status st)
{
	return st == DB_OK ? ATTEST_OK : st == DB_UNAVAILABLE ? ATTEST_UNAVAILABLE :
	    ATTEST_ERROR;
}

/* A base64 column of exactly want bytes (0: any) into a malloc'd buffer. */
static unsigned char *
attest_col(const PGresult *res, int row, int col, size_t want, size_t *len)
{
	unsigned char *b;

	if (PQgetisnull(res, row, col))
		return NULL;
	b = util_base64_decode(PQgetvalue(res, row, col),
	    (size_t)PQgetlength(res, row, col), len);
	if (b != NULL && want != 0 && *len != want) {
		free(b);
		return NULL;
	}
	return b;
}

/* id, policy_tpm, attest_pcrs, CA (one row per CA, or one NULL). */
static void
attest_project_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	struct attest_project p;
	unsigned char *der[ATTEST_PROJECT_CAS_MAX];
	enum attest_result r;
	int n;

	(void)errstr;
	memset(&p, 0, sizeof(p));
	if ((r = attest_status(st)) != ATTEST_OK || (n = PQntuples(res)) == 0) {
		c->cb.project(r == ATTEST_OK ? ATTEST_NOT_FOUND : r, NULL, c->arg);
		free(c);
		return;
	}
	p.id = db_val_int(res, 0, 0);
	p.is_tpm = db_val_bool(res, 0, 1);
	p.pcrs = (unsigned)db_val_int(res, 0, 2);
	for (int i = 0; i < n && p.nca < ATTEST_PROJECT_CAS_MAX; i++) {
		if ((der[p.nca] = attest_col(res, i, 3, 0, &p.ca_len[p.nca])) == NULL)
			continue;
		p.ca_der[p.nca] = der[p.nca];
		p.nca++;
	}
	c->cb.project(ATTEST_OK, &p, c->arg);
	for (size_t i = 0; i < p.nca; i++)
		free(der[i]);
	free(c);
}

void
attest_project_get(struct db_pool *db, const char *name, attest_project_cb cb,
    void *arg)
{
	struct attest_call *c = attest_call_new(arg);

	c->cb.project = cb;
	db_query(db, &attest_project_stmt, 1, &name, NULL, attest_project_got, c);
}

/* ok | busy */
static void
attest_session_made(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	enum attest_result r = attest_status(st);

	(void)errstr;
	if (r == ATTEST_OK && PQntuples(res) != 1)
		r = ATTEST_ERROR;
	else if (r == ATTEST_OK && strcmp(PQgetvalue(res, 0, 0), "ok") != 0)
		r = ATTEST_BUSY;
	c->cb.done(r, c->arg);
	free(c);
}

void
attest_session_new(struct db_pool *db, const struct attest_session *s,
    attest_cb cb, void *arg)
{
	struct attest_call *c = attest_call_new(arg);
	char pid[24], ttl[16];
	const char *v[8] = { pid, (const char *)s->id, (const char *)s->ek_cert,
	    (const char *)s->ak_public, (const char *)s->ak_name,
	    (const char *)s->secret_sha256, (const char *)s->nonce, ttl };
	int len[8] = { -1, ATTEST_SESSION_LEN, (int)s->ek_cert_len,
	    (int)s->ak_public_len, (int)s->ak_name_len, 32, ATTEST_NONCE_LEN, -1 };

	c->cb.done = cb;
	snprintf(pid, sizeof(pid), "%lld", s->project_id);
	snprintf(ttl, sizeof(ttl), "%d", ATTEST_SESSION_TTL);
	db_query(db, &attest_session_insert, 8, v, len, attest_session_made, c);
}

/* secret_sha256, nonce, ak_public; no row: not a live untried session. */
static void
attest_session_tried(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	struct attest_tried t;
	unsigned char *secret = NULL, *nonce = NULL, *ak = NULL;
	enum attest_result r = attest_status(st);
	size_t n;

	(void)errstr;
	memset(&t, 0, sizeof(t));
	if (r == ATTEST_OK && PQntuples(res) == 0)
		r = ATTEST_NOT_FOUND;
	else if (r == ATTEST_OK &&
	    ((secret = attest_col(res, 0, 0, 32, &n)) == NULL ||
	    (nonce = attest_col(res, 0, 1, ATTEST_NONCE_LEN, &n)) == NULL ||
	    (ak = attest_col(res, 0, 2, 0, &t.ak_public_len)) == NULL))
		r = ATTEST_ERROR;
	if (r == ATTEST_OK) {
		memcpy(t.secret_sha256, secret, 32);
		memcpy(t.nonce, nonce, ATTEST_NONCE_LEN);
		t.ak_public = ak;
	}
	c->cb.tried(r, r == ATTEST_OK ? &t : NULL, c->arg);
	free(secret);
	free(nonce);
	free(ak);
	free(c);
}

void
attest_session_try(struct db_pool *db, const char *project,
    const unsigned char id[ATTEST_SESSION_LEN], attest_tried_cb cb, void *arg)
{
	struct attest_call *c = attest_call_new(arg);
	const char *v[2] = { project, (const char *)id };
	int len[2] = { -1, ATTEST_SESSION_LEN };

	c->cb.tried = cb;
	db_query(db, &attest_session_try_stmt, 2, v, len, attest_session_tried, c);
}

/* One boolean: false when the session is no longer the tried one. */
static void
attest_done_bool(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	enum attest_result r = attest_status(st);

	(void)errstr;
	if (r == ATTEST_OK && (PQntuples(res) != 1 || !db_val_bool(res, 0, 0)))
		r = ATTEST_NOT_FOUND;
	c->cb.done(r, c->arg);
	free(c);
}

void
attest_session_prove(struct db_pool *db, const unsigned char id[ATTEST_SESSION_LEN],
    const unsigned char spki_sha256[32], attest_cb cb, void *arg)
{
	struct attest_call *c = attest_call_new(arg);
	char ttl[16];
	const char *v[3] = { (const char *)id, (const char *)spki_sha256, ttl };
	int len[3] = { ATTEST_SESSION_LEN, 32, -1 };

	c->cb.done = cb;
	snprintf(ttl, sizeof(ttl), "%d", ATTEST_SESSION_TTL);
	db_query(db, &attest_session_prove_stmt, 3, v, len, attest_done_bool, c);
}

/* The mask, or NULL: no quote asked. */
static void
attest_quote_asked(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	enum attest_result r = attest_status(st);
	unsigned mask = 0;

	(void)errstr;
	if (r == ATTEST_OK && (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)))
		r = ATTEST_NOT_FOUND;
	else if (r == ATTEST_OK)
		mask = (unsigned)db_val_int(res, 0, 0);
	c->cb.mask(r, mask, c->arg);
	free(c);
}

void
attest_quote_challenge(struct db_pool *db, long long ca_id, const char *serial,
    const unsigned char nonce[ATTEST_NONCE_LEN], attest_mask_cb cb, void *arg)
{
	struct attest_call *c = attest_call_new(arg);
	char ca[24], ttl[16];
	const char *v[4] = { ca, serial, (const char *)nonce, ttl };
	int len[4] = { -1, -1, ATTEST_NONCE_LEN, -1 };

	c->cb.mask = cb;
	snprintf(ca, sizeof(ca), "%lld", ca_id);
	snprintf(ttl, sizeof(ttl), "%d", ATTEST_QUOTE_TTL);
	db_query(db, &attest_quote_challenge_stmt, 4, v, len, attest_quote_asked, c);
}

/* device, pcr_mask, ak_public; no row: the nonce is not live. */
static void
attest_quote_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	struct attest_quote_ctx q;
	unsigned char *ak = NULL;
	enum attest_result r = attest_status(st);

	(void)errstr;
	memset(&q, 0, sizeof(q));
	if (r == ATTEST_OK && PQntuples(res) != 1)
		r = ATTEST_NOT_FOUND;
	else if (r == ATTEST_OK && (ak = attest_col(res, 0, 2, 0, &q.ak_public_len)) == NULL)
		r = ATTEST_ERROR;
	if (r == ATTEST_OK) {
		q.device = db_val_int(res, 0, 0);
		q.mask = (unsigned)db_val_int(res, 0, 1);
		q.ak_public = ak;
	}
	c->cb.quote_ctx(r, r == ATTEST_OK ? &q : NULL, c->arg);
	free(ak);
	free(c);
}

void
attest_quote_get(struct db_pool *db, long long ca_id, const char *serial,
    const unsigned char nonce[ATTEST_NONCE_LEN], attest_quote_ctx_cb cb, void *arg)
{
	struct attest_call *c = attest_call_new(arg);
	char ca[24];
	const char *v[3] = { ca, serial, (const char *)nonce };
	int len[3] = { -1, -1, ATTEST_NONCE_LEN };

	c->cb.quote_ctx = cb;
	snprintf(ca, sizeof(ca), "%lld", ca_id);
	db_query(db, &attest_quote_get_stmt, 3, v, len, attest_quote_got, c);
}

/* state, reference, differ; state 'stale': the nonce went meanwhile. */
static void
attest_quote_recorded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct attest_call *c = arg;
	struct attest_quote_result q;
	enum attest_result r = attest_status(st);

	(void)errstr;
	if (r == ATTEST_OK && PQntuples(res) != 1)
		r = ATTEST_ERROR;
	else if (r == ATTEST_OK && strcmp(PQgetvalue(res, 0, 0), "stale") == 0)
		r = ATTEST_NOT_FOUND;
	if (r == ATTEST_OK) {
		q.state = PQgetvalue(res, 0, 0);
		q.reference = PQgetvalue(res, 0, 1);
		q.differ = PQgetvalue(res, 0, 2);
	}
	c->cb.quote(r, r == ATTEST_OK ? &q : NULL, c->arg);
	free(c);
}

/* {"<pcr>": "<hex>", ...} as jsonb text: digits and hex only. */
static char *
attest_pcrs_json(const struct attest_pcrs *pcrs)
{
	char *out = xmalloc(ATTEST_PCR_MAX * (8 + 64 + 4) + 3), *p = out;

	*p++ = '{';
	for (int i = 0; i < ATTEST_PCR_MAX; i++) {
		if (!(pcrs->mask & (1u << i)))
			continue;
		if (p != out + 1)
			*p++ = ',';
		p += snprintf(p, 8, "\"%d\":\"", i);
		util_hex(pcrs->value[i], 32, p);
		p += 64;
		*p++ = '"';
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

void
attest_quote_record(struct db_pool *db, long long device,
    const unsigned char nonce[ATTEST_NONCE_LEN], const struct attest_pcrs *pcrs,
    attest_quote_cb cb, void *arg)
{
	struct attest_call *c = attest_call_new(arg);
	char dev[24], *json = attest_pcrs_json(pcrs);
	const char *v[3] = { dev, (const char *)nonce, json };
	int len[3] = { -1, ATTEST_NONCE_LEN, -1 };

	c->cb.quote = cb;
	snprintf(dev, sizeof(dev), "%lld", device);
	db_query(db, &attest_quote_record_stmt, 3, v, len, attest_quote_recorded, c);
	free(json);
}

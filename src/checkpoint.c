/* checkpoint.c: signed checkpoints of the audit log. The key is made on the
 * token like the root (sensitive, never extractable, sign only); what is
 * signed is the text ql_audit_checkpoint_text() builds in SQL, so a
 * verifier rebuilds it from the served fields. Every token operation (key
 * generation and loading, the signature) runs on a token worker (tok.c);
 * verification uses a software copy of the public key, on the loop. */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "conf.h"
#include "log.h"
#include "p11.h"
#include "server.h"
#include "tok.h"
#include "xmalloc.h"
#include "util.h"

#define CHECKPOINT_COLS "id, rows, last_id, encode(head, 'hex'), ql_iso(at), signed_data," \
	" translate(encode(signature, 'base64'), E'\\n', '')"

const struct db_stmt checkpoint_latest = {
	"checkpoint_latest", "SELECT " CHECKPOINT_COLS " FROM audit_checkpoints"
	" ORDER BY id DESC LIMIT 1", 0 };
static const struct db_stmt checkpoint_head = {
	"checkpoint_head", "SELECT rows, last_id, encode(head, 'hex'), at::text,"
	" signed_data, is_unchanged, prev_id, prev_state, prev_signed,"
	" prev_signature FROM ql_audit_head()", 0 };
static const struct db_stmt checkpoint_insert = {
	"checkpoint_insert", "INSERT INTO audit_checkpoints (rows, last_id, head, at,"
	" signed_data, signature) VALUES ($1::bigint, $2::bigint, decode($3, 'hex'),"
	" $4::timestamptz, $5, $6) RETURNING " CHECKPOINT_COLS, 6 };
static const struct db_stmt checkpoint_key_get = {
	"checkpoint_key_get", "SELECT key_label, encode(public_key, 'hex')"
	" FROM audit_checkpoint_key", 0 };
static const struct db_stmt checkpoint_key_insert = {
	"checkpoint_key_insert", "INSERT INTO audit_checkpoint_key (key_label,"
	" public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2 };

struct checkpoint {
	struct server		*srv;
	EVP_PKEY		*priv;		/* refers to the token key */
	EVP_PKEY		*pub;
	char			*pem;
	struct event		*timer;
	checkpoint_done_cb	 start_cb;
	void			*start_arg;
	int			 is_created;	/* we generated the key this start */
};

struct checkpoint_job {
	struct checkpoint	*cp;
	int			 is_periodic;
	checkpoint_cb		 cb;
	void			*arg;
	/* The head to sign, copied out of its result for the worker. */
	char			*values[5];
	unsigned char		*sig;
	size_t			 siglen;
};

/* Key work on a token worker: generate (label set) and/or load. */
struct checkpoint_key_job {
	struct checkpoint	*cp;
	char			 label[128];
	int			 is_new;
	EVP_PKEY		*priv;
	EVP_PKEY		*pub;		/* software copy */
	unsigned char		*der;		/* SubjectPublicKeyInfo */
	int			 derlen;
	char			 stored_hex[256];
	char			 err[256];
};

int
checkpoint_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&checkpoint_latest, &checkpoint_head, &checkpoint_insert,
		&checkpoint_key_get, &checkpoint_key_insert,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

const char *
checkpoint_algorithm(void)
{
	return "ecdsa-with-SHA256";
}

const char *
checkpoint_public_pem(struct server *srv)
{
	return srv->checkpoint && srv->checkpoint->pem ? srv->checkpoint->pem : "";
}

/* The only signature here: SHA-256 over data with the token key. */
static int
checkpoint_sign(struct checkpoint *cp, const char *data, unsigned char **sig,
    size_t *siglen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = -1;

	*sig = NULL;
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, cp->priv) != 1 ||
	    EVP_DigestSign(md, NULL, siglen, (const unsigned char *)data,
	    strlen(data)) != 1 || (*sig = OPENSSL_malloc(*siglen)) == NULL ||
	    EVP_DigestSign(md, *sig, siglen, (const unsigned char *)data,
	    strlen(data)) != 1)
		goto out;
	rc = 0;
out:
	if (rc == -1) {
		OPENSSL_free(*sig);
		*sig = NULL;
	}
	EVP_MD_CTX_free(md);
	return rc;
}

int
checkpoint_verify(struct server *srv, const char *data, const char *sig_hex)
{
	EVP_MD_CTX *md = NULL;
	unsigned char *sig = NULL;
	long siglen;
	int ok = 0;

	if (srv->checkpoint == NULL || srv->checkpoint->pub == NULL ||
	    (sig = OPENSSL_hexstr2buf(sig_hex, &siglen)) == NULL ||
	    (md = EVP_MD_CTX_new()) == NULL)
		goto out;
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, srv->checkpoint->pub) == 1 &&
	    EVP_DigestVerify(md, sig, (size_t)siglen, (const unsigned char *)data,
	    strlen(data)) == 1;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_free(sig);
	return ok;
}

static void
checkpoint_job_end(struct checkpoint_job *j, enum checkpoint_status st,
    const PGresult *res, const char *err)
{
	if (j->cb != NULL)
		j->cb(st, res, err, j->arg);
	else if (st != CHECKPOINT_MADE && st != CHECKPOINT_UNCHANGED)
		log_warnx("audit: checkpoint not made: %s", err);
	for (int i = 0; i < 5; i++)
		free(j->values[i]);
	OPENSSL_free(j->sig);
	free(j);
}

static void
checkpoint_sign_run(void *arg)
{
	struct checkpoint_job *j = arg;

	if (checkpoint_sign(j->cp, j->values[4], &j->sig, &j->siglen) == -1)
		j->sig = NULL;
}

static void	checkpoint_inserted(enum db_status, const PGresult *, const char *,
		    void *);

static void
checkpoint_sign_done(void *arg, int is_cancelled)
{
	struct checkpoint_job *j = arg;
	const char *v[6];
	int len[6] = { -1, -1, -1, -1, -1, 0 };

	if (is_cancelled) {
		checkpoint_job_end(j, CHECKPOINT_UNAVAILABLE, NULL, WORK_CANCELLED_MSG);
		return;
	}
	if (j->sig == NULL) {
		checkpoint_job_end(j, CHECKPOINT_ERROR, NULL, "cannot sign on the token");
		return;
	}
	for (int i = 0; i < 5; i++)
		v[i] = j->values[i];
	v[5] = (const char *)j->sig;
	len[5] = (int)j->siglen;
	db_query(j->cp->srv->db, &checkpoint_insert, 6, v, len, checkpoint_inserted, j);
}

static void
checkpoint_inserted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct checkpoint_job *j = arg;

	if (st != DB_OK || PQntuples(res) != 1) {
		checkpoint_job_end(j, st == DB_UNAVAILABLE ? CHECKPOINT_UNAVAILABLE :
		    CHECKPOINT_ERROR, NULL, db_errstr(st, errstr));
		return;
	}
	log_info("audit: checkpoint %s: %s rows", PQgetvalue(res, 0, 0),
	    PQgetvalue(res, 0, 1));
	checkpoint_job_end(j, CHECKPOINT_MADE, res, NULL);
}

/* Does the log extend the latest checkpoint? Its state from SQL, and its
 * signature checked here with the token's key. */
static int
checkpoint_extends(struct checkpoint *cp, const PGresult *res, char *err,
    size_t errlen)
{
	const char *state = PQgetvalue(res, 0, 7);
	int ok;

	if (strcmp(state, "none") == 0)
		return 1;
	ok = strcmp(state, "ok") == 0 && checkpoint_verify(cp->srv,
	    PQgetvalue(res, 0, 8), PQgetvalue(res, 0, 9));
	if (!ok)
		snprintf(err, errlen, "the audit log does not extend checkpoint %s (%s);"
		    " not signed", PQgetvalue(res, 0, 6),
		    strcmp(state, "ok") == 0 ? "bad signature" : state);
	return ok;
}

static void
checkpoint_head_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct checkpoint_job *j = arg;
	char err[256];

	if (st != DB_OK || PQntuples(res) != 1) {
		checkpoint_job_end(j, st == DB_UNAVAILABLE ? CHECKPOINT_UNAVAILABLE :
		    CHECKPOINT_ERROR, NULL, db_errstr(st, errstr));
		return;
	}
	if (j->is_periodic && strcmp(PQgetvalue(res, 0, 5), "t") == 0) {
		checkpoint_job_end(j, CHECKPOINT_UNCHANGED, NULL, NULL);
		return;
	}
	if (!checkpoint_extends(j->cp, res, err, sizeof(err))) {
		log_warnx("audit: %s", err);
		checkpoint_job_end(j, CHECKPOINT_REFUSED, NULL, err);
		return;
	}
	for (int i = 0; i < 5; i++)
		if (!PQgetisnull(res, 0, i))
			j->values[i] = xstrdup(PQgetvalue(res, 0, i));
	if (j->values[4] == NULL) {
		checkpoint_job_end(j, CHECKPOINT_ERROR, NULL, "no text to sign");
		return;
	}
	if (tok_submit(checkpoint_sign_run, checkpoint_sign_done, j) == -1)
		checkpoint_job_end(j, CHECKPOINT_UNAVAILABLE, NULL, "token busy");
}

static void
checkpoint_run(struct checkpoint *cp, int is_periodic, checkpoint_cb cb, void *arg)
{
	struct checkpoint_job *j = xcalloc(1, sizeof(*j));

	j->cp = cp;
	j->is_periodic = is_periodic;
	j->cb = cb;
	j->arg = arg;
	db_query(cp->srv->db, &checkpoint_head, 0, NULL, NULL, checkpoint_head_got, j);
}

void
checkpoint_make(struct server *srv, checkpoint_cb cb, void *arg)
{
	if (srv->checkpoint == NULL || srv->checkpoint->priv == NULL) {
		cb(CHECKPOINT_ERROR, NULL, "no checkpoint key", arg);
		return;
	}
	checkpoint_run(srv->checkpoint, 0, cb, arg);
}

static void
checkpoint_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	checkpoint_run(arg, 1, NULL, NULL);
}

static void
checkpoint_start_end(struct checkpoint *cp, const char *err)
{
	cp->start_cb(err, cp->start_arg);
}

/* Ready once the start's checkpoint is in, so nothing changes under a
 * client that starts right after readiness. */
static void
checkpoint_first_done(enum checkpoint_status st, const PGresult *res,
    const char *err, void *arg)
{
	(void)res;
	if (st != CHECKPOINT_MADE && st != CHECKPOINT_UNCHANGED)
		log_warnx("audit: checkpoint not made: %s", err);
	checkpoint_start_end(arg, NULL);
}

/* The key is loaded and matches the record: keep its PEM, start the timer,
 * and sign the head once so a restart leaves an anchor. */
static void
checkpoint_ready(struct checkpoint *cp)
{
	struct timeval tv = { (time_t)cp->srv->conf->ca_audit_checkpoint_interval, 0 };
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (b == NULL || PEM_write_bio_PUBKEY(b, cp->pub) != 1 ||
	    (n = BIO_get_mem_data(b, &p)) <= 0) {
		BIO_free(b);
		checkpoint_start_end(cp, "cannot encode the checkpoint key");
		return;
	}
	cp->pem = xmalloc(n + 1);
	memcpy(cp->pem, p, n);
	cp->pem[n] = '\0';
	BIO_free(b);
	if ((cp->timer = event_new(cp->srv->base, -1, EV_PERSIST, checkpoint_tick,
	    cp)) == NULL || event_add(cp->timer, &tv) == -1) {
		checkpoint_start_end(cp, "cannot start the checkpoint timer");
		return;
	}
	checkpoint_run(cp, 1, checkpoint_first_done, cp);
}

static void	checkpoint_key_load(struct checkpoint *);

static void
checkpoint_key_inserted(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct checkpoint *cp = arg;

	(void)res;
	if (st != DB_OK) {
		checkpoint_start_end(cp, db_errstr(st, errstr));
		return;
	}
	checkpoint_key_load(cp);	/* whoever stored it first */
}

static void
checkpoint_key_job_free(struct checkpoint_key_job *k)
{
	EVP_PKEY_free(k->priv);
	EVP_PKEY_free(k->pub);
	OPENSSL_free(k->der);
	free(k);
}

/* On a token worker. The public key is kept as a software copy so that
 * verification on the loop never reaches the token. */
static void
checkpoint_key_run(void *arg)
{
	struct checkpoint_key_job *k = arg;
	struct p11 *p = k->cp->srv->p11;
	const unsigned char *d;
	EVP_PKEY *tokpub;

	if (k->is_new && p11_generate_key(p, k->label, P11_KEY_EC_P256, k->err,
	    sizeof(k->err)) == -1)
		return;
	if (!k->is_new && (k->priv = p11_load_private(p, k->label, k->err,
	    sizeof(k->err))) == NULL)
		return;
	if ((tokpub = p11_load_public(p, k->label, k->err, sizeof(k->err))) == NULL)
		return;
	k->derlen = i2d_PUBKEY(tokpub, &k->der);
	EVP_PKEY_free(tokpub);
	d = k->der;
	if (k->derlen <= 0 || (k->pub = d2i_PUBKEY(NULL, &d, k->derlen)) == NULL)
		snprintf(k->err, sizeof(k->err), "cannot encode the checkpoint key");
}

static void
checkpoint_key_created(void *arg, int is_cancelled)
{
	struct checkpoint_key_job *k = arg;
	struct checkpoint *cp = k->cp;
	const char *v[2];
	int len[2] = { -1, 0 };

	if (is_cancelled)
		snprintf(k->err, sizeof(k->err), "%s", WORK_CANCELLED_MSG);
	if (is_cancelled || k->pub == NULL) {
		checkpoint_start_end(cp, k->err);
		checkpoint_key_job_free(k);
		return;
	}
	cp->is_created = 1;
	v[0] = k->label;
	v[1] = (const char *)k->der;
	len[1] = k->derlen;
	db_query(cp->srv->db, &checkpoint_key_insert, 2, v, len,
	    checkpoint_key_inserted, cp);
	checkpoint_key_job_free(k);
}

static void
checkpoint_key_create(struct checkpoint *cp)
{
	struct checkpoint_key_job *k = xcalloc(1, sizeof(*k));

	/* A unique label: an earlier failed start may have left a key. */
	if (p11_label_new("ql-audit", k->label, sizeof(k->label)) == -1) {
		free(k);
		checkpoint_start_end(cp, "no randomness");
		return;
	}
	k->cp = cp;
	k->is_new = 1;
	if (tok_submit_urgent(checkpoint_key_run, checkpoint_key_created, k) == -1) {
		free(k);
		checkpoint_start_end(cp, "cannot reach the token workers");
	}
}

static void
checkpoint_key_loaded(void *arg, int is_cancelled)
{
	struct checkpoint_key_job *k = arg;
	struct checkpoint *cp = k->cp;
	char hex[256];

	if (is_cancelled)
		snprintf(k->err, sizeof(k->err), "%s", WORK_CANCELLED_MSG);
	if (is_cancelled || k->priv == NULL || k->pub == NULL) {
		checkpoint_start_end(cp, k->err);
		checkpoint_key_job_free(k);
		return;
	}
	/* The token is the authority; a record that differs was changed. */
	if ((size_t)k->derlen * 2 >= sizeof(hex)) {
		checkpoint_start_end(cp, "cannot encode the checkpoint key");
		checkpoint_key_job_free(k);
		return;
	}
	util_hex(k->der, (size_t)k->derlen, hex);
	if (strcmp(hex, k->stored_hex) != 0) {
		checkpoint_start_end(cp, "the checkpoint key on the token does not match"
		    " the database's record");
		checkpoint_key_job_free(k);
		return;
	}
	cp->priv = k->priv;
	cp->pub = k->pub;
	k->priv = k->pub = NULL;
	if (cp->is_created)
		log_info("audit: checkpoint key %s created", k->label);
	checkpoint_key_job_free(k);
	checkpoint_ready(cp);
}

static void
checkpoint_key_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct checkpoint *cp = arg;
	struct checkpoint_key_job *k;

	if (st != DB_OK) {
		checkpoint_start_end(cp, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) == 0) {
		checkpoint_key_create(cp);
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->cp = cp;
	snprintf(k->label, sizeof(k->label), "%s", PQgetvalue(res, 0, 0));
	snprintf(k->stored_hex, sizeof(k->stored_hex), "%s", PQgetvalue(res, 0, 1));
	if (tok_submit_urgent(checkpoint_key_run, checkpoint_key_loaded, k) == -1) {
		free(k);
		checkpoint_start_end(cp, "cannot reach the token workers");
	}
}

static void
checkpoint_key_load(struct checkpoint *cp)
{
	db_query(cp->srv->db, &checkpoint_key_get, 0, NULL, NULL, checkpoint_key_got, cp);
}

void
checkpoint_start(struct server *srv, checkpoint_done_cb cb, void *arg)
{
	struct checkpoint *cp = xcalloc(1, sizeof(*cp));

	cp->srv = srv;
	cp->start_cb = cb;
	cp->start_arg = arg;
	srv->checkpoint = cp;
	checkpoint_key_load(cp);
}

void
checkpoint_stop(struct server *srv)
{
	struct checkpoint *cp = srv->checkpoint;

	if (cp == NULL)
		return;
	if (cp->timer != NULL)
		event_free(cp->timer);
	EVP_PKEY_free(cp->priv);
	EVP_PKEY_free(cp->pub);
	free(cp->pem);
	free(cp);
	srv->checkpoint = NULL;
}

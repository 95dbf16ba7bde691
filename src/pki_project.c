/* pki_project.c: a project's CAs come into being here (two key pairs on
 * the token, an issuing and a code-signing certificate from the root, one
 * SQL function that records project and CAs together) and their keys go
 * away here once the project's rows are gone. No key is left behind by a
 * creation that fails; token work runs on tok.c's workers. */
#include "pki_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "names.h"
#include "server.h"
#include "tok.h"
#include "xmalloc.h"

static const struct db_stmt pki_project_exists = {
	"pki_project_exists", "SELECT 1 FROM projects WHERE name = $1", 1 };
static const struct db_stmt pki_project_insert = {
	"pki_project_insert", "SELECT ql_create_project($1, $2, $3, $4, $15::boolean, $5,"
	" $6, $7, $8, to_timestamp($9::float8), $10, $11, $12, to_timestamp($13::float8),"
	" $14)", 15 };

/* What one certificate of the project carries into the insert. */
struct pki_project_cert {
	char		 label[128];	/* set before the key exists */
	unsigned char	*der;
	int		 derlen;
	char		 subject[256];
	char		 notafter[32];
};

struct pki_create {
	struct pki		*pki;
	char			 name[64];
	char			 actor[160];
	int			 validity_days;
	int			 policy[4];	/* token, allowlist, approval, tpm */
	struct pki_project_cert	 certs[2];	/* issuing CA, code signing */
	int			 is_made;
	char			 err[256];
	pki_create_cb		 cb;
	void			*arg;
};

/* Token keys whose project is not (or no longer) in the database. */
struct pki_create;

struct pki_destroy {
	struct pki		*pki;
	char			 labels[2][128];
	char			 errs[2][256];	/* "" when destroyed; logged on the loop */
	/* A failed creation answers once its keys are gone, so no caller
	 * sees a key its refusal left behind. */
	struct pki_create	*c;
	enum pki_create_status	 st;
	char			 msg[256];
	/* Or a deletion's caller, told once the keys are gone. */
	pki_done_cb		 done_cb;
	void			*done_arg;
};

static void	pki_project_free(struct pki_create *);

int
pki_project_register(struct pki *pki)
{
	static const struct db_stmt *const s[] = {
		&pki_project_exists, &pki_project_insert,
	};

	return db_register_all(pki->srv->db, s, sizeof(s) / sizeof(s[0]));
}

static void
pki_project_destroy_run(void *arg)
{
	struct pki_destroy *d = arg;

	for (size_t i = 0; i < 2; i++)
		if (d->labels[i][0] != '\0' && p11_destroy_key(d->pki->srv->p11,
		    d->labels[i], d->errs[i], sizeof(d->errs[i])) == -1 &&
		    d->errs[i][0] == '\0')
			snprintf(d->errs[i], sizeof(d->errs[i]), "cannot destroy a key");
}

static void
pki_project_destroy_done(void *arg, int is_cancelled)
{
	struct pki_destroy *d = arg;

	for (size_t i = 0; i < 2; i++) {
		if (d->labels[i][0] == '\0')
			continue;
		if (is_cancelled) {
			log_warnx("pki: token key %s left behind: %s", d->labels[i],
			    WORK_CANCELLED_MSG);
			snprintf(d->errs[i], sizeof(d->errs[i]), "%s", WORK_CANCELLED_MSG);
		} else if (d->errs[i][0] != '\0')
			log_warnx("pki: %s", d->errs[i]);
		else
			log_info("pki: token key %s destroyed", d->labels[i]);
	}
	if (d->c != NULL) {
		d->c->cb(d->st, d->msg, d->c->arg);
		pki_project_free(d->c);
	}
	if (d->done_cb != NULL)
		d->done_cb(d->errs[0][0] ? d->errs[0] : d->errs[1][0] ? d->errs[1] :
		    NULL, d->done_arg);
	free(d);
}

/* Destroy the keys on a worker; then, when c is set, answer its creation
 * with st and msg and free it. */
static struct pki_destroy *
pki_project_destroy_new(struct pki *pki, const char *a, const char *b,
    struct pki_create *c, enum pki_create_status st, const char *msg)
{
	struct pki_destroy *d = xcalloc(1, sizeof(*d));

	d->pki = pki;
	snprintf(d->labels[0], sizeof(d->labels[0]), "%s", a);
	snprintf(d->labels[1], sizeof(d->labels[1]), "%s", b);
	d->c = c;
	d->st = st;
	snprintf(d->msg, sizeof(d->msg), "%s", msg != NULL ? msg : "");
	return d;
}

static void
pki_project_destroy(struct pki *pki, const char *a, const char *b,
    struct pki_create *c, enum pki_create_status st, const char *msg)
{
	struct pki_destroy *d = pki_project_destroy_new(pki, a, b, c, st, msg);

	if (tok_submit_urgent(pki_project_destroy_run, pki_project_destroy_done,
	    d) == 0)
		return;
	free(d);
	log_warnx("pki: token keys %s %s left behind", a, b);
	if (c != NULL) {
		c->cb(st, msg, c->arg);
		pki_project_free(c);
	}
}

void
pki_project_keys_destroy(struct pki *pki, const char *csv, pki_done_cb cb,
    void *arg)
{
	char labels[2][128] = { "", "" };
	struct pki_destroy *d;
	size_t n = 0, len;
	const char *p = csv, *e;

	/* A project has two keys (issuing CA, code signing). */
	while (p != NULL && *p != '\0' && n < 2) {
		e = strchr(p, ',');
		len = e ? (size_t)(e - p) : strlen(p);
		if (len > 0 && len < sizeof(labels[0])) {
			memcpy(labels[n], p, len);
			labels[n++][len] = '\0';
		}
		p = e ? e + 1 : NULL;
	}
	if (n == 0) {
		if (cb != NULL)
			cb(NULL, arg);
		return;
	}
	d = pki_project_destroy_new(pki, labels[0], labels[1], NULL, PKI_CREATED,
	    NULL);
	d->done_cb = cb;
	d->done_arg = arg;
	if (tok_submit_urgent(pki_project_destroy_run, pki_project_destroy_done,
	    d) == -1) {
		log_warnx("pki: token keys %s left behind", csv);
		free(d);
		if (cb != NULL)
			cb("cannot reach the token workers", arg);
	}
}

static void
pki_project_free(struct pki_create *c)
{
	for (int i = 0; i < 2; i++)
		OPENSSL_free(c->certs[i].der);
	free(c);
}

static void
pki_project_inserted(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_create *c = arg;
	const char *state;

	if (st == DB_OK) {
		c->cb(PKI_CREATED, NULL, c->arg);
		pki_project_free(c);
		return;
	}
	state = st == DB_SQL_ERROR ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* An SQL error rolled the insert back: the keys belong to nothing.
	 * A concurrent creation of the same name won the unique index. */
	if (st == DB_SQL_ERROR) {
		if (state != NULL && strcmp(state, "23505") == 0)
			pki_project_destroy(c->pki, c->certs[0].label, c->certs[1].label,
			    c, PKI_CREATE_EXISTS, "project already exists");
		else
			pki_project_destroy(c->pki, c->certs[0].label, c->certs[1].label,
			    c, PKI_CREATE_FAILED, db_errstr(st, errstr));
		return;
	}
	/* Lost in flight (DB_UNAVAILABLE), it may have committed: keep them. */
	log_warnx("pki: project %s: keys %s and %s may be orphans: %s",
	    c->name, c->certs[0].label, c->certs[1].label, db_errstr(st, errstr));
	c->cb(PKI_CREATE_FAILED, db_errstr(st, errstr), c->arg);
	pki_project_free(c);
}

/* On a token worker: one key pair and the root's certificate for it. */
static int
pki_project_cert_make(struct pki_create *c, enum ca_profile prof,
    struct pki_project_cert *out)
{
	char cn[128], prefix[96], serial[CA_SERIAL_HEX];
	EVP_PKEY *priv = NULL, *pub = NULL;
	X509 *cert = NULL;
	struct ca_request r = {
		.profile = prof, .cn = cn, .org = c->name,
		.issuer = &c->pki->root->signer,
		.days = prof == CA_PROFILE_ISSUING ? 3652 : 1826,
	};
	int rc = -1;

	snprintf(cn, sizeof(cn), "quarklink %s %s", c->name,
	    prof == CA_PROFILE_ISSUING ? "issuing CA" : "code signing");
	snprintf(prefix, sizeof(prefix), "ql-%s-%s", c->name,
	    prof == CA_PROFILE_ISSUING ? "ca" : "sign");
	if (pki_new_key(c->pki, prefix, out->label, sizeof(out->label), &priv, &pub,
	    c->err, sizeof(c->err)) == -1)
		return -1;
	r.pubkey = pub;
	if ((cert = ca_issue(&r, serial, c->err, sizeof(c->err))) != NULL &&
	    ca_der(cert, &out->der, &out->derlen) == 0 &&
	    ca_name_text(X509_get_subject_name(cert), out->subject,
	    sizeof(out->subject)) == 0) {
		snprintf(out->notafter, sizeof(out->notafter), "%lld",
		    (long long)pki_asn1_time(X509_get0_notAfter(cert)));
		rc = 0;
	}
	X509_free(cert);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	return rc;
}

static void
pki_project_make(void *arg)
{
	struct pki_create *c = arg;

	c->is_made = pki_project_cert_make(c, CA_PROFILE_ISSUING, &c->certs[0]) == 0 &&
	    pki_project_cert_make(c, CA_PROFILE_CODESIGN, &c->certs[1]) == 0;
}

static void
pki_project_made(void *arg, int is_cancelled)
{
	struct pki_create *c = arg;
	char validity[16];
	const char *v[15];
	int lengths[15];

	/* Never started: no key was made, nothing to remove. */
	if (is_cancelled) {
		c->cb(PKI_CREATE_FAILED, WORK_CANCELLED_MSG, c->arg);
		pki_project_free(c);
		return;
	}
	if (!c->is_made) {
		/* The labels are set before the keys exist, so a failure at
		 * any step can remove what was made. */
		pki_project_destroy(c->pki, c->certs[0].label, c->certs[1].label,
		    c, PKI_CREATE_FAILED, c->err[0] ? c->err :
		    "cannot create the project CAs");
		return;
	}
	snprintf(validity, sizeof(validity), "%d", c->validity_days);
	for (int i = 0; i < 15; i++)
		lengths[i] = -1;
	v[0] = c->name;
	v[1] = c->policy[0] ? "true" : "false";
	v[2] = c->policy[1] ? "true" : "false";
	v[3] = c->policy[2] ? "true" : "false";
	v[4] = validity;
	for (int i = 0; i < 2; i++) {
		v[5 + 4 * i] = c->certs[i].label;
		v[6 + 4 * i] = (const char *)c->certs[i].der;
		lengths[6 + 4 * i] = c->certs[i].derlen;
		v[7 + 4 * i] = c->certs[i].subject;
		v[8 + 4 * i] = c->certs[i].notafter;
	}
	v[13] = c->actor;
	v[14] = c->policy[3] ? "true" : "false";
	db_query(c->pki->srv->db, &pki_project_insert, 15, v, lengths,
	    pki_project_inserted, c);
}

static void
pki_project_checked(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_create *c = arg;

	if (st != DB_OK || PQntuples(res) > 0) {
		if (st != DB_OK)
			c->cb(PKI_CREATE_FAILED, db_errstr(st, errstr), c->arg);
		else
			c->cb(PKI_CREATE_EXISTS, "project already exists", c->arg);
		pki_project_free(c);
		return;
	}
	if (tok_submit(pki_project_make, pki_project_made, c) == -1) {
		c->cb(PKI_CREATE_FAILED, "token busy; try again", c->arg);
		pki_project_free(c);
	}
}

void
pki_project_create(struct pki *pki, const char *actor, const char *name,
    int token, int allowlist, int approval, int tpm, int validity_days,
    pki_create_cb cb, void *arg)
{
	struct pki_create *c;
	size_t n = strlen(name);

	if (!names_is_project(name, n) || strcmp(name, "root") == 0) {
		cb(PKI_CREATE_INVALID, "project name must match "
		    "[a-z0-9][a-z0-9-]{0,62} and not be \"root\"", arg);
		return;
	}
	if (pki->root == NULL) {
		cb(PKI_CREATE_FAILED, "no root CA", arg);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->pki = pki;
	memcpy(c->name, name, n + 1);
	snprintf(c->actor, sizeof(c->actor), "%s", actor);
	c->validity_days = validity_days > 0 ? validity_days :
	    (int)pki->srv->conf->ca_cert_validity_days;
	c->policy[0] = token;
	c->policy[1] = allowlist;
	c->policy[2] = approval;
	c->policy[3] = tpm;
	c->cb = cb;
	c->arg = arg;
	db_query(pki->srv->db, &pki_project_exists, 1, &name, NULL,
	    pki_project_checked, c);
}

/* pki.c: the registry of the installation's CAs at run time: the root and
 * each project's issuing CA, loaded from the database with their keys on
 * the token (loaded by a token worker, never on the loop), kept in step
 * with other nodes through NOTIFY ql_ca and ql_project. This file only
 * holds references to token keys; it builds no HTTP replies. */
#include "pki_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "revoked.h"
#include "server.h"
#include "tok.h"
#include "util.h"
#include "xmalloc.h"

static const struct db_stmt pki_ca_by_name = {
	"pki_ca_by_name", PKI_SELECT_CA "c.kind = 'issuing' AND p.name = $1", 1 };
static const struct db_stmt pki_ca_by_id = {
	"pki_ca_by_id", PKI_SELECT_CA "c.kind = 'issuing' AND c.id = $1", 1 };
static const struct db_stmt pki_ca_by_project = {
	"pki_ca_by_project", PKI_SELECT_CA "c.kind = 'issuing' AND p.id = $1", 1 };

time_t
pki_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

void
pki_ca_free(struct pki_ca *ca)
{
	struct pki_waiter *w;

	if (ca == NULL)
		return;
	while ((w = ca->crl_waiters) != NULL) {
		ca->crl_waiters = w->next;
		free(w);
	}
	X509_free(ca->signer.cert);
	EVP_PKEY_free(ca->signer.key);
	PQfreemem(ca->cert_der);
	free(ca->cacerts_b64);
	OCSP_CERTID_free(ca->id_sha1);
	OCSP_CERTID_free(ca->id_sha256);
	free(ca->crl);
	free(ca);
}

static OCSP_CERTID *
pki_issuer_id(X509 *cert, const EVP_MD *md)
{
	ASN1_INTEGER *zero = ASN1_INTEGER_new();
	OCSP_CERTID *id = NULL;

	/* Only the issuer hashes matter; the serial is a placeholder. */
	if (zero != NULL)
		id = OCSP_cert_id_new(md, X509_get_subject_name(cert),
		    X509_get0_pubkey_bitstr(cert), zero);
	ASN1_INTEGER_free(zero);
	return id;
}

/* Everything of a row but the key, which is the token's to give. */
static struct pki_ca *
pki_ca_from_row(struct pki *pki, const PGresult *res, int row, char *err,
    size_t errlen)
{
	struct pki_ca *ca = xcalloc(1, sizeof(*ca));
	const unsigned char *p;
	X509 *chain[2];

	ca->id = db_val_int(res, row, 0);
	ca->project_id = db_val_int(res, row, 1);
	snprintf(ca->name, sizeof(ca->name), "%s", PQgetvalue(res, row, 2));
	ca->validity_days = (int)db_val_int(res, row, 5);
	ca->cert_der = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, 4),
	    &ca->cert_der_len);
	p = ca->cert_der;
	if (p == NULL || (ca->signer.cert = d2i_X509(NULL, &p,
	    (long)ca->cert_der_len)) == NULL) {
		snprintf(err, errlen, "CA %s: stored certificate does not parse", ca->name);
		goto fail;
	}
	ca->id_sha1 = pki_issuer_id(ca->signer.cert, EVP_sha1());
	ca->id_sha256 = pki_issuer_id(ca->signer.cert, EVP_sha256());
	chain[0] = ca->signer.cert;
	chain[1] = pki->root ? pki->root->signer.cert : NULL;
	ca->cacerts_b64 = ca_p7_certs_b64(chain, chain[1] && ca->project_id ? 2 : 1);
	if (ca->id_sha1 == NULL || ca->id_sha256 == NULL || ca->cacerts_b64 == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ca->is_crl_dirty = 1;
	return ca;
fail:
	pki_ca_free(ca);
	return NULL;
}

struct pki_ca_job {
	struct pki	*pki;
	struct pki_ca	*ca;
	char		 label[128];
	char		 err[256];
	pki_ca_cb	 cb;
	void		*arg;
};

static void
pki_ca_load_run(void *arg)
{
	struct pki_ca_job *j = arg;

	j->ca->signer.key = p11_load_private(j->pki->srv->p11, j->label, j->err,
	    sizeof(j->err));
}

static void
pki_ca_load_done(void *arg, int is_cancelled)
{
	struct pki_ca_job *j = arg;

	if (is_cancelled)
		snprintf(j->err, sizeof(j->err), "%s", WORK_CANCELLED_MSG);
	if (is_cancelled || j->ca->signer.key == NULL) {
		log_warnx("pki: CA %s: %s", j->ca->name, j->err);
		pki_ca_free(j->ca);
		j->cb(NULL, j->err, j->arg);
	} else {
		j->cb(pki_add(j->pki, j->ca), NULL, j->arg);
	}
	free(j);
}

void
pki_ca_load(struct pki *pki, const PGresult *res, int row, int is_urgent,
    pki_ca_cb cb, void *arg)
{
	struct pki_ca_job *j;
	char err[256];

	j = xcalloc(1, sizeof(*j));
	if ((j->ca = pki_ca_from_row(pki, res, row, err, sizeof(err))) == NULL) {
		log_warnx("pki: %s", err);
		free(j);
		cb(NULL, err, arg);
		return;
	}
	j->pki = pki;
	j->cb = cb;
	j->arg = arg;
	snprintf(j->label, sizeof(j->label), "%s", PQgetvalue(res, row, 3));
	if ((is_urgent ? tok_submit_urgent(pki_ca_load_run, pki_ca_load_done, j) :
	    tok_submit(pki_ca_load_run, pki_ca_load_done, j)) == -1) {
		pki_ca_free(j->ca);
		free(j);
		cb(NULL, "token busy", arg);
	}
}

struct pki_ca *
pki_find(struct pki *pki, const char *name, long long id)
{
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		if ((name != NULL && strcmp(ca->name, name) == 0) ||
		    (name == NULL && ca->id == id))
			return ca;
	return NULL;
}

struct pki_ca *
pki_add(struct pki *pki, struct pki_ca *ca)
{
	struct pki_ca *have = pki_find(pki, NULL, ca->id);

	if (have != NULL) {
		pki_ca_free(ca);
		return have;
	}
	if (ca->project_id == 0) {
		pki->root = ca;
		ca->next = pki->cas;
		pki->cas = ca;
	} else {
		ca->next = pki->root ? pki->root->next : pki->cas;
		if (pki->root)
			pki->root->next = ca;
		else
			pki->cas = ca;
	}
	if (pki->store != NULL)
		X509_STORE_add_cert(pki->store, ca->signer.cert);
	ERR_clear_error();	/* "already in store" is fine */
	log_debug("pki: CA %s (id %lld) loaded", ca->name, ca->id);
	return ca;
}

struct pki *
pki_new(struct server *srv)
{
	struct pki *pki = xcalloc(1, sizeof(*pki));

	pki->srv = srv;
	if ((pki->revoked = revoked_new()) == NULL) {
		free(pki);
		return NULL;
	}
	return pki;
}

void
pki_free(struct pki *pki)
{
	struct pki_ca *ca;

	if (pki == NULL)
		return;
	while ((ca = pki->cas) != NULL) {
		pki->cas = ca->next;
		pki_ca_free(ca);
	}
	revoked_free(pki->revoked);
	X509_STORE_free(pki->store);
	free(pki);
}

struct pki_ca *
pki_root(struct pki *pki)
{
	return pki->root;
}

struct pki_ca *
pki_cas(struct pki *pki)
{
	return pki->cas;
}

struct pki_ca *
pki_issuer_of(struct pki *pki, X509 *cert)
{
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		if (X509_check_issued(ca->signer.cert, cert) == X509_V_OK)
			return ca;
	return NULL;
}

static void
pki_ca_noted(struct pki_ca *ca, const char *err, void *arg)
{
	(void)ca;
	(void)err;
	(void)arg;
}

static void
pki_ca_loaded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	(void)errstr;
	if (st == DB_OK && PQntuples(res) == 1)
		pki_ca_load(arg, res, 0, 1, pki_ca_noted, NULL);
}

/* NOTIFY ql_ca: a project CA was created, possibly on another node. */
static void
pki_on_ca(const char *payload, void *arg)
{
	struct pki *pki = arg;
	const char *errstr;
	long long id;

	if (payload == NULL)
		return;
	id = util_strtonum(payload, 1, LLONG_MAX, &errstr);
	if (errstr != NULL || pki_find(pki, NULL, id) != NULL)
		return;
	db_query(pki->srv->db, &pki_ca_by_id, 1, &payload, NULL, pki_ca_loaded, pki);
}

struct pki_project_ref {
	struct pki	*pki;
	long long	 project_id;
};

/* Requests in flight may hold a pki_ca, so a renamed or deleted project's
 * entry is updated in place, never freed while the loop runs. */
static void
pki_project_changed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_project_ref *r = arg;

	(void)errstr;
	for (struct pki_ca *ca = r->pki->cas; st == DB_OK && ca != NULL; ca = ca->next) {
		if (ca->project_id != r->project_id)
			continue;
		if (PQntuples(res) == 1) {
			snprintf(ca->name, sizeof(ca->name), "%s", PQgetvalue(res, 0, 2));
			ca->validity_days = (int)db_val_int(res, 0, 5);
		} else {
			ca->name[0] = '\0';
		}
	}
	free(r);
}

/* NOTIFY ql_project: a project was renamed, changed or deleted. */
static void
pki_on_project(const char *payload, void *arg)
{
	struct pki *pki = arg;
	struct pki_project_ref *r;
	const char *errstr;
	long long id;

	if (payload == NULL)
		return;
	id = util_strtonum(payload, 1, LLONG_MAX, &errstr);
	if (errstr != NULL)
		return;
	r = xmalloc(sizeof(*r));
	r->pki = pki;
	r->project_id = id;
	db_query(pki->srv->db, &pki_ca_by_project, 1, &payload, NULL,
	    pki_project_changed, r);
}

int
pki_register(struct pki *pki)
{
	static const struct db_stmt *const s[] = {
		&pki_ca_by_name, &pki_ca_by_id, &pki_ca_by_project,
	};

	if (db_register_all(pki->srv->db, s, sizeof(s) / sizeof(s[0])) == -1 ||
	    pki_boot_register(pki) == -1 || pki_revoked_register(pki) == -1 ||
	    pki_crl_register(pki) == -1 || pki_project_register(pki) == -1)
		return -1;
	if (db_listen(pki->srv->db, "ql_ca", pki_on_ca, pki) == -1 ||
	    db_listen(pki->srv->db, "ql_project", pki_on_project, pki) == -1)
		return -1;
	return 0;
}

/* ---- lookups ---- */

struct pki_lookup {
	struct pki	*pki;
	pki_ca_cb	 cb;
	void		*arg;
};

static void
pki_lookup_loaded(struct pki_ca *ca, const char *err, void *arg)
{
	struct pki_lookup *l = arg;

	l->cb(ca, err, l->arg);
	free(l);
}

static void
pki_lookup_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_lookup *l = arg;

	if (st != DB_OK) {
		l->cb(NULL, db_errstr(st, errstr), l->arg);
		free(l);
	} else if (PQntuples(res) == 0) {
		l->cb(NULL, NULL, l->arg);
		free(l);
	} else {
		pki_ca_load(l->pki, res, 0, 0, pki_lookup_loaded, l);
	}
}

static void
pki_lookup(struct pki *pki, const struct db_stmt *st, const char *param,
    pki_ca_cb cb, void *arg)
{
	struct pki_lookup *l;

	l = xmalloc(sizeof(*l));
	l->pki = pki;
	l->cb = cb;
	l->arg = arg;
	db_query(pki->srv->db, st, 1, &param, NULL, pki_lookup_got, l);
}

void
pki_project(struct pki *pki, const char *name, pki_ca_cb cb, void *arg)
{
	struct pki_ca *ca = pki_find(pki, name, 0);

	if (ca != NULL && ca->project_id != 0) {
		cb(ca, NULL, arg);
		return;
	}
	pki_lookup(pki, &pki_ca_by_name, name, cb, arg);
}

void
pki_ca_get(struct pki *pki, long long id, pki_ca_cb cb, void *arg)
{
	struct pki_ca *ca = pki_find(pki, NULL, id);
	char param[24];

	/* A deleted project's entry stays in memory without a name. */
	if (ca != NULL) {
		cb(ca->name[0] != '\0' ? ca : NULL, NULL, arg);
		return;
	}
	snprintf(param, sizeof(param), "%lld", id);
	pki_lookup(pki, &pki_ca_by_id, param, cb, arg);
}

/* ---- keys and device certificates ---- */

int
pki_new_key(struct pki *pki, const char *prefix, char *label, size_t labellen,
    EVP_PKEY **priv, EVP_PKEY **pub, char *err, size_t errlen)
{
	enum p11_key_type type = strcmp(pki->srv->conf->ca_key_type, "rsa-3072") == 0 ?
	    P11_KEY_RSA_3072 : P11_KEY_EC_P256;

	if (p11_label_new(prefix, label, labellen) == -1) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	if (p11_generate_key(pki->srv->p11, label, type, err, errlen) == -1)
		return -1;
	if ((*priv = p11_load_private(pki->srv->p11, label, err, errlen)) == NULL)
		return -1;
	if ((*pub = p11_load_public(pki->srv->p11, label, err, errlen)) == NULL) {
		EVP_PKEY_free(*priv);
		return -1;
	}
	return 0;
}

const char *
pki_url(struct pki *pki)
{
	struct conf *c = pki->srv->conf;
	struct http_listener *l = &pki->srv->listeners[2];

	if (pki->url[0] != '\0')
		return pki->url;
	if (c->pki_url[0] != '\0')
		snprintf(pki->url, sizeof(pki->url), "%s", c->pki_url);
	else if (l->bound_addr[0] != '\0')
		snprintf(pki->url, sizeof(pki->url), "http://%s", l->bound_addr);
	else
		snprintf(pki->url, sizeof(pki->url), "http://localhost:8080");
	util_url_base(pki->url);
	return pki->url;
}

void
pki_device_prepare(struct pki *pki, const struct pki_ca *ca, X509_PUBKEY *spki,
    const char *device_id, struct pki_device_req *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->org, sizeof(d->org), "%s", ca->name);
	snprintf(d->san, sizeof(d->san), "URI:urn:quarklink:device:%s", device_id);
	snprintf(d->ocsp, sizeof(d->ocsp), "%s/pki/ocsp", pki_url(pki));
	/* The CA's id, never its project's name: names can be changed and
	 * reused, and a certificate's URL must keep naming its own CA. */
	snprintf(d->crl, sizeof(d->crl), "%s/pki/crl/id/%lld.crl", pki_url(pki),
	    ca->id);
	d->r.profile = CA_PROFILE_DEVICE;
	d->r.cn = device_id;
	d->r.org = d->org;
	d->r.spki = spki;
	d->r.issuer = &ca->signer;
	d->r.days = ca->validity_days;
	d->r.san = d->san;
	d->r.ocsp_url = d->ocsp;
	d->r.crl_url = d->crl;
}

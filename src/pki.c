/* pki.c: CA registry, revocation state, client-certificate trust and the
 * CRL cache. Every CA key stays on the token (p11); this file only holds
 * references to them. Revocation is known by issuer and serial together
 * (revoked.c); the OCSP responder is ocsp.c. */
#include "pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "ocsp.h"
#include "revoked.h"
#include "server.h"
#include "util.h"

#define PKI_TLS_MIN_DAYS	30

#define PKI_SELECT_CA \
	"SELECT c.id, coalesce(p.id, 0), coalesce(p.name, 'root'), c.key_label," \
	" c.cert_der, coalesce(p.cert_validity_days, 0)" \
	" FROM cas c LEFT JOIN projects p ON p.id = c.project_id WHERE "

static const struct db_stmt pki_root_get = {
	"pki_root_get", PKI_SELECT_CA "c.kind = 'root'", 0 };
static const struct db_stmt pki_root_insert = {
	"pki_root_insert", "INSERT INTO cas (kind, key_label, cert_der, subject, not_after)"
	" VALUES ('root', $1, $2, $3, to_timestamp($4::float8))"
	" ON CONFLICT DO NOTHING RETURNING id", 4 };
static const struct db_stmt pki_cas_all = {
	"pki_cas_all", PKI_SELECT_CA "c.kind = 'issuing'", 0 };
static const struct db_stmt pki_ca_by_name = {
	"pki_ca_by_name", PKI_SELECT_CA "c.kind = 'issuing' AND p.name = $1", 1 };
static const struct db_stmt pki_ca_by_id = {
	"pki_ca_by_id", PKI_SELECT_CA "c.kind = 'issuing' AND c.id = $1", 1 };
static const struct db_stmt pki_ca_by_project = {
	"pki_ca_by_project", PKI_SELECT_CA "c.kind = 'issuing' AND p.id = $1", 1 };
static const struct db_stmt pki_revoked_all = {
	"pki_revoked_all", "SELECT ca_id, serial FROM certificates"
	" WHERE revoked_at IS NOT NULL AND not_after > now()", 0 };
static const struct db_stmt pki_crl_rows = {
	"pki_crl_rows", "WITH n AS (UPDATE cas SET crl_number = crl_number + 1"
	" WHERE id = $1 RETURNING crl_number)"
	" SELECT n.crl_number, c.serial, extract(epoch FROM c.revoked_at)::bigint,"
	" coalesce(c.revocation_reason, 0) FROM n LEFT JOIN certificates c"
	" ON c.ca_id = $1 AND c.revoked_at IS NOT NULL AND c.not_after > now()", 1 };
static const struct db_stmt pki_project_exists = {
	"pki_project_exists", "SELECT 1 FROM projects WHERE name = $1", 1 };
static const struct db_stmt pki_project_insert = {
	"pki_project_insert", "SELECT ql_create_project($1, $2, $3, $4, $5, $6, $7, $8,"
	" to_timestamp($9::float8), $10, $11, $12, to_timestamp($13::float8), $14)", 14 };

struct pki_waiter {
	struct pki_waiter	*next;
	pki_blob_cb		 cb;
	void			*arg;
};

struct pki {
	struct server		*srv;
	struct pki_ca		*cas;		/* root first, then projects */
	struct pki_ca		*root;
	X509_STORE		*store;		/* client CAs: the device listener's */
	struct revoked		*revoked;
	char			 url[256];
};

/* The TLS verify callback has no argument of its own: one pki a process. */
static struct pki *pki_current;

time_t
pki_asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

static unsigned char *
pki_unescape(const PGresult *res, int row, int col, size_t *len)
{
	return PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), len);
}

static long long
pki_ll(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void
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

static struct pki_ca *
pki_ca_from_row(struct pki *pki, const PGresult *res, int row, char *err,
    size_t errlen)
{
	struct pki_ca *ca = calloc(1, sizeof(*ca));
	const unsigned char *p;
	X509 *chain[2];

	if (ca == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ca->id = pki_ll(res, row, 0);
	ca->project_id = pki_ll(res, row, 1);
	snprintf(ca->name, sizeof(ca->name), "%s", PQgetvalue(res, row, 2));
	ca->validity_days = (int)pki_ll(res, row, 5);
	ca->cert_der = pki_unescape(res, row, 4, &ca->cert_der_len);
	p = ca->cert_der;
	if (p == NULL || (ca->signer.cert = d2i_X509(NULL, &p,
	    (long)ca->cert_der_len)) == NULL) {
		snprintf(err, errlen, "CA %s: stored certificate does not parse", ca->name);
		goto fail;
	}
	ca->signer.key = p11_load_private(pki->srv->p11, PQgetvalue(res, row, 3),
	    err, errlen);
	if (ca->signer.key == NULL)
		goto fail;
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

static struct pki_ca *
pki_find(struct pki *pki, const char *name, long long id)
{
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		if ((name != NULL && strcmp(ca->name, name) == 0) ||
		    (name == NULL && ca->id == id))
			return ca;
	return NULL;
}

/* Keep the first copy when two loads race; returns the one to use. */
static struct pki_ca *
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
	struct pki *pki = calloc(1, sizeof(*pki));

	if (pki == NULL)
		return NULL;
	pki->srv = srv;
	if ((pki->revoked = revoked_new()) == NULL) {
		free(pki);
		return NULL;
	}
	pki_current = pki;
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
	if (pki_current == pki)
		pki_current = NULL;
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

/* ---- revocation state ---- */

struct pki_ca *
pki_issuer_of(struct pki *pki, X509 *cert)
{
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		if (X509_check_issued(ca->signer.cert, cert) == X509_V_OK)
			return ca;
	return NULL;
}

/* A certificate no CA of ours issued is not in our revocation data. */
static int
pki_is_revoked_by(struct pki *pki, const struct pki_ca *ca, X509 *cert)
{
	struct revoked_key k;

	if (ca == NULL)
		return 0;
	k.ca_id = ca->id;
	ca_serial_hex(X509_get0_serialNumber(cert), k.serial);
	return revoked_has(pki->revoked, &k);
}

int
pki_is_revoked(struct pki *pki, X509 *cert)
{
	return pki_is_revoked_by(pki, pki_issuer_of(pki, cert), cert);
}

static void
pki_crls_dirty(struct pki *pki)
{
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		ca->is_crl_dirty = 1;
}

static void
pki_revoked_loaded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki *pki = arg;

	if (st != DB_OK) {
		log_warnx("pki: cannot load revoked certificates: %s",
		    db_errstr(st, errstr));
		return;
	}
	revoked_clear(pki->revoked);
	for (int i = 0; i < PQntuples(res); i++) {
		struct revoked_key k;

		if (revoked_key_set(&k, pki_ll(res, i, 0), PQgetvalue(res, i, 1)) == 0 &&
		    revoked_set(pki->revoked, &k, 1) == -1)
			fatalx("pki: out of memory");
	}
	log_debug("pki: %d revoked certificates loaded", PQntuples(res));
}

/* NOTIFY ql_revocation: "ca_id:serial:1" (revoked) or "ca_id:serial:0";
 * NULL after a reconnect, when some may have been missed. */
static void
pki_on_revocation(const char *payload, void *arg)
{
	struct pki *pki = arg;
	char buf[64], *serial, *flag;
	struct revoked_key k;
	const char *errstr;
	long long ca_id;

	pki_crls_dirty(pki);
	if (payload == NULL) {
		ocsp_clear(pki->srv->ocsp);
		db_query(pki->srv->db, &pki_revoked_all, 0, NULL, NULL,
		    pki_revoked_loaded, pki);
		return;
	}
	if (snprintf(buf, sizeof(buf), "%s", payload) >= (int)sizeof(buf) ||
	    (serial = strchr(buf, ':')) == NULL ||
	    (flag = strchr(serial + 1, ':')) == NULL)
		goto bad;
	*serial++ = '\0';
	*flag++ = '\0';
	ca_id = util_strtonum(buf, 1, LLONG_MAX, &errstr);
	if (errstr != NULL || revoked_key_set(&k, ca_id, serial) == -1 ||
	    (strcmp(flag, "0") != 0 && strcmp(flag, "1") != 0))
		goto bad;
	if (revoked_set(pki->revoked, &k, flag[0] == '1') == -1)
		fatalx("pki: out of memory");
	ocsp_forget(pki->srv->ocsp, &k);
	log_info("pki: certificate %s %s", serial,
	    flag[0] == '1' ? "revoked" : "reinstated");
	return;
bad:
	/* Unknown payload: forget everything rather than miss a revocation. */
	log_warnx("pki: unexpected ql_revocation payload, reloading");
	pki_on_revocation(NULL, pki);
}

static void
pki_ca_loaded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki *pki = arg;
	char err[256];
	struct pki_ca *ca;

	if (st != DB_OK || PQntuples(res) != 1)
		return;
	if ((ca = pki_ca_from_row(pki, res, 0, err, sizeof(err))) == NULL) {
		log_warnx("pki: %s", err);
		return;
	}
	(void)errstr;
	pki_add(pki, ca);
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
			ca->validity_days = (int)pki_ll(res, 0, 5);
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
	if (errstr != NULL || (r = malloc(sizeof(*r))) == NULL)
		return;
	r->pki = pki;
	r->project_id = id;
	db_query(pki->srv->db, &pki_ca_by_project, 1, &payload, NULL,
	    pki_project_changed, r);
}

int
pki_register(struct pki *pki)
{
	const struct db_stmt *stmts[] = {
		&pki_root_get, &pki_root_insert, &pki_cas_all, &pki_ca_by_name,
		&pki_ca_by_id, &pki_ca_by_project, &pki_revoked_all, &pki_crl_rows,
		&pki_project_exists, &pki_project_insert,
	};

	for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++)
		if (db_register(pki->srv->db, stmts[i]) == -1)
			return -1;
	if (db_listen(pki->srv->db, "ql_revocation", pki_on_revocation, pki) == -1 ||
	    db_listen(pki->srv->db, "ql_ca", pki_on_ca, pki) == -1 ||
	    db_listen(pki->srv->db, "ql_project", pki_on_project, pki) == -1)
		return -1;
	return 0;
}

/* ---- bootstrap: root, project CAs, revoked set ---- */

struct pki_boot {
	struct pki	*pki;
	pki_done_cb	 cb;
	void		*arg;
};

static void	pki_boot_root(struct pki_boot *);

static void
pki_boot_finish(struct pki_boot *b, const char *err)
{
	b->cb(err, b->arg);
	free(b);
}

static void
pki_boot_revoked(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_boot *b = arg;

	if (st != DB_OK) {
		pki_boot_finish(b, db_errstr(st, errstr));
		return;
	}
	pki_revoked_loaded(st, res, errstr, b->pki);
	pki_boot_finish(b, NULL);
}

static void
pki_boot_cas(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_boot *b = arg;
	char err[256];

	if (st != DB_OK) {
		pki_boot_finish(b, db_errstr(st, errstr));
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct pki_ca *ca = pki_ca_from_row(b->pki, res, i, err, sizeof(err));

		/* One broken project must not keep the others down. */
		if (ca == NULL)
			log_warnx("pki: %s", err);
		else
			pki_add(b->pki, ca);
	}
	db_query(b->pki->srv->db, &pki_revoked_all, 0, NULL, NULL,
	    pki_boot_revoked, b);
}

static void
pki_boot_next(struct pki_boot *b)
{
	db_query(b->pki->srv->db, &pki_cas_all, 0, NULL, NULL, pki_boot_cas, b);
}

static enum p11_key_type
pki_key_type(struct pki *pki)
{
	return strcmp(pki->srv->conf->ca_key_type, "rsa-3072") == 0 ?
	    P11_KEY_RSA_3072 : P11_KEY_EC_P256;
}

/* A fresh token key with a unique label: an earlier failed attempt may
 * have left a key behind, and labels must never collide. */
static int
pki_new_key(struct pki *pki, const char *prefix, char *label, size_t labellen,
    EVP_PKEY **priv, EVP_PKEY **pub, char *err, size_t errlen)
{
	unsigned char rnd[4];
	char hex[9];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	util_hex(rnd, sizeof(rnd), hex);
	snprintf(label, labellen, "%s-%s", prefix, hex);
	if (p11_generate_key(pki->srv->p11, label, pki_key_type(pki), err, errlen) == -1)
		return -1;
	if ((*priv = p11_load_private(pki->srv->p11, label, err, errlen)) == NULL)
		return -1;
	if ((*pub = p11_load_public(pki->srv->p11, label, err, errlen)) == NULL) {
		EVP_PKEY_free(*priv);
		return -1;
	}
	return 0;
}

static void
pki_boot_root_inserted(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct pki_boot *b = arg;

	if (st != DB_OK) {
		pki_boot_finish(b, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) == 0)
		log_info("pki: another node created the root CA first");
	else
		log_info("pki: root CA created");
	pki_boot_root(b);	/* load what is stored, whoever stored it */
}

static void
pki_boot_create_root(struct pki_boot *b)
{
	struct pki *pki = b->pki;
	char label[64], err[256], serial[CA_SERIAL_HEX], subject[256], notafter[32];
	EVP_PKEY *priv = NULL, *pub = NULL;
	unsigned char *der = NULL;
	X509 *cert = NULL;
	int derlen;
	const char *values[4];
	int lengths[4] = { -1, 0, -1, -1 };
	struct ca_request r = {
		.profile = CA_PROFILE_ROOT, .cn = "quarklink root CA",
		.org = "quarklink", .days = 7305,
	};

	if (pki_new_key(pki, "ql-root", label, sizeof(label), &priv, &pub, err,
	    sizeof(err)) == -1)
		goto fail;
	r.pubkey = pub;
	r.self_key = priv;
	if ((cert = ca_issue(&r, serial, err, sizeof(err))) == NULL ||
	    ca_der(cert, &der, &derlen) == -1 ||
	    ca_name_text(X509_get_subject_name(cert), subject, sizeof(subject)) == -1)
		goto fail;
	snprintf(notafter, sizeof(notafter), "%lld",
	    (long long)pki_asn1_time(X509_get0_notAfter(cert)));
	values[0] = label;
	values[1] = (const char *)der;
	lengths[1] = derlen;
	values[2] = subject;
	values[3] = notafter;
	db_query(pki->srv->db, &pki_root_insert, 4, values, lengths,
	    pki_boot_root_inserted, b);
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	return;
fail:
	if (err[0] == '\0')
		snprintf(err, sizeof(err), "cannot create the root CA");
	OPENSSL_free(der);
	X509_free(cert);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	pki_boot_finish(b, err);
}

static void
pki_boot_root_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_boot *b = arg;
	char err[256];
	struct pki_ca *ca;

	if (st != DB_OK) {
		pki_boot_finish(b, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) == 0) {
		pki_boot_create_root(b);
		return;
	}
	if ((ca = pki_ca_from_row(b->pki, res, 0, err, sizeof(err))) == NULL) {
		pki_boot_finish(b, err);
		return;
	}
	pki_add(b->pki, ca);
	pki_boot_next(b);
}

static void
pki_boot_root(struct pki_boot *b)
{
	db_query(b->pki->srv->db, &pki_root_get, 0, NULL, NULL, pki_boot_root_got, b);
}

void
pki_bootstrap(struct pki *pki, pki_done_cb cb, void *arg)
{
	struct pki_boot *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		cb("out of memory", arg);
		return;
	}
	b->pki = pki;
	b->cb = cb;
	b->arg = arg;
	pki_boot_root(b);
}

/* ---- projects ---- */

struct pki_lookup {
	struct pki	*pki;
	pki_ca_cb	 cb;
	void		*arg;
};

static void
pki_project_loaded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_lookup *l = arg;
	struct pki_ca *ca = NULL;
	char err[256];

	if (st != DB_OK) {
		l->cb(NULL, db_errstr(st, errstr), l->arg);
	} else if (PQntuples(res) == 0) {
		l->cb(NULL, NULL, l->arg);
	} else if ((ca = pki_ca_from_row(l->pki, res, 0, err, sizeof(err))) == NULL) {
		log_warnx("pki: %s", err);
		l->cb(NULL, err, l->arg);
	} else {
		l->cb(pki_add(l->pki, ca), NULL, l->arg);
	}
	free(l);
}

static void
pki_lookup(struct pki *pki, const struct db_stmt *st, const char *param,
    pki_ca_cb cb, void *arg)
{
	struct pki_lookup *l;

	if ((l = malloc(sizeof(*l))) == NULL) {
		cb(NULL, "out of memory", arg);
		return;
	}
	l->pki = pki;
	l->cb = cb;
	l->arg = arg;
	db_query(pki->srv->db, st, 1, &param, NULL, pki_project_loaded, l);
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

struct pki_create {
	struct pki	*pki;
	char		 name[64];
	char		 labels[2][128];	/* the keys made for it */
	char		 actor[160];
	int		 validity_days;
	int		 policy[3];
	pki_create_cb	 cb;
	void		*arg;
};

/* Token keys whose project is not (or no longer) in the database. */
static void
pki_destroy_keys(struct pki *pki, char (*labels)[128], size_t n)
{
	char err[256];

	for (size_t i = 0; i < n; i++) {
		if (labels[i][0] == '\0')
			continue;
		if (p11_destroy_key(pki->srv->p11, labels[i], err, sizeof(err)) == -1)
			log_warnx("pki: %s", err);
		else
			log_info("pki: token key %s destroyed", labels[i]);
	}
}

void
pki_project_keys_destroy(struct pki *pki, const char *csv)
{
	char labels[2][128];
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
	pki_destroy_keys(pki, labels, n);
}

static void
pki_create_done(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_create *c = arg;
	const char *state;

	if (st == DB_OK) {
		c->cb(PKI_CREATED, NULL, c->arg);
		free(c);
		return;
	}
	/* An SQL error rolled the insert back: the keys belong to nothing.
	 * Lost in flight (DB_UNAVAILABLE), it may have committed: keep them. */
	if (st == DB_SQL_ERROR)
		pki_destroy_keys(c->pki, c->labels, 2);
	else
		log_warnx("pki: project %s: keys %s and %s may be orphans: %s",
		    c->name, c->labels[0], c->labels[1], db_errstr(st, errstr));
	state = st == DB_SQL_ERROR ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	/* A concurrent creation of the same name won the unique index. */
	if (state != NULL && strcmp(state, "23505") == 0)
		c->cb(PKI_CREATE_EXISTS, "project already exists", c->arg);
	else
		c->cb(PKI_CREATE_FAILED, db_errstr(st, errstr), c->arg);
	free(c);
}

static int
pki_issue_project_cert(struct pki *pki, const char *name, enum ca_profile prof,
    char *label, size_t labellen, unsigned char **der, int *derlen,
    char *subject, size_t sublen, char *notafter, size_t nalen, char *err,
    size_t errlen)
{
	char cn[128], prefix[96], serial[CA_SERIAL_HEX];
	EVP_PKEY *priv = NULL, *pub = NULL;
	X509 *cert = NULL;
	struct ca_request r = {
		.profile = prof, .cn = cn, .org = name, .issuer = &pki->root->signer,
		.days = prof == CA_PROFILE_ISSUING ? 3652 : 1826,
	};
	int rc = -1;

	snprintf(cn, sizeof(cn), "quarklink %s %s", name,
	    prof == CA_PROFILE_ISSUING ? "issuing CA" : "code signing");
	snprintf(prefix, sizeof(prefix), "ql-%s-%s", name,
	    prof == CA_PROFILE_ISSUING ? "ca" : "sign");
	if (pki_new_key(pki, prefix, label, labellen, &priv, &pub, err, errlen) == -1)
		return -1;
	r.pubkey = pub;
	if ((cert = ca_issue(&r, serial, err, errlen)) != NULL &&
	    ca_der(cert, der, derlen) == 0 &&
	    ca_name_text(X509_get_subject_name(cert), subject, sublen) == 0) {
		snprintf(notafter, nalen, "%lld",
		    (long long)pki_asn1_time(X509_get0_notAfter(cert)));
		rc = 0;
	}
	X509_free(cert);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
	return rc;
}

static void
pki_create_exists(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_create *c = arg;
	struct pki *pki = c->pki;
	char casub[256], ssub[256], cana[32], sna[32];
	char err[256] = "", validity[16];
	unsigned char *cader = NULL, *sder = NULL;
	int calen, slen;
	const char *v[14];
	int lengths[14];

	if (st != DB_OK || PQntuples(res) > 0) {
		if (st != DB_OK)
			c->cb(PKI_CREATE_FAILED, db_errstr(st, errstr), c->arg);
		else
			c->cb(PKI_CREATE_EXISTS, "project already exists", c->arg);
		free(c);
		return;
	}
	/* The labels are set before the keys exist, so a failure at any
	 * step can remove what was made. */
	if (pki_issue_project_cert(pki, c->name, CA_PROFILE_ISSUING, c->labels[0],
	    sizeof(c->labels[0]), &cader, &calen, casub, sizeof(casub), cana,
	    sizeof(cana), err, sizeof(err)) == -1 ||
	    pki_issue_project_cert(pki, c->name, CA_PROFILE_CODESIGN, c->labels[1],
	    sizeof(c->labels[1]), &sder, &slen, ssub, sizeof(ssub), sna, sizeof(sna),
	    err, sizeof(err)) == -1) {
		OPENSSL_free(cader);
		pki_destroy_keys(pki, c->labels, 2);
		c->cb(PKI_CREATE_FAILED, err[0] ? err :
		    "cannot create the project CAs", c->arg);
		free(c);
		return;
	}
	snprintf(validity, sizeof(validity), "%d", c->validity_days);
	for (int i = 0; i < 14; i++)
		lengths[i] = -1;
	v[0] = c->name;
	v[1] = c->policy[0] ? "true" : "false";
	v[2] = c->policy[1] ? "true" : "false";
	v[3] = c->policy[2] ? "true" : "false";
	v[4] = validity;
	v[5] = c->labels[0]; v[6] = (const char *)cader; lengths[6] = calen;
	v[7] = casub; v[8] = cana;
	v[9] = c->labels[1]; v[10] = (const char *)sder; lengths[10] = slen;
	v[11] = ssub; v[12] = sna;
	v[13] = c->actor;
	db_query(pki->srv->db, &pki_project_insert, 14, v, lengths, pki_create_done, c);
	OPENSSL_free(cader);
	OPENSSL_free(sder);
}

void
pki_project_create(struct pki *pki, const char *actor, const char *name,
    int token, int allowlist, int approval, int validity_days, pki_create_cb cb,
    void *arg)
{
	struct pki_create *c;
	size_t n = strlen(name);

	if (n == 0 || n > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != n ||
	    name[0] == '-' || strcmp(name, "root") == 0) {
		cb(PKI_CREATE_INVALID, "project name must match "
		    "[a-z0-9][a-z0-9-]{0,62} and not be \"root\"", arg);
		return;
	}
	if (pki->root == NULL) {
		cb(PKI_CREATE_FAILED, "no root CA", arg);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		cb(PKI_CREATE_FAILED, "out of memory", arg);
		return;
	}
	c->pki = pki;
	memcpy(c->name, name, n + 1);
	snprintf(c->actor, sizeof(c->actor), "%s", actor);
	c->validity_days = validity_days > 0 ? validity_days :
	    (int)pki->srv->conf->ca_cert_validity_days;
	c->policy[0] = token;
	c->policy[1] = allowlist;
	c->policy[2] = approval;
	c->cb = cb;
	c->arg = arg;
	db_query(pki->srv->db, &pki_project_exists, 1, &name, NULL,
	    pki_create_exists, c);
}

/* ---- device certificates and client TLS ---- */

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
	/* No trailing slash: paths are appended. */
	while (strlen(pki->url) > 0 && pki->url[strlen(pki->url) - 1] == '/')
		pki->url[strlen(pki->url) - 1] = '\0';
	return pki->url;
}

X509 *
pki_issue_device(struct pki *pki, struct pki_ca *ca, X509_PUBKEY *spki,
    const char *device_id, char serial[CA_SERIAL_HEX], char *err, size_t errlen)
{
	char san[96], ocsp[320], crl[400];
	struct ca_request r = {
		.profile = CA_PROFILE_DEVICE, .cn = device_id, .org = ca->name,
		.spki = spki, .issuer = &ca->signer, .days = ca->validity_days,
		.san = san, .ocsp_url = ocsp, .crl_url = crl,
	};

	snprintf(san, sizeof(san), "URI:urn:quarklink:device:%s", device_id);
	snprintf(ocsp, sizeof(ocsp), "%s/pki/ocsp", pki_url(pki));
	/* The CA's id, never its project's name: names can be changed and
	 * reused, and a certificate's URL must keep naming its own CA. */
	snprintf(crl, sizeof(crl), "%s/pki/crl/id/%lld.crl", pki_url(pki), ca->id);
	return ca_issue(&r, serial, err, errlen);
}

/* The chain has been built and verified up to here; refuse a revoked
 * leaf by the CA that actually signed it (chain[1]) and its serial. */
static int
pki_verify_cb(int ok, X509_STORE_CTX *x)
{
	STACK_OF(X509) *chain;
	struct pki_ca *ca = NULL;
	X509 *cert, *issuer;

	if (!ok || X509_STORE_CTX_get_error_depth(x) != 0 || pki_current == NULL)
		return ok;
	cert = X509_STORE_CTX_get_current_cert(x);
	chain = X509_STORE_CTX_get0_chain(x);
	issuer = chain != NULL && sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;
	for (struct pki_ca *c = pki_current->cas; issuer != NULL && c != NULL; c = c->next)
		if (X509_cmp(c->signer.cert, issuer) == 0) {
			ca = c;
			break;
		}
	if (pki_is_revoked_by(pki_current, ca, cert)) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REVOKED);
		return 0;
	}
	return 1;
}

/* Every CA loaded plus the extra file, in a new store: a reload must drop
 * what the file no longer holds, not only add to what was trusted. */
static X509_STORE *
pki_store_new(struct pki *pki, const char *extra_ca, char *err, size_t errlen)
{
	X509_STORE *st = X509_STORE_new();

	if (st == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		if (X509_STORE_add_cert(st, ca->signer.cert) != 1) {
			snprintf(err, errlen, "cannot trust CA %s", ca->name);
			goto fail;
		}
	if (extra_ca != NULL && extra_ca[0] != '\0' &&
	    X509_STORE_load_file(st, extra_ca) != 1) {
		snprintf(err, errlen, "cannot load client CA %s", extra_ca);
		goto fail;
	}
	return st;
fail:
	ERR_clear_error();
	X509_STORE_free(st);
	return NULL;
}

int
pki_setup_client_tls(struct pki *pki, SSL_CTX *ctx, const char *extra_ca,
    char *err, size_t errlen)
{
	X509_STORE *st = pki_store_new(pki, extra_ca, err, errlen);

	if (st == NULL)
		return -1;
	/* The context holds its own reference; contexts built earlier keep
	 * theirs for the connections they still serve. CAs created later
	 * join the newest store (pki_add). */
	SSL_CTX_set1_cert_store(ctx, st);
	X509_STORE_free(pki->store);
	pki->store = st;
	if (pki->root != NULL)
		SSL_CTX_add_client_CA(ctx, pki->root->signer.cert);
	/* Requested, not required: first enrollment has no certificate. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, pki_verify_cb);
	return 0;
}

/* ---- CRL ---- */

struct pki_crl_job {
	struct pki	*pki;
	struct pki_ca	*ca;
};

static void
pki_crl_flush(struct pki_ca *ca, const char *err)
{
	struct pki_waiter *w;

	while ((w = ca->crl_waiters) != NULL) {
		ca->crl_waiters = w->next;
		if (err != NULL)
			w->cb(NULL, 0, err, w->arg);
		else
			w->cb(ca->crl, ca->crl_len, NULL, w->arg);
		free(w);
	}
}

static void
pki_crl_built(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_crl_job *j = arg;
	struct pki_ca *ca = j->ca;
	int hours = (int)j->pki->srv->conf->ca_crl_validity_hours;
	struct ca_revoked *rv = NULL;
	char err[256];
	unsigned char *der;
	size_t n = 0, len;
	long long number;

	free(j);
	ca->is_crl_busy = 0;
	if (st != DB_OK || PQntuples(res) < 1) {
		ca->is_crl_dirty = 1;
		pki_crl_flush(ca, db_errstr(st, errstr));
		return;
	}
	number = pki_ll(res, 0, 0);
	if ((rv = calloc((size_t)PQntuples(res), sizeof(*rv))) == NULL) {
		pki_crl_flush(ca, "out of memory");
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		if (PQgetisnull(res, i, 1))
			continue;
		rv[n].serial_hex = PQgetvalue(res, i, 1);
		rv[n].revoked_at = (time_t)pki_ll(res, i, 2);
		rv[n].reason = (int)pki_ll(res, i, 3);
		n++;
	}
	if (ca_crl(&ca->signer, rv, n, number, hours, &der, &len, err,
	    sizeof(err)) == -1) {
		free(rv);
		ca->is_crl_dirty = 1;
		pki_crl_flush(ca, err);
		return;
	}
	free(rv);
	free(ca->crl);
	ca->crl = der;
	ca->crl_len = len;
	/* Re-issue well before nextUpdate so relying parties never hold a
	 * stale CRL (at least daily with the default 24 h). */
	ca->crl_refresh = time(NULL) + hours * 3600L / 2;
	log_info("pki: CRL %lld for %s with %zu entries", number, ca->name, n);
	pki_crl_flush(ca, NULL);
}

void
pki_crl(struct pki *pki, struct pki_ca *ca, pki_blob_cb cb, void *arg)
{
	struct pki_waiter *w;
	struct pki_crl_job *j;
	char id[24];
	const char *param = id;

	if (ca->crl != NULL && !ca->is_crl_dirty && time(NULL) < ca->crl_refresh) {
		cb(ca->crl, ca->crl_len, NULL, arg);
		return;
	}
	if ((w = malloc(sizeof(*w))) == NULL) {
		cb(NULL, 0, "out of memory", arg);
		return;
	}
	w->cb = cb;
	w->arg = arg;
	w->next = ca->crl_waiters;
	ca->crl_waiters = w;
	if (ca->is_crl_busy)
		return;
	if ((j = malloc(sizeof(*j))) == NULL) {
		pki_crl_flush(ca, "out of memory");
		return;
	}
	j->pki = pki;
	j->ca = ca;
	ca->is_crl_busy = 1;
	ca->is_crl_dirty = 0;
	snprintf(id, sizeof(id), "%lld", ca->id);
	db_query(pki->srv->db, &pki_crl_rows, 1, &param, NULL, pki_crl_built, j);
}


/* pki_boot.c: start-up of the CAs: load the root (or, on the first start
 * of an installation, make it: key pair on the token, self-signed
 * certificate, one row that a concurrent node may have written first),
 * then every project CA, then the revoked set. Token work on tok.c's
 * workers; one project that fails to load does not keep the rest down. */
#include "pki_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "server.h"
#include "tok.h"
#include "xmalloc.h"

static const struct db_stmt pki_boot_root_get = {
	"pki_root_get", PKI_SELECT_CA "c.kind = 'root'", 0 };
static const struct db_stmt pki_boot_root_insert = {
	"pki_root_insert", "INSERT INTO cas (kind, key_label, cert_der, subject, not_after)"
	" VALUES ('root', $1, $2, $3, to_timestamp($4::float8))"
	" ON CONFLICT DO NOTHING RETURNING id", 4 };
static const struct db_stmt pki_boot_cas_all = {
	"pki_cas_all", PKI_SELECT_CA "c.kind = 'issuing'", 0 };

struct pki_boot {
	struct pki	*pki;
	pki_done_cb	 cb;
	void		*arg;
	int		 loading;	/* project CAs whose keys are on the way */
	/* The root being made, on a worker. */
	char		 label[64];
	char		 subject[256];
	char		 notafter[32];
	unsigned char	*der;
	int		 derlen;
	char		 err[256];
};

int
pki_boot_register(struct pki *pki)
{
	static const struct db_stmt *const s[] = {
		&pki_boot_root_get, &pki_boot_root_insert, &pki_boot_cas_all,
	};

	return db_register_all(pki->srv->db, s, sizeof(s) / sizeof(s[0]));
}

static void	pki_boot_root(struct pki_boot *);

static void
pki_boot_finish(struct pki_boot *b, const char *err)
{
	b->cb(err, b->arg);
	OPENSSL_free(b->der);
	free(b);
}

static void
pki_boot_revoked(const char *err, void *arg)
{
	pki_boot_finish(arg, err);
}

static void
pki_boot_ca_loaded(struct pki_ca *ca, const char *err, void *arg)
{
	struct pki_boot *b = arg;

	(void)ca;
	(void)err;	/* logged by pki_ca_load */
	if (--b->loading == 0)
		pki_revoked_load(b->pki, pki_boot_revoked, b);
}

static void
pki_boot_cas(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_boot *b = arg;
	int n;

	if (st != DB_OK) {
		pki_boot_finish(b, db_errstr(st, errstr));
		return;
	}
	/* One more than the rows until all are submitted, so a key that
	 * loads fast cannot finish the count early. */
	n = PQntuples(res);
	b->loading = n + 1;
	for (int i = 0; i < n; i++)
		pki_ca_load(b->pki, res, i, 1, pki_boot_ca_loaded, b);
	pki_boot_ca_loaded(NULL, NULL, b);
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

/* On a token worker: key pair, self-signed certificate, its row values. */
static void
pki_boot_make_root(void *arg)
{
	struct pki_boot *b = arg;
	char serial[CA_SERIAL_HEX];
	EVP_PKEY *priv = NULL, *pub = NULL;
	X509 *cert = NULL;
	struct ca_request r = {
		.profile = CA_PROFILE_ROOT, .cn = "quarklink root CA",
		.org = "quarklink", .days = 7305,
	};

	if (pki_new_key(b->pki, "ql-root", b->label, sizeof(b->label), &priv, &pub,
	    b->err, sizeof(b->err)) == -1)
		goto out;
	r.pubkey = pub;
	r.self_key = priv;
	if ((cert = ca_issue(&r, serial, b->err, sizeof(b->err))) == NULL ||
	    ca_der(cert, &b->der, &b->derlen) == -1 ||
	    ca_name_text(X509_get_subject_name(cert), b->subject,
	    sizeof(b->subject)) == -1) {
		OPENSSL_free(b->der);
		b->der = NULL;
		goto out;
	}
	snprintf(b->notafter, sizeof(b->notafter), "%lld",
	    (long long)pki_asn1_time(X509_get0_notAfter(cert)));
out:
	if (b->der == NULL && b->err[0] == '\0')
		snprintf(b->err, sizeof(b->err), "cannot create the root CA");
	X509_free(cert);
	EVP_PKEY_free(priv);
	EVP_PKEY_free(pub);
}

static void
pki_boot_root_made(void *arg, int is_cancelled)
{
	struct pki_boot *b = arg;
	const char *values[4];
	int lengths[4] = { -1, 0, -1, -1 };

	if (is_cancelled) {
		pki_boot_finish(b, WORK_CANCELLED_MSG);
		return;
	}
	if (b->der == NULL) {
		pki_boot_finish(b, b->err);
		return;
	}
	values[0] = b->label;
	values[1] = (const char *)b->der;
	lengths[1] = b->derlen;
	values[2] = b->subject;
	values[3] = b->notafter;
	db_query(b->pki->srv->db, &pki_boot_root_insert, 4, values, lengths,
	    pki_boot_root_inserted, b);
	OPENSSL_free(b->der);
	b->der = NULL;
}

static void
pki_boot_root_loaded(struct pki_ca *ca, const char *err, void *arg)
{
	struct pki_boot *b = arg;

	if (ca == NULL) {
		pki_boot_finish(b, err);
		return;
	}
	db_query(b->pki->srv->db, &pki_boot_cas_all, 0, NULL, NULL, pki_boot_cas, b);
}

static void
pki_boot_root_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_boot *b = arg;

	if (st != DB_OK) {
		pki_boot_finish(b, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) == 0) {
		if (tok_submit_urgent(pki_boot_make_root, pki_boot_root_made, b) == -1)
			pki_boot_finish(b, "cannot reach the token workers");
		return;
	}
	pki_ca_load(b->pki, res, 0, 1, pki_boot_root_loaded, b);
}

static void
pki_boot_root(struct pki_boot *b)
{
	db_query(b->pki->srv->db, &pki_boot_root_get, 0, NULL, NULL,
	    pki_boot_root_got, b);
}

void
pki_bootstrap(struct pki *pki, pki_done_cb cb, void *arg)
{
	struct pki_boot *b = xcalloc(1, sizeof(*b));

	b->pki = pki;
	b->cb = cb;
	b->arg = arg;
	pki_boot_root(b);
}

/* pki_revoked.c: which certificates of our CAs are revoked, as the TLS
 * layer and handlers that trust a peer certificate ask it: the set
 * (revoked.c) loaded at start and kept in step through NOTIFY
 * ql_revocation, the device listener's trust store and its verify
 * callback. Status is by issuer and serial together. No token calls. */
#include "pki_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "db.h"
#include "log.h"
#include "revoked.h"
#include "server.h"
#include "xmalloc.h"

static const struct db_stmt pki_revoked_all = {
	"pki_revoked_all", "SELECT ca_id, serial FROM certificates"
	" WHERE revoked_at IS NOT NULL AND not_after > now()", 0 };

/* The TLS verify callback has no argument of its own: one pki a process. */
static struct pki *pki_revoked_current;

struct pki_revoked_load {
	struct pki	*pki;
	pki_done_cb	 cb;
	void		*arg;
};

static void
pki_revoked_loaded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_revoked_load *l = arg;
	struct pki *pki = l->pki;

	if (st != DB_OK) {
		log_warnx("pki: cannot load revoked certificates: %s",
		    db_errstr(st, errstr));
		if (l->cb != NULL)
			l->cb(db_errstr(st, errstr), l->arg);
		free(l);
		return;
	}
	revoked_clear(pki->revoked);
	for (int i = 0; i < PQntuples(res); i++) {
		struct revoked_key k;

		if (revoked_key_set(&k, db_val_int(res, i, 0), PQgetvalue(res, i, 1)) == 0 &&
		    revoked_set(pki->revoked, &k, 1) == -1)
			fatalx("pki: out of memory");
	}
	log_debug("pki: %d revoked certificates loaded", PQntuples(res));
	if (l->cb != NULL)
		l->cb(NULL, l->arg);
	free(l);
}

void
pki_revoked_load(struct pki *pki, pki_done_cb cb, void *arg)
{
	struct pki_revoked_load *l = xmalloc(sizeof(*l));

	l->pki = pki;
	l->cb = cb;
	l->arg = arg;
	db_query(pki->srv->db, &pki_revoked_all, 0, NULL, NULL, pki_revoked_loaded, l);
}

/* NULL after a reconnect, when some may have been missed. */
static void
pki_revoked_on_notify(const char *payload, void *arg)
{
	struct pki *pki = arg;
	struct revoked_key k;
	int is_revoked;

	if (payload == NULL) {
		pki_revoked_load(pki, NULL, NULL);
		return;
	}
	if (revoked_payload_parse(payload, &k, &is_revoked) == -1) {
		/* Unknown payload: reload rather than miss a revocation. */
		log_warnx("pki: unexpected ql_revocation payload, reloading");
		pki_revoked_load(pki, NULL, NULL);
		return;
	}
	if (revoked_set(pki->revoked, &k, is_revoked) == -1)
		fatalx("pki: out of memory");
	log_info("pki: certificate %s %s", k.serial,
	    is_revoked ? "revoked" : "reinstated");
}

int
pki_revoked_register(struct pki *pki)
{
	pki_revoked_current = pki;
	if (db_register(pki->srv->db, &pki_revoked_all) == -1 ||
	    db_listen(pki->srv->db, "ql_revocation", pki_revoked_on_notify, pki) == -1)
		return -1;
	return 0;
}

/* A certificate no CA of ours issued is not in our revocation data. */
static int
pki_revoked_by(struct pki *pki, const struct pki_ca *ca, X509 *cert)
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
	return pki_revoked_by(pki, pki_issuer_of(pki, cert), cert);
}

/* The chain has been built and verified up to here; refuse a revoked
 * leaf by the CA that actually signed it (chain[1]) and its serial. */
static int
pki_revoked_verify_cb(int ok, X509_STORE_CTX *x)
{
	struct pki *pki = pki_revoked_current;
	STACK_OF(X509) *chain;
	struct pki_ca *ca = NULL;
	X509 *cert, *issuer;

	if (!ok || X509_STORE_CTX_get_error_depth(x) != 0 || pki == NULL)
		return ok;
	cert = X509_STORE_CTX_get_current_cert(x);
	chain = X509_STORE_CTX_get0_chain(x);
	issuer = chain != NULL && sk_X509_num(chain) > 1 ? sk_X509_value(chain, 1) : NULL;
	for (struct pki_ca *c = pki->cas; issuer != NULL && c != NULL; c = c->next)
		if (X509_cmp(c->signer.cert, issuer) == 0) {
			ca = c;
			break;
		}
	if (pki_revoked_by(pki, ca, cert)) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REVOKED);
		return 0;
	}
	return 1;
}

/* Every CA loaded plus the extra file, in a new store: a reload must drop
 * what the file no longer holds, not only add to what was trusted. */
static X509_STORE *
pki_revoked_store_new(struct pki *pki, const char *extra_ca, char *err,
    size_t errlen)
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
	X509_STORE *st = pki_revoked_store_new(pki, extra_ca, err, errlen);

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
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, pki_revoked_verify_cb);
	return 0;
}

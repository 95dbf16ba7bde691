/* pki_crl.c: each CA's CRL, cached: re-issued when a revocation notice
 * arrives (NOTIFY ql_revocation) or half its validity has passed, never
 * per request. The rows come from the database, the signature from a
 * token worker; concurrent requests for a CRL being made wait for it. */
#include "pki_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "server.h"
#include "tok.h"
#include "xmalloc.h"

static const struct db_stmt pki_crl_rows = {
	"pki_crl_rows", "WITH n AS (UPDATE cas SET crl_number = crl_number + 1"
	" WHERE id = $1 RETURNING crl_number)"
	" SELECT n.crl_number, c.serial, extract(epoch FROM c.revoked_at)::bigint,"
	" coalesce(c.revocation_reason, 0) FROM n LEFT JOIN certificates c"
	" ON c.ca_id = $1 AND c.revoked_at IS NOT NULL AND c.not_after > now()", 1 };

/* One CRL being signed: its entries copied out of the result. */
struct pki_crl_job {
	struct pki		*pki;
	struct pki_ca		*ca;
	long long		 number;
	int			 hours;
	struct ca_revoked	*rv;
	char			(*serials)[CA_SERIAL_HEX];
	size_t			 n;
	unsigned char		*der;
	size_t			 len;
	char			 err[256];
};

static void
pki_crl_dirty(struct pki *pki)
{
	for (struct pki_ca *ca = pki->cas; ca != NULL; ca = ca->next)
		ca->is_crl_dirty = 1;
}

/* Any notice, or a reconnect (NULL), may change some CA's list. */
static void
pki_crl_on_notify(const char *payload, void *arg)
{
	(void)payload;
	pki_crl_dirty(arg);
}

int
pki_crl_register(struct pki *pki)
{
	if (db_register(pki->srv->db, &pki_crl_rows) == -1 ||
	    db_listen(pki->srv->db, "ql_revocation", pki_crl_on_notify, pki) == -1)
		return -1;
	return 0;
}

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
pki_crl_job_free(struct pki_crl_job *j)
{
	free(j->rv);
	free(j->serials);
	free(j->der);
	free(j);
}

static void
pki_crl_sign(void *arg)
{
	struct pki_crl_job *j = arg;

	if (ca_crl(&j->ca->signer, j->rv, j->n, j->number, j->hours, &j->der,
	    &j->len, j->err, sizeof(j->err)) == -1)
		j->der = NULL;
}

static void
pki_crl_signed(void *arg, int is_cancelled)
{
	struct pki_crl_job *j = arg;
	struct pki_ca *ca = j->ca;

	ca->is_crl_busy = 0;
	if (is_cancelled || j->der == NULL) {
		ca->is_crl_dirty = 1;
		pki_crl_flush(ca, is_cancelled ? WORK_CANCELLED_MSG :
		    j->err[0] ? j->err : "cannot sign the CRL");
		pki_crl_job_free(j);
		return;
	}
	free(ca->crl);
	ca->crl = j->der;
	ca->crl_len = j->len;
	j->der = NULL;
	/* Re-issue well before nextUpdate so relying parties never hold a
	 * stale CRL (at least daily with the default 24 h). */
	ca->crl_refresh = time(NULL) + j->hours * 3600L / 2;
	log_info("pki: CRL %lld for %s with %zu entries", j->number, ca->name, j->n);
	pki_crl_flush(ca, NULL);
	pki_crl_job_free(j);
}

static void
pki_crl_rows_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct pki_crl_job *j = arg;
	struct pki_ca *ca = j->ca;
	size_t rows = st == DB_OK ? (size_t)PQntuples(res) : 0;

	if (st != DB_OK || rows < 1) {
		ca->is_crl_busy = 0;
		ca->is_crl_dirty = 1;
		pki_crl_flush(ca, db_errstr(st, errstr));
		pki_crl_job_free(j);
		return;
	}
	j->number = db_val_int(res, 0, 0);
	j->rv = xcalloc(rows, sizeof(*j->rv));
	j->serials = xcalloc(rows, sizeof(*j->serials));
	for (size_t i = 0; i < rows; i++) {
		if (PQgetisnull(res, (int)i, 1))
			continue;
		snprintf(j->serials[j->n], CA_SERIAL_HEX, "%s", PQgetvalue(res, (int)i, 1));
		j->rv[j->n].serial_hex = j->serials[j->n];
		j->rv[j->n].revoked_at = (time_t)db_val_int(res, (int)i, 2);
		j->rv[j->n].reason = (int)db_val_int(res, (int)i, 3);
		j->n++;
	}
	if (tok_submit(pki_crl_sign, pki_crl_signed, j) == 0)
		return;
	ca->is_crl_busy = 0;
	ca->is_crl_dirty = 1;
	pki_crl_flush(ca, "token busy");
	pki_crl_job_free(j);
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
	w = xmalloc(sizeof(*w));
	w->cb = cb;
	w->arg = arg;
	w->next = ca->crl_waiters;
	ca->crl_waiters = w;
	if (ca->is_crl_busy)
		return;
	j = xcalloc(1, sizeof(*j));
	j->pki = pki;
	j->ca = ca;
	j->hours = (int)pki->srv->conf->ca_crl_validity_hours;
	ca->is_crl_busy = 1;
	ca->is_crl_dirty = 0;
	snprintf(id, sizeof(id), "%lld", ca->id);
	db_query(pki->srv->db, &pki_crl_rows, 1, &param, NULL, pki_crl_rows_got, j);
}

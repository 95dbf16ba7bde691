/* ocsp.c: the OCSP responder (RFC 6960). One signed response per
 * (issuer, certificate) is cached and re-signed when its status changes
 * (NOTIFY, via ocsp_forget) or half its validity has passed; a request with
 * a nonce gets a fresh signature. Status and cache are keyed by the issuer
 * the request names (matched by its key and name hashes) and the serial
 * together, so asking one CA about a serial never changes another CA's
 * answer. Signing goes through ca.c with the issuing CA's token key, on a
 * token worker (tok.c): a cached answer never waits for one. Statuses
 * come from the database; this module listens for revocation notices
 * itself. */
#include "ocsp.h"

#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "conf.h"
#include "db.h"
#include "log.h"
#include "revoked.h"
#include "server.h"
#include "tok.h"
#include "xmalloc.h"

#define OCSP_CACHE_MAX	200000

static const struct db_stmt ocsp_cert_status = {
	"ocsp_cert_status", "SELECT extract(epoch FROM revoked_at)::bigint,"
	" coalesce(revocation_reason, 0) FROM certificates WHERE serial = $1 AND ca_id = $2", 2 };
struct ocsp_entry {
	struct revoked_key	 key;		/* tree key: first */
	enum ca_ocsp_status	 status;
	time_t			 revoked_at;
	int			 reason;
	int			 md_nid;	/* CertID hash the cached der answers */
	unsigned char		*der;
	size_t			 len;
	time_t			 refresh;
};

struct ocsp {
	struct server	*srv;
	void		*tree;		/* tsearch tree of ocsp_entry by key */
	size_t		 n;
	/* Bumped by every forget and clear: a lookup that was in flight
	 * across one may carry the old status and must not be cached. */
	unsigned long	 epoch;
};

static void
ocsp_entry_free(void *p)
{
	struct ocsp_entry *e = p;

	free(e->der);
	free(e);
}

/* NOTIFY ql_revocation: that certificate's cached answer is stale; NULL
 * (a reconnect) or a payload we cannot read: any may be. */
static void
ocsp_on_revocation(const char *payload, void *arg)
{
	struct revoked_key k;
	int is_revoked;

	if (revoked_payload_parse(payload, &k, &is_revoked) == -1)
		ocsp_clear(arg);
	else
		ocsp_forget(arg, &k);
}

struct ocsp *
ocsp_new(struct server *srv)
{
	struct ocsp *o = xcalloc(1, sizeof(*o));

	o->srv = srv;
	if (db_listen(srv->db, "ql_revocation", ocsp_on_revocation, o) == -1) {
		free(o);
		return NULL;
	}
	return o;
}

void
ocsp_free(struct ocsp *o)
{
	if (o == NULL)
		return;
	tdestroy(o->tree, ocsp_entry_free);
	free(o);
}

int
ocsp_register(struct db_pool *db)
{
	return db_register(db, &ocsp_cert_status);
}

void
ocsp_clear(struct ocsp *o)
{
	tdestroy(o->tree, ocsp_entry_free);
	o->tree = NULL;
	o->n = 0;
	o->epoch++;
}

void
ocsp_forget(struct ocsp *o, const struct revoked_key *k)
{
	void *node = tfind(k, &o->tree, revoked_key_cmp);
	struct ocsp_entry *e;

	o->epoch++;
	if (node == NULL)
		return;
	e = *(struct ocsp_entry **)node;
	tdelete(k, &o->tree, revoked_key_cmp);
	ocsp_entry_free(e);
	o->n--;
}

struct ocsp_job {
	struct ocsp	*ocsp;
	struct pki_ca	*ca;
	OCSP_REQUEST	*req;
	OCSP_CERTID	*id;		/* points into req */
	int		 md_nid;
	int		 has_nonce;
	struct revoked_key key;
	unsigned long	 epoch;		/* o->epoch when the lookup was sent */
	pki_blob_cb	 cb;
	void		*arg;
	/* What a token worker signs, and what it made. */
	enum ca_ocsp_status status;
	time_t		 revoked_at;
	int		 reason;
	int		 hours;
	unsigned char	*der;
	size_t		 len;
};

static void
ocsp_reply_error(int status, pki_blob_cb cb, void *arg)
{
	unsigned char *der;
	size_t len;

	if (ca_ocsp_error(status, &der, &len) == -1) {
		cb(NULL, 0, "out of memory", arg);
		return;
	}
	cb(der, len, NULL, arg);
	free(der);
}

static void
ocsp_job_free(struct ocsp_job *j)
{
	OCSP_REQUEST_free(j->req);
	free(j->der);
	free(j);
}

static void
ocsp_sign_run(void *arg)
{
	struct ocsp_job *j = arg;

	if (ca_ocsp_sign(&j->ca->signer, j->has_nonce ? j->req : NULL, j->id,
	    j->status, j->revoked_at, j->reason, j->hours, &j->der, &j->len) == -1) {
		j->der = NULL;
		ERR_clear_error();
	}
}

/* Back on the loop: answer, and keep a nonce-free answer for reuse if the
 * status it says has not changed meanwhile. */
static void
ocsp_sign_done(void *arg, int is_cancelled)
{
	struct ocsp_job *j = arg;
	struct ocsp *o = j->ocsp;
	struct ocsp_entry *e;
	void *node;

	if (is_cancelled) {
		ocsp_reply_error(OCSP_RESPONSE_STATUS_TRYLATER, j->cb, j->arg);
		ocsp_job_free(j);
		return;
	}
	if (j->der == NULL) {
		log_warnx("pki: OCSP signing failed");
		ocsp_reply_error(OCSP_RESPONSE_STATUS_INTERNALERROR, j->cb, j->arg);
		ocsp_job_free(j);
		return;
	}
	j->cb(j->der, j->len, NULL, j->arg);
	node = j->has_nonce ? NULL : tfind(&j->key, &o->tree, revoked_key_cmp);
	if (node != NULL && j->epoch == o->epoch &&
	    (e = *(struct ocsp_entry **)node)->status == j->status) {
		free(e->der);
		e->der = j->der;
		e->len = j->len;
		e->md_nid = j->md_nid;
		e->refresh = time(NULL) + j->hours * 3600L / 2;
		j->der = NULL;
	}
	ocsp_job_free(j);
}

/* The cached answer when it fits, else a signature on a token worker. */
static void
ocsp_reply_entry(struct ocsp_job *j, struct ocsp_entry *e)
{
	if (!j->has_nonce && e->der != NULL && e->md_nid == j->md_nid &&
	    time(NULL) < e->refresh) {
		j->cb(e->der, e->len, NULL, j->arg);
		ocsp_job_free(j);
		return;
	}
	j->status = e->status;
	j->revoked_at = e->revoked_at;
	j->reason = e->reason;
	j->hours = (int)j->ocsp->srv->conf->ca_ocsp_validity_hours;
	j->epoch = j->ocsp->epoch;
	if (tok_submit(ocsp_sign_run, ocsp_sign_done, j) == -1) {
		ocsp_reply_error(OCSP_RESPONSE_STATUS_TRYLATER, j->cb, j->arg);
		ocsp_job_free(j);
	}
}

static void
ocsp_status(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct ocsp_job *j = arg;
	struct ocsp *o = j->ocsp;
	struct ocsp_entry tmp, *e;
	void *node;

	if (st != DB_OK) {
		log_warnx("pki: OCSP status lookup: %s", db_errstr(st, errstr));
		ocsp_reply_error(OCSP_RESPONSE_STATUS_TRYLATER, j->cb, j->arg);
		ocsp_job_free(j);
		return;
	}
	memset(&tmp, 0, sizeof(tmp));
	tmp.key = j->key;
	tmp.status = CA_OCSP_UNKNOWN;
	if (PQntuples(res) == 1) {
		tmp.status = PQgetisnull(res, 0, 0) ? CA_OCSP_GOOD : CA_OCSP_REVOKED;
		tmp.revoked_at = (time_t)db_val_int(res, 0, 0);
		tmp.reason = (int)db_val_int(res, 0, 1);
	}
	/* A concurrent lookup may have cached it meanwhile; a status that
	 * changed while we asked, or a full cache, answers without
	 * remembering. */
	node = tfind(&tmp.key, &o->tree, revoked_key_cmp);
	if (node != NULL) {
		e = *(struct ocsp_entry **)node;
	} else if (j->epoch == o->epoch && o->n < OCSP_CACHE_MAX) {
		e = xmalloc(sizeof(*e));
		*e = tmp;
		if (tsearch(e, &o->tree, revoked_key_cmp) == NULL) {
			free(e);
			e = &tmp;
		} else {
			o->n++;
		}
	} else {
		e = &tmp;
	}
	ocsp_reply_entry(j, e);
}

static struct pki_ca *
ocsp_issuer(struct pki *pki, OCSP_CERTID *id, int *md_nid)
{
	ASN1_OBJECT *md = NULL;

	OCSP_id_get0_info(NULL, &md, NULL, NULL, id);
	*md_nid = md ? OBJ_obj2nid(md) : NID_undef;
	for (struct pki_ca *ca = pki_cas(pki); ca != NULL; ca = ca->next) {
		OCSP_CERTID *mine = *md_nid == NID_sha1 ? ca->id_sha1 :
		    *md_nid == NID_sha256 ? ca->id_sha256 : NULL;

		if (mine != NULL && OCSP_id_issuer_cmp(mine, id) == 0)
			return ca;
	}
	return NULL;
}

void
ocsp_answer(struct ocsp *o, const unsigned char *der, size_t len, pki_blob_cb cb,
    void *arg)
{
	const unsigned char *p = der;
	struct ocsp_job *j;
	ASN1_INTEGER *serial = NULL;
	char id[24];
	const char *params[2];
	void *node;

	j = xcalloc(1, sizeof(*j));
	j->ocsp = o;
	j->cb = cb;
	j->arg = arg;
	j->req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
	/* One certificate per request, as every OCSP client sends. */
	if (j->req == NULL || p != der + len ||
	    OCSP_request_onereq_count(j->req) != 1) {
		ERR_clear_error();
		ocsp_reply_error(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, cb, arg);
		ocsp_job_free(j);
		return;
	}
	j->id = OCSP_onereq_get0_id(OCSP_request_onereq_get0(j->req, 0));
	if ((j->ca = ocsp_issuer(o->srv->pki, j->id, &j->md_nid)) == NULL) {
		ocsp_reply_error(OCSP_RESPONSE_STATUS_UNAUTHORIZED, cb, arg);
		ocsp_job_free(j);
		return;
	}
	OCSP_id_get0_info(NULL, NULL, NULL, &serial, j->id);
	j->key.ca_id = j->ca->id;
	ca_serial_hex(serial, j->key.serial);
	j->has_nonce = OCSP_REQUEST_get_ext_by_NID(j->req, NID_id_pkix_OCSP_Nonce, -1) >= 0;
	if ((node = tfind(&j->key, &o->tree, revoked_key_cmp)) != NULL) {
		ocsp_reply_entry(j, *(struct ocsp_entry **)node);
		return;
	}
	j->epoch = o->epoch;
	snprintf(id, sizeof(id), "%lld", j->ca->id);
	params[0] = j->key.serial;
	params[1] = id;
	db_query(o->srv->db, &ocsp_cert_status, 2, params, NULL, ocsp_status, j);
}


/* tlsauto.c: tls_cert = auto. The admin and device listeners get an
 * ECDSA P-256 certificate issued by the root at start (key on disk, mode
 * 0600), recorded and audited (installation-level) in the database before
 * it is written, and reused while the root that issued it is current and
 * it has 30 days left. */
#include "tlsauto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "pki.h"
#include "server.h"
#include "util.h"
#include "xmalloc.h"

#define TLSAUTO_MIN_DAYS	30

/* The certificate and its installation-level audit row, one statement. */
static const struct db_stmt tlsauto_insert = {
	"tlsauto_insert", "WITH c AS (INSERT INTO certificates (serial, ca_id, kind,"
	" subject, spki_sha256, not_before, not_after, cert_der) VALUES ($1, $2, 'tls',"
	" $3, $4, to_timestamp($5::float8), to_timestamp($6::float8), $7)"
	" RETURNING serial) SELECT ql_audit('daemon', 'tls_certificate.issue', c.serial,"
	" 'ok', $8, NULL) FROM c", 8 };
int
tlsauto_register(struct db_pool *db)
{
	return db_register(db, &tlsauto_insert);
}

struct tlsauto {
	struct server	*srv;
	char		*cert_path;
	char		*key_path;
	char		**out_cert;
	char		**out_key;
	X509		*cert;
	EVP_PKEY	*key;
	pki_done_cb	 cb;
	void		*arg;
};

static void
tlsauto_free(struct tlsauto *t)
{
	free(t->cert_path);
	free(t->key_path);
	X509_free(t->cert);
	EVP_PKEY_free(t->key);
	free(t);
}

static void
tlsauto_finish(struct tlsauto *t, const char *err)
{
	if (err == NULL) {
		free(*t->out_cert);
		free(*t->out_key);
		*t->out_cert = t->cert_path;
		*t->out_key = t->key_path;
		t->cert_path = t->key_path = NULL;
	}
	t->cb(err, t->arg);
	tlsauto_free(t);
}

/* Write via a temporary file and rename, so a crash leaves the old pair. */
static int
tlsauto_write_pem(const char *path, X509 *cert, EVP_PKEY *key, char *err, size_t errlen)
{
	char tmp[4096];
	FILE *f;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1 ||
	    (f = fdopen(fd, "w")) == NULL) {
		snprintf(err, errlen, "%.200s: %s", tmp, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	ok = cert ? PEM_write_X509(f, cert) :
	    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (fclose(f) != 0 || !ok || rename(tmp, path) == -1) {
		snprintf(err, errlen, "cannot write %s", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

static void
tlsauto_recorded(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct tlsauto *t = arg;
	char err[256];

	(void)res;
	if (st != DB_OK) {
		tlsauto_finish(t, db_errstr(st, errstr));
		return;
	}
	/* Recorded first, written second: a certificate in use is never
	 * missing from the database. */
	if (tlsauto_write_pem(t->key_path, NULL, t->key, err, sizeof(err)) == -1 ||
	    tlsauto_write_pem(t->cert_path, t->cert, NULL, err, sizeof(err)) == -1) {
		tlsauto_finish(t, err);
		return;
	}
	log_info("pki: issued server certificate %s", t->cert_path);
	tlsauto_finish(t, NULL);
}

/* "localhost,127.0.0.1" -> "DNS:localhost,IP:127.0.0.1" */
static int
tlsauto_san(const char *names, char *out, size_t len, char *first, size_t flen)
{
	char buf[512], *save = NULL, *tok;
	unsigned char addr[16];
	size_t off = 0;

	snprintf(buf, sizeof(buf), "%s", names);
	out[0] = first[0] = '\0';
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		int is_ip = inet_pton(AF_INET, tok, addr) == 1 ||
		    inet_pton(AF_INET6, tok, addr) == 1;
		int w = snprintf(out + off, len - off, "%s%s:%s", off ? "," : "",
		    is_ip ? "IP" : "DNS", tok);

		if (w < 0 || (size_t)w >= len - off)
			return -1;
		off += (size_t)w;
		if (first[0] == '\0')
			snprintf(first, flen, "%s", tok);
	}
	return off > 0 ? 0 : -1;
}

static int
tlsauto_reusable(struct pki_ca *root, const char *cert_path, const char *key_path)
{
	X509 *cert = NULL;
	FILE *f;
	int ok = 0;

	if (access(key_path, R_OK) != 0 || (f = fopen(cert_path, "r")) == NULL)
		return 0;
	cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert != NULL &&
	    X509_check_issued(root->signer.cert, cert) == X509_V_OK &&
	    X509_verify(cert, X509_get0_pubkey(root->signer.cert)) == 1 &&
	    X509_cmp_time(X509_get0_notAfter(cert),
	    &(time_t){ time(NULL) + TLSAUTO_MIN_DAYS * 86400L }) > 0)
		ok = 1;
	ERR_clear_error();
	X509_free(cert);
	return ok;
}

void
tlsauto_issue(struct server *srv, const char *name, char **cert_path,
    char **key_path, pki_done_cb cb, void *arg)
{
	char file[128], san[600], cn[256], serial[CA_SERIAL_HEX], err[256] = "";
	char id[24], nb[32], na[32], subject[256];
	unsigned char spki[32], *der = NULL;
	char devid[CA_DEVICE_ID];
	struct tlsauto *t = xcalloc(1, sizeof(*t));
	struct ca_request r = {
		.profile = CA_PROFILE_TLS_SERVER, .cn = cn, .org = "quarklink",
		.days = 397, .san = san,
	};
	char detail[900];
	const char *v[8];
	int lengths[8] = { -1, -1, -1, 0, -1, -1, 0, -1 }, derlen;

	t->srv = srv;
	t->cb = cb;
	t->arg = arg;
	t->out_cert = cert_path;
	t->out_key = key_path;
	snprintf(file, sizeof(file), "%s-auto.crt", name);
	t->cert_path = util_path_join(srv->conf->state_dir, file);
	snprintf(file, sizeof(file), "%s-auto.key", name);
	t->key_path = util_path_join(srv->conf->state_dir, file);
	if (tlsauto_reusable(pki_root(srv->pki), t->cert_path, t->key_path)) {
		tlsauto_finish(t, NULL);
		return;
	}
	if (tlsauto_san(srv->conf->tls_names, san, sizeof(san), cn,
	    sizeof(cn)) == -1) {
		tlsauto_finish(t, "server.tls_names is empty or too long");
		return;
	}
	r.issuer = &pki_root(srv->pki)->signer;
	if ((t->key = EVP_EC_gen("P-256")) == NULL) {
		tlsauto_finish(t, "cannot generate a key");
		return;
	}
	r.pubkey = t->key;
	if ((t->cert = ca_issue(&r, serial, err, sizeof(err))) == NULL ||
	    ca_der(t->cert, &der, &derlen) == -1 ||
	    ca_device_id(t->key, devid, spki) == -1 ||
	    ca_name_text(X509_get_subject_name(t->cert), subject, sizeof(subject)) == -1) {
		OPENSSL_free(der);
		tlsauto_finish(t, err[0] ? err : "cannot issue the server certificate");
		return;
	}
	snprintf(id, sizeof(id), "%lld", pki_root(srv->pki)->id);
	snprintf(nb, sizeof(nb), "%lld", (long long)pki_asn1_time(X509_get0_notBefore(t->cert)));
	snprintf(na, sizeof(na), "%lld", (long long)pki_asn1_time(X509_get0_notAfter(t->cert)));
	v[0] = serial; v[1] = id; v[2] = subject;
	v[3] = (const char *)spki; lengths[3] = sizeof(spki);
	v[4] = nb; v[5] = na;
	v[6] = (const char *)der; lengths[6] = derlen;
	snprintf(detail, sizeof(detail), "%s listener: %s; %s", name, subject, san);
	v[7] = detail;
	db_query(srv->db, &tlsauto_insert, 8, v, lengths, tlsauto_recorded, t);
	OPENSSL_free(der);
}

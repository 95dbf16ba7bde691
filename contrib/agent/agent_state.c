/* agent_state.c: state.json (installed version, last poll) and the
 * identity files (cert.pem, chain.pem). Every write is atomic: a crash
 * leaves the previous state, never a torn one. */
#include "agent_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <yajl/yajl_gen.h>

#include "agent.h"
#include "agent_conf.h"
#include "agent_json.h"
#include "agent_key.h"
#include "agent_util.h"

#define AGENT_STATE_MAX	(64 * 1024)
#define AGENT_CERTS_MAX	(256 * 1024)

int
agent_state_dir(const struct agent_conf *c)
{
	struct stat st;

	if (mkdir(c->state_dir, 0700) == -1 && errno != EEXIST) {
		agent_err("state_dir %s: %s", c->state_dir, strerror(errno));
		return -1;
	}
	if (stat(c->state_dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		agent_err("state_dir %s: not a directory", c->state_dir);
		return -1;
	}
	return 0;
}

int
agent_state_load(const struct agent_conf *c, struct agent_state *s)
{
	char *path, *text = NULL, err[128];
	const char *v;
	yajl_val doc;
	long long n;
	size_t len;
	int rc = -1;

	memset(s, 0, sizeof(*s));
	s->installed_image = -1;
	if ((path = agent_path(c->state_dir, "state.json")) == NULL)
		return -1;
	if (agent_read_file(path, AGENT_STATE_MAX, &text, &len) == -1) {
		if (errno == ENOENT)
			rc = 0;
		else
			agent_err("%s: %s", path, strerror(errno));
		goto out;
	}
	if ((doc = agent_json_parse(text, len, err, sizeof(err))) == NULL) {
		agent_err("%s: %s", path, err);
		goto out;
	}
	if ((v = agent_json_str(doc, "installed_version")) != NULL)
		snprintf(s->installed_version, sizeof(s->installed_version), "%s", v);
	if ((n = agent_json_uint(doc, "installed_image")) >= 0)
		s->installed_image = n;
	if ((n = agent_json_uint(doc, "last_poll")) >= 0)
		s->last_poll = (time_t)n;
	if ((n = agent_json_uint(doc, "renewed_at")) >= 0)
		s->renewed_at = (time_t)n;
	if ((v = agent_json_str(doc, "last_result")) != NULL)
		snprintf(s->last_result, sizeof(s->last_result), "%s", v);
	if ((v = agent_json_str(doc, "attestation")) != NULL)
		snprintf(s->attestation, sizeof(s->attestation), "%s", v);
	if ((n = agent_json_uint(doc, "attested_at")) >= 0)
		s->attested_at = (time_t)n;
	if ((v = agent_json_str(doc, "tpm2_key")) != NULL)
		snprintf(s->tpm2_key, sizeof(s->tpm2_key), "%s", v);
	yajl_tree_free(doc);
	rc = 0;
out:
	free(text);
	free(path);
	return rc;
}

static void
agent_state_str(yajl_gen g, const char *k, const char *v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	yajl_gen_string(g, (const unsigned char *)v, strlen(v));
}

static void
agent_state_int(yajl_gen g, const char *k, long long v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	yajl_gen_integer(g, v);
}

int
agent_state_save(const struct agent_conf *c, const struct agent_state *s)
{
	const unsigned char *buf;
	char *path;
	size_t len;
	yajl_gen g;
	int rc = -1;

	if ((g = yajl_gen_alloc(NULL)) == NULL)
		return -1;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	agent_state_str(g, "installed_version", s->installed_version);
	if (s->installed_image >= 0)
		agent_state_int(g, "installed_image", s->installed_image);
	agent_state_int(g, "last_poll", (long long)s->last_poll);
	agent_state_str(g, "last_result", s->last_result);
	agent_state_int(g, "renewed_at", (long long)s->renewed_at);
	if (s->attestation[0] != '\0') {
		agent_state_str(g, "attestation", s->attestation);
		agent_state_int(g, "attested_at", (long long)s->attested_at);
	}
	if (s->tpm2_key[0] != '\0')
		agent_state_str(g, "tpm2_key", s->tpm2_key);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok &&
	    (path = agent_path(c->state_dir, "state.json")) != NULL) {
		rc = agent_write_atomic(path, buf, len, 0600);
		free(path);
	}
	yajl_gen_free(g);
	return rc;
}

X509_STORE *
agent_root_store(const struct agent_conf *c)
{
	X509_STORE *st;

	if ((st = X509_STORE_new()) == NULL)
		return NULL;
	if (X509_STORE_load_file(st, c->root_ca) != 1) {
		agent_err("root_ca %s: cannot load: %s", c->root_ca, agent_ssl_err());
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

int
agent_ident_verify(const struct agent_conf *c, X509 *cert, STACK_OF(X509) *chain,
    const char **why)
{
	X509_STORE *st;
	X509_STORE_CTX *ctx = NULL;
	int rc = -1;

	*why = "cannot load the pinned root";
	if ((st = agent_root_store(c)) == NULL)
		return -1;
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, st, cert, chain) != 1)
		goto out;
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
	if (X509_verify_cert(ctx) == 1)
		rc = 0;
	else
		*why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return rc;
}

static STACK_OF(X509) *
agent_ident_read_certs(const char *path)
{
	STACK_OF(X509) *sk;
	X509 *x;
	BIO *b;

	if ((b = BIO_new_file(path, "r")) == NULL)
		return NULL;
	if ((sk = sk_X509_new_null()) == NULL) {
		BIO_free(b);
		return NULL;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(sk, x) == 0) {
			X509_free(x);
			break;
		}
	ERR_clear_error();
	BIO_free(b);
	return sk;
}

int
agent_ident_load(const struct agent_conf *c, struct agent_ident *id)
{
	STACK_OF(X509) *certs = NULL;
	char *cpath = NULL, *chpath = NULL;
	int rc = AGENT_EFAIL;

	memset(id, 0, sizeof(*id));
	if ((cpath = agent_path(c->state_dir, "cert.pem")) == NULL ||
	    (chpath = agent_path(c->state_dir, "chain.pem")) == NULL)
		goto out;
	if (access(cpath, F_OK) == -1) {
		rc = AGENT_ENOTENROLLED;
		goto out;
	}
	if ((certs = agent_ident_read_certs(cpath)) == NULL || sk_X509_num(certs) < 1) {
		agent_err("%s: no certificate", cpath);
		goto out;
	}
	id->cert = sk_X509_shift(certs);
	if ((id->chain = agent_ident_read_certs(chpath)) == NULL)
		id->chain = sk_X509_new_null();
	if ((id->key = agent_key_load(c, 0)) == NULL) {
		/* agent_key_load said why, unless the file is simply gone. */
		if (errno == ENOENT)
			agent_err("%s: the device key is missing", cpath);
		goto out;
	}
	if (X509_check_private_key(id->cert, id->key) != 1) {
		ERR_clear_error();
		agent_err("%s does not match the device key", cpath);
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(id->cert), NID_commonName,
	    id->device_id, sizeof(id->device_id)) <= 0 &&
	    agent_key_device_id_x509(id->cert, id->device_id) == -1)
		goto out;
	rc = AGENT_OK;
out:
	sk_X509_pop_free(certs, X509_free);
	free(cpath);
	free(chpath);
	if (rc != AGENT_OK)
		agent_ident_free(id);
	return rc;
}

static int
agent_ident_write(const char *path, X509 *first, STACK_OF(X509) *rest)
{
	BIO *mem;
	char *data;
	long len;
	int i, rc = -1;

	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	if (first != NULL && PEM_write_bio_X509(mem, first) != 1)
		goto out;
	for (i = 0; rest != NULL && i < sk_X509_num(rest); i++)
		if (PEM_write_bio_X509(mem, sk_X509_value(rest, i)) != 1)
			goto out;
	len = BIO_get_mem_data(mem, &data);
	rc = agent_write_atomic(path, data, (size_t)len, 0644);
out:
	BIO_free(mem);
	return rc;
}

int
agent_ident_store(const struct agent_conf *c, X509 *cert, STACK_OF(X509) *chain)
{
	char *cpath = NULL, *chpath = NULL;
	int rc = -1;

	if ((cpath = agent_path(c->state_dir, "cert.pem")) == NULL ||
	    (chpath = agent_path(c->state_dir, "chain.pem")) == NULL)
		goto out;
	if (agent_ident_write(chpath, NULL, chain) == -1 ||
	    agent_ident_write(cpath, cert, NULL) == -1)
		goto out;
	rc = 0;
out:
	free(cpath);
	free(chpath);
	return rc;
}

void
agent_ident_free(struct agent_ident *id)
{
	EVP_PKEY_free(id->key);
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	memset(id, 0, sizeof(*id));
}

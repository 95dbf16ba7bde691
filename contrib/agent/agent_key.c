/* agent_key.c: the key stores. "file": a PEM key in the state directory,
 * created 0600 and refused when others can read it. "tpm2": the key is made
 * inside the TPM through the tpm2-openssl provider; what lands on disk is a
 * TSS2 blob that only that TPM can load (or a persistent handle named in
 * the configuration), and every signature and key agreement happens in the
 * TPM. */
#include "agent_key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "agent.h"
#include "agent_conf.h"
#include "agent_util.h"

#define AGENT_KEY_FILE_NAME	"key.pem"
#define AGENT_KEY_TPM2_NAME	"key.tpm2.pem"

static OSSL_PROVIDER *agent_key_tpm2, *agent_key_default;

void
agent_key_cleanup(void)
{
	/* The tpm2 provider closes its TPM context when unloaded. */
	if (agent_key_tpm2 != NULL)
		OSSL_PROVIDER_unload(agent_key_tpm2);
	if (agent_key_default != NULL)
		OSSL_PROVIDER_unload(agent_key_default);
	agent_key_tpm2 = agent_key_default = NULL;
}

int
agent_key_init(const struct agent_conf *c)
{
	if (c->key_store != AGENT_KEY_TPM2)
		return 0;
	if (c->tpm2_tcti[0] != '\0' && setenv("TPM2OPENSSL_TCTI", c->tpm2_tcti, 1) == -1)
		return -1;
	if ((agent_key_tpm2 = OSSL_PROVIDER_load(NULL, "tpm2")) == NULL) {
		agent_err("key_store tpm2: cannot load the tpm2 OpenSSL provider"
		    " (Debian package tpm2-openssl): %s", agent_ssl_err());
		return -1;
	}
	if ((agent_key_default = OSSL_PROVIDER_load(NULL, "default")) == NULL) {
		agent_err("cannot load the default OpenSSL provider: %s", agent_ssl_err());
		return -1;
	}
	/* OpenSSL 3.0 does not follow a key to its provider: with default
	 * preferred, TLS finds no private key. Random numbers stay on the
	 * default provider, the TPM's are slow and libcurl wants plenty. */
	if (EVP_set_default_properties(NULL, "?provider=tpm2") != 1 ||
	    RAND_set_DRBG_type(NULL, "CTR-DRBG", "provider=default", "AES-256-CTR", NULL) != 1) {
		agent_err("cannot set the OpenSSL provider preferences: %s", agent_ssl_err());
		return -1;
	}
	return 0;
}

static EVP_PKEY *
agent_key_store_open(const char *uri)
{
	OSSL_STORE_CTX *st;
	OSSL_STORE_INFO *info;
	EVP_PKEY *key = NULL;

	if ((st = OSSL_STORE_open_ex(uri, NULL, "?provider=tpm2", NULL, NULL, NULL,
	    NULL, NULL)) == NULL)
		return NULL;
	while (key == NULL && !OSSL_STORE_eof(st)) {
		if ((info = OSSL_STORE_load(st)) == NULL)
			continue;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			key = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
		if (OSSL_STORE_error(st))
			break;
	}
	OSSL_STORE_close(st);
	return key;
}

/* The file must be ours, regular, and unreadable by group and others. */
static int
agent_key_file_safe(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == -1)
		return -1;
	if (!S_ISREG(st.st_mode)) {
		agent_err("%s: not a regular file", path);
		errno = EPERM;
		return -1;
	}
	if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
		agent_err("%s: mode %03o: the device key must be owned by this user and"
		    " not accessible by group or others (chmod 600)", path,
		    (unsigned)(st.st_mode & 0777));
		errno = EPERM;
		return -1;
	}
	return 0;
}

static int
agent_key_write_new(const char *path, EVP_PKEY *key, int is_tpm)
{
	OSSL_ENCODER_CTX *enc = NULL;
	BIO *mem = NULL;
	char *data;
	long len;
	int rc = -1;

	if ((mem = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (is_tpm) {
		enc = OSSL_ENCODER_CTX_new_for_pkey(key, OSSL_KEYMGMT_SELECT_ALL, "PEM",
		    NULL, "provider=tpm2");
		if (enc == NULL || OSSL_ENCODER_to_bio(enc, mem) != 1) {
			agent_err("cannot encode the TPM key blob: %s", agent_ssl_err());
			goto out;
		}
	} else if (PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0, NULL, NULL) != 1) {
		agent_err("cannot encode the key: %s", agent_ssl_err());
		goto out;
	}
	len = BIO_get_mem_data(mem, &data);
	rc = agent_write_atomic(path, data, (size_t)len, 0600);
out:
	OSSL_ENCODER_CTX_free(enc);
	BIO_free_all(mem);
	return rc;
}

static EVP_PKEY *
agent_key_generate(int is_tpm)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *key = NULL;

	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", is_tpm ? "provider=tpm2" : "provider=default");
	if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_group_name(ctx, "P-256") != 1 ||
	    EVP_PKEY_generate(ctx, &key) != 1) {
		agent_err("cannot generate a P-256 key%s: %s", is_tpm ? " in the TPM" : "",
		    agent_ssl_err());
		key = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return key;
}

EVP_PKEY *
agent_key_load(const struct agent_conf *c, int create)
{
	int is_tpm = c->key_store == AGENT_KEY_TPM2;
	char *path;
	EVP_PKEY *key = NULL;
	FILE *f;

	if (is_tpm && c->tpm2_key[0] != '\0') {
		if ((key = agent_key_store_open(c->tpm2_key)) == NULL)
			agent_err("tpm2_key %s: cannot load the key from the TPM: %s",
			    c->tpm2_key, agent_ssl_err());
		return key;
	}
	path = agent_path(c->state_dir, is_tpm ? AGENT_KEY_TPM2_NAME : AGENT_KEY_FILE_NAME);
	if (path == NULL)
		return NULL;
	if (agent_key_file_safe(path) == -1) {
		if (errno != ENOENT || !create)
			goto out;
		if ((key = agent_key_generate(is_tpm)) == NULL)
			goto out;
		if (agent_key_write_new(path, key, is_tpm) == -1) {
			EVP_PKEY_free(key);
			key = NULL;
		}
		goto out;
	}
	if (is_tpm) {
		if ((key = agent_key_store_open(path)) == NULL)
			agent_err("%s: cannot load the key into the TPM: %s", path,
			    agent_ssl_err());
	} else if ((f = fopen(path, "r")) != NULL) {
		if ((key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
			agent_err("%s: not a PEM private key: %s", path, agent_ssl_err());
		fclose(f);
	} else
		agent_err("%s: %s", path, strerror(errno));
out:
	free(path);
	return key;
}

static void
agent_key_base32(const unsigned char *in, size_t len, char *out)
{
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned int buf = 0, bits = 0;
	size_t i, o = 0;

	for (i = 0; i < len; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = alpha[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = alpha[(buf << (5 - bits)) & 31];
	out[o] = '\0';
}

static int
agent_key_id_of_spki(const unsigned char *der, int len, char out[AGENT_DEVICE_ID])
{
	unsigned char md[32];

	if (len <= 0 || EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) != 1)
		return -1;
	agent_key_base32(md, 20, out);
	return 0;
}

int
agent_key_device_id(EVP_PKEY *key, char out[AGENT_DEVICE_ID])
{
	unsigned char *der = NULL;
	int len, rc;

	len = i2d_PUBKEY(key, &der);
	rc = agent_key_id_of_spki(der, len, out);
	OPENSSL_free(der);
	return rc;
}

int
agent_key_device_id_x509(void *x509, char out[AGENT_DEVICE_ID])
{
	unsigned char *der = NULL;
	int len, rc;

	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x509), &der);
	rc = agent_key_id_of_spki(der, len, out);
	OPENSSL_free(der);
	return rc;
}

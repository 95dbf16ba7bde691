/* attest_trust.c: TPM manufacturer CAs (see attest_trust.h). The store is
 * built per request from the installation's certificates (reference
 * counted, so adding them costs a pointer each) and the project's DER
 * from the same query that reads the project's policy: every node sees an
 * admin's change at once, with no cache to invalidate across nodes, for
 * the price of parsing the project's few CA certificates per challenge,
 * small beside the RSA-OAEP and signature checks of the challenge itself. */
#include "attest_trust.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "util.h"
#include "xmalloc.h"

static STACK_OF(X509) *attest_trust_cas;

/* Append every certificate of one PEM file; a file without any fails. */
static int
attest_trust_file(STACK_OF(X509) *sk, const char *path, char *err, size_t errlen)
{
	const char *errstr = NULL;
	char *text = NULL;
	size_t len, before = (size_t)sk_X509_num(sk);
	BIO *bio;
	X509 *x;

	if (util_read_file(path, ATTEST_TRUST_FILE_MAX, &text, &len, &errstr) == -1) {
		snprintf(err, errlen, "%s: %s", path, errstr);
		return -1;
	}
	bio = BIO_new_mem_buf(text, (int)len);
	while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if ((size_t)sk_X509_num(sk) >= ATTEST_TRUST_MAX) {
			X509_free(x);
			snprintf(err, errlen, "%s: more than %d manufacturer CAs", path,
			    ATTEST_TRUST_MAX);
			goto fail;
		}
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			snprintf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
	}
	ERR_clear_error();	/* the end of the file reads as an error */
	if ((size_t)sk_X509_num(sk) == before) {
		snprintf(err, errlen, "%s: no PEM certificate", path);
		goto fail;
	}
	BIO_free(bio);
	free(text);
	return 0;
fail:
	BIO_free(bio);
	free(text);
	return -1;
}

/* A directory: each regular file in it, in name order, none skipped. */
static int
attest_trust_dir(STACK_OF(X509) *sk, const char *dir, char *err, size_t errlen)
{
	struct dirent **names;
	struct stat st;
	char *path;
	int n, rc = 0;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		path = util_path_join(dir, names[i]->d_name);
		if (rc == 0 && names[i]->d_name[0] != '.' && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode))
			rc = attest_trust_file(sk, path, err, errlen);
		free(path);
		free(names[i]);
	}
	free(names);
	return rc;
}

int
attest_trust_load(const char *paths, char *err, size_t errlen)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	struct stat st;
	const char *p = paths;
	char *word;
	size_t n;
	int rc = 0;

	if (sk == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (rc == 0 && *(p += strspn(p, " ")) != '\0') {
		n = strcspn(p, " ");
		word = xstrndup(p, n);
		p += n;
		if (stat(word, &st) == -1) {
			snprintf(err, errlen, "%s: %s", word, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode))
			rc = attest_trust_dir(sk, word, err, errlen);
		else
			rc = attest_trust_file(sk, word, err, errlen);
		free(word);
	}
	if (rc == -1) {
		sk_X509_pop_free(sk, X509_free);
		return -1;
	}
	attest_trust_free();
	attest_trust_cas = sk;
	return 0;
}

size_t
attest_trust_count(void)
{
	return attest_trust_cas ? (size_t)sk_X509_num(attest_trust_cas) : 0;
}

void
attest_trust_free(void)
{
	sk_X509_pop_free(attest_trust_cas, X509_free);
	attest_trust_cas = NULL;
}

X509_STORE *
attest_trust_store(const struct attest_project *p)
{
	X509_STORE *store = X509_STORE_new();
	const unsigned char *der;
	X509 *x;

	if (store == NULL)
		return NULL;
	for (size_t i = 0; i < attest_trust_count(); i++)
		if (X509_STORE_add_cert(store, sk_X509_value(attest_trust_cas,
		    (int)i)) != 1)
			ERR_clear_error();	/* the same CA twice */
	for (size_t i = 0; p != NULL && i < p->nca; i++) {
		der = p->ca_der[i];
		if ((x = d2i_X509(NULL, &der, (long)p->ca_len[i])) == NULL) {
			ERR_clear_error();
			continue;
		}
		if (X509_STORE_add_cert(store, x) != 1)
			ERR_clear_error();
		X509_free(x);
	}
	return store;
}

X509 *
attest_trust_pem(const char *text, size_t len, const char **why)
{
	BIO *bio = BIO_new_mem_buf(text, (int)len);
	X509 *x = NULL, *extra;

	*why = "body must be one PEM certificate";
	if (bio == NULL || (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
		goto fail;
	if ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		X509_free(extra);
		goto fail;
	}
	if (X509_check_ca(x) == 0) {
		*why = "the certificate is not a CA certificate";
		goto fail;
	}
	ERR_clear_error();
	BIO_free(bio);
	return x;
fail:
	ERR_clear_error();
	X509_free(x);
	BIO_free(bio);
	return NULL;
}

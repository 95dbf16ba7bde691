/* agent_verify.c: the checks an update passes before anything runs.
 * Signatures are CMS (the same that `openssl cms -verify` and RAUC
 * accept); the chain ends at the pinned root and nowhere else; the signer
 * must be a code-signing certificate of this device's project. Files are
 * streamed through the hash and the signature check, never loaded whole. */
#include "agent_verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "agent.h"
#include "agent_json.h"
#include "agent_util.h"

#define AGENT_HASH_BLOCK	(64 * 1024)

int
agent_version_parse(const char *s, long v[4])
{
	int n = 0;
	long x;

	v[0] = v[1] = v[2] = v[3] = 0;
	for (;;) {
		if (n == 4 || *s < '0' || *s > '9')
			return -1;
		for (x = 0; *s >= '0' && *s <= '9'; s++) {
			x = x * 10 + (*s - '0');
			if (x > 0x7fffffffL)
				return -1;
		}
		v[n++] = x;
		if (*s == '\0')
			return 0;
		if (*s++ != '.')
			return -1;
	}
}

int
agent_version_cmp(const long a[4], const long b[4])
{
	int i;

	for (i = 0; i < 4; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

static int
agent_verify_signer(CMS_ContentInfo *cms, const char *org, char *err, size_t errlen)
{
	STACK_OF(X509) *signers;
	char o[128];
	X509 *x;
	int n;

	if ((signers = CMS_get0_signers(cms)) == NULL || sk_X509_num(signers) != 1) {
		snprintf(err, errlen, "expected exactly one signer");
		sk_X509_free(signers);
		return -1;
	}
	x = sk_X509_value(signers, 0);
	sk_X509_free(signers);
	if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) == 0 ||
	    (X509_get_extended_key_usage(x) & XKU_CODE_SIGN) == 0) {
		snprintf(err, errlen, "the signer is not a code-signing certificate");
		return -1;
	}
	if (org != NULL) {
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
		    NID_organizationName, o, sizeof(o));
		if (n <= 0 || strcmp(o, org) != 0) {
			snprintf(err, errlen, "signed by another project's key (O=%s)",
			    n > 0 ? o : "?");
			return -1;
		}
	}
	return 0;
}

/* CMS_verify against the pinned root. The store's purpose is "any": the
 * code-signing EKU is checked on the signer itself (OpenSSL 3.0 has no
 * code-signing purpose), and S/MIME's would refuse it. */
static int
agent_verify_cms(CMS_ContentInfo *cms, BIO *dcont, BIO *out, X509_STORE *store,
    STACK_OF(X509) *untrusted, const char *org, char *err, size_t errlen)
{
	X509_VERIFY_PARAM *p = X509_STORE_get0_param(store);

	X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_ANY);
	if (CMS_verify(cms, untrusted, store, dcont, out, CMS_BINARY) != 1) {
		snprintf(err, errlen, "signature does not verify against the pinned root: %s",
		    agent_ssl_err());
		return -1;
	}
	return agent_verify_signer(cms, org, err, errlen);
}

static int
agent_manifest_hex(const char *hex, unsigned char out[32])
{
	int i, hi, lo;

	if (hex == NULL || strlen(hex) != 64)
		return -1;
	for (i = 0; i < 32; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int
agent_manifest_copy(char *dst, size_t len, const char *src)
{
	if (src == NULL || src[0] == '\0' || strlen(src) >= len)
		return -1;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

int
agent_manifest_parse(const char *text, size_t len, struct agent_manifest *m,
    char *err, size_t errlen)
{
	yajl_val doc, hw;
	const char *what = NULL;
	long v[4];
	size_t i;
	int enc;

	memset(m, 0, sizeof(*m));
	m->encrypted_size = m->segment_size = -1;
	if ((doc = agent_json_parse(text, len, err, errlen)) == NULL)
		return -1;
	if (agent_json_uint(doc, "format") != 1)
		what = "format (must be 1)";
	else if (agent_manifest_copy(m->project, sizeof(m->project),
	    agent_json_str(doc, "project")) == -1)
		what = "project";
	else if ((m->image_id = agent_json_uint(doc, "image_id")) < 1)
		what = "image_id";
	else if (agent_manifest_copy(m->name, sizeof(m->name), agent_json_str(doc, "name")) == -1)
		what = "name";
	else if (agent_manifest_copy(m->version, sizeof(m->version),
	    agent_json_str(doc, "version")) == -1 || agent_version_parse(m->version, v) == -1)
		what = "version";
	else if ((m->size = agent_json_uint(doc, "size")) < 0)
		what = "size";
	else if (agent_manifest_hex(agent_json_str(doc, "sha256"), m->sha256) == -1)
		what = "sha256";
	else if (agent_json_str(doc, "created") == NULL ||
	    agent_time_parse(agent_json_str(doc, "created"), &m->created) == -1)
		what = "created";
	else if (agent_json_str(doc, "expires") == NULL ||
	    agent_time_parse(agent_json_str(doc, "expires"), &m->expires) == -1)
		what = "expires";
	else if ((hw = agent_json_get(doc, "hardware", yajl_t_array)) == NULL ||
	    hw->u.array.len > AGENT_HW_MAX)
		what = "hardware";
	else if ((enc = agent_json_bool(doc, "encrypted")) == -1)
		what = "encrypted";
	if (what == NULL) {
		for (i = 0; i < hw->u.array.len && what == NULL; i++)
			if (agent_manifest_copy(m->hardware[i], sizeof(m->hardware[i]),
			    YAJL_GET_STRING(hw->u.array.values[i])) == -1)
				what = "hardware";
		m->nhardware = hw->u.array.len;
		m->is_encrypted = enc;
	}
	if (what == NULL && m->is_encrypted &&
	    ((m->encrypted_size = agent_json_uint(doc, "encrypted_size")) < 1 ||
	    (m->segment_size = agent_json_uint(doc, "segment_size")) < 1 ||
	    m->segment_size > 16 * 1024 * 1024))
		what = "encrypted_size or segment_size";
	yajl_tree_free(doc);
	if (what != NULL) {
		snprintf(err, errlen, "manifest: missing or invalid %s", what);
		return -1;
	}
	agent_hex(m->sha256, 32, m->sha256_hex);
	return 0;
}

int
agent_verify_manifest(const unsigned char *der, size_t len, X509_STORE *store,
    STACK_OF(X509) *untrusted, const char *org, struct agent_manifest *m, char *err,
    size_t errlen)
{
	CMS_ContentInfo *cms = NULL;
	const unsigned char *p = der;
	BIO *out = NULL;
	char *json;
	long jlen;
	int rc = -1;

	if (len > AGENT_MANIFEST_MAX || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL ||
	    p != der + len || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
		snprintf(err, errlen, "manifest is not a DER CMS SignedData");
		ERR_clear_error();
		goto out;
	}
	if ((out = BIO_new(BIO_s_mem())) == NULL)
		goto out;
	if (agent_verify_cms(cms, NULL, out, store, untrusted, org, err, errlen) == -1)
		goto out;
	if ((jlen = BIO_get_mem_data(out, &json)) <= 0 || jlen > AGENT_MANIFEST_MAX ||
	    BIO_write(out, "", 1) != 1) {
		snprintf(err, errlen, "manifest has no content");
		goto out;
	}
	jlen = BIO_get_mem_data(out, &json) - 1;
	rc = agent_manifest_parse(json, (size_t)jlen, m, err, errlen);
out:
	BIO_free(out);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
agent_verify_policy(const struct agent_manifest *m, const char *project,
    const char *hardware, const char *installed, time_t now, long long max_size,
    char *err, size_t errlen)
{
	long nv[4], iv[4];
	size_t i;

	if (strcmp(m->project, project) != 0) {
		snprintf(err, errlen, "manifest is for project %s, not %s", m->project, project);
		return -1;
	}
	for (i = 0; i < m->nhardware; i++)
		if (strcmp(m->hardware[i], hardware) == 0)
			break;
	if (i == m->nhardware) {
		snprintf(err, errlen, "manifest does not list this hardware (%s)",
		    hardware[0] ? hardware : "none configured");
		return -1;
	}
	if (now >= m->expires) {
		snprintf(err, errlen, "manifest expired");
		return -1;
	}
	if (m->size > max_size || (m->is_encrypted && m->encrypted_size > max_size + max_size / 64 + 4096)) {
		snprintf(err, errlen, "image of %lld bytes is larger than max_image_size", m->size);
		return -1;
	}
	if (installed != NULL && installed[0] != '\0') {
		if (agent_version_parse(m->version, nv) == -1 ||
		    agent_version_parse(installed, iv) == -1) {
			snprintf(err, errlen, "cannot compare versions %s and %s", m->version,
			    installed);
			return -1;
		}
		if (agent_version_cmp(nv, iv) <= 0) {
			snprintf(err, errlen, "version %s is not newer than the installed %s"
			    " (rollback refused)", m->version, installed);
			return -1;
		}
	}
	return 0;
}

int
agent_verify_detached(const unsigned char *der, size_t len, const char *path,
    X509_STORE *store, STACK_OF(X509) *untrusted, const char *org, char *err,
    size_t errlen)
{
	CMS_ContentInfo *cms = NULL;
	const unsigned char *p = der;
	BIO *in = NULL;
	int rc = -1;

	if (len > AGENT_MANIFEST_MAX || (cms = d2i_CMS_ContentInfo(NULL, &p, (long)len)) == NULL ||
	    p != der + len || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed ||
	    !CMS_is_detached(cms)) {
		snprintf(err, errlen, "image signature is not a detached DER CMS SignedData");
		ERR_clear_error();
		goto out;
	}
	if ((in = BIO_new_file(path, "rb")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (agent_verify_cms(cms, in, NULL, store, untrusted, org, err, errlen) == -1) {
		/* Name it as what it is. */
		if (strncmp(err, "signature", 9) == 0) {
			char tmp[256];
			snprintf(tmp, sizeof(tmp), "image %s", err);
			snprintf(err, errlen, "%s", tmp);
		}
		goto out;
	}
	rc = 0;
out:
	BIO_free(in);
	CMS_ContentInfo_free(cms);
	return rc;
}

int
agent_hash_file(const char *path, unsigned char md[32], long long *size)
{
	EVP_MD_CTX *ctx;
	unsigned char *buf;
	long long total = 0;
	ssize_t n;
	int fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((buf = malloc(AGENT_HASH_BLOCK)) == NULL || (ctx = EVP_MD_CTX_new()) == NULL) {
		free(buf);
		close(fd);
		return -1;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while ((n = read(fd, buf, AGENT_HASH_BLOCK)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
		total += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		goto out;
	*size = total;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return rc;
}

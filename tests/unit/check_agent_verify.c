/* check_agent_verify.c: ql-agent's update checks with real CMS made here
 * by OpenSSL: a root, code-signing certificates of two projects, one of
 * another root, one without the codeSigning usage; manifests signed by
 * each; versions; expiry; hardware; detached signatures over a file; the
 * segmented AES-256-GCM decryption with a tampered, a truncated and a
 * reordered segment; the content key unwrapped from an EnvelopedData. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "agent_stream.h"
#include "agent_util.h"
#include "agent_verify.h"

struct ident {
	EVP_PKEY	*key;
	X509		*cert;
};

static struct ident root, rogue, cs1, cs2, cs_rogue, noeku, device;
static char tmpdir[64];

static EVP_PKEY *
t_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	ck_assert_ptr_nonnull(k);
	return k;
}

static void
t_ext(X509 *x, X509 *issuer, int nid, const char *v)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, v);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/* issuer NULL: self-signed CA. */
static void
t_cert(struct ident *id, struct ident *issuer, const char *cn, const char *org,
    const char *eku)
{
	X509_NAME *n;
	X509 *x = X509_new();
	static long serial = 1;

	id->key = t_key();
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	if (org != NULL)
		X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)org,
		    -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : n);
	X509_set_pubkey(x, id->key);
	if (issuer == NULL) {
		t_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		t_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		t_ext(x, issuer->cert, NID_basic_constraints, "critical,CA:FALSE");
		t_ext(x, issuer->cert, NID_key_usage, "critical,digitalSignature,keyAgreement");
		if (eku != NULL)
			t_ext(x, issuer->cert, NID_ext_key_usage, eku);
	}
	ck_assert_int_gt(X509_sign(x, issuer ? issuer->key : id->key, EVP_sha256()), 0);
	id->cert = x;
}

static void
t_setup(void)
{
	if (root.cert != NULL)
		return;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_agent.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	t_cert(&root, NULL, "root", "quarklink", NULL);
	t_cert(&rogue, NULL, "root", "quarklink", NULL);
	t_cert(&cs1, &root, "p1 code signing", "p1", "codeSigning");
	t_cert(&cs2, &root, "p2 code signing", "p2", "codeSigning");
	t_cert(&cs_rogue, &rogue, "p1 code signing", "p1", "codeSigning");
	t_cert(&noeku, &root, "p1 client", "p1", "clientAuth");
	t_cert(&device, &root, "device", "p1", "clientAuth");
}

static X509_STORE *
t_store(void)
{
	X509_STORE *st = X509_STORE_new();

	ck_assert_int_eq(X509_STORE_add_cert(st, root.cert), 1);
	return st;
}

static unsigned char *
t_sign(const struct ident *signer, const void *data, size_t len, int detached, size_t *outlen)
{
	BIO *in = BIO_new_mem_buf(data, (int)len);
	CMS_ContentInfo *cms;
	unsigned char *der = NULL;
	int n;

	cms = CMS_sign(signer->cert, signer->key, NULL, in,
	    CMS_BINARY | (detached ? CMS_DETACHED : 0));
	ck_assert_ptr_nonnull(cms);
	n = i2d_CMS_ContentInfo(cms, &der);
	ck_assert_int_gt(n, 0);
	*outlen = (size_t)n;
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return der;
}

static char *
t_manifest(const char *version, const char *expires, const char *hw)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"format\":1,\"project\":\"p1\",\"image_id\":7,"
	    "\"name\":\"os\",\"version\":\"%s\",\"size\":5,\"sha256\":"
	    "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
	    "\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"%s\","
	    "\"hardware\":[\"hw-a\",\"%s\"],\"encrypted\":false}", version, expires, hw);
	return buf;
}

static int
t_verify(const struct ident *signer, const char *json, const char *org,
    struct agent_manifest *m, char *err)
{
	X509_STORE *st = t_store();
	unsigned char *der;
	size_t len;
	int rc;

	der = t_sign(signer, json, strlen(json), 0, &len);
	rc = agent_verify_manifest(der, len, st, NULL, org, m, err, 256);
	OPENSSL_free(der);
	X509_STORE_free(st);
	return rc;
}

START_TEST(test_manifest_good)
{
	struct agent_manifest m;
	char err[256] = "";

	ck_assert_msg(t_verify(&cs1, t_manifest("1.2.3", "2099-01-01T00:00:00Z", "hw-b"), "p1",
	    &m, err) == 0, "%s", err);
	ck_assert_str_eq(m.project, "p1");
	ck_assert_str_eq(m.version, "1.2.3");
	ck_assert_int_eq(m.image_id, 7);
	ck_assert_int_eq(m.size, 5);
	ck_assert_int_eq((int)m.nhardware, 2);
	ck_assert_str_eq(m.sha256_hex,
	    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-b", "1.2.2", time(NULL), 1 << 20,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-a", "", time(NULL), 1 << 20,
	    err, sizeof(err)), 0);
	/* Hardware names are up to 64 characters (quarklink-image(5)). */
	ck_assert_msg(t_verify(&cs1, t_manifest("1.2.3", "2099-01-01T00:00:00Z",
	    "board:rev.1_0123456789012345678901234567890123456789012345678901"), "p1", &m,
	    err) == 0, "%s", err);
	ck_assert_int_eq((int)strlen(m.hardware[1]), 64);
}
END_TEST

START_TEST(test_manifest_signers)
{
	struct agent_manifest m;
	char err[256];
	const char *j = t_manifest("1.2.3", "2099-01-01T00:00:00Z", "hw-b");

	ck_assert_int_eq(t_verify(&cs2, j, "p1", &m, err), -1);
	ck_assert_msg(strstr(err, "another project") != NULL, "%s", err);
	ck_assert_int_eq(t_verify(&cs_rogue, j, "p1", &m, err), -1);
	ck_assert_msg(strstr(err, "pinned root") != NULL, "%s", err);
	ck_assert_int_eq(t_verify(&noeku, j, "p1", &m, err), -1);
	ck_assert_msg(strstr(err, "code-signing") != NULL, "%s", err);
	/* The root itself signing (no EKU at all) is refused too. */
	ck_assert_int_eq(t_verify(&root, j, NULL, &m, err), -1);
}
END_TEST

START_TEST(test_manifest_tampered)
{
	X509_STORE *st = t_store();
	struct agent_manifest m;
	const char *j = t_manifest("1.2.3", "2099-01-01T00:00:00Z", "hw-b");
	unsigned char *der;
	size_t len, i;
	char err[256];
	int refused = 0;

	der = t_sign(&cs1, j, strlen(j), 0, &len);
	/* Change the "3" of the version inside the embedded content. */
	for (i = 0; i + 5 < len; i++)
		if (memcmp(der + i, "1.2.3", 5) == 0) {
			der[i + 4] = '9';
			break;
		}
	ck_assert_uint_lt(i + 5, len);
	refused = agent_verify_manifest(der, len, st, NULL, "p1", &m, err, sizeof(err)) == -1;
	ck_assert_msg(refused, "a tampered manifest verified");
	ck_assert_int_eq(agent_verify_manifest(der, len - 1, st, NULL, "p1", &m, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(agent_verify_manifest((const unsigned char *)"junk", 4, st, NULL, "p1",
	    &m, err, sizeof(err)), -1);
	OPENSSL_free(der);
	X509_STORE_free(st);
}
END_TEST

START_TEST(test_manifest_policy)
{
	struct agent_manifest m;
	char err[256];

	ck_assert_int_eq(t_verify(&cs1, t_manifest("2.0", "2099-01-01T00:00:00Z", "hw-b"), "p1",
	    &m, err), 0);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-b", "2.0.0", time(NULL), 1 << 20,
	    err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not newer") != NULL, "%s", err);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-b", "10", time(NULL), 1 << 20,
	    err, sizeof(err)), -1);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-b", "1.99.99.99", time(NULL), 1 << 20,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(agent_verify_policy(&m, "p2", "hw-b", "", time(NULL), 1 << 20, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-c", "", time(NULL), 1 << 20, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "hardware") != NULL, "%s", err);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-b", "", time(NULL), 4, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(t_verify(&cs1, t_manifest("2.0", "2020-01-01T00:00:00Z", "hw-b"), "p1",
	    &m, err), 0);
	ck_assert_int_eq(agent_verify_policy(&m, "p1", "hw-b", "", time(NULL), 1 << 20, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "expired") != NULL, "%s", err);
}
END_TEST

START_TEST(test_manifest_json)
{
	struct agent_manifest m;
	char err[256];
	static const char *bad[] = {
		"{\"format\":1}",
		"[1]",
		"{\"format\":1,\"format\":1}",
		"{\"format\":2,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1\","
		"\"size\":5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"2099-01-01T00:00:00Z\","
		"\"hardware\":[],\"encrypted\":false}",
		"{\"format\":1,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1.2.3.4.5\","
		"\"size\":5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"2099-01-01T00:00:00Z\","
		"\"hardware\":[],\"encrypted\":false}",
		"{\"format\":1,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1\","
		"\"size\":-5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"2099-01-01T00:00:00Z\","
		"\"hardware\":[],\"encrypted\":false}",
		"{\"format\":1,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1\","
		"\"size\":5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"2099-01-01T00:00:00Z\","
		"\"hardware\":[],\"encrypted\":false}",
		"{\"format\":1,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1\","
		"\"size\":5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"tomorrow\","
		"\"hardware\":[],\"encrypted\":false}",
		"{\"format\":1,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1\","
		"\"size\":5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"2099-01-01T00:00:00Z\","
		"\"hardware\":[1],\"encrypted\":false}",
		"{\"format\":1,\"project\":\"p1\",\"image_id\":7,\"name\":\"os\",\"version\":\"1\","
		"\"size\":5,\"sha256\":\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\","
		"\"created\":\"2026-01-01T00:00:00Z\",\"expires\":\"2099-01-01T00:00:00Z\","
		"\"hardware\":[],\"encrypted\":true}",
		"{\"format\":1,\"project\":\"p1\"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(agent_manifest_parse(bad[i], strlen(bad[i]), &m, err, sizeof(err)) == -1,
		    "accepted bad manifest %zu", i);
}
END_TEST

START_TEST(test_versions)
{
	long a[4], b[4];

	ck_assert_int_eq(agent_version_parse("1.2.3", a), 0);
	ck_assert_int_eq(agent_version_parse("1.2.3.0", b), 0);
	ck_assert_int_eq(agent_version_cmp(a, b), 0);
	ck_assert_int_eq(agent_version_parse("1.10", b), 0);
	ck_assert_int_lt(agent_version_cmp(a, b), 0);
	ck_assert_int_eq(agent_version_parse("2", b), 0);
	ck_assert_int_gt(agent_version_cmp(b, a), 0);
	ck_assert_int_eq(agent_version_parse("", a), -1);
	ck_assert_int_eq(agent_version_parse("1.", a), -1);
	ck_assert_int_eq(agent_version_parse(".1", a), -1);
	ck_assert_int_eq(agent_version_parse("1..2", a), -1);
	ck_assert_int_eq(agent_version_parse("1.2.3.4.5", a), -1);
	ck_assert_int_eq(agent_version_parse("-1", a), -1);
	ck_assert_int_eq(agent_version_parse("1.2a", a), -1);
	ck_assert_int_eq(agent_version_parse("99999999999", a), -1);
	ck_assert_int_eq(agent_version_parse("2147483647", a), 0);
}
END_TEST

static char *
t_write(const char *name, const void *data, size_t len)
{
	char *p = agent_path(tmpdir, name);

	ck_assert_int_eq(agent_write_atomic(p, data, len, 0600), 0);
	return p;
}

START_TEST(test_detached)
{
	X509_STORE *st = t_store();
	unsigned char *sig, *sig2;
	size_t len, len2;
	char err[256], *p;

	sig = t_sign(&cs1, "hello", 5, 1, &len);
	sig2 = t_sign(&cs2, "hello", 5, 1, &len2);
	p = t_write("image", "hello", 5);
	ck_assert_msg(agent_verify_detached(sig, len, p, st, NULL, "p1", err, sizeof(err)) == 0,
	    "%s", err);
	ck_assert_int_eq(agent_verify_detached(sig2, len2, p, st, NULL, "p1", err, sizeof(err)), -1);
	free(t_write("image", "hellO", 5));
	ck_assert_int_eq(agent_verify_detached(sig, len, p, st, NULL, "p1", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "image signature") != NULL, "%s", err);
	unlink(p);
	free(p);
	OPENSSL_free(sig);
	OPENSSL_free(sig2);
	X509_STORE_free(st);
}
END_TEST

/* The encrypted form as the server writes it (header of agent_stream.c). */
static size_t
t_encrypt(const unsigned char *key, const unsigned char *prefix, size_t seg,
    const unsigned char *pt, size_t len, unsigned char *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	unsigned char nonce[12];
	size_t o = 0, off = 0, n;
	unsigned long ctr = 0;
	int l, last;

	memcpy(out, "QLSTREAM", 8);
	out[8] = 1;
	out[9] = 1;
	out[10] = (unsigned char)(seg >> 24);
	out[11] = (unsigned char)(seg >> 16);
	out[12] = (unsigned char)(seg >> 8);
	out[13] = (unsigned char)seg;
	memcpy(out + 14, prefix, 7);
	memset(out + 21, 0, 3);
	o = 24;
	do {
		n = len - off > seg ? seg : len - off;
		last = off + n == len;
		memcpy(nonce, prefix, 7);
		nonce[7] = (unsigned char)(ctr >> 24);
		nonce[8] = (unsigned char)(ctr >> 16);
		nonce[9] = (unsigned char)(ctr >> 8);
		nonce[10] = (unsigned char)ctr;
		nonce[11] = (unsigned char)last;
		EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce);
		EVP_EncryptUpdate(ctx, NULL, &l, out, 24);
		EVP_EncryptUpdate(ctx, out + o, &l, pt + off, (int)n);
		o += (size_t)l;
		EVP_EncryptFinal_ex(ctx, out + o, &l);
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + o);
		o += 16;
		off += n;
		ctr++;
	} while (off < len);
	EVP_CIPHER_CTX_free(ctx);
	return o;
}

static int
t_decrypt(const unsigned char *key, const unsigned char *enc, size_t len, size_t seg,
    long long *plain, long long *written, char *err)
{
	struct agent_stream s;
	char *in = t_write("enc", enc, len), *outp = agent_path(tmpdir, "plain");
	int fi = open(in, O_RDONLY), fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600), rc;
	off_t end;

	memset(&s, 0, sizeof(s));
	memcpy(s.key, key, 32);
	rc = agent_stream_header(fi, (long long)seg, &s, err, 256);
	if (rc == 0)
		rc = agent_stream_decrypt(fi, (long long)len, &s, fo, NULL, plain, err, 256);
	end = lseek(fo, 0, SEEK_END);
	*written = end;
	close(fi);
	close(fo);
	unlink(in);
	unlink(outp);
	free(in);
	free(outp);
	return rc;
}

START_TEST(test_stream)
{
	unsigned char key[32], prefix[7], pt[1000], enc[2000], copy[2000];
	long long plain, written;
	size_t len, seg = 256;
	char err[256];

	RAND_bytes(key, sizeof(key));
	RAND_bytes(prefix, sizeof(prefix));
	RAND_bytes(pt, sizeof(pt));
	len = t_encrypt(key, prefix, seg, pt, sizeof(pt), enc);
	ck_assert_uint_eq(len, 24 + 1000 + 4 * 16);
	ck_assert_msg(t_decrypt(key, enc, len, seg, &plain, &written, err) == 0, "%s", err);
	ck_assert_int_eq(plain, 1000);
	ck_assert_int_eq(written, 1000);
	/* A flipped byte in segment 2: segments 0 and 1 written, nothing after. */
	memcpy(copy, enc, len);
	copy[24 + 2 * (seg + 16) + 5] ^= 1;
	ck_assert_int_eq(t_decrypt(key, copy, len, seg, &plain, &written, err), -1);
	ck_assert_msg(strstr(err, "segment 2") != NULL, "%s", err);
	ck_assert_int_eq(written, 2 * (long long)seg);
	/* Cut after a full segment: the new last segment lacks the last flag. */
	ck_assert_int_eq(t_decrypt(key, enc, 24 + 2 * (seg + 16), seg, &plain, &written, err), -1);
	/* Two segments swapped. */
	memcpy(copy, enc, len);
	memcpy(copy + 24, enc + 24 + seg + 16, seg + 16);
	memcpy(copy + 24 + seg + 16, enc + 24, seg + 16);
	ck_assert_int_eq(t_decrypt(key, copy, len, seg, &plain, &written, err), -1);
	ck_assert_int_eq(written, 0);
	/* Another key. */
	key[0] ^= 1;
	ck_assert_int_eq(t_decrypt(key, enc, len, seg, &plain, &written, err), -1);
	key[0] ^= 1;
	/* A segment size that is not the manifest's. */
	ck_assert_int_eq(t_decrypt(key, enc, len, 512, &plain, &written, err), -1);
	/* The header is authenticated: another prefix byte... */
	memcpy(copy, enc, len);
	copy[20] ^= 1;
	ck_assert_int_eq(t_decrypt(key, copy, len, seg, &plain, &written, err), -1);
	/* ...or a reserved byte changes everything. */
	memcpy(copy, enc, len);
	copy[23] = 1;
	ck_assert_int_eq(t_decrypt(key, copy, len, seg, &plain, &written, err), -1);
	/* An empty image is one empty last segment. */
	len = t_encrypt(key, prefix, seg, pt, 0, enc);
	ck_assert_uint_eq(len, 24 + 16);
	ck_assert_msg(t_decrypt(key, enc, len, seg, &plain, &written, err) == 0, "%s", err);
	ck_assert_int_eq(plain, 0);
}
END_TEST

START_TEST(test_unwrap)
{
	STACK_OF(X509) *rcpt = sk_X509_new_null();
	unsigned char key[32], got[32], *der = NULL;
	CMS_ContentInfo *cms;
	BIO *in;
	char err[256];
	int n;

	RAND_bytes(key, sizeof(key));
	sk_X509_push(rcpt, device.cert);
	in = BIO_new_mem_buf(key, sizeof(key));
	cms = CMS_encrypt(rcpt, in, EVP_aes_256_cbc(), CMS_BINARY);
	ck_assert_ptr_nonnull(cms);
	n = i2d_CMS_ContentInfo(cms, &der);
	ck_assert_msg(agent_stream_unwrap(der, (size_t)n, device.key, device.cert, got, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(memcmp(key, got, 32), 0);
	/* The hand-made key agreement (the TPM path) gives the same key. */
	memset(got, 0, sizeof(got));
	ck_assert_msg(agent_stream_unwrap_kari(der, (size_t)n, device.key, got, err,
	    sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(memcmp(key, got, 32), 0);
	ck_assert_int_eq(agent_stream_unwrap_kari(der, (size_t)n, cs1.key, got, err,
	    sizeof(err)), -1);
	/* Cut short, it is refused rather than misread. */
	ck_assert_int_eq(agent_stream_unwrap_kari(der, (size_t)n - 20, device.key, got, err,
	    sizeof(err)), -1);
	/* Another device's key cannot open it. */
	ck_assert_int_eq(agent_stream_unwrap(der, (size_t)n, cs1.key, cs1.cert, got, err,
	    sizeof(err)), -1);
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	sk_X509_free(rcpt);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("agent_verify");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, t_setup, NULL);
	tcase_add_test(tc, test_manifest_good);
	tcase_add_test(tc, test_manifest_signers);
	tcase_add_test(tc, test_manifest_tampered);
	tcase_add_test(tc, test_manifest_policy);
	tcase_add_test(tc, test_manifest_json);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_detached);
	tcase_add_test(tc, test_stream);
	tcase_add_test(tc, test_unwrap);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (tmpdir[0] != '\0')
		rmdir(tmpdir);
	return failed == 0 ? 0 : 1;
}

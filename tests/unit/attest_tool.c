/* attest_tool.c: src/attest_crypto.c from the shell, for
 * t_attest_crypto.sh to hold it against a real TPM (swtpm) and tpm2-tools.
 * Files are in tpm2-tools' formats: TPM2B_PUBLIC (-u), raw Name (-n),
 * TPMS_ATTEST without size (tpm2_quote -m, tpm2_certify -o),
 * TPMT_SIGNATURE (-s, tss format), tpm2_makecredential's -o file.
 * Not a test by itself and not installed.
 *
 *   attest_tool name PUB ek|ak|identity        print the Name (hex) or refuse
 *   attest_tool makecred EK.pub AK.name SECRET OUT
 *   attest_tool certify AK.pub KEY.pub ATTEST SIG NONCEHEX
 *   attest_tool quote AK.pub ATTEST SIG NONCEHEX MASKHEX PCRVALUES
 *   attest_tool ekverify EK.der CA.pem [CHAIN.pem]
 *   attest_tool ekmatch EK.der EK.pub
 *   attest_tool tpmcertify TCTI KEYHANDLE AKHANDLE NONCEHEX ATTEST SIG
 *       TPM2_Certify with qualifyingData (tpm2-tools 5.4 cannot set it)
 *   attest_tool fuzzseeds DIR
 *       valid inputs of every fuzz/fuzz_attest.c mode, made in software
 * A check that refuses prints "refused: REASON" and exits 1; bad usage or
 * unreadable files exit 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#include <tss2_esys.h>
#include <tss2_mu.h>
#include <tss2_tctildr.h>
#pragma GCC diagnostic pop

#include "attest_crypto.h"
#include "attest_soft.h"

#define TOOL_MAX	16384

static void __attribute__((noreturn))
tool_die(const char *what, const char *arg)
{
	fprintf(stderr, "attest_tool: %s%s%s\n", what, arg != NULL ? ": " : "",
	    arg != NULL ? arg : "");
	exit(2);
}

static int
tool_refused(const char *why)
{
	printf("refused: %s\n", why);
	return 1;
}

static size_t
tool_read(const char *path, unsigned char *buf, size_t max)
{
	FILE *f;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL)
		tool_die(strerror(errno), path);
	n = fread(buf, 1, max, f);
	if (ferror(f) || !feof(f)) {
		fclose(f);
		tool_die("unreadable or too large", path);
	}
	fclose(f);
	return n;
}

static void
tool_write(FILE *f, const unsigned char *buf, size_t len, const char *path)
{
	if (fwrite(buf, 1, len, f) != len)
		tool_die("write failed", path);
}

static void
tool_hex(const char *hex, unsigned char *out, size_t len)
{
	size_t i;
	unsigned v;

	if (strlen(hex) != 2 * len)
		tool_die("hex string of the wrong length", hex);
	for (i = 0; i < len; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			tool_die("not hex", hex);
		out[i] = (unsigned char)v;
	}
}

static enum attest_role
tool_role(const char *s)
{
	if (strcmp(s, "ek") == 0)
		return ATTEST_EK;
	if (strcmp(s, "ak") == 0)
		return ATTEST_AK;
	if (strcmp(s, "identity") == 0)
		return ATTEST_IDENTITY;
	tool_die("role is ek, ak or identity", s);
}

/* 1 and a reason printed when the key does not parse for its role. */
static int
tool_key(const char *path, enum attest_role role, struct attest_key *k)
{
	unsigned char buf[TOOL_MAX];
	size_t len = tool_read(path, buf, sizeof(buf));
	const char *why;

	if (attest_key_parse(buf, len, role, k, &why) == -1)
		return tool_refused(why);
	return 0;
}

/* tpm2-tools' attestation files are TPMS_ATTEST; the wire has TPM2B_ATTEST. */
static size_t
tool_attest(const char *path, unsigned char *buf, size_t max)
{
	size_t len = tool_read(path, buf + 2, max - 2);

	buf[0] = (unsigned char)(len >> 8);
	buf[1] = (unsigned char)len;
	return len + 2;
}

static X509 *
tool_cert(const char *path)
{
	unsigned char buf[TOOL_MAX];
	const unsigned char *p = buf;
	size_t len = tool_read(path, buf, sizeof(buf));
	X509 *x;

	if ((x = d2i_X509(NULL, &p, (long)len)) == NULL)
		tool_die("not a DER certificate", path);
	return x;
}

static int
tool_name(int argc, char **argv)
{
	struct attest_key k;
	size_t i;

	if (argc != 4)
		tool_die("usage: name PUB ek|ak|identity", NULL);
	if (tool_key(argv[2], tool_role(argv[3]), &k) != 0)
		return 1;
	for (i = 0; i < k.name_len; i++)
		printf("%02x", k.name[i]);
	printf("\n");
	attest_key_clear(&k);
	return 0;
}

static int
tool_makecred(int argc, char **argv)
{
	static const unsigned char head[8] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 };
	unsigned char name[ATTEST_NAME_MAX + 1], secret[ATTEST_SECRET_LEN + 1], *blob, *enc;
	size_t name_len, secret_len, blob_len, enc_len;
	struct attest_key ek;
	const char *why;
	FILE *f;

	if (argc != 6)
		tool_die("usage: makecred EK.pub AK.name SECRET OUT", NULL);
	if (tool_key(argv[2], ATTEST_EK, &ek) != 0)
		return 1;
	name_len = tool_read(argv[3], name, sizeof(name));
	if ((secret_len = tool_read(argv[4], secret, sizeof(secret))) != ATTEST_SECRET_LEN)
		tool_die("the secret is not 32 bytes", argv[4]);
	if (attest_make_credential(&ek, name, name_len, secret, &blob, &blob_len, &enc,
	    &enc_len, &why) == -1) {
		attest_key_clear(&ek);
		return tool_refused(why);
	}
	/* tpm2_makecredential -o: magic, version 1, TPM2B_ID_OBJECT,
	 * TPM2B_ENCRYPTED_SECRET (tpm2-tools lib/files.c). */
	if ((f = fopen(argv[5], "wb")) == NULL)
		tool_die(strerror(errno), argv[5]);
	tool_write(f, head, sizeof(head), argv[5]);
	tool_write(f, blob, blob_len, argv[5]);
	tool_write(f, enc, enc_len, argv[5]);
	if (fclose(f) != 0)
		tool_die("write failed", argv[5]);
	free(blob);
	free(enc);
	attest_key_clear(&ek);
	printf("ok\n");
	return 0;
}

static int
tool_certify(int argc, char **argv)
{
	unsigned char a[TOOL_MAX], s[TOOL_MAX], nonce[ATTEST_NONCE_LEN];
	struct attest_key ak, key;
	size_t a_len, s_len;
	const char *why;
	int rc = 0;

	if (argc != 7)
		tool_die("usage: certify AK.pub KEY.pub ATTEST SIG NONCEHEX", NULL);
	tool_hex(argv[6], nonce, sizeof(nonce));
	a_len = tool_attest(argv[4], a, sizeof(a));
	s_len = tool_read(argv[5], s, sizeof(s));
	if (tool_key(argv[2], ATTEST_AK, &ak) != 0)
		return 1;
	if (tool_key(argv[3], ATTEST_IDENTITY, &key) != 0) {
		attest_key_clear(&ak);
		return 1;
	}
	if (attest_certify_verify(&ak, a, a_len, s, s_len, nonce, &key, &why) == -1)
		rc = tool_refused(why);
	else
		printf("ok\n");
	attest_key_clear(&ak);
	attest_key_clear(&key);
	return rc;
}

static int
tool_quote(int argc, char **argv)
{
	unsigned char a[TOOL_MAX], s[TOOL_MAX], v[ATTEST_PCR_MAX * 32 + 1];
	unsigned char nonce[ATTEST_NONCE_LEN];
	struct attest_pcrs pcrs;
	struct attest_key ak;
	size_t a_len, s_len, v_len, i, n = 0;
	unsigned long mask;
	char *end;
	const char *why;
	int rc = 0;

	if (argc != 8)
		tool_die("usage: quote AK.pub ATTEST SIG NONCEHEX MASKHEX PCRVALUES", NULL);
	tool_hex(argv[5], nonce, sizeof(nonce));
	errno = 0;
	mask = strtoul(argv[6], &end, 16);
	if (errno != 0 || *end != '\0' || mask >= (1ul << ATTEST_PCR_MAX))
		tool_die("not a PCR mask", argv[6]);
	a_len = tool_attest(argv[3], a, sizeof(a));
	s_len = tool_read(argv[4], s, sizeof(s));
	/* tpm2_pcrread -o: the values in ascending PCR order, nothing else */
	v_len = tool_read(argv[7], v, sizeof(v));
	memset(&pcrs, 0, sizeof(pcrs));
	pcrs.mask = (unsigned)mask;
	for (i = 0; i < ATTEST_PCR_MAX; i++) {
		if (!(mask & (1ul << i)))
			continue;
		if ((n + 1) * 32 > v_len)
			tool_die("fewer PCR values than the mask names", argv[7]);
		memcpy(pcrs.value[i], v + 32 * n++, 32);
	}
	if (n * 32 != v_len)
		tool_die("more PCR values than the mask names", argv[7]);
	if (tool_key(argv[2], ATTEST_AK, &ak) != 0)
		return 1;
	if (attest_quote_verify(&ak, a, a_len, s, s_len, nonce, (unsigned)mask, &pcrs,
	    &why) == -1)
		rc = tool_refused(why);
	else
		printf("ok\n");
	attest_key_clear(&ak);
	return rc;
}

static int
tool_ekverify(int argc, char **argv)
{
	X509_STORE *store;
	STACK_OF(X509) *chain = NULL;
	X509 *ek, *x;
	FILE *f;
	const char *why;
	int rc = 0;

	if (argc != 4 && argc != 5)
		tool_die("usage: ekverify EK.der CA.pem [CHAIN.pem]", NULL);
	ek = tool_cert(argv[2]);
	if ((store = X509_STORE_new()) == NULL || X509_STORE_load_file(store, argv[3]) != 1)
		tool_die("cannot load CA file", argv[3]);
	if (argc == 5) {
		if ((f = fopen(argv[4], "r")) == NULL || (chain = sk_X509_new_null()) == NULL)
			tool_die("cannot read chain", argv[4]);
		while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL)
			sk_X509_push(chain, x);
		fclose(f);
	}
	if (attest_ek_verify(store, ek, chain, &why) == -1)
		rc = tool_refused(why);
	else
		printf("ok\n");
	sk_X509_pop_free(chain, X509_free);
	X509_STORE_free(store);
	X509_free(ek);
	return rc;
}

static int
tool_ekmatch(int argc, char **argv)
{
	struct attest_key ek;
	X509 *cert;
	const char *why;
	int rc = 0;

	if (argc != 4)
		tool_die("usage: ekmatch EK.der EK.pub", NULL);
	cert = tool_cert(argv[2]);
	if (tool_key(argv[3], ATTEST_EK, &ek) != 0) {
		X509_free(cert);
		return 1;
	}
	if (attest_ek_matches(cert, &ek, &why) == -1)
		rc = tool_refused(why);
	else
		printf("ok\n");
	attest_key_clear(&ek);
	X509_free(cert);
	return rc;
}

static ESYS_TR
tool_handle(ESYS_CONTEXT *ctx, const char *s)
{
	unsigned long h;
	ESYS_TR tr;
	char *end;

	h = strtoul(s, &end, 16);
	if (*end != '\0' || (h >> 24) != 0x81)
		tool_die("not a persistent handle", s);
	if (Esys_TR_FromTPMPublic(ctx, (TPM2_HANDLE)h, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &tr) != TSS2_RC_SUCCESS)
		tool_die("no such persistent object", s);
	return tr;
}

static int
tool_tpmcertify(int argc, char **argv)
{
	unsigned char sig[sizeof(TPMT_SIGNATURE)];
	TSS2_TCTI_CONTEXT *tcti = NULL;
	ESYS_CONTEXT *ctx = NULL;
	TPM2B_DATA q;
	TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
	TPM2B_ATTEST *info = NULL;
	TPMT_SIGNATURE *signature = NULL;
	ESYS_TR obj, ak;
	size_t off = 0;
	TSS2_RC rc;
	FILE *f;

	if (argc != 8)
		tool_die("usage: tpmcertify TCTI KEYHANDLE AKHANDLE NONCEHEX ATTEST SIG", NULL);
	memset(&q, 0, sizeof(q));
	q.size = ATTEST_NONCE_LEN;
	tool_hex(argv[5], q.buffer, ATTEST_NONCE_LEN);
	if (Tss2_TctiLdr_Initialize(argv[2], &tcti) != TSS2_RC_SUCCESS ||
	    Esys_Initialize(&ctx, tcti, NULL) != TSS2_RC_SUCCESS)
		tool_die("cannot reach the TPM", argv[2]);
	obj = tool_handle(ctx, argv[3]);
	ak = tool_handle(ctx, argv[4]);
	rc = Esys_Certify(ctx, obj, ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    &q, &scheme, &info, &signature);
	if (rc != TSS2_RC_SUCCESS)
		tool_die("TPM2_Certify failed", NULL);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(signature, sig, sizeof(sig), &off) != TSS2_RC_SUCCESS)
		tool_die("cannot marshal the signature", NULL);
	if ((f = fopen(argv[6], "wb")) == NULL)
		tool_die(strerror(errno), argv[6]);
	tool_write(f, info->attestationData, info->size, argv[6]);
	if (fclose(f) != 0 || (f = fopen(argv[7], "wb")) == NULL)
		tool_die("cannot write", argv[7]);
	tool_write(f, sig, off, argv[7]);
	if (fclose(f) != 0)
		tool_die("write failed", argv[7]);
	Esys_Free(info);
	Esys_Free(signature);
	Esys_Finalize(&ctx);
	Tss2_TctiLdr_Finalize(&tcti);
	printf("ok\n");
	return 0;
}

/* fuzz_attest's input: a mode byte, then fields of 2-byte length. */
struct tool_seed {
	unsigned char	 b[8192];
	size_t		 len;
};

static void
tool_seed_field(struct tool_seed *s, const unsigned char *f, size_t len)
{
	if (s->len + 2 + len > sizeof(s->b))
		tool_die("seed too large", NULL);
	s->b[s->len++] = (unsigned char)(len >> 8);
	s->b[s->len++] = (unsigned char)len;
	memcpy(s->b + s->len, f, len);
	s->len += len;
}

static void
tool_seed_write(const char *dir, const char *name, const struct tool_seed *s)
{
	char path[4096];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (f = fopen(path, "wb")) == NULL)
		tool_die("cannot write seed", name);
	tool_write(f, s->b, s->len, path);
	if (fclose(f) != 0)
		tool_die("write failed", path);
}

static size_t
tool_seed_pub(EVP_PKEY *k, enum attest_role role, unsigned char *out, size_t max)
{
	TPMT_PUBLIC p;
	size_t n;

	if (attest_soft_tpmt(k, role, &p) != 0 || (n = attest_soft_public(&p, out, max)) == 0)
		tool_die("cannot make a TPM2B_PUBLIC", NULL);
	return n;
}

static int
tool_fuzzseeds(int argc, char **argv)
{
	unsigned char ek[1024], ak[1024], akr[1024], id[1024], name[34], akname[34], akrname[34];
	unsigned char a[2048], sig[1024], nonce[ATTEST_NONCE_LEN], digest[32], v[3 + 8 * 32];
	size_t ek_len, ak_len, akr_len, id_len, a_len, sig_len;
	EVP_PKEY *ekk, *akk, *akrk, *idk, *signer;
	struct tool_seed s;
	TPMS_ATTEST info;
	int i;

	if (argc != 3)
		tool_die("usage: fuzzseeds DIR", NULL);
	ekk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	akk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	akrk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	idk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (ekk == NULL || akk == NULL || akrk == NULL || idk == NULL)
		tool_die("key generation failed", NULL);
	ek_len = tool_seed_pub(ekk, ATTEST_EK, ek, sizeof(ek));
	ak_len = tool_seed_pub(akk, ATTEST_AK, ak, sizeof(ak));
	akr_len = tool_seed_pub(akrk, ATTEST_AK, akr, sizeof(akr));
	id_len = tool_seed_pub(idk, ATTEST_IDENTITY, id, sizeof(id));
	attest_soft_name(id, id_len, name);
	attest_soft_name(ak, ak_len, akname);
	attest_soft_name(akr, akr_len, akrname);
	memset(nonce, 0x4e, sizeof(nonce));

	s.b[0] = 0; s.len = 1; tool_seed_field(&s, ek, ek_len); tool_seed_write(argv[2], "ek.bin", &s);
	s.b[0] = 1; s.len = 1; tool_seed_field(&s, ak, ak_len); tool_seed_write(argv[2], "ak-ecc.bin", &s);
	s.b[0] = 1; s.len = 1; tool_seed_field(&s, akr, akr_len); tool_seed_write(argv[2], "ak-rsa.bin", &s);
	s.b[0] = 2; s.len = 1; tool_seed_field(&s, id, id_len); tool_seed_write(argv[2], "identity.bin", &s);
	s.b[0] = 3; s.len = 1; tool_seed_field(&s, ek, ek_len); tool_seed_field(&s, akname, 34);
	tool_seed_write(argv[2], "makecred.bin", &s);

	attest_soft_certify_info(&info, nonce, sizeof(nonce), name, sizeof(name));
	a_len = attest_soft_attest(&info, a, sizeof(a));
	sig_len = attest_soft_sign(akk, a + 2, a_len - 2, sig, sizeof(sig));
	s.b[0] = 4; s.len = 1;
	tool_seed_field(&s, ak, ak_len);
	tool_seed_field(&s, id, id_len);
	tool_seed_field(&s, a, a_len);
	tool_seed_field(&s, sig, sig_len);
	tool_seed_field(&s, nonce, sizeof(nonce));
	tool_seed_write(argv[2], "certify.bin", &s);

	v[0] = 0xff; v[1] = 0; v[2] = 0;
	for (i = 0; i < 8; i++)
		memset(v + 3 + 32 * i, i, 32);
	SHA256(v + 3, 8 * 32, digest);
	attest_soft_quote_info(&info, nonce, sizeof(nonce), 0xff, digest);
	a_len = attest_soft_attest(&info, a, sizeof(a));
	for (i = 0; i < 2; i++) {
		signer = i == 0 ? akk : akrk;
		sig_len = attest_soft_sign(signer, a + 2, a_len - 2, sig, sizeof(sig));
		s.b[0] = 5; s.len = 1;
		tool_seed_field(&s, i == 0 ? ak : akr, i == 0 ? ak_len : akr_len);
		tool_seed_field(&s, a, a_len);
		tool_seed_field(&s, sig, sig_len);
		tool_seed_field(&s, nonce, sizeof(nonce));
		tool_seed_field(&s, v, sizeof(v));
		tool_seed_write(argv[2], i == 0 ? "quote-ecc.bin" : "quote-rsa.bin", &s);
	}
	EVP_PKEY_free(ekk);
	EVP_PKEY_free(akk);
	EVP_PKEY_free(akrk);
	EVP_PKEY_free(idk);
	printf("ok\n");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char	*name;
		int		(*fn)(int, char **);
	} cmds[] = {
		{ "name", tool_name }, { "makecred", tool_makecred },
		{ "certify", tool_certify }, { "quote", tool_quote },
		{ "ekverify", tool_ekverify }, { "ekmatch", tool_ekmatch },
		{ "tpmcertify", tool_tpmcertify }, { "fuzzseeds", tool_fuzzseeds },
	};
	size_t i;

	for (i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc, argv);
	tool_die("usage: attest_tool name|makecred|certify|quote|ekverify|ekmatch|tpmcertify|fuzzseeds ...",
	    NULL);
}

/* check_est_csr.c: est_csr_parse, the EST body parser the daemon and
 * fuzz/fuzz_est.c share, over bodies built here: a good CSR (plain, with
 * line breaks), and each way a body is refused (status and reason). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "est_csr.h"

enum check_est_csr_kind {
	CSR_GOOD, CSR_GOOD_WRAPPED, CSR_BAD_SIG, CSR_TRAILING, CSR_TRUNCATED,
	CSR_NOT_BASE64, CSR_NOT_DER, CSR_EMPTY, CSR_TOO_BIG, CSR_WEAK_KEY,
};

struct check_est_csr_case {
	enum check_est_csr_kind	 kind;
	int			 status;	/* 0: accepted */
	const char		*reason;	/* substring of err */
};

static const struct check_est_csr_case check_est_csr_cases[] = {
	{ CSR_GOOD, 0, NULL },
	{ CSR_GOOD_WRAPPED, 0, NULL },
	{ CSR_BAD_SIG, 400, "signature does not verify" },
	{ CSR_TRAILING, 400, "not a DER PKCS#10" },
	{ CSR_TRUNCATED, 400, "not a DER PKCS#10" },
	{ CSR_NOT_BASE64, 400, "not valid base64" },
	{ CSR_NOT_DER, 400, "not a DER PKCS#10" },
	{ CSR_EMPTY, 400, "not valid base64" },
	{ CSR_TOO_BIG, 413, "larger than 65536 bytes" },
	{ CSR_WEAK_KEY, 400, "RSA" },
};

/* DER of a CSR signed by a new key (P-256, or RSA-1024 when weak). */
static int
check_est_csr_der(int is_weak, unsigned char **der)
{
	EVP_PKEY *pk = is_weak ? EVP_RSA_gen(1024) : EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	int len;

	ck_assert_ptr_nonnull(pk);
	ck_assert_ptr_nonnull(req);
	ck_assert_int_eq(X509_REQ_set_pubkey(req, pk), 1);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req),
	    "CN", MBSTRING_ASC, (const unsigned char *)"dev", -1, -1, 0), 1);
	ck_assert_int_gt(X509_REQ_sign(req, pk, EVP_sha256()), 0);
	*der = NULL;
	len = i2d_X509_REQ(req, der);
	ck_assert_int_gt(len, 0);
	X509_REQ_free(req);
	EVP_PKEY_free(pk);
	return len;
}

/* Base64 of der, with a line break every wrap characters (0: none). */
static char *
check_est_csr_b64(const unsigned char *der, int len, int wrap)
{
	char *flat = malloc((size_t)(len / 3 + 2) * 4 + 1), *out;
	int n = EVP_EncodeBlock((unsigned char *)flat, der, len), o = 0;

	out = malloc((size_t)n * 2 + 2);
	for (int i = 0; i < n; i++) {
		out[o++] = flat[i];
		if (wrap > 0 && (i + 1) % wrap == 0)
			out[o++] = '\n';
	}
	out[o] = '\0';
	free(flat);
	return out;
}

START_TEST(test_est_csr_cases)
{
	const struct check_est_csr_case *tc = &check_est_csr_cases[_i];
	unsigned char *der = NULL, *body;
	char err[256] = "", *b64 = NULL;
	size_t blen;
	int len = 0, status = -1;
	X509_REQ *csr;

	if (tc->kind != CSR_NOT_BASE64 && tc->kind != CSR_EMPTY &&
	    tc->kind != CSR_TOO_BIG && tc->kind != CSR_NOT_DER)
		len = check_est_csr_der(tc->kind == CSR_WEAK_KEY, &der);
	switch (tc->kind) {
	case CSR_BAD_SIG:
		der[len - 1] ^= 0x01;	/* last byte of the signature */
		break;
	case CSR_TRAILING:
		der = OPENSSL_realloc(der, (size_t)len + 1);
		der[len++] = 0;
		break;
	case CSR_TRUNCATED:
		len -= 10;
		break;
	default:
		break;
	}
	if (der != NULL)
		b64 = check_est_csr_b64(der, len, tc->kind == CSR_GOOD_WRAPPED ? 64 : 0);
	else if (tc->kind == CSR_NOT_BASE64)
		b64 = strdup("this is not base64!");
	else if (tc->kind == CSR_NOT_DER)
		b64 = strdup("aGVsbG8gd29ybGQ=");	/* "hello world" */
	else if (tc->kind == CSR_EMPTY)
		b64 = strdup("");
	else {
		b64 = malloc(EST_CSR_MAX_BODY + 2);
		memset(b64, 'A', EST_CSR_MAX_BODY + 1);
		b64[EST_CSR_MAX_BODY + 1] = '\0';
	}
	/* An exact-size copy, so a read past the end is an ASan error. */
	blen = strlen(b64);
	body = malloc(blen + 1);
	memcpy(body, b64, blen);
	csr = est_csr_parse(body, blen, &status, err, sizeof(err));
	ck_assert_uint_eq(ERR_peek_error(), 0);
	if (tc->status == 0) {
		ck_assert_msg(csr != NULL, "case %d refused: %d %s", _i, status, err);
		X509_REQ_free(csr);
	} else {
		ck_assert_ptr_null(csr);
		ck_assert_int_eq(status, tc->status);
		ck_assert_msg(strstr(err, tc->reason) != NULL,
		    "case %d: reason \"%s\", expected \"%s\"", _i, err, tc->reason);
	}
	free(body);
	free(b64);
	OPENSSL_free(der);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("est_csr");
	TCase *tc = tcase_create("parse");
	SRunner *sr;
	int failed;

	tcase_add_loop_test(tc, test_est_csr_cases, 0,
	    (int)(sizeof(check_est_csr_cases) / sizeof(check_est_csr_cases[0])));
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

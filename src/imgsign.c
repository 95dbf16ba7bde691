/* imgsign.c: the signing job of an uploaded image. It claims the image
 * row (a lease renewed with every row it writes), signs with the project's
 * code-signing key on the token, and for an encrypted image streams the
 * plain chunks from PostgreSQL one row at a time, encrypts them (stream.c)
 * and writes the encrypted form as variant 1 rows; only then is the image
 * 'signed', with its audit row in the same statement. Memory per job is a
 * few MiB whatever the image size; the loop is never blocked for longer
 * than one 1 MiB row takes to encrypt. The content key is kept only
 * wrapped by a secret key on the token. Every token operation (the
 * signatures, creating or destroying the image KEK, sealing and opening
 * content keys) runs on a token worker (tok.h); a job handed to a worker
 * belongs to it until its done() runs on the loop, and the worker sees
 * only what the job holds. */
#include "imgsign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <yajl/yajl_gen.h>

#include "db.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "p11.h"
#include "server.h"
#include "stream.h"
#include "tok.h"
#include "util.h"
#include "xmalloc.h"

#define IMGSIGN_TS(x) "ql_iso(" x ")"
#define IMGSIGN_SELECT(t) t ".id, " t ".name, " t ".version, " t ".size," \
	" encode(" t ".sha256, 'hex'), " t ".status, to_json(" t ".hardware), " \
	t ".encrypt, " t ".enc_size, " t ".signed_by, " IMGSIGN_TS(t ".signed_at") \
	", " IMGSIGN_TS(t ".expires_at") ", " IMGSIGN_TS(t ".created_at")
#define IMGSIGN_AAD	"quarklink image key 1 "	/* + decimal image id */
#define IMGSIGN_KEK_PREFIX "ql-imgkek"
#define IMGSIGN_TOKEN_BUSY_MSG "token busy"

const char imgsign_token_busy[] = IMGSIGN_TOKEN_BUSY_MSG;

/* $1 project, $2 image, $3 claim, $4 lease seconds. cur sees the row as it
 * was; c is empty when another claim holds it (READ COMMITTED re-checks
 * the row after a concurrent claim commits), so the caller says 409. A
 * successful claim removes what an earlier, dead attempt wrote. */
static const struct db_stmt imgsign_claim = {
	"imgsign_claim", "WITH cur AS (SELECT i.id, i.status FROM images i"
	" WHERE i.id = $2::bigint AND i.project_id = $1::bigint),"
	" c AS (UPDATE images i SET sign_claim = $3,"
	" sign_lease_until = now() + make_interval(secs => $4::integer)"
	" FROM cur WHERE i.id = cur.id AND i.status = 'uploaded'"
	" AND (i.sign_claim IS NULL OR i.sign_lease_until < now())"
	" RETURNING i.upload_id, i.name, i.version, i.size,"
	" encode(i.sha256, 'hex') AS sha, to_json(i.hardware) AS hw, i.encrypt),"
	" d AS (DELETE FROM image_chunks ch USING c WHERE ch.upload_id = c.upload_id"
	" AND ch.variant = 1 RETURNING 1)"
	" SELECT cur.status, c.upload_id, c.name, c.version, c.size, c.sha, c.hw,"
	" c.encrypt, k.key_label, k.cert_der, (SELECT count(*) FROM d)"
	" FROM cur LEFT JOIN c ON true"
	" LEFT JOIN cas k ON k.project_id = $1::bigint AND k.kind = 'codesign'", 4 };
enum { CL_STATUS, CL_UPLOAD, CL_NAME, CL_VERSION, CL_SIZE, CL_SHA, CL_HW,
	CL_ENCRYPT, CL_LABEL, CL_CERT };

/* Give the claim up and remove what this attempt wrote. */
static const struct db_stmt imgsign_release = {
	"imgsign_release", "WITH r AS (UPDATE images SET sign_claim = NULL,"
	" sign_lease_until = NULL WHERE id = $1::bigint AND sign_claim = $2"
	" AND status = 'uploaded' RETURNING upload_id)"
	" DELETE FROM image_chunks ch USING r WHERE ch.upload_id = r.upload_id"
	" AND ch.variant = 1", 2 };

static const struct db_stmt imgsign_read = {
	"imgsign_read", "SELECT data FROM image_chunks WHERE upload_id = $1"
	" AND variant = 0 AND off = $2::bigint", 2 };

/* Written only while the claim holds, and the lease renewed with it. */
static const struct db_stmt imgsign_write = {
	"imgsign_write", "WITH l AS (UPDATE images SET sign_lease_until = now() +"
	" make_interval(secs => $5::integer) WHERE id = $1::bigint"
	" AND sign_claim = $2 AND status = 'uploaded' RETURNING upload_id)"
	" INSERT INTO image_chunks (upload_id, variant, off, data)"
	" SELECT upload_id, 1, $3::bigint, $4::bytea FROM l RETURNING off", 5 };

/* Signed only when the claim still holds and, for an encrypted image,
 * every byte of the encrypted form is there. */
static const struct db_stmt imgsign_done = {
	"imgsign_done", "WITH s AS (UPDATE images i SET status = 'signed',"
	" signature_der = $3, manifest_der = $4, signed_by = $5,"
	" signed_at = $6::timestamptz, expires_at = $7::timestamptz,"
	" hardware = ARRAY(SELECT json_array_elements_text($8::json)),"
	" enc_size = $9::bigint, enc_segment_size = $10::integer,"
	" enc_nonce_prefix = $11, enc_key_wrapped = $12, enc_kek_label = $13,"
	" sign_claim = NULL, sign_lease_until = NULL"
	" WHERE i.id = $1::bigint AND i.sign_claim = $2 AND i.status = 'uploaded'"
	" AND ($9::bigint IS NULL OR $9::bigint = (SELECT coalesce(sum(length(c.data)), 0)"
	" FROM image_chunks c WHERE c.upload_id = i.upload_id AND c.variant = 1))"
	" RETURNING i.*),"
	" a AS (SELECT ql_audit($5, 'image.sign', s.id::text, 'ok', $14, s.project_id)"
	" AS id FROM s)"
	" SELECT " IMGSIGN_SELECT("s") ", a.id FROM s LEFT JOIN a ON true", 14 };

static const struct db_stmt imgsign_kek_get = {
	"imgsign_kek_get", "SELECT key_label FROM token_secrets"
	" WHERE purpose = 'image-kek'", 0 };
static const struct db_stmt imgsign_kek_put = {
	"imgsign_kek_put", "INSERT INTO token_secrets (purpose, key_label)"
	" VALUES ('image-kek', $1) ON CONFLICT (purpose) DO NOTHING"
	" RETURNING key_label", 1 };

const struct db_stmt imgsign_get_signature = {
	"imgsign_get_signature", "SELECT signature_der FROM images"
	" WHERE id = $2::bigint AND project_id = $1::bigint AND status = 'signed'", 2 };
const struct db_stmt imgsign_get_manifest = {
	"imgsign_get_manifest", "SELECT manifest_der FROM images"
	" WHERE id = $2::bigint AND project_id = $1::bigint AND status = 'signed'", 2 };

static const struct db_stmt imgsign_key_get = {
	"imgsign_key_get", "SELECT enc_key_wrapped, enc_kek_label FROM images"
	" WHERE id = $1::bigint AND status = 'signed' AND encrypt", 1 };

int
imgsign_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&imgsign_claim, &imgsign_release, &imgsign_read, &imgsign_write,
		&imgsign_done, &imgsign_kek_get, &imgsign_kek_put,
		&imgsign_get_signature, &imgsign_get_manifest, &imgsign_key_get,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

int
imgsign_hardware_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= IMGSIGN_HW_LEN && strspn(s, NAMES_HARDWARE_CHARS) == n;
}

/* ---- CMS ---- */

static int
imgsign_cms_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();

	snprintf(err, errlen, "%s: %s", what, e ? ERR_reason_error_string(e) : "failed");
	ERR_clear_error();
	return -1;
}

/* Detached: the signed attributes carry the stored digest, so the image
 * itself is never read (RFC 5652 5.4: the signature covers the DER of
 * the signed attributes, which hold messageDigest). */
static int
imgsign_cms_detached(EVP_PKEY *key, X509 *cert, const unsigned char sha256[32],
    time_t when, unsigned char **der, int *len, char *err, size_t errlen)
{
	const unsigned int flags = CMS_PARTIAL | CMS_DETACHED | CMS_BINARY |
	    CMS_NOSMIMECAP;
	CMS_ContentInfo *cms;
	CMS_SignerInfo *si;
	ASN1_TIME *t = NULL;
	int rc = -1;

	*der = NULL;
	if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL)
		return imgsign_cms_err(err, errlen, "CMS_sign");
	if ((si = CMS_add1_signer(cms, cert, key, EVP_sha256(), flags)) == NULL) {
		imgsign_cms_err(err, errlen, "CMS_add1_signer");
		goto out;
	}
	if ((t = ASN1_TIME_set(NULL, when)) == NULL ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
	    OBJ_nid2obj(NID_pkcs7_data), -1) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest,
	    V_ASN1_OCTET_STRING, sha256, 32) ||
	    !CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime,
	    ASN1_STRING_type(t), t, -1)) {
		imgsign_cms_err(err, errlen, "CMS signed attributes");
		goto out;
	}
	if (!CMS_SignerInfo_sign(si)) {
		imgsign_cms_err(err, errlen, "CMS_SignerInfo_sign");
		goto out;
	}
	if ((*len = i2d_CMS_ContentInfo(cms, der)) <= 0) {
		*der = NULL;
		imgsign_cms_err(err, errlen, "i2d_CMS_ContentInfo");
		goto out;
	}
	rc = 0;
out:
	ASN1_TIME_free(t);
	CMS_ContentInfo_free(cms);
	return rc;
}

static int
imgsign_cms_embedded(EVP_PKEY *key, X509 *cert, const char *doc, size_t len,
    unsigned char **der, int *derlen, char *err, size_t errlen)
{
	CMS_ContentInfo *cms = NULL;
	BIO *in;
	int rc = -1;

	*der = NULL;
	if ((in = BIO_new_mem_buf(doc, (int)len)) == NULL)
		return imgsign_cms_err(err, errlen, "BIO_new_mem_buf");
	if ((cms = CMS_sign(cert, key, NULL, in, CMS_BINARY | CMS_NOSMIMECAP)) == NULL) {
		imgsign_cms_err(err, errlen, "CMS_sign (manifest)");
		goto out;
	}
	if ((*derlen = i2d_CMS_ContentInfo(cms, der)) <= 0) {
		*der = NULL;
		imgsign_cms_err(err, errlen, "i2d_CMS_ContentInfo");
		goto out;
	}
	rc = 0;
out:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rc;
}

int
imgsign_cms(EVP_PKEY *key, X509 *cert, const unsigned char sha256[32],
    time_t when, const char *manifest, size_t manifestlen, unsigned char **sig,
    int *siglen, unsigned char **man, int *manlen, char *err, size_t errlen)
{
	if (imgsign_cms_detached(key, cert, sha256, when, sig, siglen, err,
	    errlen) == -1)
		return -1;
	if (imgsign_cms_embedded(key, cert, manifest, manifestlen, man, manlen,
	    err, errlen) == -1) {
		OPENSSL_free(*sig);
		*sig = NULL;
		return -1;
	}
	return 0;
}

/* ---- content keys ---- */

static void
imgsign_aad(long long image_id, char *buf, size_t len)
{
	snprintf(buf, len, IMGSIGN_AAD "%lld", image_id);
}

static int
imgsign_key_seal(struct p11 *p11, const char *kek_label, long long image_id,
    const unsigned char key[32], unsigned char out[IMGSIGN_KEY_WRAPPED],
    char *err, size_t errlen)
{
	char aad[64];

	imgsign_aad(image_id, aad, sizeof(aad));
	if (RAND_bytes(out, 12) != 1) {
		snprintf(err, errlen, "no randomness");
		return -1;
	}
	return p11_secret_gcm(p11, kek_label, 1, out, (const unsigned char *)aad,
	    strlen(aad), key, 32, out + 12, err, errlen);
}

int
imgsign_key_unwrap(struct p11 *p11, const char *kek_label, long long image_id,
    const unsigned char wrapped[IMGSIGN_KEY_WRAPPED], unsigned char key[32],
    char *err, size_t errlen)
{
	char aad[64];

	imgsign_aad(image_id, aad, sizeof(aad));
	return p11_secret_gcm(p11, kek_label, 0, wrapped,
	    (const unsigned char *)aad, strlen(aad), wrapped + 12,
	    IMGSIGN_KEY_WRAPPED - 12, key, err, errlen);
}

int
imgsign_key_envelope(const unsigned char key[32], X509 *cert,
    unsigned char **der, int *len, char *err, size_t errlen)
{
	const unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_KEY_PARAM;
	CMS_ContentInfo *cms = NULL;
	CMS_RecipientInfo *ri;
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	BIO *in;
	int rc = -1;

	*der = NULL;
	if (pub == NULL || (EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC &&
	    EVP_PKEY_get_base_id(pub) != EVP_PKEY_RSA)) {
		snprintf(err, errlen, "the certificate's key is neither EC nor RSA");
		return -1;
	}
	if ((in = BIO_new_mem_buf(key, 32)) == NULL)
		return imgsign_cms_err(err, errlen, "BIO_new_mem_buf");
	if ((cms = CMS_encrypt(NULL, NULL, EVP_aes_256_cbc(), flags)) == NULL ||
	    (ri = CMS_add1_recipient_cert(cms, cert, flags)) == NULL) {
		imgsign_cms_err(err, errlen, "CMS_encrypt");
		goto out;
	}
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC &&
	    EVP_PKEY_CTX_set_ecdh_kdf_md(CMS_RecipientInfo_get0_pkey_ctx(ri),
	    EVP_sha256()) <= 0) {
		imgsign_cms_err(err, errlen, "ECDH KDF");
		goto out;
	}
	if (!CMS_final(cms, in, NULL, CMS_BINARY)) {
		imgsign_cms_err(err, errlen, "CMS_final");
		goto out;
	}
	if ((*len = i2d_CMS_ContentInfo(cms, der)) <= 0) {
		*der = NULL;
		imgsign_cms_err(err, errlen, "i2d_CMS_ContentInfo");
		goto out;
	}
	rc = 0;
out:
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	return rc;
}

/* ---- the signing job ---- */

struct imgsign_job {
	struct server		*srv;
	imgsign_cb		 cb;
	void			*arg;
	long long		 project_id, image_id;
	char			 project[64];
	char			 actor[128];
	int			 days;
	char			 claim[33];
	char			 image_id_s[24];
	/* from the claim */
	char			 upload_id[32];
	char			 name[80], version[48];
	long long		 size;
	unsigned char		 sha256[32];
	char			 sha_hex[65];
	int			 is_encrypted;
	char			 key_label[64];
	char			 kek[64];	/* the image KEK's label */
	char			 kek_new[64];	/* a KEK this job created */
	X509			*cert;
	char			**hw;
	size_t			 nhw;
	/* what is signed */
	time_t			 when;
	char			 signed_at[32], expires_at[32];
	char			*doc;		/* the manifest JSON */
	size_t			 doclen;
	unsigned char		*sig, *man;
	int			 siglen, manlen;
	/* the token job: p11 copied for the worker, its outcome */
	struct p11		*p11;
	int			 tok_rc;
	const char		*tok_what;
	/* encryption */
	unsigned char		 key[32];
	unsigned char		 prefix[STREAM_PREFIX_LEN];
	unsigned char		 wrapped[IMGSIGN_KEY_WRAPPED];
	long long		 enc_size;
	long long		 read_off;	/* next plain byte to read */
	long long		 in_off;	/* plain bytes encrypted */
	long long		 out_off;	/* next encrypted byte to write */
	unsigned char		*pending;	/* a plain row read, not encrypted */
	size_t			 pendinglen;
	unsigned char		*out;		/* encrypted, not yet written */
	size_t			 outlen;
	size_t			 writing;	/* bytes of out in the write in flight */
	int			 is_reading, is_writing;
	int			 is_stream_failed;
	int			 is_pumping, is_pump_again;
	struct stream_enc	*enc;
	int			 is_claimed;
	enum imgsign_status	 fail_st;	/* what a failure reports */
	char			 err[256];
};

static int imgsign_njobs;
static char imgsign_kek[64];	/* the image KEK's label, once known */

static void imgsign_pump(struct imgsign_job *);
static void imgsign_kek_ready(struct imgsign_job *);

static void
imgsign_job_free(struct imgsign_job *j)
{
	for (size_t i = 0; i < j->nhw; i++)
		free(j->hw[i]);
	free(j->hw);
	X509_free(j->cert);
	free(j->doc);
	OPENSSL_free(j->sig);
	OPENSSL_free(j->man);
	if (j->enc != NULL) {
		stream_enc_clear(j->enc);
		free(j->enc);
	}
	free(j->out);
	if (j->pending != NULL) {
		OPENSSL_cleanse(j->pending, j->pendinglen);
		PQfreemem(j->pending);
	}
	OPENSSL_cleanse(j->key, sizeof(j->key));
	free(j);
	imgsign_njobs--;
}

static void
imgsign_finish(struct imgsign_job *j, enum imgsign_status st, const PGresult *res,
    const char *err)
{
	if (st == IMGSIGN_FAILED)
		log_warnx("image %lld: signing failed: %s", j->image_id, err);
	j->cb(st, res, err, j->arg);
	imgsign_job_free(j);
}

static void
imgsign_released(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;

	(void)res;
	if (st != DB_OK)	/* the lease runs out on its own */
		log_warnx("image %lld: cannot release the signing claim: %s",
		    j->image_id, db_errstr(st, errstr));
	imgsign_finish(j, j->fail_st, NULL, j->err);
}

/* Record why, give the claim up (and what this attempt wrote), then
 * report. */
static void
imgsign_fail(struct imgsign_job *j, const char *what, const char *detail)
{
	const char *v[2] = { j->image_id_s, j->claim };
	char buf[sizeof(j->err)];

	snprintf(buf, sizeof(buf), "%s%s%s", what ? what : "", what ? ": " : "",
	    detail);
	memcpy(j->err, buf, sizeof(j->err));
	if (!j->is_claimed) {
		imgsign_finish(j, j->fail_st, NULL, j->err);
		return;
	}
	db_query(j->srv->db, &imgsign_release, 2, v, NULL, imgsign_released, j);
}

/* The token's queue is full: nothing is kept, the client may retry. */
static void
imgsign_fail_busy(struct imgsign_job *j)
{
	j->fail_st = IMGSIGN_TOKEN_BUSY;
	imgsign_fail(j, NULL, IMGSIGN_TOKEN_BUSY_MSG);
}

static void
imgsign_rfc3339(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
imgsign_gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

/* The hardware list as a JSON array (for the database). */
static char *
imgsign_hw_json(struct imgsign_job *j)
{
	yajl_gen g = json_gen_new();
	const unsigned char *buf;
	size_t len;
	char *out = NULL;

	if (g == NULL)
		return NULL;
	yajl_gen_array_open(g);
	for (size_t i = 0; i < j->nhw; i++)
		imgsign_gen_str(g, j->hw[i]);
	yajl_gen_array_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
		out = xmalloc(len + 1);
		memcpy(out, buf, len);
		out[len] = '\0';
	}
	yajl_gen_free(g);
	return out;
}

/* The manifest of the contract (man/quarklink-image.5), compact JSON. */
static char *
imgsign_manifest(struct imgsign_job *j, size_t *outlen)
{
	yajl_gen g = json_gen_new();
	const unsigned char *buf;
	size_t len;
	char *out = NULL;

	if (g == NULL)
		return NULL;
	yajl_gen_map_open(g);
	json_kv_int(g, "format", 1);
	json_kv_str(g, "project", j->project);
	json_kv_int(g, "image_id", j->image_id);
	json_kv_str(g, "name", j->name);
	json_kv_str(g, "version", j->version);
	json_kv_int(g, "size", j->size);
	json_kv_str(g, "sha256", j->sha_hex);
	json_kv_str(g, "created", j->signed_at);
	json_kv_str(g, "expires", j->expires_at);
	json_key(g, "hardware");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < j->nhw; i++)
		imgsign_gen_str(g, j->hw[i]);
	yajl_gen_array_close(g);
	json_kv_bool(g, "encrypted", j->is_encrypted);
	if (j->is_encrypted) {
		json_kv_int(g, "encrypted_size", j->enc_size);
		json_kv_int(g, "segment_size", STREAM_SEGMENT);
	}
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) {
		out = xmalloc(len + 1);
		memcpy(out, buf, len);
		out[len] = '\0';
		*outlen = len;
	}
	yajl_gen_free(g);
	return out;
}

/* On a token worker: load the project's code-signing key and sign both;
 * for an encrypted image also seal its content key with the image KEK.
 * Only the job is touched. */
static void
imgsign_tok_run(void *arg)
{
	struct imgsign_job *j = arg;
	EVP_PKEY *key;

	j->tok_rc = -1;
	j->tok_what = "signing";
	if ((key = p11_load_private(j->p11, j->key_label, j->err,
	    sizeof(j->err))) == NULL)
		return;
	j->tok_rc = imgsign_cms(key, j->cert, j->sha256, j->when, j->doc,
	    j->doclen, &j->sig, &j->siglen, &j->man, &j->manlen, j->err,
	    sizeof(j->err));
	EVP_PKEY_free(key);
	if (j->tok_rc == -1 || !j->is_encrypted)
		return;
	j->tok_what = "wrapping the content key";
	j->tok_rc = imgsign_key_seal(j->p11, j->kek, j->image_id, j->key,
	    j->wrapped, j->err, sizeof(j->err));
}

static void imgsign_store(struct imgsign_job *);
static void imgsign_encrypt_start(struct imgsign_job *);

static void
imgsign_tok_done(void *arg, int is_cancelled)
{
	struct imgsign_job *j = arg;

	free(j->doc);
	j->doc = NULL;
	if (is_cancelled) {
		imgsign_fail(j, NULL, WORK_CANCELLED_MSG);
		return;
	}
	if (j->tok_rc == -1) {
		imgsign_fail(j, j->tok_what, j->err);
		return;
	}
	if (j->is_encrypted)
		imgsign_encrypt_start(j);
	else
		imgsign_store(j);
}

/* Everything the worker needs, made here on the loop, then the token
 * job; a full queue gives the claim up and answers 503. */
static void
imgsign_tok_start(struct imgsign_job *j)
{
	if (j->is_encrypted && (RAND_priv_bytes(j->key, sizeof(j->key)) != 1 ||
	    RAND_bytes(j->prefix, sizeof(j->prefix)) != 1)) {
		imgsign_fail(j, NULL, "no randomness");
		return;
	}
	if ((j->doc = imgsign_manifest(j, &j->doclen)) == NULL) {
		imgsign_fail(j, NULL, "out of memory");
		return;
	}
	j->p11 = j->srv->p11;
	if (tok_submit(imgsign_tok_run, imgsign_tok_done, j) == -1)
		imgsign_fail_busy(j);
}

static void
imgsign_done_cb(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;

	if (st != DB_OK) {
		imgsign_fail(j, NULL, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) != 1) {
		imgsign_fail(j, NULL, "the claim was lost or the encrypted form is"
		    " incomplete");
		return;
	}
	j->is_claimed = 0;
	log_info("image %lld signed by %s%s", j->image_id, j->actor,
	    j->is_encrypted ? ", encrypted" : "");
	imgsign_finish(j, IMGSIGN_OK, res, NULL);
}

static void
imgsign_store(struct imgsign_job *j)
{
	char *hw = imgsign_hw_json(j);
	char encsize[24], seg[16], detail[256];
	const char *v[14] = { j->image_id_s, j->claim, (const char *)j->sig,
	    (const char *)j->man, j->actor, j->signed_at, j->expires_at, hw,
	    NULL, NULL, NULL, NULL, NULL, detail };
	int len[14] = { -1, -1, j->siglen, j->manlen, -1, -1, -1, -1, -1, -1,
	    -1, -1, -1, -1 };

	if (hw == NULL) {
		imgsign_fail(j, NULL, "out of memory");
		return;
	}
	snprintf(detail, sizeof(detail), "%s %s sha256 %s expires %s%s", j->name,
	    j->version, j->sha_hex, j->expires_at, j->is_encrypted ? " encrypted" : "");
	if (j->is_encrypted) {
		snprintf(encsize, sizeof(encsize), "%lld", j->enc_size);
		snprintf(seg, sizeof(seg), "%d", STREAM_SEGMENT);
		v[8] = encsize;
		v[9] = seg;
		v[10] = (const char *)j->prefix;
		len[10] = STREAM_PREFIX_LEN;
		v[11] = (const char *)j->wrapped;
		len[11] = IMGSIGN_KEY_WRAPPED;
		v[12] = j->kek;
	}
	db_query(j->srv->db, &imgsign_done, 14, v, len, imgsign_done_cb, j);
	free(hw);
}

/* ---- streaming the encryption ---- */

/* At most one read and one write in flight: the next plain row is read
 * while the previous encrypted row is written, and one plain row waits
 * (pending) when the output holds a full row already. Every callback goes
 * through imgsign_pump, which alone decides what comes next. */

static void
imgsign_stream_error(struct imgsign_job *j, const char *what, const char *detail)
{
	if (!j->is_stream_failed)	/* the first reason counts */
		snprintf(j->err, sizeof(j->err), "%s%s%s", what ? what : "",
		    what ? ": " : "", detail);
	j->is_stream_failed = 1;
}

static void
imgsign_written(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;

	j->is_writing = 0;
	if (st != DB_OK)
		imgsign_stream_error(j, "writing the encrypted form",
		    db_errstr(st, errstr));
	else if (PQntuples(res) != 1)
		imgsign_stream_error(j, NULL, "the signing claim was lost");
	else {
		j->out_off += (long long)j->writing;
		memmove(j->out, j->out + j->writing, j->outlen - j->writing);
		j->outlen -= j->writing;
	}
	j->writing = 0;
	imgsign_pump(j);
}

static void
imgsign_read_cb(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;
	unsigned char *data;
	size_t n;

	j->is_reading = 0;
	if (st != DB_OK) {
		imgsign_stream_error(j, "reading the image", db_errstr(st, errstr));
	} else if (PQntuples(res) != 1) {
		imgsign_stream_error(j, NULL, "the image's chunks are not contiguous");
	} else if ((data = PQunescapeBytea((const unsigned char *)
	    PQgetvalue(res, 0, 0), &n)) == NULL) {
		imgsign_stream_error(j, NULL, "out of memory");
	} else if (n == 0 || n > IMGSIGN_ROW || (long long)n > j->size - j->read_off) {
		PQfreemem(data);
		imgsign_stream_error(j, NULL, "the image's chunks do not add up to its size");
	} else {
		j->pending = data;
		j->pendinglen = n;
		j->read_off += (long long)n;
	}
	imgsign_pump(j);
}

/* One step of the stream; -1 when nothing more can be started now. */
static int
imgsign_pump_once(struct imgsign_job *j)
{
	size_t produced;

	if (j->is_stream_failed)
		return -1;
	if (j->pending != NULL && j->outlen < IMGSIGN_ROW) {
		int rc = stream_enc_update(j->enc, j->pending, j->pendinglen,
		    j->out + j->outlen, &produced);

		OPENSSL_cleanse(j->pending, j->pendinglen);
		PQfreemem(j->pending);
		j->pending = NULL;
		if (rc == -1) {
			imgsign_stream_error(j, NULL, "encryption failed");
			return -1;
		}
		j->in_off += (long long)j->pendinglen;
		j->outlen += produced;
		return 0;
	}
	if (!j->is_reading && j->pending == NULL && j->read_off < j->size) {
		char off[24];
		const char *v[2] = { j->upload_id, off };

		snprintf(off, sizeof(off), "%lld", j->read_off);
		j->is_reading = 1;
		db_query(j->srv->db, &imgsign_read, 2, v, NULL, imgsign_read_cb, j);
		return 0;
	}
	if (!j->is_writing && (j->outlen >= IMGSIGN_ROW ||
	    (j->in_off == j->size && j->outlen > 0))) {
		char off[24], lease[8];
		const char *v[5] = { j->image_id_s, j->claim, off,
		    (const char *)j->out, lease };
		int len[5] = { -1, -1, -1, 0, -1 };

		j->writing = j->outlen < IMGSIGN_ROW ? j->outlen : IMGSIGN_ROW;
		len[3] = (int)j->writing;
		snprintf(off, sizeof(off), "%lld", j->out_off);
		snprintf(lease, sizeof(lease), "%d", IMGSIGN_LEASE_S);
		j->is_writing = 1;
		db_query(j->srv->db, &imgsign_write, 5, v, len, imgsign_written, j);
		return 0;
	}
	return -1;
}

/* A callback may run inside db_query (when the pool refuses at once), so
 * a nested call only asks the outer one to go round again; only the
 * outermost call may end the job. */
static void
imgsign_pump(struct imgsign_job *j)
{
	if (j->is_pumping) {
		j->is_pump_again = 1;
		return;
	}
	j->is_pumping = 1;
	do {
		j->is_pump_again = 0;
		while (imgsign_pump_once(j) == 0)
			;
	} while (j->is_pump_again);
	j->is_pumping = 0;
	if (j->is_reading || j->is_writing)
		return;
	if (j->is_stream_failed) {
		imgsign_fail(j, NULL, j->err);
		return;
	}
	if (j->in_off == j->size && j->outlen == 0) {
		if (j->out_off != j->enc_size) {
			imgsign_fail(j, NULL, "the encrypted form has the wrong length");
			return;
		}
		imgsign_store(j);
	}
}

static void
imgsign_encrypt_start(struct imgsign_job *j)
{
	size_t n;

	/* The key and prefix were made, and the key sealed, before the
	 * token job (imgsign_tok_start). */
	j->enc = xmalloc(sizeof(*j->enc));
	j->out = xmalloc(IMGSIGN_ROW + stream_enc_bound(IMGSIGN_ROW));
	stream_enc_init(j->enc, j->key, j->prefix, (uint64_t)j->size);
	OPENSSL_cleanse(j->key, sizeof(j->key));
	/* The header (and for an empty image its one segment) comes first. */
	if (stream_enc_update(j->enc, NULL, 0, j->out, &n) == -1) {
		imgsign_fail(j, NULL, "cannot start the encryption");
		return;
	}
	j->outlen = n;
	imgsign_pump(j);
}

/* ---- the image KEK ---- */

static void imgsign_kek_got(enum db_status, const PGresult *, const char *, void *);

/* A KEK that lost the race to be the image KEK, destroyed on a token
 * worker. Urgent: a key left behind is never used nor removed again. */
struct imgsign_kek_drop {
	struct p11	*p11;
	char		 label[64];
	int		 rc;
	char		 err[256];
};

static void
imgsign_kek_drop_run(void *arg)
{
	struct imgsign_kek_drop *d = arg;

	d->rc = p11_destroy_key(d->p11, d->label, d->err, sizeof(d->err));
}

static void
imgsign_kek_drop_done(void *arg, int is_cancelled)
{
	struct imgsign_kek_drop *d = arg;

	if (is_cancelled)
		log_warnx("image KEK %s: %s, left on the token", d->label,
		    WORK_CANCELLED_MSG);
	else if (d->rc == -1)
		log_warnx("image KEK %s: %s", d->label, d->err);
	free(d);
}

static void
imgsign_kek_drop(struct imgsign_job *j)
{
	struct imgsign_kek_drop *d;

	d = xcalloc(1, sizeof(*d));
	d->p11 = j->srv->p11;
	snprintf(d->label, sizeof(d->label), "%s", j->kek_new);
	if (tok_submit_urgent(imgsign_kek_drop_run, imgsign_kek_drop_done, d) == -1) {
		log_warnx("image KEK %s: cannot queue its removal, left on the token",
		    d->label);
		free(d);
	}
}

static void
imgsign_kek_put_cb(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;

	if (st != DB_OK || PQntuples(res) != 1) {
		/* Lost the race to another node or job, or failed: ours goes. */
		imgsign_kek_drop(j);
		if (st != DB_OK) {
			imgsign_fail(j, "storing the image KEK", db_errstr(st, errstr));
			return;
		}
		db_query(j->srv->db, &imgsign_kek_get, 0, NULL, NULL, imgsign_kek_got, j);
		return;
	}
	snprintf(imgsign_kek, sizeof(imgsign_kek), "%s", j->kek_new);
	log_info("image KEK %s created on the token", imgsign_kek);
	imgsign_kek_ready(j);
}

/* On a token worker. */
static void
imgsign_kek_create_run(void *arg)
{
	struct imgsign_job *j = arg;

	j->tok_rc = p11_generate_secret(j->p11, j->kek_new, j->err,
	    sizeof(j->err));
}

static void
imgsign_kek_created(void *arg, int is_cancelled)
{
	struct imgsign_job *j = arg;
	const char *v[1] = { j->kek_new };

	if (is_cancelled) {
		imgsign_fail(j, "creating the image KEK", WORK_CANCELLED_MSG);
		return;
	}
	if (j->tok_rc == -1) {
		imgsign_fail(j, "creating the image KEK", j->err);
		return;
	}
	db_query(j->srv->db, &imgsign_kek_put, 1, v, NULL, imgsign_kek_put_cb, j);
}

/* A new secret key with a unique label: the table decides which of two
 * racing creators keeps its key. */
static void
imgsign_kek_create(struct imgsign_job *j)
{
	if (p11_label_new(IMGSIGN_KEK_PREFIX, j->kek_new, sizeof(j->kek_new)) == -1) {
		imgsign_fail(j, NULL, "no randomness");
		return;
	}
	j->p11 = j->srv->p11;
	if (tok_submit(imgsign_kek_create_run, imgsign_kek_created, j) == -1)
		imgsign_fail_busy(j);
}

static void
imgsign_kek_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;

	if (st != DB_OK) {
		imgsign_fail(j, "reading the image KEK", db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) == 0) {
		imgsign_kek_create(j);
		return;
	}
	snprintf(imgsign_kek, sizeof(imgsign_kek), "%s", PQgetvalue(res, 0, 0));
	imgsign_kek_ready(j);
}

/* The worker gets its own copy of the label. */
static void
imgsign_kek_ready(struct imgsign_job *j)
{
	snprintf(j->kek, sizeof(j->kek), "%s", imgsign_kek);
	imgsign_tok_start(j);
}

/* ---- claim ---- */

static int
imgsign_hw_add(struct imgsign_job *j, const char *s)
{
	if (j->nhw >= IMGSIGN_HW_MAX || !imgsign_hardware_ok(s))
		return -1;
	j->hw = xrealloc(j->hw, (j->nhw + 1) * sizeof(*j->hw));
	j->hw[j->nhw++] = xstrdup(s);
	return 0;
}

/* The image's own hardware list, as to_json(text[]) gives it. */
static int
imgsign_hw_from_json(struct imgsign_job *j, const char *text)
{
	char err[128];
	yajl_val v = json_parse(text, strlen(text), 4, err, sizeof(err));
	int rc = 0;

	if (v == NULL || !YAJL_IS_ARRAY(v)) {
		yajl_tree_free(v);
		return -1;
	}
	for (size_t i = 0; i < v->u.array.len && rc == 0; i++) {
		yajl_val e = v->u.array.values[i];

		rc = YAJL_IS_STRING(e) ? imgsign_hw_add(j, e->u.string) : -1;
	}
	yajl_tree_free(v);
	return rc;
}

static int
imgsign_unhex(const char *hex, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (unsigned char)b;
	}
	return hex[2 * n] == '\0' ? 0 : -1;
}

/* Copy what the claim returned; -1 with j->err set when it is unusable. */
static int
imgsign_claimed_row(struct imgsign_job *j, const PGresult *res)
{
	const char *errstr = NULL;
	unsigned char *der;
	const unsigned char *p;
	size_t derlen;

	snprintf(j->upload_id, sizeof(j->upload_id), "%s", PQgetvalue(res, 0, CL_UPLOAD));
	snprintf(j->name, sizeof(j->name), "%s", PQgetvalue(res, 0, CL_NAME));
	snprintf(j->version, sizeof(j->version), "%s", PQgetvalue(res, 0, CL_VERSION));
	snprintf(j->sha_hex, sizeof(j->sha_hex), "%s", PQgetvalue(res, 0, CL_SHA));
	j->size = util_strtonum(PQgetvalue(res, 0, CL_SIZE), 0, INT64_MAX / 2, &errstr);
	j->is_encrypted = PQgetvalue(res, 0, CL_ENCRYPT)[0] == 't';
	if (errstr != NULL || imgsign_unhex(j->sha_hex, j->sha256, 32) == -1) {
		snprintf(j->err, sizeof(j->err), "the image row is malformed");
		return -1;
	}
	if (PQgetisnull(res, 0, CL_LABEL)) {
		snprintf(j->err, sizeof(j->err), "the project has no code-signing key");
		return -1;
	}
	snprintf(j->key_label, sizeof(j->key_label), "%s", PQgetvalue(res, 0, CL_LABEL));
	der = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, CL_CERT), &derlen);
	p = der;
	if (der == NULL || (j->cert = d2i_X509(NULL, &p, (long)derlen)) == NULL) {
		PQfreemem(der);
		snprintf(j->err, sizeof(j->err), "the code-signing certificate is unreadable");
		return -1;
	}
	PQfreemem(der);
	if (j->hw == NULL && j->nhw == 0 &&
	    imgsign_hw_from_json(j, PQgetvalue(res, 0, CL_HW)) == -1) {
		snprintf(j->err, sizeof(j->err), "the image's hardware list is not"
		    " valid for a manifest");
		return -1;
	}
	j->enc_size = (long long)stream_encrypted_size((uint64_t)j->size);
	j->when = time(NULL);
	imgsign_rfc3339(j->when, j->signed_at, sizeof(j->signed_at));
	imgsign_rfc3339(j->when + (time_t)j->days * 86400, j->expires_at,
	    sizeof(j->expires_at));
	return 0;
}

static void
imgsign_claimed(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_job *j = arg;

	if (st != DB_OK) {
		imgsign_fail(j, NULL, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) == 0) {
		imgsign_finish(j, IMGSIGN_MISSING, NULL, "no such image");
		return;
	}
	if (PQgetisnull(res, 0, CL_UPLOAD)) {
		if (strcmp(PQgetvalue(res, 0, CL_STATUS), "signed") == 0)
			imgsign_finish(j, IMGSIGN_SIGNED, NULL, "the image is signed already");
		else
			imgsign_finish(j, IMGSIGN_BUSY, NULL, "the image is being signed");
		return;
	}
	j->is_claimed = 1;
	if (imgsign_claimed_row(j, res) == -1) {
		imgsign_fail(j, NULL, j->err);
		return;
	}
	if (!j->is_encrypted) {
		imgsign_tok_start(j);
		return;
	}
	if (imgsign_kek[0] != '\0') {
		imgsign_kek_ready(j);
		return;
	}
	db_query(j->srv->db, &imgsign_kek_get, 0, NULL, NULL, imgsign_kek_got, j);
}

void
imgsign_sign(struct server *srv, const struct imgsign_request *r, imgsign_cb cb,
    void *arg)
{
	struct imgsign_job *j;
	unsigned char rnd[16];
	char lease[8], pid[24];
	const char *v[4] = { pid, NULL, NULL, lease };

	if (imgsign_njobs >= IMGSIGN_JOBS_MAX) {
		cb(IMGSIGN_FULL, NULL, "too many images are being signed", arg);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	imgsign_njobs++;
	j->fail_st = IMGSIGN_FAILED;
	j->srv = srv;
	j->cb = cb;
	j->arg = arg;
	j->project_id = r->project_id;
	j->image_id = r->image_id;
	j->days = r->days;
	snprintf(j->project, sizeof(j->project), "%s", r->project);
	snprintf(j->actor, sizeof(j->actor), "%s", r->actor);
	snprintf(j->image_id_s, sizeof(j->image_id_s), "%lld", r->image_id);
	for (size_t i = 0; r->hardware != NULL && i < r->nhardware; i++)
		if (imgsign_hw_add(j, r->hardware[i]) == -1) {
			imgsign_finish(j, IMGSIGN_FAILED, NULL, "bad hardware list");
			return;
		}
	if (r->hardware != NULL && r->nhardware == 0)
		j->hw = xcalloc(1, sizeof(*j->hw));
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		imgsign_finish(j, IMGSIGN_FAILED, NULL, "no randomness");
		return;
	}
	util_hex(rnd, sizeof(rnd), j->claim);
	snprintf(pid, sizeof(pid), "%lld", r->project_id);
	snprintf(lease, sizeof(lease), "%d", IMGSIGN_LEASE_S);
	v[1] = j->image_id_s;
	v[2] = j->claim;
	db_query(srv->db, &imgsign_claim, 4, v, NULL, imgsign_claimed, j);
}

/* ---- the content key for one device ---- */

/* The stored key is opened on a token worker; the EnvelopedData is made
 * back on the loop (software only), so the worker never sees the device
 * certificate its caller shares. */
struct imgsign_keyreq {
	struct server	*srv;
	struct p11	*p11;
	long long	 image_id;
	X509		*device;
	imgsign_key_cb	 cb;
	void		*arg;
	char		 kek[64];
	unsigned char	 wrapped[IMGSIGN_KEY_WRAPPED];
	unsigned char	 key[32];
	int		 rc;
	char		 err[256];
};

static void
imgsign_key_end(struct imgsign_keyreq *k, const char *err)
{
	unsigned char *der = NULL;
	int derlen = 0;

	if (err == NULL && imgsign_key_envelope(k->key, k->device, &der, &derlen,
	    k->err, sizeof(k->err)) == -1)
		err = k->err;
	OPENSSL_cleanse(k->key, sizeof(k->key));
	if (err != NULL) {
		log_warnx("image %lld: content key: %s", k->image_id, err);
		k->cb(NULL, 0, err, k->arg);
	} else
		k->cb(der, (size_t)derlen, NULL, k->arg);
	OPENSSL_free(der);
	X509_free(k->device);
	free(k);
}

/* On a token worker. */
static void
imgsign_key_run(void *arg)
{
	struct imgsign_keyreq *k = arg;

	k->rc = imgsign_key_unwrap(k->p11, k->kek, k->image_id, k->wrapped,
	    k->key, k->err, sizeof(k->err));
}

static void
imgsign_key_opened(void *arg, int is_cancelled)
{
	struct imgsign_keyreq *k = arg;

	imgsign_key_end(k, is_cancelled ? WORK_CANCELLED_MSG :
	    k->rc == -1 ? k->err : NULL);
}

static void
imgsign_key_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgsign_keyreq *k = arg;
	unsigned char *wrapped = NULL;
	size_t wlen = 0;

	if (st != DB_OK)
		snprintf(k->err, sizeof(k->err), "%s", db_errstr(st, errstr));
	else if (PQntuples(res) != 1)
		snprintf(k->err, sizeof(k->err), "the image is not signed and encrypted");
	else if ((wrapped = PQunescapeBytea((const unsigned char *)
	    PQgetvalue(res, 0, 0), &wlen)) == NULL || wlen != IMGSIGN_KEY_WRAPPED ||
	    PQgetisnull(res, 0, 1) ||
	    strlen(PQgetvalue(res, 0, 1)) >= sizeof(k->kek))
		snprintf(k->err, sizeof(k->err), "the stored content key is malformed");
	else {
		memcpy(k->wrapped, wrapped, IMGSIGN_KEY_WRAPPED);
		snprintf(k->kek, sizeof(k->kek), "%s", PQgetvalue(res, 0, 1));
	}
	PQfreemem(wrapped);
	if (k->err[0] != '\0') {
		imgsign_key_end(k, k->err);
		return;
	}
	k->p11 = k->srv->p11;
	if (tok_submit(imgsign_key_run, imgsign_key_opened, k) == -1)
		imgsign_key_end(k, imgsign_token_busy);
}

void
imgsign_key_wrap(struct server *srv, long long image_id, X509 *device,
    imgsign_key_cb cb, void *arg)
{
	struct imgsign_keyreq *k;
	char id[24];
	const char *v[1] = { id };

	k = xcalloc(1, sizeof(*k));
	X509_up_ref(device);
	k->srv = srv;
	k->image_id = image_id;
	k->device = device;
	k->cb = cb;
	k->arg = arg;
	snprintf(id, sizeof(id), "%lld", image_id);
	db_query(srv->db, &imgsign_key_get, 1, v, NULL, imgsign_key_got, k);
}

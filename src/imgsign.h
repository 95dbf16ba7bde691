/* imgsign.h: signing an uploaded image with its project's code-signing key
 * on the token (a detached CMS signature and the signed update manifest),
 * encrypting it once when it asks to be (stream.h), and handing its content
 * key to a device as CMS EnvelopedData. Builds no HTTP replies. */
#ifndef QL_IMGSIGN_H
#define QL_IMGSIGN_H

#include <stddef.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "db.h"

struct server;
struct p11;

#define IMGSIGN_DAYS_DEFAULT	365	/* manifest lifetime when not asked */
#define IMGSIGN_DAYS_MAX	3650
#define IMGSIGN_HW_MAX		32	/* hardware names in a manifest */
#define IMGSIGN_HW_LEN		64
#define IMGSIGN_JOBS_MAX	4	/* signings at once on one node */
#define IMGSIGN_LEASE_S		30	/* a dead node's claim is void after */
#define IMGSIGN_ROW		1048576	/* encrypted chunk row size */
#define IMGSIGN_KEY_WRAPPED	60	/* IV 12 + key 32 + tag 16 */

/* The image columns every reply of this module carries, in this order
 * (api_imgsign.c decodes them): id, name, version, size, sha256 hex,
 * status, hardware (JSON array), encrypt, enc_size, signed_by, signed_at,
 * expires_at, created_at (RFC 3339 UTC). */
#define IMGSIGN_NCOLS		13

enum imgsign_status {
	IMGSIGN_OK,		/* res row 0: the signed image */
	IMGSIGN_MISSING,	/* no such image in the project */
	IMGSIGN_SIGNED,		/* signed already */
	IMGSIGN_BUSY,		/* being signed (here or on another node) */
	IMGSIGN_FULL,		/* IMGSIGN_JOBS_MAX signings running here */
	IMGSIGN_TOKEN_BUSY,	/* the token's queue is full: 503 with
				 * Retry-After: TOK_RETRY_AFTER */
	IMGSIGN_FAILED,		/* database, token or data; err says what */
};
typedef void (*imgsign_cb)(enum imgsign_status, const PGresult *res,
    const char *err, void *arg);

struct imgsign_request {
	long long		 project_id;
	const char		*project;	/* name, for the manifest */
	long long		 image_id;
	const char		*actor;
	int			 days;		/* 1..IMGSIGN_DAYS_MAX */
	/* NULL: the image's own list; else nhardware names (already
	 * checked with imgsign_hardware_ok). */
	const char *const	*hardware;
	size_t			 nhardware;
};

int		 imgsign_register(struct db_pool *) __attribute__((warn_unused_result));
/* A hardware name as manifests carry it: 1-64 of [A-Za-z0-9._:-], as
 * uploads accept them. */
int		 imgsign_hardware_ok(const char *);
/* Sign (and encrypt) image r->image_id; cb runs once, when the image is
 * signed or nothing was changed. r is copied. */
void		 imgsign_sign(struct server *, const struct imgsign_request *r,
		    imgsign_cb, void *arg);

/* The one place that signs with the code-signing key: the detached
 * signature over an image of which only the SHA-256 is given (signed
 * attributes contentType, messageDigest, signingTime = when) and the
 * manifest SignedData embedding manifest. key refers to the token, so
 * this runs on a token worker (tok.h); cert is included in both. DER
 * out, OPENSSL_free them. */
int		 imgsign_cms(EVP_PKEY *key, X509 *cert,
		    const unsigned char sha256[32], time_t when,
		    const char *manifest, size_t manifestlen,
		    unsigned char **sig, int *siglen, unsigned char **man,
		    int *manlen, char *err, size_t errlen)
		    __attribute__((warn_unused_result));

/* Stored DER of a signed image: its detached signature or its manifest
 * ($1 project id, $2 image id; one row with column 0, none when missing
 * or not signed). */
extern const struct db_stmt imgsign_get_signature;
extern const struct db_stmt imgsign_get_manifest;

/* ---- content keys of encrypted images ---- */

/* The stored (token-wrapped) content key of image_id opened with the
 * token's secret key kek_label. Token operation: on a token worker only
 * (imgsign_key_wrap submits it). */
int		 imgsign_key_unwrap(struct p11 *, const char *kek_label,
		    long long image_id,
		    const unsigned char wrapped[IMGSIGN_KEY_WRAPPED],
		    unsigned char key[32], char *err, size_t errlen)
		    __attribute__((warn_unused_result));
/* key as a CMS EnvelopedData for the holder of cert's private key: for an
 * EC key, ECDH key agreement (kari, dhSinglePass-stdDH-sha256kdf) with
 * AES-256 key wrap, content AES-256-CBC; an RSA key gets RSA key
 * transport. Pure OpenSSL. DER out, OPENSSL_free it. */
int		 imgsign_key_envelope(const unsigned char key[32], X509 *cert,
		    unsigned char **der, int *len, char *err, size_t errlen)
		    __attribute__((warn_unused_result));

/* For the device update API: the content key of the signed, encrypted
 * image image_id wrapped for device (the device's current certificate).
 * Reads the stored wrapped key (database), unwraps it on the token and
 * builds the EnvelopedData; cb(der, len, NULL) once, or cb(NULL, 0, err)
 * (not signed, not encrypted, database or token failure). der is valid
 * only during cb. A reference to device is kept until then. The token
 * call (imgsign_key_unwrap) runs on a token worker; when the token's
 * queue is full err is imgsign_token_busy (the pointer), which the caller
 * answers with 503 and Retry-After: TOK_RETRY_AFTER. */
typedef void (*imgsign_key_cb)(const unsigned char *der, size_t len,
    const char *err, void *arg);
extern const char imgsign_token_busy[];
void		 imgsign_key_wrap(struct server *, long long image_id,
		    X509 *device, imgsign_key_cb, void *arg);

#endif

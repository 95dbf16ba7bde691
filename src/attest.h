/* attest.h: the attestation records in the database (sql/014_attest.sql):
 * a project's attestation settings and TPM manufacturer CAs, the sessions
 * of credential activation and identity-key certification, quote nonces
 * and what verified quotes leave on a device. Knows nothing of HTTP and
 * does no TPM cryptography (attest_crypto.h does). Values handed to a
 * callback live until it returns. */
#ifndef QL_ATTEST_H
#define QL_ATTEST_H

#include <stddef.h>

#include "attest_crypto.h"
#include "db.h"

#define ATTEST_SESSION_LEN	16	/* random bytes; 32 hex on the wire */
#define ATTEST_SESSION_TTL	300	/* seconds: challenge -> proof -> enroll */
#define ATTEST_QUOTE_TTL	300	/* seconds: quote challenge -> quote */
#define ATTEST_PROJECT_CAS_MAX	64	/* a project's manufacturer CAs */

enum attest_result {
	ATTEST_OK,
	ATTEST_NOT_FOUND,	/* project, session, nonce or device unknown */
	ATTEST_BUSY,		/* this EK holds too many live sessions */
	ATTEST_UNAVAILABLE,	/* database down: nothing was recorded */
	ATTEST_ERROR,
};

struct attest_project {
	long long		 id;
	int			 is_tpm;	/* policy tpm */
	unsigned		 pcrs;		/* mask of the SHA-256 PCRs asked */
	size_t			 nca;
	const unsigned char	*ca_der[ATTEST_PROJECT_CAS_MAX];
	size_t			 ca_len[ATTEST_PROJECT_CAS_MAX];
};

/* A challenge's session, recorded before the credential is answered. */
struct attest_session {
	long long		 project_id;
	unsigned char		 id[ATTEST_SESSION_LEN];
	const unsigned char	*ek_cert;
	size_t			 ek_cert_len;
	const unsigned char	*ak_public;	/* TPM2B_PUBLIC as sent */
	size_t			 ak_public_len;
	const unsigned char	*ak_name;
	size_t			 ak_name_len;
	unsigned char		 secret_sha256[32];
	unsigned char		 nonce[ATTEST_NONCE_LEN];
};

/* What the one try of a proof is checked against. */
struct attest_tried {
	unsigned char		 secret_sha256[32];
	unsigned char		 nonce[ATTEST_NONCE_LEN];
	const unsigned char	*ak_public;
	size_t			 ak_public_len;
};

/* What a quote is checked against. */
struct attest_quote_ctx {
	long long		 device;
	unsigned		 mask;
	const unsigned char	*ak_public;
	size_t			 ak_public_len;
};

/* A recorded quote: state trusted|tampered, reference recorded|matched|
 * differs, differ "n,m" ("" for none). */
struct attest_quote_result {
	const char	*state;
	const char	*reference;
	const char	*differ;
};

typedef void (*attest_cb)(enum attest_result, void *arg);
typedef void (*attest_project_cb)(enum attest_result,
    const struct attest_project *, void *arg);
typedef void (*attest_tried_cb)(enum attest_result, const struct attest_tried *,
    void *arg);
typedef void (*attest_mask_cb)(enum attest_result, unsigned mask, void *arg);
typedef void (*attest_quote_ctx_cb)(enum attest_result,
    const struct attest_quote_ctx *, void *arg);
typedef void (*attest_quote_cb)(enum attest_result,
    const struct attest_quote_result *, void *arg);

int	attest_register(struct db_pool *) __attribute__((warn_unused_result));

/* A project by name with its CAs; ATTEST_NOT_FOUND when unknown. */
void	attest_project_get(struct db_pool *, const char *name, attest_project_cb,
	    void *arg);
/* ATTEST_BUSY: the EK has too many live sessions; nothing recorded. */
void	attest_session_new(struct db_pool *, const struct attest_session *,
	    attest_cb, void *arg);
/* Uses the session up, whatever the proof then shows: ATTEST_NOT_FOUND
 * when it is not a live, untried session of that project. */
void	attest_session_try(struct db_pool *, const char *project,
	    const unsigned char id[ATTEST_SESSION_LEN], attest_tried_cb, void *arg);
/* The tried session is proven for the identity key (its SPKI's SHA-256)
 * for ATTEST_SESSION_TTL seconds. */
void	attest_session_prove(struct db_pool *, const unsigned char id[ATTEST_SESSION_LEN],
	    const unsigned char spki_sha256[32], attest_cb, void *arg);

/* For the device of a certificate (issuing CA id, serial hex): a nonce
 * and the PCR mask asked; ATTEST_NOT_FOUND when the project asks for no
 * quotes or the device has no AK. */
void	attest_quote_challenge(struct db_pool *, long long ca_id, const char *serial,
	    const unsigned char nonce[ATTEST_NONCE_LEN], attest_mask_cb, void *arg);
/* ATTEST_NOT_FOUND: the nonce is not a live one of this device. */
void	attest_quote_get(struct db_pool *, long long ca_id, const char *serial,
	    const unsigned char nonce[ATTEST_NONCE_LEN], attest_quote_ctx_cb, void *arg);
/* A verified quote's PCR values (pcrs->mask set): compared with the
 * device's reference, the nonce used up. ATTEST_NOT_FOUND: the nonce was
 * used meanwhile; nothing recorded. */
void	attest_quote_record(struct db_pool *, long long device,
	    const unsigned char nonce[ATTEST_NONCE_LEN], const struct attest_pcrs *,
	    attest_quote_cb, void *arg);

/* The admin API's statements (project by id, already scope-checked).
 * CA rows: id, subject, sha256 (hex), created_at. */
/* $1 project id, $2 after id, $3 limit */
extern const struct db_stmt attest_cas_list;
/* $1 project id, $2 DER (binary), $3 subject, $4 actor -> result
 * (ok | exists | full), then the CA row */
extern const struct db_stmt attest_ca_add;
/* $1 project id, $2 CA id, $3 actor -> 1 row when it was there */
extern const struct db_stmt attest_ca_delete;

#endif

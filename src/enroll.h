/* enroll.h: the enrollment records in the database: a device certificate
 * under the project's policy (one round trip decides and reserves before
 * anything is signed, one records what was signed), re-enrollment, and the
 * policy objects (tokens, allowlist, approvals). Knows nothing of HTTP or
 * of X.509. */
#ifndef QL_ENROLL_H
#define QL_ENROLL_H

#include <stddef.h>
#include <time.h>

#include "db.h"

enum enroll_result {
	ENROLL_ISSUED,		/* detail: the device ID */
	ENROLL_RESERVED,	/* policy said yes: sign, then enroll_record */
	ENROLL_PENDING,		/* manual approval outstanding */
	ENROLL_DENIED,		/* credentials missing or not good enough */
	ENROLL_NOT_FOUND,	/* unknown project (or device) */
	ENROLL_FORBIDDEN,	/* device disabled/rejected/revoked, key compromised */
	ENROLL_MISMATCH,	/* re-enroll: subject differs */
	ENROLL_SERIAL_TAKEN,	/* 16 random bytes collided: sign again */
	ENROLL_EXPIRED,		/* the reservation lapsed before the record */
	ENROLL_UNAVAILABLE,	/* database down: nothing was recorded */
	ENROLL_ERROR,
};

/* Step 1, before anything is signed: what the policy is asked. */
struct enroll_request {
	long long		 project_id;	/* first enrollment */
	const char		*device_id;	/* first enrollment */
	const char		*label;		/* NULL allowed */
	const unsigned char	*token_hash;	/* 32 bytes or NULL */
	const unsigned char	*spki_sha256;	/* 32 bytes: the CSR's key */
	const char		*old_serial;	/* set: re-enrollment */
	const unsigned char	*old_cert_sha256; /* 32 bytes, with old_serial */
};

/* What a yes grants: sign for device_id with CA ca_id, then record under
 * reservation. */
struct enroll_grant {
	long long	 reservation;
	long long	 ca_id;
	char		 device_id[33];
};

/* Step 3: the signed certificate, recorded under the reservation. */
struct enroll_record {
	long long		 reservation;
	const char		*serial;
	const unsigned char	*cert_der;
	int			 cert_len;
	const char		*subject;
	time_t			 not_before;
	time_t			 not_after;
};

typedef void (*enroll_cb)(enum enroll_result, const char *detail, void *arg);
typedef void (*enroll_decided_cb)(enum enroll_result, const char *detail,
    const struct enroll_grant *, void *arg);

int	enroll_register(struct db_pool *) __attribute__((warn_unused_result));
/* The policy decides and, on yes, reserves (token use held); a refusal
 * costs no signature. grant is non-NULL only with ENROLL_RESERVED. */
void	enroll_decide(struct db_pool *, const struct enroll_request *,
	    enroll_decided_cb, void *arg);
/* Commits the certificate (or the refusal) before calling back. */
void	enroll_record(struct db_pool *, const struct enroll_record *, enroll_cb,
	    void *arg);

/* Policy objects. The token secret is returned once and stored hashed.
 * actor ("cli", "user:NAME", "token:ID") goes into the audit row written
 * in the same transaction as the change. */
#define ENROLL_TOKEN_LEN 48
void	enroll_token_create(struct db_pool *, const char *actor,
	    const char *project, int max_uses, int valid_days,
	    char secret[ENROLL_TOKEN_LEN], enroll_cb, void *arg);
void	enroll_token_hash(const char *secret, size_t len, unsigned char out[32]);
void	enroll_allow(struct db_pool *, const char *actor, const char *project,
	    const char *device_id, enroll_cb, void *arg);
void	enroll_approve(struct db_pool *, const char *actor, const char *project,
	    const char *device_id, enroll_cb, void *arg);
void	enroll_revoke(struct db_pool *, const char *actor, const char *serial,
	    int reason, enroll_cb, void *arg);

/* The admin API's statements (project by id, already scope-checked).
 * Token rows: id, name, max_uses, uses, expires_at, revoked_at,
 * created_at (ISO 8601 UTC; NULL when unset). */
/* $1 project id, $2 after id, $3 limit */
extern const struct db_stmt enroll_tokens_list;
/* $1 project id, $2 SHA-256 of the secret (binary), $3 max uses, $4 valid
 * days, $5 name|NULL, $6 actor -> the token row */
extern const struct db_stmt enroll_token_new;
/* $1 project id, $2 token id, $3 actor -> ok | not_found | revoked */
extern const struct db_stmt enroll_token_revoke;
/* $1 project id, $2 after device ID, $3 limit -> device_id, created_at */
extern const struct db_stmt enroll_allowlist_list;
/* $1 project id, $2 "{id,id,...}" (checked), $3 actor -> added,
 * already_present; all or nothing, one audit row */
extern const struct db_stmt enroll_allowlist_add;
/* $1 project id, $2 device ID, $3 actor -> 1 row when it was there */
extern const struct db_stmt enroll_allowlist_remove;

#endif

/* enroll.h: the enrollment records in the database: issuing a device
 * certificate under the project's policy (one SQL function, one round
 * trip), re-enrollment, and the policy objects (tokens, allowlist,
 * approvals). Knows nothing of HTTP or of X.509. */
#ifndef QL_ENROLL_H
#define QL_ENROLL_H

#include <stddef.h>
#include <time.h>

struct db_pool;

enum enroll_result {
	ENROLL_ISSUED,		/* detail: the device ID */
	ENROLL_PENDING,		/* manual approval outstanding */
	ENROLL_DENIED,		/* credentials missing or not good enough */
	ENROLL_NOT_FOUND,	/* unknown project (or device) */
	ENROLL_FORBIDDEN,	/* device disabled/rejected, bad client cert */
	ENROLL_MISMATCH,	/* re-enroll: subject differs */
	ENROLL_SERIAL_TAKEN,	/* 16 random bytes collided: sign again */
	ENROLL_UNAVAILABLE,	/* database down: nothing was recorded */
	ENROLL_ERROR,
};

struct enroll_record {
	const char		*project;
	const char		*device_id;
	const char		*label;		/* NULL allowed */
	const unsigned char	*token_hash;	/* 32 bytes or NULL */
	const unsigned char	*spki_sha256;	/* 32 bytes */
	const char		*serial;
	const unsigned char	*cert_der;
	int			 cert_len;
	const char		*subject;
	time_t			 not_before;
	time_t			 not_after;
	const char		*old_serial;	/* set: re-enrollment */
};

typedef void (*enroll_cb)(enum enroll_result, const char *detail, void *arg);

int	enroll_register(struct db_pool *) __attribute__((warn_unused_result));
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

#endif

/* checkpoint.h: signed checkpoints of the audit log, in the manner of a
 * transparency log's signed tree head: the chain head (row count, last
 * id, hash) signed with the installation's checkpoint key on the token,
 * periodically and on demand, so a truncated or rewritten log is seen. */
#ifndef QL_CHECKPOINT_H
#define QL_CHECKPOINT_H

#include <stddef.h>

#include "db.h"

struct server;
struct checkpoint;

/* Columns of a checkpoint row, as every statement here returns them:
 * id, rows, last_id|NULL, head (hex, '' for an empty log), at (ISO 8601
 * UTC), signed_data (the exact signed text), signature (base64 DER). */
#define CHECKPOINT_NCOLS 7
/* -> the latest checkpoint's row, or none */
extern const struct db_stmt checkpoint_latest;

typedef void (*checkpoint_done_cb)(const char *err, void *arg);

enum checkpoint_status {
	CHECKPOINT_MADE,	/* res: the new checkpoint row */
	CHECKPOINT_UNCHANGED,	/* periodic: the latest one says the same */
	CHECKPOINT_REFUSED,	/* the log does not extend the latest one */
	CHECKPOINT_UNAVAILABLE,	/* database down; err says why */
	CHECKPOINT_ERROR,	/* token or SQL failure; err says why */
};
typedef void (*checkpoint_cb)(enum checkpoint_status, const PGresult *res,
    const char *err, void *arg);

int	checkpoint_register(struct db_pool *) __attribute__((warn_unused_result));
/* Load the checkpoint key (generating it on the token at first start) and
 * start the periodic timer; cb(NULL) once ready, cb(reason) if not. */
void	checkpoint_start(struct server *, checkpoint_done_cb, void *arg);
void	checkpoint_stop(struct server *);
/* Sign the head now, if the log extends the latest checkpoint (its row
 * count has not shrunk, its last row still ends in its signed head, its
 * signature verifies): a signer that signed a cut log would hide the cut. */
void	checkpoint_make(struct server *, checkpoint_cb, void *arg);
/* 1 when sig_hex (DER, in hex) is the checkpoint key's signature over
 * data, else 0. */
int	checkpoint_verify(struct server *, const char *data, const char *sig_hex);
/* The checkpoint key as PEM SubjectPublicKeyInfo, and its algorithm
 * ("ecdsa-with-SHA256"). */
const char *checkpoint_public_pem(struct server *);
const char *checkpoint_algorithm(void);

#endif

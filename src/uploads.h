/* uploads.h: SQL of tus uploads (sql/009_images.sql's functions), the
 * Upload-Metadata parser, and the timer that removes abandoned uploads.
 * Handlers in api_uploads.c compose parameters only. */
#ifndef QL_UPLOADS_H
#define QL_UPLOADS_H

#include <stddef.h>

#include "db.h"

#include "uploads_meta.h"

/* $1 id, $2 project id, $3 name, $4 version, $5 length, $6 sha256|NULL
 * (binary), $7 hardware text[], $8 encrypt, $9 filename|NULL, $10 actor,
 * $11 expiry seconds -> 'ok' | 'not_newer' */
extern const struct db_stmt uploads_create;
/* $1 id -> project_id, upload_length, upload_offset, sha256_state (hex
 * bytea), image_id|NULL; no row when unknown or expired */
extern const struct db_stmt uploads_get;
/* $1 id, $2 project id, $3 offset, $4 data (binary), $5 state (binary),
 * $6 sha256|NULL (binary), $7 expiry seconds, $8 actor -> result,
 * upload_offset, image_id (see ql_upload_patch) */
extern const struct db_stmt uploads_patch;
/* $1 id, $2 project id, $3 actor -> 'ok' | 'not_found' | 'completed' */
extern const struct db_stmt uploads_delete;
/* $1 project name -> id */
extern const struct db_stmt uploads_project;

int	uploads_register(struct db_pool *) __attribute__((warn_unused_result));

struct server;
/* The periodic removal of expired uploads, on the loop. */
void	uploads_expiry_start(struct server *);
void	uploads_expiry_stop(void);
/* Run the removal now: an upload or image was just deleted (its bytes are
 * removed by the same bounded batches). */
void	uploads_expiry_kick(void);

#endif

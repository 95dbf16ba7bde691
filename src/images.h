/* images.h: SQL of the images resource (sql/009_images.sql): list, get,
 * delete (a download reads its bytes through imgstream.c). Handlers in
 * api_images.c compose parameters only.
 * Image rows come back as IMAGES_NCOLS columns: id, name, version, size,
 * sha256 (hex), status, hardware (joined with ','), encrypt, uploaded_by,
 * created_at, upload_id. */
#ifndef QL_IMAGES_H
#define QL_IMAGES_H

#define IMAGES_NCOLS	11

#include "db.h"

/* $1 project id, $2 name|NULL, $3 after id, $4 limit: image rows by id */
extern const struct db_stmt images_list;
/* $1 project id, $2 image id: one image row or none */
extern const struct db_stmt images_get;
/* $1 project id, $2 image id, $3 actor -> 'ok' | 'not_found' | 'deployed'
 * (ql_image_delete; the deployments migration adds the last) */
extern const struct db_stmt images_delete;

int	images_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

/* uploads.h: SQL of tus uploads (sql/009_images.sql's functions), the
 * Upload-Metadata parser, and the timer that removes abandoned uploads.
 * Handlers in api_uploads.c compose parameters only. */
#ifndef QL_UPLOADS_H
#define QL_UPLOADS_H

#include <stddef.h>

#include "db.h"

#define UPLOADS_ID_LEN		26	/* base32 of 16 random bytes */
#define UPLOADS_NAME_MAX	64
#define UPLOADS_VERSION_MAX	39	/* 4 parts of 9 digits and 3 dots */
#define UPLOADS_HW_MAX		32	/* hardware entries */
#define UPLOADS_HW_LEN		64
#define UPLOADS_FILENAME_MAX	255
#define UPLOADS_PROJECT_MAX	128
/* Rows of image_chunks: the schema's bound, the contract with readers. */
#define UPLOADS_ROW_MAX		(1024 * 1024)
/* Bytes of a PATCH stored per statement (see api_uploads_step). */
#define UPLOADS_STMT_MAX	(4 * UPLOADS_ROW_MAX)

/* Upload-Metadata (tus 1.0 creation): "key base64,key base64". */
struct uploads_meta {
	char		 project[UPLOADS_PROJECT_MAX + 1];
	char		 name[UPLOADS_NAME_MAX + 1];
	char		 version[UPLOADS_VERSION_MAX + 1];
	char		 hardware[UPLOADS_HW_MAX * (UPLOADS_HW_LEN + 1) + 3];	/* "{a,b}" */
	char		 filename[UPLOADS_FILENAME_MAX + 1];
	int		 has_filename;
	int		 is_encrypt;
	int		 has_sha256;
	unsigned char	 sha256[32];
};
/* 0, or -1 with *errstr saying what is wrong (for a 400). Unknown keys
 * are refused: a misspelt "versoin" must not upload an unversioned image. */
int	uploads_meta_parse(const char *header, struct uploads_meta *,
	    const char **errstr) __attribute__((warn_unused_result));

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

#endif

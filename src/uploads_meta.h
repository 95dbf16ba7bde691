/* uploads_meta.h: the bounds of a tus upload's fields and the parser of
 * its Upload-Metadata header (uploads_meta.c; pure, fuzzed). */
#ifndef QL_UPLOADS_META_H
#define QL_UPLOADS_META_H

#include <stddef.h>

#define UPLOADS_ID_LEN		26	/* base32 of 16 random bytes */
#define UPLOADS_NAME_MAX	64
#define UPLOADS_VERSION_MAX	39	/* 4 parts of 9 digits and 3 dots */
#define UPLOADS_HW_MAX		32	/* hardware entries */
#define UPLOADS_HW_LEN		64
#define UPLOADS_FILENAME_MAX	255
#define UPLOADS_PROJECT_MAX	128
/* Rows of image_chunks: the schema's bound, the contract with readers. */
#define UPLOADS_ROW_MAX		(1024 * 1024)
/* Bytes of a PATCH stored per statement (see api_uploads_step): larger
 * costs libpq memmoves, smaller costs a commit (an fsync) per piece. */
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

#endif

/* images.c: SQL of the images resource; every change carries its audit row
 * in the same transaction (the functions of sql/009_images.sql). */
#include "images.h"

#define IMAGES_COLS "id, name, version, size, sha256, status, hardware," \
	" encrypt, uploaded_by, created_at, upload_id"

const struct db_stmt images_list = {
	"images_list", "SELECT " IMAGES_COLS " FROM ql_images_api"
	" WHERE project_id = $1::bigint AND ($2::text IS NULL OR name = $2)"
	" AND id > $3::bigint ORDER BY id LIMIT $4::integer", 4 };
const struct db_stmt images_get = {
	"images_get", "SELECT " IMAGES_COLS " FROM ql_images_api"
	" WHERE project_id = $1::bigint AND id = $2::bigint", 2 };
const struct db_stmt images_delete = {
	"images_delete", "SELECT ql_image_delete($1::bigint, $2::bigint, $3)", 3 };

int
images_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&images_list, &images_get, &images_delete,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

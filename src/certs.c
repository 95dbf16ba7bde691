/* certs.c: SQL of the certs resource; every change carries its audit row in
 * the same statement. */
#include "certs.h"

#include <stddef.h>

int
certs_register(struct db_pool *db)
{
	static const struct db_stmt *const stmts[] = { NULL };

	for (size_t i = 0; stmts[i] != NULL; i++)
		if (db_register(db, stmts[i]) == -1)
			return -1;
	return 0;
}

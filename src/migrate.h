/* migrate.h: numbered schema migrations, embedded from sql/ at build time.
 * Runs once at start-up (before the loop serves anything) and for
 * quarklinkd --migrate; the only module allowed blocking libpq calls. */
#ifndef QL_MIGRATE_H
#define QL_MIGRATE_H

#include <stddef.h>

struct migrate_file {
	int		 version;
	const char	*name;
	const char	*sql;
};

extern const struct migrate_file migrate_files[];
extern const int migrate_nfiles;

/* Apply every pending migration, each in its own transaction. */
int	migrate_run(const char *conninfo, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif

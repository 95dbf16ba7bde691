/* migrate.c: apply sql/NNN_*.sql once each, recorded in schema_version.
 * Each file runs in one transaction with its version row, so a failure
 * leaves the schema as it was. Blocking libpq is fine here: this runs
 * before the event loop starts, never on the request path. */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"

/* Serialises nodes of a cluster that start at the same time. */
#define MIGRATE_LOCK_KEY "7166210931"

static int
migrate_exec(PGconn *pg, const char *sql, int n, const char *const *params,
    PGresult **out, char *err, size_t errlen)
{
	PGresult *res = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		return -1;
	}
	if (out != NULL)
		*out = res;
	else
		PQclear(res);
	return 0;
}

static int
migrate_one(PGconn *pg, const struct migrate_file *m, char *err, size_t errlen)
{
	char ver[16], reason[400];
	const char *params[2] = { ver, m->name };
	PGresult *res;

	snprintf(ver, sizeof(ver), "%d", m->version);
	if (migrate_exec(pg, "BEGIN", 0, NULL, NULL, reason, sizeof(reason)) == -1)
		goto fail;
	/* Multi-statement text cannot take parameters; it is our own file. */
	res = PQexec(pg, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		snprintf(reason, sizeof(reason), "%s", PQresultErrorMessage(res));
		reason[strcspn(reason, "\n")] = '\0';
		PQclear(res);
		goto rollback;
	}
	PQclear(res);
	if (migrate_exec(pg, "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
	    2, params, NULL, reason, sizeof(reason)) == -1 ||
	    migrate_exec(pg, "COMMIT", 0, NULL, NULL, reason, sizeof(reason)) == -1)
		goto rollback;
	log_info("migration %s applied", m->name);
	return 0;
rollback:
	PQclear(PQexec(pg, "ROLLBACK"));
fail:
	snprintf(err, errlen, "migration %s failed, schema left unchanged: %s",
	    m->name, reason);
	return -1;
}

/* 1 applied, 0 not, -1 with err set. */
static int
migrate_is_applied(PGconn *pg, int version, char *err, size_t errlen)
{
	char ver[16];
	const char *params[1] = { ver };
	PGresult *res;
	int n;

	err[0] = '\0';
	snprintf(ver, sizeof(ver), "%d", version);
	if (migrate_exec(pg, "SELECT 1 FROM schema_version WHERE version = $1",
	    1, params, &res, err, errlen) == -1)
		return -1;
	n = PQntuples(res);
	PQclear(res);
	return n > 0;
}

static int
migrate_pending(PGconn *pg, char *err, size_t errlen)
{
	PGresult *res;
	int max_known = 0, max_applied;

	if (migrate_exec(pg, "CREATE TABLE IF NOT EXISTS schema_version ("
	    " version integer PRIMARY KEY,"
	    " name text NOT NULL,"
	    " applied_at timestamptz NOT NULL DEFAULT now())",
	    0, NULL, NULL, err, errlen) == -1 ||
	    migrate_exec(pg, "SELECT coalesce(max(version), 0) FROM schema_version",
	    0, NULL, &res, err, errlen) == -1)
		return -1;
	max_applied = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	for (int i = 0; i < migrate_nfiles; i++)
		if (migrate_files[i].version > max_known)
			max_known = migrate_files[i].version;
	if (max_applied > max_known) {
		snprintf(err, errlen, "database schema version %d is newer than "
		    "this quarklinkd knows (%d); refusing to run an older binary",
		    max_applied, max_known);
		return -1;
	}
	/* Every file not recorded yet, not only those above the highest:
	 * branches that numbered their migrations apart merge in any order,
	 * and a database that has 013 still gets 010 when it arrives. */
	for (int i = 0; i < migrate_nfiles; i++) {
		if (migrate_is_applied(pg, migrate_files[i].version, err, errlen) != 0) {
			if (*err != '\0')
				return -1;
			continue;
		}
		if (migrate_one(pg, &migrate_files[i], err, errlen) == -1)
			return -1;
	}
	return 0;
}

int
migrate_run(const char *conninfo, char *err, size_t errlen)
{
	PGconn *pg = PQconnectdb(conninfo);
	int rc = -1;

	if (PQstatus(pg) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the database: %s",
		    PQerrorMessage(pg));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(pg);
		return -1;
	}
	PQclear(PQexec(pg, "SET client_min_messages = warning"));
	if (migrate_exec(pg, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
	    0, NULL, NULL, err, errlen) == 0) {
		rc = migrate_pending(pg, err, errlen);
		PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	}
	PQfinish(pg);
	return rc;
}

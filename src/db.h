/* db.h: a pool of non-blocking libpq connections on the event loop.
 * Queries are queued and run on the first idle connection; each callback
 * runs exactly once. Nothing here ever blocks. */
#ifndef QL_DB_H
#define QL_DB_H

#include <stddef.h>

#include <libpq-fe.h>

struct event_base;
struct db_pool;

enum db_status {
	DB_OK,			/* res holds the rows / command status */
	DB_SQL_ERROR,		/* res holds the error: PQresultErrorField */
	DB_UNAVAILABLE,		/* no connection, queue full, lost or timed out; res NULL */
};

/* res is owned by the pool and freed when the callback returns. */
typedef void (*db_cb)(enum db_status, const PGresult *res, const char *errstr,
    void *arg);

/* A statement every connection prepares when it connects. Modules declare
 * these statically and register them before db_pool_start(). */
struct db_stmt {
	const char	*name;
	const char	*sql;
	int		 nparams;
};

struct db_pool_settings {
	const char	*conninfo;
	int		 size;
	int		 queue_max;
	int		 reconnect_max_s;
	int		 query_timeout_s;
};

struct db_pool	*db_pool_new(struct event_base *, const struct db_pool_settings *);
int		 db_register(struct db_pool *, const struct db_stmt *)
		    __attribute__((warn_unused_result));
/* db_register for each of a module's n statements; -1 at the first refusal. */
int		 db_register_all(struct db_pool *, const struct db_stmt *const *,
		    size_t n) __attribute__((warn_unused_result));
void		 db_pool_start(struct db_pool *);
/* Fail what is queued or running, running every callback once. */
void		 db_pool_drain(struct db_pool *);
void		 db_pool_free(struct db_pool *);

/* values[i] NULL is SQL NULL. lengths may be NULL (all text); a param with
 * lengths[i] >= 0 is sent as binary of that length. Values are copied. */
void		 db_query(struct db_pool *, const struct db_stmt *, int nparams,
		    const char *const *values, const int *lengths, db_cb, void *arg);
/* db_query with every result column in binary format: bytea as its bytes,
 * bigint as 8 bytes big-endian (bulk data without hex doubling). */
void		 db_query_binary(struct db_pool *, const struct db_stmt *,
		    int nparams, const char *const *values, const int *lengths,
		    db_cb, void *arg);

/* LISTEN on channel (a constant identifier) on connection 0. cb gets each
 * payload, and NULL after every (re)connect: notifications may have been
 * missed, so the subscriber must resynchronise. Register before start. */
typedef void (*db_notify_cb)(const char *payload, void *arg);
int		 db_listen(struct db_pool *, const char *channel, db_notify_cb,
		    void *arg) __attribute__((warn_unused_result));

int		 db_connected(struct db_pool *);	/* connections ready */
/* errstr as handed to a callback, or a generic reason when it is NULL. */
const char	*db_errstr(enum db_status, const char *errstr);
const char	*db_last_error(struct db_pool *);

#endif

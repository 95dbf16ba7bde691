/* uploads.c: SQL of tus uploads and the timer that removes abandoned ones
 * (the Upload-Metadata parser is uploads_meta.c). */
#include "uploads.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define UPLOADS_EXPIRY_PERIOD_S	60
#define UPLOADS_EXPIRY_ROWS	64	/* chunk rows (64 MiB) per statement */
#define UPLOADS_STR(x)		UPLOADS_STR2(x)
#define UPLOADS_STR2(x)		#x

const struct db_stmt uploads_create = {
	"uploads_create", "SELECT ql_upload_create($1, $2::bigint, $3, $4,"
	" $5::bigint, $6::bytea, $7::text[], $8::boolean, $9, $10, $11::integer)", 11 };
const struct db_stmt uploads_get = {
	"uploads_get", "SELECT project_id, upload_length, upload_offset,"
	" sha256_state, image_id FROM ql_upload_get($1)", 1 };
const struct db_stmt uploads_patch = {
	"uploads_patch", "SELECT result, upload_offset, image_id FROM"
	" ql_upload_patch($1, $2::bigint, $3::bigint, $4::bytea, $5::bytea,"
	" $6::bytea, $7::integer, $8)", 8 };
const struct db_stmt uploads_delete = {
	"uploads_delete", "SELECT ql_upload_delete($1, $2::bigint, $3)", 3 };
const struct db_stmt uploads_project = {
	"uploads_project", "SELECT id FROM projects WHERE name = $1", 1 };
static const struct db_stmt uploads_expire = {
	"uploads_expire", "SELECT ql_upload_expire($1::integer)", 1 };

int
uploads_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&uploads_create, &uploads_get, &uploads_patch, &uploads_delete,
		&uploads_project, &uploads_expire,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

/* ---------------------------------------------------------- expiry */

static struct event *uploads_expiry_ev;
static struct server *uploads_expiry_srv;
static int uploads_expiry_busy;		/* a batch is in flight */

static void	uploads_expiry_run(evutil_socket_t, short, void *);

static void
uploads_expired(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct timeval tv = { UPLOADS_EXPIRY_PERIOD_S, 0 };
	long long n = 0;

	(void)arg;
	uploads_expiry_busy = 0;
	if (uploads_expiry_ev == NULL)
		return;		/* stopping */
	if (st != DB_OK)
		log_warnx("upload expiry: %s", db_errstr(st, errstr));
	else if (PQntuples(res) == 1)
		n = db_val_int(res, 0, 0);
	if (n > 0)
		log_info("upload expiry: %lld rows of abandoned uploads removed", n);
	/* A full batch: more may be waiting; go on next turn, not in a burst. */
	if (n >= UPLOADS_EXPIRY_ROWS)
		tv.tv_sec = 0;
	evtimer_add(uploads_expiry_ev, &tv);
}

static void
uploads_expiry_run(evutil_socket_t fd, short what, void *arg)
{
	const char *v[1] = { UPLOADS_STR(UPLOADS_EXPIRY_ROWS) };

	(void)fd;
	(void)what;
	(void)arg;
	uploads_expiry_busy = 1;
	db_query(uploads_expiry_srv->db, &uploads_expire, 1, v, NULL,
	    uploads_expired, NULL);
}

void
uploads_expiry_start(struct server *srv)
{
	struct timeval tv = { 1, 0 };

	uploads_expiry_srv = srv;
	if ((uploads_expiry_ev = evtimer_new(srv->base, uploads_expiry_run,
	    NULL)) == NULL)
		fatalx("uploads: evtimer_new: out of memory");
	evtimer_add(uploads_expiry_ev, &tv);
}

void
uploads_expiry_kick(void)
{
	struct timeval now = { 0, 0 };

	/* A batch in flight re-arms the timer itself when it is done. */
	if (uploads_expiry_ev != NULL && !uploads_expiry_busy)
		evtimer_add(uploads_expiry_ev, &now);
}

void
uploads_expiry_stop(void)
{
	if (uploads_expiry_ev != NULL)
		event_free(uploads_expiry_ev);
	uploads_expiry_ev = NULL;
}

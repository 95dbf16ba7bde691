/* audit.c: SQL of the audit resource: reading the log within the caller's
 * project scope and walking its hash chain, and the rows of EST refusals
 * (nothing changes on a refusal, so its row is a statement of its own).
 * Every change's own statement calls ql_audit() for its row. */
#include "audit.h"

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "server.h"

const struct db_stmt audit_list = {
	"audit_list", "SELECT a.id, ql_iso(a.at), a.actor, a.action, a.object, a.result,"
	" a.detail, p.name FROM audit_log a LEFT JOIN projects p ON p.id = a.project_id"
	" WHERE ($1::bigint[] IS NULL OR a.project_id = ANY($1::bigint[]))"
	" AND ($2::bigint IS NULL OR a.id < $2::bigint)"
	" AND ($3::text IS NULL OR a.actor = $3::text)"
	" AND ($4::text IS NULL OR starts_with(a.action, $4::text))"
	" AND ($5::timestamptz IS NULL OR a.at >= $5::timestamptz)"
	" AND ($6::text IS NULL OR a.project_id = (SELECT id FROM projects"
	" WHERE name = $6::text))"
	" ORDER BY a.id DESC LIMIT $7::integer", 7 };
const struct db_stmt audit_verify = {
	"audit_verify", "SELECT rows, broken_id, cp_id, cp_rows, cp_signed,"
	" cp_signature, cp_state FROM ql_audit_verify_checkpoint()", 0 };
static const struct db_stmt audit_est_denied = {
	"audit_est_denied", "SELECT ql_audit($1, $2, $3, 'denied', $4, p.id)"
	" FROM projects p WHERE p.name = $5", 5 };
static const struct db_stmt audit_est_capped = {
	"audit_est_capped", "SELECT ql_audit('daemon', 'est.refusals_capped', NULL,"
	" 'denied', $1, NULL)", 1 };

/* The cap's window: one minute, installation-wide. */
static struct {
	time_t		 start;
	unsigned	 recorded;
	unsigned	 suppressed;
	int		 is_flush_pending;
} audit_est_window;

static const struct db_stmt audit_api_failure = {
	"api_audit_failure", "SELECT ql_audit($1, $2, $3, $4, $5, $6::bigint)", 6 };

void
audit_decode(const PGresult *res, int i, int col, struct audit_row *a)
{
	a->id = db_val_int(res, i, col);
	a->at = PQgetvalue(res, i, col + 1);
	a->actor = PQgetvalue(res, i, col + 2);
	a->action = PQgetvalue(res, i, col + 3);
	a->object = db_val(res, i, col + 4);
	a->result = PQgetvalue(res, i, col + 5);
	a->detail = db_val(res, i, col + 6);
	a->project = db_val(res, i, col + 7);
}

int
audit_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&audit_list, &audit_verify, &audit_est_denied, &audit_est_capped,
		&audit_api_failure,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

void
audit_verify_decode(const PGresult *res, struct audit_verify_row *v)
{
	v->rows = db_val_int(res, 0, 0);
	v->is_broken = !PQgetisnull(res, 0, 1);
	v->broken_id = db_val_int(res, 0, 1);
	v->has_checkpoint = !PQgetisnull(res, 0, 2);
	v->cp_id = db_val_int(res, 0, 2);
	v->cp_rows = db_val_int(res, 0, 3);
	v->cp_signed = PQgetvalue(res, 0, 4);
	v->cp_signature = PQgetvalue(res, 0, 5);
	v->cp_state = PQgetvalue(res, 0, 6);
}

/* arg: what the row was, for the one log line of a row that is lost. */
static void
audit_done(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	(void)res;
	if (st != DB_OK)
		log_warnx("audit: cannot record %s: %s", (const char *)arg,
		    db_errstr(st, errstr));
}

/* Nothing else happened in the database, so this row needs no shared
 * transaction. */
void
audit_api_refusal(struct server *srv, const char *actor, const char *method,
    const char *pattern, const char *path, int status, const char *project_id)
{
	char action[256], detail[32];
	const char *v[6];

	snprintf(action, sizeof(action), "%s %s", method, pattern);
	snprintf(detail, sizeof(detail), "HTTP %d", status);
	v[0] = actor;
	v[1] = action;
	v[2] = path;
	v[3] = status >= 500 ? "error" : "denied";
	v[4] = detail;
	v[5] = project_id;
	db_query(srv->db, &audit_api_failure, 6, v, NULL, audit_done,
	    "a refused request");
}

/* The end of a capped minute: what was not recorded one by one is
 * recorded as a count, so no refusal goes unaccounted. */
static void
audit_est_flush(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	char detail[160];
	const char *v[1] = { detail };

	(void)fd;
	(void)what;
	snprintf(detail, sizeof(detail), "%u EST refusals over the cap of %d a"
	    " minute were not recorded one by one", audit_est_window.suppressed,
	    AUDIT_EST_REFUSALS_PER_MINUTE);
	log_warnx("audit: %s", detail);
	/* The next refusal opens a new window, whatever time() says now: the
	 * timer may fire a little before the minute is over by time(). */
	audit_est_window.start = 0;
	audit_est_window.suppressed = 0;
	audit_est_window.is_flush_pending = 0;
	db_query(srv->db, &audit_est_capped, 1, v, NULL, audit_done,
	    "an EST refusal");
}

/* 1 when this refusal gets its own row; 0 when the minute's cap is used
 * up (counted, flushed by a timer at the window's end). */
static int
audit_est_admit(struct server *srv)
{
	time_t now = time(NULL);
	struct timeval tv = { 0, 0 };

	if (now - audit_est_window.start >= 60) {
		audit_est_window.start = now;
		audit_est_window.recorded = 0;
	}
	if (audit_est_window.recorded < AUDIT_EST_REFUSALS_PER_MINUTE) {
		audit_est_window.recorded++;
		return 1;
	}
	audit_est_window.suppressed++;
	if (!audit_est_window.is_flush_pending) {
		tv.tv_sec = audit_est_window.start + 60 - now;
		if (tv.tv_sec < 1)
			tv.tv_sec = 1;
		if (event_base_once(srv->base, -1, EV_TIMEOUT, audit_est_flush, srv,
		    &tv) == 0)
			audit_est_window.is_flush_pending = 1;
	}
	return 0;
}

void
audit_est_refusal(struct server *srv, const char *project, const char *device_id,
    int is_reenroll, const char *peer, int status, const char *detail)
{
	char actor[64], reason[700];
	const char *v[5];

	if (project[0] == '\0' || !audit_est_admit(srv))
		return;
	snprintf(actor, sizeof(actor), "device:%s", device_id[0] ? device_id : "-");
	snprintf(reason, sizeof(reason), "%s (HTTP %d, from %s)",
	    detail ? detail : "refused", status, peer);
	v[0] = actor;
	v[1] = is_reenroll ? "device.reenroll" : "device.enroll";
	v[2] = device_id[0] ? device_id : NULL;
	v[3] = reason;
	v[4] = project;
	db_query(srv->db, &audit_est_denied, 5, v, NULL, audit_done,
	    "an EST refusal");
}

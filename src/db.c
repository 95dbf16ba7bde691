/* db.c: async libpq pool. Each connection is a small state machine driven
 * by socket events: connect (PQconnectPoll), setup (statement_timeout and
 * prepared statements), then idle/busy. Never calls a blocking libpq
 * function; callbacks always run from the loop, never inside db_query(). */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

#define DB_MAX_STMTS	256
#define DB_MAX_LISTEN	8
#define DB_BUSY_GRACE_S	5	/* past query_timeout before a silent server is dropped */

struct db_query {
	TAILQ_ENTRY(db_query)	 entry;
	const struct db_stmt	*stmt;
	int			 nparams;
	char			**values;
	int			*lengths;
	int			*formats;
	db_cb			 cb;
	void			*arg;
	time_t			 deadline;
	const char		*fail_reason;
	int			 is_binary;	/* results in binary format */
};
TAILQ_HEAD(db_queue, db_query);

enum db_conn_state {
	DB_CONN_DOWN, DB_CONN_CONNECTING, DB_CONN_SETUP, DB_CONN_IDLE, DB_CONN_BUSY
};

struct db_conn {
	struct db_pool		*pool;
	int			 idx;
	enum db_conn_state	 state;
	PGconn			*pg;
	struct event		*ev;
	evutil_socket_t		 ev_fd;
	short			 ev_what;
	struct event		*retry;
	int			 attempts;
	int			 setup_step;
	struct db_query		*q;
	PGresult		*res;
};

struct db_pool {
	struct event_base	*base;
	struct db_pool_settings	 s;
	char			*conninfo;
	struct db_conn		*conns;
	const struct db_stmt	*stmts[DB_MAX_STMTS];
	int			 nstmts;
	struct {
		const char	*channel;
		db_notify_cb	 cb;
		void		*arg;
	}			 listens[DB_MAX_LISTEN];
	int			 nlistens;
	struct db_queue		 queue;
	int			 queued;
	struct db_queue		 failed;	/* delivered on the next loop turn */
	struct event		*fail_ev;
	struct event		*tick;
	char			 last_error[256];
	int			 is_started;
	int			 is_closing;
};

static const char *const db_state_names[] = {
	"down", "connecting", "setup", "idle", "busy"
};

static void	db_conn_connect(struct db_conn *);
static void	db_conn_event(evutil_socket_t, short, void *);
static void	db_dispatch(struct db_pool *);

static time_t
db_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
db_conn_set_state(struct db_conn *c, enum db_conn_state st)
{
	if (c->state != st)
		log_debug("db conn %d: %s -> %s", c->idx,
		    db_state_names[c->state], db_state_names[st]);
	c->state = st;
}

static void
db_set_error(struct db_pool *p, const char *msg)
{
	size_t n;

	snprintf(p->last_error, sizeof(p->last_error), "%s", msg ? msg : "");
	/* libpq messages span lines; a JSON field and a log line want one. */
	for (char *s = p->last_error; *s != '\0'; s++)
		if (*s == '\n' || *s == '\t')
			*s = ' ';
	n = strlen(p->last_error);
	while (n > 0 && (p->last_error[n - 1] == '\n' || p->last_error[n - 1] == ' '))
		p->last_error[--n] = '\0';
}

static void
db_query_free(struct db_query *q)
{
	free(q);
}

/* Queue a failure for delivery on the next loop turn. */
static void
db_fail(struct db_pool *p, struct db_query *q, const char *reason)
{
	q->fail_reason = reason;
	TAILQ_INSERT_TAIL(&p->failed, q, entry);
	event_active(p->fail_ev, EV_READ, 0);
}

static void
db_deliver_failed(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *p = arg;
	struct db_query *q;

	(void)fd;
	(void)what;
	while ((q = TAILQ_FIRST(&p->failed)) != NULL) {
		TAILQ_REMOVE(&p->failed, q, entry);
		q->cb(DB_UNAVAILABLE, NULL, q->fail_reason, q->arg);
		db_query_free(q);
	}
}

static void
db_conn_watch(struct db_conn *c, short what)
{
	evutil_socket_t fd = c->pg ? PQsocket(c->pg) : -1;

	if (c->ev != NULL && c->ev_fd == fd && c->ev_what == what)
		return;
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	c->ev_fd = fd;
	c->ev_what = what;
	if (what == 0 || fd < 0)
		return;
	c->ev = event_new(c->pool->base, fd, what | EV_PERSIST, db_conn_event, c);
	if (c->ev == NULL || event_add(c->ev, NULL) == -1)
		fatalx("db: cannot watch connection socket");
}

static void
db_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	db_conn_connect(arg);
}

/* Queries wait while a connection is being made; they fail at once only
 * when every connection is down (waiting out its backoff). */
static int
db_usable(struct db_pool *p)
{
	for (int i = 0; i < p->s.size; i++)
		if (p->conns[i].state != DB_CONN_DOWN)
			return 1;
	return 0;
}

static int
db_connected_count(struct db_pool *p)
{
	int n = 0;

	for (int i = 0; i < p->s.size; i++)
		if (p->conns[i].state == DB_CONN_IDLE || p->conns[i].state == DB_CONN_BUSY)
			n++;
	return n;
}

/* The connection is unusable: fail what it was running, close it and
 * reconnect after an exponential backoff with jitter. */
static void
db_conn_broken(struct db_conn *c, const char *why)
{
	struct db_pool *p = c->pool;
	struct timeval tv;
	long ms;

	if (c->state == DB_CONN_IDLE || c->state == DB_CONN_BUSY || c->attempts == 0)
		log_warnx("database connection %d lost: %s", c->idx, why);
	db_set_error(p, why);
	if (c->q != NULL) {
		db_fail(p, c->q, "database connection lost");
		c->q = NULL;
	}
	if (c->res != NULL) {
		PQclear(c->res);
		c->res = NULL;
	}
	db_conn_watch(c, 0);
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	db_conn_set_state(c, DB_CONN_DOWN);
	ms = 100L << (c->attempts < 10 ? c->attempts : 10);
	if (ms > p->s.reconnect_max_s * 1000L)
		ms = p->s.reconnect_max_s * 1000L;
	ms += random() % (ms / 4 + 1);
	c->attempts++;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->retry, &tv);
	db_dispatch(p);
}

static void
db_conn_flush(struct db_conn *c)
{
	switch (PQflush(c->pg)) {
	case 0:
		db_conn_watch(c, EV_READ);
		break;
	case 1:
		db_conn_watch(c, EV_READ | EV_WRITE);
		break;
	default:
		db_conn_broken(c, PQerrorMessage(c->pg));
	}
}

static void
db_conn_setup_next(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	char timeout[32];
	const char *param = timeout;
	int ok;

	int nlisten = c->idx == 0 ? p->nlistens : 0;

	if (c->setup_step > p->nstmts + nlisten) {
		db_conn_set_state(c, DB_CONN_IDLE);
		db_conn_watch(c, EV_READ);
		log_info("database connection %d ready", c->idx);
		for (int i = 0; i < nlisten; i++)
			p->listens[i].cb(NULL, p->listens[i].arg);
		db_dispatch(p);
		return;
	}
	if (c->setup_step > p->nstmts) {
		char sql[96];

		/* Channel names are compile-time identifiers, not input. */
		snprintf(sql, sizeof(sql), "LISTEN %s",
		    p->listens[c->setup_step - p->nstmts - 1].channel);
		ok = PQsendQuery(c->pg, sql);
	} else if (c->setup_step == 0) {
		/* Bounds a query on the server side; cancelling from here would
		 * need PQcancel, which blocks. */
		snprintf(timeout, sizeof(timeout), "%ds", p->s.query_timeout_s);
		ok = PQsendQueryParams(c->pg,
		    "SELECT set_config('statement_timeout', $1, false)", 1, NULL,
		    &param, NULL, NULL, 0);
	} else {
		const struct db_stmt *st = p->stmts[c->setup_step - 1];

		ok = PQsendPrepare(c->pg, st->name, st->sql, st->nparams, NULL);
	}
	if (!ok) {
		db_conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	db_conn_flush(c);
}

static void
db_conn_poll(struct db_conn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		db_conn_watch(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		db_conn_watch(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		/* Without this a large send could block (style.md). */
		if (PQsetnonblocking(c->pg, 1) == -1) {
			db_conn_broken(c, PQerrorMessage(c->pg));
			break;
		}
		c->attempts = 0;
		c->setup_step = 0;
		db_conn_set_state(c, DB_CONN_SETUP);
		db_conn_setup_next(c);
		break;
	default:
		db_conn_broken(c, PQerrorMessage(c->pg));
	}
}

static void
db_conn_connect(struct db_conn *c)
{
	c->pg = PQconnectStart(c->pool->conninfo);
	if (c->pg == NULL) {
		db_conn_broken(c, "out of memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		db_conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	db_conn_set_state(c, DB_CONN_CONNECTING);
	db_conn_watch(c, EV_WRITE);
}

/* Connection-level failures (lost server, admin shutdown, timeouts) are
 * "unavailable" to callers; everything else is the statement's error. */
static enum db_status
db_result_status(struct db_conn *c, const PGresult *res)
{
	const char *state;

	if (res == NULL || PQstatus(c->pg) == CONNECTION_BAD)
		return DB_UNAVAILABLE;
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		return DB_OK;
	default:
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state == NULL || strncmp(state, "08", 2) == 0 ||
		    strncmp(state, "57", 2) == 0 || strncmp(state, "53", 2) == 0)
			return DB_UNAVAILABLE;
		return DB_SQL_ERROR;
	}
}

static void
db_conn_complete(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	PGresult *res = c->res;
	struct db_query *q = c->q;
	enum db_status st = db_result_status(c, res);

	c->res = NULL;
	if (c->state == DB_CONN_SETUP) {
		if (st != DB_OK) {
			log_warnx("database setup step %d failed: %s", c->setup_step,
			    res ? PQresultErrorMessage(res) : "no result");
			PQclear(res);
			db_conn_broken(c, "connection setup failed");
			return;
		}
		PQclear(res);
		c->setup_step++;
		db_conn_setup_next(c);
		return;
	}
	if (st == DB_UNAVAILABLE) {
		const char *why = res ? "connection lost during query" :
		    PQerrorMessage(c->pg);

		PQclear(res);
		db_conn_broken(c, why);
		return;
	}
	c->q = NULL;
	db_conn_set_state(c, DB_CONN_IDLE);
	db_conn_watch(c, EV_READ);
	q->cb(st, res, st == DB_OK ? NULL : PQresultErrorField(res,
	    PG_DIAG_MESSAGE_PRIMARY), q->arg);
	PQclear(res);
	db_query_free(q);
	db_dispatch(p);
}

static void
db_conn_read(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	PGresult *res;
	PGnotify *n;

	if (!PQconsumeInput(c->pg)) {
		db_conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	while ((n = PQnotifies(c->pg)) != NULL) {
		for (int i = 0; i < p->nlistens; i++)
			if (strcmp(n->relname, p->listens[i].channel) == 0)
				p->listens[i].cb(n->extra, p->listens[i].arg);
		PQfreemem(n);
	}
	if (c->state == DB_CONN_DOWN)
		return;
	if (c->state == DB_CONN_IDLE) {
		if (PQstatus(c->pg) == CONNECTION_BAD)
			db_conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	while (!PQisBusy(c->pg)) {
		if ((res = PQgetResult(c->pg)) == NULL) {
			db_conn_complete(c);
			return;
		}
		/* One statement per query: keep the first result. */
		if (c->res == NULL)
			c->res = res;
		else
			PQclear(res);
	}
}

static void
db_conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;

	(void)fd;
	if (c->state == DB_CONN_CONNECTING) {
		db_conn_poll(c);
		return;
	}
	if (what & EV_WRITE) {
		db_conn_flush(c);
		if (c->state == DB_CONN_DOWN)
			return;
	}
	if (what & EV_READ)
		db_conn_read(c);
}

static void
db_conn_send(struct db_conn *c, struct db_query *q)
{
	c->q = q;
	db_conn_set_state(c, DB_CONN_BUSY);
	if (!PQsendQueryPrepared(c->pg, q->stmt->name, q->nparams,
	    (const char *const *)q->values, q->lengths, q->formats, q->is_binary)) {
		db_conn_broken(c, PQerrorMessage(c->pg));
		return;
	}
	db_conn_flush(c);
}

static void
db_dispatch(struct db_pool *p)
{
	struct db_query *q;

	if (!db_usable(p)) {
		while ((q = TAILQ_FIRST(&p->queue)) != NULL) {
			TAILQ_REMOVE(&p->queue, q, entry);
			p->queued--;
			db_fail(p, q, "database unavailable");
		}
		return;
	}
	for (int i = 0; i < p->s.size && !TAILQ_EMPTY(&p->queue); i++) {
		struct db_conn *c = &p->conns[i];

		if (c->state != DB_CONN_IDLE)
			continue;
		q = TAILQ_FIRST(&p->queue);
		TAILQ_REMOVE(&p->queue, q, entry);
		p->queued--;
		db_conn_send(c, q);
	}
}

static void
db_tick(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *p = arg;
	struct db_query *q, *next;
	time_t now = db_now();

	(void)fd;
	(void)what;
	for (q = TAILQ_FIRST(&p->queue); q != NULL; q = next) {
		next = TAILQ_NEXT(q, entry);
		if (q->deadline <= now) {
			TAILQ_REMOVE(&p->queue, q, entry);
			p->queued--;
			db_fail(p, q, "database query timed out in queue");
		}
	}
	/* statement_timeout covers a live server; this covers a silent one. */
	for (int i = 0; i < p->s.size; i++) {
		struct db_conn *c = &p->conns[i];

		if (c->state == DB_CONN_BUSY && c->q != NULL &&
		    c->q->deadline + DB_BUSY_GRACE_S <= now)
			db_conn_broken(c, "server did not answer in time");
	}
}

struct db_pool *
db_pool_new(struct event_base *base, const struct db_pool_settings *s)
{
	struct timeval second = { 1, 0 };
	struct db_pool *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->base = base;
	p->s = *s;
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->failed);
	if ((p->conninfo = strdup(s->conninfo)) == NULL ||
	    (p->conns = calloc((size_t)s->size, sizeof(*p->conns))) == NULL ||
	    (p->fail_ev = event_new(base, -1, 0, db_deliver_failed, p)) == NULL ||
	    (p->tick = event_new(base, -1, EV_PERSIST, db_tick, p)) == NULL)
		goto fail;
	for (int i = 0; i < s->size; i++) {
		p->conns[i].pool = p;
		p->conns[i].idx = i;
		p->conns[i].ev_fd = -1;
		if ((p->conns[i].retry = evtimer_new(base, db_retry_cb,
		    &p->conns[i])) == NULL)
			goto fail;
	}
	evtimer_add(p->tick, &second);
	snprintf(p->last_error, sizeof(p->last_error), "not connected yet");
	return p;
fail:
	db_pool_free(p);
	return NULL;
}

int
db_register(struct db_pool *p, const struct db_stmt *st)
{
	if (p->is_started || p->nstmts == DB_MAX_STMTS)
		return -1;
	p->stmts[p->nstmts++] = st;
	return 0;
}

int
db_register_all(struct db_pool *p, const struct db_stmt *const *stmts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (db_register(p, stmts[i]) == -1)
			return -1;
	return 0;
}

void
db_pool_start(struct db_pool *p)
{
	p->is_started = 1;
	for (int i = 0; i < p->s.size; i++)
		db_conn_connect(&p->conns[i]);
}

/* Shutdown: everything queued or running fails now, so that every owner
 * gets its callback (and frees what it holds) while the rest of the
 * process still exists. Queries issued by those callbacks fail too. */
void
db_pool_drain(struct db_pool *p)
{
	struct db_query *q;

	if (p == NULL)
		return;
	p->is_closing = 1;
	for (int i = 0; i < p->s.size; i++) {
		struct db_conn *c = &p->conns[i];

		if (c->q != NULL) {
			db_fail(p, c->q, "server shutting down");
			c->q = NULL;
		}
	}
	while ((q = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, q, entry);
		p->queued--;
		db_fail(p, q, "server shutting down");
	}
	while (!TAILQ_EMPTY(&p->failed))
		db_deliver_failed(-1, 0, p);
}

void
db_pool_free(struct db_pool *p)
{
	struct db_query *q;

	if (p == NULL)
		return;
	/* Callbacks do not run after this: their owners are gone too. */
	while ((q = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, q, entry);
		db_query_free(q);
	}
	while ((q = TAILQ_FIRST(&p->failed)) != NULL) {
		TAILQ_REMOVE(&p->failed, q, entry);
		db_query_free(q);
	}
	for (int i = 0; p->conns != NULL && i < p->s.size; i++) {
		struct db_conn *c = &p->conns[i];

		db_conn_watch(c, 0);
		if (c->retry != NULL)
			event_free(c->retry);
		if (c->res != NULL)
			PQclear(c->res);
		if (c->q != NULL)
			db_query_free(c->q);
		if (c->pg != NULL)
			PQfinish(c->pg);
	}
	if (p->fail_ev != NULL)
		event_free(p->fail_ev);
	if (p->tick != NULL)
		event_free(p->tick);
	free(p->conns);
	free(p->conninfo);
	free(p);
}

/* One allocation per query: the struct, then the arrays, then the values. */
static struct db_query *
db_query_new(const struct db_stmt *st, int n, const char *const *values,
    const int *lengths)
{
	size_t size = sizeof(struct db_query) + (size_t)n * (sizeof(char *) + 2 * sizeof(int));
	struct db_query *q;
	char *data;

	for (int i = 0; i < n; i++)
		if (values[i] != NULL)
			size += (lengths && lengths[i] >= 0) ? (size_t)lengths[i] :
			    strlen(values[i]) + 1;
	if ((q = calloc(1, size)) == NULL)
		return NULL;
	q->stmt = st;
	q->nparams = n;
	q->values = (char **)(q + 1);
	q->lengths = (int *)(q->values + n);
	q->formats = q->lengths + n;
	data = (char *)(q->formats + n);
	for (int i = 0; i < n; i++) {
		size_t len;

		if (values[i] == NULL)
			continue;
		q->formats[i] = (lengths && lengths[i] >= 0);
		len = q->formats[i] ? (size_t)lengths[i] : strlen(values[i]) + 1;
		q->lengths[i] = q->formats[i] ? lengths[i] : 0;
		memcpy(data, values[i], len);
		q->values[i] = data;
		data += len;
	}
	return q;
}

static void
db_query_run(struct db_pool *p, const struct db_stmt *st, int nparams,
    const char *const *values, const int *lengths, int is_binary, db_cb cb,
    void *arg)
{
	struct db_query *q = db_query_new(st, nparams, values, lengths);

	if (q == NULL) {
		/* No way to defer without memory: answer now, the one exception. */
		cb(DB_UNAVAILABLE, NULL, "out of memory", arg);
		return;
	}
	q->cb = cb;
	q->arg = arg;
	q->is_binary = is_binary;
	q->deadline = db_now() + p->s.query_timeout_s;
	if (!db_usable(p) || p->is_closing) {
		db_fail(p, q, "database unavailable");
		return;
	}
	if (p->queued >= p->s.queue_max) {
		db_fail(p, q, "database queue full");
		return;
	}
	TAILQ_INSERT_TAIL(&p->queue, q, entry);
	p->queued++;
	db_dispatch(p);
}

void
db_query(struct db_pool *p, const struct db_stmt *st, int nparams,
    const char *const *values, const int *lengths, db_cb cb, void *arg)
{
	db_query_run(p, st, nparams, values, lengths, 0, cb, arg);
}

void
db_query_binary(struct db_pool *p, const struct db_stmt *st, int nparams,
    const char *const *values, const int *lengths, db_cb cb, void *arg)
{
	db_query_run(p, st, nparams, values, lengths, 1, cb, arg);
}

int
db_listen(struct db_pool *p, const char *channel, db_notify_cb cb, void *arg)
{
	if (p->is_started || p->nlistens == DB_MAX_LISTEN)
		return -1;
	p->listens[p->nlistens].channel = channel;
	p->listens[p->nlistens].cb = cb;
	p->listens[p->nlistens].arg = arg;
	p->nlistens++;
	return 0;
}

int
db_connected(struct db_pool *p)
{
	return db_connected_count(p);
}

const char *
db_last_error(struct db_pool *p)
{
	return p->last_error;
}

const char *
db_errstr(enum db_status st, const char *errstr)
{
	if (errstr != NULL)
		return errstr;
	return st == DB_UNAVAILABLE ? "database unavailable" : "database error";
}

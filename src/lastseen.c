/* lastseen.c: coalesced last_seen updates (see lastseen.h). An open
 * addressing set of device ids with the time of their last mark; a flush
 * takes up to LASTSEEN_BATCH of them into one statement. When the set is
 * full a mark is dropped: last_seen is a hint, never a decision. */
#include "lastseen.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "db.h"
#include "deploy.h"
#include "log.h"

#define LASTSEEN_SLOTS	(LASTSEEN_MAX * 2)	/* power of two, half full at most */

struct lastseen_slot {
	long long	device;		/* 0: empty */
	time_t		at;
};

static struct lastseen_slot	*lastseen_set;
static size_t			 lastseen_n;
static unsigned long		 lastseen_dropped;
static struct server		*lastseen_srv;
static struct event		*lastseen_timer;
static int			 lastseen_is_flushing;

static size_t
lastseen_hash(long long device)
{
	return (size_t)(((uint64_t)device * 11400714819323198485ULL) >> 40) &
	    (LASTSEEN_SLOTS - 1);
}

void
lastseen_mark(long long device)
{
	size_t i;

	if (lastseen_set == NULL || device <= 0)
		return;
	for (i = lastseen_hash(device); lastseen_set[i].device != 0 &&
	    lastseen_set[i].device != device; i = (i + 1) & (LASTSEEN_SLOTS - 1))
		;
	if (lastseen_set[i].device == 0) {
		if (lastseen_n >= LASTSEEN_MAX) {
			lastseen_dropped++;
			return;
		}
		lastseen_set[i].device = device;
		lastseen_n++;
	}
	lastseen_set[i].at = time(NULL);
}

static void
lastseen_done(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	(void)res;
	(void)arg;
	lastseen_is_flushing = 0;
	if (st != DB_OK)
		log_warnx("last_seen update: %s", db_errstr(st, errstr));
}

/* Take up to a batch out of the set as two array literals. Removing from
 * open addressing means rebuilding the rest, done by reinsertion. */
static int
lastseen_take(struct evbuffer *ids, struct evbuffer *ats)
{
	struct lastseen_slot *old = lastseen_set, *rest;
	size_t taken = 0, nrest = 0;

	if ((rest = calloc(LASTSEEN_SLOTS, sizeof(*rest))) == NULL)
		return -1;
	evbuffer_add(ids, "{", 1);
	evbuffer_add(ats, "{", 1);
	lastseen_set = rest;
	lastseen_n = 0;
	for (size_t i = 0; i < LASTSEEN_SLOTS; i++) {
		if (old[i].device == 0)
			continue;
		if (taken == LASTSEEN_BATCH) {
			lastseen_mark(old[i].device);	/* next flush */
			nrest++;
			continue;
		}
		evbuffer_add_printf(ids, "%s%lld", taken ? "," : "", old[i].device);
		evbuffer_add_printf(ats, "%s%lld", taken ? "," : "", (long long)old[i].at);
		taken++;
	}
	free(old);
	evbuffer_add(ids, "}", 2);	/* with the NUL */
	evbuffer_add(ats, "}", 2);
	if (lastseen_dropped > 0)
		log_warnx("last_seen: %lu marks dropped (more than %d devices "
		    "between flushes)", lastseen_dropped, LASTSEEN_MAX);
	lastseen_dropped = 0;
	return taken > 0 ? 1 : 0;
}

void
lastseen_flush(void)
{
	struct evbuffer *ids = evbuffer_new(), *ats = evbuffer_new();
	const char *v[2];

	if (ids != NULL && ats != NULL && !lastseen_is_flushing && lastseen_n > 0 &&
	    lastseen_take(ids, ats) == 1) {
		v[0] = (const char *)evbuffer_pullup(ids, -1);
		v[1] = (const char *)evbuffer_pullup(ats, -1);
		lastseen_is_flushing = 1;
		db_query(lastseen_srv->db, &deploy_seen, 2, v, NULL, lastseen_done,
		    NULL);	/* copies the values */
	}
	if (ids != NULL)
		evbuffer_free(ids);
	if (ats != NULL)
		evbuffer_free(ats);
}

static void
lastseen_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	lastseen_flush();
}

void
lastseen_start(struct server *srv)
{
	struct timeval tv = { LASTSEEN_FLUSH_S, 0 };

	lastseen_srv = srv;
	if ((lastseen_set = calloc(LASTSEEN_SLOTS, sizeof(*lastseen_set))) == NULL ||
	    (lastseen_timer = event_new(srv->base, -1, EV_PERSIST, lastseen_tick,
	    NULL)) == NULL || event_add(lastseen_timer, &tv) == -1)
		fatalx("lastseen: out of memory");
}

void
lastseen_stop(void)
{
	if (lastseen_timer != NULL)
		event_free(lastseen_timer);
	lastseen_timer = NULL;
	free(lastseen_set);
	lastseen_set = NULL;
	lastseen_n = 0;
}

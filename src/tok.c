/* tok.c: the token pool (work.c) and the token's health as the workers
 * last saw it: a check job every TOK_CHECK_SECS, submitted ahead of the
 * queue limit so a full queue cannot starve it, and a check that has not
 * come back within TOK_STALL_SECS reports the token as not answering.
 * Everything here but the job's run() lives on the loop thread. */
#include "tok.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "p11.h"

#define TOK_CHECK_SECS	5
#define TOK_STALL_SECS	15

struct tok_check {
	int	 is_ok;
	char	 err[256];
};

/* One check in flight at a time: a static one, nothing to leak at exit. */
static struct tok_check	 tok_check;
static struct work_pool	*tok_pool;
static struct p11	*tok_p11;
static struct event	*tok_timer;
static int		 tok_is_ok = 1;	/* p11_open has just logged in */
static char		 tok_err[256];
static time_t		 tok_check_sent;	/* 0: none in flight */
static unsigned long long tok_nrefused;
static int		 tok_queue_max;
static int		 tok_held;	/* places promised by tok_hold */

static time_t
tok_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void
tok_thread_end(void *arg)
{
	p11_thread_end(arg);
}

static void
tok_check_run(void *arg)
{
	struct tok_check *c = arg;

	c->is_ok = p11_check(tok_p11, c->err, sizeof(c->err)) == 0;
}

static void
tok_check_done(void *arg, int is_cancelled)
{
	struct tok_check *c = arg;

	if (is_cancelled) {
		tok_check_sent = 0;
		return;
	}
	if (c->is_ok && !tok_is_ok)
		log_info("pkcs11: token usable again");
	else if (!c->is_ok && tok_is_ok)
		log_warnx("pkcs11: token unusable: %s", c->err);
	tok_is_ok = c->is_ok;
	snprintf(tok_err, sizeof(tok_err), "%s", c->err);
	tok_check_sent = 0;
}

static void
tok_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (tok_check_sent != 0)
		return;
	memset(&tok_check, 0, sizeof(tok_check));
	if (work_pool_submit(tok_pool, tok_check_run, tok_check_done, &tok_check,
	    1) == 0)
		tok_check_sent = tok_now();
}

int
tok_start(struct event_base *base, struct p11 *p, int nthreads, int queue_max)
{
	struct timeval tv = { TOK_CHECK_SECS, 0 };

	tok_p11 = p;
	tok_queue_max = queue_max;
	/* The limit is kept here (with the holds), not by the pool. */
	tok_pool = work_pool_new(base, nthreads, queue_max, NULL, tok_thread_end, p);
	if (tok_pool == NULL)
		return -1;
	if ((tok_timer = event_new(base, -1, EV_PERSIST, tok_tick, NULL)) == NULL ||
	    event_add(tok_timer, &tv) == -1)
		return -1;
	return 0;
}

void
tok_stop(void)
{
	struct work_pool *p;
	int n;

	if (tok_timer != NULL)
		event_free(tok_timer);
	tok_timer = NULL;
	/* Unset first: the done()s the pool calls while it stops find the
	 * token refusing, and free what they would have submitted. */
	p = tok_pool;
	tok_pool = NULL;
	if ((n = work_pool_free(p)) > 0)
		log_info("pkcs11: %d token jobs cancelled at stop", n);
}

static int
tok_has_room(void)
{
	return work_pool_pending(tok_pool) + tok_held < tok_queue_max;
}

int
tok_submit(work_fn run, work_done_fn done, void *arg)
{
	if (tok_pool == NULL || !tok_has_room() ||
	    work_pool_submit(tok_pool, run, done, arg, 1) == -1) {
		tok_nrefused++;
		return -1;
	}
	return 0;
}

int
tok_hold(void)
{
	if (tok_pool == NULL || !tok_has_room()) {
		tok_nrefused++;
		return -1;
	}
	tok_held++;
	return 0;
}

void
tok_release(void)
{
	tok_held--;
}

int
tok_submit_held(work_fn run, work_done_fn done, void *arg)
{
	tok_held--;
	return work_pool_submit(tok_pool, run, done, arg, 1);
}

int
tok_submit_urgent(work_fn run, work_done_fn done, void *arg)
{
	return work_pool_submit(tok_pool, run, done, arg, 1);
}

int
tok_is_ready(char *err, size_t errlen)
{
	time_t waited = tok_check_sent ? tok_now() - tok_check_sent : 0;

	if (waited > TOK_STALL_SECS) {
		snprintf(err, errlen, "token check unanswered for %lld s",
		    (long long)waited);
		return 0;
	}
	if (!tok_is_ok) {
		snprintf(err, errlen, "%s", tok_err);
		return 0;
	}
	return 1;
}

int
tok_pending(void)
{
	return work_pool_pending(tok_pool) + tok_held;
}

unsigned long long
tok_refused(void)
{
	return tok_nrefused;
}

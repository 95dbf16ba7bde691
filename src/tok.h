/* tok.h: the token's worker pool. After start every PKCS#11 operation
 * (key generation and destruction, key loading, every signature, the
 * token check) runs here, never on the event loop: a network HSM takes
 * 1-20 ms per signature, which on the loop would stall every listener.
 * N threads (pkcs11.workers), each with its own PKCS#11 session (p11.c),
 * share a bounded queue (pkcs11.queue_max); completion comes back on the
 * loop. /readyz reads the state the workers' periodic check leaves here. */
#ifndef QL_TOK_H
#define QL_TOK_H

#include <stddef.h>

#include "work.h"

struct event_base;
struct p11;

/* What a caller whose submit was refused sends with its 503. */
#define TOK_RETRY_AFTER	"1"

int	tok_start(struct event_base *, struct p11 *, int nthreads, int queue_max)
	    __attribute__((warn_unused_result));
/* After the loop: the jobs running finish, then every job's done() runs
 * once (work.h: those never started with is_cancelled); submits from then
 * on are refused. Before the modules that own the jobs' state are freed. */
void	tok_stop(void);
/* run(arg) on a token worker, done(arg, is_cancelled) on the loop; -1 when
 * the queue is full (answer 503 with Retry-After: TOK_RETRY_AFTER), not
 * started or stopping. */
int	tok_submit(work_fn run, work_done_fn done, void *arg)
	    __attribute__((warn_unused_result));
/* A place in the queue promised before the work is known to be wanted:
 * an enrollment holds one before the policy is asked, so a full queue
 * refuses it before anything is decided or recorded. Every hold ends in
 * exactly one tok_submit_held (which can then fail only for memory or a
 * stopping pool) or
 * tok_release. */
int	tok_hold(void) __attribute__((warn_unused_result));
void	tok_release(void);
int	tok_submit_held(work_fn run, work_done_fn done, void *arg)
	    __attribute__((warn_unused_result));
/* Never refused for a full queue: work that is bounded by what it is,
 * not by clients (start-up's key loads, destroying a deleted project's
 * keys), and must not be lost to a burst. */
int	tok_submit_urgent(work_fn run, work_done_fn done, void *arg)
	    __attribute__((warn_unused_result));
/* 1 when the workers' last token check passed and none is overdue; else 0
 * with the reason in err. No token call: the state is the workers'. */
int	tok_is_ready(char *err, size_t errlen);
/* Jobs queued, running or held (tok_hold), and submits refused since
 * start (/metrics). */
int	tok_pending(void);
unsigned long long tok_refused(void);

#endif

/* work.h: pools of worker threads for jobs that must not stall the event
 * loop. A job's run() executes on a worker; its done() on the loop, in
 * the order jobs finish. Each pool has a bounded queue: a submit over it
 * is refused and the caller answers "busy". Two pools exist: the token's
 * (tok.c: every PKCS#11 operation) and password hashing's (here, one
 * thread: an Argon2 burst at login must not delay signatures, and a slow
 * token must not delay logins). */
#ifndef QL_WORK_H
#define QL_WORK_H

struct event_base;
struct work_pool;

typedef void (*work_fn)(void *arg);
/* done(arg, is_cancelled): is_cancelled is 1 for a job whose run() never
 * ran because the pool stopped first; done then only frees what arg
 * holds (and answers its requester: the server is shutting down). */
typedef void (*work_done_fn)(void *arg, int is_cancelled);
/* The reason a cancelled job's requester is given. */
#define WORK_CANCELLED_MSG	"server shutting down"

/* nthreads workers; queue_max jobs queued or running at once. The thread
 * hooks run on each worker before its first and after its last job. */
struct work_pool *work_pool_new(struct event_base *, int nthreads, int queue_max,
		    void (*thread_start)(void *), void (*thread_end)(void *),
		    void *hook_arg);
/* On the loop, after it stopped: joins the workers once the jobs running
 * end, then calls done() of every job submitted and not yet delivered,
 * exactly once: those that ran as usual, those never started cancelled.
 * Submits from within those done()s are refused. Returns how many were
 * cancelled. */
int		 work_pool_free(struct work_pool *);
/* run(arg) on a worker, then done(arg, 0) on the loop. -1: not queued
 * (the queue is full, the pool is stopping, or out of memory).
 * is_urgent: counted, but never refused for a full queue (health checks,
 * which must not be starved). */
int		 work_pool_submit(struct work_pool *, work_fn run, work_done_fn done,
		    void *arg, int is_urgent) __attribute__((warn_unused_result));
/* Jobs queued or running. */
int		 work_pool_pending(const struct work_pool *);

/* The password-hashing pool (one thread). */
int	work_init(struct event_base *, int queue_max)
	    __attribute__((warn_unused_result));
void	work_shutdown(void);
int	work_submit(work_fn run, work_done_fn done, void *arg)
	    __attribute__((warn_unused_result));

#endif

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

/* nthreads workers; queue_max jobs queued or running at once. The thread
 * hooks run on each worker before its first and after its last job. */
struct work_pool *work_pool_new(struct event_base *, int nthreads, int queue_max,
		    void (*thread_start)(void *), void (*thread_end)(void *),
		    void *hook_arg);
/* Joins the workers; jobs not started are dropped with their owners. */
void		 work_pool_free(struct work_pool *);
/* run(arg) on a worker, then done(arg) on the loop. -1: not queued (the
 * queue is full, or out of memory). is_urgent: counted, but never
 * refused for a full queue (health checks, which must not be starved). */
int		 work_pool_submit(struct work_pool *, work_fn run, work_fn done,
		    void *arg, int is_urgent) __attribute__((warn_unused_result));
/* Jobs queued or running. */
int		 work_pool_pending(const struct work_pool *);

/* The password-hashing pool (one thread). */
int	work_init(struct event_base *, int queue_max)
	    __attribute__((warn_unused_result));
void	work_shutdown(void);
int	work_submit(work_fn run, work_fn done, void *arg)
	    __attribute__((warn_unused_result));

#endif

/* work.h: one worker thread for CPU-heavy jobs that must not stall the
 * event loop (password hashing). The job runs on the thread; its done
 * callback runs on the loop. Nothing else in quarklinkd uses threads. */
#ifndef QL_WORK_H
#define QL_WORK_H

struct event_base;

typedef void (*work_fn)(void *arg);

/* queue_max: jobs queued or running at once; work_submit refuses more. */
int	work_init(struct event_base *, int queue_max)
	    __attribute__((warn_unused_result));
void	work_shutdown(void);
/* run(arg) on the worker, then done(arg) on the loop. -1: not queued. */
int	work_submit(work_fn run, work_fn done, void *arg)
	    __attribute__((warn_unused_result));

#endif

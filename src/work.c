/* work.c: a job queue shared by N threads and a pipe that wakes the loop
 * when jobs are done. Jobs own their argument until done() runs, which
 * it does exactly once, also for a job the pool stops before running;
 * the pending count is the loop's alone (submit and done both run there). */
#include "work.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

#define WORK_THREADS_MAX	64

struct work_job {
	struct work_job	*next;
	work_fn		 run;
	work_done_fn	 done;
	void		*arg;
};

struct work_pool {
	pthread_t	 threads[WORK_THREADS_MAX];
	int		 nthreads;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	struct work_job	*todo, *todo_tail;
	struct work_job	*finished, *finished_tail;
	int		 pending;
	int		 queue_max;
	int		 is_stopping;
	int		 pipe[2];
	struct event	*ev;
	void		(*thread_start)(void *);
	void		(*thread_end)(void *);
	void		*hook_arg;
};

static struct work_pool *work_hash_pool;

static void *
work_main(void *arg)
{
	struct work_pool *p = arg;
	struct work_job *j;

	if (p->thread_start != NULL)
		p->thread_start(p->hook_arg);
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->todo == NULL && !p->is_stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->todo == NULL)
			break;
		j = p->todo;
		if ((p->todo = j->next) == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->lock);
		j->run(j->arg);
		pthread_mutex_lock(&p->lock);
		j->next = NULL;
		if (p->finished_tail != NULL)
			p->finished_tail->next = j;
		else
			p->finished = j;
		p->finished_tail = j;
		/* A full pipe already means "wake up"; losing this byte is fine. */
		if (write(p->pipe[1], "", 1) == -1 && errno != EAGAIN)
			log_warn("work: wake-up");
	}
	pthread_mutex_unlock(&p->lock);
	if (p->thread_end != NULL)
		p->thread_end(p->hook_arg);
	return NULL;
}

/* done() of every job on the list, in order; the list is ours. */
static int
work_deliver(struct work_pool *p, struct work_job *j, int is_cancelled)
{
	struct work_job *next;
	int n = 0;

	for (; j != NULL; j = next, n++) {
		next = j->next;
		p->pending--;
		j->done(j->arg, is_cancelled);
		free(j);
	}
	return n;
}

static void
work_wake(evutil_socket_t fd, short what, void *arg)
{
	struct work_pool *p = arg;
	struct work_job *j;
	char buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&p->lock);
	j = p->finished;
	p->finished = p->finished_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	(void)work_deliver(p, j, 0);
}

struct work_pool *
work_pool_new(struct event_base *base, int nthreads, int queue_max,
    void (*thread_start)(void *), void (*thread_end)(void *), void *hook_arg)
{
	struct work_pool *p;

	if (nthreads < 1 || nthreads > WORK_THREADS_MAX ||
	    (p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->queue_max = queue_max;
	p->thread_start = thread_start;
	p->thread_end = thread_end;
	p->hook_arg = hook_arg;
	p->pipe[0] = p->pipe[1] = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if (pipe2(p->pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		goto fail;
	p->ev = event_new(base, p->pipe[0], EV_READ | EV_PERSIST, work_wake, p);
	if (p->ev == NULL || event_add(p->ev, NULL) == -1)
		goto fail;
	for (; p->nthreads < nthreads; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, work_main, p) != 0)
			goto fail;
	return p;
fail:
	(void)work_pool_free(p);
	return NULL;
}

int
work_pool_free(struct work_pool *p)
{
	struct work_job *todo;
	int ncancelled;

	if (p == NULL)
		return 0;
	/* Only the running jobs finish: a queue behind a slow token would
	 * hold the exit for queue_max signatures. */
	pthread_mutex_lock(&p->lock);
	p->is_stopping = 1;
	todo = p->todo;
	p->todo = p->todo_tail = NULL;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* The owners of the jobs' state still exist (main.c frees the pools
	 * first); the workers are gone, so the lists need no lock. */
	(void)work_deliver(p, p->finished, 0);
	p->finished = p->finished_tail = NULL;
	ncancelled = work_deliver(p, todo, 1);
	if (p->ev != NULL)
		event_free(p->ev);
	for (int i = 0; i < 2; i++)
		if (p->pipe[i] != -1)
			close(p->pipe[i]);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
	return ncancelled;
}

int
work_pool_submit(struct work_pool *p, work_fn run, work_done_fn done, void *arg,
    int is_urgent)
{
	struct work_job *j;

	/* is_stopping is only written on the loop thread, like this read. */
	if (p == NULL || p->is_stopping ||
	    (!is_urgent && p->pending >= p->queue_max) ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->run = run;
	j->done = done;
	j->arg = arg;
	p->pending++;
	pthread_mutex_lock(&p->lock);
	if (p->todo_tail != NULL)
		p->todo_tail->next = j;
	else
		p->todo = j;
	p->todo_tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int
work_pool_pending(const struct work_pool *p)
{
	return p != NULL ? p->pending : 0;
}

int
work_init(struct event_base *base, int queue_max)
{
	work_hash_pool = work_pool_new(base, 1, queue_max, NULL, NULL, NULL);
	return work_hash_pool != NULL ? 0 : -1;
}

void
work_shutdown(void)
{
	struct work_pool *p = work_hash_pool;
	int n;

	work_hash_pool = NULL;
	if ((n = work_pool_free(p)) > 0)
		log_info("work: %d password hashing jobs cancelled at stop", n);
}

int
work_submit(work_fn run, work_done_fn done, void *arg)
{
	return work_pool_submit(work_hash_pool, run, done, arg, 0);
}

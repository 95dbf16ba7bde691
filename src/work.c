/* work.c: a job queue, one thread, and a pipe that wakes the loop when a
 * job is done. Jobs own their argument until done() runs. */
#include "work.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"


struct work_job {
	struct work_job	*next;
	work_fn		 run;
	work_fn		 done;
	void		*arg;
};

static pthread_t	 work_thread;
static pthread_mutex_t	 work_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 work_cond = PTHREAD_COND_INITIALIZER;
static struct work_job	*work_todo, *work_todo_tail, *work_finished;
static int		 work_queued;
static int		 work_queue_max;
static int		 work_is_stopping;
static int		 work_is_running;
static int		 work_pipe[2] = { -1, -1 };
static struct event	*work_ev;

static void *
work_main(void *unused)
{
	struct work_job *j;

	(void)unused;
	pthread_mutex_lock(&work_lock);
	for (;;) {
		while (work_todo == NULL && !work_is_stopping)
			pthread_cond_wait(&work_cond, &work_lock);
		if (work_todo == NULL)
			break;
		j = work_todo;
		if ((work_todo = j->next) == NULL)
			work_todo_tail = NULL;
		pthread_mutex_unlock(&work_lock);
		j->run(j->arg);
		pthread_mutex_lock(&work_lock);
		j->next = work_finished;
		work_finished = j;
		/* A full pipe already means "wake up"; losing this byte is fine. */
		if (write(work_pipe[1], "", 1) == -1 && errno != EAGAIN)
			log_warn("work: wake-up");
	}
	pthread_mutex_unlock(&work_lock);
	return NULL;
}

static void
work_wake(evutil_socket_t fd, short what, void *unused)
{
	struct work_job *j, *next;
	char buf[64];

	(void)what;
	(void)unused;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&work_lock);
	j = work_finished;
	work_finished = NULL;
	pthread_mutex_unlock(&work_lock);
	for (; j != NULL; j = next) {
		next = j->next;
		work_queued--;
		j->done(j->arg);
		free(j);
	}
}

int
work_init(struct event_base *base, int queue_max)
{
	work_queue_max = queue_max;
	if (pipe2(work_pipe, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	work_ev = event_new(base, work_pipe[0], EV_READ | EV_PERSIST, work_wake, NULL);
	if (work_ev == NULL || event_add(work_ev, NULL) == -1)
		return -1;
	if (pthread_create(&work_thread, NULL, work_main, NULL) != 0)
		return -1;
	work_is_running = 1;
	return 0;
}

void
work_shutdown(void)
{
	struct work_job *j;

	if (work_is_running) {
		pthread_mutex_lock(&work_lock);
		work_is_stopping = 1;
		/* Jobs not started are dropped with their owners. */
		while ((j = work_todo) != NULL) {
			work_todo = j->next;
			free(j);
		}
		pthread_cond_signal(&work_cond);
		pthread_mutex_unlock(&work_lock);
		pthread_join(work_thread, NULL);
		work_is_running = 0;
	}
	while ((j = work_finished) != NULL) {
		work_finished = j->next;
		free(j);
	}
	if (work_ev != NULL)
		event_free(work_ev);
	work_ev = NULL;
	for (int i = 0; i < 2; i++)
		if (work_pipe[i] != -1)
			close(work_pipe[i]);
	work_pipe[0] = work_pipe[1] = -1;
}

int
work_submit(work_fn run, work_fn done, void *arg)
{
	struct work_job *j;

	if (!work_is_running || work_queued >= work_queue_max ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		return -1;
	j->run = run;
	j->done = done;
	j->arg = arg;
	work_queued++;
	pthread_mutex_lock(&work_lock);
	if (work_todo_tail != NULL)
		work_todo_tail->next = j;
	else
		work_todo = j;
	work_todo_tail = j;
	pthread_cond_signal(&work_cond);
	pthread_mutex_unlock(&work_lock);
	return 0;
}

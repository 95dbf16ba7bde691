/* agent_run.h: the field daemon: renew, poll, download, verify, install. */
#ifndef QL_AGENT_RUN_H
#define QL_AGENT_RUN_H

struct agent_conf;

/* Loop until SIGTERM/SIGINT, or one cycle with is_once (its exit code). */
int	agent_run(const struct agent_conf *, int is_once);

#endif

#include "agent_run.h"
#include "agent.h"
int
agent_run(const struct agent_conf *c, int is_once)
{
	return AGENT_EFAIL;
}

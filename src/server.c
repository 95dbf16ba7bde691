/* server.c: how the modules below main.c end the run. They stop the loop
 * here; main.c, which started it, shuts down once it returns. */
#include "server.h"

#include <event2/event.h>

#include "log.h"

void
server_drained(struct server *srv)
{
	log_info("drained, exiting");
	event_base_loopexit(srv->base, NULL);
}

void
server_exit(struct server *srv, int rc)
{
	srv->exit_code = rc;
	event_base_loopexit(srv->base, NULL);
}

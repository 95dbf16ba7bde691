/* http_req.h: one request as the handlers and the connection layer see
 * it. Apart from http.h so that http_conn.c, which marks a request whose
 * client has gone, needs nothing of the reply functions. */
#ifndef QL_HTTP_REQ_H
#define QL_HTTP_REQ_H

#include <stddef.h>
#include <time.h>

#include "route.h"

struct evhttp_request;
struct http_listener;
struct server;

struct http_req {
	struct server		*srv;
	struct http_listener	*lst;
	struct evhttp_request	*req;	/* NULL once the client has gone */
	char			 id[17];
	const char		*method;
	char			*path;
	struct timespec		 start;
	struct route_match	 match;
	void			*api;		/* api_ctx.h on API routes, est.c's on EST */
	/* Runs once with the final status, before the request is freed. */
	void			(*finish)(struct http_req *, int status);
	const char		*problem;	/* a problem reply's detail, in finish */
	/* Streamed replies (http_stream_*): the client left (req is NULL
	 * now); the piece handed over last has been written. */
	void			(*gone)(struct http_req *);
	void			(*written)(struct http_req *);
	void			*stream;	/* the streaming handler's state */
	int			 is_piece_pending;	/* handed over, not yet written */
};

#endif

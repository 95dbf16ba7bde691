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
	/* A streamed reply: runs once when the client leaves mid-stream
	 * (from evhttp's close callback: defer any freeing). */
	void			(*gone)(struct http_req *);
	void			*api_stream;	/* the streaming handler's state */
	int			 stream_status;
	size_t			 stream_bytes;
};

#endif

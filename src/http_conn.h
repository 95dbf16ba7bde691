/* http_conn.h: what a hostile client may hold. Per connection: a deadline
 * for the whole header and for the whole body, the input it may make us
 * buffer, a lingering close after an error reply. Per listener: a
 * connection cap and an accept back-off at the descriptor limit. In total:
 * the reply bytes queued for clients that do not read. */
#ifndef QL_HTTP_CONN_H
#define QL_HTTP_CONN_H

#include <stddef.h>

#include "server.h"

struct bufferevent;
struct evhttp_request;
struct http_conn;
struct http_req;

/* Once at start: descriptor limit. */
void	 http_conn_init(struct server *);
/* Once per listener, after it is bound: cap and accept back-off. */
void	 http_conn_listener_init(struct http_listener *);
/* From the bufferevent callback: track the new connection on bev. */
void	 http_conn_new(struct http_listener *, struct bufferevent *);
/* The connection of a request, or NULL. */
struct http_conn *http_conn_of(struct evhttp_request *);
/* The request's handler starts / its reply is being queued. */
void	 http_conn_dispatched(struct http_conn *, struct http_req *);
/* 0 when a reply of bytes fits the output budget (then it is counted until
 * written), -1 when it must be refused. */
int	 http_conn_reply(struct http_conn *, struct evhttp_request *,
	    size_t bytes);
/* A streamed reply starts (no output budget: the streaming handler holds
 * one piece at a time; the request stays known, for its gone callback) /
 * its last piece is queued. */
void	 http_conn_stream(struct http_conn *, struct evhttp_request *);
void	 http_conn_stream_done(struct http_conn *);
/* The request the connection's handler or stream is serving, or NULL. */
struct http_req *http_conn_req(struct http_conn *);
/* Count the connection in srv->closing until it closes (draining). */
void	 http_conn_count_closing(struct http_conn *);
/* A framing problem of a complete request (RFC 9112 6.3), or NULL. */
const char *http_conn_framing_error(struct evhttp_request *);
/* Before evhttp_free: connections it frees now do not linger. */
void	 http_conn_stopping(void);
/* After evhttp_free: timers and lingering sockets. */
void	 http_conn_stop(struct server *);

#endif

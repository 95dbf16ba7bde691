/* http.h: evhttp glue. Listeners, TLS, dispatch through the route table,
 * and the only functions that write replies (so every reply is logged once
 * and carries X-Request-Id). A handler must end in exactly one reply. */
#ifndef QL_HTTP_H
#define QL_HTTP_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>
#include <yajl/yajl_gen.h>

#include "route.h"
#include "server.h"

struct evbuffer;
struct evhttp_request;

struct http_req {
	struct server		*srv;
	struct http_listener	*lst;
	struct evhttp_request	*req;	/* NULL once the client has gone */
	char			 id[17];
	const char		*method;
	char			*path;
	struct timespec		 start;
	struct route_match	 match;
	void			*api;		/* api.c's state on API routes, est.c's on EST */
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

int	 http_start(struct server *, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Check every enabled TLS listener's files (quarklinkd -t). */
int	 http_check_tls(struct conf *, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
void	 http_reload_tls(struct server *);
void	 http_drain(struct server *);	/* stop accepting; finish in flight */
void	 http_stop(struct server *);

void	 http_reply(struct http_req *, int status, const char *content_type,
	    struct evbuffer *body);
void	 http_reply_json(struct http_req *, int status, yajl_gen);
void	 http_reply_problem(struct http_req *, int status, const char *type,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A reply written in pieces with back-pressure (downloads). start sends
 * the status line and headers; set Content-Length before (no chunked
 * coding). Then http_stream_piece, each after the previous one's written
 * callback, and http_stream_end once all is sent; http_stream_abort closes
 * the connection instead (the body cannot be completed). hr->gone runs if
 * the client leaves: the handler must then call http_stream_end once it
 * has nothing in flight. Both free hr. */
void	 http_stream_start(struct http_req *, int status, const char *content_type);
void	 http_stream_piece(struct http_req *, struct evbuffer *);
void	 http_stream_end(struct http_req *, int status, size_t bytes);
void	 http_stream_abort(struct http_req *, int status, size_t bytes,
	    const char *why);

/* The query string against the route's declared parameters: 0, or -1
 * after a 400 naming what does not parse, an unknown or a repeated name. */
int	 http_query_check(struct http_req *) __attribute__((warn_unused_result));
/* Query-string parameter, percent-decoded, copied into buf: 1 present,
 * 0 absent, -1 present but len bytes or longer (never taken as absent). */
int	 http_query_param(struct http_req *, const char *name, char *buf,
	    size_t len) __attribute__((warn_unused_result));
struct evbuffer *http_body(struct http_req *);
/* A request header, or NULL (also once the client has gone). */
const char *http_header(struct http_req *, const char *name);
/* Add a header to the coming reply. */
void	 http_add_header(struct http_req *, const char *name, const char *value);
/* The client certificate if one was presented and verified, else NULL. */
X509	*http_peer_cert(struct http_req *);
const char *http_status_title(int status);
/* The client's address as text, for throttling and logs. */
const char *http_peer_addr(struct http_req *);
int	 http_method(struct http_req *);	/* evhttp_cmd_type */
/* Every route served, for the OpenAPI check (quarklinkd --list-routes). */
void	 http_list_routes(void);

#endif

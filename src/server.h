/* server.h: the process-wide context every module reaches through one
 * pointer. Filled by main.c; nothing here outlives the event loop. The
 * modules below main.c end the run through server.c, never main.c. */
#ifndef QL_SERVER_H
#define QL_SERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

struct event_base;
struct event;
struct evhttp;
struct evhttp_bound_socket;
struct conf;
struct conf_listener;
struct db_pool;
struct p11;
struct pki;
struct ocsp;
struct checkpoint;
struct server;
struct route;
struct http_req;
struct www;

struct http_listener {
	struct server			*srv;
	const char			*name;		/* admin, device, pki */
	unsigned			 bit;		/* ROUTE_ADMIN ... */
	int				 is_tls;
	int				 wants_client_cert;
	struct conf_listener		*conf;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	char				 bound_addr[64];	/* host:port */
	/* host:port for people and agents: a wildcard bind has no address of
	 * its own, so it is the first server.tls_names entry, the name the
	 * automatic certificate carries first. */
	char				 public_addr[300];
	SSL_CTX				*ssl;
	unsigned			 nconns;	/* open connections */
	int				 is_accept_paused;	/* EMFILE back-off */
	unsigned			 accept_errors;	/* since the last warning */
	long long			 accept_warned;	/* time of that warning */
	struct event			*accept_timer;
};

#define SERVER_NLISTENERS 3

struct server {
	struct event_base	*base;
	struct conf		*conf;
	struct db_pool		*db;
	struct p11		*p11;
	struct pki		*pki;
	struct ocsp		*ocsp;
	struct checkpoint	*checkpoint;	/* audit log checkpoints */
	struct www		*www;		/* the web UI's files, NULL: none */
	struct http_listener	 listeners[SERVER_NLISTENERS];
	int			 is_draining;
	unsigned		 inflight;	/* requests not yet replied to */
	unsigned		 closing;	/* replied with Connection: close */
	struct event		*drain_timer;
	int			 exit_code;
	int			 ready_fd;	/* daemon: tells the parent we are up */
	int			 admin_argc;	/* > 0: run one admin command */
	char			**admin_argv;
	int			 tls_pending;
	/* routes.c's table, and the API front door that runs before the
	 * handler of every route with a role. */
	const struct route	*routes;
	size_t			 nroutes;
	void			(*authenticate)(struct http_req *);
};

/* Called by http.c once draining has nothing left in flight: the loop
 * ends and main.c shuts down. */
void	server_drained(struct server *);
/* A one-shot run (a command-line command) finished with rc: the loop
 * ends and main.c exits with rc. */
void	server_exit(struct server *, int rc);

#endif

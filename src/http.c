/* http.c: listeners, dispatch and replies. Every request is logged exactly
 * once, at reply time. Never blocks: TLS is done by bufferevent_openssl. */
#include "http.h"
#include "http_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/rand.h>

#include "conf.h"
#include "json.h"
#include "log.h"
#include "pki.h"
#include "tls.h"
#include "tls_ticket.h"
#include "util.h"

#define HTTP_METHODS (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | \
	EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS)

static uint32_t		http_id_prefix;
static uint32_t		http_id_counter;
static unsigned		http_tls_generation;	/* TLS reloads so far */

static const char *
http_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "OTHER";
	}
}

/* Microseconds since start: the access log prints it without floating
 * point (printf's %f was a tenth of the request's formatting cost). */
static long long
http_elapsed_us(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - start->tv_sec) * 1000000 +
	    (now.tv_nsec - start->tv_nsec) / 1000;
}

/* The Date header of the current second (RFC 9110 5.6.7), formatted once
 * a second instead of by evhttp on every reply. */
static const char *
http_date(void)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	static time_t cached_sec = -1;
	static char cached[40];
	time_t now = time(NULL);
	struct tm tm;

	if (now != cached_sec && gmtime_r(&now, &tm) != NULL) {
		snprintf(cached, sizeof(cached), "%s, %02d %s %04d %02d:%02d:%02d GMT",
		    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
		    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached_sec = now;
	}
	return cached;
}

static void
http_drain_check(struct server *srv)
{
	if (srv->is_draining && srv->inflight == 0 && srv->closing == 0)
		server_drained(srv);
}

/* Log the request once and free it. */
static void
http_req_done(struct http_req *hr, int status, size_t bytes, const char *note)
{
	struct server *srv = hr->srv;
	long long us;

	if (hr->finish != NULL)
		hr->finish(hr, status);
	us = http_elapsed_us(&hr->start);
	log_info("request id=%s %s %s %s %d %zuB %lld.%02lldms%s", hr->id,
	    hr->lst->name, hr->method, hr->path, status, bytes,
	    us / 1000, us % 1000 / 10, note);
	free(hr->path);
	free(hr);
	srv->inflight--;
	http_drain_check(srv);
}

void
http_reply(struct http_req *hr, int status, const char *content_type,
    struct evbuffer *body)
{
	struct server *srv = hr->srv;
	size_t bytes = body ? evbuffer_get_length(body) : 0;

	if (hr->req != NULL) {
		struct evkeyvalq *h = evhttp_request_get_output_headers(hr->req);
		struct http_conn *c = http_conn_of(hr->req);

		/* Clients that do not read keep their reply in memory. */
		if (c != NULL && http_conn_reply(c, hr->req, bytes) == -1) {
			evhttp_add_header(h, "Retry-After", "1");
			evhttp_add_header(h, "Connection", "close");
			http_reply_problem(hr, 503, NULL, "too many replies are "
			    "waiting for their clients to read them");
			return;
		}
		evhttp_add_header(h, "Date", http_date());
		evhttp_add_header(h, "X-Request-Id", hr->id);
		if (content_type != NULL)
			evhttp_add_header(h, "Content-Type", content_type);
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
		if (srv->is_draining) {
			evhttp_add_header(h, "Connection", "close");
			if (c != NULL)
				http_conn_count_closing(c);
		}
		evhttp_send_reply(hr->req, status, http_status_title(status), body);
		if (c != NULL)
			http_conn_flush(c);
	}
	http_req_done(hr, status, bytes, hr->req ? "" : " (client gone)");
}

/* ---- streamed replies ---- */

void
http_stream_start(struct http_req *hr, int status, const char *content_type)
{
	struct evkeyvalq *h;
	struct http_conn *c;

	if (hr->req == NULL)
		return;
	h = evhttp_request_get_output_headers(hr->req);
	if ((c = http_conn_of(hr->req)) != NULL)
		http_conn_stream(c, hr->req);
	evhttp_add_header(h, "X-Request-Id", hr->id);
	if (content_type != NULL)
		evhttp_add_header(h, "Content-Type", content_type);
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	if (hr->srv->is_draining) {
		evhttp_add_header(h, "Connection", "close");
		if (c != NULL)
			http_conn_count_closing(c);
	}
	evhttp_send_reply_start(hr->req, status, http_status_title(status));
}

/* evhttp calls this on every write event while it is installed, also
 * after our reply has ended (it never uninstalls it): so its argument is
 * the connection, which outlives every write event, and only a piece that
 * is pending counts. */
static void
http_stream_written(struct evhttp_connection *evcon, void *arg)
{
	struct http_req *hr = http_conn_req(arg);

	(void)evcon;
	if (hr == NULL || !hr->is_piece_pending)
		return;
	hr->is_piece_pending = 0;
	if (hr->written != NULL)
		hr->written(hr);
}

void
http_stream_piece(struct http_req *hr, struct evbuffer *buf)
{
	struct http_conn *c;

	if (hr->req == NULL || (c = http_conn_of(hr->req)) == NULL)
		return;
	hr->is_piece_pending = 1;
	evhttp_send_reply_chunk_with_cb(hr->req, buf, http_stream_written, c);
}

/* The connection no longer points at hr (it is freed next). */
static void
http_stream_detach(struct http_req *hr)
{
	struct http_conn *c = hr->req ? http_conn_of(hr->req) : NULL;

	if (c != NULL)
		http_conn_stream_done(c);
}

void
http_stream_end(struct http_req *hr, int status, size_t bytes)
{
	if (hr->req != NULL) {
		http_stream_detach(hr);
		evhttp_send_reply_end(hr->req);
	}
	http_req_done(hr, status, bytes, hr->req ? "" : " (client gone)");
}

void
http_stream_abort(struct http_req *hr, int status, size_t bytes, const char *why)
{
	struct evhttp_connection *evcon = NULL;

	if (hr->req != NULL) {
		http_stream_detach(hr);
		evcon = evhttp_request_get_connection(hr->req);
	}
	log_warnx("request id=%s: reply cut short after %zu bytes: %s", hr->id,
	    bytes, why);
	http_req_done(hr, status, bytes, " (aborted)");
	/* The client sees fewer bytes than Content-Length: never a short
	 * body taken for a whole one. */
	if (evcon != NULL)
		evhttp_connection_free(evcon);
}

void
http_reply_json(struct http_req *hr, int status, yajl_gen g)
{
	struct evbuffer *buf = evbuffer_new();

	if (buf == NULL || json_gen_finish(g, buf) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_reply(hr, 500, NULL, NULL);
		return;
	}
	http_reply(hr, status, "application/json", buf);
	evbuffer_free(buf);
}

/* RFC 9457 problem details: the one way every error reaches a client. */
void
http_reply_problem(struct http_req *hr, int status, const char *type,
    const char *fmt, ...)
{
	char detail[512];
	struct evbuffer *buf;
	yajl_gen g;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if ((g = json_gen_new()) == NULL || (buf = evbuffer_new()) == NULL) {
		if (g != NULL)
			yajl_gen_free(g);
		http_reply(hr, 500, NULL, NULL);
		return;
	}
	yajl_gen_map_open(g);
	json_kv_str(g, "type", type ? type : "about:blank");
	json_kv_str(g, "title", http_status_title(status));
	json_kv_int(g, "status", status);
	json_kv_str(g, "detail", detail);
	json_kv_str(g, "instance", hr->id);
	yajl_gen_map_close(g);
	if (json_gen_finish(g, buf) == -1) {
		evbuffer_free(buf);
		http_reply(hr, 500, NULL, NULL);
		return;
	}
	log_debug("request id=%s problem %d: %s", hr->id, status, detail);
	hr->problem = detail;
	http_reply(hr, status, "application/problem+json", buf);
	evbuffer_free(buf);
}

/* Only printable ASCII goes into a log line or a problem detail. */
static int
http_path_is_printable(const char *p)
{
	for (; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e)
			return 0;
	return 1;
}

static void
http_dispatch(struct evhttp_request *req, void *arg)
{
	struct http_listener *l = arg;
	struct server *srv = l->srv;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	char allow[128];
	struct http_conn *c = http_conn_of(req);
	const char *framing;
	struct http_req *hr;

	if ((hr = calloc(1, sizeof(*hr))) == NULL) {
		evhttp_send_error(req, 503, NULL);
		return;
	}
	if (path == NULL || path[0] == '\0')
		path = "/";
	hr->srv = srv;
	hr->lst = l;
	hr->req = req;
	hr->method = http_method_name(cmd);
	hr->path = strdup(http_path_is_printable(path) ? path : "(unprintable)");
	clock_gettime(CLOCK_MONOTONIC, &hr->start);
	snprintf(hr->id, sizeof(hr->id), "%08x%08x", http_id_prefix,
	    ++http_id_counter);
	srv->inflight++;
	if (hr->path == NULL) {
		http_reply(hr, 503, NULL, NULL);
		return;
	}
	if (c != NULL)
		http_conn_dispatched(c, hr);	/* learns when the client goes */
	log_debug("request start id=%s %s %s %s", hr->id, l->name, hr->method,
	    hr->path);
	/* The rest of the stream may be framed differently by another
	 * reader: answer and close, never read it as a next request. */
	if ((framing = http_conn_framing_error(req)) != NULL) {
		http_add_header(hr, "Connection", "close");
		http_reply_problem(hr, 400, NULL, "%s", framing);
		return;
	}
	switch (route_lookup(srv->routes, srv->nroutes, l->bit, cmd, path,
	    &hr->match)) {
	case ROUTE_NOT_FOUND:
		http_reply_problem(hr, 404, NULL, "no route for %s", hr->path);
		return;
	case ROUTE_METHOD_NOT_ALLOWED:
		route_allow_header(hr->match.allowed, allow, sizeof(allow));
		http_add_header(hr, "Allow", allow);
		http_reply_problem(hr, 405, NULL, "%s is not allowed on %s; allowed: %s",
		    hr->method, hr->path, allow);
		return;
	case ROUTE_FOUND:
		if (hr->match.route->role != 0)
			srv->authenticate(hr);	/* then the handler */
		else if (http_query_check(hr) == 0)
			hr->match.route->handler(hr);
		return;
	}
}

static struct bufferevent *
http_bevcb(struct event_base *base, void *arg)
{
	struct http_listener *l = arg;
	struct bufferevent *bev;
	SSL *ssl;

	/* evhttp falls back to a plaintext bufferevent on NULL, which must
	 * never happen on a TLS port: out of memory here is fatal. */
	if (!l->is_tls)
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	else if ((ssl = SSL_new(l->ssl)) == NULL)
		fatalx("SSL_new: out of memory");
	else
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		fatalx("%s: bufferevent: out of memory", l->name);
	if (l->is_tls)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	http_conn_new(l, bev);
	return bev;
}

static int
http_listener_bind(struct http_listener *l, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss), one = 1;
	socklen_t alen = sizeof(ss);
	struct evconnlistener *lev;
	char host[INET6_ADDRSTRLEN + 8];
	evutil_socket_t fd;
	unsigned port;

	if (util_parse_listen(l->conf->listen, &ss, &sslen) == -1) {
		snprintf(err, errlen, "%s.listen: bad address %s", l->name,
		    l->conf->listen);
		return -1;
	}
	lev = evconnlistener_new_bind(l->srv->base, NULL, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, (struct sockaddr *)&ss, sslen);
	if (lev == NULL) {
		snprintf(err, errlen, "%s: cannot listen on %s: %s", l->name,
		    l->conf->listen, strerror(errno));
		return -1;
	}
	fd = evconnlistener_get_fd(lev);
	/* Linux passes TCP_NODELAY on to accepted sockets; without it a TLS
	 * reply waits for the peer's delayed ACK (40x slower, env.md). */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
		log_warn("%s: TCP_NODELAY", l->name);
	if ((l->bound = evhttp_bind_listener(l->http, lev)) == NULL) {
		evconnlistener_free(lev);
		snprintf(err, errlen, "%s: evhttp_bind_listener failed", l->name);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&ss, &alen);
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		char a6[INET6_ADDRSTRLEN];

		evutil_inet_ntop(AF_INET6, &s6->sin6_addr, a6, sizeof(a6));
		snprintf(host, sizeof(host), "[%s]", a6);
		port = ntohs(s6->sin6_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		evutil_inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		port = ntohs(s4->sin_port);
	}
	/* What certificates point at when pki.url is not set. */
	snprintf(l->bound_addr, sizeof(l->bound_addr), "%s:%u",
	    strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1" : host, port);
	util_public_addr(host, port, l->srv->conf->tls_names, l->public_addr,
	    sizeof(l->public_addr));
	log_info("listening %s %s:%u", l->name, host, port);
	return 0;
}

static SSL_CTX *
http_ssl_ctx(struct http_listener *l, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_new(l->conf->tls_cert, l->conf->tls_key, err, errlen);
	char sid[SSL_MAX_SID_CTX_LENGTH];

	if (ctx != NULL && l->wants_client_cert &&
	    pki_setup_client_tls(l->srv->pki, ctx, l->conf->client_ca, err,
	    errlen) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (ctx == NULL)
		return NULL;
	/* Devices mostly sit idle between polls: free the TLS record buffers
	 * between reads (about 30 KiB per connection, a few % of keep-alive
	 * throughput; env.md). */
	if (l->wants_client_cert)
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	tls_ticket_setup(ctx);
	/* A session resumes only on the listener, and under the trust
	 * settings, that verified it: a reload (new client_ca) starts over. */
	snprintf(sid, sizeof(sid), "ql:%s:%u", l->name, http_tls_generation);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)sid,
	    (unsigned)strlen(sid));
	return ctx;
}

static int
http_listener_start(struct http_listener *l, char *err, size_t errlen)
{
	struct conf *c = l->srv->conf;

	if ((l->http = evhttp_new(l->srv->base)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return -1;
	}
	evhttp_set_allowed_methods(l->http, HTTP_METHODS);
	/* A tus PATCH may be larger than a JSON body; http_conn lets only
	 * those past max_body_size, a bounded number at a time. */
	evhttp_set_max_body_size(l->http, l->bit == ROUTE_ADMIN &&
	    c->img_max_chunk > c->max_body_size ? c->img_max_chunk :
	    c->max_body_size);
	/* No EVHTTP_SERVER_LINGERING_CLOSE: it reads the whole declared body
	 * (2^63 bytes, or one the client waits to send until "100 Continue")
	 * before answering 413. Answer at once; http_conn lingers after. */
	evhttp_set_max_headers_size(l->http, c->max_header_size);
	evhttp_set_timeout(l->http, (int)c->request_timeout);
	evhttp_set_gencb(l->http, http_dispatch, l);
	if (l->is_tls) {
		if ((l->ssl = http_ssl_ctx(l, err, errlen)) == NULL)
			return -1;
	}
	evhttp_set_bevcb(l->http, http_bevcb, l);
	if (http_listener_bind(l, err, errlen) == -1)
		return -1;
	http_conn_listener_init(l);
	return 0;
}

static void
http_listeners_init(struct server *srv)
{
	struct conf *c = srv->conf;
	struct { const char *name; unsigned bit; int tls, client; struct conf_listener *cl; } defs[] = {
		{ "admin", ROUTE_ADMIN, 1, 0, &c->admin },
		{ "device", ROUTE_DEVICE, 1, 1, &c->device },
		{ "pki", ROUTE_PKI, 0, 0, &c->pki },
	};

	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &srv->listeners[i];

		memset(l, 0, sizeof(*l));
		l->srv = srv;
		l->name = defs[i].name;
		l->bit = defs[i].bit;
		l->is_tls = defs[i].tls;
		l->wants_client_cert = defs[i].client;
		l->conf = defs[i].cl;
	}
}

int
http_check_tls(struct conf *c, char *err, size_t errlen)
{
	struct server tmp = { .conf = c };

	http_listeners_init(&tmp);
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &tmp.listeners[i];
		SSL_CTX *ctx;

		if (!l->conf->enabled || !l->is_tls)
			continue;
		if (l->wants_client_cert && l->conf->client_ca[0] != '\0' &&
		    tls_check_ca_file(l->conf->client_ca, err, errlen) == -1)
			return -1;
		/* auto certificates are issued at start, nothing to check yet */
		if (strcmp(l->conf->tls_cert, "auto") == 0)
			continue;
		if ((ctx = tls_ctx_new(l->conf->tls_cert, l->conf->tls_key, err,
		    errlen)) == NULL)
			return -1;
		SSL_CTX_free(ctx);
	}
	return 0;
}

int
http_start(struct server *srv, char *err, size_t errlen)
{
	const char *errstr;

	if (RAND_bytes((unsigned char *)&http_id_prefix, sizeof(http_id_prefix)) != 1)
		http_id_prefix = (uint32_t)getpid();
	if (tls_ticket_start(srv->base, srv->conf->tls_ticket_key_interval,
	    &errstr) == -1) {
		snprintf(err, errlen, "%s", errstr);
		return -1;
	}
	http_listeners_init(srv);
	http_conn_init(srv);
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &srv->listeners[i];

		if (l->conf->enabled && http_listener_start(l, err, errlen) == -1)
			return -1;
	}
	return 0;
}

void
http_reload_tls(struct server *srv)
{
	char err[CONF_ERRLEN];

	http_tls_generation++;
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &srv->listeners[i];
		SSL_CTX *ctx;

		if (l->ssl == NULL)
			continue;
		if ((ctx = http_ssl_ctx(l, err, sizeof(err))) == NULL) {
			log_warnx("%s: TLS reload failed, keeping the old certificate: %s",
			    l->name, err);
			continue;
		}
		/* Live connections hold their own reference to the old one. */
		SSL_CTX_free(l->ssl);
		l->ssl = ctx;
		log_info("%s: TLS certificate reloaded", l->name);
	}
}

void
http_drain(struct server *srv)
{
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &srv->listeners[i];

		if (l->bound != NULL) {
			evhttp_del_accept_socket(l->http, l->bound);
			l->bound = NULL;
		}
	}
	srv->is_draining = 1;
	log_info("draining: %u requests in flight", srv->inflight);
	http_drain_check(srv);
}

void
http_stop(struct server *srv)
{
	http_conn_stopping();
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &srv->listeners[i];

		l->bound = NULL;	/* evhttp_free frees it */
		if (l->http != NULL)
			evhttp_free(l->http);
		if (l->ssl != NULL)
			SSL_CTX_free(l->ssl);
		l->http = NULL;
		l->ssl = NULL;
	}
	tls_ticket_stop();
	http_conn_stop(srv);
}

static const char *
http_query_string(struct http_req *hr)
{
	const struct evhttp_uri *uri = hr->req ? evhttp_request_get_evhttp_uri(hr->req) : NULL;

	return uri ? evhttp_uri_get_query(uri) : NULL;
}

int
http_query_check(struct http_req *hr)
{
	const char *const *allowed = hr->match.route->query;
	char name[65], list[256];
	size_t off = 0;

	switch (route_query_check(allowed, http_query_string(hr), name,
	    sizeof(name))) {
	case ROUTE_QUERY_OK:
		return 0;
	case ROUTE_QUERY_NO_NAME:
		http_reply_problem(hr, 400, NULL,
		    "query string is malformed: a parameter has no name");
		return -1;
	case ROUTE_QUERY_NO_VALUE:
		http_reply_problem(hr, 400, NULL, "query string is malformed: "
		    "parameter \"%s\" has no \"=\"", name);
		return -1;
	case ROUTE_QUERY_NUL:
		http_reply_problem(hr, 400, NULL,
		    "query parameter \"%s\" holds a NUL byte", name);
		return -1;
	case ROUTE_QUERY_REPEATED:
		http_reply_problem(hr, 400, NULL,
		    "query parameter \"%s\" is given more than once", name);
		return -1;
	case ROUTE_QUERY_UNKNOWN:
		break;
	}
	list[0] = '\0';
	for (size_t i = 0; allowed != NULL && allowed[i] != NULL; i++) {
		int w = snprintf(list + off, sizeof(list) - off, "%s%s",
		    off ? ", " : "", allowed[i]);

		if (w < 0 || (size_t)w >= sizeof(list) - off)
			break;
		off += (size_t)w;
	}
	if (off == 0)
		http_reply_problem(hr, 400, NULL, "unknown query parameter \"%s\";"
		    " %s takes none", name, hr->path);
	else
		http_reply_problem(hr, 400, NULL, "unknown query parameter \"%s\";"
		    " allowed: %s", name, list);
	return -1;
}

int
http_query_param(struct http_req *hr, const char *name, char *buf, size_t len)
{
	const char *q = http_query_string(hr);
	struct evkeyvalq params;
	const char *v;
	int rc = 0;

	if (q == NULL)
		return 0;
	TAILQ_INIT(&params);
	/* http_query_check has refused what does not parse. */
	if (evhttp_parse_query_str(q, &params) == 0 &&
	    (v = evhttp_find_header(&params, name)) != NULL) {
		if (strlen(v) < len) {
			memcpy(buf, v, strlen(v) + 1);
			rc = 1;
		} else {
			rc = -1;
		}
	}
	evhttp_clear_headers(&params);
	return rc;
}

struct evbuffer *
http_body(struct http_req *hr)
{
	return evhttp_request_get_input_buffer(hr->req);
}

X509 *
http_peer_cert(struct http_req *hr)
{
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	X509 *cert;
	SSL *ssl;

	if (hr->req == NULL || !hr->lst->is_tls)
		return NULL;
	evcon = evhttp_request_get_connection(hr->req);
	bev = evhttp_connection_get_bufferevent(evcon);
	if (bev == NULL || (ssl = bufferevent_openssl_get_ssl(bev)) == NULL)
		return NULL;
	if ((cert = SSL_get0_peer_certificate(ssl)) == NULL ||
	    SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return cert;
}

const char *
http_header(struct http_req *hr, const char *name)
{
	if (hr->req == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(hr->req), name);
}

void
http_add_header(struct http_req *hr, const char *name, const char *value)
{
	if (hr->req != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(hr->req), name, value);
}

const char *
http_peer_addr(struct http_req *hr)
{
	char *addr = NULL;
	ev_uint16_t port;

	if (hr->req == NULL)
		return "-";
	evhttp_connection_get_peer(evhttp_request_get_connection(hr->req), &addr, &port);
	return addr != NULL ? addr : "-";
}

int
http_method(struct http_req *hr)
{
	return hr->req ? (int)evhttp_request_get_command(hr->req) : 0;
}

/* http_conn.c: connection-level limits under evhttp (see http_conn.h).
 * evhttp 2.1's own timeout restarts on every byte, so a client trickling a
 * header or a body kept its descriptor forever. This file does not parse
 * requests: it finds where the header block ends (the first empty line),
 * notes Transfer-Encoding: chunked, and follows the chunk framing of such a
 * body only to refuse a malformed one with 400 (evhttp 2.1 answers 413);
 * evhttp does the rest. Never blocks. */
#include "http_conn.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "conf.h"
#include "http.h"
#include "log.h"

#define HTTP_CONN_ACCEPT_PAUSE_MS	100	/* back-off after EMFILE */
#define HTTP_CONN_WARN_INTERVAL		10	/* seconds between warnings */
#define HTTP_CONN_LINGER_SECS		2	/* drain after an error reply */
#define HTTP_CONN_LINGER_MAX		256	/* descriptors spent lingering */
#define HTTP_CONN_SMALL_REPLY		16384	/* always fits the budget */

enum http_conn_state {
	HTTP_CONN_HEADER,	/* reading the header block (deadline) */
	HTTP_CONN_BODY,		/* reading the body (deadline) */
	HTTP_CONN_HANDLER,	/* the request is complete, handler runs */
	HTTP_CONN_REPLY,	/* reply queued until written */
	HTTP_CONN_IDLE,		/* keep-alive; evhttp's idle timeout */
};

/* Where the scan of a chunked body is: what the next byte must be. */
enum http_chunk_state {
	HTTP_CHUNK_SIZE,	/* hex digits of a chunk size */
	HTTP_CHUNK_SIZE_LF,	/* CR seen after the size */
	HTTP_CHUNK_DATA,	/* chunk_left bytes of data */
	HTTP_CHUNK_DATA_CR,	/* CRLF after the data */
	HTTP_CHUNK_DATA_LF,
	HTTP_CHUNK_TRAILER,	/* trailer lines after the last chunk */
	HTTP_CHUNK_DONE,	/* the body is complete; evhttp dispatches */
	HTTP_CHUNK_BAD,		/* refused; evhttp sees nothing more */
};

static const char *const http_conn_state_names[] = {
	"header", "body", "handler", "reply", "idle"
};

struct http_conn {
	struct http_listener		*lst;
	struct bufferevent		*bev;
	struct evhttp_connection	*evcon;	/* NULL until attached */
	struct http_req			*hr;	/* the request in the handler */
	struct event			*timer;
	enum http_conn_state		 state;
	int				 fd;
	int				 is_closing_counted;
	int				 is_timed_out;
	size_t				 out_bytes;	/* counted reply bytes */
	/* header scan, offsets into the input buffer */
	size_t				 scan_pos;
	size_t				 line_len;	/* bytes of the open line */
	unsigned			 nlines;
	unsigned			 line_cr;	/* CRs in the open line */
	/* chunked body scan (evhttp 2.1 answers a bad chunk size 413) */
	int				 is_chunked;
	enum http_chunk_state		 chunk;
	uint64_t			 chunk_left;	/* data, or size digits */
};

static struct server	 *http_conn_srv;
static struct http_conn	**http_conn_byfd;	/* fd -> connection */
static size_t		  http_conn_nbyfd;
static size_t		  http_conn_out_total;	/* reply bytes not yet written */
static unsigned		  http_conn_nlinger;

static void
http_conn_set_state(struct http_conn *c, enum http_conn_state st)
{
	struct conf *cf = c->lst->srv->conf;
	struct timeval tv = { 0, 0 };

	if (c->state == st)
		return;
	c->state = st;
	evtimer_del(c->timer);
	if (st == HTTP_CONN_HEADER || st == HTTP_CONN_BODY) {
		tv.tv_sec = st == HTTP_CONN_HEADER ? cf->header_timeout :
		    cf->body_timeout;
		evtimer_add(c->timer, &tv);
	}
	if (st == HTTP_CONN_HEADER) {
		c->scan_pos = c->line_len = 0;
		c->nlines = c->line_cr = 0;
		c->is_chunked = 0;
	}
	if (st == HTTP_CONN_BODY) {
		c->chunk = HTTP_CHUNK_SIZE;
		c->chunk_left = 0;
	}
	log_debug("%s: connection fd=%d %s", c->lst->name, c->fd,
	    http_conn_state_names[st]);
}

/* Enabled unless at its cap, backing off after EMFILE, or draining. */
static void
http_conn_listener_update(struct http_listener *l)
{
	struct evconnlistener *lev;
	int want;

	if (l->bound == NULL)
		return;
	lev = evhttp_bound_socket_get_listener(l->bound);
	want = !l->is_accept_paused &&
	    l->nconns < (unsigned)l->conf->max_connections;
	if (want)
		evconnlistener_enable(lev);
	else
		evconnlistener_disable(lev);
}

static void
http_conn_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http_listener *l = arg;

	(void)fd;
	(void)what;
	l->is_accept_paused = 0;
	http_conn_listener_update(l);
}

/* accept() failed for a reason that retrying at once cannot fix (EMFILE,
 * ENFILE, ENOBUFS): the pending connection stays readable, so without a
 * pause the loop spins on it. Pause briefly and retry, warning once per
 * interval through the log (libevent would write to stderr). */
static void
http_conn_accept_error(struct evconnlistener *lev, void *arg)
{
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, HTTP_CONN_ACCEPT_PAUSE_MS * 1000 };
	struct http_listener *l = NULL;
	time_t now = time(NULL);

	(void)arg;	/* evhttp's, not ours: find the listener */
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *x = &http_conn_srv->listeners[i];

		if (x->bound != NULL &&
		    evhttp_bound_socket_get_listener(x->bound) == lev)
			l = x;
	}
	if (l == NULL)
		return;
	l->accept_errors++;
	if (now - l->accept_warned >= HTTP_CONN_WARN_INTERVAL) {
		log_warnx("%s: accept: %s (%u failures since the last warning); "
		    "%u connections open; pausing accepts for %d ms", l->name,
		    strerror(err), l->accept_errors, l->nconns,
		    HTTP_CONN_ACCEPT_PAUSE_MS);
		l->accept_warned = now;
		l->accept_errors = 0;
	}
	l->is_accept_paused = 1;
	http_conn_listener_update(l);
	evtimer_add(l->accept_timer, &tv);
}

/* Raise the soft descriptor limit to the hard one, and say when the
 * listeners' caps add up to more than it (the accept back-off then). */
void
http_conn_init(struct server *srv)
{
	struct conf *cf = srv->conf;
	struct rlimit rl;
	long long sum = 0;

	http_conn_srv = srv;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	sum = (cf->admin.enabled ? cf->admin.max_connections : 0) +
	    (cf->device.enabled ? cf->device.max_connections : 0) +
	    (cf->pki.enabled ? cf->pki.max_connections : 0);
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)sum + 64 > rl.rlim_cur)
		log_info("descriptor limit %llu is below the listeners' "
		    "max_connections (%lld together): accepts pause at the limit",
		    (unsigned long long)rl.rlim_cur, sum);
}

void
http_conn_listener_init(struct http_listener *l)
{
	struct evconnlistener *lev = evhttp_bound_socket_get_listener(l->bound);

	if ((l->accept_timer = evtimer_new(l->srv->base,
	    http_conn_accept_resume, l)) == NULL)
		fatalx("%s: evtimer_new: out of memory", l->name);
	evconnlistener_set_error_cb(lev, http_conn_accept_error);
}

/* ---------------------------------------------------------- lingering */

struct http_conn_linger {
	LIST_ENTRY(http_conn_linger) entry;
	struct event	*ev;
	int		 fd;
	time_t		 until;
};

static LIST_HEAD(, http_conn_linger) http_conn_lingers =
    LIST_HEAD_INITIALIZER(http_conn_lingers);
static int http_conn_is_stopping;

static void
http_conn_linger_end(struct http_conn_linger *lg)
{
	LIST_REMOVE(lg, entry);
	event_free(lg->ev);
	close(lg->fd);
	free(lg);
	http_conn_nlinger--;
}

static void
http_conn_linger_read(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn_linger *lg = arg;
	char buf[16384];
	ssize_t n = 0;

	if (what & EV_READ)
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			;
	if ((what & EV_TIMEOUT) || n == 0 || (n == -1 && errno != EAGAIN &&
	    errno != EINTR) || time(NULL) >= lg->until)
		http_conn_linger_end(lg);
}

/* evhttp closes right after an error reply (413, 400); if the client is
 * still sending, the unread bytes turn the close into a reset and the
 * client may never see the reply. Keep a duplicate of the socket,
 * half-close it and drop what comes for a short, bounded time. */
static void
http_conn_linger(struct http_conn *c)
{
	struct timeval tv = { HTTP_CONN_LINGER_SECS, 0 };
	struct http_conn_linger *lg;
	int fd;

	if (http_conn_is_stopping || http_conn_nlinger >= HTTP_CONN_LINGER_MAX ||
	    c->fd == -1 ||
	    (fd = dup(c->fd)) == -1)
		return;
	if ((lg = calloc(1, sizeof(*lg))) == NULL ||
	    (lg->ev = event_new(c->lst->srv->base, fd, EV_READ | EV_PERSIST,
	    http_conn_linger_read, lg)) == NULL) {
		free(lg);
		close(fd);
		return;
	}
	lg->fd = fd;
	lg->until = time(NULL) + HTTP_CONN_LINGER_SECS;
	evutil_make_socket_nonblocking(fd);
	shutdown(fd, SHUT_WR);
	event_add(lg->ev, &tv);
	LIST_INSERT_HEAD(&http_conn_lingers, lg, entry);
	http_conn_nlinger++;
}

/* ---------------------------------------------------------- lifetime */

static void
http_conn_free(struct http_conn *c)
{
	struct http_listener *l = c->lst;

	if (c->fd >= 0 && (size_t)c->fd < http_conn_nbyfd &&
	    http_conn_byfd[c->fd] == c)
		http_conn_byfd[c->fd] = NULL;
	event_free(c->timer);
	if (l->nconns-- == (unsigned)l->conf->max_connections)
		http_conn_listener_update(l);	/* it was at its cap */
	free(c);
}

/* evhttp frees a connection (and a request whose client hung up before
 * the reply, libevent issue 997): everything that points at it learns
 * here. Runs before evhttp frees the bufferevent. */
static void
http_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_conn *c = arg;
	struct server *srv = c->lst->srv;

	(void)evcon;
	if (c->hr != NULL) {
		struct http_req *hr = c->hr;

		c->hr = NULL;
		hr->req = NULL;
		if (hr->gone != NULL)
			hr->gone(hr);	/* a streamed reply: may free hr */
	}
	http_conn_out_total -= c->out_bytes;
	if (!c->is_timed_out && c->state != HTTP_CONN_IDLE)
		http_conn_linger(c);
	if (c->is_closing_counted) {
		srv->closing--;
		if (srv->is_draining && srv->inflight == 0 && srv->closing == 0)
			server_drained(srv);
	}
	http_conn_free(c);
}

static int
http_conn_index(struct http_conn *c)
{
	if ((size_t)c->fd >= http_conn_nbyfd) {
		size_t n = (size_t)c->fd + 1024;
		struct http_conn **p = realloc(http_conn_byfd, n * sizeof(*p));

		if (p == NULL)
			return -1;
		memset(p + http_conn_nbyfd, 0,
		    (n - http_conn_nbyfd) * sizeof(*p));
		http_conn_byfd = p;
		http_conn_nbyfd = n;
	}
	http_conn_byfd[c->fd] = c;
	return 0;
}

/* First turn after the accept: evhttp has made its connection object and
 * installed its callbacks on our bufferevent (their argument is it). */
static int
http_conn_attach(struct http_conn *c)
{
	bufferevent_data_cb readcb;
	bufferevent_event_cb eventcb;
	void *cbarg = NULL;

	bufferevent_getcb(c->bev, &readcb, NULL, &eventcb, &cbarg);
	c->fd = (int)bufferevent_getfd(c->bev);
	bufferevent_decref(c->bev);	/* taken in http_conn_new */
	if (eventcb == NULL || cbarg == NULL || c->fd < 0 ||
	    http_conn_index(c) == -1)
		return -1;	/* evhttp gave up on it already */
	c->evcon = cbarg;
	evhttp_connection_set_closecb(c->evcon, http_conn_closed, c);
	c->state = HTTP_CONN_IDLE;
	http_conn_set_state(c, HTTP_CONN_HEADER);
	return 0;
}

static void
http_conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct http_conn *c = arg;
	struct conf *cf = c->lst->srv->conf;

	(void)fd;
	(void)what;
	if (c->evcon == NULL) {
		if (http_conn_attach(c) == -1) {
			c->fd = -1;
			http_conn_free(c);
		}
		return;
	}
	log_debug("%s: closing connection from fd=%d: %s not complete "
	    "within %lld s", c->lst->name, c->fd,
	    http_conn_state_names[c->state], c->state == HTTP_CONN_HEADER ?
	    cf->header_timeout : cf->body_timeout);
	c->is_timed_out = 1;
	evhttp_connection_free(c->evcon);	/* runs http_conn_closed */
}

/* Transfer-Encoding: chunked, the only coding evhttp decodes (any other
 * is refused at dispatch): the len bytes before the LF at offset lf. */
static int
http_conn_is_chunked_line(struct evbuffer *in, size_t lf, size_t len)
{
	static const char name[] = "transfer-encoding:";
	char line[64], *v, *e;
	struct evbuffer_ptr p;
	ev_ssize_t n;

	if (len < sizeof(name) - 1 || len >= sizeof(line) || len > lf ||
	    evbuffer_ptr_set(in, &p, lf - len, EVBUFFER_PTR_SET) == -1 ||
	    (n = evbuffer_copyout_from(in, &p, line, len)) != (ev_ssize_t)len)
		return 0;
	line[n] = '\0';
	if (strncasecmp(line, name, sizeof(name) - 1) != 0)
		return 0;
	v = line + sizeof(name) - 1;
	v += strspn(v, " \t");
	e = v + strcspn(v, " \t\r\n");
	*e = '\0';
	return strcasecmp(v, "chunked") == 0;
}

/* The header block ends at the first empty line after the request line.
 * evhttp drains each complete header line as it parses it, so offsets are
 * kept relative to what is still in the buffer. */
static void
http_conn_scan_header(struct http_conn *c, struct evbuffer *in, size_t len)
{
	struct evbuffer_iovec v[8];
	struct evbuffer_ptr p;
	int n;

	while (c->state == HTTP_CONN_HEADER && c->scan_pos < len) {
		if (evbuffer_ptr_set(in, &p, c->scan_pos, EVBUFFER_PTR_SET) == -1 ||
		    (n = evbuffer_peek(in, -1, &p, v, 8)) <= 0)
			return;
		for (int i = 0; i < n && i < 8; i++) {
			const char *s = v[i].iov_base;

			for (size_t j = 0; j < v[i].iov_len; j++) {
				c->scan_pos++;
				if (s[j] == '\r') {
					c->line_cr++;
					continue;
				}
				if (s[j] != '\n') {
					c->line_len++;
					continue;
				}
				if (c->line_len == 0 && c->nlines > 0) {
					http_conn_set_state(c, HTTP_CONN_BODY);
					return;
				}
				if (c->nlines > 0 && !c->is_chunked)
					c->is_chunked = http_conn_is_chunked_line(in,
					    c->scan_pos - 1, c->line_len + c->line_cr);
				c->nlines++;
				c->line_len = c->line_cr = 0;
			}
		}
	}
}

/* One byte of a chunked body; 0 when it keeps to RFC 9112 7.1 as far as
 * evhttp 2.1 decodes it (no chunk extensions, at most 15 size digits). */
static int
http_conn_chunk_byte(struct http_conn *c, unsigned char b)
{
	switch (c->chunk) {
	case HTTP_CHUNK_SIZE:
		if (isxdigit(b)) {
			c->chunk_left = c->chunk_left * 16 +
			    (uint64_t)(isdigit(b) ? b - '0' : (b | 0x20) - 'a' + 10);
			/* count digits in the top bits' place: 15 at most */
			return ++c->line_len > 15 ? -1 : 0;
		}
		if (c->line_len == 0 || (b != '\r' && b != '\n'))
			return -1;
		c->line_len = 0;
		if (b == '\r') {
			c->chunk = HTTP_CHUNK_SIZE_LF;
			return 0;
		}
		/* FALLTHROUGH */
	case HTTP_CHUNK_SIZE_LF:
		if (b != '\n')
			return -1;
		c->chunk = c->chunk_left == 0 ? HTTP_CHUNK_TRAILER : HTTP_CHUNK_DATA;
		return 0;
	case HTTP_CHUNK_DATA:
		if (--c->chunk_left == 0)
			c->chunk = HTTP_CHUNK_DATA_CR;
		return 0;
	case HTTP_CHUNK_DATA_CR:
		if (b == '\r') {
			c->chunk = HTTP_CHUNK_DATA_LF;
			return 0;
		}
		/* FALLTHROUGH */
	case HTTP_CHUNK_DATA_LF:
		if (b != '\n')
			return -1;
		c->chunk = HTTP_CHUNK_SIZE;
		return 0;
	case HTTP_CHUNK_TRAILER:
		if (b == '\r')
			return 0;
		if (b != '\n') {
			c->line_len++;
			return 0;
		}
		if (c->line_len == 0)
			c->chunk = HTTP_CHUNK_DONE;
		c->line_len = 0;
		return 0;
	case HTTP_CHUNK_DONE:
	case HTTP_CHUNK_BAD:
		break;
	}
	return 0;
}

/* Our reply is written: let evhttp free the connection (and the request
 * it was reading) as it would after its own error reply. */
static void
http_conn_refused_written(struct bufferevent *bev, void *arg)
{
	struct http_conn *c = arg;

	(void)bev;
	evhttp_connection_free(c->evcon);	/* runs http_conn_closed */
}

static void
http_conn_refused_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	http_conn_refused_written(bev, arg);
}

/* A chunk size evhttp would answer with 413 (it cannot tell a bad size
 * from a long body). Take the bufferevent from evhttp before its read
 * callback runs on these bytes (this runs first, as data is added), so it
 * never parses them, and answer 400 ourselves. */
static void
http_conn_refuse_chunked(struct http_conn *c, struct evbuffer *in)
{
	static const char body[] = "{\"type\":\"about:blank\",\"title\":\"Bad Request\","
	    "\"status\":400,\"detail\":\"malformed chunked body: a chunk size must be "
	    "1 to 15 hex digits and CRLF (no extensions), each chunk followed by CRLF\"}";

	c->chunk = HTTP_CHUNK_BAD;
	log_info("%s: fd=%d refused: malformed chunked body (400)",
	    c->lst->name, c->fd);
	bufferevent_setcb(c->bev, NULL, http_conn_refused_written,
	    http_conn_refused_event, c);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);	/* evhttp disables it while reading */
	evbuffer_drain(in, evbuffer_get_length(in));
	bufferevent_write(c->bev, "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: application/problem+json\r\nConnection: close\r\n",
	    sizeof("HTTP/1.1 400 Bad Request\r\n"
	    "Content-Type: application/problem+json\r\nConnection: close\r\n") - 1);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "Content-Length: %zu\r\n\r\n%s", sizeof(body) - 1, body);
}

static void
http_conn_scan_chunks(struct http_conn *c, struct evbuffer *in, size_t len)
{
	struct evbuffer_iovec v[8];
	struct evbuffer_ptr p;
	int n;

	while (c->chunk < HTTP_CHUNK_DONE && c->scan_pos < len) {
		if (evbuffer_ptr_set(in, &p, c->scan_pos, EVBUFFER_PTR_SET) == -1 ||
		    (n = evbuffer_peek(in, -1, &p, v, 8)) <= 0)
			return;
		for (int i = 0; i < n && i < 8 && c->chunk < HTTP_CHUNK_DONE; i++) {
			const unsigned char *s = v[i].iov_base;
			size_t j = 0;

			while (j < v[i].iov_len && c->chunk < HTTP_CHUNK_DONE) {
				/* skip data in one step, not byte by byte */
				if (c->chunk == HTTP_CHUNK_DATA &&
				    c->chunk_left > 1) {
					size_t k = v[i].iov_len - j;

					if (k > c->chunk_left - 1)
						k = (size_t)(c->chunk_left - 1);
					c->chunk_left -= k;
					j += k;
					c->scan_pos += k;
					continue;
				}
				c->scan_pos++;
				if (http_conn_chunk_byte(c, s[j++]) == -1) {
					http_conn_refuse_chunked(c, in);
					return;
				}
			}
		}
	}
}

static void
http_conn_scan(struct http_conn *c, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);

	http_conn_scan_header(c, in, len);
	if (c->state == HTTP_CONN_BODY && c->is_chunked)
		http_conn_scan_chunks(c, in, len);
}

static void
http_conn_input(struct evbuffer *in, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct http_conn *c = arg;

	c->scan_pos -= info->n_deleted < c->scan_pos ? info->n_deleted :
	    c->scan_pos;
	if (info->n_added == 0 || c->evcon == NULL)
		return;
	if (c->state == HTTP_CONN_IDLE)
		http_conn_set_state(c, HTTP_CONN_HEADER);
	http_conn_scan(c, in);
}

void
http_conn_new(struct http_listener *l, struct bufferevent *bev)
{
	struct conf *cf = l->srv->conf;
	struct http_conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->timer = evtimer_new(l->srv->base, http_conn_timer, c)) == NULL ||
	    evbuffer_add_cb(bufferevent_get_input(bev), http_conn_input,
	    c) == NULL)
		fatalx("http_conn_new: out of memory");
	c->lst = l;
	c->bev = bev;
	c->fd = -1;
	c->state = HTTP_CONN_IDLE;
	/* Bytes a client can make us hold before evhttp consumes them: one
	 * header block and one body (pipelined requests wait in the kernel). */
	bufferevent_setwatermark(bev, EV_READ, 0,
	    (size_t)(cf->max_header_size + cf->max_body_size + 4096));
	bufferevent_incref(bev);	/* until attached */
	event_active(c->timer, EV_TIMEOUT, 1);
	if (++l->nconns >= (unsigned)l->conf->max_connections)
		http_conn_listener_update(l);
}

/* ---------------------------------------------------------- requests */

struct http_conn *
http_conn_of(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	evutil_socket_t fd;

	if (evcon == NULL || (bev = evhttp_connection_get_bufferevent(evcon)) == NULL)
		return NULL;
	fd = bufferevent_getfd(bev);
	if (fd < 0 || (size_t)fd >= http_conn_nbyfd)
		return NULL;
	return http_conn_byfd[fd];
}

void
http_conn_dispatched(struct http_conn *c, struct http_req *hr)
{
	c->hr = hr;
	http_conn_set_state(c, HTTP_CONN_HANDLER);
}

static void
http_conn_reply_done(struct evhttp_request *req, void *arg)
{
	struct http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	(void)req;
	http_conn_out_total -= c->out_bytes;
	c->out_bytes = 0;
	http_conn_set_state(c, HTTP_CONN_IDLE);
	/* A pipelined request may already be waiting. */
	if (evbuffer_get_length(in) > 0) {
		http_conn_set_state(c, HTTP_CONN_HEADER);
		http_conn_scan(c, in);
	}
}

int
http_conn_reply(struct http_conn *c, struct evhttp_request *req, size_t bytes)
{
	size_t max = (size_t)c->lst->srv->conf->max_output_buffer;

	c->hr = NULL;
	if (bytes > HTTP_CONN_SMALL_REPLY && http_conn_out_total + bytes > max) {
		log_debug("%s: output budget full (%zu of %zu bytes queued)",
		    c->lst->name, http_conn_out_total, max);
		return -1;
	}
	http_conn_out_total += bytes;
	c->out_bytes = bytes;
	http_conn_set_state(c, HTTP_CONN_REPLY);
	evhttp_request_set_on_complete_cb(req, http_conn_reply_done, c);
	return 0;
}

void
http_conn_stream(struct http_conn *c, struct evhttp_request *req)
{
	http_conn_set_state(c, HTTP_CONN_REPLY);
	evhttp_request_set_on_complete_cb(req, http_conn_reply_done, c);
}

void
http_conn_stream_done(struct http_conn *c)
{
	c->hr = NULL;
}

struct http_req *
http_conn_req(struct http_conn *c)
{
	return c->hr;
}

void
http_conn_count_closing(struct http_conn *c)
{
	if (!c->is_closing_counted) {
		c->is_closing_counted = 1;
		c->lst->srv->closing++;
	}
}

/* RFC 9112 6.3: a Content-Length repeated (or beside Transfer-Encoding),
 * or a transfer coding other than chunked, frames the message differently
 * for different readers (request smuggling behind a proxy). evhttp reads
 * the first Content-Length; refuse and close instead. */
const char *
http_conn_framing_error(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evkeyval *kv;
	unsigned ncl = 0, nte = 0;
	const char *te = NULL;

	TAILQ_FOREACH(kv, h, next) {
		if (strcasecmp(kv->key, "Content-Length") == 0)
			ncl++;
		else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			nte++;
			te = kv->value;
		}
	}
	if (ncl > 1)
		return "more than one Content-Length header";
	if (nte > 1)
		return "more than one Transfer-Encoding header";
	if (nte == 1 && ncl == 1)
		return "both Content-Length and Transfer-Encoding";
	if (te != NULL && strcasecmp(te, "chunked") != 0)
		return "Transfer-Encoding other than chunked";
	return NULL;
}

void
http_conn_stopping(void)
{
	http_conn_is_stopping = 1;
}

void
http_conn_stop(struct server *srv)
{
	for (size_t i = 0; i < SERVER_NLISTENERS; i++) {
		struct http_listener *l = &srv->listeners[i];

		if (l->accept_timer != NULL)
			event_free(l->accept_timer);
		l->accept_timer = NULL;
	}
	while (!LIST_EMPTY(&http_conn_lingers))
		http_conn_linger_end(LIST_FIRST(&http_conn_lingers));
	free(http_conn_byfd);
	http_conn_byfd = NULL;
	http_conn_nbyfd = 0;
}

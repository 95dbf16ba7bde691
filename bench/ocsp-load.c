/*
 * bench/ocsp-load.c: OCSP responder load generator (libevent, plain HTTP).
 * POSTs one DER OCSP request over and over with CONCURRENCY clients, either
 * one TCP connection per request (HTTP/1.0, Connection: close: the way
 * `openssl ocsp -port` serves) or HTTP/1.1 keep-alive (-k), and checks every
 * answer is HTTP 200 holding a successful OCSPResponse.  Bounded by -n and -d.
 *
 * Output (stdout): one "result ok=N failed=N aborted=N ... rate=R p50_ms=
 * p99_ms= cpu_s= cpu_share= ..." line, then "failure kind=K count=N" lines.
 * aborted = requests in flight when -d ended the run (not failures).
 * Exit status 1 if any request failed.
 *
 * cc -O2 -Wall -Wextra -o ocsp-load ocsp-load.c \
 *     $(pkg-config --cflags --libs libevent openssl)
 */
#define _GNU_SOURCE	/* memmem */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "loadgen.h"
#include <openssl/err.h>
#include <openssl/ocsp.h>

#define OCSP_LOAD_MAX_TOTAL	10000000L
#define OCSP_LOAD_MAX_CONC	4096
#define OCSP_LOAD_MAX_RESPONSE	(256 * 1024)
#define OCSP_LOAD_MAX_REQUEST	(64 * 1024)
#define OCSP_LOAD_SAMPLE	256	/* responses decoded in full afterwards */

enum ocsp_load_fail {
	OCSP_LOAD_FAIL_CONNECT,
	OCSP_LOAD_FAIL_IO,
	OCSP_LOAD_FAIL_TIMEOUT,
	OCSP_LOAD_FAIL_TRUNCATED,
	OCSP_LOAD_FAIL_HTTP,
	OCSP_LOAD_FAIL_BODY,		/* not an OCSPResponse */
	OCSP_LOAD_FAIL_OCSP_STATUS,	/* responseStatus not successful */
	OCSP_LOAD_FAIL_CERT_STATUS,	/* sampled: not the expected cert status */
	OCSP_LOAD_FAIL_STATUS,		/* non-200 HTTP status */
	OCSP_LOAD_FAIL_MAX
};

static const char *ocsp_load_fail_names[OCSP_LOAD_FAIL_MAX] = {
	"connect", "io", "timeout", "truncated", "bad_http", "bad_body",
	"ocsp_status", "cert_status", "status"
};

struct ocsp_load_conn {
	struct bufferevent	*bev;
	double			 t0;		/* current request */
	int			 is_connected;
	int			 is_pending;	/* a request awaits its answer */
};

static struct {
	const char	*host;
	const char	*port;
	const char	*path;
	const char	*reqfile;
	const char	*expect;	/* good, revoked, unknown or NULL */
	int		 concurrency;
	long		 total;
	long		 max_seconds;
	int		 timeout;
	int		 is_keepalive;
	int		 verbose;
} opt = {
	"127.0.0.1", NULL, "/pki/ocsp", NULL, NULL, 16, 20000, 10, 10, 0, 0
};

static struct {
	struct event_base	*base;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			*req;		/* HTTP request with body */
	size_t			 reqlen;
	double			*lat_ms;
	long			 issued;
	long			 finished;
	long			 ok;
	long			 conns;
	long			 in_flight;	/* open connections */
	long			 aborted;
	long			 fail[OCSP_LOAD_FAIL_MAX];
	long			 status[600];
	unsigned char		*sample[OCSP_LOAD_SAMPLE];
	size_t			 samplelen[OCSP_LOAD_SAMPLE];
	int			 nsample;
	double			 t_start;
	double			 t_last;
	int			 is_stopping;
	int			 printed_errors;
} st;

static void ocsp_load_launch(void);
static int ocsp_load_conn_send(struct ocsp_load_conn *);

static int
ocsp_load_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
ocsp_load_percentile(const double *v, long n, double p)
{
	long rank;

	if (n == 0)
		return 0;
	rank = (long)(p / 100.0 * n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static void
ocsp_load_count_fail(enum ocsp_load_fail kind, const char *detail)
{
	st.fail[kind]++;
	if (opt.verbose && st.printed_errors < 10) {
		st.printed_errors++;
		fprintf(stderr, "ocsp-load: failure %s%s%s\n",
		    ocsp_load_fail_names[kind], detail ? ": " : "",
		    detail ? detail : "");
	}
}

static void
ocsp_load_conn_close(struct ocsp_load_conn *c)
{
	bufferevent_free(c->bev);
	free(c);
	st.in_flight--;
	if (!st.is_stopping)
		ocsp_load_launch();
	if (st.in_flight == 0 && (st.is_stopping || st.issued >= opt.total))
		event_base_loopbreak(st.base);
}

/* The pending request on c failed; the connection is closed. */
static void
ocsp_load_conn_fail(struct ocsp_load_conn *c, enum ocsp_load_fail kind,
    const char *detail)
{
	if (c->is_pending) {
		c->is_pending = 0;
		st.finished++;
		st.t_last = loadgen_now();
		ocsp_load_count_fail(kind, detail);
	}
	ocsp_load_conn_close(c);
}

/* Cheap check of every answer: an OCSPResponse with status successful. */
static enum ocsp_load_fail
ocsp_load_check_body(const unsigned char *body, size_t len)
{
	const unsigned char *p = body;
	OCSP_RESPONSE *resp;
	int status;

	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	if (resp == NULL) {
		ERR_clear_error();
		return OCSP_LOAD_FAIL_BODY;
	}
	status = OCSP_response_status(resp);
	OCSP_RESPONSE_free(resp);
	return status == OCSP_RESPONSE_STATUS_SUCCESSFUL ? OCSP_LOAD_FAIL_MAX :
	    OCSP_LOAD_FAIL_OCSP_STATUS;
}

/*
 * Full check of a sampled answer, after the timed phase: one SingleResponse
 * with the expected certificate status.  (Decoding the BasicOCSPResponse
 * decodes its certificates, ~0.3 ms each in OpenSSL 3.0: too slow to do for
 * every answer without the client becoming the bottleneck.)
 */
static int
ocsp_load_check_sample(const unsigned char *body, size_t len,
    const char **what)
{
	const unsigned char *p = body;
	OCSP_RESPONSE *resp = NULL;
	OCSP_BASICRESP *bs = NULL;
	OCSP_SINGLERESP *single;
	ASN1_GENERALIZEDTIME *rev, *thisupd, *nextupd;
	int status, reason, want, ok = 0;

	*what = "unparseable";
	if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
	    (bs = OCSP_response_get1_basic(resp)) == NULL)
		goto out;
	*what = "not one SingleResponse";
	if (OCSP_resp_count(bs) != 1 || (single = OCSP_resp_get0(bs, 0)) == NULL)
		goto out;
	status = OCSP_single_get0_status(single, &reason, &rev, &thisupd,
	    &nextupd);
	*what = OCSP_cert_status_str(status);
	if (strcmp(opt.expect, "good") == 0)
		want = V_OCSP_CERTSTATUS_GOOD;
	else if (strcmp(opt.expect, "revoked") == 0)
		want = V_OCSP_CERTSTATUS_REVOKED;
	else
		want = V_OCSP_CERTSTATUS_UNKNOWN;
	ok = status == want && thisupd != NULL;
out:
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ERR_clear_error();
	return ok;
}

/* Returns 1 if a whole response was handled (c may be gone). */
static int
ocsp_load_conn_try_response(struct ocsp_load_conn *c, int is_eof)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in), bodylen, consumed;
	unsigned char *buf, *body;
	enum ocsp_load_fail kind;
	int rc, status = 0, is_close = 0;
	double t;
	char detail[64];

	if (len > OCSP_LOAD_MAX_RESPONSE) {
		ocsp_load_conn_fail(c, OCSP_LOAD_FAIL_HTTP, "response too large");
		return 1;
	}
	if (len == 0) {
		if (!is_eof)
			return 0;
		if (!c->is_pending) {	/* keep-alive connection closed idle */
			ocsp_load_conn_close(c);
			return 1;
		}
		ocsp_load_conn_fail(c, c->is_connected ?
		    OCSP_LOAD_FAIL_TRUNCATED : OCSP_LOAD_FAIL_CONNECT,
		    "closed without a response");
		return 1;
	}
	if (!c->is_pending) {
		ocsp_load_conn_fail(c, OCSP_LOAD_FAIL_HTTP, "unsolicited bytes");
		return 1;
	}
	buf = evbuffer_pullup(in, -1);
	rc = loadgen_parse_response(buf, len, is_eof, &status, &body,
	    &bodylen, &consumed, &is_close);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		ocsp_load_conn_fail(c, is_eof ? OCSP_LOAD_FAIL_TRUNCATED :
		    OCSP_LOAD_FAIL_HTTP, "incomplete or malformed response");
		return 1;
	}
	t = loadgen_now();
	c->is_pending = 0;
	st.finished++;
	st.t_last = t;
	if (status != 200) {
		st.status[status]++;
		snprintf(detail, sizeof(detail), "HTTP %d", status);
		ocsp_load_count_fail(OCSP_LOAD_FAIL_STATUS, detail);
	} else if ((kind = ocsp_load_check_body(body, bodylen)) !=
	    OCSP_LOAD_FAIL_MAX) {
		ocsp_load_count_fail(kind, NULL);
	} else {
		st.lat_ms[st.ok++] = (t - c->t0) * 1000.0;
		if (st.nsample < OCSP_LOAD_SAMPLE && opt.expect != NULL) {
			if ((st.sample[st.nsample] = malloc(bodylen)) == NULL)
				loadgen_fatalx("out of memory");
			memcpy(st.sample[st.nsample], body, bodylen);
			st.samplelen[st.nsample++] = bodylen;
		}
	}
	evbuffer_drain(in, consumed);
	if (opt.is_keepalive && !is_close && !is_eof && !st.is_stopping &&
	    st.issued < opt.total && evbuffer_get_length(in) == 0) {
		if (ocsp_load_conn_send(c) == 0)
			return 1;
	}
	ocsp_load_conn_close(c);
	return 1;
}

static void
ocsp_load_conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	ocsp_load_conn_try_response(arg, 0);
}

static void
ocsp_load_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ocsp_load_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->is_connected = 1;
		return;
	}
	if (what & BEV_EVENT_EOF) {
		ocsp_load_conn_try_response(c, 1);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (!c->is_pending)	/* idle keep-alive: cannot happen */
			ocsp_load_conn_close(c);
		else
			ocsp_load_conn_fail(c, OCSP_LOAD_FAIL_TIMEOUT, NULL);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		/* An answer followed by a reset still counts. */
		if (c->is_pending &&
		    evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 &&
		    ocsp_load_conn_try_response(c, 1))
			return;
		ocsp_load_conn_fail(c, c->is_connected ? OCSP_LOAD_FAIL_IO :
		    OCSP_LOAD_FAIL_CONNECT,
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

/* Sends the next request on c: 0, or -1 when none is left to send. */
static int
ocsp_load_conn_send(struct ocsp_load_conn *c)
{
	if (st.is_stopping || st.issued >= opt.total)
		return -1;
	st.issued++;
	c->is_pending = 1;
	c->t0 = loadgen_now();
	if (bufferevent_write(c->bev, st.req, st.reqlen) != 0)
		loadgen_fatalx("bufferevent_write failed");
	return 0;
}

static void
ocsp_load_launch(void)
{
	struct ocsp_load_conn *c;
	struct timeval tv = { opt.timeout, 0 };
	int one = 1;

	while (!st.is_stopping && st.in_flight < opt.concurrency &&
	    st.issued < opt.total) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			loadgen_fatalx("out of memory");
		c->bev = bufferevent_socket_new(st.base, -1,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev == NULL)
			loadgen_fatalx("bufferevent_socket_new failed");
		bufferevent_setcb(c->bev, ocsp_load_conn_read_cb, NULL,
		    ocsp_load_conn_event_cb, c);
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		st.in_flight++;
		st.conns++;
		(void)ocsp_load_conn_send(c);	/* latency includes connect */
		if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
			loadgen_fatalx("bufferevent_enable failed");
		if (bufferevent_socket_connect(c->bev,
		    (struct sockaddr *)&st.addr, (int)st.addrlen) != 0) {
			/* Not through conn_fail: that would recurse here. */
			c->is_pending = 0;
			st.finished++;
			ocsp_load_count_fail(OCSP_LOAD_FAIL_CONNECT,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			bufferevent_free(c->bev);
			free(c);
			st.in_flight--;
			continue;
		}
		/* Small request, small answer: never wait for delayed ACKs. */
		setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
	}
	if (st.in_flight == 0)
		event_base_loopbreak(st.base);
}

static void
ocsp_load_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* -d is a hard bound: what is still in flight is abandoned. */
	st.is_stopping = 1;
	st.aborted = st.issued - st.finished;
	st.t_last = loadgen_now();
	event_base_loopbreak(st.base);
}

static void
ocsp_load_resolve(void)
{
	struct addrinfo hints, *res;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(opt.host, opt.port, &hints, &res);
	if (rc != 0)
		loadgen_fatalx("%s:%s: %s", opt.host, opt.port,
		    gai_strerror(rc));
	memcpy(&st.addr, res->ai_addr, res->ai_addrlen);
	st.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
}

/* Reads the DER request and wraps it in the HTTP request sent each time. */
static void
ocsp_load_build_request(void)
{
	FILE *f;
	unsigned char *der;
	const unsigned char *p;
	OCSP_REQUEST *oreq;
	size_t n, cap;
	int hl;

	if ((f = fopen(opt.reqfile, "rb")) == NULL)
		loadgen_fatalx("%s: %s", opt.reqfile, strerror(errno));
	if ((der = malloc(OCSP_LOAD_MAX_REQUEST)) == NULL)
		loadgen_fatalx("out of memory");
	n = fread(der, 1, OCSP_LOAD_MAX_REQUEST, f);
	if (ferror(f) || n == 0 || n == OCSP_LOAD_MAX_REQUEST)
		loadgen_fatalx("%s: empty, unreadable or too large",
		    opt.reqfile);
	fclose(f);
	p = der;
	if ((oreq = d2i_OCSP_REQUEST(NULL, &p, (long)n)) == NULL)
		loadgen_fatalx("%s: not a DER OCSP request", opt.reqfile);
	OCSP_REQUEST_free(oreq);
	cap = n + strlen(opt.path) + strlen(opt.host) + 256;
	if ((st.req = malloc(cap)) == NULL)
		loadgen_fatalx("out of memory");
	hl = snprintf(st.req, cap,
	    "POST %s HTTP/1.%d\r\n"
	    "Host: %s:%s\r\n"
	    "Content-Type: application/ocsp-request\r\n"
	    "Content-Length: %zu\r\n"
	    "%s"
	    "\r\n",
	    opt.path, opt.is_keepalive ? 1 : 0, opt.host, opt.port, n,
	    opt.is_keepalive ? "" : "Connection: close\r\n");
	if (hl < 0 || (size_t)hl + n > cap)
		loadgen_fatalx("request too long");
	memcpy(st.req + hl, der, n);
	st.reqlen = (size_t)hl + n;
	free(der);
}

static void
ocsp_load_usage(void)
{
	fprintf(stderr,
	    "usage: ocsp-load [-h HOST] -p PORT -f REQUEST.der [-u PATH] [-c CONCURRENCY]\n"
	    "                 [-n TOTAL] [-d MAX_SECONDS] [-T TIMEOUT] [-k]\n"
	    "                 [-e good|revoked|unknown] [-v]\n"
	    "  -u  request path (default /pki/ocsp)\n"
	    "  -c  connections in flight (default 16)\n"
	    "  -n  requests in all (default 20000, max %ld)\n"
	    "  -d  hard bound on the timed phase in seconds (default 10)\n"
	    "  -T  per-connection inactivity timeout in seconds (default 10)\n"
	    "  -k  HTTP/1.1 keep-alive; default: HTTP/1.0, one connection per request\n"
	    "  -e  also decode the first %d answers in full and expect this status\n"
	    "  -v  print the first failures on stderr\n",
	    OCSP_LOAD_MAX_TOTAL, OCSP_LOAD_SAMPLE);
	exit(2);
}

int
main(int argc, char **argv)
{
	struct event *deadline_ev;
	struct timeval tv;
	double cpu0, cpu1, elapsed;
	const char *what = NULL;
	long failed, i, n;
	int ch;

	loadgen_progname = "ocsp-load";

	while ((ch = getopt(argc, argv, "h:p:u:f:c:n:d:T:ke:v")) != -1) {
		switch (ch) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case 'u': opt.path = optarg; break;
		case 'f': opt.reqfile = optarg; break;
		case 'c':
			opt.concurrency = (int)loadgen_parse_long(optarg, "-c",
			    1, OCSP_LOAD_MAX_CONC);
			break;
		case 'n':
			opt.total = loadgen_parse_long(optarg, "-n", 1,
			    OCSP_LOAD_MAX_TOTAL);
			break;
		case 'd':
			opt.max_seconds = loadgen_parse_long(optarg, "-d", 1,
			    86400);
			break;
		case 'T':
			opt.timeout = (int)loadgen_parse_long(optarg, "-T", 1,
			    3600);
			break;
		case 'k': opt.is_keepalive = 1; break;
		case 'e':
			if (strcmp(optarg, "good") != 0 &&
			    strcmp(optarg, "revoked") != 0 &&
			    strcmp(optarg, "unknown") != 0)
				ocsp_load_usage();
			opt.expect = optarg;
			break;
		case 'v': opt.verbose = 1; break;
		default: ocsp_load_usage();
		}
	}
	if (optind != argc || opt.port == NULL || opt.reqfile == NULL)
		ocsp_load_usage();
	signal(SIGPIPE, SIG_IGN);
	ocsp_load_resolve();
	ocsp_load_build_request();
	if ((st.lat_ms = calloc((size_t)opt.total, sizeof(double))) == NULL)
		loadgen_fatalx("out of memory");
	if ((st.base = event_base_new()) == NULL)
		loadgen_fatalx("event_base_new failed");

	cpu0 = loadgen_cpu_seconds();
	st.t_start = st.t_last = loadgen_now();
	deadline_ev = evtimer_new(st.base, ocsp_load_deadline_cb, NULL);
	tv.tv_sec = opt.max_seconds;
	tv.tv_usec = 0;
	evtimer_add(deadline_ev, &tv);
	ocsp_load_launch();
	if (st.in_flight > 0)
		event_base_dispatch(st.base);
	cpu1 = loadgen_cpu_seconds();
	elapsed = st.t_last - st.t_start;
	if (elapsed <= 0)
		elapsed = 1e-9;

	for (i = 0; i < st.nsample; i++) {
		/* Samples are the first answers: sample i is lat_ms[i]. */
		if (!ocsp_load_check_sample(st.sample[i], st.samplelen[i],
		    &what)) {
			st.lat_ms[i] = -1;
			ocsp_load_count_fail(OCSP_LOAD_FAIL_CERT_STATUS, what);
		}
		free(st.sample[i]);
	}
	for (n = i = 0; i < st.ok; i++)
		if (st.lat_ms[i] >= 0)
			st.lat_ms[n++] = st.lat_ms[i];
	st.ok = n;
	qsort(st.lat_ms, (size_t)st.ok, sizeof(double), ocsp_load_cmp_double);
	failed = st.finished - st.ok;
	printf("result ok=%ld failed=%ld aborted=%ld not_started=%ld "
	    "connections=%ld elapsed_s=%.3f rate=%.1f p50_ms=%.3f "
	    "p99_ms=%.3f max_ms=%.3f cpu_s=%.3f cpu_share=%.3f "
	    "concurrency=%d mode=%s sampled=%d\n",
	    st.ok, failed, st.aborted, opt.total - st.issued, st.conns,
	    elapsed, st.ok / elapsed,
	    ocsp_load_percentile(st.lat_ms, st.ok, 50),
	    ocsp_load_percentile(st.lat_ms, st.ok, 99),
	    st.ok ? st.lat_ms[st.ok - 1] : 0.0, cpu1 - cpu0,
	    (cpu1 - cpu0) / elapsed, opt.concurrency,
	    opt.is_keepalive ? "keep-alive" : "conn-per-request", st.nsample);
	for (ch = 0; ch < OCSP_LOAD_FAIL_MAX; ch++) {
		if (ch == OCSP_LOAD_FAIL_STATUS || st.fail[ch] == 0)
			continue;
		printf("failure kind=%s count=%ld\n", ocsp_load_fail_names[ch],
		    st.fail[ch]);
	}
	for (ch = 0; ch < 600; ch++)
		if (st.status[ch] != 0)
			printf("failure kind=status_%d count=%ld\n", ch,
			    st.status[ch]);
	fflush(stdout);
	event_free(deadline_ev);
	if (st.aborted == 0)
		event_base_free(st.base);
	free(st.lat_ms);
	free(st.req);
	/* Requests cut off by -d are expected in a run bounded by time. */
	return failed > 0 ? 1 : 0;
}

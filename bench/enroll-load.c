/*
 * bench/enroll-load.c: EST simpleenroll load generator (libevent + OpenSSL).
 * Pre-generates one fresh P-256 key and CSR per enrollment, then keeps
 * CONCURRENCY enrollments in flight, each on a new TLS connection (no session
 * resumption), and prints throughput, latency percentiles, failures by kind
 * and its own CPU time.  It never retries and never exceeds -n or -d.
 *
 * Output (stdout): one line
 *   result ok=N failed=N aborted=N not_started=N elapsed_s=S rate=R
 *          p50_ms= p90_ms= p99_ms= max_ms= cpu_s= cpu_share= concurrency=
 * then "failure kind=K count=N" per kind (status_NNN per HTTP status).
 * Latencies run from connect() to the last byte of a 200 response, for
 * enrollments whose answer is a base64 PKCS#7 with one certificate (checked
 * after the timed phase).  cpu_s is this process's CPU over the timed phase.
 * Exit status 1 if anything failed or -d cut the run short.
 *
 * cc -O2 -Wall -Wextra -o enroll-load enroll-load.c \
 *     $(pkg-config --cflags --libs libevent libevent_openssl openssl)
 */
#define _GNU_SOURCE	/* memmem */
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
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
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "loadgen.h"
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ENROLL_MAX_TOTAL	200000
#define ENROLL_MAX_CONC		4096
#define ENROLL_MAX_RESPONSE	(1024 * 1024)

enum enroll_fail {
	ENROLL_FAIL_CONNECT,	/* TCP connect refused / unreachable */
	ENROLL_FAIL_TLS,	/* handshake or TLS record error */
	ENROLL_FAIL_IO,		/* other socket error */
	ENROLL_FAIL_TIMEOUT,	/* no progress for -T seconds */
	ENROLL_FAIL_TRUNCATED,	/* connection closed before a full response */
	ENROLL_FAIL_HTTP,	/* unparseable response */
	ENROLL_FAIL_BODY,	/* 200 but not a certs-only PKCS#7 with one cert */
	ENROLL_FAIL_STATUS,	/* non-200 status (counted per status too) */
	ENROLL_FAIL_MAX
};

static const char *enroll_fail_names[ENROLL_FAIL_MAX] = {
	"connect", "tls", "io", "timeout", "truncated", "bad_http", "bad_body",
	"status"
};

struct enroll_req {
	char		*buf;		/* the whole HTTP request */
	size_t		 len;
	unsigned char	*body;		/* body of a 200 response, checked later */
	size_t		 bodylen;
	EVP_PKEY	*key;		/* kept with -o */
	double		 lat_ms;
};

struct enroll_conn {
	struct bufferevent	*bev;
	size_t			 idx;		/* request index */
	double			 t0;
	int			 is_connected;
	int			 is_done;
};

static struct {
	const char	*host;
	const char	*port;
	const char	*project;
	const char	*token;
	const char	*label;
	const char	*cafile;
	int		 concurrency;
	long		 total;
	double		 max_seconds;
	int		 timeout;
	int		 wait_stdin;
	int		 verbose;
	const char	*out;
} opt = {
	"127.0.0.1", NULL, NULL, NULL, "bench", NULL, 32, 5000, 60.0, 30, 0, 0, NULL
};

static struct {
	struct event_base	*base;
	SSL_CTX			*ctx;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			 is_ip;
	struct enroll_req	*reqs;
	EVP_PKEY_CTX		*keygen;
	double			*lat_ms;	/* successful requests only */
	long			 issued;
	long			 finished;
	long			 got_200;
	long			 ok;
	long			 in_flight;
	long			 aborted;
	long			 fail[ENROLL_FAIL_MAX];
	long			 status[600];
	double			 t_start;
	double			 t_last;
	int			 is_stopping;
	struct event		*deadline_ev;
	int			 printed_errors;
	FILE			*out;		/* -o */
} st;

static void enroll_launch(void);

/* base64 without line breaks; caller frees. */
static char *
enroll_b64(const unsigned char *in, size_t len)
{
	char *out;

	out = malloc(4 * ((len + 2) / 3) + 1);
	if (out == NULL)
		loadgen_fatalx("out of memory");
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* One fresh P-256 key, a CSR for CN=<label> signed with it, the request. */
static void
enroll_make_request(struct enroll_req *r, const char *auth_b64)
{
	EVP_PKEY *key;
	X509_REQ *req;
	X509_NAME *name;
	unsigned char *der = NULL;
	char *csr_b64;
	int derlen, n;
	size_t cap;

	key = NULL;
	if (EVP_PKEY_generate(st.keygen, &key) <= 0)
		loadgen_fatalx("P-256 key generation failed");
	if ((req = X509_REQ_new()) == NULL ||
	    !X509_REQ_set_version(req, 0) ||
	    (name = X509_REQ_get_subject_name(req)) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)opt.label, -1, -1, 0) ||
	    !X509_REQ_set_pubkey(req, key) ||
	    !X509_REQ_sign(req, key, EVP_sha256()))
		loadgen_fatalx("building the CSR failed");
	derlen = i2d_X509_REQ(req, &der);
	if (derlen <= 0)
		loadgen_fatalx("i2d_X509_REQ failed");
	csr_b64 = enroll_b64(der, (size_t)derlen);
	cap = strlen(csr_b64) + strlen(opt.project) + strlen(opt.host) +
	    strlen(auth_b64) + 256;
	if ((r->buf = malloc(cap)) == NULL)
		loadgen_fatalx("out of memory");
	n = snprintf(r->buf, cap,
	    "POST /.well-known/est/%s/simpleenroll HTTP/1.1\r\n"
	    "Host: %s:%s\r\n"
	    "Authorization: Basic %s\r\n"
	    "Content-Type: application/pkcs10\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n"
	    "\r\n"
	    "%s",
	    opt.project, opt.host, opt.port, auth_b64, strlen(csr_b64),
	    csr_b64);
	if (n < 0 || (size_t)n >= cap)
		loadgen_fatalx("request too long");
	r->len = (size_t)n;
	free(csr_b64);
	OPENSSL_free(der);
	X509_REQ_free(req);
	if (opt.out != NULL)
		r->key = key;
	else
		EVP_PKEY_free(key);
}

static int
enroll_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double
enroll_percentile(const double *v, long n, double p)
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

/*
 * 1 if body base64-decodes (line breaks allowed) to a PKCS#7 signed-data
 * holding exactly one certificate, else 0.
 */
static int
enroll_check_body(const unsigned char *body, size_t len, EVP_PKEY *key, FILE *out)
{
	EVP_ENCODE_CTX *ectx;
	unsigned char *der;
	const unsigned char *p;
	PKCS7 *p7;
	int outl = 0, fin = 0, ok = 0;

	if (len == 0 || len > INT_MAX / 2)
		return 0;
	if ((der = malloc(len)) == NULL || (ectx = EVP_ENCODE_CTX_new()) == NULL)
		loadgen_fatalx("out of memory");
	EVP_DecodeInit(ectx);
	if (EVP_DecodeUpdate(ectx, der, &outl, body, (int)len) < 0 ||
	    EVP_DecodeFinal(ectx, der + outl, &fin) < 0)
		goto out;
	outl += fin;
	p = der;
	p7 = d2i_PKCS7(NULL, &p, outl);
	if (p7 == NULL)
		goto out;
	if (PKCS7_type_is_signed(p7) && p7->d.sign != NULL &&
	    p7->d.sign->cert != NULL && sk_X509_num(p7->d.sign->cert) == 1)
		ok = 1;
	/* -o: the key and its certificate, for clients that need many. */
	if (ok && out != NULL && key != NULL &&
	    (!PEM_write_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_X509(out, sk_X509_value(p7->d.sign->cert, 0))))
		loadgen_fatalx("cannot write the key and certificate");
	PKCS7_free(p7);
out:
	EVP_ENCODE_CTX_free(ectx);
	free(der);
	ERR_clear_error();
	return ok;
}

static void
enroll_count_fail(enum enroll_fail kind, const char *detail)
{
	st.fail[kind]++;
	if (opt.verbose && st.printed_errors < 10) {
		st.printed_errors++;
		fprintf(stderr, "enroll-load: failure %s%s%s\n",
		    enroll_fail_names[kind], detail ? ": " : "",
		    detail ? detail : "");
	}
}

static void
enroll_conn_free(struct enroll_conn *c)
{
	SSL *ssl;

	if (c->bev != NULL) {
		ssl = bufferevent_openssl_get_ssl(c->bev);
		/* No close_notify exchange: Connection: close, we are done. */
		if (ssl != NULL)
			SSL_set_quiet_shutdown(ssl, 1);
		bufferevent_free(c->bev);
	}
	free(c);
	st.in_flight--;
}

/* Called once per request, with the response complete or a failure. */
static void
enroll_conn_finish(struct enroll_conn *c, int is_ok)
{
	double t = loadgen_now();

	if (c->is_done)
		return;
	c->is_done = 1;
	st.finished++;
	st.t_last = t;
	if (is_ok) {
		st.reqs[c->idx].lat_ms = (t - c->t0) * 1000.0;
		st.got_200++;
	}
	enroll_conn_free(c);
	if (!st.is_stopping)
		enroll_launch();
	if (st.in_flight == 0 && (st.is_stopping || st.issued >= opt.total))
		event_base_loopbreak(st.base);
}

/* Returns 1 if the response was complete and has been handled. */
static int
enroll_conn_try_response(struct enroll_conn *c, int is_eof)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t len = evbuffer_get_length(in);
	unsigned char *buf, *body;
	size_t bodylen, consumed;
	int rc, status = 0, is_close;
	char detail[64];

	if (len > ENROLL_MAX_RESPONSE) {
		enroll_count_fail(ENROLL_FAIL_HTTP, "response too large");
		enroll_conn_finish(c, 0);
		return 1;
	}
	if (len == 0) {
		if (!is_eof)
			return 0;
		enroll_count_fail(c->is_connected ? ENROLL_FAIL_TRUNCATED :
		    ENROLL_FAIL_CONNECT, "closed without a response");
		enroll_conn_finish(c, 0);
		return 1;
	}
	buf = evbuffer_pullup(in, -1);
	rc = loadgen_parse_response(buf, len, is_eof, &status, &body, &bodylen,
	    &consumed, &is_close);
	if (rc == 0)
		return 0;
	if (rc < 0) {
		enroll_count_fail(is_eof ? ENROLL_FAIL_TRUNCATED : ENROLL_FAIL_HTTP,
		    "incomplete or malformed response");
		enroll_conn_finish(c, 0);
		return 1;
	}
	if (status != 200) {
		st.status[status]++;
		snprintf(detail, sizeof(detail), "HTTP %d", status);
		if (opt.verbose && st.printed_errors < 10)
			fprintf(stderr, "enroll-load: body: %.*s\n",
			    (int)(bodylen > 300 ? 300 : bodylen), body);
		enroll_count_fail(ENROLL_FAIL_STATUS, detail);
		enroll_conn_finish(c, 0);
		return 1;
	}
	/*
	 * Checked after the timed phase: OpenSSL 3.0 spends ~0.3 ms decoding
	 * each certificate, which would be charged to the generator's CPU.
	 */
	if ((st.reqs[c->idx].body = malloc(bodylen + 1)) == NULL)
		loadgen_fatalx("out of memory");
	memcpy(st.reqs[c->idx].body, body, bodylen);
	st.reqs[c->idx].bodylen = bodylen;
	enroll_conn_finish(c, 1);
	return 1;
}

static void
enroll_conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	enroll_conn_try_response(arg, 0);
}

static void
enroll_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct enroll_conn *c = arg;
	unsigned long e;
	char detail[256];

	if (what & BEV_EVENT_CONNECTED) {
		/* For a TLS bufferevent: the handshake is complete. */
		c->is_connected = 1;
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* With is_eof set, every response is either whole or broken. */
		enroll_conn_try_response(c, 1);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		enroll_count_fail(ENROLL_FAIL_TIMEOUT, NULL);
		enroll_conn_finish(c, 0);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		/* A peer that closes without close_notify after the body. */
		if (evbuffer_get_length(bufferevent_get_input(bev)) > 0 &&
		    enroll_conn_try_response(c, 1))
			return;
		e = bufferevent_get_openssl_error(bev);
		if (e != 0) {
			ERR_error_string_n(e, detail, sizeof(detail));
			enroll_count_fail(ENROLL_FAIL_TLS, detail);
		} else if (!c->is_connected) {
			enroll_count_fail(ENROLL_FAIL_CONNECT,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		} else {
			enroll_count_fail(ENROLL_FAIL_IO,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		}
		enroll_conn_finish(c, 0);
	}
}

static void
enroll_launch(void)
{
	struct enroll_conn *c;
	struct timeval tv = { opt.timeout, 0 };
	SSL *ssl;
	int one = 1;

	while (!st.is_stopping && st.in_flight < opt.concurrency &&
	    st.issued < opt.total) {
		if ((c = calloc(1, sizeof(*c))) == NULL)
			loadgen_fatalx("out of memory");
		if ((ssl = SSL_new(st.ctx)) == NULL)
			loadgen_fatalx("SSL_new failed");
		if (!st.is_ip)
			SSL_set_tlsext_host_name(ssl, opt.host);
		c->idx = (size_t)st.issued++;
		c->t0 = loadgen_now();
		c->bev = bufferevent_openssl_socket_new(st.base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (c->bev == NULL)
			loadgen_fatalx("bufferevent_openssl_socket_new failed");
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		bufferevent_setcb(c->bev, enroll_conn_read_cb, NULL,
		    enroll_conn_event_cb, c);
		bufferevent_set_timeouts(c->bev, &tv, &tv);
		st.in_flight++;
		if (bufferevent_write(c->bev, st.reqs[c->idx].buf,
		    st.reqs[c->idx].len) != 0 ||
		    bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
			loadgen_fatalx("bufferevent setup failed");
		if (bufferevent_socket_connect(c->bev,
		    (struct sockaddr *)&st.addr, (int)st.addrlen) != 0) {
			enroll_count_fail(ENROLL_FAIL_CONNECT,
			    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
			/* Not through finish: that would recurse into launch. */
			c->is_done = 1;
			st.finished++;
			enroll_conn_free(c);
			continue;
		}
		/*
		 * The socket exists now and has sent nothing yet.  Without
		 * TCP_NODELAY the request, written right after the client
		 * Finished, waits for the server's delayed ACK (~40 ms).
		 */
		setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
	}
	if (st.in_flight == 0)
		event_base_loopbreak(st.base);
}

static void
enroll_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	/* -d is a hard bound: what is still in flight is abandoned. */
	st.is_stopping = 1;
	st.aborted = st.in_flight;
	st.t_last = loadgen_now();
	event_base_loopbreak(st.base);
}

static void
enroll_resolve(void)
{
	struct addrinfo hints, *res;
	int rc;
	unsigned char tmp[16];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(opt.host, opt.port, &hints, &res);
	if (rc != 0)
		loadgen_fatalx("%s:%s: %s", opt.host, opt.port, gai_strerror(rc));
	memcpy(&st.addr, res->ai_addr, res->ai_addrlen);
	st.addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	st.is_ip = inet_pton(AF_INET, opt.host, tmp) == 1 ||
	    inet_pton(AF_INET6, opt.host, tmp) == 1;
}

static void
enroll_tls_init(void)
{
	X509_VERIFY_PARAM *vp;

	if ((st.ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		loadgen_fatalx("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(st.ctx, TLS1_2_VERSION);
	/* Every enrollment pays a full handshake, like a fresh device. */
	SSL_CTX_set_session_cache_mode(st.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(st.ctx, SSL_OP_NO_TICKET);
	if (opt.cafile != NULL) {
		if (!SSL_CTX_load_verify_locations(st.ctx, opt.cafile, NULL))
			loadgen_fatalx("%s: cannot load CA file", opt.cafile);
		SSL_CTX_set_verify(st.ctx, SSL_VERIFY_PEER, NULL);
		vp = SSL_CTX_get0_param(st.ctx);
		if (st.is_ip ? !X509_VERIFY_PARAM_set1_ip_asc(vp, opt.host) :
		    !X509_VERIFY_PARAM_set1_host(vp, opt.host, 0))
			loadgen_fatalx("cannot set the expected server name");
	} else
		SSL_CTX_set_verify(st.ctx, SSL_VERIFY_NONE, NULL);
}

static void
enroll_wait_stdin(const char *say)
{
	char line[64];

	printf("%s\n", say);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		loadgen_fatalx("stdin closed while waiting");
}

static void
enroll_usage(void)
{
	fprintf(stderr,
	    "usage: enroll-load [-h HOST] -p PORT -P PROJECT -t TOKEN [-c CONCURRENCY]\n"
	    "                   [-n TOTAL] [-d MAX_SECONDS] [-T TIMEOUT] [-u LABEL]\n"
	    "                   [--cafile ROOT.pem] [-W] [-v] [-o FILE]\n"
	    "  -c  enrollments in flight (default 32)\n"
	    "  -n  enrollments in all, one fresh P-256 key each (default 5000, max %d)\n"
	    "  -d  hard bound on the timed phase in seconds (default 60)\n"
	    "  -T  per-connection inactivity timeout in seconds (default 30)\n"
	    "  -u  Basic auth user / CSR CN (default bench)\n"
	    "  -W  print \"ready\" after pre-generation and wait for a line on stdin;\n"
	    "      print \"done\" after the results and wait again (for CPU sampling)\n"
	    "  -v  print the first failures on stderr\n"
	    "  -o  write each enrolled key and certificate (PEM) to FILE\n",
	    ENROLL_MAX_TOTAL);
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cafile", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 }
	};
	struct timeval tv;
	double t_gen, cpu0, cpu1, elapsed;
	char *userpass, *auth_b64;
	size_t n;
	long i, failed;
	int ch;

	loadgen_progname = "enroll-load";

	while ((ch = getopt_long(argc, argv, "h:p:P:t:c:n:d:T:u:Wvo:", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case 'P': opt.project = optarg; break;
		case 't': opt.token = optarg; break;
		case 'c':
			opt.concurrency = (int)loadgen_parse_long(optarg, "-c", 1,
			    ENROLL_MAX_CONC);
			break;
		case 'n':
			opt.total = loadgen_parse_long(optarg, "-n", 1,
			    ENROLL_MAX_TOTAL);
			break;
		case 'd':
			opt.max_seconds = (double)loadgen_parse_long(optarg, "-d", 1,
			    86400);
			break;
		case 'T':
			opt.timeout = (int)loadgen_parse_long(optarg, "-T", 1, 3600);
			break;
		case 'u': opt.label = optarg; break;
		case 'C': opt.cafile = optarg; break;
		case 'W': opt.wait_stdin = 1; break;
		case 'v': opt.verbose = 1; break;
		case 'o': opt.out = optarg; break;
		default: enroll_usage();
		}
	}
	if (optind != argc || opt.port == NULL || opt.project == NULL ||
	    opt.token == NULL)
		enroll_usage();
	if (opt.out != NULL && (st.out = fopen(opt.out, "w")) == NULL)
		loadgen_fatalx("%s: cannot create", opt.out);
	signal(SIGPIPE, SIG_IGN);
	enroll_resolve();
	enroll_tls_init();

	n = strlen(opt.label) + strlen(opt.token) + 2;
	if ((userpass = malloc(n)) == NULL)
		loadgen_fatalx("out of memory");
	snprintf(userpass, n, "%s:%s", opt.label, opt.token);
	auth_b64 = enroll_b64((unsigned char *)userpass, strlen(userpass));
	OPENSSL_cleanse(userpass, strlen(userpass));
	free(userpass);

	/* Keys and CSRs first, so the timed phase spends on TLS and HTTP. */
	t_gen = loadgen_now();
	if ((st.keygen = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(st.keygen) <= 0 ||
	    EVP_PKEY_CTX_set_group_name(st.keygen, "P-256") <= 0)
		loadgen_fatalx("cannot set up P-256 key generation");
	st.reqs = calloc((size_t)opt.total, sizeof(*st.reqs));
	st.lat_ms = calloc((size_t)opt.total, sizeof(*st.lat_ms));
	if (st.reqs == NULL || st.lat_ms == NULL)
		loadgen_fatalx("out of memory");
	for (i = 0; i < opt.total; i++)
		enroll_make_request(&st.reqs[i], auth_b64);
	free(auth_b64);
	EVP_PKEY_CTX_free(st.keygen);
	fprintf(stderr, "enroll-load: pre-generated %ld P-256 keys and CSRs "
	    "(one per enrollment, none reused) in %.2fs\n", opt.total,
	    loadgen_now() - t_gen);

	if ((st.base = event_base_new()) == NULL)
		loadgen_fatalx("event_base_new failed");
	if (opt.wait_stdin)
		enroll_wait_stdin("ready");

	cpu0 = loadgen_cpu_seconds();
	st.t_start = st.t_last = loadgen_now();
	st.deadline_ev = evtimer_new(st.base, enroll_deadline_cb, NULL);
	tv.tv_sec = (time_t)opt.max_seconds;
	tv.tv_usec = 0;
	evtimer_add(st.deadline_ev, &tv);
	enroll_launch();
	if (st.in_flight > 0)
		event_base_dispatch(st.base);
	cpu1 = loadgen_cpu_seconds();
	elapsed = st.t_last - st.t_start;
	if (elapsed <= 0)
		elapsed = 1e-9;

	for (i = 0; i < st.issued; i++) {
		if (st.reqs[i].body == NULL)
			continue;
		if (enroll_check_body(st.reqs[i].body, st.reqs[i].bodylen,
		    st.reqs[i].key, st.out)) {
			st.lat_ms[st.ok++] = st.reqs[i].lat_ms;
		} else {
			enroll_count_fail(ENROLL_FAIL_BODY,
			    "body is not a base64 PKCS#7 with one certificate");
		}
		free(st.reqs[i].body);
		EVP_PKEY_free(st.reqs[i].key);
	}
	if (st.out != NULL && fclose(st.out) != 0)
		loadgen_fatalx("%s: write failed", opt.out);
	qsort(st.lat_ms, (size_t)st.ok, sizeof(double), enroll_cmp_double);
	failed = st.finished - st.ok;
	printf("result ok=%ld failed=%ld aborted=%ld not_started=%ld "
	    "elapsed_s=%.3f rate=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f "
	    "max_ms=%.2f cpu_s=%.3f cpu_share=%.3f concurrency=%d\n",
	    st.ok, failed, st.aborted, opt.total - st.issued, elapsed,
	    st.ok / elapsed, enroll_percentile(st.lat_ms, st.ok, 50),
	    enroll_percentile(st.lat_ms, st.ok, 90),
	    enroll_percentile(st.lat_ms, st.ok, 99),
	    st.ok ? st.lat_ms[st.ok - 1] : 0.0, cpu1 - cpu0,
	    (cpu1 - cpu0) / elapsed, opt.concurrency);
	for (ch = 0; ch < ENROLL_FAIL_MAX; ch++) {
		if (ch == ENROLL_FAIL_STATUS || st.fail[ch] == 0)
			continue;
		printf("failure kind=%s count=%ld\n", enroll_fail_names[ch],
		    st.fail[ch]);
	}
	for (ch = 0; ch < 600; ch++)
		if (st.status[ch] != 0)
			printf("failure kind=status_%d count=%ld\n", ch,
			    st.status[ch]);
	fflush(stdout);
	if (opt.wait_stdin)
		enroll_wait_stdin("done");

	for (i = 0; i < opt.total; i++)
		free(st.reqs[i].buf);	/* bodies were freed when checked */
	free(st.reqs);
	free(st.lat_ms);
	event_free(st.deadline_ev);
	/* Abandoned connections still reference the base: leave it to exit. */
	if (st.aborted == 0)
		event_base_free(st.base);
	SSL_CTX_free(st.ctx);
	return failed > 0 || st.aborted > 0 ? 1 : 0;
}

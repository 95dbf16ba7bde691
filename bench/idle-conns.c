/* idle-conns.c: opens N mutual-TLS connections to one server, makes one
 * request on each (keep-alive), checks the answer is 200, and then holds
 * them all open until its standard input closes, so the caller can read
 * the server's memory with N idle connections. Prints "held N" on stdout
 * once all are open; when its input closes, makes one more request on each
 * (exit status 2 if the server has closed any). Each connection makes a full handshake (no client
 * session cache), as N distinct devices would. Blocking sockets, one
 * connection at a time: this measures memory, not speed.
 *
 * usage: idle-conns HOST PORT CAFILE CERT KEY N PATH */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "loadgen.h"

static int
idle_conns_connect(const struct addrinfo *ai)
{
	int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);

	if (fd == -1)
		loadgen_fatalx("socket: %s", strerror(errno));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1)
		loadgen_fatalx("connect: %s", strerror(errno));
	return fd;
}

/* One request on an open connection; exits unless the answer is 200. */
static void
idle_conns_request(SSL *ssl, const char *host, const char *path, long i)
{
	unsigned char buf[16384], *body;
	size_t len = 0, bodylen, consumed;
	int status, is_close, n, rc;
	char req[512];

	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
	    path, host);
	if (n < 0 || (size_t)n >= sizeof(req))
		loadgen_fatalx("path too long");
	if (SSL_write(ssl, req, n) != n)
		loadgen_fatalx("connection %ld: SSL_write failed", i);
	for (;;) {
		if (len == sizeof(buf))
			loadgen_fatalx("connection %ld: answer too long", i);
		n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - len));
		if (n > 0)
			len += (size_t)n;
		rc = loadgen_parse_response(buf, len, n <= 0, &status, &body,
		    &bodylen, &consumed, &is_close);
		if (rc == 1)
			break;
		if (rc == -1 || n <= 0)
			loadgen_fatalx("connection %ld: no complete answer", i);
	}
	if (status != 200)
		loadgen_fatalx("connection %ld: status %d: %.*s", i, status,
		    (int)(bodylen > 300 ? 300 : bodylen), (const char *)body);
	if (is_close)
		loadgen_fatalx("connection %ld: the server closes it", i);
}

int
main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct rlimit rl;
	SSL_CTX *ctx;
	SSL **conns;
	long n;
	char c;
	int rc;

	loadgen_progname = "idle-conns";
	if (argc != 8) {
		fprintf(stderr, "usage: idle-conns HOST PORT CAFILE CERT KEY N PATH\n");
		return 2;
	}
	n = loadgen_parse_long(argv[6], "N", 1, 1000000);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    (rlim_t)n + 16 > rl.rlim_cur)
		loadgen_fatalx("descriptor limit %llu is below N=%ld",
		    (unsigned long long)rl.rlim_cur, n);
	if ((rc = getaddrinfo(argv[1], argv[2], &hints, &ai)) != 0)
		loadgen_fatalx("%s:%s: %s", argv[1], argv[2], gai_strerror(rc));
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[4]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1)
		loadgen_fatalx("cannot set up the client TLS context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* IDLE_CONNS_TLS12=1: what TLS 1.2 devices cost. */
	if (getenv("IDLE_CONNS_TLS12") != NULL)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* The client's own buffers are not what is measured: keep them small. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if ((conns = calloc((size_t)n, sizeof(*conns))) == NULL)
		loadgen_fatalx("out of memory");
	for (long i = 0; i < n; i++) {
		int fd = idle_conns_connect(ai);

		if ((conns[i] = SSL_new(ctx)) == NULL ||
		    SSL_set_fd(conns[i], fd) != 1 ||
		    SSL_connect(conns[i]) != 1)
			loadgen_fatalx("connection %ld: TLS handshake failed", i);
		idle_conns_request(conns[i], argv[1], argv[7], i);
	}
	printf("held %ld\n", n);
	fflush(stdout);
	/* Hold until the caller is done measuring. */
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	/* Every connection must still be open, or the figure is wrong. */
	for (long i = 0; i < n; i++)
		idle_conns_request(conns[i], argv[1], argv[7], i);
	for (long i = 0; i < n; i++) {
		close(SSL_get_fd(conns[i]));
		SSL_free(conns[i]);
	}
	free(conns);
	SSL_CTX_free(ctx);
	freeaddrinfo(ai);
	return 0;
}

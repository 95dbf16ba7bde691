/* loadgen.c: what the bench load generators share: reading an HTTP/1.x
 * response off a raw TLS stream (they drive OpenSSL sockets themselves to
 * control handshakes and keep-alive exactly). Not part of quarklinkd. */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/err.h>

const char *loadgen_progname = "loadgen";

void
loadgen_fatalx(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", loadgen_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(2);
}

double
loadgen_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

double
loadgen_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

long
loadgen_parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		loadgen_fatalx("%s: must be a number in %ld..%ld", what, min, max);
	return v;
}

/*
 * Parses the HTTP response at the start of buf[0..len).  Returns 1 when it
 * is complete (*status, *body, *bodylen set; *consumed = bytes it occupies),
 * 0 when more bytes are needed, -1 when malformed or, with is_eof, cut
 * short.  A response without Content-Length or chunking ends at EOF.
 * A chunked body is de-chunked in place, once it is complete.  *is_close
 * says the server will close the connection after this response.
 */
int
loadgen_parse_response(unsigned char *buf, size_t len, int is_eof, int *status,
    unsigned char **body, size_t *bodylen, size_t *consumed, int *is_close)
{
	unsigned char *hdr_end = NULL, *line, *eol, *p, *in, *out, *end;
	size_t i, hdrlen;
	long long clen = -1;
	int is_chunked = 0, is_copy, maj, min;

	for (i = 0; i + 3 < len; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			hdr_end = buf + i + 4;
			break;
		}
	}
	if (hdr_end == NULL)
		return is_eof ? -1 : 0;
	hdrlen = (size_t)(hdr_end - buf);
	if (sscanf((char *)buf, "HTTP/%d.%d %d", &maj, &min, status) != 3 ||
	    *status < 100 || *status > 599)
		return -1;
	*is_close = maj == 1 && min == 0;
	for (line = buf; line < hdr_end - 2; line = eol + 2) {
		eol = memchr(line, '\r', (size_t)(hdr_end - line));
		if (eol == NULL)
			break;
		if ((size_t)(eol - line) > 15 &&
		    strncasecmp((char *)line, "Content-Length:", 15) == 0) {
			char tmp[32];
			size_t n = (size_t)(eol - line) - 15;

			if (n >= sizeof(tmp))
				return -1;
			memcpy(tmp, line + 15, n);
			tmp[n] = '\0';
			clen = strtoll(tmp, NULL, 10);
			if (clen < 0)
				return -1;
		} else if ((size_t)(eol - line) > 11 &&
		    strncasecmp((char *)line, "Connection:", 11) == 0) {
			if (memmem(line, (size_t)(eol - line), "close", 5))
				*is_close = 1;
			else if (memmem(line, (size_t)(eol - line), "eep-alive", 9))
				*is_close = 0;
		} else if ((size_t)(eol - line) > 18 &&
		    strncasecmp((char *)line, "Transfer-Encoding:", 18) == 0) {
			if (memmem(line, (size_t)(eol - line), "chunked", 7))
				is_chunked = 1;
		}
	}
	/* RFC 9112 6.3: 1xx, 204 and 304 end with the header block. */
	if ((*status >= 100 && *status < 200) || *status == 204 || *status == 304) {
		*body = hdr_end;
		*bodylen = 0;
		*consumed = hdrlen;
		return 1;
	}
	if (is_chunked) {
		/* Pass 0 checks the body is all there, pass 1 de-chunks it. */
		end = buf + len;
		for (is_copy = 0; is_copy < 2; is_copy++) {
			in = out = hdr_end;
			for (;;) {
				unsigned long sz;
				char *e;

				p = memmem(in, (size_t)(end - in), "\r\n", 2);
				if (p == NULL)
					return is_eof ? -1 : 0;
				sz = strtoul((char *)in, &e, 16);
				if ((unsigned char *)e == in)
					return -1;
				in = p + 2;
				if ((size_t)(end - in) < sz + 2)
					return is_eof ? -1 : 0;
				if (sz == 0)
					break;	/* no trailers expected */
				if (is_copy)
					memmove(out, in, sz);
				out += sz;
				in += sz + 2;
			}
		}
		*body = hdr_end;
		*bodylen = (size_t)(out - hdr_end);
		*consumed = (size_t)(in + 2 - buf);
		return 1;
	}
	if (clen >= 0) {
		if ((long long)(len - hdrlen) < clen)
			return is_eof ? -1 : 0;
		*body = hdr_end;
		*bodylen = (size_t)clen;
		*consumed = hdrlen + (size_t)clen;
		return 1;
	}
	if (!is_eof)
		return 0;
	*body = hdr_end;
	*bodylen = len - hdrlen;
	*consumed = len;
	return 1;
}


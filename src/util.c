/* util.c: bounded parsing and file helpers. */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "xmalloc.h"

long long
util_strtonum(const char *s, long long min, long long max, const char **errstr)
{
	long long v;
	char *end;

	*errstr = NULL;
	if (s == NULL || *s == '\0' || isspace((unsigned char)*s)) {
		*errstr = "invalid";
		return 0;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0') {
		*errstr = "invalid";
		return 0;
	}
	if ((errno == ERANGE && v == LLONG_MIN) || v < min) {
		*errstr = "too small";
		return 0;
	}
	if ((errno == ERANGE && v == LLONG_MAX) || v > max) {
		*errstr = "too large";
		return 0;
	}
	return v;
}

char *
util_path_join(const char *dir, const char *path)
{
	size_t n;
	char *out;

	if (path[0] == '/' || dir == NULL || dir[0] == '\0')
		return xstrdup(path);
	n = strlen(dir) + 1 + strlen(path) + 1;
	out = xmalloc(n);
	snprintf(out, n, "%s/%s", dir, path);
	return out;
}

int
util_read_file(const char *path, size_t max, char **out, size_t *outlen,
    const char **errstr)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*errstr = strerror(errno);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		*errstr = "not a regular file";
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		*errstr = "file too large";
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			*errstr = n == 0 ? "short read" : strerror(errno);
			goto fail;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	*out = buf;
	if (outlen != NULL)
		*outlen = len;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

void
util_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

char *
util_trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

int
util_parse_listen(const char *s, struct sockaddr_storage *ss, int *len)
{
	char host[64];
	const char *colon = strrchr(s, ':'), *errstr;
	size_t hlen;
	long long port;

	if (colon == NULL || (hlen = (size_t)(colon - s)) >= sizeof(host))
		return -1;
	port = util_strtonum(colon + 1, 0, 65535, &errstr);
	if (errstr != NULL)
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -1;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	}
	return 0;
}

/* Length of the valid sequence at s (0 if invalid). */
static size_t
util_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned int c = s[0], cp;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void
util_url_base(char *s)
{
	char *end = s + strlen(s);

	while (end > s && end[-1] == '/')
		*--end = '\0';
}

int
util_utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, l;

	while (i < n) {
		if ((l = util_utf8_seq(s + i, n - i)) == 0)
			return 0;
		i += l;
	}
	return 1;
}

void
util_utf8_scrub(char *s)
{
	size_t n = strlen(s), i = 0, l;

	while (i < n) {
		if ((l = util_utf8_seq((unsigned char *)s + i, n - i)) == 0) {
			s[i++] = '?';
			continue;
		}
		i += l;
	}
}

void
util_public_addr(const char *host, unsigned port, const char *names,
    char *out, size_t len)
{
	unsigned char a6[16];
	char name[256];
	size_t n;
	int is_v6 = strcmp(host, "[::]") == 0;

	if (!is_v6 && strcmp(host, "0.0.0.0") != 0) {
		snprintf(out, len, "%s:%u", host, port);
		return;
	}
	names += strspn(names, ", ");
	n = strcspn(names, ", ");
	if (n == 0 || n >= sizeof(name)) {
		snprintf(out, len, "%s:%u", is_v6 ? "[::1]" : "127.0.0.1", port);
		return;
	}
	memcpy(name, names, n);
	name[n] = '\0';
	snprintf(out, len, inet_pton(AF_INET6, name, a6) == 1 ? "[%s]:%u" :
	    "%s:%u", name, port);
}

unsigned char *
util_base64_decode(const char *in, size_t n, size_t *outlen)
{
	char *clean = xmalloc(n + 1);
	unsigned char *out = NULL;
	size_t m = 0, pad = 0;
	int len;

	for (size_t i = 0; i < n; i++)
		if (in[i] != '\r' && in[i] != '\n' && in[i] != ' ' && in[i] != '\t')
			clean[m++] = in[i];
	clean[m] = '\0';
	if (m == 0 || m % 4 != 0)
		goto out;
	pad = (clean[m - 1] == '=') + (clean[m - 2] == '=');
	out = xmalloc(m / 4 * 3);
	if ((len = EVP_DecodeBlock(out, (unsigned char *)clean, (int)m)) < 0 ||
	    (size_t)len < pad) {
		free(out);
		out = NULL;
		goto out;
	}
	*outlen = (size_t)len - pad;
out:
	free(clean);
	return out;
}

int
util_media_type_is(const char *value, const char *type)
{
	size_t n = strlen(type);

	if (value == NULL || strncasecmp(value, type, n) != 0)
		return 0;
	for (value += n; *value == ' ' || *value == '\t'; value++)
		;
	return *value == '\0' || *value == ';';
}

void
util_sha256(const void *data, size_t len, unsigned char out[32])
{
	if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1)
		fatalx("SHA-256: %zu bytes: digest failed", len);
}

/* agent_util.c: the file and encoding helpers every module uses. */
#include "agent_util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent.h"

char *
agent_path(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) == -1)
		return NULL;
	return p;
}

void
agent_sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (copy == NULL)
		return;
	if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY)) != -1) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int
agent_write_atomic(const char *path, const void *data, size_t len, int mode)
{
	char *tmp = NULL;
	const char *p = data;
	int fd = -1, rc = -1;
	ssize_t n;

	if (asprintf(&tmp, "%s.tmp", path) == -1) {
		tmp = NULL;
		goto out;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) == -1) {
		agent_err("%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			agent_err("%s: %s", tmp, strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1 || close(fd) == -1) {
		fd = -1;
		agent_err("%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		agent_err("%s: %s", path, strerror(errno));
		goto out;
	}
	agent_sync_dir(path);
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (rc == -1 && tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	return rc;
}

int
agent_read_file(const char *path, size_t max, char **out, size_t *lenp)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if ((buf = malloc(max + 2)) == NULL) {
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, buf + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			n = -1;
			break;
		}
	}
	close(fd);
	if (n == -1) {
		free(buf);
		return -1;
	}
	buf[len] = '\0';
	*out = buf;
	if (lenp != NULL)
		*lenp = len;
	return 0;
}

char *
agent_b64_encode(const unsigned char *in, size_t len)
{
	char *out;

	if (len > (1u << 30) || (out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

unsigned char *
agent_b64_decode(const char *in, size_t len, size_t *outlen)
{
	EVP_ENCODE_CTX *ctx;
	unsigned char *out;
	int n1 = 0, n2 = 0;

	if (len > (1u << 30) || (out = malloc(len / 4 * 3 + 4)) == NULL)
		return NULL;
	if ((ctx = EVP_ENCODE_CTX_new()) == NULL) {
		free(out);
		return NULL;
	}
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)in, (int)len) == -1 ||
	    EVP_DecodeFinal(ctx, out + n1, &n2) == -1) {
		EVP_ENCODE_CTX_free(ctx);
		free(out);
		return NULL;
	}
	EVP_ENCODE_CTX_free(ctx);
	*outlen = (size_t)(n1 + n2);
	return out;
}

void
agent_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int
agent_time_parse(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;

	/* RFC 3339 in UTC: seconds, an optional fraction, "Z" or "+00:00". */
	memset(&tm, 0, sizeof(tm));
	if (strlen(s) > 40 || (end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL ||
	    end - s != 19)
		return -1;
	if (*end == '.') {
		end++;
		if (*end < '0' || *end > '9')
			return -1;
		while (*end >= '0' && *end <= '9')
			end++;
	}
	if (strcmp(end, "Z") != 0 && strcmp(end, "+00:00") != 0)
		return -1;
	*out = timegm(&tm);
	return 0;
}

void
agent_time_format(time_t t, char *out, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

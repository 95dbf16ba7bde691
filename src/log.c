/* log.c: log lines "TIME LEVEL message" to stderr, a file (reopened on SIGHUP
 * for rotation) or syslog. Must never block on anything but the local write. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

static enum log_level	log_min = LOG_LEVEL_INFO;
static int		log_use_syslog;
static int		log_fd = STDERR_FILENO;
static char		log_path[4096];

static const char *const log_names[] = { "debug", "info", "warn", "error" };
static const int log_syslog_prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

static int
log_open_file(void)
{
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd == -1)
		return -1;
	if (log_fd != STDERR_FILENO && log_fd != -1)
		close(log_fd);
	log_fd = fd;
	return 0;
}

int
log_init(enum log_level level, const char *target, const char *file,
    const char **errstr)
{
	log_min = level;
	if (file != NULL && file[0] != '\0') {
		if (strlen(file) >= sizeof(log_path)) {
			*errstr = "log_file path too long";
			return -1;
		}
		memcpy(log_path, file, strlen(file) + 1);
		if (log_open_file() == -1) {
			*errstr = strerror(errno);
			return -1;
		}
		log_use_syslog = 0;
		return 0;
	}
	if (target != NULL && strcmp(target, "syslog") == 0) {
		openlog("quarklinkd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_use_syslog = 1;
	}
	return 0;
}

int
log_reopen(void)
{
	if (log_path[0] == '\0')
		return 0;
	return log_open_file();
}

void
log_set_level(enum log_level level)
{
	log_min = level;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

static void log_vwrite(enum log_level, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

/* "YYYY-MM-DDTHH:MM:SS." of the current second: gmtime and its formatting
 * once a second, not once a line (the access log writes one per request).
 * Per thread: worker threads log too. */
static size_t
log_stamp(char *out, size_t len)
{
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char cached[32];
	static _Thread_local size_t cached_len;
	struct timeval tv;
	struct tm tm;
	unsigned ms;
	int n;

	gettimeofday(&tv, NULL);
	if (tv.tv_sec != cached_sec) {
		gmtime_r(&tv.tv_sec, &tm);
		n = snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d.",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		if (n < 0 || (size_t)n >= sizeof(cached))
			n = 0;
		cached_len = (size_t)n;
		cached_sec = tv.tv_sec;
	}
	if (len < cached_len + 5)
		return 0;
	memcpy(out, cached, cached_len);
	ms = (unsigned)(tv.tv_usec / 1000);
	out[cached_len] = (char)('0' + ms / 100);
	out[cached_len + 1] = (char)('0' + ms / 10 % 10);
	out[cached_len + 2] = (char)('0' + ms % 10);
	out[cached_len + 3] = 'Z';
	out[cached_len + 4] = ' ';
	return cached_len + 5;
}

static void
log_vwrite(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char line[2200];
	size_t n, room, len;
	int w;

	if (level < log_min)
		return;
	if (log_use_syslog) {
		char msg[2048];

		vsnprintf(msg, sizeof(msg), fmt, ap);
		syslog(log_syslog_prio[level], "%s%s%s", msg,
		    suffix ? ": " : "", suffix ? suffix : "");
		return;
	}
	/* Formatted in place, once: stamp, level, message, suffix, LF. */
	n = log_stamp(line, sizeof(line));
	len = strlen(log_names[level]);
	memcpy(line + n, log_names[level], len);
	n += len;
	line[n++] = ' ';
	room = sizeof(line) - n - 1;	/* the LF always fits */
	w = vsnprintf(line + n, room, fmt, ap);
	if (w < 0)
		return;
	n += (size_t)w < room ? (size_t)w : room - 1;
	if (suffix != NULL) {
		len = strlen(suffix);
		if (n + 2 + len < sizeof(line) - 1) {
			memcpy(line + n, ": ", 2);
			memcpy(line + n + 2, suffix, len);
			n += 2 + len;
		}
	}
	line[n++] = '\n';
	/* One write(2) per line keeps lines whole in an O_APPEND file. */
	if (write(log_fd, line, n) == -1) {
		/* nowhere left to report it */
	}
}

#define LOG_DEFINE(name, level)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_vwrite(level, NULL, fmt, ap);			\
	va_end(ap);						\
}
LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG)
LOG_DEFINE(log_info, LOG_LEVEL_INFO)
LOG_DEFINE(log_warnx, LOG_LEVEL_WARN)

void
log_warn(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, err, fmt, ap);
	va_end(ap);
}

void
log_openssl(const char *fmt, ...)
{
	char err[256] = "unknown OpenSSL error";
	unsigned long e, last = 0;
	va_list ap;

	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last != 0)
		ERR_error_string_n(last, err, sizeof(err));
	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, err, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	const char *err = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

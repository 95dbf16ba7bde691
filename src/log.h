/* log.h: leveled logging to stderr, a file or syslog. The only place that
 * formats log lines; it never logs secrets it is not handed. */
#ifndef QL_LOG_H
#define QL_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

#define QL_PRINTF(a, b) __attribute__((format(printf, a, b)))

int	log_init(enum log_level, const char *target, const char *file,
	    const char **errstr) __attribute__((warn_unused_result));
int	log_reopen(void);
void	log_set_level(enum log_level);
int	log_level_parse(const char *, enum log_level *);
int	log_enabled(enum log_level);

void	log_debug(const char *, ...) QL_PRINTF(1, 2);
void	log_info(const char *, ...) QL_PRINTF(1, 2);
void	log_warn(const char *, ...) QL_PRINTF(1, 2);	/* appends strerror(errno) */
void	log_warnx(const char *, ...) QL_PRINTF(1, 2);
void	log_openssl(const char *, ...) QL_PRINTF(1, 2);	/* appends and clears the OpenSSL error queue */
__attribute__((noreturn)) void fatal(const char *, ...) QL_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *, ...) QL_PRINTF(1, 2);

#endif

/* loadgen.h: shared by bench/enroll-load.c and bench/ocsp-load.c. */
#ifndef QL_BENCH_LOADGEN_H
#define QL_BENCH_LOADGEN_H

#include <stddef.h>

extern const char *loadgen_progname;	/* prefix of error messages */

/* Prints the message and the OpenSSL error queue, exits 2. */
void	loadgen_fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
double	loadgen_now(void);		/* monotonic seconds */
double	loadgen_cpu_seconds(void);	/* user + system of this process */
/* A whole decimal number in [min, max], else loadgen_fatalx naming what. */
long	loadgen_parse_long(const char *s, const char *what, long min, long max);

/* Parses the HTTP response at the start of buf[0..len): 1 complete, 0 more
 * bytes needed, -1 malformed (or cut short at EOF). See loadgen.c. */
int	loadgen_parse_response(unsigned char *buf, size_t len, int is_eof,
	    int *status, unsigned char **body, size_t *bodylen, size_t *consumed,
	    int *is_close);

#endif

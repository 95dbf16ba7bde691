/* loadgen.h: shared by bench/enroll-load.c and bench/ocsp-load.c. */
#ifndef QL_BENCH_LOADGEN_H
#define QL_BENCH_LOADGEN_H

#include <stddef.h>

/* Parses the HTTP response at the start of buf[0..len): 1 complete, 0 more
 * bytes needed, -1 malformed (or cut short at EOF). See loadgen.c. */
int	loadgen_parse_response(unsigned char *buf, size_t len, int is_eof,
	    int *status, unsigned char **body, size_t *bodylen, size_t *consumed,
	    int *is_close);

#endif

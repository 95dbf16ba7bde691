/* range.h: one HTTP byte range (RFC 9110 14.1.2) against a known size.
 * Pure logic, unit tested (tests/unit/check_range.c). */
#ifndef QL_RANGE_H
#define QL_RANGE_H

enum range_result {
	RANGE_IGNORE,		/* absent, malformed or several: send it all */
	RANGE_OK,		/* [from, to], both inclusive, within the size */
	RANGE_UNSATISFIABLE,	/* 416 */
};

/* The Range header h (or NULL) for a representation of size bytes. */
enum range_result range_parse(const char *h, long long size, long long *from,
		    long long *to);

#endif

/* range.c: the single "bytes=" range of a Range header. Several ranges are
 * ignored (a 200 is always a correct answer to them); numbers are digits
 * only, through util_strtonum, so signs, spaces and overflow make the
 * header invalid. */
#include "range.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define RANGE_NUM_MAX	24

enum range_result
range_parse(const char *h, long long size, long long *from, long long *to)
{
	const char *errstr = NULL, *dash;
	char a[RANGE_NUM_MAX], b[RANGE_NUM_MAX];
	size_t na, nb;
	long long last;

	if (h == NULL || strncasecmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
		return RANGE_IGNORE;
	h += 6;
	if ((dash = strchr(h, '-')) == NULL)
		return RANGE_IGNORE;
	na = (size_t)(dash - h);
	nb = strlen(dash + 1);
	if (na >= sizeof(a) || nb >= sizeof(b) || (na == 0 && nb == 0))
		return RANGE_IGNORE;
	memcpy(a, h, na);
	a[na] = '\0';
	memcpy(b, dash + 1, nb + 1);
	if (strspn(a, "0123456789") != na || strspn(b, "0123456789") != nb)
		return RANGE_IGNORE;	/* strtoll would take a sign or spaces */
	if (na == 0) {			/* bytes=-N: the last N bytes */
		last = util_strtonum(b, 0, INT64_MAX, &errstr);
		if (errstr != NULL)
			return RANGE_IGNORE;
		if (last == 0 || size == 0)
			return RANGE_UNSATISFIABLE;
		*from = last >= size ? 0 : size - last;
		*to = size - 1;
		return RANGE_OK;
	}
	*from = util_strtonum(a, 0, INT64_MAX, &errstr);
	if (errstr != NULL)
		return RANGE_IGNORE;
	*to = size - 1;
	if (nb > 0) {
		last = util_strtonum(b, 0, INT64_MAX, &errstr);
		if (errstr != NULL || last < *from)
			return RANGE_IGNORE;
		if (last < *to)
			*to = last;
	}
	return *from >= size ? RANGE_UNSATISFIABLE : RANGE_OK;
}

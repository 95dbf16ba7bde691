/* route.h: the route table lookup. Pure logic (no I/O) so it is unit
 * tested on its own: path + method + listener -> handler, or 404/405. */
#ifndef QL_ROUTE_H
#define QL_ROUTE_H

#include <stddef.h>

struct http_req;
typedef void (*route_handler)(struct http_req *);

/* Listener bits: a route is served only where its mask says. */
#define ROUTE_ADMIN	0x1
#define ROUTE_DEVICE	0x2
#define ROUTE_PKI	0x4

#define ROUTE_MAX_PARAMS 4

/* Patterns are literal segments, "{name}" for one segment, or a final "*"
 * for the rest of the path. methods is a mask of evhttp_cmd_type bits. */
struct route {
	const char	*pattern;
	unsigned	 methods;
	unsigned	 listeners;
	route_handler	 handler;
	int		 role;		/* enum auth_role; 0: no API auth */
	/* The query parameters the handler reads, NULL-terminated (at most
	 * ROUTE_MAX_QUERY); NULL: none. Anything else is refused before the
	 * handler runs, so a filter is never silently dropped. */
	const char *const *query;
};

#define ROUTE_MAX_QUERY 32

/* Or'ed into role: only callers that see every project may call it (a
 * caller limited to some projects must not create or survey the rest). */
#define ROUTE_GLOBAL	0x100
#define ROUTE_ROLE(r)	((r) & 0xff)

struct route_match {
	const struct route	*route;
	size_t			 nparams;
	const char		*param[ROUTE_MAX_PARAMS];	/* into the path */
	size_t			 param_len[ROUTE_MAX_PARAMS];
	unsigned		 allowed;	/* on ROUTE_METHOD_NOT_ALLOWED */
};

enum route_result { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_METHOD_NOT_ALLOWED };

enum route_result route_lookup(const struct route *, size_t n,
		    unsigned listener, unsigned method, const char *path,
		    struct route_match *);
/* What is wrong with a query string, for a 400 that names it. */
enum route_query_result {
	ROUTE_QUERY_OK,
	ROUTE_QUERY_NO_NAME,	/* "&&", "&=x", a leading or trailing "&" */
	ROUTE_QUERY_NO_VALUE,	/* "x" without "=": libevent's parser fails */
	ROUTE_QUERY_NUL,	/* a value holding %00 would be cut short */
	ROUTE_QUERY_UNKNOWN,	/* a name the route does not declare */
	ROUTE_QUERY_REPEATED,	/* which of two values counts is ambiguous */
};

/* Check a raw query string (NULL or "" for none) against a route's allowed
 * names. Names are compared as sent: libevent does not percent-decode them.
 * On failure the parameter's name, printable ASCII and truncated, is copied
 * into name. */
enum route_query_result route_query_check(const char *const *allowed,
		    const char *query, char *name, size_t namelen);

/* "GET, HEAD, POST" for an Allow header; GET implies HEAD. */
void		  route_allow_header(unsigned methods, char *buf, size_t len);

#endif

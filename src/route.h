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
};

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
/* "GET, HEAD, POST" for an Allow header; GET implies HEAD. */
void		  route_allow_header(unsigned methods, char *buf, size_t len);

#endif

/* route.c: match a request path against the route table. */
#include "route.h"

#include <stdio.h>
#include <string.h>

#include <event2/http.h>

static int
route_match_pattern(const char *pat, const char *path, struct route_match *m)
{
	m->nparams = 0;
	while (*pat == '/' && *path == '/') {
		const char *pe, *se;
		size_t plen, slen;

		pat++;
		path++;
		if (strcmp(pat, "*") == 0)
			return 1;
		pe = strchr(pat, '/');
		se = strchr(path, '/');
		plen = pe ? (size_t)(pe - pat) : strlen(pat);
		slen = se ? (size_t)(se - path) : strlen(path);
		if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
			if (slen == 0 || m->nparams == ROUTE_MAX_PARAMS)
				return 0;
			m->param[m->nparams] = path;
			m->param_len[m->nparams++] = slen;
		} else if (plen != slen || memcmp(pat, path, plen) != 0) {
			return 0;
		}
		pat += plen;
		path += slen;
	}
	return *pat == '\0' && *path == '\0';
}

enum route_result
route_lookup(const struct route *table, size_t n, unsigned listener,
    unsigned method, const char *path, struct route_match *m)
{
	unsigned allowed = 0;

	memset(m, 0, sizeof(*m));
	if (method == EVHTTP_REQ_HEAD)
		method = EVHTTP_REQ_GET;
	for (size_t i = 0; i < n; i++) {
		struct route_match cand = { 0 };

		if ((table[i].listeners & listener) == 0 ||
		    !route_match_pattern(table[i].pattern, path, &cand))
			continue;
		if (table[i].methods & method) {
			*m = cand;
			m->route = &table[i];
			return ROUTE_FOUND;
		}
		allowed |= table[i].methods;
	}
	if (allowed == 0)
		return ROUTE_NOT_FOUND;
	m->allowed = allowed;
	return ROUTE_METHOD_NOT_ALLOWED;
}

void
route_allow_header(unsigned methods, char *buf, size_t len)
{
	static const struct { unsigned bit; const char *name; } names[] = {
		{ EVHTTP_REQ_GET, "GET" }, { EVHTTP_REQ_HEAD, "HEAD" },
		{ EVHTTP_REQ_POST, "POST" }, { EVHTTP_REQ_PUT, "PUT" },
		{ EVHTTP_REQ_PATCH, "PATCH" }, { EVHTTP_REQ_DELETE, "DELETE" },
		{ EVHTTP_REQ_OPTIONS, "OPTIONS" },
	};
	size_t off = 0;

	if (len == 0)
		return;
	if (methods & EVHTTP_REQ_GET)
		methods |= EVHTTP_REQ_HEAD;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int w;

		if (!(methods & names[i].bit))
			continue;
		w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
		    names[i].name);
		if (w < 0 || (size_t)w >= len - off) {
			buf[off] = '\0';	/* whole names only */
			return;
		}
		off += (size_t)w;
	}
}

/* A printable copy of a name from the wire, for the problem detail. */
static void
route_query_name(const char *p, size_t n, char *name, size_t namelen)
{
	size_t i;

	if (namelen == 0)
		return;
	for (i = 0; i < n && i < namelen - 1; i++)
		name[i] = (p[i] > 0x20 && p[i] < 0x7f && p[i] != '"') ? p[i] : '?';
	name[i] = '\0';
}

static int
route_query_index(const char *const *allowed, const char *key, size_t n)
{
	for (int i = 0; allowed != NULL && allowed[i] != NULL &&
	    i < ROUTE_MAX_QUERY; i++)
		if (strlen(allowed[i]) == n && memcmp(allowed[i], key, n) == 0)
			return i;
	return -1;
}

enum route_query_result
route_query_check(const char *const *allowed, const char *query, char *name,
    size_t namelen)
{
	unsigned long seen = 0;
	const char *p = query;

	if (namelen > 0)
		name[0] = '\0';
	if (query == NULL || query[0] == '\0')
		return ROUTE_QUERY_OK;
	for (;;) {
		const char *end = strchr(p, '&'), *eq, *val;
		size_t seglen = end ? (size_t)(end - p) : strlen(p), keylen;
		int i;

		eq = memchr(p, '=', seglen);
		keylen = eq ? (size_t)(eq - p) : seglen;
		route_query_name(p, keylen, name, namelen);
		if (keylen == 0)
			return ROUTE_QUERY_NO_NAME;
		if (eq == NULL)
			return ROUTE_QUERY_NO_VALUE;
		for (val = eq + 1; val + 3 <= p + seglen; val++)
			if (val[0] == '%' && val[1] == '0' && val[2] == '0')
				return ROUTE_QUERY_NUL;
		if ((i = route_query_index(allowed, p, keylen)) == -1)
			return ROUTE_QUERY_UNKNOWN;
		if (seen & (1UL << i))
			return ROUTE_QUERY_REPEATED;
		seen |= 1UL << i;
		if (end == NULL)
			return ROUTE_QUERY_OK;
		p = end + 1;
	}
}

/* www.c: the web UI's files, read once at start (bounded in count, depth
 * and total size) and served from memory with an ETag, a strict
 * Content-Security-Policy and a cache policy per name. Requests never
 * touch the file system, so a path can only name a file loaded at start. */
#include "www.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "http.h"
#include "log.h"
#include "server.h"
#include "util.h"

struct www_file {
	char		*path;		/* URL path: "/assets/app.js" */
	unsigned char	*data;
	size_t		 len;
	const char	*type;
	char		 etag[35];	/* "\"" + 32 hex + "\"" */
	int		 is_immutable;
};

struct www {
	struct www_file	*files;		/* sorted by path */
	size_t		 n, cap;
	size_t		 total, max_total;
};

/* No inline script or style anywhere: the UI's code is its own files. */
#define WWW_CSP "default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self' data:; connect-src 'self'; font-src 'self'; " \
	"manifest-src 'self'; base-uri 'none'; form-action 'self'; " \
	"frame-ancestors 'none'; object-src 'none'"

static const struct { const char *ext; const char *type; } www_types[] = {
	{ "html", "text/html; charset=utf-8" },
	{ "js", "text/javascript; charset=utf-8" },
	{ "mjs", "text/javascript; charset=utf-8" },
	{ "css", "text/css; charset=utf-8" },
	{ "json", "application/json" },
	{ "map", "application/json" },
	{ "svg", "image/svg+xml" },
	{ "png", "image/png" },
	{ "ico", "image/x-icon" },
	{ "woff2", "font/woff2" },
	{ "txt", "text/plain; charset=utf-8" },
};

const char *
www_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	if (dot != NULL && strchr(dot, '/') == NULL)
		for (size_t i = 0; i < sizeof(www_types) / sizeof(www_types[0]); i++)
			if (strcasecmp(dot + 1, www_types[i].ext) == 0)
				return www_types[i].type;
	return "application/octet-stream";
}

int
www_is_hashed(const char *name)
{
	const char *base = strrchr(name, '/'), *ext, *p;
	size_t n = 0;

	base = base ? base + 1 : name;
	if ((ext = strrchr(base, '.')) == NULL || ext == base)
		return 0;
	for (p = ext - 1; p > base && *p != '.'; p--)
		n++;
	if (*p != '.' || p == base || n < 8 || n > 64)
		return 0;
	for (p++; p < ext; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

/* RFC 9110 13.1.2: weak comparison, a comma-separated list or "*". */
int
www_etag_matches(const char *inm, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = inm;

	while (*p != '\0') {
		const char *end;

		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		if (*p == '*')
			return 1;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		end = p + strcspn(p, ",");
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
			return 1;
		p = end;
		p += strcspn(p, ",");
	}
	return 0;
}

/* Names the UI uses; anything else (spaces, quotes, "..") is refused at
 * load so a URL never needs decoding to find its file. */
static int
www_name_ok(const char *name)
{
	if (name[0] == '\0' || name[0] == '.' || strlen(name) > 128)
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' ||
		    *p == '_'))
			return 0;
	return 1;
}

static int
www_cmp(const void *a, const void *b)
{
	return strcmp(((const struct www_file *)a)->path,
	    ((const struct www_file *)b)->path);
}

static int
www_read(struct www *w, const char *file, const char *url, const struct stat *st,
    char *err, size_t errlen)
{
	struct www_file *f;
	unsigned char md[32];
	char hex[33];
	size_t off = 0;
	int fd;

	if ((size_t)st->st_size > w->max_total - w->total) {
		snprintf(err, errlen, "the files under www_dir exceed www_max_size "
		    "(%zu bytes) at %s (%lld bytes)", w->max_total, file,
		    (long long)st->st_size);
		return -1;
	}
	if (w->n == WWW_MAX_FILES) {
		snprintf(err, errlen, "more than %d files under www_dir", WWW_MAX_FILES);
		return -1;
	}
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		struct www_file *nf = reallocarray(w->files, cap, sizeof(*nf));

		if (nf == NULL)
			goto oom;
		w->files = nf;
		w->cap = cap;
	}
	f = &w->files[w->n];
	memset(f, 0, sizeof(*f));
	if ((f->path = strdup(url)) == NULL ||
	    (f->data = malloc(st->st_size > 0 ? (size_t)st->st_size : 1)) == NULL) {
		free(f->path);
		goto oom;
	}
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		goto fail;
	while (off < (size_t)st->st_size) {
		ssize_t r = read(fd, f->data + off, (size_t)st->st_size - off);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	if (off != (size_t)st->st_size) {
		errno = EIO;
		goto fail;
	}
	f->len = off;
	f->type = www_content_type(url);
	f->is_immutable = www_is_hashed(url);
	util_sha256(f->data, f->len, md);
	util_hex(md, 16, hex);
	snprintf(f->etag, sizeof(f->etag), "\"%s\"", hex);
	w->total += f->len;
	w->n++;
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", file, strerror(errno));
	free(f->path);
	free(f->data);
	return -1;
oom:
	snprintf(err, errlen, "out of memory reading www_dir");
	return -1;
}

static int
www_walk(struct www *w, const char *dir, const char *url, int depth, char *err,
    size_t errlen)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (depth > WWW_MAX_DEPTH) {
		snprintf(err, errlen, "%s: directories nested deeper than %d",
		    dir, WWW_MAX_DEPTH);
		return -1;
	}
	if ((d = opendir(dir)) == NULL) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		char file[4096], sub[4096];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;	/* ".", "..", editor and VCS droppings */
		if (!www_name_ok(de->d_name)) {
			snprintf(err, errlen, "%s/%s: a file name of the web UI "
			    "may only hold letters, digits, '.', '-' and '_'",
			    dir, de->d_name);
			rc = -1;
			break;
		}
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", dir,
		    de->d_name) >= sizeof(file) ||
		    (size_t)snprintf(sub, sizeof(sub), "%s/%s", url,
		    de->d_name) >= sizeof(sub)) {
			snprintf(err, errlen, "%s: path too long", dir);
			rc = -1;
			break;
		}
		if (stat(file, &st) == -1) {
			snprintf(err, errlen, "%s: %s", file, strerror(errno));
			rc = -1;
		} else if (S_ISDIR(st.st_mode)) {
			rc = www_walk(w, file, sub, depth + 1, err, errlen);
		} else if (S_ISREG(st.st_mode)) {
			rc = www_read(w, file, sub, &st, err, errlen);
		}
	}
	if (rc == 0 && errno != 0) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		rc = -1;
	}
	closedir(d);
	return rc;
}

struct www *
www_load(const char *dir, size_t max_total, char *err, size_t errlen)
{
	static const char *const parts[] = { "index.html", "assets", "vendor" };
	struct www *w;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->max_total = max_total;
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		char file[4096], url[64];
		struct stat st;

		snprintf(file, sizeof(file), "%s/%s", dir, parts[i]);
		snprintf(url, sizeof(url), "/%s", parts[i]);
		if (stat(file, &st) == -1) {
			/* vendor/ exists once the build has copied the npm
			 * packages; index.html and assets/ always. */
			if (errno == ENOENT && i == 2)
				continue;
			snprintf(err, errlen, "www_dir: %s: %s", file, strerror(errno));
			goto fail;
		}
		if ((i == 0 ? www_read(w, file, url, &st, err, errlen) :
		    www_walk(w, file, url, 1, err, errlen)) == -1)
			goto fail;
	}
	qsort(w->files, w->n, sizeof(w->files[0]), www_cmp);
	return w;
fail:
	www_free(w);
	return NULL;
}

void
www_free(struct www *w)
{
	if (w == NULL)
		return;
	for (size_t i = 0; i < w->n; i++) {
		free(w->files[i].path);
		free(w->files[i].data);
	}
	free(w->files);
	free(w);
}

size_t www_nfiles(const struct www *w) { return w ? w->n : 0; }
size_t www_total(const struct www *w) { return w ? w->total : 0; }

static const struct www_file *
www_find(const struct www *w, const char *path)
{
	struct www_file key = { .path = (char *)path };

	if (w == NULL || w->n == 0)
		return NULL;
	return bsearch(&key, w->files, w->n, sizeof(w->files[0]), www_cmp);
}

static void
www_headers(struct http_req *hr, const struct www_file *f)
{
	http_add_header(hr, "ETag", f->etag);
	/* Hashed names change with their content; everything else, and
	 * index.html above all, is revalidated (a 304 is cheap). */
	http_add_header(hr, "Cache-Control", f->is_immutable ?
	    "public, max-age=31536000, immutable" : "no-cache");
	http_add_header(hr, "Content-Security-Policy", WWW_CSP);
	http_add_header(hr, "X-Frame-Options", "DENY");
	http_add_header(hr, "Referrer-Policy", "no-referrer");
	http_add_header(hr, "Cross-Origin-Opener-Policy", "same-origin");
	http_add_header(hr, "Cross-Origin-Resource-Policy", "same-origin");
}

static void
www_serve(struct http_req *hr)
{
	const struct www_file *f;
	const char *inm;
	struct evbuffer *body;

	if (hr->srv->www == NULL) {
		http_reply_problem(hr, 404, NULL, "the web UI is not installed "
		    "(see www_dir in quarklinkd.conf(5))");
		return;
	}
	if ((f = www_find(hr->srv->www, strcmp(hr->path, "/") == 0 ?
	    "/index.html" : hr->path)) == NULL) {
		http_reply_problem(hr, 404, NULL, "no file %s", hr->path);
		return;
	}
	www_headers(hr, f);
	if ((inm = http_header(hr, "If-None-Match")) != NULL &&
	    www_etag_matches(inm, f->etag)) {
		http_reply(hr, 304, NULL, NULL);
		return;
	}
	if (http_method(hr) == EVHTTP_REQ_HEAD) {
		char len[24];

		/* evhttp drops the body of a HEAD reply and its length too. */
		snprintf(len, sizeof(len), "%zu", f->len);
		http_add_header(hr, "Content-Length", len);
		http_reply(hr, 200, f->type, NULL);
		return;
	}
	if ((body = evbuffer_new()) == NULL ||
	    evbuffer_add_reference(body, f->data, f->len, NULL, NULL) == -1) {
		if (body != NULL)
			evbuffer_free(body);
		http_reply_problem(hr, 503, NULL, "out of memory");
		return;
	}
	http_reply(hr, 200, f->type, body);
	evbuffer_free(body);
}

/* Hash routing (#/devices): the UI needs no fallback for client routes,
 * and a path outside these stays an honest 404. */
const struct route www_routes[] = {
	{ "/", EVHTTP_REQ_GET, ROUTE_ADMIN, www_serve, 0, NULL },
	{ "/index.html", EVHTTP_REQ_GET, ROUTE_ADMIN, www_serve, 0, NULL },
	{ "/assets/*", EVHTTP_REQ_GET, ROUTE_ADMIN, www_serve, 0, NULL },
	{ "/vendor/*", EVHTTP_REQ_GET, ROUTE_ADMIN, www_serve, 0, NULL },
};
const size_t www_nroutes = sizeof(www_routes) / sizeof(www_routes[0]);

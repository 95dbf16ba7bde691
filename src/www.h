/* www.h: the web UI's static files, read once at start into memory and
 * served from there on the admin listener (no file I/O per request). */
#ifndef QL_WWW_H
#define QL_WWW_H

#include <stddef.h>

#include "route.h"

struct www;

extern const struct route www_routes[];
extern const size_t www_nroutes;

/* Read every servable file under dir (index.html, assets/, vendor/),
 * at most max_total bytes and WWW_MAX_FILES files in all. NULL with err
 * set on any failure: a UI that is half there is not served. */
struct www	*www_load(const char *dir, size_t max_total, char *err,
		    size_t errlen) __attribute__((warn_unused_result));
void		 www_free(struct www *);
size_t		 www_nfiles(const struct www *);
size_t		 www_total(const struct www *);

/* Pure helpers (unit tested). */
const char	*www_content_type(const char *name);
/* A name like "uPlot.1a2b3c4d.js": its content never changes. */
int		 www_is_hashed(const char *name);
/* An If-None-Match value (a list, "*", weak tags) against an ETag. */
int		 www_etag_matches(const char *if_none_match, const char *etag);

#define WWW_MAX_FILES	1024
#define WWW_MAX_DEPTH	8

#endif

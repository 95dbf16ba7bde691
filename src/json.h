/* json.h: thin yajl helpers shared by every handler. JSON is generated only
 * through yajl_gen and parsed only through yajl, with a depth bound. */
#ifndef QL_JSON_H
#define QL_JSON_H

#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define JSON_MAX_DEPTH 32

struct evbuffer;

yajl_gen	 json_gen_new(void);
void		 json_kv_str(yajl_gen, const char *key, const char *val);
void		 json_kv_int(yajl_gen, const char *key, long long val);
void		 json_kv_bool(yajl_gen, const char *key, int val);
void		 json_key(yajl_gen, const char *key);
/* Append the generated document to buf and free the generator. */
int		 json_gen_finish(yajl_gen, struct evbuffer *buf)
		    __attribute__((warn_unused_result));

/* Parse len bytes (need not be NUL-terminated). Refuses documents nested
 * deeper than max_depth and invalid UTF-8; err gets a one-line reason. */
yajl_val	 json_parse(const char *, size_t len, int max_depth,
		    char *err, size_t errlen);
/* Member lookups: NULL when missing or of another type. */
const char	*json_get_str(yajl_val obj, const char *key);
yajl_val	 json_get(yajl_val obj, const char *key);

#endif

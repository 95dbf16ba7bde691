/* agent_json.h: strict parsing of documents from the network. */
#ifndef QL_AGENT_JSON_H
#define QL_AGENT_JSON_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

/* One JSON object: at most len bytes, depth bounded, valid UTF-8, no NUL,
 * no duplicate keys. NULL with a one-line reason in err. */
yajl_val	 agent_json_parse(const char *, size_t len, char *err, size_t errlen);
const char	*agent_json_str(yajl_val obj, const char *key);
/* A non-negative integer member; -1 when missing or not one. */
long long	 agent_json_uint(yajl_val obj, const char *key);
/* 1 true, 0 false, -1 missing or not a boolean. */
int		 agent_json_bool(yajl_val obj, const char *key);
yajl_val	 agent_json_get(yajl_val obj, const char *key, yajl_type);

#endif

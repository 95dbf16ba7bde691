/* agent_json.c: yajl's tree parser with the checks it does not make. */
#include "agent_json.h"

#include <stdio.h>
#include <string.h>

#define AGENT_JSON_DEPTH	16

static int
agent_json_check(yajl_val v, int depth)
{
	size_t i, j;

	if (depth > AGENT_JSON_DEPTH)
		return -1;
	if (YAJL_IS_OBJECT(v)) {
		for (i = 0; i < v->u.object.len; i++) {
			for (j = 0; j < i; j++)
				if (strcmp(v->u.object.keys[i], v->u.object.keys[j]) == 0)
					return -1;
			if (agent_json_check(v->u.object.values[i], depth + 1) == -1)
				return -1;
		}
	} else if (YAJL_IS_ARRAY(v)) {
		for (i = 0; i < v->u.array.len; i++)
			if (agent_json_check(v->u.array.values[i], depth + 1) == -1)
				return -1;
	}
	return 0;
}

yajl_val
agent_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
	char ybuf[128];
	yajl_val v;

	/* yajl_tree_parse wants a C string: an embedded NUL would cut it. */
	if (text == NULL || len == 0 || memchr(text, '\0', len) != NULL || text[len] != '\0') {
		snprintf(err, errlen, "not a JSON document");
		return NULL;
	}
	if ((v = yajl_tree_parse(text, ybuf, sizeof(ybuf))) == NULL) {
		snprintf(err, errlen, "invalid JSON");
		return NULL;
	}
	if (!YAJL_IS_OBJECT(v) || agent_json_check(v, 0) == -1) {
		snprintf(err, errlen, "JSON is not one object with distinct keys and bounded depth");
		yajl_tree_free(v);
		return NULL;
	}
	return v;
}

yajl_val
agent_json_get(yajl_val obj, const char *key, yajl_type type)
{
	const char *path[2] = { key, NULL };

	return yajl_tree_get(obj, path, type);
}

const char *
agent_json_str(yajl_val obj, const char *key)
{
	yajl_val v = agent_json_get(obj, key, yajl_t_string);

	return v ? YAJL_GET_STRING(v) : NULL;
}

long long
agent_json_uint(yajl_val obj, const char *key)
{
	yajl_val v = agent_json_get(obj, key, yajl_t_number);

	if (v == NULL || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0)
		return -1;
	return YAJL_GET_INTEGER(v);
}

int
agent_json_bool(yajl_val obj, const char *key)
{
	yajl_val v = agent_json_get(obj, key, yajl_t_any);

	if (v == NULL)
		return -1;
	if (YAJL_IS_TRUE(v))
		return 1;
	if (YAJL_IS_FALSE(v))
		return 0;
	return -1;
}

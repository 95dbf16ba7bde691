/* fuzz_json.c: libFuzzer target for json_parse. The input is parsed with
 * its exact length (no NUL terminator); the string members of an accepted
 * object are generated again through json_gen_* and must parse back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "json.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_json_round_trip(yajl_val root)
{
	struct evbuffer *b;
	yajl_gen g;
	char err[256];
	yajl_val v;

	if ((b = evbuffer_new()) == NULL)
		return;
	if ((g = json_gen_new()) == NULL) {
		evbuffer_free(b);
		return;
	}
	yajl_gen_map_open(g);
	for (size_t i = 0; i < root->u.object.len; i++) {
		const char *key = root->u.object.keys[i];
		const char *s = json_get_str(root, key);
		yajl_val m = json_get(root, key);

		/* json_get returns the first member of that name */
		if (m == NULL)
			abort();
		if (s != NULL)
			json_kv_str(g, key, s);
		else if (YAJL_IS_INTEGER(m))
			json_kv_int(g, key, YAJL_GET_INTEGER(m));
		else if (YAJL_IS_TRUE(m) || YAJL_IS_FALSE(m))
			json_kv_bool(g, key, YAJL_IS_TRUE(m));
	}
	yajl_gen_map_close(g);
	if (json_gen_finish(g, b) == 0) {
		size_t len = evbuffer_get_length(b);
		const char *out = (const char *)evbuffer_pullup(b, -1);

		if ((v = json_parse(out ? out : "", len, JSON_MAX_DEPTH, err,
		    sizeof(err))) == NULL)
			abort();	/* we generated something we refuse */
		yajl_tree_free(v);
	}
	evbuffer_free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	yajl_val v;

	err[0] = '\0';
	v = json_parse((const char *)data, size, JSON_MAX_DEPTH, err,
	    sizeof(err));
	if (v == NULL) {
		if (err[0] == '\0')
			abort();	/* refused without a reason */
		return 0;
	}
	if (YAJL_IS_OBJECT(v))
		fuzz_json_round_trip(v);
	yajl_tree_free(v);
	return 0;
}

/* fuzz_conf.c: libFuzzer target for the INI parser. Feeds conf_parse a
 * NUL-terminated copy of the input over fresh defaults, then frees all. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[CONF_ERRLEN];
	struct conf c;
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	conf_init(&c);
	err[0] = '\0';
	if (conf_parse(&c, "fuzz.conf", text, "/etc/ql", err, sizeof(err)) == -1) {
		/* every error names the file and is terminated */
		if (strncmp(err, "fuzz.conf:", 10) != 0 ||
		    memchr(err, '\0', sizeof(err)) == NULL)
			abort();
	}
	conf_free(&c);
	free(text);
	return 0;
}

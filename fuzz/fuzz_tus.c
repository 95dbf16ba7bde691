/* fuzz_tus.c: libFuzzer target for uploads_meta_parse, the tus
 * Upload-Metadata parser. The input is the header value (NUL-terminated
 * copy); an accepted one must hold the required fields within their
 * bounds and alphabets. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uploads_meta.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uploads_meta m;
	const char *errstr = NULL;
	char *s;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (uploads_meta_parse(s, &m, &errstr) == 0) {
		if (m.project[0] == '\0' || m.name[0] == '\0' || m.version[0] == '\0' ||
		    strlen(m.name) > UPLOADS_NAME_MAX ||
		    strspn(m.version, "0123456789.") != strlen(m.version) ||
		    m.hardware[0] != '{' || m.hardware[strlen(m.hardware) - 1] != '}')
			abort();
	} else if (errstr == NULL)
		abort();
	free(s);
	return 0;
}

/* uploads_meta.c: the tus Upload-Metadata parser (see uploads_meta.h). It sees
 * hostile header text: every field is bounded and checked against the
 * schema's alphabets before it can reach SQL. Pure: no I/O (fuzzed). */
#include "uploads_meta.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "util.h"

#define UPLOADS_META_MAX	4096	/* bytes of Upload-Metadata */

static int
uploads_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= UPLOADS_NAME_MAX && isalnum((unsigned char)s[0]) &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

/* 1-4 dot-separated parts of 1-9 digits (the schema's pattern). */
static int
uploads_version_ok(const char *s)
{
	int parts = 0;

	for (;;) {
		size_t d = strspn(s, "0123456789");

		if (d < 1 || d > 9 || ++parts > 4)
			return 0;
		s += d;
		if (*s == '\0')
			return 1;
		if (*s++ != '.')
			return 0;
	}
}

/* "a,b" -> "{a,b}": each 1-64 of [A-Za-z0-9._:-], so no quoting is needed. */
static int
uploads_hardware(const char *s, char *out, size_t len)
{
	size_t off = 1, n, count = 0;

	out[0] = '{';
	while (*s != '\0') {
		n = strcspn(s, ",");
		if (n < 1 || n > UPLOADS_HW_LEN || strspn(s, NAMES_HARDWARE_CHARS) < n ||
		    ++count > UPLOADS_HW_MAX || off + n + 3 > len)
			return -1;
		if (off > 1)
			out[off++] = ',';
		memcpy(out + off, s, n);
		off += n;
		s += n;
		if (*s == ',' && *++s == '\0')
			return -1;	/* trailing comma */
	}
	out[off++] = '}';
	out[off] = '\0';
	return 0;
}

static int
uploads_hex32(const char *s, unsigned char out[32])
{
	if (strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		char b[3] = { s[2 * i], s[2 * i + 1], '\0' };
		char *end;

		if (!isxdigit((unsigned char)b[0]) || !isxdigit((unsigned char)b[1]))
			return -1;
		out[i] = (unsigned char)strtoul(b, &end, 16);
	}
	return 0;
}

/* One decoded value into its field. */
static int
uploads_meta_set(struct uploads_meta *m, const char *key, const char *v,
    const char **errstr)
{
	if (strcmp(key, "project") == 0) {
		if (strlen(v) < 1 || strlen(v) > UPLOADS_PROJECT_MAX) {
			*errstr = "Upload-Metadata project must be 1-128 bytes";
			return -1;
		}
		memcpy(m->project, v, strlen(v) + 1);	/* length checked */
	} else if (strcmp(key, "name") == 0) {
		if (!uploads_name_ok(v)) {
			*errstr = "Upload-Metadata name must be 1-64 characters of"
			    " A-Z a-z 0-9 . _ - starting with a letter or digit";
			return -1;
		}
		memcpy(m->name, v, strlen(v) + 1);
	} else if (strcmp(key, "version") == 0) {
		if (!uploads_version_ok(v)) {
			*errstr = "Upload-Metadata version must be 1-4 dot-separated"
			    " numbers of at most 9 digits";
			return -1;
		}
		memcpy(m->version, v, strlen(v) + 1);
	} else if (strcmp(key, "hardware") == 0) {
		if (uploads_hardware(v, m->hardware, sizeof(m->hardware)) == -1) {
			*errstr = "Upload-Metadata hardware must be a comma-separated"
			    " list of at most 32 names of 1-64 characters of"
			    " A-Z a-z 0-9 . _ : -";
			return -1;
		}
	} else if (strcmp(key, "encrypt") == 0) {
		if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
			*errstr = "Upload-Metadata encrypt must be true or false";
			return -1;
		}
		m->is_encrypt = v[0] == 't';
	} else if (strcmp(key, "filename") == 0) {
		if (strlen(v) > UPLOADS_FILENAME_MAX) {
			*errstr = "Upload-Metadata filename must be at most 255 bytes";
			return -1;
		}
		memcpy(m->filename, v, strlen(v) + 1);
		m->has_filename = 1;
	} else if (strcmp(key, "sha256") == 0) {
		if (uploads_hex32(v, m->sha256) == -1) {
			*errstr = "Upload-Metadata sha256 must be 64 hex digits";
			return -1;
		}
		m->has_sha256 = 1;
	} else {
		*errstr = "Upload-Metadata keys are project, name, version,"
		    " hardware, encrypt, filename and sha256";
		return -1;
	}
	return 0;
}

int
uploads_meta_parse(const char *h, struct uploads_meta *m, const char **errstr)
{
	char buf[UPLOADS_META_MAX + 1], *pair, *save = NULL;
	unsigned seen = 0;

	memset(m, 0, sizeof(*m));
	memcpy(m->hardware, "{}", 3);
	if (h == NULL || strlen(h) > UPLOADS_META_MAX) {
		*errstr = h == NULL ? "Upload-Metadata is required (project, name,"
		    " version)" : "Upload-Metadata is longer than 4096 bytes";
		return -1;
	}
	memcpy(buf, h, strlen(h) + 1);
	for (pair = strtok_r(buf, ",", &save); pair != NULL;
	    pair = strtok_r(NULL, ",", &save)) {
		static const char *const keys[] = { "project", "name", "version",
		    "hardware", "encrypt", "filename", "sha256" };
		char *key = pair + strspn(pair, " "), *b64, *val;
		unsigned char *dec;
		size_t vlen = 0, k;

		b64 = key + strcspn(key, " ");
		if (*b64 != '\0')
			*b64++ = '\0';
		b64 = util_trim(b64);
		for (k = 0; k < 7 && strcmp(keys[k], key) != 0; k++)
			;
		if (k < 7 && (seen & (1u << k))) {
			*errstr = "Upload-Metadata names a key twice";
			return -1;
		}
		if (k < 7)
			seen |= 1u << k;
		if (*b64 == '\0')
			dec = (unsigned char *)strdup("");
		else if ((dec = util_base64_decode(b64, strlen(b64), &vlen)) == NULL) {
			*errstr = "Upload-Metadata values must be base64";
			return -1;
		}
		/* The decoded bytes are not NUL-terminated: a copy that is. */
		if (dec == NULL || (val = malloc(vlen + 1)) == NULL) {
			free(dec);
			*errstr = "out of memory";
			return -1;
		}
		memcpy(val, dec, vlen);
		free(dec);
		if (memchr(val, '\0', vlen) != NULL ||
		    !util_utf8_valid((unsigned char *)val, vlen)) {
			free(val);
			*errstr = "Upload-Metadata values must be UTF-8 without NUL";
			return -1;
		}
		val[vlen] = '\0';
		if (uploads_meta_set(m, key, val, errstr) == -1) {
			free(val);
			return -1;
		}
		free(val);
	}
	if (m->project[0] == '\0' || m->name[0] == '\0' || m->version[0] == '\0') {
		*errstr = "Upload-Metadata must carry project, name and version";
		return -1;
	}
	return 0;
}

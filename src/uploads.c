/* uploads.c: SQL of tus uploads, the Upload-Metadata parser and the expiry
 * timer. The parser sees hostile header text: every field is bounded and
 * checked against the schema's alphabets before it reaches SQL. */
#include "uploads.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "util.h"

#define UPLOADS_EXPIRY_PERIOD_S	60
#define UPLOADS_EXPIRY_ROWS	64	/* chunk rows (64 MiB) per statement */
#define UPLOADS_STR(x)		UPLOADS_STR2(x)
#define UPLOADS_STR2(x)		#x
#define UPLOADS_META_MAX	4096	/* bytes of Upload-Metadata */

const struct db_stmt uploads_create = {
	"uploads_create", "SELECT ql_upload_create($1, $2::bigint, $3, $4,"
	" $5::bigint, $6::bytea, $7::text[], $8::boolean, $9, $10, $11::integer)", 11 };
const struct db_stmt uploads_get = {
	"uploads_get", "SELECT project_id, upload_length, upload_offset,"
	" sha256_state, image_id FROM ql_upload_get($1)", 1 };
const struct db_stmt uploads_patch = {
	"uploads_patch", "SELECT result, upload_offset, image_id FROM"
	" ql_upload_patch($1, $2::bigint, $3::bigint, $4::bytea, $5::bytea,"
	" $6::bytea, $7::integer, $8)", 8 };
const struct db_stmt uploads_delete = {
	"uploads_delete", "SELECT ql_upload_delete($1, $2::bigint, $3)", 3 };
const struct db_stmt uploads_project = {
	"uploads_project", "SELECT id FROM projects WHERE name = $1", 1 };
static const struct db_stmt uploads_expire = {
	"uploads_expire", "SELECT ql_upload_expire($1::integer)", 1 };

int
uploads_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = {
		&uploads_create, &uploads_get, &uploads_patch, &uploads_delete,
		&uploads_project, &uploads_expire,
	};

	return db_register_all(db, s, sizeof(s) / sizeof(s[0]));
}

/* ---------------------------------------------------------- metadata */

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
		if (n < 1 || n > UPLOADS_HW_LEN || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		    "abcdefghijklmnopqrstuvwxyz0123456789._:-") < n ||
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
			val = strdup("");
		else if ((val = (char *)util_base64_decode(b64, strlen(b64),
		    &vlen)) == NULL) {
			*errstr = "Upload-Metadata values must be base64";
			return -1;
		}
		if (val == NULL) {
			*errstr = "out of memory";
			return -1;
		}
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

/* ---------------------------------------------------------- expiry */

static struct event *uploads_expiry_ev;
static struct server *uploads_expiry_srv;

static void	uploads_expiry_run(evutil_socket_t, short, void *);

static void
uploads_expired(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct timeval tv = { UPLOADS_EXPIRY_PERIOD_S, 0 };
	long long n = 0;

	(void)arg;
	if (uploads_expiry_ev == NULL)
		return;		/* stopping */
	if (st != DB_OK)
		log_warnx("upload expiry: %s", db_errstr(st, errstr));
	else if (PQntuples(res) == 1)
		n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	if (n > 0)
		log_info("upload expiry: %lld rows of abandoned uploads removed", n);
	/* A full batch: more may be waiting; go on next turn, not in a burst. */
	if (n >= UPLOADS_EXPIRY_ROWS)
		tv.tv_sec = 0;
	evtimer_add(uploads_expiry_ev, &tv);
}

static void
uploads_expiry_run(evutil_socket_t fd, short what, void *arg)
{
	const char *v[1] = { UPLOADS_STR(UPLOADS_EXPIRY_ROWS) };

	(void)fd;
	(void)what;
	(void)arg;
	db_query(uploads_expiry_srv->db, &uploads_expire, 1, v, NULL,
	    uploads_expired, NULL);
}

void
uploads_expiry_start(struct server *srv)
{
	struct timeval tv = { 1, 0 };

	uploads_expiry_srv = srv;
	if ((uploads_expiry_ev = evtimer_new(srv->base, uploads_expiry_run,
	    NULL)) == NULL)
		fatalx("uploads: evtimer_new: out of memory");
	evtimer_add(uploads_expiry_ev, &tv);
}

void
uploads_expiry_stop(void)
{
	if (uploads_expiry_ev != NULL)
		event_free(uploads_expiry_ev);
	uploads_expiry_ev = NULL;
}

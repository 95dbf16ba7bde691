/* conf.c: option table + INI parser. Errors name FILE:LINE and the reason;
 * an unknown key is an error, never ignored. Never touches the network. */
#include "conf.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "util.h"
#include "xmalloc.h"

enum conf_type {
	CONF_STR, CONF_PATH, CONF_INT, CONF_BOOL, CONF_SIZE, CONF_LEVEL,
	CONF_ENUM, CONF_LISTEN,
	CONF_URL,	/* empty, or "scheme://host..." with a scheme of choices */
	CONF_PATHS,	/* space-separated paths, each resolved like CONF_PATH */
};

struct conf_option {
	const char	*section;
	const char	*name;
	enum conf_type	 type;
	const char	*def;
	long long	 min, max;
	size_t		 off;
	const char	*choices;	/* CONF_ENUM, CONF_URL's schemes: "a|b" */
	int		 is_reloaded;	/* SIGHUP re-reads what this names */
};

#define O(f) offsetof(struct conf, f)
#define GB (1024LL * 1024 * 1024)
static const struct conf_option conf_options[] = {
	{ "server", "log_level", CONF_LEVEL, "info", 0, 0, O(log_level), NULL, 0 },
	{ "server", "log_target", CONF_ENUM, "stderr", 0, 0, O(log_target), "stderr|syslog", 0 },
	{ "server", "log_file", CONF_PATH, "", 0, 0, O(log_file), NULL, 1 },
	{ "server", "pid_file", CONF_PATH, "", 0, 0, O(pid_file), NULL, 0 },
	{ "server", "max_body_size", CONF_SIZE, "1M", 64, 4 * GB, O(max_body_size), NULL, 0 },
	{ "server", "max_header_size", CONF_SIZE, "16K", 1024, 1024 * 1024, O(max_header_size), NULL, 0 },
	{ "server", "request_timeout", CONF_INT, "30", 1, 3600, O(request_timeout), NULL, 0 },
	{ "server", "header_timeout", CONF_INT, "10", 1, 3600, O(header_timeout), NULL, 0 },
	{ "server", "body_timeout", CONF_INT, "60", 1, 3600, O(body_timeout), NULL, 0 },
	{ "server", "max_output_buffer", CONF_SIZE, "64M", 65536, 64 * GB, O(max_output_buffer), NULL, 0 },
	{ "server", "shutdown_timeout", CONF_INT, "10", 0, 3600, O(shutdown_timeout), NULL, 0 },
	{ "server", "debug_endpoints", CONF_BOOL, "no", 0, 0, O(debug_endpoints), NULL, 0 },
	{ "server", "state_dir", CONF_PATH, ".", 0, 0, O(state_dir), NULL, 0 },
	{ "server", "tls_names", CONF_STR, "localhost,127.0.0.1", 0, 0, O(tls_names), NULL, 0 },
	{ "server", "tls_ticket_key_interval", CONF_INT, "3600", 1, 86400, O(tls_ticket_key_interval), NULL, 0 },

	{ "database", "conninfo", CONF_STR, "dbname=quarklink", 0, 0, O(db_conninfo), NULL, 0 },
	{ "database", "pool_size", CONF_INT, "2", 1, 64, O(db_pool_size), NULL, 0 },
	{ "database", "queue_max", CONF_INT, "1024", 1, 1000000, O(db_queue_max), NULL, 0 },
	{ "database", "reconnect_max", CONF_INT, "5", 1, 300, O(db_reconnect_max), NULL, 0 },
	{ "database", "query_timeout", CONF_INT, "10", 1, 3600, O(db_query_timeout), NULL, 0 },

	{ "pkcs11", "module", CONF_PATH, "/usr/lib/softhsm/libsofthsm2.so", 0, 0, O(p11_module), NULL, 0 },
	{ "pkcs11", "token_label", CONF_STR, "quarklink", 0, 0, O(p11_token_label), NULL, 0 },
	{ "pkcs11", "pin_file", CONF_PATH, "pin", 0, 0, O(p11_pin_file), NULL, 0 },
	{ "pkcs11", "softhsm2_conf", CONF_PATH, "", 0, 0, O(p11_softhsm2_conf), NULL, 0 },
	{ "pkcs11", "engine", CONF_PATH, ENGINESDIR "/pkcs11.so", 0, 0, O(p11_engine), NULL, 0 },
	{ "pkcs11", "workers", CONF_INT, "2", 1, 64, O(p11_workers), NULL, 0 },
	{ "pkcs11", "queue_max", CONF_INT, "256", 1, 65536, O(p11_queue_max), NULL, 0 },

	{ "ca", "key_type", CONF_ENUM, "ec-p256", 0, 0, O(ca_key_type), "ec-p256|rsa-3072", 0 },
	{ "ca", "cert_validity_days", CONF_INT, "365", 1, 3650, O(ca_cert_validity_days), NULL, 0 },
	{ "ca", "crl_validity_hours", CONF_INT, "24", 1, 720, O(ca_crl_validity_hours), NULL, 0 },
	{ "ca", "ocsp_validity_hours", CONF_INT, "24", 1, 720, O(ca_ocsp_validity_hours), NULL, 0 },
	{ "ca", "audit_checkpoint_interval", CONF_INT, "3600", 1, 86400, O(ca_audit_checkpoint_interval), NULL, 0 },

	{ "admin", "enabled", CONF_BOOL, "yes", 0, 0, O(admin.enabled), NULL, 0 },
	{ "admin", "max_connections", CONF_INT, "1000", 1, 1000000, O(admin.max_connections), NULL, 0 },
	{ "admin", "listen", CONF_LISTEN, "0.0.0.0:8443", 0, 0, O(admin.listen), NULL, 0 },
	{ "admin", "tls_cert", CONF_PATH, "admin.crt", 0, 0, O(admin.tls_cert), NULL, 1 },
	{ "admin", "tls_key", CONF_PATH, "admin.key", 0, 0, O(admin.tls_key), NULL, 1 },
	{ "admin", "login_window", CONF_INT, "900", 1, 86400, O(login_window), NULL, 0 },
	{ "admin", "hash_queue_max", CONF_INT, "256", 1, 65536, O(hash_queue_max), NULL, 0 },
	{ "admin", "www_dir", CONF_PATH, WWWDIR, 0, 0, O(www_dir), NULL, 0 },
	{ "admin", "www_max_size", CONF_SIZE, "16M", 65536, GB, O(www_max_size), NULL, 0 },

	{ "images", "max_chunk_size", CONF_SIZE, "32M", 65536, GB / 2, O(img_max_chunk), NULL, 0 },
	{ "images", "max_uploads", CONF_INT, "4", 1, 1024, O(img_max_uploads), NULL, 0 },
	{ "images", "upload_expiry", CONF_INT, "86400", 60, 30 * 86400, O(img_upload_expiry), NULL, 0 },
	{ "images", "max_size", CONF_SIZE, "16G", 1024, 1024 * GB, O(img_max_size), NULL, 0 },

	{ "device", "enabled", CONF_BOOL, "yes", 0, 0, O(device.enabled), NULL, 0 },
	{ "device", "max_connections", CONF_INT, "10000", 1, 1000000, O(device.max_connections), NULL, 0 },
	{ "device", "listen", CONF_LISTEN, "0.0.0.0:8444", 0, 0, O(device.listen), NULL, 0 },
	{ "device", "tls_cert", CONF_PATH, "device.crt", 0, 0, O(device.tls_cert), NULL, 1 },
	{ "device", "tls_key", CONF_PATH, "device.key", 0, 0, O(device.tls_key), NULL, 1 },
	{ "device", "client_ca", CONF_PATH, "", 0, 0, O(device.client_ca), NULL, 1 },
	{ "device", "url", CONF_URL, "", 0, 0, O(device_url), "https", 0 },

	{ "pki", "enabled", CONF_BOOL, "yes", 0, 0, O(pki.enabled), NULL, 0 },
	{ "pki", "max_connections", CONF_INT, "5000", 1, 1000000, O(pki.max_connections), NULL, 0 },
	{ "pki", "listen", CONF_LISTEN, "0.0.0.0:8080", 0, 0, O(pki.listen), NULL, 0 },
	{ "pki", "url", CONF_URL, "", 0, 0, O(pki_url), "http|https", 0 },

	{ "attest", "manufacturer_cas", CONF_PATHS, "", 0, 0, O(attest_manufacturer_cas), NULL, 1 },
};
#undef O
#define CONF_NOPTIONS (sizeof(conf_options) / sizeof(conf_options[0]))
#define CONF_LINE_MAX 4096

static int
conf_parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = 1, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = 0, 0;
	}
	return -1;
}

static int
conf_parse_size(const char *v, long long min, long long max, long long *out,
    const char **errstr)
{
	char num[32];
	size_t len = strlen(v);
	long long mult = 1, n;

	if (len == 0 || len >= sizeof(num)) {
		*errstr = "invalid size";
		return -1;
	}
	memcpy(num, v, len + 1);
	switch (num[len - 1]) {
	case 'k': case 'K': mult = 1024; break;
	case 'm': case 'M': mult = 1024 * 1024; break;
	case 'g': case 'G': mult = GB; break;
	}
	if (mult != 1)
		num[len - 1] = '\0';
	n = util_strtonum(num, 0, max / mult, errstr);
	if (*errstr != NULL)
		return -1;
	if (n * mult < min) {
		*errstr = "too small";
		return -1;
	}
	*out = n * mult;
	return 0;
}

static int
conf_check_listen(const char *v)
{
	struct sockaddr_storage ss;
	int len;

	return util_parse_listen(v, &ss, &len);
}

static int
conf_check_enum(const char *choices, const char *v)
{
	size_t n = strlen(v);
	const char *p = choices;

	while (*p != '\0') {
		const char *bar = strchr(p, '|');
		size_t len = bar ? (size_t)(bar - p) : strlen(p);

		if (len == n && strncmp(p, v, n) == 0)
			return 0;
		p += len + (bar != NULL);
	}
	return -1;
}

/* A base URL that is put in front of paths and shown to people: one of the
 * schemes, a host, and only printable characters that need no quoting in
 * a certificate, a configuration file or a shell line. */
static int
conf_check_url(const char *schemes, const char *v)
{
	const char *sep = strstr(v, "://");
	char scheme[16];

	if (*v == '\0')
		return 0;
	if (sep == NULL || (size_t)(sep - v) >= sizeof(scheme) ||
	    strlen(v) > 255)
		return -1;
	memcpy(scheme, v, (size_t)(sep - v));
	scheme[sep - v] = '\0';
	if (conf_check_enum(schemes, scheme) == -1 || sep[3] == '\0' ||
	    sep[3] == '/' || sep[3] == ':')
		return -1;
	for (const char *p = v; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || strchr("\"'\\<>`", *p) != NULL)
			return -1;
	return 0;
}

static int
conf_set(struct conf *c, const struct conf_option *o, const char *v,
    const char **errstr)
{
	void *field = (char *)c + o->off;
	long long n;
	char **sp;

	*errstr = NULL;
	switch (o->type) {
	case CONF_LEVEL:
		if (log_level_parse(v, (enum log_level *)field) == -1)
			*errstr = "expected debug, info, warn or error";
		return *errstr ? -1 : 0;
	case CONF_BOOL:
		if (conf_parse_bool(v, (int *)field) == -1)
			*errstr = "expected yes or no";
		return *errstr ? -1 : 0;
	case CONF_INT:
		n = util_strtonum(v, o->min, o->max, errstr);
		if (*errstr != NULL)
			return -1;
		*(long long *)field = n;
		return 0;
	case CONF_SIZE:
		return conf_parse_size(v, o->min, o->max, (long long *)field, errstr);
	case CONF_ENUM:
		if (conf_check_enum(o->choices, v) == -1) {
			*errstr = "value not one of the allowed choices";
			return -1;
		}
		break;
	case CONF_LISTEN:
		if (conf_check_listen(v) == -1) {
			*errstr = "expected address:port";
			return -1;
		}
		break;
	case CONF_URL:
		if (conf_check_url(o->choices, v) == -1) {
			*errstr = strchr(o->choices, '|') ?
			    "expected an http:// or https:// URL" :
			    "expected an https:// URL";
			return -1;
		}
		break;
	case CONF_STR:
	case CONF_PATH:
	case CONF_PATHS:
		break;
	}
	sp = field;
	free(*sp);
	*sp = xstrdup(v);
	return 0;
}

void
conf_init(struct conf *c)
{
	const char *errstr;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		if (conf_set(c, &conf_options[i], conf_options[i].def, &errstr) == -1)
			fatalx("default of %s.%s: %s", conf_options[i].section,
			    conf_options[i].name, errstr);
	}
}

void
conf_free(struct conf *c)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		switch (conf_options[i].type) {
		case CONF_STR: case CONF_PATH: case CONF_ENUM: case CONF_LISTEN:
		case CONF_PATHS: case CONF_URL:
			free(*(char **)((char *)c + conf_options[i].off));
			break;
		default:
			break;
		}
	}
	free(c->path);
	memset(c, 0, sizeof(*c));
}

static const struct conf_option *
conf_find(const char *section, const char *name, size_t *idx)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		if (strcmp(conf_options[i].section, section) == 0 &&
		    strcmp(conf_options[i].name, name) == 0) {
			*idx = i;
			return &conf_options[i];
		}
	}
	return NULL;
}

static int
conf_section_known(const char *section)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++)
		if (strcmp(conf_options[i].section, section) == 0)
			return 1;
	return 0;
}

/* Resolve relative paths against the config file's directory, so a config
 * and its files can move together (what the quick start and tests rely on). */
/* Each word of a CONF_PATHS value, resolved, joined by single spaces. */
static char *
conf_resolve_list(const char *dir, const char *v)
{
	size_t cap = 1, len = 0, n;
	char *out = xmalloc(cap), *word, *joined;
	const char *p = v;

	out[0] = '\0';
	while (*(p += strspn(p, " \t")) != '\0') {
		n = strcspn(p, " \t");
		word = xstrndup(p, n);
		p += n;
		joined = util_path_join(dir, word);	/* word itself if absolute */
		free(word);
		cap = len + strlen(joined) + 2;
		out = xrealloc(out, cap);
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? " " : "",
		    joined);
		free(joined);
	}
	return out;
}

static void
conf_resolve_paths(struct conf *c, const char *dir)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++) {
		char **sp, *joined;

		if (conf_options[i].type == CONF_PATHS) {
			sp = (char **)((char *)c + conf_options[i].off);
			joined = conf_resolve_list(dir, *sp);
			free(*sp);
			*sp = joined;
			continue;
		}
		if (conf_options[i].type != CONF_PATH)
			continue;
		sp = (char **)((char *)c + conf_options[i].off);
		/* "auto" is a keyword of tls_cert, not a file name. */
		if ((*sp)[0] == '\0' || (*sp)[0] == '/' ||
		    (strcmp(conf_options[i].name, "tls_cert") == 0 &&
		    strcmp(*sp, "auto") == 0))
			continue;
		joined = util_path_join(dir, *sp);
		free(*sp);
		*sp = joined;
	}
}

/* Strip one pair of surrounding double quotes, for values with edge spaces. */
static char *
conf_unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		return v + 1;
	}
	return v;
}

int
conf_parse(struct conf *c, const char *name, const char *text,
    const char *dir, char *err, size_t errlen)
{
	char line[CONF_LINE_MAX + 2], section[64] = "";
	unsigned char seen[CONF_NOPTIONS] = { 0 };
	const char *p = text, *errstr;
	int lineno = 0;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		const struct conf_option *o;
		char *s, *eq, *key, *val;
		size_t idx;

		lineno++;
		if (len > CONF_LINE_MAX) {
			snprintf(err, errlen, "%s:%d: line too long", name, lineno);
			return -1;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl != NULL);
		s = util_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			size_t sl = strlen(s);

			if (s[sl - 1] != ']' || sl - 2 >= sizeof(section)) {
				snprintf(err, errlen, "%s:%d: malformed section header", name, lineno);
				return -1;
			}
			s[sl - 1] = '\0';
			s = util_trim(s + 1);
			if (!conf_section_known(s)) {
				snprintf(err, errlen, "%s:%d: unknown section [%s]", name, lineno, s);
				return -1;
			}
			snprintf(section, sizeof(section), "%s", s);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errlen, "%s:%d: expected key = value", name, lineno);
			return -1;
		}
		*eq = '\0';
		key = util_trim(s);
		val = conf_unquote(util_trim(eq + 1));
		if (section[0] == '\0') {
			snprintf(err, errlen, "%s:%d: %s outside of any [section]", name, lineno, key);
			return -1;
		}
		if ((o = conf_find(section, key, &idx)) == NULL) {
			snprintf(err, errlen, "%s:%d: unknown option %s in [%s]", name, lineno, key, section);
			return -1;
		}
		if (seen[idx]++) {
			snprintf(err, errlen, "%s:%d: %s set twice in [%s]", name, lineno, key, section);
			return -1;
		}
		if (conf_set(c, o, val, &errstr) == -1) {
			snprintf(err, errlen, "%s:%d: %s: %s", name, lineno, key, errstr);
			return -1;
		}
	}
	conf_resolve_paths(c, dir);
	return 0;
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	const char *errstr;
	char *text, *dir, *slash;
	int rc;

	if (util_read_file(path, 1024 * 1024, &text, NULL, &errstr) == -1) {
		snprintf(err, errlen, "%s: %s", path, errstr);
		return -1;
	}
	/* Absolute, so relative paths still resolve after daemon() chdir("/"). */
	if ((dir = realpath(path, NULL)) == NULL) {
		free(text);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	slash = strrchr(dir, '/');
	*(slash == dir ? slash + 1 : slash) = '\0';
	rc = conf_parse(c, path, text, dir, err, errlen);
	free(text);
	free(dir);
	if (rc == 0)
		c->path = xstrdup(path);
	return rc;
}

void
conf_list_options(void)
{
	for (size_t i = 0; i < CONF_NOPTIONS; i++)
		printf("%s.%s\t%s\n", conf_options[i].section,
		    conf_options[i].name, conf_options[i].def);
}

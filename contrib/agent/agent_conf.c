/* agent_conf.c: the option table is the one description of the
 * configuration; ql-agent(8) and etc/ql-agent.conf follow it. An unknown
 * key, a bad value or a missing required key fails at load time with
 * file:line. */
#include "agent_conf.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "agent_util.h"

#define AGENT_CONF_MAX	(64 * 1024)

enum agent_conf_type { C_STR, C_URL, C_LONG, C_LLONG, C_FRACTION, C_KEYSTORE, C_HANDLE };

struct agent_conf_opt {
	const char		*name;
	enum agent_conf_type	 type;
	const char		*def;	/* NULL: required */
	long long		 min, max;
	size_t			 off;
};

#define O(f) offsetof(struct agent_conf, f)
static const struct agent_conf_opt agent_conf_opts[] = {
	{ "est_url", C_URL, NULL, 0, 0, O(est_url) },
	{ "device_url", C_URL, NULL, 0, 0, O(device_url) },
	{ "root_ca", C_STR, NULL, 0, 0, O(root_ca) },
	{ "project", C_STR, NULL, 0, 0, O(project) },
	{ "hardware", C_STR, "", 0, 0, O(hardware) },
	{ "label", C_STR, "", 0, 0, O(label) },
	{ "key_store", C_KEYSTORE, "file", 0, 0, O(key_store) },
	{ "tpm2_tcti", C_STR, "", 0, 0, O(tpm2_tcti) },
	{ "tpm2_key", C_STR, "", 0, 0, O(tpm2_key) },
	{ "tpm2_ek_handle", C_HANDLE, "0x81010001", 0, 0, O(tpm2_ek_handle) },
	{ "tpm2_ak_handle", C_HANDLE, "0x81010002", 0, 0, O(tpm2_ak_handle) },
	{ "tpm2_srk_handle", C_HANDLE, "0x81000001", 0, 0, O(tpm2_srk_handle) },
	{ "state_dir", C_STR, "/var/lib/ql-agent", 0, 0, O(state_dir) },
	{ "poll_interval", C_LONG, "300", 1, 86400, O(poll_interval) },
	{ "renew_fraction", C_FRACTION, "0.66", 0, 0, O(renew_fraction) },
	{ "install_hook", C_STR, "", 0, 0, O(install_hook) },
	{ "enroll_wait", C_LONG, "3600", 0, 7 * 86400, O(enroll_wait) },
	{ "retry_max", C_LONG, "300", 1, 86400, O(retry_max) },
	{ "timeout", C_LONG, "60", 1, 3600, O(timeout) },
	{ "max_image_size", C_LLONG, "17179869184", 1, 1LL << 50, O(max_image_size) },
};
#define AGENT_CONF_NOPTS (sizeof(agent_conf_opts) / sizeof(agent_conf_opts[0]))

static char *
agent_conf_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int
agent_conf_set(struct agent_conf *c, const struct agent_conf_opt *o, const char *v,
    const char **why)
{
	char *end, **sp;
	long long n;
	double d;

	switch (o->type) {
	case C_URL:
		if (strncmp(v, "https://", 8) != 0 || strlen(v) < 9) {
			*why = "must be an https:// URL";
			return -1;
		}
		/* FALLTHROUGH */
	case C_STR:
		sp = (char **)((char *)c + o->off);
		free(*sp);
		if ((*sp = strdup(v)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		/* A trailing slash would double in every URL built from it. */
		if (o->type == C_URL && (*sp)[strlen(*sp) - 1] == '/')
			(*sp)[strlen(*sp) - 1] = '\0';
		return 0;
	case C_LONG:
	case C_LLONG:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0' || n < o->min || n > o->max) {
			*why = "must be an integer in range";
			return -1;
		}
		if (o->type == C_LONG)
			*(long *)((char *)c + o->off) = (long)n;
		else
			*(long long *)((char *)c + o->off) = n;
		return 0;
	case C_FRACTION:
		errno = 0;
		d = strtod(v, &end);
		if (errno != 0 || end == v || *end != '\0' || !(d > 0.0 && d <= 1.0)) {
			*why = "must be a number greater than 0 and at most 1";
			return -1;
		}
		*(double *)((char *)c + o->off) = d;
		return 0;
	case C_HANDLE:
		/* A TPM persistent handle, in hex as TPM tools print them. */
		errno = 0;
		n = strtoll(v, &end, 16);
		if (strncmp(v, "0x", 2) != 0 || errno != 0 || *end != '\0' ||
		    n < 0x81000000LL || n > 0x81ffffffLL) {
			*why = "must be a persistent handle, 0x81000000 to 0x81ffffff";
			return -1;
		}
		*(long *)((char *)c + o->off) = (long)n;
		return 0;
	case C_KEYSTORE:
		if (strcmp(v, "file") == 0)
			c->key_store = AGENT_KEY_FILE;
		else if (strcmp(v, "tpm2") == 0)
			c->key_store = AGENT_KEY_TPM2;
		else {
			*why = "must be file or tpm2";
			return -1;
		}
		return 0;
	}
	return -1;
}

static const struct agent_conf_opt *
agent_conf_find(const char *name)
{
	size_t i;

	for (i = 0; i < AGENT_CONF_NOPTS; i++)
		if (strcmp(agent_conf_opts[i].name, name) == 0)
			return &agent_conf_opts[i];
	return NULL;
}

int
agent_conf_load(const char *path, struct agent_conf *c)
{
	const struct agent_conf_opt *o;
	unsigned char seen[AGENT_CONF_NOPTS];
	char *text = NULL, *line, *next, *eq, *key, *val;
	const char *why = NULL;
	size_t i;
	int lineno = 0;

	memset(c, 0, sizeof(*c));
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < AGENT_CONF_NOPTS; i++)
		if (agent_conf_opts[i].def != NULL &&
		    agent_conf_set(c, &agent_conf_opts[i], agent_conf_opts[i].def, &why) == -1)
			goto fail;
	if (agent_read_file(path, AGENT_CONF_MAX, &text, NULL) == -1) {
		agent_err("%s: %s", path, strerror(errno));
		goto fail;
	}
	for (line = text; line != NULL; line = next) {
		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line = agent_conf_trim(line);
		if (*line == '\0' || *line == '#')
			continue;
		if ((eq = strchr(line, '=')) == NULL) {
			agent_err("%s:%d: expected key = value", path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = agent_conf_trim(line);
		val = agent_conf_trim(eq + 1);
		if ((o = agent_conf_find(key)) == NULL) {
			agent_err("%s:%d: unknown key '%s'", path, lineno, key);
			goto fail;
		}
		if (seen[o - agent_conf_opts]) {
			agent_err("%s:%d: %s set twice", path, lineno, key);
			goto fail;
		}
		seen[o - agent_conf_opts] = 1;
		if (agent_conf_set(c, o, val, &why) == -1) {
			agent_err("%s:%d: %s %s", path, lineno, key, why);
			goto fail;
		}
	}
	for (i = 0; i < AGENT_CONF_NOPTS; i++)
		if (agent_conf_opts[i].def == NULL && !seen[i]) {
			agent_err("%s: %s is required", path, agent_conf_opts[i].name);
			goto fail;
		}
	if (c->project[0] == '\0' ||
	    strspn(c->project, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->project)) {
		agent_err("%s: project must be a project name ([a-z0-9-])", path);
		goto fail;
	}
	free(text);
	return 0;
fail:
	free(text);
	agent_conf_free(c);
	return -1;
}

void
agent_conf_free(struct agent_conf *c)
{
	size_t i;

	for (i = 0; i < AGENT_CONF_NOPTS; i++)
		if (agent_conf_opts[i].type == C_STR || agent_conf_opts[i].type == C_URL) {
			char **sp = (char **)((char *)c + agent_conf_opts[i].off);
			free(*sp);
			*sp = NULL;
		}
}

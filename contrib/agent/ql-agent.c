/* ql-agent.c: command line, start-up and the exit code of each command.
 * ql-agent [-c FILE] [-v|-q] enroll [--token T | --token-file F] [--wait S]
 *                            status [--json]
 *                            renew [--force]
 *                            run [--once] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>
#include <yajl/yajl_gen.h>

#include "config.h"

#include "agent.h"
#include "agent_attest.h"
#include "agent_conf.h"
#include "agent_est.h"
#include "agent_key.h"
#include "agent_net.h"
#include "agent_run.h"
#include "agent_state.h"
#include "agent_util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

static void
agent_usage(void)
{
	fprintf(stderr, "usage: ql-agent [-c config] [-v | -q] enroll [--token TOKEN |"
	    " --token-file FILE] [--wait SECONDS]\n"
	    "       ql-agent [-c config] status [--json]\n"
	    "       ql-agent [-c config] [-v | -q] renew [--force]\n"
	    "       ql-agent [-c config] [-v | -q] run [--once]\n");
}

static int
agent_cmd_enroll(const struct agent_conf *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'f' },
		{ "wait", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	char *token = NULL, *end, id[33];
	long wait = c->enroll_wait;
	size_t len;
	int ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			free(token);
			if ((token = strdup(optarg)) == NULL)
				return AGENT_EFAIL;
			break;
		case 'f':
			free(token);
			if (agent_read_file(optarg, 4096, &token, &len) == -1) {
				agent_err("%s: %s", optarg, strerror(errno));
				return AGENT_EUSAGE;
			}
			token[strcspn(token, "\r\n")] = '\0';
			break;
		case 'w':
			errno = 0;
			wait = strtol(optarg, &end, 10);
			if (errno || *end != '\0' || wait < 0 || wait > 7 * 86400) {
				agent_err("--wait: seconds, 0 to 604800");
				free(token);
				return AGENT_EUSAGE;
			}
			break;
		default:
			agent_usage();
			free(token);
			return AGENT_EUSAGE;
		}
	}
	if (optind != argc) {
		agent_usage();
		free(token);
		return AGENT_EUSAGE;
	}
	rc = agent_est_enroll(c, token, wait, id);
	if (token != NULL) {
		OPENSSL_cleanse(token, strlen(token));
		free(token);
	}
	if (rc == AGENT_OK)
		printf("%s\n", id);
	return rc;
}

static void
agent_status_kv(yajl_gen g, const char *k, const char *v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	if (v == NULL)
		yajl_gen_null(g);
	else
		yajl_gen_string(g, (const unsigned char *)v, strlen(v));
}

static int
agent_cmd_status(const struct agent_conf *c, int argc, char **argv)
{
	struct agent_ident id;
	struct agent_state st;
	char subject[256] = "", expires[32] = "", polled[32] = "", attested[32] = "";
	const unsigned char *buf;
	struct tm tm;
	size_t len;
	yajl_gen g;
	int rc, is_json = argc == 2 && strcmp(argv[1], "--json") == 0;

	if (argc > 2 || (argc == 2 && !is_json)) {
		agent_usage();
		return AGENT_EUSAGE;
	}
	if (agent_state_load(c, &st) == -1)
		return AGENT_EFAIL;
	rc = agent_ident_load(c, &id);
	if (rc != AGENT_OK && rc != AGENT_ENOTENROLLED)
		return rc;
	if (rc == AGENT_OK) {
		BIO *b = BIO_new(BIO_s_mem());
		char *p;
		if (b != NULL) {
			X509_NAME_print_ex(b, X509_get_subject_name(id.cert), 0, XN_FLAG_RFC2253);
			len = (size_t)BIO_get_mem_data(b, &p);
			snprintf(subject, sizeof(subject), "%.*s", (int)len, p);
			BIO_free(b);
		}
		if (ASN1_TIME_to_tm(X509_get0_notAfter(id.cert), &tm) == 1)
			agent_time_format(timegm(&tm), expires, sizeof(expires));
	}
	if (st.last_poll != 0)
		agent_time_format(st.last_poll, polled, sizeof(polled));
	if (st.attested_at != 0)
		agent_time_format(st.attested_at, attested, sizeof(attested));
	if (is_json) {
		if ((g = yajl_gen_alloc(NULL)) == NULL)
			return AGENT_EFAIL;
		yajl_gen_map_open(g);
		agent_status_kv(g, "device_id", rc == AGENT_OK ? id.device_id : NULL);
		agent_status_kv(g, "project", c->project);
		agent_status_kv(g, "subject", rc == AGENT_OK ? subject : NULL);
		agent_status_kv(g, "expires", rc == AGENT_OK ? expires : NULL);
		agent_status_kv(g, "installed_version",
		    st.installed_version[0] ? st.installed_version : NULL);
		agent_status_kv(g, "last_poll", st.last_poll ? polled : NULL);
		agent_status_kv(g, "last_result", st.last_result[0] ? st.last_result : NULL);
		agent_status_kv(g, "attestation", st.attestation[0] ? st.attestation : NULL);
		agent_status_kv(g, "attested_at", st.attested_at ? attested : NULL);
		yajl_gen_map_close(g);
		yajl_gen_get_buf(g, &buf, &len);
		printf("%.*s\n", (int)len, buf);
		yajl_gen_free(g);
	} else {
		printf("device_id: %s\n", rc == AGENT_OK ? id.device_id : "(not enrolled)");
		printf("project: %s\n", c->project);
		if (rc == AGENT_OK) {
			printf("subject: %s\n", subject);
			printf("expires: %s\n", expires);
		}
		printf("installed_version: %s\n",
		    st.installed_version[0] ? st.installed_version : "(none)");
		printf("last_poll: %s\n", st.last_poll ? polled : "(never)");
		printf("last_result: %s\n", st.last_result[0] ? st.last_result : "(none)");
		if (st.attestation[0] != '\0')
			printf("attestation: %s at %s\n", st.attestation, attested);
		else
			printf("attestation: (none)\n");
	}
	if (rc == AGENT_OK)
		agent_ident_free(&id);
	/* Scripts can ask "enrolled?" with the exit status. */
	return rc;
}

static int
agent_cmd_renew(const struct agent_conf *c, int argc, char **argv)
{
	struct agent_ident id;
	int rc, is_force = argc == 2 && strcmp(argv[1], "--force") == 0;

	if (argc > 2 || (argc == 2 && !is_force)) {
		agent_usage();
		return AGENT_EUSAGE;
	}
	if ((rc = agent_ident_load(c, &id)) != AGENT_OK) {
		if (rc == AGENT_ENOTENROLLED)
			agent_err("not enrolled: run ql-agent enroll first");
		return rc;
	}
	if (is_force || agent_est_renewal_due(c, &id)) {
		if ((rc = agent_est_reenroll(c, &id)) == AGENT_OK)
			agent_info("renewed the certificate of device %s", id.device_id);
	} else
		agent_info("renewal not due yet");
	agent_ident_free(&id);
	return rc;
}

static int
agent_cmd_run(const struct agent_conf *c, int argc, char **argv)
{
	int is_once = argc == 2 && strcmp(argv[1], "--once") == 0;

	if (argc > 2 || (argc == 2 && !is_once)) {
		agent_usage();
		return AGENT_EUSAGE;
	}
	return agent_run(c, is_once);
}

int
main(int argc, char **argv)
{
	const char *conf_path = SYSCONFDIR "/ql-agent.conf";
	struct agent_conf c;
	int ch, rc;

	while ((ch = getopt(argc, argv, "+c:qvV")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'q':
			agent_verbosity = 0;
			break;
		case 'v':
			agent_verbosity = 2;
			break;
		case 'V':
			printf("ql-agent %s\n", PACKAGE_VERSION);
			return AGENT_OK;
		default:
			agent_usage();
			return AGENT_EUSAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		agent_usage();
		return AGENT_EUSAGE;
	}
	if (strcmp(argv[0], "enroll") != 0 && strcmp(argv[0], "status") != 0 &&
	    strcmp(argv[0], "run") != 0 && strcmp(argv[0], "renew") != 0) {
		agent_err("unknown command '%s'", argv[0]);
		agent_usage();
		return AGENT_EUSAGE;
	}
	if (agent_conf_load(conf_path, &c) == -1)
		return AGENT_EUSAGE;
	if (agent_attest_conf(&c) == -1) {
		agent_conf_free(&c);
		return AGENT_EFAIL;
	}
	if (agent_key_init(&c) == -1 || agent_net_init(&c) == -1) {
		agent_key_cleanup();
		agent_conf_free(&c);
		return AGENT_EFAIL;
	}
	if (strcmp(argv[0], "enroll") == 0)
		rc = agent_cmd_enroll(&c, argc, argv);
	else if (strcmp(argv[0], "status") == 0)
		rc = agent_cmd_status(&c, argc, argv);
	else if (strcmp(argv[0], "renew") == 0)
		rc = agent_cmd_renew(&c, argc, argv);
	else
		rc = agent_cmd_run(&c, argc, argv);
	agent_net_cleanup();
	agent_key_cleanup();
	agent_conf_free(&c);
	return rc;
}

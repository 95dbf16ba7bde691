/* check_conf.c: the INI parser (conf_parse) and the number and listen
 * parsers it relies on (util_strtonum, util_parse_listen), as tables of
 * input -> expected field value or exact "test.conf:LINE: reason". */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"
#include "util.h"

#define CHECK_CONF_NAME	"test.conf"
#define CHECK_CONF_DIR	"/etc/ql"
#define CHECK_CONF_GB	(1024LL * 1024 * 1024)
#define CHECK_CONF_N(a)	(sizeof(a) / sizeof((a)[0]))

/* Which struct conf field a case looks at, and how to read it. */
enum check_conf_kind { CK_LL, CK_INT, CK_LEVEL, CK_STR };

struct check_conf_field {
	const char		*name;	/* for failure messages */
	enum check_conf_kind	 kind;
	size_t			 off;
	long long		 num;	/* CK_LL, CK_INT, CK_LEVEL */
	const char		*str;	/* CK_STR */
};

#define F_LL(f, v)	{ #f, CK_LL, offsetof(struct conf, f), (v), NULL }
#define F_INT(f, v)	{ #f, CK_INT, offsetof(struct conf, f), (v), NULL }
#define F_LEVEL(f, v)	{ #f, CK_LEVEL, offsetof(struct conf, f), (v), NULL }
#define F_STR(f, v)	{ #f, CK_STR, offsetof(struct conf, f), 0, (v) }

static void
check_conf_field(const struct conf *c, const struct check_conf_field *f,
    const char *ctx)
{
	const char *base = (const char *)c + f->off;

	switch (f->kind) {
	case CK_LL:
		ck_assert_msg(*(const long long *)(const void *)base == f->num,
		    "%s: %s = %lld, expected %lld", ctx, f->name,
		    *(const long long *)(const void *)base, f->num);
		break;
	case CK_INT:
		ck_assert_msg(*(const int *)(const void *)base == f->num,
		    "%s: %s = %d, expected %lld", ctx, f->name,
		    *(const int *)(const void *)base, f->num);
		break;
	case CK_LEVEL:
		ck_assert_msg(*(const enum log_level *)(const void *)base ==
		    (enum log_level)f->num, "%s: %s = %d, expected %lld", ctx,
		    f->name, (int)*(const enum log_level *)(const void *)base,
		    f->num);
		break;
	case CK_STR: {
		const char *got = *(char *const *)(const void *)base;

		ck_assert_msg(got != NULL, "%s: %s is NULL", ctx, f->name);
		ck_assert_msg(strcmp(got, f->str) == 0,
		    "%s: %s = \"%s\", expected \"%s\"", ctx, f->name, got, f->str);
		break;
	}
	}
}

/* One option set in a small file -> one field checked. */
struct check_conf_ok_case {
	const char		*text;
	struct check_conf_field	 want;
};

static const struct check_conf_ok_case check_conf_ok_cases[] = {
	/* integers and their bounds */
	{ "[database]\npool_size = 8\n", F_LL(db_pool_size, 8) },
	{ "[database]\npool_size = 1\n", F_LL(db_pool_size, 1) },
	{ "[database]\npool_size = 64\n", F_LL(db_pool_size, 64) },
	{ "[database]\nqueue_max = 1000000\n", F_LL(db_queue_max, 1000000) },
	{ "[server]\nshutdown_timeout = 0\n", F_LL(shutdown_timeout, 0) },
	{ "[server]\nrequest_timeout = 3600\n", F_LL(request_timeout, 3600) },
	/* sizes */
	{ "[server]\nmax_body_size = 2K\n", F_LL(max_body_size, 2048) },
	{ "[server]\nmax_body_size = 2k\n", F_LL(max_body_size, 2048) },
	{ "[server]\nmax_body_size = 3M\n", F_LL(max_body_size, 3 * 1024 * 1024) },
	{ "[server]\nmax_body_size = 3m\n", F_LL(max_body_size, 3 * 1024 * 1024) },
	{ "[server]\nmax_body_size = 1G\n", F_LL(max_body_size, CHECK_CONF_GB) },
	{ "[server]\nmax_body_size = 4g\n", F_LL(max_body_size, 4 * CHECK_CONF_GB) },
	{ "[server]\nmax_body_size = 64\n", F_LL(max_body_size, 64) },
	{ "[server]\nmax_body_size = 100000\n", F_LL(max_body_size, 100000) },
	{ "[server]\nmax_header_size = 1M\n", F_LL(max_header_size, 1024 * 1024) },
	{ "[server]\nmax_header_size = 1024\n", F_LL(max_header_size, 1024) },
	{ "[server]\nmax_header_size = 1K\n", F_LL(max_header_size, 1024) },
	/* booleans, every spelling, case-insensitive */
	{ "[server]\ndebug_endpoints = yes\n", F_INT(debug_endpoints, 1) },
	{ "[server]\ndebug_endpoints = on\n", F_INT(debug_endpoints, 1) },
	{ "[server]\ndebug_endpoints = true\n", F_INT(debug_endpoints, 1) },
	{ "[server]\ndebug_endpoints = 1\n", F_INT(debug_endpoints, 1) },
	{ "[server]\ndebug_endpoints = YES\n", F_INT(debug_endpoints, 1) },
	{ "[server]\ndebug_endpoints = True\n", F_INT(debug_endpoints, 1) },
	{ "[admin]\nenabled = no\n", F_INT(admin.enabled, 0) },
	{ "[admin]\nenabled = off\n", F_INT(admin.enabled, 0) },
	{ "[admin]\nenabled = false\n", F_INT(admin.enabled, 0) },
	{ "[admin]\nenabled = 0\n", F_INT(admin.enabled, 0) },
	{ "[admin]\nenabled = OFF\n", F_INT(admin.enabled, 0) },
	{ "[device]\nenabled = no\n", F_INT(device.enabled, 0) },
	{ "[pki]\nenabled = false\n", F_INT(pki.enabled, 0) },
	/* same key name in another section is another option */
	{ "[admin]\nenabled = no\n[device]\nenabled = no\n", F_INT(device.enabled, 0) },
	{ "[admin]\nenabled = no\n[device]\nenabled = yes\n", F_INT(admin.enabled, 0) },
	/* log level and target */
	{ "[server]\nlog_level = debug\n", F_LEVEL(log_level, LOG_LEVEL_DEBUG) },
	{ "[server]\nlog_level = info\n", F_LEVEL(log_level, LOG_LEVEL_INFO) },
	{ "[server]\nlog_level = warn\n", F_LEVEL(log_level, LOG_LEVEL_WARN) },
	{ "[server]\nlog_level = error\n", F_LEVEL(log_level, LOG_LEVEL_ERROR) },
	{ "[server]\nlog_target = syslog\n", F_STR(log_target, "syslog") },
	{ "[server]\nlog_target = stderr\n", F_STR(log_target, "stderr") },
	/* listeners */
	{ "[admin]\nlisten = 127.0.0.1:0\n", F_STR(admin.listen, "127.0.0.1:0") },
	{ "[device]\nlisten = [::1]:8443\n", F_STR(device.listen, "[::1]:8443") },
	{ "[pki]\nlisten = 0.0.0.0:65535\n", F_STR(pki.listen, "0.0.0.0:65535") },
	{ "[pki]\nlisten = [::]:80\n", F_STR(pki.listen, "[::]:80") },
	/* paths: relative -> joined with dir, absolute and empty untouched */
	{ "[pkcs11]\npin_file = pin2\n", F_STR(p11_pin_file, "/etc/ql/pin2") },
	{ "[pkcs11]\npin_file = sub/dir/pin\n", F_STR(p11_pin_file, "/etc/ql/sub/dir/pin") },
	{ "[pkcs11]\npin_file = /run/secrets/pin\n", F_STR(p11_pin_file, "/run/secrets/pin") },
	{ "[pkcs11]\nmodule = /opt/lib/p11.so\n", F_STR(p11_module, "/opt/lib/p11.so") },
	{ "[pkcs11]\nsofthsm2_conf = softhsm2.conf\n", F_STR(p11_softhsm2_conf, "/etc/ql/softhsm2.conf") },
	{ "[server]\npid_file = /run/ql.pid\n", F_STR(pid_file, "/run/ql.pid") },
	{ "[server]\nlog_file = ql.log\n", F_STR(log_file, "/etc/ql/ql.log") },
	{ "[admin]\ntls_cert = certs/a.crt\n", F_STR(admin.tls_cert, "/etc/ql/certs/a.crt") },
	{ "[device]\nclient_ca = ca.pem\n", F_STR(device.client_ca, "/etc/ql/ca.pem") },
	{ "[device]\nclient_ca = \"\"\n", F_STR(device.client_ca, "") },
	{ "[server]\nstate_dir = state\n", F_STR(state_dir, "/etc/ql/state") },
	{ "[server]\nstate_dir = /var/lib/ql\n", F_STR(state_dir, "/var/lib/ql") },
	{ "[pkcs11]\nengine = /opt/engines/pkcs11.so\n", F_STR(p11_engine, "/opt/engines/pkcs11.so") },
	/* "auto" names no file: tls_cert keeps it as is */
	{ "[admin]\ntls_cert = auto\n", F_STR(admin.tls_cert, "auto") },
	{ "[device]\ntls_cert = auto\n", F_STR(device.tls_cert, "auto") },
	{ "[admin]\ntls_cert = auto.crt\n", F_STR(admin.tls_cert, "/etc/ql/auto.crt") },
	/* [ca] and [pki] */
	{ "[ca]\nkey_type = rsa-3072\n", F_STR(ca_key_type, "rsa-3072") },
	{ "[ca]\nkey_type = ec-p256\n", F_STR(ca_key_type, "ec-p256") },
	{ "[ca]\ncert_validity_days = 3650\n", F_LL(ca_cert_validity_days, 3650) },
	{ "[ca]\ncert_validity_days = 1\n", F_LL(ca_cert_validity_days, 1) },
	{ "[ca]\ncrl_validity_hours = 720\n", F_LL(ca_crl_validity_hours, 720) },
	{ "[ca]\nocsp_validity_hours = 1\n", F_LL(ca_ocsp_validity_hours, 1) },
	{ "[pki]\nurl = http://pki.example:8080\n", F_STR(pki_url, "http://pki.example:8080") },
	{ "[pki]\nurl = https://pki.example/ql/\n", F_STR(pki_url, "https://pki.example/ql/") },
	{ "[pki]\nurl = \"\"\n", F_STR(pki_url, "") },
	{ "[device]\nurl = https://dev.example:9444\n", F_STR(device_url, "https://dev.example:9444") },
	{ "[device]\nurl = https://[2001:db8::1]:8444/\n", F_STR(device_url, "https://[2001:db8::1]:8444/") },
	{ "[server]\ntls_names = ql.example,10.0.0.1\n", F_STR(tls_names, "ql.example,10.0.0.1") },
	/* strings: '=' inside a value, quotes strip one pair only */
	{ "[database]\nconninfo = host=db port=5432\n", F_STR(db_conninfo, "host=db port=5432") },
	{ "[database]\nconninfo = \"  host=db  \"\n", F_STR(db_conninfo, "  host=db  ") },
	{ "[pkcs11]\ntoken_label = \"\"\n", F_STR(p11_token_label, "") },
	{ "[pkcs11]\ntoken_label = \"\n", F_STR(p11_token_label, "\"") },
	{ "[pkcs11]\ntoken_label = \"\"a\"\"\n", F_STR(p11_token_label, "\"a\"") },
	{ "[pkcs11]\ntoken_label = my token\n", F_STR(p11_token_label, "my token") },
	{ "[pkcs11]\ntoken_label = a # not a comment\n", F_STR(p11_token_label, "a # not a comment") },
	/* layout: comments, blank lines, indentation, CRLF, no final newline */
	{ "# comment\n; other comment\n\n[database]\n  # indented\n\n\tpool_size=3\n", F_LL(db_pool_size, 3) },
	{ "[database]\r\npool_size = 5\r\n", F_LL(db_pool_size, 5) },
	{ "[database]\npool_size = 6", F_LL(db_pool_size, 6) },
	{ "   [ database ]   \n  pool_size   =   7   \n", F_LL(db_pool_size, 7) },
	{ "[server]\n[database]\npool_size = 9\n[server]\n", F_LL(db_pool_size, 9) },
	{ "", F_LL(db_pool_size, 2) },
	{ "\n\n\n", F_LL(db_pool_size, 2) },
	{ "# only a comment", F_LL(db_pool_size, 2) },
};

START_TEST(test_conf_parse_valid_sets_field)
{
	const struct check_conf_ok_case *tc = &check_conf_ok_cases[_i];
	char err[CONF_ERRLEN] = "";
	struct conf c;
	int rc;

	conf_init(&c);
	rc = conf_parse(&c, CHECK_CONF_NAME, tc->text, CHECK_CONF_DIR, err,
	    sizeof(err));
	ck_assert_msg(rc == 0, "case %d: rc %d, err \"%s\"", _i, rc, err);
	check_conf_field(&c, &tc->want, tc->text);
	conf_free(&c);
}
END_TEST

/* Every option unset: the defaults of the table, paths resolved. */
static const struct check_conf_field check_conf_defaults[] = {
	F_LEVEL(log_level, LOG_LEVEL_INFO),
	F_STR(log_target, "stderr"),
	F_STR(log_file, ""),
	F_STR(pid_file, ""),
	F_LL(max_body_size, 1024 * 1024),
	F_LL(max_header_size, 16 * 1024),
	F_LL(request_timeout, 30),
	F_LL(shutdown_timeout, 10),
	F_INT(debug_endpoints, 0),
	F_STR(state_dir, "/etc/ql/."),
	F_STR(tls_names, "localhost,127.0.0.1"),
	F_STR(db_conninfo, "dbname=quarklink"),
	F_LL(db_pool_size, 2),
	F_LL(db_queue_max, 1024),
	F_LL(db_reconnect_max, 5),
	F_LL(db_query_timeout, 10),
	F_STR(p11_module, "/usr/lib/softhsm/libsofthsm2.so"),
	F_STR(p11_token_label, "quarklink"),
	F_STR(p11_pin_file, "/etc/ql/pin"),
	F_STR(p11_softhsm2_conf, ""),
	F_STR(p11_engine, ENGINESDIR "/pkcs11.so"),
	F_STR(ca_key_type, "ec-p256"),
	F_LL(ca_cert_validity_days, 365),
	F_LL(ca_crl_validity_hours, 24),
	F_LL(ca_ocsp_validity_hours, 24),
	F_STR(pki_url, ""),
	F_STR(device_url, ""),
	F_INT(admin.enabled, 1),
	F_STR(admin.listen, "0.0.0.0:8443"),
	F_STR(admin.tls_cert, "/etc/ql/admin.crt"),
	F_STR(admin.tls_key, "/etc/ql/admin.key"),
	F_INT(device.enabled, 1),
	F_STR(device.listen, "0.0.0.0:8444"),
	F_STR(device.tls_cert, "/etc/ql/device.crt"),
	F_STR(device.tls_key, "/etc/ql/device.key"),
	F_STR(device.client_ca, ""),
	F_INT(pki.enabled, 1),
	F_STR(pki.listen, "0.0.0.0:8080"),
};

START_TEST(test_conf_parse_empty_keeps_defaults)
{
	const struct check_conf_field *f = &check_conf_defaults[_i];
	char err[CONF_ERRLEN] = "";
	struct conf c;

	conf_init(&c);
	ck_assert_msg(conf_parse(&c, CHECK_CONF_NAME, "# nothing set\n",
	    CHECK_CONF_DIR, err, sizeof(err)) == 0, "err \"%s\"", err);
	check_conf_field(&c, f, "defaults");
	conf_free(&c);
}
END_TEST

/* A full file sets every field at once; nothing leaks from one option
 * into another. */
static const char check_conf_full_text[] =
    "# quarklinkd.conf used by the unit tests\n"
    "[server]\n"
    "log_level = debug\n"
    "log_target = syslog\n"
    "log_file = logs/ql.log\n"
    "pid_file = /run/quarklinkd.pid\n"
    "max_body_size = 8M\n"
    "max_header_size = 32K\n"
    "request_timeout = 60\n"
    "shutdown_timeout = 0\n"
    "debug_endpoints = on\n"
    "\n"
    "[database]\n"
    "conninfo = \"host=/tmp dbname=ql user=ql\"\n"
    "pool_size = 16\n"
    "queue_max = 50\n"
    "reconnect_max = 300\n"
    "query_timeout = 1\n"
    "\n"
    "; PKCS#11\n"
    "[pkcs11]\n"
    "module = /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so\n"
    "token_label = ql-test\n"
    "pin_file = secrets/pin\n"
    "softhsm2_conf = softhsm2.conf\n"
    "\n"
    "[ca]\n"
    "key_type = rsa-3072\n"
    "cert_validity_days = 90\n"
    "\n"
    "[admin]\n"
    "enabled = true\n"
    "listen = 127.0.0.1:0\n"
    "tls_cert = /etc/ssl/admin.crt\n"
    "tls_key = admin-key.pem\n"
    "\n"
    "[device]\n"
    "enabled = 1\n"
    "listen = [::1]:8443\n"
    "tls_cert = device.crt\n"
    "tls_key = device.key\n"
    "client_ca = ca/devices.pem\n"
    "\n"
    "[pki]\n"
    "enabled = no\n"
    "listen = 10.0.0.1:8080\n";

static const struct check_conf_field check_conf_full[] = {
	F_LEVEL(log_level, LOG_LEVEL_DEBUG),
	F_STR(log_target, "syslog"),
	F_STR(log_file, "/etc/ql/logs/ql.log"),
	F_STR(pid_file, "/run/quarklinkd.pid"),
	F_LL(max_body_size, 8 * 1024 * 1024),
	F_LL(max_header_size, 32 * 1024),
	F_LL(request_timeout, 60),
	F_LL(shutdown_timeout, 0),
	F_INT(debug_endpoints, 1),
	F_STR(db_conninfo, "host=/tmp dbname=ql user=ql"),
	F_LL(db_pool_size, 16),
	F_LL(db_queue_max, 50),
	F_LL(db_reconnect_max, 300),
	F_LL(db_query_timeout, 1),
	F_STR(p11_module, "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
	F_STR(p11_token_label, "ql-test"),
	F_STR(p11_pin_file, "/etc/ql/secrets/pin"),
	F_STR(p11_softhsm2_conf, "/etc/ql/softhsm2.conf"),
	F_STR(ca_key_type, "rsa-3072"),
	F_LL(ca_cert_validity_days, 90),
	F_LL(ca_crl_validity_hours, 24),
	F_INT(admin.enabled, 1),
	F_STR(admin.listen, "127.0.0.1:0"),
	F_STR(admin.tls_cert, "/etc/ssl/admin.crt"),
	F_STR(admin.tls_key, "/etc/ql/admin-key.pem"),
	F_INT(device.enabled, 1),
	F_STR(device.listen, "[::1]:8443"),
	F_STR(device.tls_cert, "/etc/ql/device.crt"),
	F_STR(device.tls_key, "/etc/ql/device.key"),
	F_STR(device.client_ca, "/etc/ql/ca/devices.pem"),
	F_INT(pki.enabled, 0),
	F_STR(pki.listen, "10.0.0.1:8080"),
};

START_TEST(test_conf_parse_full_file_sets_every_field)
{
	char err[CONF_ERRLEN] = "";
	struct conf c;

	conf_init(&c);
	ck_assert_msg(conf_parse(&c, CHECK_CONF_NAME, check_conf_full_text,
	    CHECK_CONF_DIR, err, sizeof(err)) == 0, "err \"%s\"", err);
	for (size_t i = 0; i < CHECK_CONF_N(check_conf_full); i++)
		check_conf_field(&c, &check_conf_full[i], "full file");
	conf_free(&c);
}
END_TEST

/* Bad input -> exact error, "FILE:LINE: reason". */
struct check_conf_err_case {
	const char	*text;
	const char	*err;
};

static const struct check_conf_err_case check_conf_err_cases[] = {
	/* structure */
	{ "[nosuch]\n", "test.conf:1: unknown section [nosuch]" },
	{ "[Server]\n", "test.conf:1: unknown section [Server]" },
	{ "[]\n", "test.conf:1: unknown section []" },
	{ "[server]\nbogus = 1\n", "test.conf:2: unknown option bogus in [server]" },
	{ "[server]\npool_size = 2\n", "test.conf:2: unknown option pool_size in [server]" },
	{ "[database]\nPool_Size = 2\n", "test.conf:2: unknown option Pool_Size in [database]" },
	{ "pool_size = 2\n", "test.conf:1: pool_size outside of any [section]" },
	{ "# header comment\n\nlog_level = info\n[server]\n", "test.conf:3: log_level outside of any [section]" },
	{ "[database]\npool_size 2\n", "test.conf:2: expected key = value" },
	{ "[database]\npool_size\n", "test.conf:2: expected key = value" },
	{ "[database]\npool_size = 2\npool_size = 3\n", "test.conf:3: pool_size set twice in [database]" },
	{ "[database]\npool_size = 2\n[server]\n[database]\npool_size = 2\n", "test.conf:5: pool_size set twice in [database]" },
	{ "[server\n", "test.conf:1: malformed section header" },
	{ "[\n", "test.conf:1: malformed section header" },
	{ "[server]x\n", "test.conf:1: malformed section header" },
	/* 64-character name: one more than the section buffer can hold */
	{ "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", "test.conf:1: malformed section header" },
	/* 63 characters fit, and are simply unknown */
	{ "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", "test.conf:1: unknown section [aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]" },
	/* line numbers count comments, blank lines and CRLF lines */
	{ "# c\n\n; c\n[server]\n\nbogus = 1\n", "test.conf:6: unknown option bogus in [server]" },
	{ "[server]\r\n\r\nbogus = 1\r\n", "test.conf:3: unknown option bogus in [server]" },
	/* first error wins */
	{ "[server]\nbogus = 1\n[nosuch]\n", "test.conf:2: unknown option bogus in [server]" },
	/* booleans */
	{ "[server]\ndebug_endpoints = maybe\n", "test.conf:2: debug_endpoints: expected yes or no" },
	{ "[server]\ndebug_endpoints = \n", "test.conf:2: debug_endpoints: expected yes or no" },
	{ "[server]\ndebug_endpoints = 2\n", "test.conf:2: debug_endpoints: expected yes or no" },
	{ "[admin]\nenabled = y\n", "test.conf:2: enabled: expected yes or no" },
	/* integers */
	{ "[database]\npool_size = 0\n", "test.conf:2: pool_size: too small" },
	{ "[database]\npool_size = 65\n", "test.conf:2: pool_size: too large" },
	{ "[database]\npool_size = -1\n", "test.conf:2: pool_size: too small" },
	{ "[database]\npool_size = two\n", "test.conf:2: pool_size: invalid" },
	{ "[database]\npool_size = 2x\n", "test.conf:2: pool_size: invalid" },
	{ "[database]\npool_size = 0x10\n", "test.conf:2: pool_size: invalid" },
	{ "[database]\npool_size = 2.5\n", "test.conf:2: pool_size: invalid" },
	{ "[database]\npool_size =\n", "test.conf:2: pool_size: invalid" },
	{ "[database]\npool_size = \"\"\n", "test.conf:2: pool_size: invalid" },
	{ "[database]\npool_size = 99999999999999999999\n", "test.conf:2: pool_size: too large" },
	{ "[server]\nrequest_timeout = 0\n", "test.conf:2: request_timeout: too small" },
	{ "[server]\nrequest_timeout = 3601\n", "test.conf:2: request_timeout: too large" },
	/* sizes */
	{ "[server]\nmax_body_size = 1X\n", "test.conf:2: max_body_size: invalid" },
	{ "[server]\nmax_body_size = 10KB\n", "test.conf:2: max_body_size: invalid" },
	{ "[server]\nmax_body_size = 1T\n", "test.conf:2: max_body_size: invalid" },
	{ "[server]\nmax_body_size = K\n", "test.conf:2: max_body_size: invalid" },
	{ "[server]\nmax_body_size = 1.5M\n", "test.conf:2: max_body_size: invalid" },
	{ "[server]\nmax_body_size = 1 K\n", "test.conf:2: max_body_size: invalid" },
	{ "[server]\nmax_body_size =\n", "test.conf:2: max_body_size: invalid size" },
	{ "[server]\nmax_body_size = 5G\n", "test.conf:2: max_body_size: too large" },
	{ "[server]\nmax_body_size = 4097M\n", "test.conf:2: max_body_size: too large" },
	{ "[server]\nmax_body_size = 63\n", "test.conf:2: max_body_size: too small" },
	{ "[server]\nmax_body_size = 0K\n", "test.conf:2: max_body_size: too small" },
	{ "[server]\nmax_body_size = -1K\n", "test.conf:2: max_body_size: too small" },
	{ "[server]\nmax_body_size = 99999999999999999999999999999999\n", "test.conf:2: max_body_size: invalid size" },
	{ "[server]\nmax_header_size = 1023\n", "test.conf:2: max_header_size: too small" },
	{ "[server]\nmax_header_size = 1025K\n", "test.conf:2: max_header_size: too large" },
	{ "[server]\nmax_header_size = 1G\n", "test.conf:2: max_header_size: too large" },
	/* listen */
	{ "[admin]\nlisten = 127.0.0.1\n", "test.conf:2: listen: expected address:port" },
	{ "[admin]\nlisten = 127.0.0.1:\n", "test.conf:2: listen: expected address:port" },
	{ "[admin]\nlisten = 127.0.0.1:70000\n", "test.conf:2: listen: expected address:port" },
	{ "[admin]\nlisten = 127.0.0.1:65536\n", "test.conf:2: listen: expected address:port" },
	{ "[admin]\nlisten = 127.0.0.1:-1\n", "test.conf:2: listen: expected address:port" },
	{ "[admin]\nlisten = 127.0.0.1:http\n", "test.conf:2: listen: expected address:port" },
	{ "[admin]\nlisten = localhost:8443\n", "test.conf:2: listen: expected address:port" },
	{ "[device]\nlisten = example.com:443\n", "test.conf:2: listen: expected address:port" },
	{ "[device]\nlisten = :8443\n", "test.conf:2: listen: expected address:port" },
	{ "[device]\nlisten = [::1]\n", "test.conf:2: listen: expected address:port" },
	{ "[device]\nlisten = ::1:8443\n", "test.conf:2: listen: expected address:port" },
	{ "[pki]\nlisten = 256.0.0.1:80\n", "test.conf:2: listen: expected address:port" },
	{ "[pki]\nlisten = [127.0.0.1]:80\n", "test.conf:2: listen: expected address:port" },
	{ "[pki]\nlisten =\n", "test.conf:2: listen: expected address:port" },
	/* [ca] */
	{ "[ca]\nkey_type = rsa-2048\n", "test.conf:2: key_type: value not one of the allowed choices" },
	{ "[ca]\nkey_type = EC-P256\n", "test.conf:2: key_type: value not one of the allowed choices" },
	{ "[ca]\ncert_validity_days = 0\n", "test.conf:2: cert_validity_days: too small" },
	{ "[ca]\ncert_validity_days = 3651\n", "test.conf:2: cert_validity_days: too large" },
	{ "[ca]\ncrl_validity_hours = 721\n", "test.conf:2: crl_validity_hours: too large" },
	{ "[ca]\nocsp_validity_hours = 0\n", "test.conf:2: ocsp_validity_hours: too small" },
	{ "[ca]\nurl = x\n", "test.conf:2: unknown option url in [ca]" },
	/* base URLs: the scheme, a host, nothing to quote */
	{ "[device]\nurl = http://dev.example:8444\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = dev.example:8444\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = https://\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = https:///x\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = https://:8444\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = https://a b\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = https://a'b\n", "test.conf:2: url: expected an https:// URL" },
	{ "[device]\nurl = HTTPS://dev.example\n", "test.conf:2: url: expected an https:// URL" },
	{ "[pki]\nurl = ftp://pki.example\n", "test.conf:2: url: expected an http:// or https:// URL" },
	{ "[pki]\nurl = http://pki.example/\"x\n", "test.conf:2: url: expected an http:// or https:// URL" },
	/* log level and target */
	{ "[server]\nlog_level = verbose\n", "test.conf:2: log_level: expected debug, info, warn or error" },
	{ "[server]\nlog_level = warning\n", "test.conf:2: log_level: expected debug, info, warn or error" },
	{ "[server]\nlog_level =\n", "test.conf:2: log_level: expected debug, info, warn or error" },
	{ "[server]\nlog_target = file\n", "test.conf:2: log_target: value not one of the allowed choices" },
	{ "[server]\nlog_target = std\n", "test.conf:2: log_target: value not one of the allowed choices" },
	{ "[server]\nlog_target = stderr|syslog\n", "test.conf:2: log_target: value not one of the allowed choices" },
	{ "[server]\nlog_target =\n", "test.conf:2: log_target: value not one of the allowed choices" },
};

START_TEST(test_conf_parse_invalid_reports_file_line)
{
	const struct check_conf_err_case *tc = &check_conf_err_cases[_i];
	char err[CONF_ERRLEN] = "";
	struct conf c;
	int rc;

	conf_init(&c);
	rc = conf_parse(&c, CHECK_CONF_NAME, tc->text, CHECK_CONF_DIR, err,
	    sizeof(err));
	ck_assert_msg(rc == -1, "case %d (%s): accepted", _i, tc->text);
	ck_assert_str_eq(err, tc->err);
	conf_free(&c);
}
END_TEST

/* A value that fails to parse leaves the previous value alone. */
static const struct check_conf_ok_case check_conf_keep_cases[] = {
	{ "[server]\ndebug_endpoints = maybe\n", F_INT(debug_endpoints, 0) },
	{ "[server]\nlog_level = loud\n", F_LEVEL(log_level, LOG_LEVEL_INFO) },
	{ "[database]\npool_size = 65\n", F_LL(db_pool_size, 2) },
	{ "[server]\nmax_body_size = 5G\n", F_LL(max_body_size, 1024 * 1024) },
	{ "[server]\nlog_target = file\n", F_STR(log_target, "stderr") },
	{ "[admin]\nlisten = nowhere:1\n", F_STR(admin.listen, "0.0.0.0:8443") },
};

START_TEST(test_conf_parse_invalid_value_keeps_old)
{
	const struct check_conf_ok_case *tc = &check_conf_keep_cases[_i];
	char err[CONF_ERRLEN] = "";
	struct conf c;

	conf_init(&c);
	ck_assert_int_eq(conf_parse(&c, CHECK_CONF_NAME, tc->text,
	    CHECK_CONF_DIR, err, sizeof(err)), -1);
	check_conf_field(&c, &tc->want, tc->text);
	conf_free(&c);
}
END_TEST

/* Lines of up to 4096 bytes are read; one more byte is an error. The
 * length counts everything before the newline, comment or not. */
struct check_conf_line_case {
	size_t		 len;	/* bytes on line 2, excluding '\n' */
	int		 is_comment;
	int		 rc;
	const char	*err;
};

static const struct check_conf_line_case check_conf_line_cases[] = {
	{ 4095, 1, 0, "" },
	{ 4096, 1, 0, "" },
	{ 4097, 1, -1, "test.conf:2: line too long" },
	{ 8192, 1, -1, "test.conf:2: line too long" },
	{ 4096, 0, 0, "" },
	{ 4097, 0, -1, "test.conf:2: line too long" },
};

START_TEST(test_conf_parse_line_length_limit)
{
	const struct check_conf_line_case *tc = &check_conf_line_cases[_i];
	static const char head[] = "[database]\n";
	static const char key[] = "conninfo = ";
	char err[CONF_ERRLEN] = "";
	struct conf c;
	char *text, *line;
	int rc;

	ck_assert_ptr_nonnull(text = malloc(sizeof(head) + tc->len + 2));
	memcpy(text, head, sizeof(head) - 1);
	line = text + sizeof(head) - 1;
	memset(line, 'x', tc->len);
	if (tc->is_comment)
		line[0] = '#';
	else
		memcpy(line, key, sizeof(key) - 1);
	line[tc->len] = '\n';
	line[tc->len + 1] = '\0';

	conf_init(&c);
	rc = conf_parse(&c, CHECK_CONF_NAME, text, CHECK_CONF_DIR, err,
	    sizeof(err));
	ck_assert_msg(rc == tc->rc, "len %zu: rc %d, err \"%s\"", tc->len, rc,
	    err);
	ck_assert_str_eq(err, tc->err);
	if (rc == 0 && !tc->is_comment)
		ck_assert_uint_eq(strlen(c.db_conninfo),
		    tc->len - (sizeof(key) - 1));
	conf_free(&c);
	free(text);
}
END_TEST

/* The error is cut to errlen and stays NUL-terminated. */
START_TEST(test_conf_parse_error_truncated_to_errlen)
{
	char err[16];
	struct conf c;

	memset(err, 'Z', sizeof(err));
	conf_init(&c);
	ck_assert_int_eq(conf_parse(&c, CHECK_CONF_NAME, "[nosuch]\n",
	    CHECK_CONF_DIR, err, 10), -1);
	ck_assert_str_eq(err, "test.conf");
	ck_assert_int_eq(err[10], 'Z');
	conf_free(&c);
}
END_TEST

/* Parsing twice over the same struct (what SIGHUP reload does through
 * conf_load) replaces strings and does not re-join already absolute paths. */
START_TEST(test_conf_parse_twice_replaces_values)
{
	char err[CONF_ERRLEN] = "";
	struct conf c;

	conf_init(&c);
	ck_assert_int_eq(conf_parse(&c, CHECK_CONF_NAME,
	    "[database]\nconninfo = a\n", CHECK_CONF_DIR, err, sizeof(err)), 0);
	ck_assert_int_eq(conf_parse(&c, CHECK_CONF_NAME,
	    "[database]\nconninfo = b\n", CHECK_CONF_DIR, err, sizeof(err)), 0);
	ck_assert_str_eq(c.db_conninfo, "b");
	ck_assert_str_eq(c.p11_pin_file, "/etc/ql/pin");
	conf_free(&c);
}
END_TEST

/* util_strtonum: whole string, base 10, within [min, max]. */
struct check_conf_num_case {
	const char	*s;
	long long	 min, max;
	long long	 want;
	const char	*errstr;	/* NULL: success */
};

static const struct check_conf_num_case check_conf_num_cases[] = {
	{ "0", 0, 10, 0, NULL },
	{ "10", 0, 10, 10, NULL },
	{ "5", 5, 5, 5, NULL },
	{ "-5", -10, 10, -5, NULL },
	{ "+7", 0, 10, 7, NULL },
	{ "007", 0, 10, 7, NULL },
	{ "11", 0, 10, 0, "too large" },
	{ "-1", 0, 10, 0, "too small" },
	{ "4", 5, 10, 0, "too small" },
	{ "", 0, 10, 0, "invalid" },
	{ " 1", 0, 10, 0, "invalid" },
	{ "\t1", 0, 10, 0, "invalid" },
	{ "1 ", 0, 10, 0, "invalid" },
	{ "1a", 0, 10, 0, "invalid" },
	{ "a1", 0, 10, 0, "invalid" },
	{ "0x10", 0, 100, 0, "invalid" },
	{ "1e3", 0, 10000, 0, "invalid" },
	{ "-", 0, 10, 0, "invalid" },
	{ "9223372036854775807", LLONG_MIN, LLONG_MAX, LLONG_MAX, NULL },
	{ "-9223372036854775808", LLONG_MIN, LLONG_MAX, LLONG_MIN, NULL },
	{ "9223372036854775808", LLONG_MIN, LLONG_MAX, 0, "too large" },
	{ "-9223372036854775809", LLONG_MIN, LLONG_MAX, 0, "too small" },
	{ "99999999999999999999", 0, 10, 0, "too large" },
	{ NULL, 0, 10, 0, "invalid" },
};

START_TEST(test_util_strtonum_cases)
{
	const struct check_conf_num_case *tc = &check_conf_num_cases[_i];
	const char *errstr = "unset";
	long long v;

	v = util_strtonum(tc->s, tc->min, tc->max, &errstr);
	if (tc->errstr == NULL) {
		ck_assert_msg(errstr == NULL, "\"%s\": errstr \"%s\"", tc->s,
		    errstr);
		ck_assert_msg(v == tc->want, "\"%s\": %lld, expected %lld",
		    tc->s, v, tc->want);
	} else {
		ck_assert_msg(errstr != NULL, "\"%s\": accepted as %lld",
		    tc->s ? tc->s : "(null)", v);
		ck_assert_str_eq(errstr, tc->errstr);
		ck_assert(v == 0);
	}
}
END_TEST

/* util_parse_listen: numeric IPv4 or bracketed IPv6, then a port. */
struct check_conf_listen_case {
	const char	*s;
	int		 rc;
	int		 family;
	const char	*addr;	/* inet_ntop of the result */
	unsigned	 port;
};

static const struct check_conf_listen_case check_conf_listen_cases[] = {
	{ "127.0.0.1:0", 0, AF_INET, "127.0.0.1", 0 },
	{ "0.0.0.0:8443", 0, AF_INET, "0.0.0.0", 8443 },
	{ "10.1.2.3:65535", 0, AF_INET, "10.1.2.3", 65535 },
	{ "[::1]:8443", 0, AF_INET6, "::1", 8443 },
	{ "[::]:80", 0, AF_INET6, "::", 80 },
	{ "[fe80::1:2]:1", 0, AF_INET6, "fe80::1:2", 1 },
	{ "[::ffff:127.0.0.1]:80", 0, AF_INET6, "::ffff:127.0.0.1", 80 },
	{ "127.0.0.1", -1, 0, NULL, 0 },
	{ "127.0.0.1:", -1, 0, NULL, 0 },
	{ "127.0.0.1:65536", -1, 0, NULL, 0 },
	{ "127.0.0.1:70000", -1, 0, NULL, 0 },
	{ "127.0.0.1:-1", -1, 0, NULL, 0 },
	{ "127.0.0.1:80x", -1, 0, NULL, 0 },
	{ "127.0.0.1: 80", -1, 0, NULL, 0 },
	{ "localhost:80", -1, 0, NULL, 0 },
	{ ":80", -1, 0, NULL, 0 },
	{ "", -1, 0, NULL, 0 },
	{ "[::1]", -1, 0, NULL, 0 },
	{ "::1:80", -1, 0, NULL, 0 },
	{ "[::1:80", -1, 0, NULL, 0 },
	{ "[]:80", -1, 0, NULL, 0 },
	{ "[127.0.0.1]:80", -1, 0, NULL, 0 },
	{ "1.2.3:80", -1, 0, NULL, 0 },
	{ " 127.0.0.1:80", -1, 0, NULL, 0 },
	/* 64-byte host: longer than any address, refused before inet_pton */
	{ "1111111111111111111111111111111111111111111111111111111111111111:80", -1, 0, NULL, 0 },
};

START_TEST(test_util_parse_listen_cases)
{
	const struct check_conf_listen_case *tc = &check_conf_listen_cases[_i];
	struct sockaddr_storage ss;
	char addr[INET6_ADDRSTRLEN];
	int len = -1, rc;

	rc = util_parse_listen(tc->s, &ss, &len);
	ck_assert_msg(rc == tc->rc, "\"%s\": rc %d, expected %d", tc->s, rc,
	    tc->rc);
	if (rc != 0)
		return;
	ck_assert_int_eq(ss.ss_family, tc->family);
	if (tc->family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)&ss;

		ck_assert_int_eq(len, (int)sizeof(*s4));
		ck_assert_uint_eq(ntohs(s4->sin_port), tc->port);
		ck_assert_ptr_nonnull(inet_ntop(AF_INET, &s4->sin_addr, addr,
		    sizeof(addr)));
	} else {
		const struct sockaddr_in6 *s6 = (const void *)&ss;

		ck_assert_int_eq(len, (int)sizeof(*s6));
		ck_assert_uint_eq(ntohs(s6->sin6_port), tc->port);
		ck_assert_ptr_nonnull(inet_ntop(AF_INET6, &s6->sin6_addr, addr,
		    sizeof(addr)));
	}
	ck_assert_str_eq(addr, tc->addr);
}
END_TEST

/* What the installation API tells agents for a bound listener. */
static const struct {
	const char	*host, *names, *want;
} check_conf_public_cases[] = {
	{ "127.0.0.1", "localhost,127.0.0.1", "127.0.0.1:8444" },
	{ "[::1]", "localhost", "[::1]:8444" },
	{ "10.1.2.3", "gw.example", "10.1.2.3:8444" },
	{ "0.0.0.0", "localhost,127.0.0.1", "localhost:8444" },
	{ "0.0.0.0", " , gw.example 10.0.0.1", "gw.example:8444" },
	{ "[::]", "2001:db8::1,gw.example", "[2001:db8::1]:8444" },
	{ "0.0.0.0", "10.0.0.1", "10.0.0.1:8444" },
	{ "0.0.0.0", "", "127.0.0.1:8444" },
	{ "[::]", ", ", "[::1]:8444" },
};

START_TEST(test_util_public_addr_cases)
{
	char out[300];

	util_public_addr(check_conf_public_cases[_i].host, 8444,
	    check_conf_public_cases[_i].names, out, sizeof(out));
	ck_assert_str_eq(out, check_conf_public_cases[_i].want);
}
END_TEST

static Suite *
check_conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;

	tc = tcase_create("parse_valid");
	tcase_add_loop_test(tc, test_conf_parse_valid_sets_field, 0,
	    (int)CHECK_CONF_N(check_conf_ok_cases));
	tcase_add_loop_test(tc, test_conf_parse_empty_keeps_defaults, 0,
	    (int)CHECK_CONF_N(check_conf_defaults));
	tcase_add_test(tc, test_conf_parse_full_file_sets_every_field);
	tcase_add_test(tc, test_conf_parse_twice_replaces_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_errors");
	tcase_add_loop_test(tc, test_conf_parse_invalid_reports_file_line, 0,
	    (int)CHECK_CONF_N(check_conf_err_cases));
	tcase_add_loop_test(tc, test_conf_parse_invalid_value_keeps_old, 0,
	    (int)CHECK_CONF_N(check_conf_keep_cases));
	tcase_add_loop_test(tc, test_conf_parse_line_length_limit, 0,
	    (int)CHECK_CONF_N(check_conf_line_cases));
	tcase_add_test(tc, test_conf_parse_error_truncated_to_errlen);
	suite_add_tcase(s, tc);

	tc = tcase_create("util");
	tcase_add_loop_test(tc, test_util_strtonum_cases, 0,
	    (int)CHECK_CONF_N(check_conf_num_cases));
	tcase_add_loop_test(tc, test_util_parse_listen_cases, 0,
	    (int)CHECK_CONF_N(check_conf_listen_cases));
	tcase_add_loop_test(tc, test_util_public_addr_cases, 0,
	    (int)CHECK_CONF_N(check_conf_public_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(check_conf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* cli.c: one command per run, on the event loop like everything else.
 * Output is one line on stdout (a secret is printed once and never
 * logged); errors are one line on stderr. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "db.h"
#include "enroll.h"
#include "names.h"
#include "pki.h"
#include "server.h"
#include "users.h"
#include "util.h"

struct cli_cmd {
	const char	*name;
	int		 min, max;	/* arguments after the command */
	const char	*usage;
};

static const struct cli_cmd cli_cmds[] = {
	{ "create-project", 1, 5, "create-project NAME [token] [allowlist] [approval] [tpm]" },
	{ "create-token", 1, 3, "create-token PROJECT [MAX_USES [VALID_DAYS]]" },
	{ "allow", 2, 2, "allow PROJECT DEVICE_ID" },
	{ "approve", 2, 2, "approve PROJECT DEVICE_ID" },
	{ "revoke", 1, 2, "revoke SERIAL_HEX [REASON_CODE]" },
	{ "create-admin", 1, 1, "create-admin NAME (prints a generated password once)" },
};
#define CLI_NCMDS (sizeof(cli_cmds) / sizeof(cli_cmds[0]))

static char cli_secret[ENROLL_TOKEN_LEN];
static char cli_name[65];

void
cli_usage(void)
{
	fprintf(stderr, "usage: quarklinkd [-c FILE] admin COMMAND\ncommands:\n");
	for (size_t i = 0; i < CLI_NCMDS; i++)
		fprintf(stderr, "  %s\n", cli_cmds[i].usage);
}

int
cli_check_args(int argc, char **argv)
{
	for (size_t i = 0; argc > 0 && i < CLI_NCMDS; i++) {
		if (strcmp(argv[0], cli_cmds[i].name) != 0)
			continue;
		if (argc - 1 < cli_cmds[i].min || argc - 1 > cli_cmds[i].max)
			break;
		return 0;
	}
	cli_usage();
	return -1;
}

static void
cli_done(const char *err, void *arg)
{
	struct server *srv = arg;

	if (err != NULL)
		fprintf(stderr, "quarklinkd: %s\n", err);
	server_exit(srv, err != NULL);
}

static void
cli_project_done(enum pki_create_status st, const char *err, void *arg)
{
	(void)st;
	cli_done(err, arg);
}

static void
cli_enroll_done(enum enroll_result r, const char *detail, void *arg)
{
	struct server *srv = arg;

	if (r != ENROLL_ISSUED) {
		fprintf(stderr, "quarklinkd: %s\n", detail ? detail : "failed");
		server_exit(srv, 1);
		return;
	}
	if (cli_secret[0] != '\0') {
		printf("%s\n", cli_secret);
		fflush(stdout);
	}
	server_exit(srv, 0);
}

static int
cli_number(const char *s, long long min, long long max, long long *out)
{
	const char *errstr;

	*out = util_strtonum(s, min, max, &errstr);
	if (errstr != NULL) {
		fprintf(stderr, "quarklinkd: %s: %s (%lld-%lld)\n", s, errstr, min, max);
		return -1;
	}
	return 0;
}

static int
cli_device_id(const char *s)
{
	if (names_is_device_id(s, strlen(s)))
		return 0;
	fprintf(stderr, "quarklinkd: %s is not a device ID (32 base32 characters)\n", s);
	return -1;
}

static void
cli_create_project(struct server *srv, int argc, char **argv)
{
	int policy[4] = { 0, 0, 0, 0 };
	static const char *const names[4] = { "token", "allowlist", "approval", "tpm" };

	for (int i = 2; i < argc; i++) {
		int j;

		for (j = 0; j < 4 && strcmp(argv[i], names[j]) != 0; j++)
			;
		if (j == 4) {
			fprintf(stderr, "quarklinkd: unknown policy %s\n", argv[i]);
			server_exit(srv, 1);
			return;
		}
		policy[j] = 1;
	}
	if (argc == 2)
		policy[0] = 1;
	pki_project_create(srv->pki, "cli", argv[1], policy[0], policy[1],
	    policy[2], policy[3], 0, cli_project_done, srv);
}

static void
cli_user_created(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct server *srv = arg;

	if (st != DB_OK || PQntuples(res) != 1) {
		fprintf(stderr, "quarklinkd: cannot create %s: %s\n", cli_name,
		    errstr ? errstr : "database unavailable");
		server_exit(srv, 1);
		return;
	}
	printf("%s\n", cli_secret);
	fflush(stdout);
	OPENSSL_cleanse(cli_secret, sizeof(cli_secret));
	server_exit(srv, 0);
}

static void
cli_password_hashed(char *encoded, void *arg)
{
	struct server *srv = arg;
	const char *v[5] = { cli_name, encoded, "admin", NULL, "cli" };

	if (encoded == NULL) {
		fprintf(stderr, "quarklinkd: cannot hash the password\n");
		server_exit(srv, 1);
		return;
	}
	db_query(srv->db, &users_create, 5, v, NULL, cli_user_created, srv);
}

/* The first admin: the password is generated, printed once, stored as
 * Argon2id, and never written anywhere else by the daemon. */
static void
cli_create_admin(struct server *srv, const char *name)
{
	char secret[AUTH_SECRET_LEN];

	if (!names_is_user(name, strlen(name))) {
		fprintf(stderr, "quarklinkd: user names are 1-64 of A-Z a-z 0-9 . _ @ -\n");
		server_exit(srv, 1);
		return;
	}
	if (auth_secret_new(secret) == -1) {
		server_exit(srv, 1);
		return;
	}
	/* 24 base64url characters: 144 bits. */
	snprintf(cli_secret, sizeof(cli_secret), "%.24s", secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	snprintf(cli_name, sizeof(cli_name), "%s", name);
	auth_password_hash(cli_secret, cli_password_hashed, srv);
}

void
cli_start(struct server *srv, int argc, char **argv)
{
	long long uses = 1000, days = 30, reason = 0;
	char serial[CA_SERIAL_HEX];

	if (strcmp(argv[0], "create-project") == 0) {
		cli_create_project(srv, argc, argv);
	} else if (strcmp(argv[0], "create-admin") == 0) {
		cli_create_admin(srv, argv[1]);
	} else if (strcmp(argv[0], "create-token") == 0) {
		if ((argc > 2 && cli_number(argv[2], 1, 100000000, &uses) == -1) ||
		    (argc > 3 && cli_number(argv[3], 1, 3650, &days) == -1)) {
			server_exit(srv, 1);
			return;
		}
		enroll_token_create(srv->db, "cli", argv[1], (int)uses, (int)days,
		    cli_secret, cli_enroll_done, srv);
	} else if (strcmp(argv[0], "allow") == 0 || strcmp(argv[0], "approve") == 0) {
		if (cli_device_id(argv[2]) == -1) {
			server_exit(srv, 1);
			return;
		}
		(argv[0][1] == 'l' ? enroll_allow : enroll_approve)(srv->db, "cli",
		    argv[1], argv[2], cli_enroll_done, srv);
	} else if (strcmp(argv[0], "revoke") == 0) {
		size_t n = strlen(argv[1]);

		/* RFC 5280 reasons that revoke: 7 is unused, 6 (hold) and
		 * 8 (removeFromCRL) do not revoke (sql/008 refuses them). */
		if (n != CA_SERIAL_HEX - 1 || strspn(argv[1], "0123456789abcdefABCDEF") != n ||
		    (argc > 2 && (cli_number(argv[2], 0, 10, &reason) == -1 || reason == 7))) {
			fprintf(stderr, "quarklinkd: usage: revoke SERIAL_HEX(32) [REASON 0-5, 9 or 10]\n");
			server_exit(srv, 1);
			return;
		}
		if (reason == 6 || reason == 8) {
			fprintf(stderr, "quarklinkd: reason %lld (%s) does not revoke; revocation is"
			    " final\n", reason, reason == 6 ? "certificateHold" : "removeFromCRL");
			server_exit(srv, 1);
			return;
		}
		for (size_t i = 0; i <= n; i++)
			serial[i] = (char)(argv[1][i] >= 'A' && argv[1][i] <= 'F' ?
			    argv[1][i] - 'A' + 'a' : argv[1][i]);
		enroll_revoke(srv->db, "cli", serial, (int)reason, cli_enroll_done, srv);
	}
}

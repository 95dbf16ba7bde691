/* main.c: options, start-up order, signals and shutdown. Start-up may
 * block (config, migrations, token login); once the loop runs, nothing
 * does. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>

#include "cli.h"
#include "api_front.h"
#include "api_health.h"
#include "attest.h"
#include "attest_trust.h"
#include "audit.h"
#include "checkpoint.h"
#include "certs.h"
#include "imgsign.h"
#include "devices.h"
#include "auth.h"
#include "conf.h"
#include "db.h"
#include "deploy.h"
#include "devupdate.h"
#include "enroll.h"
#include "http.h"
#include "lastseen.h"
#include "log.h"
#include "migrate.h"
#include "notify.h"
#include "p11.h"
#include "ocsp.h"
#include "pki.h"
#include "routes.h"
#include "projects.h"
#include "tlsauto.h"
#include "images.h"
#include "imgstream.h"
#include "uploads.h"
#include "users.h"
#include "tok.h"
#include "work.h"
#include "www.h"
#include "server.h"

#define MAIN_DEFAULT_CONF SYSCONFDIR "/quarklink/quarklinkd.conf"

enum {
	OPT_VERSION = 256, OPT_HELP, OPT_MIGRATE, OPT_LIST_OPTIONS,
	OPT_LIST_ROUTES, OPT_CREATE_ADMIN
};

static const struct option main_longopts[] = {
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "migrate", no_argument, NULL, OPT_MIGRATE },
	{ "list-options", no_argument, NULL, OPT_LIST_OPTIONS },
	{ "list-routes", no_argument, NULL, OPT_LIST_ROUTES },
	{ "create-admin", required_argument, NULL, OPT_CREATE_ADMIN },
	{ NULL, 0, NULL, 0 },
};

static void
main_usage(FILE *out)
{
	fprintf(out,
	    "usage: quarklinkd [-c FILE] [-f] [-t] [--migrate] [--create-admin NAME]\n"
	    "                  [--list-options] [--list-routes] [--version] [--help]\n"
	    "       quarklinkd [-c FILE] admin COMMAND ARGS...\n"
	    "  -c FILE         configuration file (default %s)\n"
	    "  -f              stay in the foreground\n"
	    "  -t              test the configuration and exit\n"
	    "  --migrate       apply pending database migrations and exit\n"
	    "  --list-options  print every configuration option and its default\n"
	    "  --list-routes   print every HTTP route: listener, methods, path, role,\n"
	    "                  scope, query parameters\n"
	    "  --create-admin NAME  create an admin user, print its password once\n"
	    "  --version       print the version and exit\n"
	    "  --help          print this help and exit\n"
	    "admin commands (run against the database and token, then exit):\n"
	    "  create-project NAME [token] [allowlist] [approval] [tpm]\n"
	    "  create-token PROJECT [MAX_USES [VALID_DAYS]]\n"
	    "  allow PROJECT DEVICE_ID\n"
	    "  approve PROJECT DEVICE_ID\n"
	    "  revoke SERIAL_HEX [REASON_CODE]\n"
	    "  create-admin NAME\n", MAIN_DEFAULT_CONF);
}

static struct p11 *
main_p11_open(struct conf *c, char *err, size_t errlen)
{
	struct p11_settings s = {
		.module = c->p11_module,
		.token_label = c->p11_token_label,
		.pin_file = c->p11_pin_file,
		.softhsm2_conf = c->p11_softhsm2_conf,
		.engine = c->p11_engine,
	};

	return p11_open(&s, err, errlen);
}

/* The web UI's files: none when www_dir is empty, and none (with a
 * warning) when the compiled-in default is not installed, so a daemon run
 * from its build tree still starts; a www_dir that is set must load. */
static int
main_www_load(struct conf *c, struct www **out, char *err, size_t errlen)
{
	struct stat st;

	*out = NULL;
	if (c->admin.enabled == 0 || c->www_dir[0] == '\0')
		return 0;
	if (strcmp(c->www_dir, WWWDIR) == 0 && stat(c->www_dir, &st) == -1 &&
	    errno == ENOENT) {
		log_warnx("web UI not served: %s does not exist (set www_dir "
		    "in [admin])", c->www_dir);
		return 0;
	}
	if ((*out = www_load(c->www_dir, (size_t)c->www_max_size, err,
	    errlen)) == NULL)
		return -1;
	log_info("web UI: %zu files, %zu bytes from %s", www_nfiles(*out),
	    www_total(*out), c->www_dir);
	return 0;
}

/* The installation's TPM manufacturer CAs, named like the TLS files. */
static int
main_attest_load(struct conf *c, char *err, size_t errlen)
{
	char why[CONF_ERRLEN - 32];

	if (attest_trust_load(c->attest_manufacturer_cas, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "attest.manufacturer_cas: %.*s",
		    (int)(errlen > 32 ? errlen - 32 : 0), why);
		return -1;
	}
	if (attest_trust_count() > 0)
		log_info("attest: %zu TPM manufacturer CAs", attest_trust_count());
	return 0;
}

/* -t: everything that can be checked without serving: the file, the TLS
 * files, the token login and the database conninfo syntax. */
static int
main_test_config(struct conf *c)
{
	char err[CONF_ERRLEN];
	PQconninfoOption *opts;
	char *pqerr = NULL;
	struct www *www;
	struct p11 *p;

	if (http_check_tls(c, err, sizeof(err)) == -1 ||
	    main_attest_load(c, err, sizeof(err)) == -1)
		goto fail;
	attest_trust_free();
	if ((opts = PQconninfoParse(c->db_conninfo, &pqerr)) == NULL) {
		snprintf(err, sizeof(err), "database.conninfo: %s",
		    pqerr ? pqerr : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfreemem(pqerr);
		goto fail;
	}
	PQconninfoFree(opts);
	if (main_www_load(c, &www, err, sizeof(err)) == -1)
		goto fail;
	www_free(www);
	if ((p = main_p11_open(c, err, sizeof(err))) == NULL)
		goto fail;
	p11_close(p);
	printf("configuration OK\n");
	return 0;
fail:
	fprintf(stderr, "quarklinkd: %s: %s\n", c->path, err);
	return 1;
}

/* 1 when the file was written (and so is ours to remove at exit). */
static int
main_write_pid(const char *path)
{
	FILE *f;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((f = fopen(path, "w")) == NULL) {
		log_warn("pid_file %s", path);
		return 0;
	}
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) == EOF) {
		log_warn("pid_file %s", path);
		unlink(path);
		return 0;
	}
	return 1;
}

/* The listeners are up: READY=1 has been sent (notify.c). */
static int main_is_serving;

static void
main_exit_now(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	log_warnx("shutdown timeout: %u requests abandoned", srv->inflight);
	event_base_loopexit(srv->base, NULL);
}

static void
main_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tv = { (time_t)srv->conf->shutdown_timeout, 0 };
	char err[CONF_ERRLEN];

	(void)what;
	switch (sig) {
	case SIGHUP:
		log_info("SIGHUP: reopening the log, reloading TLS certificates and"
		    " TPM manufacturer CAs");
		if (main_is_serving && !srv->is_draining)
			(void)notify_reloading();
		if (log_reopen() == -1)
			log_warn("reopen %s", srv->conf->log_file);
		http_reload_tls(srv);
		if (main_attest_load(srv->conf, err, sizeof(err)) == -1)
			log_warnx("%s; keeping the TPM manufacturer CAs loaded before", err);
		/* Only a serving daemon is ready again; during start-up or
		 * draining the service manager already knows its state. */
		if (main_is_serving && !srv->is_draining)
			(void)notify_send("READY=1");
		break;
	case SIGTERM:
	case SIGINT:
		if (srv->is_draining) {
			log_info("second signal: exiting now");
			event_base_loopexit(srv->base, NULL);
			break;
		}
		log_info("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		(void)notify_send("STOPPING=1");
		srv->drain_timer = evtimer_new(srv->base, main_exit_now, srv);
		if (srv->drain_timer != NULL)
			evtimer_add(srv->drain_timer, &tv);
		http_drain(srv);
		break;
	}
}

/* Fork, and let the parent exit only once the child is serving (0) or
 * has given up (1), so "quarklinkd && next-step" means what it says. */
static int
main_daemonize(void)
{
	int fds[2], devnull;
	ssize_t n;
	char b;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) == -1 || (pid = fork()) == -1)
		fatal("daemonize");
	if (pid > 0) {
		close(fds[1]);
		while ((n = read(fds[0], &b, 1)) == -1 && errno == EINTR)
			;
		if (n != 1)
			fprintf(stderr, "quarklinkd: start-up failed; see the log\n");
		_exit(n == 1 ? 0 : 1);
	}
	close(fds[0]);
	if (setsid() == -1 || chdir("/") == -1)
		fatal("daemonize");
	if ((devnull = open("/dev/null", O_RDWR)) != -1) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		dup2(devnull, STDERR_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
	return fds[1];
}

static void
main_fail(struct server *srv, const char *what, const char *err)
{
	log_warnx("cannot start: %s: %s", what, err);
	srv->exit_code = 1;
	event_base_loopexit(srv->base, NULL);
}

static void
main_listen(struct server *srv)
{
	char err[CONF_ERRLEN];

	if (http_start(srv, err, sizeof(err)) == -1) {
		main_fail(srv, "listeners", err);
		return;
	}
	uploads_expiry_start(srv);
	log_info("ready");
	main_is_serving = 1;
	(void)notify_send("READY=1");
	if (srv->ready_fd != -1) {
		if (write(srv->ready_fd, "1", 1) != 1)
			log_warn("cannot signal readiness");
		close(srv->ready_fd);
		srv->ready_fd = -1;
	}
}

static void
main_tls_done(const char *err, void *arg)
{
	struct server *srv = arg;

	if (err != NULL) {
		srv->tls_pending = -1;
		main_fail(srv, "automatic TLS certificate", err);
		return;
	}
	if (srv->tls_pending > 0 && --srv->tls_pending == 0)
		main_listen(srv);
}

static void
main_checkpoints_ready(const char *err, void *arg)
{
	struct server *srv = arg;
	struct conf_listener *ls[2] = { &srv->conf->admin, &srv->conf->device };
	static const char *const names[2] = { "admin", "device" };

	if (err != NULL) {
		main_fail(srv, "audit checkpoints", err);
		return;
	}
	for (int i = 0; i < 2; i++)
		if (ls[i]->enabled && strcmp(ls[i]->tls_cert, "auto") == 0)
			srv->tls_pending++;
	if (srv->tls_pending == 0) {
		main_listen(srv);
		return;
	}
	for (int i = 0; i < 2 && srv->tls_pending > 0; i++)
		if (ls[i]->enabled && strcmp(ls[i]->tls_cert, "auto") == 0)
			tlsauto_issue(srv, names[i], &ls[i]->tls_cert,
			    &ls[i]->tls_key, main_tls_done, srv);
}

static void
main_bootstrapped(const char *err, void *arg)
{
	struct server *srv = arg;

	if (err != NULL) {
		main_fail(srv, "CA", err);
		return;
	}
	if (srv->admin_argc > 0) {
		cli_start(srv, srv->admin_argc, srv->admin_argv);
		return;
	}
	checkpoint_start(srv, main_checkpoints_ready, srv);
}

/* evhttp turns socket events off and on around every request; the epoll
 * changelist folds those into one epoll_ctl per socket and loop turn. */
static struct event_base *
main_base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static int
main_register(struct server *srv)
{
	return api_health_register(srv->db) == -1 || pki_register(srv->pki) == -1 ||
	    enroll_register(srv->db) == -1 || auth_register(srv->db) == -1 ||
	    api_front_register(srv->db) == -1 || users_register(srv->db) == -1 ||
	    projects_register(srv->db) == -1 || devices_register(srv->db) == -1 ||
	    certs_register(srv->db) == -1 ||
	    imgsign_register(srv->db) == -1 || audit_register(srv->db) == -1 ||
	    ocsp_register(srv->db) == -1 || tlsauto_register(srv->db) == -1 ||
	    checkpoint_register(srv->db) == -1 || uploads_register(srv->db) == -1 ||
	    images_register(srv->db) == -1 || deploy_register(srv->db) == -1 ||
	    imgstream_register(srv->db) == -1 ||
	    devupdate_register(srv->db) == -1 || attest_register(srv->db) == -1 ?
	    -1 : 0;
}

static int
main_run(struct conf *c, int foreground, int admin_argc, char **admin_argv)
{
	struct db_pool_settings dbs = {
		.conninfo = c->db_conninfo,
		.size = admin_argc > 0 ? 1 : (int)c->db_pool_size,
		.queue_max = (int)c->db_queue_max,
		.reconnect_max_s = (int)c->db_reconnect_max,
		.query_timeout_s = (int)c->db_query_timeout,
	};
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct event *sigev[3] = { NULL, NULL, NULL };
	struct server srv;
	char err[CONF_ERRLEN];
	int has_pid_file = 0;

	memset(&srv, 0, sizeof(srv));
	srv.conf = c;
	srv.exit_code = 1;
	srv.ready_fd = -1;
	srv.admin_argc = admin_argc;
	srv.admin_argv = admin_argv;
	routes_install(&srv);
	if (!foreground && admin_argc == 0) {
		srv.ready_fd = main_daemonize();
		has_pid_file = main_write_pid(c->pid_file);
	}
	/* A client that hangs up mid-write must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	/* libtss2-mu writes a line to stderr for every malformed TPM
	 * structure, so a device could fill the daemon's stderr; the reason
	 * attest_crypto.c returns is what gets logged. An admin's TSS2_LOG
	 * still wins. */
	setenv("TSS2_LOG", "all+none", 0);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));

	if (admin_argc == 0 && main_www_load(c, &srv.www, err, sizeof(err)) == -1) {
		log_warnx("cannot start: web UI: %s", err);
		goto out;
	}
	if ((srv.p11 = main_p11_open(c, err, sizeof(err))) == NULL) {
		log_warnx("pkcs11: %s", err);
		goto out;
	}
	if (main_attest_load(c, err, sizeof(err)) == -1) {
		log_warnx("cannot start: %s", err);
		goto out;
	}
	if (migrate_run(c->db_conninfo, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		goto out;
	}
	if ((srv.base = main_base_new()) == NULL ||
	    (srv.db = db_pool_new(srv.base, &dbs)) == NULL ||
	    (srv.pki = pki_new(&srv)) == NULL ||
	    (srv.ocsp = ocsp_new(&srv)) == NULL) {
		log_warnx("out of memory");
		goto out;
	}
	auth_login_set_window((int)c->login_window);
	if (work_init(srv.base, (int)c->hash_queue_max) == -1 ||
	    tok_start(srv.base, srv.p11, (int)c->p11_workers,
	    (int)c->p11_queue_max) == -1 || auth_init() == -1) {
		log_warnx("cannot start the worker thread");
		goto out;
	}
	if (main_register(&srv) == -1) {
		log_warnx("cannot register database statements");
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		sigev[i] = evsignal_new(srv.base, sigs[i], main_signal, &srv);
		if (sigev[i] == NULL || event_add(sigev[i], NULL) == -1) {
			log_warnx("cannot install signal handlers");
			goto out;
		}
	}
	srv.exit_code = 0;
	db_pool_start(srv.db);
	lastseen_start(&srv);
	pki_bootstrap(srv.pki, main_bootstrapped, &srv);
	event_base_dispatch(srv.base);
out:
	uploads_expiry_stop();
	lastseen_stop();
	/* The pools first: every job's done() runs (work.h) while the
	 * requests, CAs and queries it refers to still exist, and the queries
	 * those done()s issue are failed by the drain that follows. */
	work_shutdown();
	tok_stop();
	db_pool_drain(srv.db);
	http_stop(&srv);
	for (int i = 0; i < 3; i++)
		if (sigev[i] != NULL)
			event_free(sigev[i]);
	if (srv.drain_timer != NULL)
		event_free(srv.drain_timer);
	ocsp_free(srv.ocsp);
	pki_free(srv.pki);
	db_pool_free(srv.db);
	checkpoint_stop(&srv);
	if (srv.base != NULL)
		event_base_free(srv.base);
	p11_close(srv.p11);
	www_free(srv.www);	/* after http_stop: replies referred to it */
	attest_trust_free();
	/* Not keyed on ready_fd: main_ready clears it once the daemon serves,
	 * which left the file behind after every clean stop. */
	if (has_pid_file && unlink(c->pid_file) == -1)
		log_warn("pid_file %s", c->pid_file);
	if (admin_argc == 0)
		log_info("exit %d", srv.exit_code);
	return srv.exit_code;
}

int
main(int argc, char *argv[])
{
	const char *path = MAIN_DEFAULT_CONF, *errstr = NULL;
	char *create_admin[2] = { "create-admin", NULL };
	int ch, foreground = 0, test = 0, migrate = 0, rc;
	char err[CONF_ERRLEN];
	struct conf c;

	while ((ch = getopt_long(argc, argv, "c:ft", main_longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'f': foreground = 1; break;
		case 't': test = 1; break;
		case OPT_MIGRATE: migrate = 1; break;
		case OPT_VERSION:
			printf("quarklinkd %s\n", PACKAGE_VERSION);
			return 0;
		case OPT_HELP:
			main_usage(stdout);
			return 0;
		case OPT_LIST_OPTIONS:
			conf_list_options();
			return 0;
		case OPT_LIST_ROUTES:
			routes_print();
			return 0;
		case OPT_CREATE_ADMIN:
			create_admin[1] = optarg;
			break;
		default:
			main_usage(stderr);
			return 1;
		}
	}
	if (optind != argc && (strcmp(argv[optind], "admin") != 0 ||
	    cli_check_args(argc - optind - 1, argv + optind + 1) == -1)) {
		if (strcmp(argv[optind], "admin") != 0)
			main_usage(stderr);
		return 1;
	}
	conf_init(&c);
	if (conf_load(&c, path, err, sizeof(err)) == -1) {
		fprintf(stderr, "quarklinkd: %s\n", err);
		conf_free(&c);
		return 1;
	}
	if (test) {
		rc = main_test_config(&c);
	} else if (migrate) {
		if ((rc = migrate_run(c.db_conninfo, err, sizeof(err))) == -1)
			fprintf(stderr, "quarklinkd: %s\n", err);
		else
			printf("migrations applied\n");
		rc = rc == -1;
	} else if (optind != argc || create_admin[1] != NULL) {
		/* admin: errors go to stderr only, the daemon's log is not ours */
		if (log_init(LOG_LEVEL_ERROR, "stderr", NULL, &errstr) == -1)
			return 1;
		if (create_admin[1] != NULL)
			rc = main_run(&c, 1, 2, create_admin);
		else
			rc = main_run(&c, 1, argc - optind - 1, argv + optind + 1);
	} else if (log_init(c.log_level, foreground || c.log_file[0] ?
	    c.log_target : "syslog", c.log_file, &errstr) == -1) {
		fprintf(stderr, "quarklinkd: log_file %s: %s\n", c.log_file, errstr);
		rc = 1;
	} else {
		rc = main_run(&c, foreground, 0, NULL);
	}
	conf_free(&c);
	return rc;
}

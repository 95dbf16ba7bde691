/* auth.c: roles, secrets, CSRF, Argon2id and login throttling. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "util.h"
#include "work.h"
#include "xmalloc.h"

/* OWASP's Argon2id baseline: 19 MiB, 2 passes, 1 lane. */
#define AUTH_ARGON_T		2
#define AUTH_ARGON_M		19456
#define AUTH_ARGON_P		1
#define AUTH_ENCODED_MAX	128
#define AUTH_PW_MAX		1024

#define AUTH_THROTTLE_SLOTS	512
#define AUTH_USER_FAILS		5
#define AUTH_ADDR_FAILS		20

static const struct db_stmt auth_lookup_stmt = {
	"auth_lookup", "SELECT actor, role, projects, user_id, token_id"
	" FROM ql_authenticate($1, $2)", 2 };

static char auth_dummy_hash[AUTH_ENCODED_MAX];

int
auth_role_parse(const char *s, enum auth_role *out)
{
	static const char *const names[] = { "viewer", "operator", "admin" };

	for (int i = 0; i < 3; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum auth_role)(i + 1);
			return 0;
		}
	}
	return -1;
}

const char *
auth_role_name(enum auth_role r)
{
	switch (r) {
	case AUTH_VIEWER: return "viewer";
	case AUTH_OPERATOR: return "operator";
	case AUTH_ADMIN: return "admin";
	default: return "public";
	}
}

int
auth_sees_project(const struct auth *a, long long project_id)
{
	if (a->is_all_projects)
		return 1;
	for (size_t i = 0; i < a->nprojects; i++)
		if (a->projects[i] == project_id)
			return 1;
	return 0;
}

static void
auth_b64url(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);

	for (int i = 0; i < len; i++) {
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
		else if (out[i] == '=')
			out[i] = '\0';
	}
}

int
auth_secret_new(char out[AUTH_SECRET_LEN])
{
	unsigned char rnd[32];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	auth_b64url(rnd, sizeof(rnd), out);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return 0;
}

void
auth_hash(const char *secret, unsigned char out[32])
{
	util_sha256(secret, strlen(secret), out);
}

void
auth_csrf(const char *session_secret, char out[AUTH_SECRET_LEN])
{
	unsigned char md[32];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	/* Domain-separated from the session's stored hash. */
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, "quarklink-csrf:", 15) != 1 ||
	    EVP_DigestUpdate(ctx, session_secret, strlen(session_secret)) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, NULL) != 1)
		memset(md, 0, sizeof(md));
	EVP_MD_CTX_free(ctx);
	auth_b64url(md, sizeof(md), out);
}

int
auth_csrf_ok(const char *session_secret, const char *presented)
{
	char want[AUTH_SECRET_LEN];

	if (presented == NULL || strlen(presented) != AUTH_SECRET_LEN - 1)
		return 0;
	auth_csrf(session_secret, want);
	return CRYPTO_memcmp(want, presented, AUTH_SECRET_LEN - 1) == 0;
}

int
auth_register(struct db_pool *db)
{
	return db_register(db, &auth_lookup_stmt);
}

struct auth_lookup_ctx {
	auth_cb	 cb;
	void	*arg;
};

/* "{1,2,3}" from PostgreSQL; NULL means every project. */
static int
auth_parse_projects(struct auth *a, const char *s)
{
	char *end;

	if (*s++ != '{')
		return -1;
	while (*s != '}' && *s != '\0') {
		long long v = strtoll(s, &end, 10);

		if (end == s || a->nprojects == AUTH_MAX_PROJECTS)
			return -1;
		a->projects[a->nprojects++] = v;
		s = *end == ',' ? end + 1 : end;
	}
	return *s == '}' ? 0 : -1;
}

static void
auth_looked_up(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct auth_lookup_ctx *c = arg;
	struct auth *a = NULL;

	(void)errstr;
	if (st == DB_OK && PQntuples(res) == 1) {
		a = xcalloc(1, sizeof(*a));
		snprintf(a->actor, sizeof(a->actor), "%s", PQgetvalue(res, 0, 0));
		if (auth_role_parse(PQgetvalue(res, 0, 1), &a->role) == -1)
			a->role = AUTH_PUBLIC;
		a->is_all_projects = PQgetisnull(res, 0, 2);
		if (!a->is_all_projects && auth_parse_projects(a, PQgetvalue(res, 0, 2)) == -1)
			a->role = AUTH_PUBLIC;
		a->user_id = db_val_int(res, 0, 3);
		a->token_id = db_val_int(res, 0, 4);
		if (a->role == AUTH_PUBLIC) {
			free(a);
			a = NULL;
		}
	}
	c->cb(a, st, c->arg);
	free(c);
}

void
auth_lookup(struct db_pool *db, int is_session, const unsigned char hash[32],
    auth_cb cb, void *arg)
{
	struct auth_lookup_ctx *c = xmalloc(sizeof(*c));
	const char *v[2] = { is_session ? "session" : "token", (const char *)hash };
	int len[2] = { -1, 32 };

	c->cb = cb;
	c->arg = arg;
	db_query(db, &auth_lookup_stmt, 2, v, len, auth_looked_up, c);
}

/* ---- passwords ---- */

struct auth_pw_job {
	char		 pw[AUTH_PW_MAX + 1];
	char		 encoded[AUTH_ENCODED_MAX];
	int		 is_verify;
	int		 is_dummy;
	int		 ok;
	auth_hash_cb	 hash_cb;
	auth_verify_cb	 verify_cb;
	void		*arg;
};

static int
auth_argon_hash(const char *pw, char *encoded, size_t len)
{
	unsigned char salt[16];

	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return -1;
	return argon2id_hash_encoded(AUTH_ARGON_T, AUTH_ARGON_M, AUTH_ARGON_P, pw,
	    strlen(pw), salt, sizeof(salt), 32, encoded, len) == ARGON2_OK ? 0 : -1;
}

static void
auth_pw_run(void *arg)
{
	struct auth_pw_job *j = arg;

	if (j->is_verify)
		j->ok = argon2id_verify(j->encoded, j->pw, strlen(j->pw)) == ARGON2_OK;
	else
		j->ok = auth_argon_hash(j->pw, j->encoded, sizeof(j->encoded)) == 0;
	OPENSSL_cleanse(j->pw, sizeof(j->pw));
}

static void
auth_pw_done(void *arg, int is_cancelled)
{
	struct auth_pw_job *j = arg;

	if (is_cancelled)
		j->ok = 0;
	if (j->is_verify)
		j->verify_cb(j->ok && !j->is_dummy, j->arg);
	else
		j->hash_cb(j->ok ? j->encoded : NULL, j->arg);
	OPENSSL_cleanse(j, sizeof(*j));
	free(j);
}

int
auth_init(void)
{
	/* The hash an unknown user is checked against, so a wrong name costs
	 * as much time as a wrong password. */
	return auth_argon_hash("quarklink-no-such-user", auth_dummy_hash,
	    sizeof(auth_dummy_hash));
}

static struct auth_pw_job *
auth_pw_job_new(const char *pw)
{
	struct auth_pw_job *j;

	if (strlen(pw) > AUTH_PW_MAX)
		return NULL;
	j = xcalloc(1, sizeof(*j));
	memcpy(j->pw, pw, strlen(pw) + 1);
	return j;
}

void
auth_password_hash(const char *pw, auth_hash_cb cb, void *arg)
{
	struct auth_pw_job *j = auth_pw_job_new(pw);

	if (j == NULL) {
		cb(NULL, arg);
		return;
	}
	j->hash_cb = cb;
	j->arg = arg;
	if (work_submit(auth_pw_run, auth_pw_done, j) == -1) {
		free(j);
		cb(NULL, arg);
	}
}

int
auth_password_verify(const char *encoded, const char *pw, auth_verify_cb cb,
    void *arg)
{
	struct auth_pw_job *j = auth_pw_job_new(pw);

	if (j == NULL) {
		cb(0, arg);
		return 0;
	}
	j->is_verify = 1;
	j->is_dummy = encoded == NULL;
	snprintf(j->encoded, sizeof(j->encoded), "%s",
	    encoded != NULL ? encoded : auth_dummy_hash);
	j->verify_cb = cb;
	j->arg = arg;
	if (work_submit(auth_pw_run, auth_pw_done, j) == -1) {
		OPENSSL_cleanse(j, sizeof(*j));
		free(j);
		return -1;
	}
	return 0;
}

const char *
auth_password_weak(const char *pw)
{
	size_t n = strlen(pw);

	if (n < 12)
		return "password must be at least 12 characters";
	if (n > AUTH_PW_MAX)
		return "password longer than 1024 bytes";
	return NULL;
}

/* ---- login throttling ---- */

struct auth_throttle {
	char	key[160];
	int	fails;
	time_t	first;
};

static struct auth_throttle auth_users[AUTH_THROTTLE_SLOTS];
static struct auth_throttle auth_addrs[AUTH_THROTTLE_SLOTS];
static int auth_login_window = 900;	/* admin.login_window */

/* Bounded memory: a full table recycles its oldest entry. */
static struct auth_throttle *
auth_throttle_slot(struct auth_throttle *t, const char *key, int create)
{
	struct auth_throttle *oldest = &t[0];
	time_t now = time(NULL);

	for (int i = 0; i < AUTH_THROTTLE_SLOTS; i++) {
		if (t[i].key[0] != '\0' && now - t[i].first > auth_login_window)
			t[i].key[0] = '\0';
		if (t[i].key[0] != '\0' && strcmp(t[i].key, key) == 0)
			return &t[i];
		if (t[i].key[0] == '\0' || t[i].first < oldest->first)
			oldest = &t[i];
	}
	if (!create)
		return NULL;
	snprintf(oldest->key, sizeof(oldest->key), "%s", key);
	oldest->fails = 0;
	oldest->first = now;
	return oldest;
}

static int
auth_login_wait(const char *user, const char *addr)
{
	struct auth_throttle *u = auth_throttle_slot(auth_users, user, 0);
	struct auth_throttle *a = auth_throttle_slot(auth_addrs, addr, 0);
	time_t now = time(NULL);
	int wait = 0;

	if (u != NULL && u->fails >= AUTH_USER_FAILS)
		wait = (int)(u->first + auth_login_window - now);
	if (a != NULL && a->fails >= AUTH_ADDR_FAILS &&
	    (int)(a->first + auth_login_window - now) > wait)
		wait = (int)(a->first + auth_login_window - now);
	return wait > 0 ? wait : 0;
}

/* The attempt counts when it arrives, not when its Argon2 check ends:
 * counted afterwards, 60 parallel guesses all passed the check before the
 * first failure was recorded (issue 10). */
int
auth_login_begin(const char *user, const char *addr)
{
	int wait;

	if ((wait = auth_login_wait(user, addr)) > 0)
		return wait;
	auth_throttle_slot(auth_users, user, 1)->fails++;
	auth_throttle_slot(auth_addrs, addr, 1)->fails++;
	return 0;
}

static void
auth_login_refund(struct auth_throttle *t, const char *key)
{
	struct auth_throttle *s = auth_throttle_slot(t, key, 0);

	if (s != NULL && s->fails > 0)
		s->fails--;
}

void
auth_login_end(const char *user, const char *addr, enum auth_login_outcome o)
{
	struct auth_throttle *u;

	switch (o) {
	case AUTH_LOGIN_FAILED:
		break;		/* counted by auth_login_begin */
	case AUTH_LOGIN_OK:
		/* A success clears its user name's count; the address keeps
		 * its earlier failures (one good password must not reopen it
		 * for guessing) and gets back only this attempt. */
		if ((u = auth_throttle_slot(auth_users, user, 0)) != NULL)
			u->key[0] = '\0';
		auth_login_refund(auth_addrs, addr);
		break;
	case AUTH_LOGIN_UNJUDGED:
		auth_login_refund(auth_users, user);
		auth_login_refund(auth_addrs, addr);
		break;
	}
}

void
auth_login_set_window(int seconds)
{
	auth_login_window = seconds;
}

/* api_session.c: browser sessions. The cookie is HttpOnly, Secure and
 * SameSite=Strict; its CSRF token is returned in the body for the page to
 * send back in X-CSRF-Token. Passwords are checked on the worker thread. */
#include "api_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "api.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "users.h"

#define API_SESSION_HOURS 12
/* Seconds to wait when the queue of Argon2 checks is full: one check
 * takes tens of milliseconds, so a second drains dozens of them. */
#define API_SESSION_BUSY_RETRY "1"

struct api_login {
	struct http_req	*hr;
	char		 user[65];
	char		 addr[64];
	char		 password[1025];
	long long	 user_id;
	char		 role[16];
	int		 is_disabled;
	char		 secret[AUTH_SECRET_LEN];
	char		 new_password[1025];	/* password change only */
};

static void
api_login_free(struct api_login *l)
{
	OPENSSL_cleanse(l, sizeof(*l));
	free(l);
}

static void
api_login_noop(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	(void)st;
	(void)res;
	(void)errstr;
	(void)arg;
}

static void
api_login_refuse(struct api_login *l, const char *why)
{
	char actor[96];
	const char *v[3] = { actor, l->addr, why };

	auth_login_end(l->user, l->addr, AUTH_LOGIN_FAILED);
	snprintf(actor, sizeof(actor), "user:%s", l->user);
	db_query(l->hr->srv->db, &users_login_refused, 3, v, NULL, api_login_noop, NULL);
	/* One message for every cause: which part was wrong is not said. */
	http_reply_problem(l->hr, 401, NULL, "wrong user name or password");
	api_login_free(l);
}

static void
api_login_created(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_login *l = arg;
	struct http_req *hr = l->hr;
	char cookie[160], csrf[AUTH_SECRET_LEN];
	yajl_gen g;

	if (st != DB_OK || PQntuples(res) != 1) {
		api_db_error(hr, st, res, errstr);
		api_login_free(l);
		return;
	}
	snprintf(cookie, sizeof(cookie), API_COOKIE "=%s; Path=/; Max-Age=%d;"
	    " HttpOnly; Secure; SameSite=Strict", l->secret, API_SESSION_HOURS * 3600);
	http_add_header(hr, "Set-Cookie", cookie);
	http_add_header(hr, "Cache-Control", "no-store");
	auth_csrf(l->secret, csrf);
	g = json_gen_new();
	yajl_gen_map_open(g);
	json_kv_str(g, "user", l->user);
	json_kv_str(g, "role", l->role);
	json_kv_str(g, "csrf_token", csrf);
	yajl_gen_map_close(g);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	http_reply_json(hr, 200, g);
	api_login_free(l);
}

static void
api_login_verified(int ok, void *arg)
{
	struct api_login *l = arg;
	unsigned char hash[32];
	char uid[24], actor[96];
	const char *v[4] = { (const char *)hash, uid, actor, l->addr };
	int len[4] = { 32, -1, -1, -1 };

	if (!ok || l->is_disabled || l->user_id == 0) {
		api_login_refuse(l, !ok ? "wrong user name or password" : "disabled");
		return;
	}
	auth_login_end(l->user, l->addr, AUTH_LOGIN_OK);
	if (auth_secret_new(l->secret) == -1) {
		http_reply_problem(l->hr, 503, NULL, "no randomness");
		api_login_free(l);
		return;
	}
	auth_hash(l->secret, hash);
	snprintf(uid, sizeof(uid), "%lld", l->user_id);
	snprintf(actor, sizeof(actor), "user:%s", l->user);
	db_query(l->hr->srv->db, &users_session_create, 4, v, len, api_login_created, l);
}

/* The worker's queue is full: the password was not checked, so this is
 * neither a failure nor a success; the client may simply retry. */
static void
api_session_busy(struct http_req *hr)
{
	http_add_header(hr, "Retry-After", API_SESSION_BUSY_RETRY);
	http_reply_problem(hr, 503, NULL, "too many passwords being checked; retry in "
	    API_SESSION_BUSY_RETRY " s");
}

static void
api_login_user(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_login *l = arg;
	const char *hash = NULL;

	if (st != DB_OK) {
		auth_login_end(l->user, l->addr, AUTH_LOGIN_UNJUDGED);
		api_db_error(l->hr, st, res, errstr);
		api_login_free(l);
		return;
	}
	if (PQntuples(res) == 1) {
		l->user_id = api_val_int(res, 0, 0);
		hash = PQgetvalue(res, 0, 1);
		l->is_disabled = PQgetvalue(res, 0, 2)[0] == 't';
		snprintf(l->role, sizeof(l->role), "%s", PQgetvalue(res, 0, 3));
	}
	/* An unknown user still costs one Argon2 verification. */
	if (auth_password_verify(hash, l->password, api_login_verified, l) == -1) {
		auth_login_end(l->user, l->addr, AUTH_LOGIN_UNJUDGED);
		api_session_busy(l->hr);
		api_login_free(l);
		return;
	}
	OPENSSL_cleanse(l->password, sizeof(l->password));
}

static void
api_session_login(struct http_req *hr)
{
	static const char *const keys[] = { "username", "password", NULL };
	const char *user = NULL, *pw = NULL;
	struct api_login *l;
	char wait[16];
	yajl_val v;
	int secs;

	if ((v = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, v, "username", 1, 64, &user) == -1 ||
	    api_json_str(hr, v, "password", 1, 1024, &pw) == -1) {
		yajl_tree_free(v);
		return;
	}
	if ((secs = auth_login_begin(user, http_peer_addr(hr))) > 0) {
		snprintf(wait, sizeof(wait), "%d", secs);
		http_add_header(hr, "Retry-After", wait);
		http_reply_problem(hr, 429, NULL, "too many failed logins; retry in %d s", secs);
		yajl_tree_free(v);
		return;
	}
	if ((l = api_alloc(hr, sizeof(*l))) == NULL) {
		auth_login_end(user, http_peer_addr(hr), AUTH_LOGIN_UNJUDGED);
		yajl_tree_free(v);
		return;
	}
	l->hr = hr;
	snprintf(l->user, sizeof(l->user), "%s", user);
	snprintf(l->addr, sizeof(l->addr), "%s", http_peer_addr(hr));
	snprintf(l->password, sizeof(l->password), "%s", pw);
	yajl_tree_free(v);
	user = l->user;
	db_query(hr->srv->db, &users_by_name, 1, &user, NULL, api_login_user, l);
}

static void
api_session_logged_out(enum db_status st, const PGresult *res,
    const char *errstr, void *arg)
{
	struct http_req *hr = arg;

	if (st != DB_OK) {
		api_db_error(hr, st, res, errstr);
		return;
	}
	http_add_header(hr, "Set-Cookie", API_COOKIE "=; Path=/; Max-Age=0;"
	    " HttpOnly; Secure; SameSite=Strict");
	http_reply(hr, 204, NULL, NULL);
}

static void
api_session_logout(struct http_req *hr)
{
	const char *secret = api_session_secret(hr);
	unsigned char hash[32];
	const char *v[2] = { (const char *)hash, api_actor(hr) };
	int len[2] = { 32, -1 };

	if (secret == NULL) {
		http_reply_problem(hr, 400, NULL, "bearer tokens have no session to end");
		return;
	}
	auth_hash(secret, hash);
	db_query(hr->srv->db, &users_session_delete, 2, v, len,
	    api_session_logged_out, hr);
}

static void
api_session_get(struct http_req *hr)
{
	const struct auth *a = api_auth(hr);
	const char *secret = api_session_secret(hr);
	char csrf[AUTH_SECRET_LEN];
	yajl_gen g = json_gen_new();

	yajl_gen_map_open(g);
	json_kv_str(g, "actor", a->actor);
	json_kv_str(g, "role", auth_role_name(a->role));
	json_key(g, "projects");
	if (a->is_all_projects) {
		yajl_gen_null(g);
	} else {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < a->nprojects; i++)
			yajl_gen_integer(g, a->projects[i]);
		yajl_gen_array_close(g);
	}
	if (secret != NULL) {
		auth_csrf(secret, csrf);
		json_kv_str(g, "csrf_token", csrf);
	}
	yajl_gen_map_close(g);
	http_add_header(hr, "Cache-Control", "no-store");
	http_reply_json(hr, 200, g);
}

/* ---- own password ---- */

static void
api_password_stored(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_login *l = arg;

	if (st != DB_OK || PQntuples(res) != 1)
		api_db_error(l->hr, st, res, errstr);
	else
		http_reply(l->hr, 204, NULL, NULL);
	api_login_free(l);
}

static void
api_password_hashed(char *encoded, void *arg)
{
	struct api_login *l = arg;
	char uid[24];
	const char *v[3] = { uid, encoded, api_actor(l->hr) };

	if (encoded == NULL) {
		http_reply_problem(l->hr, 503, NULL, "cannot hash the password");
		api_login_free(l);
		return;
	}
	snprintf(uid, sizeof(uid), "%lld", l->user_id);
	db_query(l->hr->srv->db, &users_set_password, 3, v, NULL,
	    api_password_stored, l);
}

static void
api_password_checked(int ok, void *arg)
{
	struct api_login *l = arg;

	if (!ok) {
		http_reply_problem(l->hr, 403, NULL, "current password is wrong");
		api_login_free(l);
		return;
	}
	auth_password_hash(l->new_password, api_password_hashed, l);
	OPENSSL_cleanse(l->new_password, sizeof(l->new_password));
}

static void
api_password_current(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct api_login *l = arg;

	if (st != DB_OK || PQntuples(res) != 1) {
		if (st == DB_OK)
			http_reply_problem(l->hr, 404, NULL, "no such user");
		else
			api_db_error(l->hr, st, res, errstr);
		api_login_free(l);
		return;
	}
	if (auth_password_verify(PQgetvalue(res, 0, 0), l->password,
	    api_password_checked, l) == -1) {
		api_session_busy(l->hr);
		api_login_free(l);
		return;
	}
	OPENSSL_cleanse(l->password, sizeof(l->password));
}

static void
api_session_password(struct http_req *hr)
{
	static const char *const keys[] = { "current", "new", NULL };
	const char *cur = NULL, *next = NULL, *weak;
	struct api_login *l;
	char uid[24];
	const char *p = uid;
	yajl_val v;

	if (api_auth(hr)->token_id != 0 || api_auth(hr)->user_id == 0) {
		http_reply_problem(hr, 400, NULL, "log in as the user to change its password");
		return;
	}
	if ((v = api_body_json(hr, keys)) == NULL)
		return;
	if (api_json_str(hr, v, "current", 1, 1024, &cur) == -1 ||
	    api_json_str(hr, v, "new", 1, 1024, &next) == -1) {
		yajl_tree_free(v);
		return;
	}
	if ((weak = auth_password_weak(next)) != NULL) {
		yajl_tree_free(v);
		http_reply_problem(hr, 422, NULL, "%s", weak);
		return;
	}
	if ((l = api_alloc(hr, sizeof(*l))) == NULL) {
		yajl_tree_free(v);
		return;
	}
	l->hr = hr;
	l->user_id = api_auth(hr)->user_id;
	snprintf(l->password, sizeof(l->password), "%s", cur);
	snprintf(l->new_password, sizeof(l->new_password), "%s", next);
	yajl_tree_free(v);
	snprintf(uid, sizeof(uid), "%lld", l->user_id);
	db_query(hr->srv->db, &users_password_of, 1, &p, NULL, api_password_current, l);
}

const struct route api_session_routes[] = {
	{ "/api/v1/login", EVHTTP_REQ_POST, ROUTE_ADMIN, api_session_login, 0, NULL },
	{ "/api/v1/logout", EVHTTP_REQ_POST, ROUTE_ADMIN, api_session_logout, AUTH_VIEWER, NULL },
	{ "/api/v1/session", EVHTTP_REQ_GET, ROUTE_ADMIN, api_session_get, AUTH_VIEWER, NULL },
	{ "/api/v1/session/password", EVHTTP_REQ_PUT, ROUTE_ADMIN, api_session_password, AUTH_VIEWER, NULL },
};
const size_t api_session_nroutes = sizeof(api_session_routes) / sizeof(api_session_routes[0]);

/* auth.h: who is calling the admin API and what they may do. Users log in
 * with Argon2id passwords and get a session; API callers present bearer
 * tokens. Secrets are 256-bit random values, stored as SHA-256, compared
 * only through their hashes or with CRYPTO_memcmp, and never logged. */
#ifndef QL_AUTH_H
#define QL_AUTH_H

#include <stddef.h>

#include "db.h"

enum auth_role { AUTH_PUBLIC = 0, AUTH_VIEWER, AUTH_OPERATOR, AUTH_ADMIN };

#define AUTH_SECRET_LEN	44	/* base64url of 32 bytes + NUL */
#define AUTH_MAX_PROJECTS 256

struct auth {
	char		 actor[160];	/* "user:alice", "token:12" */
	enum auth_role	 role;
	long long	 user_id;	/* 0: none */
	long long	 token_id;	/* 0: a session */
	int		 is_all_projects;
	size_t		 nprojects;
	long long	 projects[AUTH_MAX_PROJECTS];
};

int		 auth_role_parse(const char *, enum auth_role *);
const char	*auth_role_name(enum auth_role);
int		 auth_sees_project(const struct auth *, long long project_id);

/* A fresh random secret (base64url, no padding) and its stored hash. */
int		 auth_secret_new(char out[AUTH_SECRET_LEN]) __attribute__((warn_unused_result));
void		 auth_hash(const char *secret, unsigned char out[32]);
/* The CSRF token of a session is derived from its secret: the server needs
 * no state for it, and a cross-site page cannot compute it. */
void		 auth_csrf(const char *session_secret, char out[AUTH_SECRET_LEN]);
int		 auth_csrf_ok(const char *session_secret, const char *presented);

typedef void (*auth_cb)(struct auth *, enum db_status, void *arg);
int		 auth_register(struct db_pool *) __attribute__((warn_unused_result));
/* Resolve a session or token hash; cb gets NULL when it is not valid. The
 * struct auth is the callback's to free. */
void		 auth_lookup(struct db_pool *, int is_session,
		    const unsigned char hash[32], auth_cb, void *arg);

/* Argon2id on the worker thread. hash: cb(encoded or NULL). verify: a NULL
 * encoded hash still costs a full verification (no user enumeration); -1
 * and no callback when the worker's queue is full (the caller answers 503:
 * a password that was never checked is not a wrong one). */
typedef void (*auth_hash_cb)(char *encoded, void *arg);
typedef void (*auth_verify_cb)(int ok, void *arg);
int		 auth_init(void) __attribute__((warn_unused_result));
void		 auth_password_hash(const char *pw, auth_hash_cb, void *arg);
int		 auth_password_verify(const char *encoded, const char *pw,
		    auth_verify_cb, void *arg) __attribute__((warn_unused_result));
const char	*auth_password_weak(const char *pw);

/* Login attempts per user name and per client address, in memory, over
 * admin.login_window seconds. begin: the seconds to wait (429) and nothing
 * counted, or 0 and the attempt counted as a failure until end says
 * otherwise. end: OK clears the name's count and refunds the address's;
 * UNJUDGED (the password was never checked: queue full, database error)
 * refunds both. */
enum auth_login_outcome { AUTH_LOGIN_FAILED, AUTH_LOGIN_OK, AUTH_LOGIN_UNJUDGED };
int		 auth_login_begin(const char *user, const char *addr)
		    __attribute__((warn_unused_result));
void		 auth_login_end(const char *user, const char *addr,
		    enum auth_login_outcome);
void		 auth_login_set_window(int seconds);

#endif

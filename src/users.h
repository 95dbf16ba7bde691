/* users.h: SQL of users, sessions and API tokens. Handlers (api_session.c,
 * api_users.c) and the admin command line compose parameters; the SQL text
 * and its audit rows live here. Secrets arrive as hashes only. */
#ifndef QL_USERS_H
#define QL_USERS_H

#include "db.h"

/* $1 name -> id, password_hash, is_disabled, role */
extern const struct db_stmt users_by_name;
/* $1 user id -> password_hash */
extern const struct db_stmt users_password_of;
/* $1 session hash, $2 user id, $3 actor, $4 client address -> 1 row */
extern const struct db_stmt users_session_create;
/* $1 session hash, $2 actor -> 1 row when there was a session */
extern const struct db_stmt users_session_delete;
/* $1 actor, $2 client address, $3 detail: a refused login */
extern const struct db_stmt users_login_refused;
/* $1 name, $2 hash, $3 role, $4 projects ("{1,2}" or NULL), $5 actor -> id */
extern const struct db_stmt users_create;
/* $1 user id, $2 new hash, $3 actor -> 1 row */
extern const struct db_stmt users_set_password;

/* The admin API. "scope" is the caller's projects ("{1,2}") or NULL for
 * all: a caller limited to projects sees and manages only users and
 * tokens inside them. User rows: name, role, projects (comma-separated
 * names, '' for none, NULL for all), disabled, created_at. Token rows: id,
 * name, role, project name|NULL, expires_at, revoked_at, last_used,
 * created_at. Functions answer a status word first (see 005_users.sql). */
/* $1 after name, $2 limit, $3 scope */
extern const struct db_stmt users_list;
/* $1 name, $2 password hash, $3 role, $4 project names ("{a,b}"|NULL),
 * $5 scope, $6 actor -> status, detail, user row */
extern const struct db_stmt users_create_api;
/* $1 name, $2 role|NULL, $3 disabled|NULL, $4 set projects, $5 project
 * names|NULL, $6 password hash|NULL, $7 scope, $8 caller's user id|NULL,
 * $9 actor -> status, detail, user row */
extern const struct db_stmt users_update;
/* $1 after id, $2 limit, $3 scope */
extern const struct db_stmt users_tokens_list;
/* $1 name, $2 SHA-256 of the secret (binary), $3 role, $4 project|NULL,
 * $5 valid days|NULL, $6 scope, $7 creating user id|NULL, $8 actor ->
 * status, detail, token row */
extern const struct db_stmt users_token_create;
/* $1 token id, $2 scope, $3 actor -> ok | not_found | revoked */
extern const struct db_stmt users_token_revoke;

/* One user row of the admin API; strings point into the result. */
struct users_row {
	const char	*name;
	const char	*role;
	const char	*projects;	/* comma-separated names, "" none, NULL all */
	int		 is_disabled;
	const char	*created_at;
};
/* One API token row; NULL for SQL NULL. */
struct users_token_row {
	long long	 id;
	const char	*name;
	const char	*role;
	const char	*project;	/* NULL: every project */
	const char	*expires_at;
	const char	*revoked_at;
	const char	*last_used;
	const char	*created_at;
};

/* Row i of a result whose user (token) columns start at col. */
void	users_decode(const PGresult *, int row, int col, struct users_row *);
void	users_token_decode(const PGresult *, int row, int col,
	    struct users_token_row *);

/* The status word that users_create_api and users_update answer first
 * (sql/005_users.sql), as a type: decoded here, mapped to HTTP once. */
enum users_status {
	USERS_OK,
	USERS_NOT_FOUND,
	USERS_EXISTS,
	USERS_SELF,		/* the caller would disable or demote itself */
	USERS_LAST_ADMIN,
	USERS_UNKNOWN_PROJECT,	/* column 1 names it */
	USERS_SCOPE,		/* a grant beyond the caller's projects */
	USERS_UNEXPECTED,	/* a word this binary does not know */
};
enum users_status users_status_decode(const PGresult *);

int	users_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

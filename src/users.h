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

int	users_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

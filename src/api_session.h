/* api_session.h: log in, log out, who am I, change my password. */
#ifndef QL_API_SESSION_H
#define QL_API_SESSION_H

#include <stddef.h>

#include "route.h"

extern const struct route api_session_routes[];
extern const size_t api_session_nroutes;

#endif

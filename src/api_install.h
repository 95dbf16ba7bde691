/* api_install.h: where this installation's services are, as agents and
 * people must address them (GET /api/v1/installation). */
#ifndef QL_API_INSTALL_H
#define QL_API_INSTALL_H

#include <stddef.h>

#include "route.h"

extern const struct route api_install_routes[];
extern const size_t api_install_nroutes;

#endif

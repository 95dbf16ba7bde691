/* devupdate.h: the device update API under /device/v1/ (device listener,
 * mutual TLS with a device certificate only): update, images, signature,
 * status. */
#ifndef QL_DEVUPDATE_H
#define QL_DEVUPDATE_H

#include <stddef.h>

#include "db.h"
#include "route.h"

#define DEVUPDATE_MAX_STREAMS	128		/* downloads at once: a piece each */

extern const struct route devupdate_routes[];
extern const size_t devupdate_nroutes;

int	devupdate_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

/* devices.h: SQL of the devices resource for the admin API (statements and their
 * audit rows); handlers in api_devices.c compose parameters only. */
#ifndef QL_DEVICES_H
#define QL_DEVICES_H

#include "db.h"

int	devices_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

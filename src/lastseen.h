/* lastseen.h: devices.last_seen without a database write per poll. Marks
 * are coalesced in memory (one per device) and written every
 * LASTSEEN_FLUSH_S seconds as one UPDATE ... FROM unnest(...). A stop
 * loses the marks of the last interval: last_seen is a hint. */
#ifndef QL_LASTSEEN_H
#define QL_LASTSEEN_H

#include "server.h"

#define LASTSEEN_FLUSH_S	5
#define LASTSEEN_MAX		131072	/* devices marked between flushes */
#define LASTSEEN_BATCH		8192	/* devices per UPDATE */

void	lastseen_start(struct server *);
void	lastseen_mark(long long device);
/* Write what is marked now, without waiting (the timer does). */
void	lastseen_flush(void);
void	lastseen_stop(void);

#endif

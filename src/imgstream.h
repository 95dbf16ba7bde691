/* imgstream.h: a streamed reply of an image's stored bytes, for the admin
 * download and the device download alike. */
#ifndef QL_IMGSTREAM_H
#define QL_IMGSTREAM_H

#include <stddef.h>

struct http_req;
struct db_pool;

#define IMGSTREAM_PIECE		(1024 * 1024)	/* bytes read per query */
#define IMGSTREAM_UPLOAD_ID	32		/* longest upload id */

typedef void (*imgstream_done_fn)(void *arg);

/* Start hr's reply with status and stream bytes [from, end) of variant
 * (0 plain, 1 encrypted) of upload_id. Headers (Content-Length...) are
 * the caller's, added before. 0: done(arg) runs once when the stream has
 * ended (completed, client gone, or aborted on missing bytes); -1: it could
 * not start and hr got a 503. */
int	imgstream_start(struct http_req *hr, int status, const char *upload_id,
	    int variant, long long from, long long end, imgstream_done_fn done,
	    void *arg);
int	imgstream_register(struct db_pool *) __attribute__((warn_unused_result));

#endif

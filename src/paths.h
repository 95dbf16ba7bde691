/* paths.h: URL paths that a layer below the handlers must know: the
 * connection layer lets only a PATCH to the tus endpoint carry a body
 * larger than server.max_body_size, before any handler runs. */
#ifndef QL_PATHS_H
#define QL_PATHS_H

#define PATH_UPLOADS	"/api/v1/uploads/"

#endif

/* api_ctx.h: the state of one /api/v1/ request, hung on http_req->api.
 * Written by the front door (api_front.c) while it authenticates and
 * resolves the project; read by the handler toolkit (api.c). */
#ifndef QL_API_CTX_H
#define QL_API_CTX_H

#include "auth.h"

#define API_CTX_ID_LEN		24	/* a bigint as text */

struct api_ctx {
	struct auth	*auth;
	char		 secret[AUTH_SECRET_LEN];	/* session cookie value */
	int		 is_session;
	long long	 project_id;
	char		 project_id_str[API_CTX_ID_LEN];
	char		 project[64];
	int		 limit;		/* from api_page() */
};

#endif

/* http_status.h: HTTP reason phrases, apart from http.h so that the
 * connection layer (http_conn.c) needs nothing of the reply functions. */
#ifndef QL_HTTP_STATUS_H
#define QL_HTTP_STATUS_H

/* "Not Found" for 404; "Error" for a status not in the table. */
const char	*http_status_title(int status);

#endif

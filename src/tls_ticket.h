/* tls_ticket.h: TLS session ticket keys that rotate. One key set per
 * process, shared by the TLS listeners; it survives a TLS reload. */
#ifndef QL_TLS_TICKET_H
#define QL_TLS_TICKET_H

#include <openssl/ssl.h>

struct event_base;

/* The first key and a timer that replaces it every interval seconds. */
int	 tls_ticket_start(struct event_base *, long long interval,
	    const char **errstr) __attribute__((warn_unused_result));
/* Issue and accept tickets under the rotating keys on ctx; no server-side
 * session cache. Before tls_ticket_start, ctx issues no tickets. */
void	 tls_ticket_setup(SSL_CTX *ctx);
/* Stop rotating and wipe the keys. */
void	 tls_ticket_stop(void);

#endif

/* agent.h: what every module of ql-agent shares: the exit codes (one per
 * kind of failure, documented in ql-agent(8)) and one-line logging. */
#ifndef QL_AGENT_H
#define QL_AGENT_H

#include <stdarg.h>
#include <stddef.h>

enum agent_exit {
	AGENT_OK = 0,
	AGENT_EFAIL = 1,	/* local failure: files, key store, memory */
	AGENT_EUSAGE = 2,	/* command line or configuration */
	AGENT_ENONET = 3,	/* server unreachable */
	AGENT_EUNTRUSTED = 4,	/* server certificate does not chain to the pinned root */
	AGENT_ETOKEN = 5,	/* enrollment token refused */
	AGENT_EREJECTED = 6,	/* an admin rejected the device */
	AGENT_EPENDING = 7,	/* still waiting for approval when the wait ended */
	AGENT_EREFUSED = 8,	/* device refused: revoked, disabled, or unknown */
	AGENT_EPROTO = 9,	/* the server answered something unusable */
	AGENT_EVERIFY = 10,	/* an update failed verification, nothing installed */
	AGENT_EINSTALL = 11,	/* the install hook failed */
	AGENT_ENOTENROLLED = 12	/* the device has no certificate yet */
};

/* Verbosity: 0 errors only, 1 info (default), 2 debug. */
extern int agent_verbosity;

void	agent_err(const char *, ...) __attribute__((format(printf, 1, 2)));
void	agent_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	agent_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/* OpenSSL's error queue as one short reason (the last entry), and clear it. */
const char *agent_ssl_err(void);

#endif

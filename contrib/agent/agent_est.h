/* agent_est.h: EST enrollment (RFC 7030) as a device. */
#ifndef QL_AGENT_EST_H
#define QL_AGENT_EST_H

struct agent_conf;
struct agent_ident;

/* First enrollment (factory): key, CSR, simpleenroll with the token (may
 * be NULL), waiting for an approval up to wait seconds. Returns an exit
 * code; on AGENT_OK the device ID is in id_out. */
int	agent_est_enroll(const struct agent_conf *, const char *token, long wait,
	    char id_out[33]);
/* simplereenroll with mutual TLS, same key and subject; replaces the
 * stored certificate. Returns an exit code. */
int	agent_est_reenroll(const struct agent_conf *, struct agent_ident *);
/* The configured fraction of the certificate's lifetime has passed. */
int	agent_est_renewal_due(const struct agent_conf *, const struct agent_ident *);

#endif

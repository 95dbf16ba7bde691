/* agent_conf.h: /etc/ql-agent.conf, one "key = value" per line. */
#ifndef QL_AGENT_CONF_H
#define QL_AGENT_CONF_H

enum agent_keystore { AGENT_KEY_FILE, AGENT_KEY_TPM2 };

struct agent_conf {
	char	*est_url;		/* https://host:port/.well-known/est */
	char	*device_url;		/* https://host:port (device API base) */
	char	*root_ca;		/* the pinned installation root (PEM) */
	char	*project;
	char	*hardware;		/* must be listed in a manifest's "hardware" */
	char	*label;			/* device label sent at first enrollment */
	enum agent_keystore key_store;
	char	*tpm2_tcti;		/* TPM2OPENSSL_TCTI for the provider */
	char	*tpm2_key;		/* optional: "handle:0x81000002" */
	long	 tpm2_ek_handle;	/* persistent handles of attestation */
	long	 tpm2_ak_handle;
	long	 tpm2_srk_handle;
	char	*state_dir;
	long	 poll_interval;		/* seconds */
	double	 renew_fraction;	/* of the certificate lifetime */
	char	*install_hook;
	long	 enroll_wait;		/* seconds to wait for an approval */
	long	 retry_max;		/* cap on Retry-After and back-off, seconds */
	long	 timeout;		/* per request without a body, seconds */
	long long max_image_size;	/* bytes */
};

/* Parse path; on failure print "path:line: reason" and return -1. */
int	agent_conf_load(const char *path, struct agent_conf *)
	    __attribute__((warn_unused_result));
void	agent_conf_free(struct agent_conf *);

#endif

/* agent_state.h: what the agent remembers in its state directory. */
#ifndef QL_AGENT_STATE_H
#define QL_AGENT_STATE_H

#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct agent_conf;

#define AGENT_VERSION_MAX	64

struct agent_state {
	char		 installed_version[AGENT_VERSION_MAX];	/* "" = none recorded */
	long long	 installed_image;			/* -1 = none */
	time_t		 last_poll;				/* 0 = never */
	char		 last_result[256];
	time_t		 renewed_at;
	char		 attestation[256];	/* last attestation result, "" = none */
	time_t		 attested_at;		/* when, 0 = never */
	char		 tpm2_key[64];		/* identity key of an attested enrollment */
};

/* The device's identity: key, certificate, chain up to (not including) the root. */
struct agent_ident {
	EVP_PKEY	*key;
	X509		*cert;
	STACK_OF(X509)	*chain;
	char		 device_id[33];
};

/* A missing file is the empty state; a corrupt one is an error. */
int	 agent_state_load(const struct agent_conf *, struct agent_state *)
	    __attribute__((warn_unused_result));
int	 agent_state_save(const struct agent_conf *, const struct agent_state *)
	    __attribute__((warn_unused_result));
/* Make the state directory (0700) if it does not exist. */
int	 agent_state_dir(const struct agent_conf *) __attribute__((warn_unused_result));

/* AGENT_OK, AGENT_ENOTENROLLED (no certificate) or another exit code. */
int	 agent_ident_load(const struct agent_conf *, struct agent_ident *)
	    __attribute__((warn_unused_result));
/* Store certificate and chain: chain.pem first, then cert.pem, each
 * atomically, so cert.pem (the mark of an enrolled device) never names a
 * chain that is not there. */
int	 agent_ident_store(const struct agent_conf *, X509 *, STACK_OF(X509) *)
	    __attribute__((warn_unused_result));
void	 agent_ident_free(struct agent_ident *);
/* Verify cert against the pinned root with chain as untrusted helpers. */
int	 agent_ident_verify(const struct agent_conf *, X509 *, STACK_OF(X509) *,
	    const char **why) __attribute__((warn_unused_result));
X509_STORE *agent_root_store(const struct agent_conf *);

#endif

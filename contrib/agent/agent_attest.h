/* agent_attest.h: the device side of TPM attestation (quarklink-attest(7),
 * the "Issue 15" wire contract): proving the TPM and the identity key
 * before the first enrollment, and quotes of the boot measurements in the
 * field. */
#ifndef QL_AGENT_ATTEST_H
#define QL_AGENT_ATTEST_H

#include <stddef.h>

struct agent_conf;
struct agent_state;

#define AGENT_ATTEST_KEY_MAX	64	/* "handle:0x81000002" */

/* Before a first enrollment: ask whether the project requires attestation
 * and, if it does, prove EK, AK and identity key to the server. On
 * AGENT_OK key_uri is the identity key to enroll with (provider URI), or
 * "" when the project does not attest. Otherwise an exit code, the reason
 * printed once. */
int	agent_attest_enroll(const struct agent_conf *, char key_uri[AGENT_ATTEST_KEY_MAX]);

/* At a poll: answer the server's quote challenge, if it sends one, and
 * record the verdict in the state. Failures are logged, not fatal; the
 * return value is the exit code of the failure. */
int	agent_attest_quote(const struct agent_conf *, struct agent_state *);

/* After the configuration is loaded: a device enrolled with attestation
 * keeps using the key it attested (recorded in state.json) unless tpm2_key
 * names one. */
int	agent_attest_conf(struct agent_conf *) __attribute__((warn_unused_result));

#endif

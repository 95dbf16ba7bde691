/* devattest.h: the device listener's TPM attestation endpoints (see
 * quarklink-attest(7)): attestation settings, EK credential challenge and
 * identity-key proof before enrollment (no client certificate), and quote
 * challenge and quote in the field (mutual TLS). */
#ifndef QL_DEVATTEST_H
#define QL_DEVATTEST_H

#include <stddef.h>

#include "route.h"

#define DEVATTEST_BODY_MAX	(16 * 1024)	/* challenge and proof */
#define DEVATTEST_QUOTE_MAX	(256 * 1024)	/* a quote with its event log */

extern const struct route devattest_routes[];
extern const size_t devattest_nroutes;

#endif

/* api_attest.h: a project's trusted TPM manufacturer CAs
 * (/api/v1/projects/{project}/tpm-cas). */
#ifndef QL_API_ATTEST_H
#define QL_API_ATTEST_H

#include <stddef.h>

#include "route.h"

extern const struct route api_attest_routes[];
extern const size_t api_attest_nroutes;

#endif

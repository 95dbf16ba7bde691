/* api_pki.h: the pki listener: CA certificates, CRLs and OCSP over plain
 * HTTP (everything served is signed, RFC 5280/6960). */
#ifndef QL_API_PKI_H
#define QL_API_PKI_H

#include <stddef.h>

#include "route.h"

extern const struct route api_pki_routes[];
extern const size_t api_pki_nroutes;

#endif

/* ca.h: certificate, CRL and OCSP construction and signing. Pure OpenSSL:
 * every signature is X509_sign/X509_CRL_sign/OCSP_basic_sign over an
 * EVP_PKEY that refers to a token key. No database, no HTTP. */
#ifndef QL_CA_H
#define QL_CA_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

#define CA_SERIAL_HEX	33	/* 16 bytes as lowercase hex + NUL */
#define CA_DEVICE_ID	33	/* 32 base32 characters + NUL */

enum ca_profile {
	CA_PROFILE_ROOT,
	CA_PROFILE_ISSUING,	/* project CA: signs device certificates */
	CA_PROFILE_CODESIGN,	/* project image signing */
	CA_PROFILE_DEVICE,	/* clientAuth, SAN URI with the device ID */
	CA_PROFILE_TLS_SERVER,
};

/* Signatures made since start, by what was signed (for /metrics). */
enum ca_sign_kind { CA_SIGN_CERT, CA_SIGN_CRL, CA_SIGN_OCSP, CA_SIGN_NKINDS };
unsigned long long ca_signatures(enum ca_sign_kind);

/* A signing identity: certificate plus the token key behind it. */
struct ca_signer {
	X509		*cert;
	EVP_PKEY	*key;
};

struct ca_request {
	enum ca_profile		 profile;
	const char		*cn;
	const char		*org;
	EVP_PKEY		*pubkey;
	/* Instead of pubkey: copied as encoded, skipping OpenSSL 3.0's key
	 * encoder (a quarter of an enrollment's CPU time). */
	X509_PUBKEY		*spki;
	const struct ca_signer	*issuer;	/* NULL: self-signed root */
	EVP_PKEY		*self_key;	/* root: signs itself */
	int			 days;
	const char		*san;		/* "URI:...", "DNS:a,IP:1.2.3.4" */
	const char		*ocsp_url;	/* device: AIA */
	const char		*crl_url;	/* device: CDP */
};

/* Builds and signs; *serial_hex gets the serial. NULL + err on failure. */
X509	*ca_issue(const struct ca_request *, char serial_hex[CA_SERIAL_HEX],
	    char *err, size_t errlen);
/* Device ID: base32 of the first 20 bytes of SHA-256(SubjectPublicKeyInfo). */
int	 ca_device_id(EVP_PKEY *, char out[CA_DEVICE_ID],
	    unsigned char spki_sha256[32]) __attribute__((warn_unused_result));
int	 ca_device_id_spki(X509_PUBKEY *, char out[CA_DEVICE_ID],
	    unsigned char spki_sha256[32]) __attribute__((warn_unused_result));
/* Accepted device keys: EC P-256/P-384, RSA 2048-4096. */
int	 ca_key_acceptable(EVP_PKEY *, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
void	 ca_serial_hex(const ASN1_INTEGER *, char out[CA_SERIAL_HEX]);
/* DER of cert into *der (OPENSSL_free it); -1 on failure. */
int	 ca_der(X509 *, unsigned char **der, int *len) __attribute__((warn_unused_result));
/* One line RFC 2253 text of a name, for the database and messages. */
int	 ca_name_text(const X509_NAME *, char *buf, size_t len)
	    __attribute__((warn_unused_result));

struct ca_revoked {
	const char	*serial_hex;
	time_t		 revoked_at;
	int		 reason;
};
/* DER CRL (v2, CRL number, AKI, reason codes), caller frees with free(). */
int	 ca_crl(const struct ca_signer *, const struct ca_revoked *, size_t n,
	    long long crl_number, int valid_hours, unsigned char **der,
	    size_t *len, char *err, size_t errlen) __attribute__((warn_unused_result));

enum ca_ocsp_status { CA_OCSP_GOOD, CA_OCSP_REVOKED, CA_OCSP_UNKNOWN };
/* One single response for id, signed by the issuing CA; nonce copied from
 * req when it has one. DER out, caller frees with free(). */
int	 ca_ocsp_sign(const struct ca_signer *, OCSP_REQUEST *req, OCSP_CERTID *id,
	    enum ca_ocsp_status, time_t revoked_at, int reason, int valid_hours,
	    unsigned char **der, size_t *len) __attribute__((warn_unused_result));
/* Base64 (64-column lines) of a certs-only PKCS#7, as EST answers. */
char	*ca_p7_certs_b64(X509 *const *certs, size_t n);
/* A response carrying only an error status (malformed, unauthorized...). */
int	 ca_ocsp_error(int status, unsigned char **der, size_t *len)
	    __attribute__((warn_unused_result));

#endif

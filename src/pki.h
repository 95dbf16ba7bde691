/* pki.h: the installation's CAs at run time, one file per concern: the
 * registry of the root and each project's issuing CA (pki.c), bootstrap
 * (pki_boot.c), project creation and key destruction (pki_project.c),
 * revocation state shared with the TLS layer (pki_revoked.c) and the CRL
 * cache (pki_crl.c). Kept in step with other nodes through LISTEN/NOTIFY.
 * Builds no HTTP replies; every token operation runs on tok.c's workers.
 * The OCSP responder (ocsp.c) and tls_cert = auto (tlsauto.c) build on it. */
#ifndef QL_PKI_H
#define QL_PKI_H

#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include "ca.h"
#include "p11.h"

struct server;
struct pki;

struct pki_ca {
	struct pki_ca		*next;
	long long		 id;
	long long		 project_id;	/* 0: the root */
	char			 name[64];	/* "root" or the project name */
	struct ca_signer	 signer;
	int			 validity_days;
	unsigned char		*cert_der;
	size_t			 cert_der_len;
	char			*cacerts_b64;	/* EST cacerts body */
	OCSP_CERTID		*id_sha1;	/* issuer hashes for OCSP lookups */
	OCSP_CERTID		*id_sha256;
	unsigned char		*crl;
	size_t			 crl_len;
	time_t			 crl_refresh;
	int			 is_crl_dirty;
	int			 is_crl_busy;
	struct pki_waiter	*crl_waiters;
};

typedef void (*pki_done_cb)(const char *err, void *arg);
/* What pki_project_create ended with; err says it in words. */
enum pki_create_status {
	PKI_CREATED,
	PKI_CREATE_EXISTS,	/* the name is taken */
	PKI_CREATE_INVALID,	/* the name is not allowed */
	PKI_CREATE_FAILED,	/* database or token unavailable */
};
typedef void (*pki_create_cb)(enum pki_create_status, const char *err,
    void *arg);
typedef void (*pki_ca_cb)(struct pki_ca *, const char *err, void *arg);
typedef void (*pki_blob_cb)(const unsigned char *, size_t, const char *err,
    void *arg);

struct pki	*pki_new(struct server *);
void		 pki_free(struct pki *);
int		 pki_register(struct pki *) __attribute__((warn_unused_result));
/* Load (or on first start create) the root, every project CA and the
 * revocation list; cb(NULL) when done. */
void		 pki_bootstrap(struct pki *, pki_done_cb, void *arg);

struct pki_ca	*pki_root(struct pki *);
/* Every CA loaded, root first, linked through next. */
struct pki_ca	*pki_cas(struct pki *);
/* A project's issuing CA: from memory, else from the database. cb(NULL,
 * NULL) when the project does not exist, cb(NULL, err) on failure. */
void		 pki_project(struct pki *, const char *name, pki_ca_cb, void *arg);
/* A CA by its id, which is never renamed or reused: what certificates
 * name. cb(NULL, NULL) when there is none. */
void		 pki_ca_get(struct pki *, long long id, pki_ca_cb, void *arg);
/* validity_days 0: ca.cert_validity_days. "project already exists" when
 * the name is taken, also by a concurrent creation; no key is left behind
 * when creation fails. */
void		 pki_project_create(struct pki *, const char *actor,
		    const char *name, int token, int allowlist, int approval,
		    int tpm, int validity_days, pki_create_cb, void *arg);

/* After a project's rows are deleted: its token keys ("label,label"),
 * destroyed on a token worker; cb (may be NULL) once they are gone, with
 * NULL or why one could not be destroyed (logged already). */
void		 pki_project_keys_destroy(struct pki *, const char *labels,
		    pki_done_cb cb, void *arg);

/* The loaded CA that issued cert, or NULL (another CA, e.g. client_ca). */
struct pki_ca	*pki_issuer_of(struct pki *, X509 *cert);
/* Revoked by the CA of ours that issued it; resumed TLS sessions skip the
 * handshake's check, so handlers that trust a peer certificate ask. */
int		 pki_is_revoked(struct pki *, X509 *cert);
/* A fresh trust store (every CA loaded and the extra_ca file) and the
 * verify callback for the device listener's clients. */
int		 pki_setup_client_tls(struct pki *, SSL_CTX *, const char *extra_ca,
		    char *err, size_t errlen) __attribute__((warn_unused_result));

void		 pki_crl(struct pki *, struct pki_ca *, pki_blob_cb, void *arg);

const char	*pki_url(struct pki *);
/* A device certificate request for a verified CSR public key, with its
 * own copies of what the loop may change while a token worker signs it
 * (ca_issue(&d->r, ...)). device_id and spki must outlive it. */
struct pki_device_req {
	struct ca_request	 r;
	char			 org[64];
	char			 san[96];
	char			 ocsp[320];
	char			 crl[400];
};
void		 pki_device_prepare(struct pki *, const struct pki_ca *,
		    X509_PUBKEY *spki, const char *device_id, struct pki_device_req *);
time_t		 pki_asn1_time(const ASN1_TIME *);

#endif

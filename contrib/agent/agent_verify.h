/* agent_verify.h: what makes an update genuine, newer and unexpired. */
#ifndef QL_AGENT_VERIFY_H
#define QL_AGENT_VERIFY_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#define AGENT_MANIFEST_MAX	(64 * 1024)
#define AGENT_HW_MAX		32

struct agent_manifest {
	char		 project[64];
	long long	 image_id;
	char		 name[128];
	char		 version[64];
	long long	 size;
	unsigned char	 sha256[32];
	char		 sha256_hex[65];
	time_t		 created;
	time_t		 expires;
	char		 hardware[AGENT_HW_MAX][65];	/* 1-64 of [A-Za-z0-9._:-] */
	size_t		 nhardware;
	int		 is_encrypted;
	long long	 encrypted_size;	/* -1 unless encrypted */
	long long	 segment_size;		/* -1 unless encrypted */
};

/* Versions: 1 to 4 dot-separated decimal integers (each < 2^31), missing
 * parts count as 0. */
int	 agent_version_parse(const char *, long v[4]) __attribute__((warn_unused_result));
/* <0, 0, >0 like strcmp; both must parse. */
int	 agent_version_cmp(const long a[4], const long b[4]);

/* The signer of a CMS SignedData: chains to the root in store (with
 * untrusted as intermediates), carries the codeSigning extended key usage,
 * and, if org is not NULL, has that O= (the project it was issued for). */
/* Verify the manifest CMS (DER) and parse the JSON it embeds. */
int	 agent_verify_manifest(const unsigned char *der, size_t len, X509_STORE *,
	    STACK_OF(X509) *untrusted, const char *org, struct agent_manifest *,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Parse manifest JSON (exposed for the unit test). */
int	 agent_manifest_parse(const char *, size_t, struct agent_manifest *,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Project, hardware, rollback (installed may be "" for none), expiry, size bound. */
int	 agent_verify_policy(const struct agent_manifest *, const char *project,
	    const char *hardware, const char *installed, time_t now, long long max_size,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* The detached CMS signature (DER) over the file at path, streamed. */
int	 agent_verify_detached(const unsigned char *der, size_t len, const char *path,
	    X509_STORE *, STACK_OF(X509) *untrusted, const char *org, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/* SHA-256 and length of a file, read in bounded blocks. */
int	 agent_hash_file(const char *path, unsigned char md[32], long long *size)
	    __attribute__((warn_unused_result));

#endif

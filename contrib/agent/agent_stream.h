/* agent_stream.h: the encrypted image form (man/quarklink-image.5):
 * segmented AES-256-GCM in the STREAM construction, nonce = 7-byte prefix
 * || 32-bit big-endian segment counter || 1-byte last-segment flag. */
#ifndef QL_AGENT_STREAM_H
#define QL_AGENT_STREAM_H

#include <stddef.h>

#include <openssl/evp.h>

#define AGENT_STREAM_TAG	16

struct agent_stream {
	unsigned char	 key[32];
	unsigned char	 prefix[7];
	unsigned char	 header[24];	/* authenticated with every segment */
	size_t		 header_len;	/* bytes before the first segment */
	size_t		 segment_size;	/* plaintext bytes per full segment */
};

/* Read the header at the start of fd into s (prefix, segment size,
 * header length), checking it against the manifest's segment size. */
int	agent_stream_header(int fd, long long segment_size, struct agent_stream *,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/* Decrypt in_fd (the whole encrypted form) to out_fd, segment by segment:
 * each segment is authenticated before a byte of it is written, the last
 * one must carry the last flag, and the plaintext goes through md. */
int	agent_stream_decrypt(int in_fd, long long enc_size, const struct agent_stream *,
	    int out_fd, EVP_MD_CTX *md, long long *plain_size, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* The content key from the CMS EnvelopedData (DER) the server wrapped for
 * this device, opened with the device key (in the TPM for tpm2). */
int	agent_stream_unwrap(const unsigned char *der, size_t len, EVP_PKEY *, void *cert,
	    unsigned char key[32], char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/* The key agreement done here rather than by CMS_decrypt (what a TPM key
 * needs); exposed for the unit test. */
int	agent_stream_unwrap_kari(const unsigned char *der, size_t len, EVP_PKEY *,
	    unsigned char key[32], char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif

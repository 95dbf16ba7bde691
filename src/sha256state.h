/* sha256state.h: a SHA-256 computation that can be stopped, stored and
 * resumed elsewhere (a tus upload's hash across PATCHes and restarts).
 * OpenSSL 3's EVP_MD_CTX cannot export its state, so this keeps the
 * low-level SHA256_CTX (deprecated but present in 3.x, and the same
 * assembly as EVP: SHA-NI here) and serialises its fields itself, in a
 * fixed big-endian layout that does not depend on the struct's layout. */
#ifndef QL_SHA256STATE_H
#define QL_SHA256STATE_H

#include <stddef.h>
#include <stdint.h>

/* version(1) h[8](32) bits(8) buffered(1) block(64) */
#define SHA256STATE_LEN	106

struct sha256state {
	uint32_t	h[8];
	uint64_t	bits;		/* bytes hashed so far, times 8 */
	unsigned	nbuf;		/* bytes of block not yet compressed */
	unsigned char	block[64];
};

void	sha256state_init(struct sha256state *);
void	sha256state_update(struct sha256state *, const void *, size_t);
/* The digest of everything so far; the state itself is left unchanged. */
void	sha256state_final(const struct sha256state *, unsigned char out[32]);
void	sha256state_save(const struct sha256state *,
	    unsigned char out[SHA256STATE_LEN]);
/* -1 when buf is not a saved state of exactly offset bytes. */
int	sha256state_load(struct sha256state *, const unsigned char *, size_t,
	    uint64_t offset) __attribute__((warn_unused_result));

#endif

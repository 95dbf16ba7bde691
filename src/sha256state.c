/* sha256state.c: see sha256state.h. The only file that uses OpenSSL's
 * deprecated SHA256_* functions, for the reason given there. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sha256state.h"

#include <string.h>

#include <openssl/sha.h>

#define SHA256STATE_VERSION	1

static void
sha256state_to_ctx(const struct sha256state *s, SHA256_CTX *c)
{
	memset(c, 0, sizeof(*c));
	memcpy(c->h, s->h, sizeof(c->h));
	c->Nl = (SHA_LONG)(s->bits & 0xffffffffu);
	c->Nh = (SHA_LONG)(s->bits >> 32);
	c->num = s->nbuf;
	memcpy(c->data, s->block, s->nbuf);	/* bytes, as md32_common keeps them */
	c->md_len = SHA256_DIGEST_LENGTH;
}

static void
sha256state_from_ctx(struct sha256state *s, const SHA256_CTX *c)
{
	memcpy(s->h, c->h, sizeof(s->h));
	s->bits = (uint64_t)c->Nh << 32 | c->Nl;
	s->nbuf = c->num;
	memset(s->block, 0, sizeof(s->block));
	memcpy(s->block, c->data, c->num);
}

void
sha256state_init(struct sha256state *s)
{
	SHA256_CTX c;

	SHA256_Init(&c);
	sha256state_from_ctx(s, &c);
}

void
sha256state_update(struct sha256state *s, const void *p, size_t n)
{
	SHA256_CTX c;

	sha256state_to_ctx(s, &c);
	SHA256_Update(&c, p, n);
	sha256state_from_ctx(s, &c);
}

void
sha256state_final(const struct sha256state *s, unsigned char out[32])
{
	SHA256_CTX c;

	sha256state_to_ctx(s, &c);
	SHA256_Final(out, &c);
}

static void
sha256state_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
sha256state_get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

void
sha256state_save(const struct sha256state *s, unsigned char out[SHA256STATE_LEN])
{
	out[0] = SHA256STATE_VERSION;
	for (int i = 0; i < 8; i++)
		sha256state_put32(out + 1 + 4 * i, s->h[i]);
	sha256state_put32(out + 33, (uint32_t)(s->bits >> 32));
	sha256state_put32(out + 37, (uint32_t)s->bits);
	out[41] = (unsigned char)s->nbuf;
	memcpy(out + 42, s->block, 64);
}

int
sha256state_load(struct sha256state *s, const unsigned char *p, size_t n,
    uint64_t offset)
{
	if (n != SHA256STATE_LEN || p[0] != SHA256STATE_VERSION || p[41] >= 64)
		return -1;
	for (int i = 0; i < 8; i++)
		s->h[i] = sha256state_get32(p + 1 + 4 * i);
	s->bits = (uint64_t)sha256state_get32(p + 33) << 32 |
	    sha256state_get32(p + 37);
	s->nbuf = p[41];
	memcpy(s->block, p + 42, 64);
	/* A state from another offset would hash to a wrong digest silently. */
	if (s->bits != offset * 8 || s->nbuf != offset % 64)
		return -1;
	return 0;
}

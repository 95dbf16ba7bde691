/* tls_ticket.c: session ticket keys (RFC 5077, and TLS 1.3's stateless
 * PSK tickets). A new random key every interval; the previous one still
 * decrypts for one more interval (and its tickets are renewed under the
 * new one); anything older is forgotten, so a ticket resumes for at most
 * two intervals and a leaked ticket key exposes at most that much. The
 * keys exist only in this process's memory: never written, never logged.
 * Nodes behind a load balancer each have their own keys, so a device
 * resumes only on the node that issued its ticket (elsewhere it makes a
 * full handshake). A resumed session skips certificate verification: the
 * per-request checks in device.c and est.c still apply to it. */
#include "tls_ticket.h"

#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"

#define TLS_TICKET_NAME_LEN	16	/* key_name in the ticket */
#define TLS_TICKET_AES_LEN	32	/* AES-256-CBC */
#define TLS_TICKET_HMAC_LEN	32	/* HMAC-SHA256 */

struct tls_ticket_key {
	unsigned char	name[TLS_TICKET_NAME_LEN];
	unsigned char	aes[TLS_TICKET_AES_LEN];
	unsigned char	hmac[TLS_TICKET_HMAC_LEN];
	int		is_set;
};

/* [0] issues and accepts, [1] (the previous one) only accepts. */
static struct tls_ticket_key	 tls_ticket_keys[2];
static struct event		*tls_ticket_timer;
static long long		 tls_ticket_interval;
static unsigned long long	 tls_ticket_generation;

static void
tls_ticket_wipe(struct tls_ticket_key *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

static int
tls_ticket_rotate(void)
{
	struct tls_ticket_key *cur = &tls_ticket_keys[0];

	tls_ticket_keys[1] = *cur;
	tls_ticket_wipe(cur);
	tls_ticket_generation++;
	if (RAND_bytes(cur->name, sizeof(cur->name)) != 1 ||
	    RAND_bytes(cur->aes, sizeof(cur->aes)) != 1 ||
	    RAND_bytes(cur->hmac, sizeof(cur->hmac)) != 1) {
		/* No ticket is better than one under a key that never ends. */
		tls_ticket_wipe(cur);
		log_openssl("tls: cannot make a session ticket key; no new "
		    "tickets until the next rotation");
		return -1;
	}
	cur->is_set = 1;
	/* Tests count these lines; the key itself is never logged. */
	log_info("tls: session ticket key %llu in use, every %lld s",
	    tls_ticket_generation, tls_ticket_interval);
	return 0;
}

static void
tls_ticket_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	(void)tls_ticket_rotate();
}

static int
tls_ticket_keys_use(const struct tls_ticket_key *k, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv,
	    enc) != 1 || EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return 0;
}

/* OpenSSL's ticket callback: 1 ticket key set up, 2 (decrypt) accepted
 * but renew it, 0 (encrypt) no ticket / (decrypt) unknown key, so a full
 * handshake, -1 error. */
static int
tls_ticket_cb(SSL *ssl, unsigned char *key_name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_ticket_key *k = &tls_ticket_keys[0];

	(void)ssl;
	if (enc) {
		if (!k->is_set)
			return 0;
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
			return -1;
		memcpy(key_name, k->name, sizeof(k->name));
		return tls_ticket_keys_use(k, iv, cctx, hctx, 1) == 0 ? 1 : -1;
	}
	for (int i = 0; i < 2; i++) {
		k = &tls_ticket_keys[i];
		if (!k->is_set ||
		    CRYPTO_memcmp(key_name, k->name, sizeof(k->name)) != 0)
			continue;
		if (tls_ticket_keys_use(k, iv, cctx, hctx, 0) == -1)
			return -1;
		return i == 0 ? 1 : 2;
	}
	return 0;
}

int
tls_ticket_start(struct event_base *base, long long interval,
    const char **errstr)
{
	struct timeval tv = { (time_t)interval, 0 };

	tls_ticket_interval = interval;
	if ((tls_ticket_timer = event_new(base, -1, EV_PERSIST,
	    tls_ticket_tick, NULL)) == NULL ||
	    event_add(tls_ticket_timer, &tv) == -1) {
		*errstr = "cannot start the session ticket timer";
		return -1;
	}
	if (tls_ticket_rotate() == -1) {
		*errstr = "cannot make a session ticket key";
		return -1;
	}
	return 0;
}

void
tls_ticket_setup(SSL_CTX *ctx)
{
	/* Tickets replace the server-side cache: no memory per session (the
	 * cache kept each one with its peer certificate, up to 20480). */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
	/* A ticket is worth offering for as long as its key may decrypt it. */
	if (tls_ticket_interval > 0)
		SSL_CTX_set_timeout(ctx, (long)(2 * tls_ticket_interval));
	/* A polling device keeps one; TLS 1.3 sends two by default. */
	SSL_CTX_set_num_tickets(ctx, 1);
}

void
tls_ticket_stop(void)
{
	if (tls_ticket_timer != NULL)
		event_free(tls_ticket_timer);
	tls_ticket_timer = NULL;
	tls_ticket_wipe(&tls_ticket_keys[0]);
	tls_ticket_wipe(&tls_ticket_keys[1]);
}

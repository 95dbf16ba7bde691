/* p11.c: PKCS#11 module, token and sessions, and the libp11 engine that
 * turns token keys into EVP_PKEYs. The PIN is read from a file only the
 * daemon may read, kept in memory for re-login and wiped on close; it is
 * never logged. The one file that uses the (deprecated) ENGINE API.
 *
 * Threads (checked in the sources of libp11 0.4.12 and SoftHSM 2.6.1):
 * libp11 initialises the module with CKF_OS_LOCKING_OK (p11_load.c), and
 * SoftHSM then enables its own mutexes (SoftHSM.cpp C_Initialize; with
 * NULL arguments it would disable them), so the module may be called from
 * several threads. The engine serialises key loading under its context
 * lock (eng_back.c ctx_load_object), and every signature takes a session
 * from the slot's pool under the slot mutex (p11_slot.c
 * pkcs11_get_session, up to 16) and returns it: one EVP_PKEY per key is
 * shared by all workers. Our own calls (key generation, destruction,
 * checks) use one session per thread, opened on first use. One trap: the
 * engine finds a key by listing the token's keys, and a key destroyed in
 * the middle of that list fails the whole search (libp11 p11_key.c
 * pkcs11_enumerate_keys); so creating, destroying and loading keys take
 * p11_keys_lock, while signatures run in parallel. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <p11-kit/pkcs11.h>

#define P11_PIN_MAX 256

struct p11 {
	ENGINE			*engine;
	void			*dl;
	CK_FUNCTION_LIST_PTR	 f;
	int			 is_initialized;
	CK_SLOT_ID		 slot;
	char			 label[33];
	char			 pin[P11_PIN_MAX];
	size_t			 pinlen;
	struct p11_stats	 stats;
};

/* This thread's session (one struct p11 per process). */
static _Thread_local CK_SESSION_HANDLE	p11_session;
static _Thread_local int		p11_has_session;
static pthread_mutex_t			p11_reopen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t			p11_keys_lock = PTHREAD_MUTEX_INITIALIZER;

/* The PIN file must not be reachable by group or others (like ssh keys). */
static int
p11_read_pin(struct p11 *p, const char *path, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		snprintf(err, errlen, "pin_file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "pin_file %s: not a regular file", path);
		goto fail;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "pin_file %s: mode %04o is accessible by "
		    "group or others; chmod 600 it", path,
		    (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	n = read(fd, p->pin, sizeof(p->pin) - 1);
	if (n <= 0) {
		snprintf(err, errlen, "pin_file %s: %s", path,
		    n == 0 ? "empty" : strerror(errno));
		goto fail;
	}
	while (n > 0 && (p->pin[n - 1] == '\n' || p->pin[n - 1] == '\r'))
		n--;
	p->pin[n] = '\0';
	p->pinlen = (size_t)n;
	close(fd);
	if (p->pinlen == 0) {
		snprintf(err, errlen, "pin_file %s: empty", path);
		return -1;
	}
	return 0;
fail:
	close(fd);
	return -1;
}

static int
p11_find_slot(struct p11 *p, char *err, size_t errlen)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_TOKEN_INFO ti;

	if (p->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) {
		snprintf(err, errlen, "C_GetSlotList failed");
		return -1;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		char label[33];
		size_t len = sizeof(ti.label);

		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(label, ti.label, len);
		while (len > 0 && label[len - 1] == ' ')
			len--;
		label[len] = '\0';
		if (strcmp(label, p->label) == 0) {
			p->slot = slots[i];
			return 0;
		}
	}
	snprintf(err, errlen, "no PKCS#11 token labelled \"%s\"", p->label);
	return -1;
}

static int
p11_login(struct p11 *p, char *err, size_t errlen)
{
	CK_RV rv;

	rv = p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
	    NULL, NULL, &p11_session);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "C_OpenSession: 0x%lx", (unsigned long)rv);
		return -1;
	}
	p11_has_session = 1;
	rv = p->f->C_Login(p11_session, CKU_USER, (CK_UTF8CHAR_PTR)p->pin,
	    (CK_ULONG)p->pinlen);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		snprintf(err, errlen, "login to token \"%s\" failed (%s)", p->label,
		    rv == CKR_PIN_INCORRECT ? "wrong PIN" : "C_Login error");
		p->f->C_CloseSession(p11_session);
		p11_has_session = 0;
		return -1;
	}
	return 0;
}

static int
p11_engine_init(struct p11 *p, const struct p11_settings *s, char *err,
    size_t errlen)
{
	const char *reason;
	ENGINE *e;

	ENGINE_load_dynamic();
	if ((e = ENGINE_by_id("dynamic")) == NULL)
		goto fail;
	if (!ENGINE_ctrl_cmd_string(e, "SO_PATH", s->engine, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "ID", "pkcs11", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LIST_ADD", "1", 0) ||
	    !ENGINE_ctrl_cmd_string(e, "LOAD", NULL, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", s->module, 0) ||
	    !ENGINE_ctrl_cmd_string(e, "PIN", p->pin, 0) ||
	    !ENGINE_init(e)) {
		ENGINE_free(e);
		goto fail;
	}
	p->engine = e;
	return 0;
fail:
	reason = ERR_peek_last_error() ?
	    ERR_reason_error_string(ERR_peek_last_error()) : NULL;
	snprintf(err, errlen, "cannot load the PKCS#11 engine %s: %s", s->engine,
	    reason ? reason : "error");
	ERR_clear_error();
	return -1;
}

struct p11 *
p11_open(const struct p11_settings *s, char *err, size_t errlen)
{
	CK_C_INITIALIZE_ARGS args;
	CK_C_GetFunctionList getfl;
	struct p11 *p;
	CK_RV rv;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (strlen(s->token_label) >= sizeof(p->label)) {
		snprintf(err, errlen, "token_label longer than 32 bytes");
		goto fail;
	}
	snprintf(p->label, sizeof(p->label), "%s", s->token_label);
	if (p11_read_pin(p, s->pin_file, err, errlen) == -1)
		goto fail;
	if (s->softhsm2_conf != NULL && s->softhsm2_conf[0] != '\0')
		setenv("SOFTHSM2_CONF", s->softhsm2_conf, 1);
	/* The engine initialises the module first; we share its global
	 * state (same dlopen handle) and must never C_Finalize it. */
	if (s->engine != NULL && p11_engine_init(p, s, err, errlen) == -1)
		goto fail;
	if ((p->dl = dlopen(s->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		snprintf(err, errlen, "cannot load PKCS#11 module %s: %s",
		    s->module, dlerror());
		goto fail;
	}
	getfl = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList");
	if (getfl == NULL || getfl(&p->f) != CKR_OK) {
		snprintf(err, errlen, "%s is not a PKCS#11 module", s->module);
		goto fail;
	}
	/* As libp11 does: the module must lock, workers call it at once. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = p->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		snprintf(err, errlen, "C_Initialize: 0x%lx", (unsigned long)rv);
		goto fail;
	}
	p->is_initialized = 1;
	if (p11_find_slot(p, err, errlen) == -1 || p11_login(p, err, errlen) == -1)
		goto fail;
	return p;
fail:
	p11_close(p);
	return NULL;
}

void
p11_close(struct p11 *p)
{
	if (p == NULL)
		return;
	/* No C_Logout: login state is per application, shared with the
	 * engine's sessions. */
	p11_thread_end(p);
	if (p->engine != NULL) {
		ENGINE_finish(p->engine);
		ENGINE_free(p->engine);
	} else if (p->is_initialized) {
		p->f->C_Finalize(NULL);
	}
	if (p->dl != NULL)
		dlclose(p->dl);
	OPENSSL_cleanse(p->pin, sizeof(p->pin));
	free(p);
}

void
p11_thread_end(struct p11 *p)
{
	if (p != NULL && p11_has_session)
		p->f->C_CloseSession(p11_session);
	p11_has_session = 0;
}

int
p11_check(struct p11 *p, char *err, size_t errlen)
{
	CK_SESSION_INFO si;
	int rc;

	if (p11_has_session && p->f->C_GetSessionInfo(p11_session, &si) == CKR_OK &&
	    (si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RO_USER_FUNCTIONS))
		return 0;
	p11_thread_end(p);
	/* p->slot is shared: one thread at a time looks the token up again. */
	pthread_mutex_lock(&p11_reopen_lock);
	rc = p11_find_slot(p, err, errlen) == -1 || p11_login(p, err, errlen) == -1 ?
	    -1 : 0;
	pthread_mutex_unlock(&p11_reopen_lock);
	return rc;
}

/* This thread's logged-in session, opened on first use. */
static int
p11_session_get(struct p11 *p, char *err, size_t errlen)
{
	if (p11_has_session)
		return 0;
	return p11_check(p, err, errlen);
}

static int
p11_find_key(struct p11 *p, const char *label, CK_OBJECT_CLASS cls,
    CK_OBJECT_HANDLE *out)
{
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_ULONG n = 0;
	CK_RV rv;

	if (p->f->C_FindObjectsInit(p11_session, tmpl, 2) != CKR_OK)
		return -1;
	rv = p->f->C_FindObjects(p11_session, out, 1, &n);
	p->f->C_FindObjectsFinal(p11_session);
	return rv == CKR_OK && n == 1 ? 0 : -1;
}

int
p11_has_key(struct p11 *p, const char *label)
{
	CK_OBJECT_HANDLE h;
	char err[128];

	return p11_session_get(p, err, sizeof(err)) == 0 &&
	    p11_find_key(p, label, CKO_PRIVATE_KEY, &h) == 0;
}

static int	p11_generate_key_locked(struct p11 *, const char *,
		    enum p11_key_type, char *, size_t);
static int	p11_destroy_key_locked(struct p11 *, const char *, char *, size_t);

int
p11_label_new(const char *prefix, char *label, size_t len)
{
	unsigned char rnd[4];
	int n;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	n = snprintf(label, len, "%s-%02x%02x%02x%02x", prefix, rnd[0], rnd[1],
	    rnd[2], rnd[3]);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int
p11_generate_key(struct p11 *p, const char *label, enum p11_key_type type,
    char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&p11_keys_lock);
	rc = p11_generate_key_locked(p, label, type, err, errlen);
	pthread_mutex_unlock(&p11_keys_lock);
	return rc;
}

int
p11_destroy_key(struct p11 *p, const char *label, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&p11_keys_lock);
	rc = p11_destroy_key_locked(p, label, err, errlen);
	pthread_mutex_unlock(&p11_keys_lock);
	return rc;
}

static int
p11_generate_key_locked(struct p11 *p, const char *label, enum p11_key_type type,
    char *err, size_t errlen)
{
	/* DER of OID 1.2.840.10045.3.1.7 (prime256v1) */
	static CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	static CK_BYTE rsa_e[] = { 0x01, 0x00, 0x01 };
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 3072;
	CK_BYTE id[16];
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
		{ CKA_EC_PARAMS, p256, sizeof(p256) },
		{ CKA_PUBLIC_EXPONENT, rsa_e, sizeof(rsa_e) },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		/* Signing keys only: no decryption, unwrapping or derivation. */
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
	};
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_ULONG npub = 5;
	CK_RV rv;

	if (p11_session_get(p, err, errlen) == -1)
		return -1;
	if (p11_has_key(p, label)) {
		snprintf(err, errlen, "a key labelled %s already exists", label);
		return -1;
	}
	if (p->f->C_GenerateRandom(p11_session, id, sizeof(id)) != CKR_OK) {
		snprintf(err, errlen, "C_GenerateRandom failed");
		return -1;
	}
	if (type == P11_KEY_RSA_3072) {
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		pub[4].type = CKA_MODULUS_BITS;
		pub[4].pValue = &bits;
		pub[4].ulValueLen = sizeof(bits);
		npub = 6;
	}
	rv = p->f->C_GenerateKeyPair(p11_session, &mech, pub, npub, priv,
	    sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "C_GenerateKeyPair(%s): 0x%lx", label,
		    (unsigned long)rv);
		return -1;
	}
	__atomic_add_fetch(&p->stats.keys_generated, 1, __ATOMIC_RELAXED);
	return 0;
}

static int
p11_destroy_key_locked(struct p11 *p, const char *label, char *err, size_t errlen)
{
	static const CK_OBJECT_CLASS classes[] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY,
	    CKO_SECRET_KEY };
	CK_OBJECT_HANDLE h;
	int n = 0;
	CK_RV rv;

	if (p11_session_get(p, err, errlen) == -1)
		return -1;
	/* Each label is unique (pki_new_key), so one object per class. */
	for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		if (p11_find_key(p, label, classes[i], &h) == -1)
			continue;
		if ((rv = p->f->C_DestroyObject(p11_session, h)) != CKR_OK) {
			snprintf(err, errlen, "C_DestroyObject(%s): 0x%lx", label,
			    (unsigned long)rv);
			return -1;
		}
		n++;
	}
	if (n > 0)
		__atomic_add_fetch(&p->stats.keys_destroyed, 1, __ATOMIC_RELAXED);
	return 0;
}

static int
p11_generate_secret_locked(struct p11 *p, const char *label, char *err,
    size_t errlen)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG len = 32;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_OBJECT_HANDLE h;
	CK_RV rv;

	if (p11_session_get(p, err, errlen) == -1)
		return -1;
	if (p11_find_key(p, label, CKO_SECRET_KEY, &h) == 0) {
		snprintf(err, errlen, "a key labelled %s already exists", label);
		return -1;
	}
	rv = p->f->C_GenerateKey(p11_session, &mech, t, sizeof(t) / sizeof(t[0]), &h);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "C_GenerateKey(%s): 0x%lx", label,
		    (unsigned long)rv);
		return -1;
	}
	p->stats.keys_generated++;
	return 0;
}

int
p11_secret_gcm(struct p11 *p, const char *label, int is_encrypt,
    const unsigned char iv[12], const unsigned char *aad, size_t aadlen,
    const unsigned char *in, size_t inlen, unsigned char *out, char *err,
    size_t errlen)
{
	CK_GCM_PARAMS gp = {
		.pIv = (CK_BYTE_PTR)iv, .ulIvLen = 12, .ulIvBits = 96,
		.pAAD = (CK_BYTE_PTR)aad, .ulAADLen = aadlen, .ulTagBits = 128,
	};
	CK_MECHANISM mech = { CKM_AES_GCM, &gp, sizeof(gp) };
	CK_OBJECT_HANDLE h;
	CK_ULONG outlen = is_encrypt ? inlen + 16 : inlen;
	CK_RV rv;

	if (!is_encrypt && inlen < 16) {
		snprintf(err, errlen, "ciphertext too short");
		return -1;
	}
	if (p11_session_get(p, err, errlen) == -1)
		return -1;
	if (p11_find_key(p, label, CKO_SECRET_KEY, &h) == -1) {
		snprintf(err, errlen, "no secret key %s on the token", label);
		return -1;
	}
	rv = is_encrypt ? p->f->C_EncryptInit(p11_session, &mech, h) :
	    p->f->C_DecryptInit(p11_session, &mech, h);
	if (rv == CKR_OK)
		rv = is_encrypt ? p->f->C_Encrypt(p11_session, (CK_BYTE_PTR)in,
		    inlen, out, &outlen) : p->f->C_Decrypt(p11_session,
		    (CK_BYTE_PTR)in, inlen, out, &outlen);
	if (rv != CKR_OK || outlen != (is_encrypt ? inlen + 16 : inlen - 16)) {
		snprintf(err, errlen, "AES-GCM %s with %s: 0x%lx", is_encrypt ?
		    "encryption" : "decryption", label, (unsigned long)rv);
		return -1;
	}
	return 0;
}

int
p11_generate_secret(struct p11 *p, const char *label, char *err, size_t errlen)
{
	int rc;

	pthread_mutex_lock(&p11_keys_lock);
	rc = p11_generate_secret_locked(p, label, err, errlen);
	pthread_mutex_unlock(&p11_keys_lock);
	return rc;
}

void
p11_get_stats(const struct p11 *p, struct p11_stats *out)
{
	out->keys_generated = __atomic_load_n(&p->stats.keys_generated,
	    __ATOMIC_RELAXED);
	out->keys_destroyed = __atomic_load_n(&p->stats.keys_destroyed,
	    __ATOMIC_RELAXED);
}

static EVP_PKEY *
p11_load(struct p11 *p, const char *label, int is_private, char *err,
    size_t errlen)
{
	char uri[256];
	EVP_PKEY *k;

	if (p->engine == NULL) {
		snprintf(err, errlen, "no PKCS#11 engine loaded");
		return NULL;
	}
	snprintf(uri, sizeof(uri), "pkcs11:token=%s;object=%s;type=%s", p->label,
	    label, is_private ? "private" : "public");
	pthread_mutex_lock(&p11_keys_lock);
	k = is_private ? ENGINE_load_private_key(p->engine, uri, NULL, NULL) :
	    ENGINE_load_public_key(p->engine, uri, NULL, NULL);
	pthread_mutex_unlock(&p11_keys_lock);
	if (k == NULL) {
		snprintf(err, errlen, "cannot load %s key %s from the token",
		    is_private ? "private" : "public", label);
		ERR_clear_error();
	}
	return k;
}

EVP_PKEY *
p11_load_private(struct p11 *p, const char *label, char *err, size_t errlen)
{
	return p11_load(p, label, 1, err, errlen);
}

EVP_PKEY *
p11_load_public(struct p11 *p, const char *label, char *err, size_t errlen)
{
	return p11_load(p, label, 0, err, errlen);
}

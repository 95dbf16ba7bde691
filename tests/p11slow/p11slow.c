/* p11slow.c: a PKCS#11 module for the test suite that stands in for a slow
 * (network) HSM. Every call is forwarded to the real module named by
 * P11SLOW_MODULE (SoftHSM's libsofthsm2.so in the tests); C_Sign,
 * C_SignFinal and C_GenerateKeyPair first wait P11SLOW_DELAY_MS
 * milliseconds, on the calling thread, as a remote HSM's round trip
 * would. Not part of quarklinkd: the daemon must not block its event loop
 * on such a module, and t_slow_token.sh checks that it does not. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <p11-kit/pkcs11.h>

#define P11SLOW_DELAY_MAX_MS	60000

static CK_FUNCTION_LIST		 p11slow_list;
static CK_FUNCTION_LIST_PTR	 p11slow_real;
static long			 p11slow_delay_ms;
static pthread_once_t		 p11slow_once = PTHREAD_ONCE_INIT;
static CK_RV			 p11slow_load_rv = CKR_GENERAL_ERROR;

static void
p11slow_delay(void)
{
	struct timespec ts = { p11slow_delay_ms / 1000,
	    (p11slow_delay_ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static CK_RV
p11slow_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len,
    CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	/* A size query (sig NULL) is local; the signature is the round trip. */
	if (sig != NULL)
		p11slow_delay();
	return p11slow_real->C_Sign(s, data, len, sig, siglen);
}

static CK_RV
p11slow_sign_final(CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	if (sig != NULL)
		p11slow_delay();
	return p11slow_real->C_SignFinal(s, sig, siglen);
}

static CK_RV
p11slow_generate_key_pair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m,
    CK_ATTRIBUTE_PTR pub, CK_ULONG npub, CK_ATTRIBUTE_PTR priv, CK_ULONG npriv,
    CK_OBJECT_HANDLE_PTR hpub, CK_OBJECT_HANDLE_PTR hpriv)
{
	p11slow_delay();
	return p11slow_real->C_GenerateKeyPair(s, m, pub, npub, priv, npriv,
	    hpub, hpriv);
}

static CK_RV p11slow_get_function_list(CK_FUNCTION_LIST_PTR_PTR);

static void
p11slow_load(void)
{
	const char *path = getenv("P11SLOW_MODULE");
	const char *ms = getenv("P11SLOW_DELAY_MS");
	CK_C_GetFunctionList getfl;
	char *end;
	void *dl;

	if (ms != NULL) {
		errno = 0;
		p11slow_delay_ms = strtol(ms, &end, 10);
		if (errno != 0 || *end != '\0' || p11slow_delay_ms < 0 ||
		    p11slow_delay_ms > P11SLOW_DELAY_MAX_MS) {
			fprintf(stderr, "p11slow: bad P11SLOW_DELAY_MS %s\n", ms);
			return;
		}
	}
	if (path == NULL) {
		fprintf(stderr, "p11slow: P11SLOW_MODULE is not set\n");
		return;
	}
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "p11slow: %s\n", dlerror());
		return;
	}
	getfl = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (getfl == NULL || getfl(&p11slow_real) != CKR_OK) {
		fprintf(stderr, "p11slow: %s is not a PKCS#11 module\n", path);
		return;
	}
	/* Everything forwarded as it is, but the three slow calls. */
	p11slow_list = *p11slow_real;
	p11slow_list.C_GetFunctionList = p11slow_get_function_list;
	p11slow_list.C_Sign = p11slow_sign;
	p11slow_list.C_SignFinal = p11slow_sign_final;
	p11slow_list.C_GenerateKeyPair = p11slow_generate_key_pair;
	p11slow_load_rv = CKR_OK;
}

static CK_RV
p11slow_get_function_list(CK_FUNCTION_LIST_PTR_PTR out)
{
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_once(&p11slow_once, p11slow_load);
	if (p11slow_load_rv != CKR_OK)
		return p11slow_load_rv;
	*out = &p11slow_list;
	return CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR);

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	return p11slow_get_function_list(out);
}

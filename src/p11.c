/* p11.c: PKCS#11 module, token and session. The PIN is read from a file
 * that only the daemon may read, kept in memory for re-login and wiped on
 * close; it is never logged. */
#include "p11.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <p11-kit/pkcs11.h>

#define P11_PIN_MAX 256

struct p11 {
	void			*dl;
	CK_FUNCTION_LIST_PTR	 f;
	int			 is_initialized;
	CK_SLOT_ID		 slot;
	CK_SESSION_HANDLE	 session;
	int			 has_session;
	char			 label[33];
	char			 pin[P11_PIN_MAX];
	size_t			 pinlen;
};

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
	    NULL, NULL, &p->session);
	if (rv != CKR_OK) {
		snprintf(err, errlen, "C_OpenSession: 0x%lx", (unsigned long)rv);
		return -1;
	}
	p->has_session = 1;
	rv = p->f->C_Login(p->session, CKU_USER, (CK_UTF8CHAR_PTR)p->pin,
	    (CK_ULONG)p->pinlen);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		snprintf(err, errlen, "login to token \"%s\" failed (%s)", p->label,
		    rv == CKR_PIN_INCORRECT ? "wrong PIN" : "C_Login error");
		p->f->C_CloseSession(p->session);
		p->has_session = 0;
		return -1;
	}
	return 0;
}

struct p11 *
p11_open(const struct p11_settings *s, char *err, size_t errlen)
{
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
	rv = p->f->C_Initialize(NULL);
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
	if (p->has_session) {
		p->f->C_Logout(p->session);
		p->f->C_CloseSession(p->session);
	}
	if (p->is_initialized)
		p->f->C_Finalize(NULL);
	if (p->dl != NULL)
		dlclose(p->dl);
	OPENSSL_cleanse(p->pin, sizeof(p->pin));
	free(p);
}

int
p11_check(struct p11 *p, char *err, size_t errlen)
{
	CK_SESSION_INFO si;

	if (p->has_session && p->f->C_GetSessionInfo(p->session, &si) == CKR_OK &&
	    (si.state == CKS_RW_USER_FUNCTIONS || si.state == CKS_RO_USER_FUNCTIONS))
		return 0;
	if (p->has_session) {
		p->f->C_CloseSession(p->session);
		p->has_session = 0;
	}
	if (p11_find_slot(p, err, errlen) == -1 || p11_login(p, err, errlen) == -1)
		return -1;
	return 0;
}

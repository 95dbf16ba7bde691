/* p11.h: the only module that talks PKCS#11. Loads the module, opens the
 * token by label, logs in with the PIN from a private file, and keeps the
 * session usable. Key generation and signing arrive with the CA. */
#ifndef QL_P11_H
#define QL_P11_H

#include <stddef.h>

struct p11;

struct p11_settings {
	const char	*module;
	const char	*token_label;
	const char	*pin_file;
	const char	*softhsm2_conf;
};

struct p11	*p11_open(const struct p11_settings *, char *err, size_t errlen);
void		 p11_close(struct p11 *);
/* 0 when the session is logged in; otherwise tries to reopen it once and
 * fills err with why it is not usable. Cheap: one C_GetSessionInfo. */
int		 p11_check(struct p11 *, char *err, size_t errlen);

#endif

/* names.h: the alphabets of what callers name and what we derive: project
 * names, user names, device IDs. sql/002_ca.sql's CHECKs and
 * doc/openapi.json's patterns say the same; change them together. */
#ifndef QL_NAMES_H
#define QL_NAMES_H

#include <stddef.h>

/* Project names: [a-z0-9][a-z0-9-]{0,62}. They need no quoting in a URL
 * segment or an SQL array literal. */
#define NAMES_PROJECT_CHARS	"abcdefghijklmnopqrstuvwxyz0123456789-"
#define NAMES_PROJECT_MAX	63
/* User names: 1-64 of A-Z a-z 0-9 . _ @ - */
#define NAMES_USER_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"abcdefghijklmnopqrstuvwxyz0123456789._@-"
#define NAMES_USER_MAX		64
/* Device IDs: the first 20 bytes of the SHA-256 of the identity key's
 * SubjectPublicKeyInfo in lower-case base32 (RFC 4648 alphabet), no
 * padding: exactly 32 characters. */
#define NAMES_BASE32_CHARS	"abcdefghijklmnopqrstuvwxyz234567"
#define NAMES_DEVICE_ID_CHARS	NAMES_BASE32_CHARS
#define NAMES_DEVICE_ID_LEN	32

/* Hardware names in an image's manifest: 1-64 of these (UPLOADS_HW_LEN). */
#define NAMES_HARDWARE_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
	"abcdefghijklmnopqrstuvwxyz0123456789._:-"

/* Could the n bytes at s be one? (No NUL needed.) */
int	names_is_project(const char *s, size_t n);
int	names_is_user(const char *s, size_t n);
int	names_is_device_id(const char *s, size_t n);

#endif

/* names.c: whether a string can be a project name, a user name or a
 * device ID (see names.h). Pure functions, no I/O. */
#include "names.h"

#include <string.h>

/* All n bytes of s in set (strspn stops at a NUL, so a NUL is refused). */
static int
names_all_in(const char *s, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n && s[i] != '\0' && strchr(set, s[i]) != NULL; i++)
		;
	return i == n;
}

int
names_is_project(const char *s, size_t n)
{
	return n >= 1 && n <= NAMES_PROJECT_MAX && s[0] != '-' &&
	    names_all_in(s, n, NAMES_PROJECT_CHARS);
}

int
names_is_user(const char *s, size_t n)
{
	return n >= 1 && n <= NAMES_USER_MAX && names_all_in(s, n, NAMES_USER_CHARS);
}

int
names_is_device_id(const char *s, size_t n)
{
	return n == NAMES_DEVICE_ID_LEN && names_all_in(s, n, NAMES_DEVICE_ID_CHARS);
}

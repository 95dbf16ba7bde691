/* revoked.c: a set of (issuing CA, serial) pairs in a tsearch tree. Pure
 * data: pki.c fills it from the database and keeps it in step through
 * NOTIFY; nothing here does I/O. */
#include "revoked.h"

#include <search.h>
#include <stdlib.h>
#include <string.h>

struct revoked {
	void	*tree;		/* of struct revoked_key */
};

int
revoked_key_cmp(const void *a, const void *b)
{
	const struct revoked_key *x = a, *y = b;

	if (x->ca_id != y->ca_id)
		return x->ca_id < y->ca_id ? -1 : 1;
	return strcmp(x->serial, y->serial);
}

int
revoked_key_set(struct revoked_key *k, long long ca_id, const char *serial)
{
	size_t n = strlen(serial);

	if (n != CA_SERIAL_HEX - 1 || strspn(serial, "0123456789abcdef") != n)
		return -1;
	memset(k, 0, sizeof(*k));
	k->ca_id = ca_id;
	memcpy(k->serial, serial, n + 1);
	return 0;
}

struct revoked *
revoked_new(void)
{
	return calloc(1, sizeof(struct revoked));
}

void
revoked_clear(struct revoked *r)
{
	tdestroy(r->tree, free);
	r->tree = NULL;
}

void
revoked_free(struct revoked *r)
{
	if (r == NULL)
		return;
	revoked_clear(r);
	free(r);
}

int
revoked_set(struct revoked *r, const struct revoked_key *k, int is_revoked)
{
	void *node = tfind(k, &r->tree, revoked_key_cmp);
	struct revoked_key *copy;

	if (is_revoked && node == NULL) {
		if ((copy = malloc(sizeof(*copy))) == NULL)
			return -1;
		*copy = *k;
		if (tsearch(copy, &r->tree, revoked_key_cmp) == NULL) {
			free(copy);
			return -1;
		}
	} else if (!is_revoked && node != NULL) {
		copy = *(struct revoked_key **)node;
		tdelete(k, &r->tree, revoked_key_cmp);
		free(copy);
	}
	return 0;
}

int
revoked_has(struct revoked *r, const struct revoked_key *k)
{
	return tfind(k, &r->tree, revoked_key_cmp) != NULL;
}

/* revoked.c: a set of (issuing CA, serial) pairs in a tsearch tree and
 * the parser of the notice that changes it. Pure data: pki_revoked.c
 * fills it from the database and keeps it in step through NOTIFY; nothing
 * here does I/O. */
#include "revoked.h"

#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

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

int
revoked_payload_parse(const char *payload, struct revoked_key *k,
    int *is_revoked)
{
	char buf[64], *serial, *flag;
	const char *errstr;
	long long ca_id;

	if (payload == NULL ||
	    snprintf(buf, sizeof(buf), "%s", payload) >= (int)sizeof(buf) ||
	    (serial = strchr(buf, ':')) == NULL ||
	    (flag = strchr(serial + 1, ':')) == NULL)
		return -1;
	*serial++ = '\0';
	*flag++ = '\0';
	ca_id = util_strtonum(buf, 1, LLONG_MAX, &errstr);
	if (errstr != NULL || revoked_key_set(k, ca_id, serial) == -1 ||
	    (strcmp(flag, "0") != 0 && strcmp(flag, "1") != 0))
		return -1;
	*is_revoked = flag[0] == '1';
	return 0;
}

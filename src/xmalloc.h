/* xmalloc.h: the out-of-memory policy. Allocation failure is not a
 * condition a request can recover from (Linux overcommits; a daemon that
 * cannot get a few bytes is about to be killed anyway), so these never
 * return NULL: they log one line and exit, as tmux's do. Bounds on what a
 * client may make us allocate are checked before, not here. */
#ifndef QL_XMALLOC_H
#define QL_XMALLOC_H

#include <stddef.h>

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

#endif

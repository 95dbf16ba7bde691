/* agent_util.h: files written atomically, bounded reads, encodings. */
#ifndef QL_AGENT_UTIL_H
#define QL_AGENT_UTIL_H

#include <stddef.h>
#include <time.h>

/* Write len bytes to path through path.tmp: write, fsync, rename, fsync
 * of the directory. A crash leaves the old file or the new one. */
int	 agent_write_atomic(const char *path, const void *, size_t len, int mode)
	    __attribute__((warn_unused_result));
/* Read at most max bytes (more is an error); *out is NUL-terminated. */
int	 agent_read_file(const char *path, size_t max, char **out, size_t *len)
	    __attribute__((warn_unused_result));
/* fsync the directory that holds path (after a rename or unlink). */
void	 agent_sync_dir(const char *path);
char	*agent_path(const char *dir, const char *name);
/* Base64 without line breaks (encode), or with any whitespace (decode). */
char	*agent_b64_encode(const unsigned char *, size_t);
unsigned char *agent_b64_decode(const char *, size_t, size_t *outlen);
void	 agent_hex(const unsigned char *, size_t, char *out);
/* "2026-12-02T01:02:03Z" <-> time_t (UTC, seconds). */
int	 agent_time_parse(const char *, time_t *);
void	 agent_time_format(time_t, char *out, size_t len);

#endif

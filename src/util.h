/* util.h: small bounded helpers shared by every module (number parsing,
 * paths, bounded file reads, hex). No I/O beyond what the name says. */
#ifndef QL_UTIL_H
#define QL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define QL_WUR __attribute__((warn_unused_result))

/* strtonum(3) from OpenBSD: whole string, base 10, within [min, max]. */
long long	util_strtonum(const char *, long long min, long long max,
		    const char **errstr) QL_WUR;
/* dir/path, or path when it is absolute; caller frees; never NULL. */
char		*util_path_join(const char *dir, const char *path);
/* Read a whole file of at most max bytes into a NUL-terminated buffer. */
int		util_read_file(const char *path, size_t max, char **out,
		    size_t *outlen, const char **errstr) QL_WUR;
struct sockaddr_storage;
/* "1.2.3.4:80" or "[::1]:80"; port 0 asks the kernel for a free one. */
int		util_parse_listen(const char *, struct sockaddr_storage *,
		    int *len) QL_WUR;
/* "host:port" that clients should use for a socket bound to host (as
 * inet_ntop writes it, IPv6 in brackets): a wildcard address has no
 * address of its own, so it becomes the first of the comma- or
 * space-separated names (server.tls_names, the names the automatic
 * certificate carries); with no name, 127.0.0.1 or [::1]. */
void		util_public_addr(const char *host, unsigned port,
		    const char *names, char *out, size_t len);
/* Base64 as RFC 7030 bodies carry it: stock clients send LF, CRLF or no
 * line breaks, so whitespace is dropped; anything else must be strict
 * base64. malloc'd result, NULL when malformed. */
unsigned char	*util_base64_decode(const char *, size_t, size_t *outlen);
void		util_hex(const unsigned char *, size_t, char *out);
char		*util_trim(char *);
/* Drop trailing '/' from a base URL, so that paths are appended to it. */
void		util_url_base(char *);
/* Strict UTF-8 (RFC 3629): no overlongs, surrogates or > U+10FFFF. */
int		util_utf8_valid(const unsigned char *, size_t);
/* Is a Content-Type header value (NULL: none) the media type "type/sub",
 * compared case-insensitively, with or without parameters (RFC 9110
 * 8.3.1: optional white space, then ";")? */
int		util_media_type_is(const char *value, const char *type);
/* SHA-256 of len bytes: the digest of secrets, keys and chains. */
void		util_sha256(const void *, size_t len, unsigned char out[32]);
/* Replace every byte of an invalid sequence with '?'. */
void		util_utf8_scrub(char *);

#endif

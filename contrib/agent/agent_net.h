/* agent_net.h: HTTPS with libcurl, treating the server as hostile: the
 * pinned root only, no redirects, bounded answers. */
#ifndef QL_AGENT_NET_H
#define QL_AGENT_NET_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

struct agent_conf;

struct agent_net_req {
	const char	*method;	/* "GET" or "POST" */
	const char	*url;
	const char	*content_type;	/* of body */
	const void	*body;
	size_t		 body_len;
	const char	*accept;
	const char	*basic_user;	/* HTTP Basic, first enrollment */
	const char	*basic_pass;
	int		 client_auth;	/* present the device certificate */
	const char	*if_none_match;
	size_t		 max_body;	/* in-memory answers */
	/* Download into out_fd from resume_from (Range, If-Range). */
	int		 out_fd;
	long long	 resume_from;
	const char	*if_range;
	long long	 max_download;
	void		(*progress)(long long done, long long total, void *);
	void		*progress_arg;
};

struct agent_net_resp {
	long		 status;
	char		*body;		/* NUL-terminated; error bodies of downloads too */
	size_t		 len;
	char		 etag[130];
	char		 content_type[128];
	long		 retry_after;	/* -1 if absent */
	long long	 range_start;	/* from Content-Range, -1 if absent */
	long long	 total_size;	/* from Content-Range or Content-Length, -1 */
	long long	 written;	/* bytes written to out_fd */
	char		 err[512];	/* transport failure, one line */
};

int	 agent_net_init(const struct agent_conf *) __attribute__((warn_unused_result));
/* The identity presented with client_auth; the caller keeps ownership. */
void	 agent_net_set_identity(X509 *, STACK_OF(X509) *chain, EVP_PKEY *);
/* AGENT_OK when the server answered (any status), else the exit code of
 * the transport failure with resp->err set. */
int	 agent_net_do(const struct agent_net_req *, struct agent_net_resp *);
void	 agent_net_resp_free(struct agent_net_resp *);
/* The one-line detail of a problem+json answer ("no detail" otherwise). */
void	 agent_net_detail(const struct agent_net_resp *, char *out, size_t len);
void	 agent_net_cleanup(void);

#endif

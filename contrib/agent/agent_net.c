/* agent_net.c: every request of the agent goes through agent_net_do. The
 * server must chain to the pinned root (CURLOPT_CAINFO, no system store),
 * redirects are not followed (a 3xx is an answer like any other, which
 * callers refuse), answers held in memory are bounded, and the device key
 * reaches TLS as an EVP_PKEY through CURLOPT_SSL_CTX_FUNCTION, because
 * libcurl 7.88 cannot name a provider (TPM) key itself. */
#include "agent_net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "config.h"

#include "agent.h"
#include "agent_conf.h"
#include "agent_json.h"

static const struct agent_conf *agent_net_conf;
static X509 *agent_net_cert;
static STACK_OF(X509) *agent_net_chain;
static EVP_PKEY *agent_net_key;

struct agent_net_xfer {
	const struct agent_net_req	*req;
	struct agent_net_resp		*resp;
	CURL				*curl;
	size_t				 cap;
	int				 is_oversized;
	int				 is_io_error;
	int				 is_bad_range;
	int				 checked;
	int				 to_file;
};

int
agent_net_init(const struct agent_conf *c)
{
	agent_net_conf = c;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		agent_err("cannot initialise libcurl");
		return -1;
	}
	return 0;
}

void
agent_net_cleanup(void)
{
	curl_global_cleanup();
}

void
agent_net_set_identity(X509 *cert, STACK_OF(X509) *chain, EVP_PKEY *key)
{
	agent_net_cert = cert;
	agent_net_chain = chain;
	agent_net_key = key;
}

static CURLcode
agent_net_ssl_ctx(CURL *curl, void *sslctx, void *arg)
{
	SSL_CTX *ctx = sslctx;
	int i;

	if (agent_net_cert == NULL || agent_net_key == NULL)
		return CURLE_SSL_CERTPROBLEM;
	if (SSL_CTX_use_certificate(ctx, agent_net_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, agent_net_key) != 1) {
		agent_err("cannot use the device certificate and key for TLS: %s",
		    agent_ssl_err());
		return CURLE_SSL_CERTPROBLEM;
	}
	for (i = 0; agent_net_chain != NULL && i < sk_X509_num(agent_net_chain); i++)
		if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(agent_net_chain, i)) != 1)
			return CURLE_SSL_CERTPROBLEM;
	return CURLE_OK;
}

static size_t
agent_net_mem(struct agent_net_xfer *x, const char *data, size_t n, size_t max)
{
	struct agent_net_resp *r = x->resp;
	char *p;

	if (n > max || r->len > max - n) {
		x->is_oversized = 1;
		return 0;
	}
	if (r->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		if ((p = realloc(r->body, cap)) == NULL)
			return 0;
		r->body = p;
		x->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

/* The first bytes of a download decide where they go: a 206 must start
 * where the file ends, a 200 replaces the file. */
static int
agent_net_check_download(struct agent_net_xfer *x)
{
	const struct agent_net_req *q = x->req;
	struct agent_net_resp *r = x->resp;

	x->checked = 1;
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (r->status == 206) {
		if (r->range_start != q->resume_from) {
			x->is_bad_range = 1;
			return -1;
		}
		x->to_file = 1;
	} else if (r->status == 200) {
		if (ftruncate(q->out_fd, 0) == -1 || lseek(q->out_fd, 0, SEEK_SET) == -1) {
			x->is_io_error = 1;
			return -1;
		}
		x->to_file = 1;
	}
	return 0;
}

static size_t
agent_net_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct agent_net_xfer *x = arg;
	const struct agent_net_req *q = x->req;
	size_t n = size * nmemb, off = 0;
	ssize_t w;

	if (q->out_fd < 0)
		return agent_net_mem(x, data, n, q->max_body);
	if (!x->checked && agent_net_check_download(x) == -1)
		return 0;
	if (!x->to_file)
		return agent_net_mem(x, data, n, 64 * 1024);
	if (q->resume_from * (x->resp->status == 206) + x->resp->written + (long long)n >
	    q->max_download) {
		x->is_oversized = 1;
		return 0;
	}
	while (off < n) {
		if ((w = write(q->out_fd, data + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			x->is_io_error = 1;
			return 0;
		}
		off += (size_t)w;
	}
	x->resp->written += (long long)n;
	return n;
}

static void
agent_net_header_value(const char *line, size_t n, char *out, size_t outlen)
{
	const char *v = memchr(line, ':', n);
	size_t len;

	if (v == NULL)
		return;
	v++;
	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	len = (size_t)(line + n - v);
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	if (len >= outlen)
		len = 0;	/* too long to be honest: treat as absent */
	memcpy(out, v, len);
	out[len] = '\0';
}

static size_t
agent_net_header(char *line, size_t size, size_t nmemb, void *arg)
{
	struct agent_net_xfer *x = arg;
	struct agent_net_resp *r = x->resp;
	size_t n = size * nmemb;
	char v[128];
	long long a, b, t;

	if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
		r->etag[0] = r->content_type[0] = '\0';
		r->retry_after = r->range_start = r->total_size = -1;
		return n;
	}
	v[0] = '\0';
	if (n > 5 && strncasecmp(line, "ETag:", 5) == 0)
		agent_net_header_value(line, n, r->etag, sizeof(r->etag));
	else if (n > 13 && strncasecmp(line, "Content-Type:", 13) == 0)
		agent_net_header_value(line, n, r->content_type, sizeof(r->content_type));
	else if (n > 12 && strncasecmp(line, "Retry-After:", 12) == 0) {
		agent_net_header_value(line, n, v, sizeof(v));
		if (v[0] >= '0' && v[0] <= '9' && strlen(v) < 9)
			r->retry_after = strtol(v, NULL, 10);
	} else if (n > 14 && strncasecmp(line, "Content-Range:", 14) == 0) {
		agent_net_header_value(line, n, v, sizeof(v));
		if (sscanf(v, "bytes %lld-%lld/%lld", &a, &b, &t) == 3 && a >= 0 &&
		    b >= a && t > b) {
			r->range_start = a;
			r->total_size = t;
		}
	}
	return n;
}

static int
agent_net_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct agent_net_xfer *x = arg;
	const struct agent_net_req *q = x->req;

	if (q->progress != NULL && x->to_file && dltotal > 0)
		q->progress(q->resume_from * (x->resp->status == 206) + dlnow,
		    q->resume_from * (x->resp->status == 206) + dltotal, q->progress_arg);
	return 0;
}

/* Map a transport failure to the agent's exit codes. */
static int
agent_net_failure(CURLcode rc, const struct agent_net_xfer *x, const char *errbuf)
{
	struct agent_net_resp *r = x->resp;
	const char *what = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	if (x->is_oversized) {
		snprintf(r->err, sizeof(r->err), "the server's answer is larger than allowed");
		return AGENT_EPROTO;
	}
	if (x->is_bad_range) {
		snprintf(r->err, sizeof(r->err), "the server resumed at the wrong offset");
		return AGENT_EPROTO;
	}
	if (x->is_io_error) {
		snprintf(r->err, sizeof(r->err), "cannot write the download: %s", strerror(errno));
		return AGENT_EFAIL;
	}
	switch (rc) {
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(r->err, sizeof(r->err), "root_ca %s cannot be loaded: %s",
		    agent_net_conf->root_ca, what);
		return AGENT_EUSAGE;
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(r->err, sizeof(r->err), "server not trusted (it does not chain to"
		    " the pinned root %s): %s", agent_net_conf->root_ca, what);
		return AGENT_EUNTRUSTED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		snprintf(r->err, sizeof(r->err), "server unreachable: %s", what);
		return AGENT_ENONET;
	default:
		break;
	}
	/* A TLS alert after our certificate went out: the server refused the
	 * device (revoked, unknown, expired). */
	if (x->req->client_auth && strstr(what, "alert") != NULL) {
		snprintf(r->err, sizeof(r->err), "the server refused the device certificate: %s",
		    what);
		return AGENT_EREFUSED;
	}
	snprintf(r->err, sizeof(r->err), "request failed: %s", what);
	return rc == CURLE_SSL_CONNECT_ERROR ? AGENT_EUNTRUSTED : AGENT_ENONET;
}

int
agent_net_do(const struct agent_net_req *q, struct agent_net_resp *r)
{
	struct agent_net_xfer x;
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE], h[256];
	CURLcode rc;
	CURL *curl;
	int ret;

	memset(r, 0, sizeof(*r));
	r->retry_after = r->range_start = r->total_size = -1;
	memset(&x, 0, sizeof(x));
	x.req = q;
	x.resp = r;
	errbuf[0] = '\0';
	if ((curl = curl_easy_init()) == NULL) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return AGENT_EFAIL;
	}
	x.curl = curl;
	curl_easy_setopt(curl, CURLOPT_URL, q->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	/* The pinned root and nothing else: no CA directory, no system bundle. */
	curl_easy_setopt(curl, CURLOPT_CAINFO, agent_net_conf->root_ca);
	curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
	if (q->out_fd >= 0) {
		/* A download may take long; a stall may not. */
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, agent_net_conf->timeout);
	} else
		curl_easy_setopt(curl, CURLOPT_TIMEOUT, agent_net_conf->timeout);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, agent_net_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, agent_net_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "ql-agent/" PACKAGE_VERSION);
	if (q->progress != NULL) {
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, agent_net_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	}
	if (q->client_auth) {
		curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, agent_net_ssl_ctx);
		/* One connection per identity: no session reuse across keys. */
		curl_easy_setopt(curl, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	}
	if (q->basic_user != NULL) {
		curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(curl, CURLOPT_USERNAME, q->basic_user);
		curl_easy_setopt(curl, CURLOPT_PASSWORD, q->basic_pass ? q->basic_pass : "");
	}
	if (q->method != NULL && strcmp(q->method, "POST") == 0) {
		curl_easy_setopt(curl, CURLOPT_POST, 1L);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, q->body ? q->body : "");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
		snprintf(h, sizeof(h), "Content-Type: %s", q->content_type);
		hdrs = curl_slist_append(hdrs, h);
		hdrs = curl_slist_append(hdrs, "Expect:");
	}
	if (q->accept != NULL) {
		snprintf(h, sizeof(h), "Accept: %s", q->accept);
		hdrs = curl_slist_append(hdrs, h);
	}
	if (q->if_none_match != NULL && q->if_none_match[0] != '\0') {
		snprintf(h, sizeof(h), "If-None-Match: %s", q->if_none_match);
		hdrs = curl_slist_append(hdrs, h);
	}
	if (q->out_fd >= 0 && q->resume_from > 0) {
		/* By hand, not CURLOPT_RESUME_FROM: a 200 (the image changed)
		 * replaces the partial file instead of failing. */
		snprintf(h, sizeof(h), "Range: bytes=%lld-", q->resume_from);
		hdrs = curl_slist_append(hdrs, h);
		if (q->if_range != NULL && q->if_range[0] != '\0') {
			snprintf(h, sizeof(h), "If-Range: %s", q->if_range);
			hdrs = curl_slist_append(hdrs, h);
		}
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
		ret = AGENT_OK;
	} else {
		ret = agent_net_failure(rc, &x, errbuf);
		agent_net_resp_free(r);	/* a failed answer is never read */
	}
	agent_debug("%s %s -> %ld%s%s", q->method ? q->method : "GET", q->url, r->status,
	    ret ? ": " : "", ret ? r->err : "");
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return ret;
}

void
agent_net_resp_free(struct agent_net_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void
agent_net_detail(const struct agent_net_resp *r, char *out, size_t len)
{
	char err[64];
	const char *d = NULL;
	yajl_val doc = NULL;

	if (r->body != NULL && strncmp(r->content_type, "application/problem+json", 24) == 0)
		doc = agent_json_parse(r->body, r->len, err, sizeof(err));
	if (doc != NULL)
		d = agent_json_str(doc, "detail");
	snprintf(out, len, "%s", d ? d : "no detail");
	yajl_tree_free(doc);
}

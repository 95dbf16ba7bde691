/* agent_run.c: the field daemon. Each cycle renews the certificate when
 * due, polls the device API and, when a deployment names an image, takes
 * it through: manifest checks -> download (resumed with Range) -> bytes
 * checked (decrypted segment by segment when encrypted) -> detached
 * signature -> install hook -> the new version recorded. The recorded
 * version changes only after the hook succeeded, in one atomic write: a
 * SIGKILL anywhere leaves the previous version, and the next cycle resumes
 * the download or redoes the install. */
#include "agent_run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <yajl/yajl_gen.h>

#include "agent.h"
#include "agent_attest.h"
#include "agent_conf.h"
#include "agent_est.h"
#include "agent_json.h"
#include "agent_net.h"
#include "agent_state.h"
#include "agent_stream.h"
#include "agent_util.h"
#include "agent_verify.h"

#define AGENT_RUN_DOC_MAX	(256 * 1024)
#define AGENT_RUN_URL_MAX	512

static volatile sig_atomic_t agent_run_stop;

struct agent_update {
	long long	 deployment;
	long long	 image_id;
	char		 version[AGENT_VERSION_MAX];
	long long	 size;
	char		 sha256[65];
	int		 is_encrypted;
	long long	 encrypted_size;
	unsigned char	*manifest;
	size_t		 manifest_len;
	unsigned char	*key;
	size_t		 key_len;
	char		 image_url[AGENT_RUN_URL_MAX];
	char		 signature_url[AGENT_RUN_URL_MAX];
};

struct agent_run {
	const struct agent_conf	*conf;
	struct agent_ident	 id;
	struct agent_state	 state;
	char			 etag[130];	/* of the last document handled for good */
	char			 org[128];	/* O= of the project's issuing CA */
	long long		 deployment;	/* being reported on */
	int			 last_progress;
};

static void
agent_run_signal(int sig)
{
	agent_run_stop = 1;
}

static void
agent_run_update_free(struct agent_update *u)
{
	free(u->manifest);
	if (u->key != NULL)
		OPENSSL_cleanse(u->key, u->key_len);
	free(u->key);
	memset(u, 0, sizeof(*u));
}

/* ---------------------------------------------------------------- reports */

static void
agent_run_gen_str(yajl_gen g, const char *k, const char *v)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
	yajl_gen_string(g, (const unsigned char *)v, strlen(v));
}

/* POST /device/v1/status. A report that does not arrive is logged, not
 * fatal: the next poll tells the server again. */
static void
agent_run_report(struct agent_run *r, const char *state, int progress, const char *detail)
{
	struct agent_net_req q = { .method = "POST", .out_fd = -1, .max_body = 16 * 1024,
	    .content_type = "application/json", .client_auth = 1 };
	struct agent_net_resp resp;
	const unsigned char *buf;
	char url[AGENT_RUN_URL_MAX + 64];
	size_t len;
	yajl_gen g;

	if ((g = yajl_gen_alloc(NULL)) == NULL)
		return;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"deployment", 10);
	yajl_gen_integer(g, r->deployment);
	agent_run_gen_str(g, "state", state);
	yajl_gen_string(g, (const unsigned char *)"progress", 8);
	yajl_gen_integer(g, progress);
	if (detail != NULL) {
		char d[500];	/* the server takes at most 512 */
		snprintf(d, sizeof(d), "%s", detail);
		agent_run_gen_str(g, "detail", d);
	}
	/* The version running now; none before the first install. */
	if (r->state.installed_version[0] != '\0')
		agent_run_gen_str(g, "version", r->state.installed_version);
	yajl_gen_map_close(g);
	if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return;
	}
	snprintf(url, sizeof(url), "%s/device/v1/status", r->conf->device_url);
	q.url = url;
	q.body = buf;
	q.body_len = len;
	if (agent_net_do(&q, &resp) != AGENT_OK)
		agent_info("status report not delivered: %s", resp.err);
	else if (resp.status != 204 && resp.status != 200)
		agent_info("status report refused: HTTP %ld", resp.status);
	agent_net_resp_free(&resp);
	yajl_gen_free(g);
	agent_info("deployment %lld: %s%s%s", r->deployment, state, detail ? ": " : "",
	    detail ? detail : "");
}

static void
agent_run_progress(long long done, long long total, void *arg)
{
	struct agent_run *r = arg;
	int pct = total > 0 ? (int)(done * 100 / total) : 0;

	/* Every 25%: enough to draw a bar, little to send. */
	if (pct / 25 > r->last_progress / 25 && pct < 100) {
		r->last_progress = pct;
		agent_run_report(r, "downloading", pct, NULL);
	}
}

/* ---------------------------------------------------------------- the document */

/* A server path for the device API: no scheme, no host, no climbing. */
static int
agent_run_path(const char *v, char *out, size_t len)
{
	if (v == NULL || strncmp(v, "/device/v1/", 11) != 0 || strstr(v, "..") != NULL ||
	    strstr(v, "//") != NULL || strlen(v) >= len ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.")
	    != strlen(v))
		return -1;
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int
agent_run_parse_doc(const struct agent_net_resp *resp, struct agent_update *u, char *err,
    size_t errlen)
{
	yajl_val doc, img;
	const char *v, *what = NULL;

	memset(u, 0, sizeof(*u));
	u->encrypted_size = -1;
	if ((doc = agent_json_parse(resp->body, resp->len, err, errlen)) == NULL)
		return -1;
	if ((u->deployment = agent_json_uint(doc, "deployment")) < 1)
		what = "deployment";
	else if ((img = agent_json_get(doc, "image", yajl_t_object)) == NULL)
		what = "image";
	else if ((u->image_id = agent_json_uint(img, "id")) < 1)
		what = "image.id";
	else if ((v = agent_json_str(img, "version")) == NULL || strlen(v) >= sizeof(u->version))
		what = "image.version";
	else if (memcpy(u->version, v, strlen(v) + 1) == NULL ||
	    (u->size = agent_json_uint(img, "size")) < 0)
		what = "image.size";
	else if ((v = agent_json_str(img, "sha256")) == NULL || strlen(v) != 64)
		what = "image.sha256";
	else if (memcpy(u->sha256, v, 65) == NULL ||
	    (u->is_encrypted = agent_json_bool(img, "encrypted")) == -1)
		what = "image.encrypted";
	else if (u->is_encrypted && (u->encrypted_size = agent_json_uint(img, "encrypted_size")) < 1)
		what = "image.encrypted_size";
	else if ((v = agent_json_str(doc, "manifest")) == NULL ||
	    (u->manifest = agent_b64_decode(v, strlen(v), &u->manifest_len)) == NULL ||
	    u->manifest_len == 0)
		what = "manifest";
	else if (agent_run_path(agent_json_str(doc, "image_url"), u->image_url,
	    sizeof(u->image_url)) == -1)
		what = "image_url";
	else if (agent_run_path(agent_json_str(doc, "signature_url"), u->signature_url,
	    sizeof(u->signature_url)) == -1)
		what = "signature_url";
	else if (u->is_encrypted && ((v = agent_json_str(doc, "key")) == NULL ||
	    (u->key = agent_b64_decode(v, strlen(v), &u->key_len)) == NULL))
		what = "key";
	yajl_tree_free(doc);
	if (what != NULL) {
		snprintf(err, errlen, "update document: missing or invalid %s", what);
		agent_run_update_free(u);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- files */

static char *
agent_run_file(const struct agent_run *r, const char *kind, long long image)
{
	char name[64];

	snprintf(name, sizeof(name), "%s-%lld", kind, image);
	return agent_path(r->conf->state_dir, name);
}

/* Downloads of other images are stale: a new deployment replaced them. */
static void
agent_run_clean(const struct agent_run *r, long long keep)
{
	char keep_dl[64], keep_img[64], keep_tag[64];
	struct dirent *de;
	char *p;
	DIR *d;

	snprintf(keep_dl, sizeof(keep_dl), "dl-%lld", keep);
	snprintf(keep_img, sizeof(keep_img), "img-%lld", keep);
	snprintf(keep_tag, sizeof(keep_tag), "etag-%lld", keep);
	if ((d = opendir(r->conf->state_dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "dl-", 3) != 0 && strncmp(de->d_name, "img-", 4) != 0 &&
		    strncmp(de->d_name, "etag-", 5) != 0)
			continue;
		if (strcmp(de->d_name, keep_dl) == 0 || strcmp(de->d_name, keep_img) == 0 ||
		    strcmp(de->d_name, keep_tag) == 0)
			continue;
		if ((p = agent_path(r->conf->state_dir, de->d_name)) != NULL) {
			(void)unlink(p);
			free(p);
		}
	}
	closedir(d);
}

/* ---------------------------------------------------------------- download */

/* The bytes of the image as served, into dl-N, resumed from what an
 * earlier attempt left (If-Range: a changed image starts over). */
static int
agent_run_download(struct agent_run *r, const struct agent_update *u, long long want,
    char *err, size_t errlen)
{
	struct agent_net_req q = { .method = "GET", .client_auth = 1, .max_body = 0 };
	struct agent_net_resp resp;
	char url[2 * AGENT_RUN_URL_MAX], *path = NULL, *tagpath = NULL, *tag = NULL;
	struct stat st;
	int fd = -1, rc = AGENT_EFAIL;

	if ((path = agent_run_file(r, "dl", u->image_id)) == NULL ||
	    (tagpath = agent_run_file(r, "etag", u->image_id)) == NULL)
		goto out;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1 || fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size == want) {
		rc = AGENT_OK;		/* complete from an earlier attempt */
		goto out;
	}
	if (st.st_size > want || agent_read_file(tagpath, 128, &tag, NULL) == -1) {
		/* Without the ETag it came with, a partial file cannot be resumed safely. */
		if (ftruncate(fd, 0) == -1)
			goto out;
		st.st_size = 0;
	}
	if (lseek(fd, st.st_size, SEEK_SET) == -1)
		goto out;
	snprintf(url, sizeof(url), "%s%s", r->conf->device_url, u->image_url);
	q.url = url;
	q.out_fd = fd;
	q.resume_from = st.st_size;
	q.if_range = tag;
	q.max_download = want;
	q.progress = agent_run_progress;
	q.progress_arg = r;
	if (st.st_size > 0)
		agent_info("resuming the download of image %lld at byte %lld", u->image_id,
		    (long long)st.st_size);
	rc = agent_net_do(&q, &resp);
	if (rc == AGENT_OK && resp.status != 200 && resp.status != 206) {
		snprintf(err, errlen, "GET %.200s: HTTP %ld", u->image_url, resp.status);
		rc = resp.status == 401 || resp.status == 403 ? AGENT_EREFUSED : AGENT_EPROTO;
	} else if (rc != AGENT_OK)
		snprintf(err, errlen, "download: %.400s", resp.err);
	/* Keep the validator of what is on disk for the next resume. */
	if (resp.status == 200 || resp.status == 206) {
		if (resp.etag[0] != '\0') {
			if (agent_write_atomic(tagpath, resp.etag, strlen(resp.etag), 0600) == -1)
				rc = AGENT_EFAIL;
		} else
			(void)unlink(tagpath);
	}
	if (fsync(fd) == -1 && rc == AGENT_OK)
		rc = AGENT_EFAIL;
	if (rc == AGENT_OK && (fstat(fd, &st) == -1 || st.st_size != want)) {
		snprintf(err, errlen, "download ended at %lld of %lld bytes",
		    (long long)st.st_size, want);
		rc = AGENT_ENONET;
	}
	agent_net_resp_free(&resp);
out:
	if (fd != -1)
		close(fd);
	free(tag);
	free(tagpath);
	free(path);
	return rc;
}

static int
agent_run_signature(struct agent_run *r, const struct agent_update *u, unsigned char **der,
    size_t *len, char *err, size_t errlen)
{
	struct agent_net_req q = { .method = "GET", .client_auth = 1, .out_fd = -1,
	    .max_body = AGENT_MANIFEST_MAX };
	struct agent_net_resp resp;
	char url[2 * AGENT_RUN_URL_MAX];
	int rc;

	snprintf(url, sizeof(url), "%s%s", r->conf->device_url, u->signature_url);
	q.url = url;
	if ((rc = agent_net_do(&q, &resp)) != AGENT_OK) {
		snprintf(err, errlen, "signature: %.400s", resp.err);
		return rc;
	}
	if (resp.status != 200 || resp.len == 0) {
		snprintf(err, errlen, "GET %.200s: HTTP %ld", u->signature_url, resp.status);
		agent_net_resp_free(&resp);
		return AGENT_EPROTO;
	}
	*der = (unsigned char *)resp.body;
	*len = resp.len;
	return AGENT_OK;
}

/* ---------------------------------------------------------------- verify */

/* The file to install: dl-N itself, or its decryption in img-N. Size and
 * SHA-256 must be the manifest's. */
static int
agent_run_plaintext(struct agent_run *r, const struct agent_update *u,
    const struct agent_manifest *m, char **install, char *err, size_t errlen)
{
	struct agent_stream s;
	unsigned char md[32];
	EVP_MD_CTX *ctx = NULL;
	char *dl, *img = NULL, *tmp = NULL;
	long long size = -1;
	int in = -1, out = -1, rc = AGENT_EFAIL;

	*install = NULL;
	if ((dl = agent_run_file(r, "dl", u->image_id)) == NULL)
		return AGENT_EFAIL;
	if (!m->is_encrypted) {
		if (agent_hash_file(dl, md, &size) == -1) {
			snprintf(err, errlen, "%s: %s", dl, strerror(errno));
			goto out;
		}
		*install = dl;
		dl = NULL;
		goto check;
	}
	memset(&s, 0, sizeof(s));
	if ((img = agent_run_file(r, "img", u->image_id)) == NULL ||
	    asprintf(&tmp, "%s.tmp", img) == -1 || (ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		tmp = NULL;
		goto out;
	}
	if (agent_stream_unwrap(u->key, u->key_len, r->id.key, r->id.cert, s.key, err,
	    errlen) == -1) {
		rc = AGENT_EVERIFY;
		goto out;
	}
	if ((in = open(dl, O_RDONLY | O_CLOEXEC)) == -1 ||
	    (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", in == -1 ? dl : tmp, strerror(errno));
		goto out;
	}
	if (agent_stream_header(in, m->segment_size, &s, err, errlen) == -1 ||
	    agent_stream_decrypt(in, m->encrypted_size, &s, out, ctx, &size, err, errlen) == -1) {
		rc = AGENT_EVERIFY;
		goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, NULL) != 1 || fsync(out) == -1 || close(out) == -1) {
		out = -1;
		goto out;
	}
	out = -1;
	if (rename(tmp, img) == -1)
		goto out;
	*install = img;
	img = NULL;
check:
	if (size != m->size) {
		snprintf(err, errlen, "image is %lld bytes, the manifest says %lld", size, m->size);
		rc = AGENT_EVERIFY;
	} else if (memcmp(md, m->sha256, 32) != 0) {
		snprintf(err, errlen, "image SHA-256 does not match the manifest");
		rc = AGENT_EVERIFY;
	} else
		rc = AGENT_OK;
	if (rc != AGENT_OK) {
		/* Bad bytes are not worth resuming: start over next time. */
		(void)unlink(*install);
		if (m->is_encrypted)
			(void)unlink(dl ? dl : "");
		free(*install);
		*install = NULL;
	}
out:
	OPENSSL_cleanse(s.key, sizeof(s.key));
	if (in != -1)
		close(in);
	if (out != -1)
		close(out);
	if (rc != AGENT_OK && tmp != NULL)
		(void)unlink(tmp);
	if (rc == AGENT_EVERIFY && m->is_encrypted && dl != NULL)
		(void)unlink(dl);
	EVP_MD_CTX_free(ctx);
	free(tmp);
	free(img);
	free(dl);
	return rc;
}

/* ---------------------------------------------------------------- install */

static int
agent_run_hook(struct agent_run *r, const struct agent_update *u,
    const struct agent_manifest *m, const char *path, char *err, size_t errlen)
{
	char n[32], sz[32], dep[32];
	pid_t pid;
	int status;

	if (r->conf->install_hook[0] == '\0') {
		snprintf(err, errlen, "no install_hook configured");
		return AGENT_EINSTALL;
	}
	snprintf(n, sizeof(n), "%lld", m->image_id);
	snprintf(sz, sizeof(sz), "%lld", m->size);
	snprintf(dep, sizeof(dep), "%lld", u->deployment);
	if ((pid = fork()) == -1) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return AGENT_EFAIL;
	}
	if (pid == 0) {
		setenv("QL_IMAGE", path, 1);
		setenv("QL_IMAGE_ID", n, 1);
		setenv("QL_IMAGE_NAME", m->name, 1);
		setenv("QL_VERSION", m->version, 1);
		setenv("QL_SIZE", sz, 1);
		setenv("QL_SHA256", m->sha256_hex, 1);
		setenv("QL_PROJECT", m->project, 1);
		setenv("QL_DEPLOYMENT", dep, 1);
		setenv("QL_DEVICE_ID", r->id.device_id, 1);
		setenv("QL_PREVIOUS_VERSION", r->state.installed_version, 1);
		execl(r->conf->install_hook, r->conf->install_hook, path, m->version,
		    (char *)NULL);
		fprintf(stderr, "ql-agent: error: install_hook %s: %s\n", r->conf->install_hook,
		    strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return AGENT_EFAIL;
		}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return AGENT_OK;
	if (WIFEXITED(status))
		snprintf(err, errlen, "install hook exited with status %d", WEXITSTATUS(status));
	else
		snprintf(err, errlen, "install hook killed by signal %d", WTERMSIG(status));
	return AGENT_EINSTALL;
}

/* ---------------------------------------------------------------- one update */

static int
agent_run_update(struct agent_run *r, struct agent_update *u)
{
	struct agent_manifest m;
	X509_STORE *store = NULL;
	unsigned char *sig = NULL;
	char err[512] = "", *install = NULL;
	size_t siglen = 0;
	long long want;
	int rc;

	r->deployment = u->deployment;
	r->last_progress = 0;
	if ((store = agent_root_store(r->conf)) == NULL)
		return AGENT_EUSAGE;
	/* The manifest first: nothing is downloaded for a refused update. */
	rc = AGENT_EVERIFY;
	if (agent_verify_manifest(u->manifest, u->manifest_len, store, r->id.chain, r->org,
	    &m, err, sizeof(err)) == -1)
		goto fail;
	if (m.image_id != u->image_id || strcmp(m.version, u->version) != 0 ||
	    m.size != u->size || strcmp(m.sha256_hex, u->sha256) != 0 ||
	    m.is_encrypted != u->is_encrypted ||
	    (m.is_encrypted && m.encrypted_size != u->encrypted_size)) {
		snprintf(err, sizeof(err), "the update document does not match its signed manifest");
		goto fail;
	}
	if (m.image_id == r->state.installed_image &&
	    strcmp(m.version, r->state.installed_version) == 0) {
		/* Installed before the report got out (or the report was lost). */
		agent_run_report(r, "installed", 100, NULL);
		rc = AGENT_OK;
		goto out;
	}
	if (agent_verify_policy(&m, r->conf->project, r->conf->hardware,
	    r->state.installed_version, time(NULL), r->conf->max_image_size, err,
	    sizeof(err)) == -1)
		goto fail;
	agent_info("deployment %lld: image %lld version %s accepted, downloading",
	    u->deployment, m.image_id, m.version);
	agent_run_clean(r, m.image_id);
	agent_run_report(r, "downloading", 0, NULL);
	want = m.is_encrypted ? m.encrypted_size : m.size;
	if ((rc = agent_run_download(r, u, want, err, sizeof(err))) != AGENT_OK)
		goto fail;
	if ((rc = agent_run_signature(r, u, &sig, &siglen, err, sizeof(err))) != AGENT_OK)
		goto fail;
	if ((rc = agent_run_plaintext(r, u, &m, &install, err, sizeof(err))) != AGENT_OK)
		goto fail;
	if (agent_verify_detached(sig, siglen, install, store, r->id.chain, r->org, err,
	    sizeof(err)) == -1) {
		rc = AGENT_EVERIFY;
		(void)unlink(install);
		goto fail;
	}
	agent_run_report(r, "installing", 100, NULL);
	if ((rc = agent_run_hook(r, u, &m, install, err, sizeof(err))) != AGENT_OK)
		goto fail;
	/* The one write that makes the new version current. */
	snprintf(r->state.installed_version, sizeof(r->state.installed_version), "%s", m.version);
	r->state.installed_image = m.image_id;
	snprintf(r->state.last_result, sizeof(r->state.last_result), "installed %s", m.version);
	if (agent_state_save(r->conf, &r->state) == -1) {
		snprintf(err, sizeof(err), "cannot record the installed version");
		rc = AGENT_EFAIL;
		goto fail;
	}
	agent_run_report(r, "installed", 100, NULL);
	agent_run_clean(r, -1);
	rc = AGENT_OK;
	goto out;
fail:
	/* A lost connection is retried; everything else is a verdict. */
	if (rc == AGENT_ENONET) {
		agent_err("deployment %lld: %s (will resume)", u->deployment, err);
	} else {
		agent_err("deployment %lld: %s", u->deployment, err);
		agent_run_report(r, "failed", 0, err);
	}
	snprintf(r->state.last_result, sizeof(r->state.last_result), "deployment %lld failed: %s",
	    u->deployment, err);
out:
	free(install);
	free(sig);
	X509_STORE_free(store);
	return rc;
}

/* ---------------------------------------------------------------- one cycle */

static int
agent_run_poll(struct agent_run *r)
{
	struct agent_net_req q = { .method = "GET", .client_auth = 1, .out_fd = -1,
	    .max_body = AGENT_RUN_DOC_MAX, .accept = "application/json" };
	struct agent_net_resp resp;
	struct agent_update u;
	char url[AGENT_RUN_URL_MAX + 64], err[256];
	int rc;

	snprintf(url, sizeof(url), "%s/device/v1/update", r->conf->device_url);
	q.url = url;
	q.if_none_match = r->etag;
	r->state.last_poll = time(NULL);
	if ((rc = agent_net_do(&q, &resp)) != AGENT_OK) {
		agent_err("poll: %s", resp.err);
		snprintf(r->state.last_result, sizeof(r->state.last_result), "poll failed: %.200s",
		    resp.err);
		return rc;
	}
	switch (resp.status) {
	case 204:
	case 304:
		snprintf(r->state.last_result, sizeof(r->state.last_result), "%s",
		    resp.status == 204 ? "no update" : "no change");
		agent_net_resp_free(&resp);
		return AGENT_OK;
	case 200:
		break;
	case 401:
	case 403:
		agent_net_detail(&resp, err, sizeof(err));
		/* A failed attestation lasts until an admin accepts the new
		 * values; the loop goes on polling (and quoting) meanwhile. */
		if (strstr(err, "attestation") != NULL)
			agent_err("poll refused: %s (the agent keeps polling)", err);
		else
			agent_err("poll: the server refused the device (HTTP %ld): %s",
			    resp.status, err);
		snprintf(r->state.last_result, sizeof(r->state.last_result),
		    "poll refused: HTTP %ld: %.200s", resp.status, err);
		agent_net_resp_free(&resp);
		return AGENT_EREFUSED;
	default:
		agent_err("poll: HTTP %ld", resp.status);
		snprintf(r->state.last_result, sizeof(r->state.last_result), "poll: HTTP %ld",
		    resp.status);
		agent_net_resp_free(&resp);
		return AGENT_EPROTO;
	}
	if (agent_run_parse_doc(&resp, &u, err, sizeof(err)) == -1) {
		agent_err("poll: %s", err);
		snprintf(r->state.last_result, sizeof(r->state.last_result), "poll: %.200s", err);
		agent_net_resp_free(&resp);
		return AGENT_EPROTO;
	}
	rc = agent_run_update(r, &u);
	/* A verdict on this document stands until it changes; a transient
	 * failure polls it again. */
	if (rc == AGENT_OK || rc == AGENT_EVERIFY || rc == AGENT_EINSTALL)
		snprintf(r->etag, sizeof(r->etag), "%s", resp.etag);
	if (rc == AGENT_OK && strncmp(r->state.last_result, "installed", 9) != 0)
		snprintf(r->state.last_result, sizeof(r->state.last_result), "up to date");
	agent_run_update_free(&u);
	agent_net_resp_free(&resp);
	return rc;
}

static int
agent_run_cycle(struct agent_run *r)
{
	int rc;

	if (agent_est_renewal_due(r->conf, &r->id)) {
		if ((rc = agent_est_reenroll(r->conf, &r->id)) != AGENT_OK) {
			snprintf(r->state.last_result, sizeof(r->state.last_result),
			    "renewal failed");
			if (rc == AGENT_EREFUSED)
				return rc;
			/* An unrenewed certificate still works until it expires. */
		} else {
			r->state.renewed_at = time(NULL);
			agent_info("renewed the certificate of device %s", r->id.device_id);
		}
	}
	/* The quote first: its verdict decides what this poll may get. */
	(void)agent_attest_quote(r->conf, &r->state);
	rc = agent_run_poll(r);
	if (agent_state_save(r->conf, &r->state) == -1 && rc == AGENT_OK)
		rc = AGENT_EFAIL;
	return rc;
}

static void
agent_run_sleep(long seconds)
{
	struct timespec ts = { seconds, 0 };

	while (!agent_run_stop && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* seconds scaled by a random factor in [0.5, 1.0): devices that lost the
 * server together do not come back together. */
static long
agent_run_jitter(long seconds)
{
	unsigned int x = 0;

	(void)RAND_bytes((unsigned char *)&x, sizeof(x));
	return seconds / 2 + (long)((unsigned long long)x * (unsigned long)(seconds - seconds / 2 + 1) >> 32);
}

int
agent_run(const struct agent_conf *c, int is_once)
{
	struct agent_run r;
	struct sigaction sa;
	long backoff = 1, delay;
	int rc;

	memset(&r, 0, sizeof(r));
	r.conf = c;
	if ((rc = agent_ident_load(c, &r.id)) != AGENT_OK) {
		if (rc == AGENT_ENOTENROLLED)
			agent_err("not enrolled: run ql-agent enroll first");
		return rc;
	}
	if (agent_state_load(c, &r.state) == -1) {
		agent_ident_free(&r.id);
		return AGENT_EFAIL;
	}
	/* The project's code-signing certificate carries the same O= as its
	 * issuing CA (both made when the project was created). */
	if (sk_X509_num(r.id.chain) < 1 ||
	    X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(r.id.chain, 0)),
	    NID_organizationName, r.org, sizeof(r.org)) <= 0) {
		agent_err("chain.pem names no project CA; enroll again");
		agent_ident_free(&r.id);
		return AGENT_EFAIL;
	}
	agent_net_set_identity(r.id.cert, r.id.chain, r.id.key);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = agent_run_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		rc = agent_run_cycle(&r);
		if (is_once || agent_run_stop)
			break;
		if (rc == AGENT_ENONET || rc == AGENT_EPROTO) {
			delay = agent_run_jitter(backoff < c->retry_max ? backoff : c->retry_max);
			backoff = backoff * 2 > c->retry_max ? c->retry_max : backoff * 2;
			agent_info("retrying in %ld s", delay > 0 ? delay : 1);
		} else {
			backoff = 1;
			delay = agent_run_jitter(c->poll_interval + c->poll_interval / 5);
		}
		agent_run_sleep(delay > 0 ? delay : 1);
		if (agent_run_stop)
			break;
	}
	agent_ident_free(&r.id);
	return is_once ? rc : AGENT_OK;
}

/*
 * bench/attest-load.c: load generator for TPM attestation followed by EST
 * enrollment (BRIEF issue 15 contract), with the TPM's answers made in
 * software: every device's EK (RSA 2048, certificate from the bench's local
 * manufacturer CA), AK and identity key (P-256) and its CSR are made before
 * the timed phase; each attestation is then, over one new TLS connection,
 *   POST /device/v1/attest/P/challenge -> software ActivateCredential
 *   -> software TPM2_Certify signature -> POST /device/v1/attest/P/proof
 *   -> POST /.well-known/est/P/simpleenroll
 * With -t TOKEN it makes plain token enrollments instead (the same client,
 * the same connection per device), the figure to compare with.
 * THREADS threads keep one device each in flight with blocking sockets.
 * Never retries; never exceeds -n or -d.
 *
 *   attest-load --make-ca DIR     a manufacturer CA: DIR/ca.pem, DIR/ca.key
 *   attest-load -p PORT -P PROJECT --cafile ROOT.pem (--mfr DIR | -t TOKEN)
 *       [-h HOST] [-n N] [-c THREADS] [-d MAX_SECONDS] [-W]
 *
 * Output (stdout): "ready" when the devices are made (with -W it then waits
 * for a line on stdin), "done" when the timed phase ends, then one line
 *   result ok=N failed=N elapsed_s=S rate=R p50_ms= p99_ms= max_ms= cpu_s=
 *          soft_tpm_ms= threads=
 * and "failure kind=K count=N" per kind.  cpu_s: this process over the
 * timed phase; soft_tpm_ms: of it, the mean per device spent on the TPM's
 * part (ActivateCredential, Certify).  Exit status 1 if anything failed.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <yajl/yajl_tree.h>

#include "loadgen.h"
#include "attest_soft.h"

#define AL_MAX_TOTAL	20000
#define AL_MAX_THREADS	256
#define AL_MAX_RESPONSE	(256 * 1024)

enum al_fail {
	AL_FAIL_CONNECT, AL_FAIL_TLS, AL_FAIL_IO, AL_FAIL_HTTP, AL_FAIL_JSON,
	AL_FAIL_ACTIVATE, AL_FAIL_CHALLENGE, AL_FAIL_PROOF, AL_FAIL_ENROLL, AL_FAIL_MAX
};
static const char *al_fail_names[AL_FAIL_MAX] = {
	"connect", "tls", "io", "bad_http", "bad_json", "activate", "challenge_status",
	"proof_status", "enroll_status",
};

struct al_dev {
	EVP_PKEY	*ek, *ak, *id;
	unsigned char	 ak_name[34], id_pub[1024];
	size_t		 id_pub_len;
	char		*challenge_json;	/* the whole challenge body */
	char		*csr_b64;
	char		*key_public_b64;
	double		 lat_ms;
	int		 is_ok;
};

static struct {
	const char	*host, *port, *project, *cafile, *mfr, *token;
	long		 total;
	int		 threads, wait_stdin;
	double		 max_seconds;
} opt = { "127.0.0.1", NULL, NULL, NULL, NULL, NULL, 200, 8, 0, 120.0 };

static struct {
	struct al_dev	*devs;
	SSL_CTX		*ctx;
	struct sockaddr_in addr;
	EVP_PKEY	*ca_key;
	X509		*ca;
	atomic_long	 next;
	atomic_long	 fails[AL_FAIL_MAX];
	atomic_long	 soft_ns;
	double		 deadline;
	char		 status_note[AL_FAIL_MAX][64];
	pthread_mutex_t	 lock;
} g;

static char *
al_b64(const unsigned char *in, size_t len)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);

	if (out == NULL)
		loadgen_fatalx("out of memory");
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* Standard base64 with padding -> bytes; -1 if malformed or too long. */
static int
al_unb64(const char *in, unsigned char *out, size_t max, size_t *len)
{
	size_t n = strlen(in), pad = 0;
	int r;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max)
		return -1;
	if (in[n - 1] == '=')
		pad++;
	if (in[n - 2] == '=')
		pad++;
	if ((r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n)) < 0)
		return -1;
	*len = (size_t)r - pad;
	return 0;
}

static char *
al_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
al_sprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		loadgen_fatalx("out of memory");
	va_end(ap);
	return s;
}

/* ---------------------------------------------------------------- CA */

static void
al_make_ca(const char *dir)
{
	char path[4096];
	EVP_PKEY *k;
	FILE *f;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		loadgen_fatalx("keygen");
	if ((g.ca = attest_soft_cert(k, "bench TPM manufacturer", NULL, k, 1, NULL)) == NULL)
		loadgen_fatalx("cannot make the CA certificate");
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if ((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, g.ca) || fclose(f) != 0)
		loadgen_fatalx("cannot write %s", path);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if ((f = fopen(path, "w")) == NULL ||
	    !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) || fclose(f) != 0)
		loadgen_fatalx("cannot write %s", path);
	EVP_PKEY_free(k);
	X509_free(g.ca);
}

static void
al_load_ca(const char *dir)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	if ((f = fopen(path, "r")) == NULL || (g.ca = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		loadgen_fatalx("cannot read %s", path);
	fclose(f);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if ((f = fopen(path, "r")) == NULL ||
	    (g.ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		loadgen_fatalx("cannot read %s", path);
	fclose(f);
}

/* ---------------------------------------------------------------- devices */

static char *
al_pub_b64(EVP_PKEY *k, enum attest_role role, unsigned char *out, size_t *len)
{
	TPMT_PUBLIC p;

	if (attest_soft_tpmt(k, role, &p) != 0 || (*len = attest_soft_public(&p, out, 1024)) == 0)
		loadgen_fatalx("cannot make a TPM2B_PUBLIC");
	return al_b64(out, *len);
}

static void
al_make_dev(long i)
{
	struct al_dev *d = &g.devs[i];
	unsigned char ek_pub[1024], ak_pub[1024], *der = NULL;
	size_t ek_len, ak_len;
	char cn[64], *ek_b64, *ak_b64, *cert_b64;
	X509_REQ *req;
	X509 *cert;
	int n;

	snprintf(cn, sizeof(cn), "attest-bench-%ld-%08x", i, (unsigned)random());
	d->id = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (d->id == NULL || (req = X509_REQ_new()) == NULL)
		loadgen_fatalx("keygen");
	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_REQ_set_pubkey(req, d->id);
	if (X509_REQ_sign(req, d->id, EVP_sha256()) <= 0 || (n = i2d_X509_REQ(req, &der)) <= 0)
		loadgen_fatalx("CSR");
	d->csr_b64 = al_b64(der, (size_t)n);
	OPENSSL_free(der);
	der = NULL;
	X509_REQ_free(req);
	if (opt.token != NULL)
		return;
	d->ek = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	d->ak = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (d->ek == NULL || d->ak == NULL)
		loadgen_fatalx("keygen");
	ek_b64 = al_pub_b64(d->ek, ATTEST_EK, ek_pub, &ek_len);
	ak_b64 = al_pub_b64(d->ak, ATTEST_AK, ak_pub, &ak_len);
	d->key_public_b64 = al_pub_b64(d->id, ATTEST_IDENTITY, d->id_pub, &d->id_pub_len);
	attest_soft_name(ak_pub, ak_len, d->ak_name);
	pthread_mutex_lock(&g.lock);	/* g.ca's signing key, one user at a time */
	cert = attest_soft_cert(d->ek, cn, g.ca, g.ca_key, 2 + i, NULL);
	pthread_mutex_unlock(&g.lock);
	if (cert == NULL || (n = i2d_X509(cert, &der)) <= 0)
		loadgen_fatalx("EK certificate");
	cert_b64 = al_b64(der, (size_t)n);
	OPENSSL_free(der);
	X509_free(cert);
	d->challenge_json = al_sprintf("{\"ek_cert\":\"%s\",\"ek_public\":\"%s\",\"ak_public\":\"%s\"}",
	    cert_b64, ek_b64, ak_b64);
	free(cert_b64);
	free(ek_b64);
	free(ak_b64);
}

static void *
al_make_thread(void *arg)
{
	long i;

	(void)arg;
	while ((i = atomic_fetch_add(&g.next, 1)) < opt.total)
		al_make_dev(i);
	return NULL;
}

/* ---------------------------------------------------------------- HTTP over TLS */

struct al_conn {
	int		 fd;
	SSL		*ssl;
	unsigned char	 buf[AL_MAX_RESPONSE];
	size_t		 len;
};

static int
al_connect(struct al_conn *c, enum al_fail *why)
{
	struct timeval tv = { 30, 0 };
	int one = 1;

	c->len = 0;
	c->ssl = NULL;
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return *why = AL_FAIL_CONNECT, -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) == -1)
		return *why = AL_FAIL_CONNECT, -1;
	if ((c->ssl = SSL_new(g.ctx)) == NULL || !SSL_set_fd(c->ssl, c->fd) ||
	    !SSL_set_tlsext_host_name(c->ssl, opt.host) || SSL_connect(c->ssl) != 1)
		return *why = AL_FAIL_TLS, -1;
	return 0;
}

static void
al_close(struct al_conn *c)
{
	if (c->ssl != NULL) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->ssl = NULL;
	ERR_clear_error();
}

/* One request, one response on the connection; the body NUL-terminated. */
static int
al_request(struct al_conn *c, const char *path, const char *type, const char *auth,
    const char *body, int *status, char **rbody, enum al_fail *why)
{
	char *req;
	unsigned char *b;
	size_t blen, consumed;
	int n, len, is_close, r;

	req = al_sprintf("POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: %s\r\n%s%s%s"
	    "Content-Length: %zu\r\n\r\n%s", path, opt.host, opt.port, type,
	    auth != NULL ? "Authorization: Basic " : "", auth != NULL ? auth : "",
	    auth != NULL ? "\r\n" : "", strlen(body), body);
	len = (int)strlen(req);
	n = SSL_write(c->ssl, req, len);
	free(req);
	if (n != len)
		return *why = AL_FAIL_IO, -1;
	c->len = 0;
	for (;;) {
		if (c->len >= sizeof(c->buf) - 1)
			return *why = AL_FAIL_HTTP, -1;
		n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - 1 - c->len));
		if (n > 0)
			c->len += (size_t)n;
		r = loadgen_parse_response(c->buf, c->len, n <= 0, status, &b, &blen,
		    &consumed, &is_close);
		if (r == 1)
			break;
		if (r == -1 || n <= 0)
			return *why = n <= 0 ? AL_FAIL_IO : AL_FAIL_HTTP, -1;
	}
	b[blen] = '\0';	/* room kept by the read bound */
	*rbody = (char *)b;
	return 0;
}

static const char *
al_json_str(yajl_val v, const char *key)
{
	const char *path[] = { key, NULL };
	yajl_val s = yajl_tree_get(v, path, yajl_t_string);

	return s != NULL ? YAJL_GET_STRING(s) : NULL;
}

static void
al_status_fail(enum al_fail kind, int status)
{
	atomic_fetch_add(&g.fails[kind], 1);
	pthread_mutex_lock(&g.lock);
	if (g.status_note[kind][0] == '\0')
		snprintf(g.status_note[kind], sizeof(g.status_note[kind]), "%d", status);
	pthread_mutex_unlock(&g.lock);
}

static long
al_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* challenge -> ActivateCredential -> Certify -> proof */
static int
al_attest(struct al_dev *d, struct al_conn *c, enum al_fail *why)
{
	unsigned char blob[512], enc[512], nonce[64], secret[64], a[2048], sig[512];
	size_t blob_len, enc_len, nonce_len, secret_len, a_len = 0, sig_len = 0;
	char path[512], err[128], *body, *secret_b64, *a_b64, *sig_b64, *proof;
	const char *session, *s_blob, *s_enc, *s_nonce;
	TPMS_ATTEST info;
	yajl_val v;
	long t0;
	int status, rc;

	snprintf(path, sizeof(path), "/device/v1/attest/%s/challenge", opt.project);
	if (al_request(c, path, "application/json", NULL, d->challenge_json, &status, &body,
	    why) == -1)
		return -1;
	if (status != 201) {
		al_status_fail(AL_FAIL_CHALLENGE, status);
		return *why = AL_FAIL_MAX, -1;
	}
	if ((v = yajl_tree_parse(body, err, sizeof(err))) == NULL)
		return *why = AL_FAIL_JSON, -1;
	session = al_json_str(v, "session");
	s_blob = al_json_str(v, "credential_blob");
	s_enc = al_json_str(v, "encrypted_secret");
	s_nonce = al_json_str(v, "nonce");
	if (session == NULL || s_blob == NULL || s_enc == NULL || s_nonce == NULL ||
	    strlen(session) > 64 ||
	    al_unb64(s_blob, blob, sizeof(blob), &blob_len) == -1 ||
	    al_unb64(s_enc, enc, sizeof(enc), &enc_len) == -1 ||
	    al_unb64(s_nonce, nonce, sizeof(nonce), &nonce_len) == -1) {
		yajl_tree_free(v);
		return *why = AL_FAIL_JSON, -1;
	}
	/* The TPM's part: ActivateCredential, then Certify of the identity key. */
	t0 = al_ns();
	rc = attest_soft_activate(d->ek, d->ak_name, sizeof(d->ak_name), blob, blob_len, enc,
	    enc_len, secret, &secret_len);
	if (rc == 0) {
		unsigned char name[34];

		attest_soft_name(d->id_pub, d->id_pub_len, name);
		attest_soft_certify_info(&info, nonce, nonce_len, name, sizeof(name));
		a_len = attest_soft_attest(&info, a, sizeof(a));
		sig_len = attest_soft_sign(d->ak, a + 2, a_len - 2, sig, sizeof(sig));
		rc = a_len > 0 && sig_len > 0 ? 0 : -1;
	}
	atomic_fetch_add(&g.soft_ns, al_ns() - t0);
	if (rc == -1) {
		yajl_tree_free(v);
		return *why = AL_FAIL_ACTIVATE, -1;
	}
	secret_b64 = al_b64(secret, secret_len);
	a_b64 = al_b64(a, a_len);
	sig_b64 = al_b64(sig, sig_len);
	proof = al_sprintf("{\"session\":\"%s\",\"secret\":\"%s\",\"key_public\":\"%s\","
	    "\"certify_info\":\"%s\",\"certify_signature\":\"%s\"}", session, secret_b64,
	    d->key_public_b64, a_b64, sig_b64);
	yajl_tree_free(v);
	free(secret_b64);
	free(a_b64);
	free(sig_b64);
	snprintf(path, sizeof(path), "/device/v1/attest/%s/proof", opt.project);
	rc = al_request(c, path, "application/json", NULL, proof, &status, &body, why);
	free(proof);
	if (rc == -1)
		return -1;
	if (status != 200) {
		al_status_fail(AL_FAIL_PROOF, status);
		return *why = AL_FAIL_MAX, -1;
	}
	return 0;
}

static void
al_device(struct al_dev *d, const char *auth)
{
	struct al_conn *c;
	enum al_fail why = AL_FAIL_MAX;
	char path[512], *body;
	double t0 = loadgen_now();
	int status;

	if ((c = malloc(sizeof(*c))) == NULL)
		loadgen_fatalx("out of memory");
	c->fd = -1;
	if (al_connect(c, &why) == -1 || (opt.token == NULL && al_attest(d, c, &why) == -1))
		goto fail;
	snprintf(path, sizeof(path), "/.well-known/est/%s/simpleenroll", opt.project);
	if (al_request(c, path, "application/pkcs10", auth, d->csr_b64, &status, &body,
	    &why) == -1)
		goto fail;
	if (status != 200 || strlen(body) < 100) {
		al_status_fail(AL_FAIL_ENROLL, status);
		goto out;
	}
	d->lat_ms = (loadgen_now() - t0) * 1000;
	d->is_ok = 1;
	goto out;
fail:
	if (why != AL_FAIL_MAX)
		atomic_fetch_add(&g.fails[why], 1);
out:
	al_close(c);
	free(c);
}

static void *
al_run_thread(void *arg)
{
	const char *auth = arg;
	long i;

	while (loadgen_now() < g.deadline && (i = atomic_fetch_add(&g.next, 1)) < opt.total)
		al_device(&g.devs[i], auth);
	return NULL;
}

static int
al_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
al_threads(void *(*fn)(void *), void *arg)
{
	pthread_t t[AL_MAX_THREADS];
	int i;

	for (i = 0; i < opt.threads; i++)
		if (pthread_create(&t[i], NULL, fn, arg) != 0)
			loadgen_fatalx("pthread_create");
	for (i = 0; i < opt.threads; i++)
		pthread_join(t[i], NULL);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cafile", required_argument, NULL, 'C' },
		{ "mfr", required_argument, NULL, 'M' },
		{ "make-ca", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	double t0, t1, c0, c1, *lat;
	char line[16], *auth = NULL;
	long ok = 0, failed = 0, i, n;
	int ch, k;

	loadgen_progname = "attest-load";
	while ((ch = getopt_long(argc, argv, "h:p:P:n:c:d:t:W", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': opt.host = optarg; break;
		case 'p': opt.port = optarg; break;
		case 'P': opt.project = optarg; break;
		case 'n': opt.total = loadgen_parse_long(optarg, "-n", 1, AL_MAX_TOTAL); break;
		case 'c': opt.threads = (int)loadgen_parse_long(optarg, "-c", 1, AL_MAX_THREADS); break;
		case 'd': opt.max_seconds = (double)loadgen_parse_long(optarg, "-d", 1, 3600); break;
		case 't': opt.token = optarg; break;
		case 'W': opt.wait_stdin = 1; break;
		case 'C': opt.cafile = optarg; break;
		case 'M': opt.mfr = optarg; break;
		case 'K': al_make_ca(optarg); return 0;
		default: loadgen_fatalx("usage: see bench/attest-load.c");
		}
	}
	if (opt.port == NULL || opt.project == NULL || opt.cafile == NULL ||
	    (opt.mfr == NULL) == (opt.token == NULL))
		loadgen_fatalx("need -p, -P, --cafile and one of --mfr and -t");
	memset(&g.addr, 0, sizeof(g.addr));
	g.addr.sin_family = AF_INET;
	g.addr.sin_port = htons((uint16_t)loadgen_parse_long(opt.port, "-p", 1, 65535));
	if (inet_pton(AF_INET, opt.host, &g.addr.sin_addr) != 1)
		loadgen_fatalx("-h: an IPv4 address");
	pthread_mutex_init(&g.lock, NULL);
	if ((g.ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_load_verify_locations(g.ctx, opt.cafile, NULL) != 1)
		loadgen_fatalx("TLS context / --cafile");
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);	/* full handshakes */
	SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
	if (opt.token != NULL) {
		char *cred = al_sprintf("bench:%s", opt.token);

		auth = al_b64((unsigned char *)cred, strlen(cred));
		free(cred);
	} else {
		al_load_ca(opt.mfr);
	}
	if ((g.devs = calloc((size_t)opt.total, sizeof(*g.devs))) == NULL ||
	    (lat = calloc((size_t)opt.total, sizeof(*lat))) == NULL)
		loadgen_fatalx("out of memory");
	al_threads(al_make_thread, NULL);
	printf("ready\n");
	fflush(stdout);
	if (opt.wait_stdin && fgets(line, sizeof(line), stdin) == NULL)
		loadgen_fatalx("stdin closed before go");
	atomic_store(&g.next, 0);
	t0 = loadgen_now();
	c0 = loadgen_cpu_seconds();
	g.deadline = t0 + opt.max_seconds;
	al_threads(al_run_thread, auth);
	t1 = loadgen_now();
	c1 = loadgen_cpu_seconds();
	printf("done\n");
	for (i = 0; i < opt.total; i++)
		if (g.devs[i].is_ok)
			lat[ok++] = g.devs[i].lat_ms;
	for (k = 0; k < AL_FAIL_MAX; k++)
		failed += atomic_load(&g.fails[k]);
	qsort(lat, (size_t)ok, sizeof(*lat), al_cmp);
	n = ok > 0 ? ok : 1;
	printf("result ok=%ld failed=%ld elapsed_s=%.3f rate=%.1f p50_ms=%.2f p99_ms=%.2f "
	    "max_ms=%.2f cpu_s=%.3f soft_tpm_ms=%.3f threads=%d\n", ok, failed, t1 - t0,
	    ok / (t1 - t0), ok ? lat[ok / 2] : 0, ok ? lat[(ok * 99) / 100 < ok ? (ok * 99) / 100 : ok - 1] : 0,
	    ok ? lat[ok - 1] : 0, c1 - c0, atomic_load(&g.soft_ns) / 1e6 / n, opt.threads);
	for (k = 0; k < AL_FAIL_MAX; k++)
		if (atomic_load(&g.fails[k]) > 0)
			printf("failure kind=%s%s%s count=%ld\n", al_fail_names[k],
			    g.status_note[k][0] ? "_first_" : "", g.status_note[k],
			    atomic_load(&g.fails[k]));
	return failed == 0 && ok == opt.total ? 0 : 1;
}

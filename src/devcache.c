/* devcache.c: the update API's memory of each certificate's answer (see
 * devcache.h). Two hash indexes (by certificate, by device) and an age
 * list; an invalidation bumps a generation so a fill that raced with it is
 * answered but not kept. Never does I/O but through db_query. */
#include "devcache.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "deploy.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <event2/buffer.h>

#define DEVCACHE_BUCKETS	65536	/* power of two */

LIST_HEAD(devcache_list, devcache_entry);
static struct devcache_list devcache_certs[DEVCACHE_BUCKETS];
static struct devcache_list devcache_devices[DEVCACHE_BUCKETS];
static TAILQ_HEAD(, devcache_entry) devcache_age =
    TAILQ_HEAD_INITIALIZER(devcache_age);
static size_t devcache_n;
/* Invalidations are numbered. A fill that started before one that may
 * concern its answer is used for its requests but not kept: devcache_gen_all
 * is the last that concerned every entry (a project, all), and
 * devcache_gen_dev[] the last per device (hashed: a collision only keeps
 * less). */
#define DEVCACHE_GEN_SLOTS	4096
static unsigned long devcache_gen;
static unsigned long devcache_gen_all;
static unsigned long devcache_gen_dev[DEVCACHE_GEN_SLOTS];

static size_t
devcache_cert_hash(long long ca_id, const char *serial)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)ca_id;

	for (; *serial != '\0'; serial++)
		h = (h ^ (unsigned char)*serial) * 1099511628211ULL;
	return (size_t)(h & (DEVCACHE_BUCKETS - 1));
}

static size_t
devcache_device_hash(long long device)
{
	return (size_t)(((uint64_t)device * 11400714819323198485ULL) >> 48) &
	    (DEVCACHE_BUCKETS - 1);
}

static void
devcache_entry_free(struct devcache_entry *e)
{
	if (e == NULL)
		return;
	free(e->doc);
	free(e);
}

static void
devcache_remove(struct devcache_entry *e)
{
	LIST_REMOVE(e, by_cert);
	LIST_REMOVE(e, by_device);
	TAILQ_REMOVE(&devcache_age, e, age);
	devcache_n--;
	devcache_entry_free(e);
}

void
devcache_clear(void)
{
	struct devcache_entry *e;

	devcache_gen_all = ++devcache_gen;
	while ((e = TAILQ_FIRST(&devcache_age)) != NULL)
		devcache_remove(e);
}

size_t
devcache_count(void)
{
	return devcache_n;
}

void
devcache_forget_device(long long device)
{
	struct devcache_list *l = &devcache_devices[devcache_device_hash(device)];
	struct devcache_entry *e, *next;

	devcache_gen_dev[devcache_device_hash(device) % DEVCACHE_GEN_SLOTS] =
	    ++devcache_gen;
	for (e = LIST_FIRST(l); e != NULL; e = next) {
		next = LIST_NEXT(e, by_device);
		if (e->device == device)
			devcache_remove(e);
	}
}

static void
devcache_forget_project(long long project)
{
	struct devcache_entry *e, *next;

	devcache_gen_all = ++devcache_gen;
	for (e = TAILQ_FIRST(&devcache_age); e != NULL; e = next) {
		next = TAILQ_NEXT(e, age);
		if (e->project == project)
			devcache_remove(e);
	}
}

/* "d <device>", "p <project>"; NULL after a (re)connect: all. */
static void
devcache_on_notify(const char *payload, void *arg)
{
	const char *errstr = NULL;
	long long id;

	(void)arg;
	if (payload == NULL || strlen(payload) < 3 || payload[1] != ' ') {
		log_debug("devcache: cleared (%s)", payload ? "unknown notification" :
		    "connected: notifications may have been missed");
		devcache_clear();
		return;
	}
	log_debug("devcache: notified \"%s\"", payload);
	id = util_strtonum(payload + 2, 1, INT64_MAX, &errstr);
	if (errstr != NULL)
		devcache_clear();
	else if (payload[0] == 'd')
		devcache_forget_device(id);
	else if (payload[0] == 'p')
		devcache_forget_project(id);
	else
		devcache_clear();
}

int
devcache_register(struct db_pool *db)
{
	for (size_t i = 0; i < DEVCACHE_BUCKETS; i++) {
		LIST_INIT(&devcache_certs[i]);
		LIST_INIT(&devcache_devices[i]);
	}
	return db_listen(db, "ql_deploy", devcache_on_notify, NULL);
}

struct devcache_entry *
devcache_get(long long ca_id, const char *serial)
{
	struct devcache_list *l = &devcache_certs[devcache_cert_hash(ca_id, serial)];
	struct devcache_entry *e;
	time_t now = time(NULL);

	LIST_FOREACH(e, l, by_cert)
		if (e->ca_id == ca_id && strcmp(e->serial, serial) == 0)
			break;
	if (e != NULL && now - e->filled >= DEVCACHE_TTL) {
		devcache_remove(e);
		e = NULL;
	}
	return e;
}

static void
devcache_insert(struct devcache_entry *e)
{
	struct devcache_entry *old;

	if ((old = devcache_get(e->ca_id, e->serial)) != NULL)
		devcache_remove(old);
	if (devcache_n >= DEVCACHE_MAX)
		devcache_remove(TAILQ_FIRST(&devcache_age));
	LIST_INSERT_HEAD(&devcache_certs[devcache_cert_hash(e->ca_id, e->serial)],
	    e, by_cert);
	LIST_INSERT_HEAD(&devcache_devices[devcache_device_hash(e->device)], e,
	    by_device);
	TAILQ_INSERT_TAIL(&devcache_age, e, age);
	devcache_n++;
	e->is_cached = 1;
}

/* ---- decoding an answer row ---- */

enum {
	DEVCACHE_C_CA, DEVCACHE_C_SERIAL, DEVCACHE_C_TRUST, DEVCACHE_C_DEVICE,
	DEVCACHE_C_PROJECT,
	DEVCACHE_C_DEPLOYMENT, DEVCACHE_C_IMAGE, DEVCACHE_C_NAME,
	DEVCACHE_C_VERSION, DEVCACHE_C_SIZE, DEVCACHE_C_SHA256,
	DEVCACHE_C_ENCRYPTED, DEVCACHE_C_ENC_SIZE, DEVCACHE_C_MANIFEST,
	DEVCACHE_C_UPLOAD, DEVCACHE_NCOLS
};

static long long
devcache_int(const PGresult *res, int row, int col)
{
	const char *errstr = NULL;
	long long v;

	if (PQgetisnull(res, row, col))
		return 0;
	v = util_strtonum(PQgetvalue(res, row, col), 0, INT64_MAX, &errstr);
	return errstr ? 0 : v;
}

static enum devices_trust
devcache_trust(const char *s)
{
	static const struct { const char *name; enum devices_trust v; } map[] = {
		{ "ok", DEVICES_TRUST_OK }, { "revoked", DEVICES_TRUST_REVOKED },
		{ "expired", DEVICES_TRUST_EXPIRED },
		{ "not_device", DEVICES_TRUST_NOT_DEVICE },
		{ "inactive", DEVICES_TRUST_INACTIVE },
		{ "unknown", DEVICES_TRUST_UNKNOWN },
		{ "tampered", DEVICES_TRUST_TAMPERED },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(s, map[i].name) == 0)
			return map[i].v;
	return DEVICES_TRUST_UNAVAILABLE;
}

/* The update document of the brief's contract, and its ETag. */
static int
devcache_doc(struct devcache_entry *e, const PGresult *res, int row)
{
	unsigned char md[32];
	char path[64];
	struct evbuffer *buf;
	yajl_gen g;
	size_t n;

	if ((g = json_gen_new()) == NULL || (buf = evbuffer_new()) == NULL) {
		if (g != NULL)
			yajl_gen_free(g);
		return -1;
	}
	yajl_gen_map_open(g);
	json_kv_int(g, "deployment", e->deployment);
	json_key(g, "image");
	yajl_gen_map_open(g);
	json_kv_int(g, "id", e->image);
	json_kv_str(g, "name", PQgetvalue(res, row, DEVCACHE_C_NAME));
	json_kv_str(g, "version", PQgetvalue(res, row, DEVCACHE_C_VERSION));
	json_kv_int(g, "size", devcache_int(res, row, DEVCACHE_C_SIZE));
	json_kv_str(g, "sha256", e->sha256);
	json_kv_bool(g, "encrypted", e->is_encrypted);
	if (e->is_encrypted)
		json_kv_int(g, "encrypted_size", e->size);
	yajl_gen_map_close(g);
	json_kv_str(g, "manifest", PQgetisnull(res, row, DEVCACHE_C_MANIFEST) ? NULL :
	    PQgetvalue(res, row, DEVCACHE_C_MANIFEST));
	snprintf(path, sizeof(path), "/device/v1/images/%lld", e->image);
	json_kv_str(g, "image_url", path);
	snprintf(path, sizeof(path), "/device/v1/images/%lld/signature", e->image);
	json_kv_str(g, "signature_url", path);
	yajl_gen_map_close(g);
	if (json_gen_finish(g, buf) == -1 ||
	    (n = evbuffer_get_length(buf)) == 0 ||
	    (e->doc = malloc(n)) == NULL) {
		evbuffer_free(buf);
		return -1;
	}
	evbuffer_remove(buf, e->doc, n);
	evbuffer_free(buf);
	e->doclen = n;
	EVP_Digest(e->doc, n, md, NULL, EVP_sha256(), NULL);
	snprintf(e->etag, sizeof(e->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"",
	    md[0], md[1], md[2], md[3], md[4], md[5], md[6], md[7]);
	return 0;
}

static struct devcache_entry *
devcache_decode(const PGresult *res, int row)
{
	const char *errstr = NULL;
	struct devcache_entry *e;

	if (PQnfields(res) != DEVCACHE_NCOLS || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->ca_id = util_strtonum(PQgetvalue(res, row, DEVCACHE_C_CA), 1, INT64_MAX,
	    &errstr);
	snprintf(e->serial, sizeof(e->serial), "%s",
	    PQgetvalue(res, row, DEVCACHE_C_SERIAL));
	e->trust = devcache_trust(PQgetvalue(res, row, DEVCACHE_C_TRUST));
	e->device = devcache_int(res, row, DEVCACHE_C_DEVICE);
	e->project = devcache_int(res, row, DEVCACHE_C_PROJECT);
	e->deployment = devcache_int(res, row, DEVCACHE_C_DEPLOYMENT);
	e->filled = time(NULL);
	snprintf(e->etag, sizeof(e->etag), "\"none\"");
	if (errstr != NULL) {
		devcache_entry_free(e);
		return NULL;
	}
	if (e->trust != DEVICES_TRUST_OK || e->deployment == 0)
		return e;
	e->image = devcache_int(res, row, DEVCACHE_C_IMAGE);
	e->is_encrypted = strcmp(PQgetvalue(res, row, DEVCACHE_C_ENCRYPTED), "t") == 0;
	e->size = devcache_int(res, row, e->is_encrypted ? DEVCACHE_C_ENC_SIZE :
	    DEVCACHE_C_SIZE);
	snprintf(e->sha256, sizeof(e->sha256), "%s",
	    PQgetvalue(res, row, DEVCACHE_C_SHA256));
	snprintf(e->upload_id, sizeof(e->upload_id), "%s",
	    PQgetvalue(res, row, DEVCACHE_C_UPLOAD));
	if (devcache_doc(e, res, row) == -1) {
		devcache_entry_free(e);
		return NULL;
	}
	return e;
}

/* ---- filling, in batches ----
 * A storm of misses (every device reconnecting, a cache cleared after a
 * database reconnect) would queue one query per certificate; instead the
 * misses wait in one list and go to the database DEVCACHE_BATCH at a
 * time, DEVCACHE_BATCHES queries at once. */

#define DEVCACHE_BATCH		256
#define DEVCACHE_BATCHES	2
#define DEVCACHE_WAIT_MAX	50000	/* misses waiting; beyond: 503 */

struct devcache_wait {
	TAILQ_ENTRY(devcache_wait) entry;
	long long	 ca_id;
	char		 serial[CA_SERIAL_HEX];
	devcache_cb	 cb;
	void		*arg;
};
TAILQ_HEAD(devcache_waits, devcache_wait);

struct devcache_batch {
	struct devcache_waits	 waits;
	unsigned long		 gen;
	struct db_pool		*db;
};

static struct devcache_waits devcache_pending =
    TAILQ_HEAD_INITIALIZER(devcache_pending);
static size_t devcache_npending;
static int devcache_nbatches;

static void devcache_batch_start(struct db_pool *);

/* The waiters for (ca, serial) get e (or NULL); a device with several
 * connections may wait more than once. */
static void
devcache_answer(struct devcache_waits *ws, long long ca_id, const char *serial,
    struct devcache_entry *e)
{
	struct devcache_wait *w, *next;

	for (w = TAILQ_FIRST(ws); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (serial != NULL && (w->ca_id != ca_id || strcmp(w->serial, serial) != 0))
			continue;
		TAILQ_REMOVE(ws, w, entry);
		w->cb(e, w->arg);
		free(w);
	}
}

static void
devcache_filled(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct devcache_batch *b = arg;
	struct devcache_entry *e;

	devcache_nbatches--;
	if (st != DB_OK)
		log_warnx("device update lookup: %s", db_errstr(st, errstr));
	for (int i = 0; st == DB_OK && i < PQntuples(res); i++) {
		if ((e = devcache_decode(res, i)) == NULL) {
			log_warnx("device update lookup: unexpected answer");
			continue;
		}
		/* An invalidation that arrived while the query ran may be
		 * newer than this answer: use it for these requests only. */
		if (b->gen >= devcache_gen_all && b->gen >= devcache_gen_dev[
		    devcache_device_hash(e->device) % DEVCACHE_GEN_SLOTS] &&
		    e->trust != DEVICES_TRUST_UNKNOWN)
			devcache_insert(e);
		devcache_answer(&b->waits, e->ca_id, e->serial, e);
		if (!e->is_cached)
			devcache_entry_free(e);
	}
	devcache_answer(&b->waits, 0, NULL, NULL);	/* no answer: 503 */
	if (!TAILQ_EMPTY(&devcache_pending))
		devcache_batch_start(b->db);
	free(b);
}

static void
devcache_batch_start(struct db_pool *db)
{
	struct devcache_batch *b;
	struct devcache_wait *w;
	struct evbuffer *cas, *serials;
	const char *v[2];
	size_t n = 0;

	if (devcache_nbatches >= DEVCACHE_BATCHES || TAILQ_EMPTY(&devcache_pending))
		return;
	cas = evbuffer_new();
	serials = evbuffer_new();
	if ((b = calloc(1, sizeof(*b))) == NULL || cas == NULL || serials == NULL) {
		free(b);
		if (cas != NULL)
			evbuffer_free(cas);
		if (serials != NULL)
			evbuffer_free(serials);
		devcache_npending = 0;
		devcache_answer(&devcache_pending, 0, NULL, NULL);
		return;
	}
	TAILQ_INIT(&b->waits);
	b->gen = devcache_gen;
	b->db = db;
	evbuffer_add(cas, "{", 1);
	evbuffer_add(serials, "{", 1);
	while (n < DEVCACHE_BATCH && (w = TAILQ_FIRST(&devcache_pending)) != NULL) {
		TAILQ_REMOVE(&devcache_pending, w, entry);
		devcache_npending--;
		TAILQ_INSERT_TAIL(&b->waits, w, entry);
		/* serials are lowercase hex (ca_serial_hex): no quoting */
		evbuffer_add_printf(cas, "%s%lld", n ? "," : "", w->ca_id);
		evbuffer_add_printf(serials, "%s%s", n ? "," : "", w->serial);
		n++;
	}
	evbuffer_add(cas, "}", 2);	/* with the NUL */
	evbuffer_add(serials, "}", 2);
	v[0] = (const char *)evbuffer_pullup(cas, -1);
	v[1] = (const char *)evbuffer_pullup(serials, -1);
	log_debug("devcache: looking up %zu certificates", n);
	devcache_nbatches++;
	db_query(db, &deploy_device_update, 2, v, NULL, devcache_filled, b);
	evbuffer_free(cas);
	evbuffer_free(serials);
}

void
devcache_fill(struct db_pool *db, long long ca_id, const char *serial,
    devcache_cb cb, void *arg)
{
	struct devcache_wait *w;

	if (devcache_npending >= DEVCACHE_WAIT_MAX || strlen(serial) >= CA_SERIAL_HEX ||
	    strspn(serial, "0123456789abcdef") != strlen(serial) ||
	    (w = calloc(1, sizeof(*w))) == NULL) {
		cb(NULL, arg);
		return;
	}
	w->ca_id = ca_id;
	memcpy(w->serial, serial, strlen(serial) + 1);
	w->cb = cb;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&devcache_pending, w, entry);
	devcache_npending++;
	devcache_batch_start(db);
}

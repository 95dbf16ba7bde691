/* imgstream.c: image bytes from image_chunks to a client. A row may hold
 * tens of MiB (one tus PATCH); it is read in pieces of IMGSTREAM_PIECE
 * (substring in SQL, binary result: no hex doubling) and the next piece is
 * asked only once the previous one was written, so a download holds one
 * piece whatever the row size or the client's speed. */
#include "imgstream.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>

#include "db.h"
#include "http.h"
#include "http_req.h"
#include "server.h"

/* Rows are contiguous (009's contract): the row holding byte $3 is the
 * last one starting at or before it. */
static const struct db_stmt imgstream_piece = {
	"imgstream_piece", "SELECT off, substring(data FROM ($3::bigint - off + 1)::integer"
	" FOR $4::integer) FROM image_chunks WHERE upload_id = $1"
	" AND variant = $2::smallint AND off <= $3::bigint ORDER BY off DESC LIMIT 1", 4 };

struct imgstream {
	struct http_req		*hr;
	char			 upload_id[IMGSTREAM_UPLOAD_ID + 1];
	char			 variant[2];
	long long		 pos, end;	/* [pos, end) still to send */
	size_t			 sent;
	int			 status;
	int			 is_querying;
	int			 is_gone;
	imgstream_done_fn	 done;
	void			*arg;
};

static void imgstream_next(struct imgstream *);

static void
imgstream_finish(struct imgstream *s, const char *abort_why)
{
	struct http_req *hr = s->hr;
	imgstream_done_fn done = s->done;
	void *arg = s->arg;

	hr->gone = NULL;
	hr->written = NULL;
	if (abort_why != NULL)
		http_stream_abort(hr, s->status, s->sent, abort_why);
	else
		http_stream_end(hr, s->status, s->sent);
	free(s);
	if (done != NULL)
		done(arg);
}

/* From evhttp's close callback, which allows hr to be freed here. */
static void
imgstream_gone(struct http_req *hr)
{
	struct imgstream *s = hr->stream;

	s->is_gone = 1;
	if (!s->is_querying)
		imgstream_finish(s, NULL);
}

static void
imgstream_written(struct http_req *hr)
{
	imgstream_next(hr->stream);
}

static int64_t
imgstream_be64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static void
imgstream_got(enum db_status st, const PGresult *res, const char *errstr,
    void *arg)
{
	struct imgstream *s = arg;
	struct evbuffer *buf;
	int len;

	s->is_querying = 0;
	if (s->is_gone) {
		imgstream_finish(s, NULL);
		return;
	}
	if (st != DB_OK) {
		imgstream_finish(s, db_errstr(st, errstr));
		return;
	}
	if (PQntuples(res) != 1 || PQgetlength(res, 0, 0) != 8 ||
	    imgstream_be64((const unsigned char *)PQgetvalue(res, 0, 0)) > s->pos ||
	    (len = PQgetlength(res, 0, 1)) <= 0 || len > s->end - s->pos) {
		imgstream_finish(s, "image bytes missing in the database");
		return;
	}
	if ((buf = evbuffer_new()) == NULL ||
	    evbuffer_add(buf, PQgetvalue(res, 0, 1), (size_t)len) == -1) {
		if (buf != NULL)
			evbuffer_free(buf);
		imgstream_finish(s, "out of memory");
		return;
	}
	s->pos += len;
	s->sent += (size_t)len;
	http_stream_piece(s->hr, buf);	/* written: imgstream_written */
	evbuffer_free(buf);
}

static void
imgstream_next(struct imgstream *s)
{
	char pos[24], max[24];
	const char *v[4] = { s->upload_id, s->variant, pos, max };
	long long n = s->end - s->pos;

	if (n <= 0) {
		imgstream_finish(s, NULL);
		return;
	}
	snprintf(pos, sizeof(pos), "%lld", s->pos);
	snprintf(max, sizeof(max), "%lld", n < IMGSTREAM_PIECE ? n : IMGSTREAM_PIECE);
	s->is_querying = 1;
	db_query_binary(s->hr->srv->db, &imgstream_piece, 4, v, NULL,
	    imgstream_got, s);
}

int
imgstream_start(struct http_req *hr, int status, const char *upload_id,
    int variant, long long from, long long end, imgstream_done_fn done,
    void *arg)
{
	struct imgstream *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		http_reply_problem(hr, 503, NULL, "out of memory");
		return -1;
	}
	s->hr = hr;
	snprintf(s->upload_id, sizeof(s->upload_id), "%s", upload_id);
	s->variant[0] = variant ? '1' : '0';
	s->pos = from;
	s->end = end;
	s->status = status;
	s->done = done;
	s->arg = arg;
	hr->stream = s;
	hr->gone = imgstream_gone;
	hr->written = imgstream_written;
	http_stream_start(hr, status, "application/octet-stream");
	imgstream_next(s);
	return 0;
}

int
imgstream_register(struct db_pool *db)
{
	static const struct db_stmt *const s[] = { &imgstream_piece };

	return db_register_all(db, s, 1);
}

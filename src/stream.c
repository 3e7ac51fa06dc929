/* SPDX-License-Identifier: Apache-2.0 */
/* stream.c: one Firehose-style delivery stream: the records put through the ingest API are
 * buffered and delivered as one object when BufferingHints.SizeInMBs or IntervalInSeconds is
 * reached, whichever comes first (IntervalInSeconds 0: each put at once), and everything
 * buffered is delivered on drain. Records of an object are concatenated as they came (Firehose
 * adds no delimiter). It owns the buffer, the sealed objects waiting to be written (in order,
 * one write in flight), retrying a failed write with backoff (a record is never dropped while
 * the stream lives), and the stream's counters. Loop thread; the write itself runs on libuv's
 * thread pool.
 *
 * Two seams are kept narrow on purpose: stream_buffer_add is where accepted records are handed
 * over (an in-memory buffer today: records are acknowledged before they are on disk, and lost
 * if sluice is killed; the durable spool replaces this one function), and stream_file.c's
 * sl_stream_file_key / sl_stream_file_write are the whole of the destination (Firehose's key
 * expressions, GZIP and the S3 API replace them).
 *
 * Memory is bounded: records held (buffered plus sealed) stop at twice SizeInMBs plus one full
 * PutRecordBatch; puts past that are refused per record (ServiceUnavailableException, which
 * the SDKs retry). */
#include "stream.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "firehose_api.h"
#include "log.h"
#include "stream_file.h"

#define STREAM_COMP         "stream"
#define STREAM_RETRY_MIN_MS 500
#define STREAM_RETRY_MAX_MS 30000
#define STREAM_MIB          (1024 * 1024)

/* A sealed object: its records, its key (fixed when sealed, so a retry writes the same
 * object), and the result of its last write. */
struct stream_obj {
    struct stream_obj *next;
    struct sl_stream *s;
    struct sl_buf data;
    struct sl_buf key;
    size_t n_records;
    uv_work_t work;
    int result;
    char err[256];
};

struct sl_stream {
    const struct sl_stream_conf *sc;
    struct sl_stream_env env;
    uv_timer_t interval_timer;
    uv_timer_t retry_timer;
    int open_handles;
    struct sl_buf buf; /* records not yet sealed */
    size_t buf_records;
    int64_t buf_oldest_wall; /* arrival (Unix ms) of the oldest record in buf */
    struct stream_obj *head; /* sealed, oldest first; head is the one being written */
    struct stream_obj *tail;
    size_t sealed_bytes;
    size_t sealed_records;
    bool writing; /* head's write is on the thread pool */
    bool draining;
    bool freed; /* sl_stream_free was called during a write */
    int64_t retry_ms;
    int64_t size_bytes;
    int64_t cap_bytes;
    struct sl_stream_stats stats;
};

static void stream_kick(struct sl_stream *s);
static void stream_release(struct sl_stream *s);
static void stream_interval_cb(uv_timer_t *t);

/* ------------------------------------------------------------------------------------------ */
/* Buffering */

static void stream_obj_free(struct stream_obj *o)
{
    sl_buf_fini(&o->data);
    sl_buf_fini(&o->key);
    sl_free(o);
}

/* Moves what is buffered into a sealed object, named now, queued for writing. */
static void stream_seal(struct sl_stream *s)
{
    uv_timer_stop(&s->interval_timer);
    if (s->buf_records == 0) {
        return;
    }
    struct stream_obj *o = sl_calloc(1, sizeof(*o));
    if (!o) {
        /* Kept in the buffer; the next put or the interval seals it again. */
        uv_timer_start(&s->interval_timer, stream_interval_cb, STREAM_RETRY_MIN_MS, 0);
        return;
    }
    sl_buf_init(&o->key);
    if (sl_stream_file_key(s->sc, s->buf_oldest_wall, &o->key) < 0) {
        sl_free(o);
        uv_timer_start(&s->interval_timer, stream_interval_cb, STREAM_RETRY_MIN_MS, 0);
        return;
    }
    o->s = s;
    o->data = s->buf;
    o->n_records = s->buf_records;
    sl_buf_init(&s->buf);
    s->buf_records = 0;
    s->sealed_bytes += o->data.len;
    s->sealed_records += o->n_records;
    if (s->tail) {
        s->tail->next = o;
    } else {
        s->head = o;
    }
    s->tail = o;
    stream_kick(s);
}

static void stream_interval_cb(uv_timer_t *t)
{
    stream_seal(t->data);
}

/* The hand-off: appends records to the buffer (one copy each). Returns how many it took. */
static size_t stream_buffer_add(struct sl_stream *s, const struct sl_firehose_rec *recs, size_t n)
{
    size_t bytes = 0;
    size_t took = 0;
    for (; took < n; took++) {
        bytes += recs[took].len;
    }
    /* A buffer is sealed once it reaches size_bytes, so it never holds more than that plus
     * one call: room for it all at once, so it is never copied to grow (pages not written
     * are not resident). */
    size_t want = s->buf.cap == 0 ? (size_t)s->size_bytes + SL_FIREHOSE_CALL_MAX : bytes;
    if (sl_buf_reserve(&s->buf, want > bytes ? want : bytes) < 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(s->buf.data + s->buf.len, recs[i].data, recs[i].len);
        s->buf.len += recs[i].len;
    }
    s->buf.data[s->buf.len] = '\0';
    s->buf_records += n;
    return n;
}

size_t sl_stream_put(struct sl_stream *s, const struct sl_firehose_rec *recs, size_t n)
{
    size_t held = s->buf.len + s->sealed_bytes;
    size_t room = held < (size_t)s->cap_bytes ? (size_t)s->cap_bytes - held : 0;
    size_t fit = 0;
    size_t bytes = 0;
    while (fit < n && bytes + recs[fit].len <= room) {
        bytes += recs[fit++].len;
    }
    bool was_empty = s->buf_records == 0;
    size_t took = fit ? stream_buffer_add(s, recs, fit) : 0;
    s->stats.throttled += n - took;
    if (took == 0) {
        return 0;
    }
    s->stats.incoming_records += took;
    s->stats.incoming_bytes += bytes;
    if (was_empty) {
        s->buf_oldest_wall = sl_clock_wall_ms(s->env.clock);
    }
    if (s->draining || s->sc->interval_s == 0 || (int64_t)s->buf.len >= s->size_bytes) {
        stream_seal(s);
    } else if (was_empty) {
        uv_timer_start(&s->interval_timer, stream_interval_cb, (uint64_t)s->sc->interval_s * 1000,
                       0);
    }
    return took;
}

/* ------------------------------------------------------------------------------------------ */
/* Writing */

static void stream_work_cb(uv_work_t *w)
{
    struct stream_obj *o = w->data;
    o->err[0] = '\0';
    o->result = sl_stream_file_write(o->s->sc->dir, o->key.data, o->data.data, o->data.len, o->err,
                                     sizeof(o->err));
}

static void stream_retry_cb(uv_timer_t *t)
{
    stream_kick(t->data);
}

static void stream_after_work_cb(uv_work_t *w, int status)
{
    struct stream_obj *o = w->data;
    struct sl_stream *s = o->s;
    s->writing = false;
    if (status == 0 && o->result == 0) {
        s->head = o->next;
        if (!s->head) {
            s->tail = NULL;
        }
        s->sealed_bytes -= o->data.len;
        s->sealed_records -= o->n_records;
        s->stats.delivered += o->n_records;
        s->stats.delivered_bytes += o->data.len;
        s->stats.objects++;
        s->retry_ms = 0;
        sl_log_debug(STREAM_COMP, s->sc->name, "delivered %zu records (%zu bytes) as %s",
                     o->n_records, o->data.len, o->key.data);
        stream_obj_free(o);
    } else {
        s->stats.failed_writes++;
        s->retry_ms = s->retry_ms ? s->retry_ms * 2 : STREAM_RETRY_MIN_MS;
        if (s->retry_ms > STREAM_RETRY_MAX_MS) {
            s->retry_ms = STREAM_RETRY_MAX_MS;
        }
        sl_log_warn(STREAM_COMP, s->sc->name, "cannot deliver %zu records: %s, retrying in %lldms",
                    o->n_records, status ? uv_strerror(status) : o->err, (long long)s->retry_ms);
    }
    if (s->freed) {
        stream_release(s);
        return;
    }
    if (s->head && s->retry_ms) {
        uv_timer_start(&s->retry_timer, stream_retry_cb, (uint64_t)s->retry_ms, 0);
    } else {
        stream_kick(s);
    }
}

/* Starts writing the oldest sealed object, unless one is being written or waits to retry. */
static void stream_kick(struct sl_stream *s)
{
    if (s->writing || !s->head || uv_is_active((uv_handle_t *)&s->retry_timer)) {
        return;
    }
    struct stream_obj *o = s->head;
    o->work.data = o;
    int r = uv_queue_work(s->env.loop, &o->work, stream_work_cb, stream_after_work_cb);
    if (r != 0) {
        sl_log_warn(STREAM_COMP, s->sc->name, "cannot start a write: %s, retrying", uv_strerror(r));
        uv_timer_start(&s->retry_timer, stream_retry_cb, STREAM_RETRY_MIN_MS, 0);
        return;
    }
    s->writing = true;
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle */

int sl_stream_new(const struct sl_stream_conf *sc,
                  const struct sl_stream_env *env,
                  struct sl_stream **ret_s)
{
    struct sl_stream *s = sl_calloc(1, sizeof(*s));
    if (!s) {
        return SL_ENOMEM;
    }
    s->sc = sc;
    s->env = *env;
    sl_buf_init(&s->buf);
    s->size_bytes = sc->size_mb * STREAM_MIB;
    s->cap_bytes = 2 * s->size_bytes + SL_FIREHOSE_CALL_MAX;
    uv_timer_init(env->loop, &s->interval_timer);
    uv_timer_init(env->loop, &s->retry_timer);
    s->interval_timer.data = s->retry_timer.data = s;
    s->open_handles = 2;
    *ret_s = s;
    return 0;
}

void sl_stream_drain(struct sl_stream *s)
{
    s->draining = true;
    stream_seal(s);
    /* A write waiting to retry is tried again now. */
    if (uv_is_active((uv_handle_t *)&s->retry_timer)) {
        uv_timer_stop(&s->retry_timer);
        stream_kick(s);
    }
}

size_t sl_stream_held(const struct sl_stream *s)
{
    return s->buf_records + s->sealed_records;
}

const struct sl_stream_stats *sl_stream_stats(const struct sl_stream *s)
{
    return &s->stats;
}

const char *sl_stream_name(const struct sl_stream *s)
{
    return s->sc->name;
}

void sl_stream_log_stats(const struct sl_stream *s, const char *msg)
{
    const char *keys[] = {"IncomingRecords",      "IncomingBytes",      "ThrottledRecords",
                          "DeliveryToS3.Records", "DeliveryToS3.Bytes", "DeliveryToS3.Success",
                          "failed_writes",        "buffered_records",   "buffered_bytes"};
    int64_t values[] = {
        (int64_t)s->stats.incoming_records,
        (int64_t)s->stats.incoming_bytes,
        (int64_t)s->stats.throttled,
        (int64_t)s->stats.delivered,
        (int64_t)s->stats.delivered_bytes,
        (int64_t)s->stats.objects,
        (int64_t)s->stats.failed_writes,
        (int64_t)sl_stream_held(s),
        (int64_t)(s->buf.len + s->sealed_bytes),
    };
    sl_log_fields(SL_LOG_INFO, STREAM_COMP, s->sc->name, msg, keys, values, SL_ARRAY_LEN(keys));
}

static void stream_close_cb(uv_handle_t *h)
{
    struct sl_stream *s = h->data;
    if (--s->open_handles == 0) {
        sl_free(s);
    }
}

/* Frees what is held and the stream (after its timers closed); never during a write. */
static void stream_release(struct sl_stream *s)
{
    assert(!s->writing);
    size_t lost = sl_stream_held(s);
    if (lost > 0) {
        sl_log_error(STREAM_COMP, s->sc->name,
                     "exiting with %zu records not delivered; they are lost (kept in memory only)",
                     lost);
    }
    while (s->head) {
        struct stream_obj *o = s->head;
        s->head = o->next;
        stream_obj_free(o);
    }
    sl_buf_fini(&s->buf);
    uv_close((uv_handle_t *)&s->interval_timer, stream_close_cb);
    uv_close((uv_handle_t *)&s->retry_timer, stream_close_cb);
}

void sl_stream_free(struct sl_stream *s)
{
    if (!s) {
        return;
    }
    uv_timer_stop(&s->interval_timer);
    uv_timer_stop(&s->retry_timer);
    if (s->writing) {
        s->freed = true; /* released by the write's completion */
        return;
    }
    stream_release(s);
}

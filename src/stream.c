/* SPDX-License-Identifier: Apache-2.0 */
/* stream.c: one Firehose-style delivery stream: the records put through the ingest API are
 * buffered and delivered as one object when BufferingHints.SizeInMBs or IntervalInSeconds is
 * reached, whichever comes first (IntervalInSeconds 0: each put at once), and everything
 * buffered is delivered on drain. Records of an object are concatenated as they came (Firehose
 * adds no delimiter). It owns the buffer, the sealed objects waiting to be delivered (in order,
 * one in flight), and the stream's counters. Loop thread.
 *
 * Two seams are kept narrow on purpose: stream_buffer_add is where accepted records are handed
 * over (an in-memory buffer today: records are acknowledged before they are on disk, and lost
 * if sluice is killed; the durable spool replaces this one function), and stream_dest.h's
 * sl_stream_dest_deliver is the whole of the destination: one sealed object's records and the
 * oldest one's arrival in, one callback out ("this object is done", or not). The destination
 * names the object (Firehose's keys, at the oldest record's arrival), writes it (S3 API or
 * file:///dir, GZIP or not; or the HTTP endpoint with its backup) and retries it itself; a
 * record is released only after that callback said done. A transform (ProcessingConfiguration)
 * or dynamic partitioning would go between the seal and the delivery.
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
#include "stream_dest.h"

#define STREAM_COMP         "stream"
#define STREAM_RETRY_MIN_MS 500
#define STREAM_MIB          (1024 * 1024)

/* A sealed object: its bytes, its records (pointing into data) and its oldest arrival. */
struct stream_obj {
    struct stream_obj *next;
    struct sl_stream *s;
    struct sl_buf data;
    struct sl_stream_dest_rec *recs;
    size_t n_records;
    int64_t oldest_wall;
};

struct sl_stream {
    const struct sl_stream_conf *sc;
    struct sl_stream_env env;
    uv_timer_t interval_timer;
    uv_timer_t retry_timer;
    int open_handles;
    struct sl_stream_dest *dest;
    struct sl_buf buf; /* records not yet sealed */
    size_t buf_records;
    /* The records of buf: .data holds the offset in buf until the seal makes it a pointer. */
    struct sl_stream_dest_rec *buf_recs;
    size_t buf_recs_cap;
    int64_t buf_oldest_wall; /* arrival (Unix ms) of the oldest record in buf */
    struct stream_obj *head; /* sealed, oldest first; head is the one being written */
    struct stream_obj *tail;
    size_t sealed_bytes;
    size_t sealed_records;
    bool writing; /* head is with the destination */
    bool draining;
    bool freed; /* sl_stream_free was called during a write */
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
    sl_free(o->recs);
    sl_free(o);
}

/* Moves what is buffered into a sealed object, queued for delivery. */
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
    o->s = s;
    o->data = s->buf;
    o->n_records = s->buf_records;
    o->recs = s->buf_recs;
    o->oldest_wall = s->buf_oldest_wall;
    for (size_t i = 0; i < o->n_records; i++) {
        o->recs[i].data = o->data.data + (uintptr_t)o->recs[i].data;
    }
    sl_buf_init(&s->buf);
    s->buf_records = 0;
    s->buf_recs = NULL;
    s->buf_recs_cap = 0;
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
    if (s->buf_records + n > s->buf_recs_cap) {
        size_t cap = s->buf_recs_cap ? 2 * s->buf_recs_cap : 512;
        cap = cap < s->buf_records + n ? s->buf_records + n : cap;
        struct sl_stream_dest_rec *r = sl_realloc(s->buf_recs, cap * sizeof(*r));
        if (!r) {
            return 0;
        }
        s->buf_recs = r;
        s->buf_recs_cap = cap;
    }
    int64_t now = sl_clock_wall_ms(s->env.clock);
    for (size_t i = 0; i < n; i++) {
        s->buf_recs[s->buf_records + i] =
            (struct sl_stream_dest_rec){(const void *)(uintptr_t)s->buf.len, recs[i].len, now};
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
/* Delivering */

static void stream_retry_cb(uv_timer_t *t)
{
    stream_kick(t->data);
}

/* The destination is done with head: delivered (err 0) or not (stopped). */
static void stream_delivered_cb(void *arg, int err)
{
    struct sl_stream *s = arg;
    struct stream_obj *o = s->head;
    s->writing = false;
    if (err == 0) {
        s->head = o->next;
        if (!s->head) {
            s->tail = NULL;
        }
        s->sealed_bytes -= o->data.len;
        s->sealed_records -= o->n_records;
        s->stats.delivered += o->n_records;
        s->stats.delivered_bytes += o->data.len;
        s->stats.objects++;
        sl_log_debug(STREAM_COMP, s->sc->name, "delivered %zu records (%zu bytes)", o->n_records,
                     o->data.len);
        stream_obj_free(o);
    } else if (!s->freed) {
        sl_log_warn(STREAM_COMP, s->sc->name, "cannot deliver %zu records: %s, retrying",
                    o->n_records, sl_strerror(err));
        uv_timer_start(&s->retry_timer, stream_retry_cb, STREAM_RETRY_MIN_MS, 0);
    }
    if (s->freed) {
        stream_release(s);
        return;
    }
    stream_kick(s);
}

/* Hands the oldest sealed object to the destination, unless one is there or waits to retry. */
static void stream_kick(struct sl_stream *s)
{
    if (s->writing || !s->head || uv_is_active((uv_handle_t *)&s->retry_timer)) {
        return;
    }
    struct stream_obj *o = s->head;
    int r = sl_stream_dest_deliver(s->dest, o->recs, o->n_records, o->oldest_wall,
                                   stream_delivered_cb, s);
    if (r < 0) {
        sl_log_warn(STREAM_COMP, s->sc->name, "cannot start a delivery: %s, retrying",
                    sl_strerror(r));
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
        sl_stream_dest_free(env->dest);
        return SL_ENOMEM;
    }
    s->sc = sc;
    s->env = *env;
    s->dest = env->dest;
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
    /* A delivery waiting to retry is tried again now. */
    sl_stream_dest_retry_now(s->dest);
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

/* DataFreshness: the age in seconds of the oldest record not yet delivered (0 when none). */
static int64_t stream_freshness_s(const struct sl_stream *s)
{
    int64_t oldest = s->head ? s->head->oldest_wall : s->buf_records ? s->buf_oldest_wall : -1;
    if (oldest < 0) {
        return 0;
    }
    int64_t age = sl_clock_wall_ms(s->env.clock) - oldest;
    return age > 0 ? age / 1000 : 0;
}

void sl_stream_log_stats(const struct sl_stream *s, const char *msg)
{
    const struct sl_stream_dest_stats *ds = sl_stream_dest_stats(s->dest);
    const char *keys[16];
    int64_t values[16];
    size_t n = 0;
#define STAT(k, v) (keys[n] = (k), values[n++] = (int64_t)(v))
    STAT("IncomingRecords", s->stats.incoming_records);
    STAT("IncomingBytes", s->stats.incoming_bytes);
    STAT("ThrottledRecords", s->stats.throttled);
    if (sl_stream_dest_is_http(s->dest)) {
        STAT("DeliveryToHttpEndpoint.Records", ds->http_records);
        STAT("DeliveryToHttpEndpoint.Bytes", ds->http_bytes);
        STAT("DeliveryToHttpEndpoint.Success", ds->http_success);
        STAT("DeliveryToHttpEndpoint.DataFreshness", stream_freshness_s(s));
        STAT("BackupToS3.Records", ds->backup_records);
        STAT("BackupToS3.Success", ds->backup_success);
    } else {
        STAT("DeliveryToS3.Records", ds->s3_records);
        STAT("DeliveryToS3.Bytes", ds->s3_bytes);
        STAT("DeliveryToS3.Success", ds->s3_success);
        STAT("DeliveryToS3.DataFreshness", stream_freshness_s(s));
    }
    STAT("failed_attempts", ds->failed_attempts);
    STAT("buffered_records", sl_stream_held(s));
    STAT("buffered_bytes", s->buf.len + s->sealed_bytes);
#undef STAT
    sl_log_fields(SL_LOG_INFO, STREAM_COMP, s->sc->name, msg, keys, values, n);
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
    sl_free(s->buf_recs);
    sl_stream_dest_free(s->dest);
    s->dest = NULL;
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
        s->freed = true; /* released by the delivery's callback */
        sl_stream_dest_stop(s->dest);
        return;
    }
    stream_release(s);
}

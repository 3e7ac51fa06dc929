/* SPDX-License-Identifier: Apache-2.0 */
/* stream.c: one Firehose-style delivery stream: the records put through the ingest API are
 * appended to the stream's durable spool (spool.h) and acknowledged once fsynced; the buffer
 * reads them back from the spool and delivers them as one object when BufferingHints.SizeInMBs
 * or IntervalInSeconds is reached, whichever comes first (IntervalInSeconds 0: each put at
 * once; the interval counts from the oldest record's arrival, so records replayed after a crash
 * keep their time), and everything is delivered on drain. Records of an object are concatenated
 * as they came (Firehose adds no delimiter). It owns the record's life: appended (put), read
 * into the buffer, sealed into an object, delivered, then released in the spool (never before
 * the destination said the object is done, so a crash repeats records and never loses an
 * acknowledged one), with the released state saved every STREAM_SAVE_MS and at close. It also
 * owns the sealed objects waiting to be delivered (in order, one in flight), and the stream's
 * counters. Loop thread.
 *
 * stream_dest.h's sl_stream_dest_deliver is the whole of the destination: one sealed object's
 * records and the oldest one's arrival in, one callback out ("this object is done", or not).
 * The destination names the object (Firehose's keys, at the oldest record's arrival), writes it
 * (S3 API or file:///dir, GZIP or not; or the HTTP endpoint with its backup) and retries it
 * itself. A transform (ProcessingConfiguration) or dynamic partitioning would go between the
 * seal and the delivery.
 *
 * Backpressure is the spool's quota (spool_max_bytes): a put that does not fit is refused
 * (ServiceUnavailableException, which the SDKs retry) with nothing stored, and what the spool
 * holds is delivered at once so that room comes back. Memory is bounded apart from the spool:
 * the buffer reads from the spool only while records held in memory (buffered plus sealed) stay
 * under SizeInMBs plus one full PutRecordBatch (the object being written, and the next filling
 * once it is done: the spool keeps the rest on disk). */
#include "stream.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "firehose_api.h"
#include "log.h"
#include "spool.h"
#include "stream_dest.h"

#define STREAM_COMP         "stream"
#define STREAM_RETRY_MIN_MS 500
#define STREAM_MIB          (1024 * 1024)
#define STREAM_SAVE_MS      1000 /* the released state is saved this often while records go */
#define STREAM_RECS_GROW    4096
#define SPOOL_FILE_HEADER   8 /* a segment file's header: counted when a put starts one */

/* A sealed object: its bytes, its records (pointing into data) and its oldest arrival. */
struct stream_obj {
    struct stream_obj *next;
    struct sl_stream *s;
    struct sl_buf data;
    struct sl_stream_dest_rec *recs;
    uint64_t *ids; /* the spool ids of its records, released once it is delivered */
    size_t n_records;
    int64_t oldest_wall;
};

struct sl_stream {
    const struct sl_stream_conf *sc;
    struct sl_stream_env env;
    uv_timer_t interval_timer;
    uv_timer_t retry_timer;
    uv_timer_t save_timer;
    int open_handles;
    struct sl_stream_dest *dest;
    struct sl_spool *spool;
    uint64_t spool_max_bytes;
    struct sl_buf buf; /* records read from the spool, not yet sealed */
    size_t buf_records;
    /* The records of buf: .data holds the offset in buf until the seal makes it a pointer. */
    struct sl_stream_dest_rec *buf_recs;
    uint64_t *buf_ids; /* their spool ids */
    size_t buf_recs_cap;
    size_t appending;        /* records appended to the spool and not yet acknowledged */
    int64_t buf_oldest_wall; /* arrival (Unix ms) of the oldest record in buf */
    struct stream_obj *head; /* sealed, oldest first; head is the one being written */
    struct stream_obj *tail;
    size_t sealed_bytes;
    size_t sealed_records;
    bool writing; /* head is with the destination */
    bool draining;
    bool filling;
    bool quota_hit; /* a put was refused for the quota: deliver what the spool holds now */
    bool closing;   /* sl_stream_free was called */
    bool freed;     /* sl_stream_free was called during a write */
    int64_t size_bytes;
    int64_t cap_bytes;
    struct sl_stream_stats stats;
};

static void stream_kick(struct sl_stream *s);
static void stream_release(struct sl_stream *s);
static void stream_interval_cb(uv_timer_t *t);
static void stream_fill(struct sl_stream *s);

/* ------------------------------------------------------------------------------------------ */
/* Buffering */

static void stream_obj_free(struct stream_obj *o)
{
    sl_buf_fini(&o->data);
    sl_free(o->recs);
    sl_free(o->ids);
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
    o->ids = s->buf_ids;
    o->oldest_wall = s->buf_oldest_wall;
    for (size_t i = 0; i < o->n_records; i++) {
        o->recs[i].data = o->data.data + (uintptr_t)o->recs[i].data;
    }
    sl_buf_init(&s->buf);
    s->buf_records = 0;
    s->buf_recs = NULL;
    s->buf_ids = NULL;
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
    struct sl_stream *s = t->data;
    stream_seal(s);
    stream_fill(s);
}

/* One durable record read back from the spool, into the buffer; room for it was made by
 * stream_fill (the read asks for no more than that). */
static void stream_read_cb(void *arg, const struct sl_spool_rec *rec)
{
    struct sl_stream *s = arg;
    if (s->buf_records == 0) {
        s->buf_oldest_wall = rec->arrival_ms;
    }
    s->buf_recs[s->buf_records] =
        (struct sl_stream_dest_rec){(const void *)(uintptr_t)s->buf.len, rec->len, rec->arrival_ms};
    s->buf_ids[s->buf_records++] = rec->id;
    memcpy(s->buf.data + s->buf.len, rec->data, rec->len);
    s->buf.len += rec->len;
    s->buf.data[s->buf.len] = '\0';
}

/* Reads durable records from the spool into the buffer while memory allows, sealing at
 * SizeInMBs (at once when IntervalInSeconds is 0 or draining), and starts the interval timer
 * for the oldest record buffered. */
static void stream_fill(struct sl_stream *s)
{
    if (s->closing || s->filling) {
        return;
    }
    s->filling = true;
    while (sl_spool_has_unread(s->spool)) {
        size_t held = s->buf.len + s->sealed_bytes;
        if (held >= (size_t)s->cap_bytes) {
            break; /* a write's completion calls again */
        }
        size_t room = (size_t)s->size_bytes > s->buf.len ? (size_t)s->size_bytes - s->buf.len : 1;
        if (room > (size_t)s->cap_bytes - held) {
            room = (size_t)s->cap_bytes - held;
        }
        /* The buffer never holds more than SizeInMBs plus one record: reserved at once, so it
         * is never copied to grow (pages not written are not resident). */
        size_t want = s->buf.cap == 0 ? (size_t)s->size_bytes + SL_SPOOL_RECORD_MAX_BYTES
                                      : room + SL_SPOOL_RECORD_MAX_BYTES;
        if (s->buf_recs_cap - s->buf_records < STREAM_RECS_GROW) {
            size_t cap = s->buf_recs_cap + STREAM_RECS_GROW;
            struct sl_stream_dest_rec *r = sl_realloc(s->buf_recs, cap * sizeof(*r));
            if (r) {
                s->buf_recs = r;
            }
            uint64_t *ids = r ? sl_realloc(s->buf_ids, cap * sizeof(*ids)) : NULL;
            if (ids) {
                s->buf_ids = ids;
                s->buf_recs_cap = cap;
            }
        }
        if (s->buf_recs_cap == s->buf_records || sl_buf_reserve(&s->buf, want) < 0) {
            /* Out of memory: the records stay in the spool; the interval tries again. */
            if (!uv_is_active((uv_handle_t *)&s->interval_timer)) {
                uv_timer_start(&s->interval_timer, stream_interval_cb, STREAM_RETRY_MIN_MS, 0);
            }
            break;
        }
        int r = sl_spool_read(s->spool, s->buf_recs_cap - s->buf_records, room, stream_read_cb, s);
        if (r < 0) {
            sl_log_error(STREAM_COMP, s->sc->name,
                         "cannot read the spool: %s; its records are delivered after a restart",
                         sl_strerror(r));
            break;
        }
        if (r == 0) {
            break;
        }
        if ((int64_t)s->buf.len >= s->size_bytes) {
            stream_seal(s);
        }
    }
    if (s->buf_records > 0) {
        if (s->draining || s->sc->interval_s == 0 || s->quota_hit) {
            stream_seal(s);
            s->quota_hit = s->quota_hit && (sl_spool_has_unread(s->spool) || s->appending > 0);
        } else if (!uv_is_active((uv_handle_t *)&s->interval_timer)) {
            int64_t due = s->buf_oldest_wall + s->sc->interval_s * 1000;
            int64_t wait = due - sl_clock_wall_ms(s->env.clock);
            uv_timer_start(&s->interval_timer, stream_interval_cb, wait > 0 ? (uint64_t)wait : 0,
                           0);
        }
    }
    s->filling = false;
}

/* A put in the spool: answered once durable. */
struct stream_put {
    struct sl_stream *s;
    sl_stream_put_cb cb;
    void *arg;
    size_t n;
    size_t bytes;
};

static void stream_appended_cb(void *arg, int status, uint64_t first_id)
{
    (void)first_id;
    struct stream_put *p = arg;
    struct sl_stream *s = p->s;
    s->appending -= p->n;
    if (status == 0) {
        s->stats.incoming_records += p->n;
        s->stats.incoming_bytes += p->bytes;
    } else {
        sl_log_error(STREAM_COMP, s->sc->name, "cannot make %zu records durable: %s", p->n,
                     sl_strerror(status));
    }
    p->cb(p->arg, status);
    sl_free(p);
    stream_fill(s);
}

static int stream_append(struct sl_stream *s,
                         const struct sl_spool_in *in,
                         size_t n,
                         size_t bytes,
                         sl_stream_put_cb cb,
                         void *arg)
{
    struct stream_put *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        return SL_ENOMEM;
    }
    *p = (struct stream_put){.s = s, .cb = cb, .arg = arg, .n = n, .bytes = bytes};
    int r = sl_spool_append(s->spool, in, n, stream_appended_cb, p);
    if (r < 0) {
        sl_free(p);
        return r;
    }
    s->appending += n;
    return 0;
}

int sl_stream_put(struct sl_stream *s,
                  const struct sl_firehose_rec *recs,
                  size_t n,
                  size_t *ret_took,
                  sl_stream_put_cb cb,
                  void *arg)
{
    *ret_took = 0;
    if (s->closing) {
        return SL_ECANCELED;
    }
    struct sl_spool_in *in = sl_calloc(n ? n : 1, sizeof(*in));
    if (!in) {
        return SL_ENOMEM;
    }
    int64_t now = sl_clock_wall_ms(s->env.clock);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        in[i] = (struct sl_spool_in){
            .data = recs[i].data, .len = (uint32_t)recs[i].len, .arrival_ms = now};
        bytes += recs[i].len;
    }
    size_t took = n;
    int r = stream_append(s, in, n, bytes, cb, arg);
    if (r == SL_EINVAL &&
        bytes + n * SL_SPOOL_FRAME_OVERHEAD + SPOOL_FILE_HEADER > s->spool_max_bytes) {
        r = SL_ETHROTTLED; /* the call is larger than the whole quota: some of it may fit */
    }
    if (r == SL_ETHROTTLED && n > 1) {
        /* As AWS does under throttling: the first records that fit are taken, the others
         * answered ServiceUnavailableException. The quota counts the segment files. */
        struct sl_spool_stats st;
        sl_spool_stats(s->spool, &st);
        uint64_t room = st.disk_bytes < s->spool_max_bytes ? s->spool_max_bytes - st.disk_bytes : 0;
        uint64_t need = SPOOL_FILE_HEADER;
        size_t fit = 0;
        bytes = 0;
        while (fit < n && need + recs[fit].len + SL_SPOOL_FRAME_OVERHEAD <= room) {
            need += recs[fit].len + SL_SPOOL_FRAME_OVERHEAD;
            bytes += recs[fit++].len;
        }
        took = fit;
        if (fit > 0) {
            r = stream_append(s, in, fit, bytes, cb, arg);
        }
    }
    sl_free(in);
    if (r < 0 && r != SL_ETHROTTLED) {
        return r;
    }
    took = r == 0 ? took : 0;
    s->stats.throttled += n - took;
    if (took < n) {
        /* The quota is full: deliver what the spool holds now, so that room comes back. */
        s->quota_hit = true;
        stream_fill(s);
    }
    *ret_took = took;
    return took > 0 ? 0 : SL_ETHROTTLED;
}

/* ------------------------------------------------------------------------------------------ */
/* Delivering */

static void stream_retry_cb(uv_timer_t *t)
{
    stream_kick(t->data);
}

static void stream_save_cb(uv_timer_t *t)
{
    struct sl_stream *s = t->data;
    int r = sl_spool_save_released(s->spool, NULL, NULL);
    if (r == SL_EAGAIN) {
        uv_timer_start(&s->save_timer, stream_save_cb, STREAM_SAVE_MS, 0); /* one is in flight */
    }
}

/* The object's records are delivered: the spool may forget them. The released state is saved
 * within STREAM_SAVE_MS (at once when draining), narrowing what a crash repeats. */
static void stream_release_records(struct sl_stream *s, const struct stream_obj *o)
{
    for (size_t i = 0; i < o->n_records; i++) {
        int r = sl_spool_release(s->spool, o->ids[i]);
        if (r < 0) {
            sl_log_warn(STREAM_COMP, s->sc->name, "cannot release record %llu in the spool: %s",
                        (unsigned long long)o->ids[i], sl_strerror(r));
        }
    }
    if (s->draining && sl_stream_held(s) == 0) {
        uv_timer_stop(&s->save_timer);
        stream_save_cb(&s->save_timer);
    } else if (!uv_is_active((uv_handle_t *)&s->save_timer)) {
        uv_timer_start(&s->save_timer, stream_save_cb, STREAM_SAVE_MS, 0);
    }
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
        stream_release_records(s, o);
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
    stream_fill(s); /* memory came back: read what waits in the spool */
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

static size_t stream_closing_count; /* streams freed whose spool is still closing */

int sl_stream_new(const struct sl_stream_conf *sc,
                  const struct sl_stream_env *env,
                  struct sl_stream **ret_s,
                  char *errbuf,
                  size_t errlen)
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
    s->cap_bytes = s->size_bytes + SL_FIREHOSE_CALL_MAX;
    s->spool_max_bytes = env->spool_max_bytes;
    struct sl_spool_opts so = {.dir = env->spool_dir,
                               .name = sc->name,
                               .max_bytes = env->spool_max_bytes,
                               .sync_fn = env->sync_fn,
                               .sync_arg = env->sync_arg};
    int r = sl_spool_open(env->loop, &so, &s->spool, errbuf, errlen);
    if (r < 0) {
        sl_stream_dest_free(s->dest);
        sl_free(s);
        return r;
    }
    uv_timer_init(env->loop, &s->interval_timer);
    uv_timer_init(env->loop, &s->retry_timer);
    uv_timer_init(env->loop, &s->save_timer);
    s->interval_timer.data = s->retry_timer.data = s->save_timer.data = s;
    s->open_handles = 4; /* the timers and the spool */
    struct sl_spool_stats st;
    sl_spool_stats(s->spool, &st);
    if (st.records_live > 0) {
        sl_log_info(STREAM_COMP, sc->name,
                    "%llu records left by the previous run are delivered from the spool",
                    (unsigned long long)st.records_live);
    }
    stream_fill(s);
    *ret_s = s;
    return 0;
}

void sl_stream_drain(struct sl_stream *s)
{
    s->draining = true;
    stream_seal(s);
    stream_fill(s);
    /* A delivery waiting to retry is tried again now. */
    sl_stream_dest_retry_now(s->dest);
    if (uv_is_active((uv_handle_t *)&s->retry_timer)) {
        uv_timer_stop(&s->retry_timer);
        stream_kick(s);
    }
}

size_t sl_stream_held(const struct sl_stream *s)
{
    struct sl_spool_stats st;
    sl_spool_stats(s->spool, &st);
    return (size_t)st.records_live;
}

size_t sl_stream_closing(void)
{
    return stream_closing_count;
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
    struct sl_spool_stats st;
    sl_spool_stats(s->spool, &st);
    const char *keys[18];
    int64_t values[18];
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
    STAT("buffered_records", s->buf_records + s->sealed_records);
    STAT("buffered_bytes", s->buf.len + s->sealed_bytes);
    STAT("spool_records", st.records_live);
    STAT("spool_bytes", st.disk_bytes);
#undef STAT
    sl_log_fields(SL_LOG_INFO, STREAM_COMP, s->sc->name, msg, keys, values, n);
}

static void stream_close_cb(uv_handle_t *h)
{
    struct sl_stream *s = h->data;
    if (--s->open_handles == 0) {
        stream_closing_count--;
        sl_free(s);
    }
}

static void stream_spool_closed_cb(void *arg)
{
    struct sl_stream *s = arg;
    if (--s->open_handles == 0) {
        stream_closing_count--;
        sl_free(s);
    }
}

/* Frees what is held in memory, the destination, and closes the spool (which keeps what was
 * not delivered) and the timers; the stream goes once all are closed. Never during a
 * delivery. */
static void stream_release(struct sl_stream *s)
{
    assert(!s->writing);
    size_t left = sl_stream_held(s);
    if (left > 0) {
        sl_log_warn(STREAM_COMP, s->sc->name,
                    "exiting with %zu records not delivered; they stay in the spool and are "
                    "delivered at the next start",
                    left);
    }
    while (s->head) {
        struct stream_obj *o = s->head;
        s->head = o->next;
        stream_obj_free(o);
    }
    sl_buf_fini(&s->buf);
    sl_free(s->buf_recs);
    sl_free(s->buf_ids);
    s->buf_recs = NULL;
    s->buf_ids = NULL;
    sl_stream_dest_free(s->dest);
    s->dest = NULL;
    uv_close((uv_handle_t *)&s->interval_timer, stream_close_cb);
    uv_close((uv_handle_t *)&s->retry_timer, stream_close_cb);
    uv_close((uv_handle_t *)&s->save_timer, stream_close_cb);
    /* Appends in flight complete first (their puts are answered), then the released state is
     * saved. */
    sl_spool_close(s->spool, stream_spool_closed_cb, s);
}

void sl_stream_free(struct sl_stream *s)
{
    if (!s) {
        return;
    }
    s->closing = true;
    stream_closing_count++;
    uv_timer_stop(&s->interval_timer);
    uv_timer_stop(&s->retry_timer);
    uv_timer_stop(&s->save_timer);
    if (s->writing) {
        s->freed = true; /* released by the delivery's callback */
        sl_stream_dest_stop(s->dest);
        return;
    }
    stream_release(s);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* stream.c: one Firehose-style delivery stream: the records put through the ingest API are
 * appended to the stream's durable spool (spool.h) and acknowledged once fsynced; the buffer
 * reads them back from the spool and delivers them as one object when BufferingHints.SizeInMBs
 * or IntervalInSeconds is reached, whichever comes first (IntervalInSeconds 0: each put at
 * once; the interval counts from the oldest record's arrival, so records replayed after a crash
 * keep their time), and everything is delivered on drain. Records of an object are concatenated
 * as they came (Firehose adds no delimiter). It owns the record's life: appended (put), read
 * into the buffer, sealed into an object, written, then released in the spool (never before its
 * object is written, so a crash repeats records and never loses an acknowledged one), with the
 * released state saved every STREAM_SAVE_MS and at close. It also owns the sealed objects
 * waiting to be written (in order, one write in flight), retrying a failed write with backoff
 * (a record is never dropped while the stream lives), and the stream's counters. Loop thread;
 * the write itself runs on libuv's thread pool.
 *
 * stream_file.c's sl_stream_file_key / sl_stream_file_write are the whole of the destination
 * (Firehose's key expressions, GZIP and the S3 API replace them).
 *
 * Backpressure is the spool's quota (spool_max_bytes): a put that does not fit is refused
 * (ServiceUnavailableException, which the SDKs retry) with nothing stored, and what is buffered
 * is delivered at once so that room comes back. Memory is bounded apart from the spool: the
 * buffer reads from the spool only while records held in memory (buffered plus sealed) stay
 * under twice SizeInMBs plus one full PutRecordBatch. */
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
#include "stream_file.h"

#define STREAM_COMP         "stream"
#define STREAM_RETRY_MIN_MS 500
#define STREAM_RETRY_MAX_MS 30000
#define STREAM_MIB          (1024 * 1024)
#define STREAM_SAVE_MS      1000 /* the released state is saved this often while records go */
#define STREAM_IDS_GROW     4096
#define SPOOL_FILE_HEADER   8 /* a segment file's header: counted when a put starts one */

/* A sealed object: its records, its key (fixed when sealed, so a retry writes the same
 * object), and the result of its last write. */
struct stream_obj {
    struct stream_obj *next;
    struct sl_stream *s;
    struct sl_buf data;
    struct sl_buf key;
    size_t n_records;
    uint64_t *ids; /* the spool ids of its records, released once it is written */
    uv_work_t work;
    int result;
    char err[256];
};

struct sl_stream {
    const struct sl_stream_conf *sc;
    struct sl_stream_env env;
    uv_timer_t interval_timer;
    uv_timer_t retry_timer;
    uv_timer_t save_timer;
    int open_handles;
    struct sl_spool *spool;
    uint64_t spool_max_bytes;
    struct sl_buf buf; /* records read from the spool, not yet sealed */
    size_t buf_records;
    uint64_t *buf_ids; /* their spool ids */
    size_t ids_cap;
    size_t appending;        /* records appended to the spool and not yet acknowledged */
    int64_t buf_oldest_wall; /* arrival (Unix ms) of the oldest record in buf */
    struct stream_obj *head; /* sealed, oldest first; head is the one being written */
    struct stream_obj *tail;
    size_t sealed_bytes;
    size_t sealed_records;
    bool writing; /* head's write is on the thread pool */
    bool draining;
    bool filling;
    bool quota_hit;        /* a put was refused for the quota: deliver what the spool holds now */
    bool released_unsaved; /* released since the last save of the released state */
    bool closing;          /* sl_stream_free was called */
    bool freed;            /* sl_stream_free was called during a write */
    int64_t retry_ms;
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
    sl_buf_fini(&o->key);
    sl_free(o->ids);
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
    o->ids = s->buf_ids;
    sl_buf_init(&s->buf);
    s->buf_records = 0;
    s->buf_ids = NULL;
    s->ids_cap = 0;
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
    memcpy(s->buf.data + s->buf.len, rec->data, rec->len);
    s->buf.len += rec->len;
    s->buf.data[s->buf.len] = '\0';
    s->buf_ids[s->buf_records++] = rec->id;
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
        if (s->ids_cap - s->buf_records < STREAM_IDS_GROW) {
            uint64_t *ids = sl_realloc(s->buf_ids, (s->ids_cap + STREAM_IDS_GROW) * sizeof(*ids));
            if (ids) {
                s->buf_ids = ids;
                s->ids_cap += STREAM_IDS_GROW;
            }
        }
        if (s->ids_cap == s->buf_records || sl_buf_reserve(&s->buf, want) < 0) {
            /* Out of memory: the records stay in the spool; the interval tries again. */
            if (!uv_is_active((uv_handle_t *)&s->interval_timer)) {
                uv_timer_start(&s->interval_timer, stream_interval_cb, STREAM_RETRY_MIN_MS, 0);
            }
            break;
        }
        int r = sl_spool_read(s->spool, s->ids_cap - s->buf_records, room, stream_read_cb, s);
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
/* Writing */

static void stream_save_cb(uv_timer_t *t)
{
    struct sl_stream *s = t->data;
    int r = sl_spool_save_released(s->spool, NULL, NULL);
    if (r == SL_EAGAIN) {
        uv_timer_start(&s->save_timer, stream_save_cb, STREAM_SAVE_MS, 0);
    } else {
        s->released_unsaved = false;
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
    s->released_unsaved = true;
    if (s->draining && sl_stream_held(s) == 0) {
        uv_timer_stop(&s->save_timer);
        stream_save_cb(&s->save_timer);
    } else if (!uv_is_active((uv_handle_t *)&s->save_timer)) {
        uv_timer_start(&s->save_timer, stream_save_cb, STREAM_SAVE_MS, 0);
    }
}

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
        stream_release_records(s, o);
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
        stream_fill(s); /* memory came back: read what waits in the spool */
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

static size_t stream_closing_count; /* streams freed whose spool is still closing */

int sl_stream_new(const struct sl_stream_conf *sc,
                  const struct sl_stream_env *env,
                  struct sl_stream **ret_s,
                  char *errbuf,
                  size_t errlen)
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
    s->spool_max_bytes = env->spool_max_bytes;
    struct sl_spool_opts so = {.dir = env->spool_dir,
                               .name = sc->name,
                               .max_bytes = env->spool_max_bytes,
                               .sync_fn = env->sync_fn,
                               .sync_arg = env->sync_arg};
    int r = sl_spool_open(env->loop, &so, &s->spool, errbuf, errlen);
    if (r < 0) {
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
    /* A write waiting to retry is tried again now. */
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

void sl_stream_log_stats(const struct sl_stream *s, const char *msg)
{
    struct sl_spool_stats st;
    sl_spool_stats(s->spool, &st);
    const char *keys[] = {"IncomingRecords",      "IncomingBytes",      "ThrottledRecords",
                          "DeliveryToS3.Records", "DeliveryToS3.Bytes", "DeliveryToS3.Success",
                          "failed_writes",        "buffered_records",   "buffered_bytes",
                          "spool_records",        "spool_bytes"};
    int64_t values[] = {
        (int64_t)s->stats.incoming_records,
        (int64_t)s->stats.incoming_bytes,
        (int64_t)s->stats.throttled,
        (int64_t)s->stats.delivered,
        (int64_t)s->stats.delivered_bytes,
        (int64_t)s->stats.objects,
        (int64_t)s->stats.failed_writes,
        (int64_t)(s->buf_records + s->sealed_records),
        (int64_t)(s->buf.len + s->sealed_bytes),
        (int64_t)st.records_live,
        (int64_t)st.disk_bytes,
    };
    sl_log_fields(SL_LOG_INFO, STREAM_COMP, s->sc->name, msg, keys, values, SL_ARRAY_LEN(keys));
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

/* Frees what is held in memory and closes the spool (which keeps what was not delivered) and
 * the timers; the stream goes once all are closed. Never during a write. */
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
    sl_free(s->buf_ids);
    s->buf_ids = NULL;
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
        s->freed = true; /* released by the write's completion */
        return;
    }
    stream_release(s);
}

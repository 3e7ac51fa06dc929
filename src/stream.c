/* SPDX-License-Identifier: Apache-2.0 */
/* stream.c: one Firehose-style delivery stream: the records put through the ingest API (or by
 * a mapping feeding the stream, stream_feed.c, through sl_stream_put_in) are
 * appended to the stream's durable spool (spool.h) and acknowledged once fsynced; they are read
 * back from the spool, through the transform stage when a Lambda processor is configured
 * (stream_xform.c), into the buffers of their destination partition (stream_part.c: one
 * without dynamic partitioning), each delivered as one object when BufferingHints.SizeInMBs or
 * IntervalInSeconds is reached, whichever comes first (IntervalInSeconds 0: each put at once;
 * the interval counts from the oldest record's arrival, so records replayed after a crash keep
 * their time), and everything is delivered on drain. Records of an object are concatenated as
 * they came (Firehose adds no delimiter; AppendDelimiterToRecord adds its own).
 *
 * It owns the record's life: appended (put), read, transformed, keyed, sealed into an object,
 * delivered, then released in the spool, never before everything derived from it is delivered
 * (its transformed bytes, or its error record under ErrorOutputPrefix: processing-failed from
 * the transform, partitioning-failed when its partition keys cannot be extracted); a record the
 * function Dropped is released at once (the spool releases in any order). So a crash repeats
 * records and never loses an acknowledged one; the released state is saved every
 * STREAM_SAVE_MS and at close. It owns the partition keys of each record (the
 * MetadataExtraction query on the transformed bytes, and the function's partitionKeys), the
 * sealed objects waiting to be delivered (in order, one in flight), and the counters
 * (stream_stats.c writes them on the progress line). Loop thread.
 *
 * stream_dest.h's sl_stream_dest_deliver_obj is the whole of the destination: one sealed
 * object's records, its oldest arrival and partition keys in, one callback out ("this object
 * is done", or not). The destination names the object (Firehose's keys), writes it (S3 API or
 * file:///dir, GZIP or not; or the HTTP endpoint with its backup) and retries it itself.
 *
 * Backpressure is the spool's quota (spool_max_bytes): a put that does not fit is refused
 * (ServiceUnavailableException, which the SDKs retry) with nothing stored, and what the spool
 * holds is delivered at once so that room comes back. Memory is bounded apart from the spool:
 * records are read from the spool only while those held in memory (in the transform, in open
 * partitions and sealed) stay under SizeInMBs plus one full PutRecordBatch (the object being
 * written, then the next: the spool keeps the rest on disk) plus, with a transform, twice its
 * BufferSizeInMBs. */
#include "stream.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "fh_processing.h"
#include "firehose_api.h"
#include "log.h"
#include "s3_keys.h"
#include "spool.h"
#include "stream_dest.h"
#include "stream_int.h"
#include "stream_key.h"
#include "stream_part.h"
#include "stream_xform.h"

#define STREAM_COMP         "stream"
#define STREAM_RETRY_MIN_MS 500
#define STREAM_MIB          (1024 * 1024)
#define STREAM_SAVE_MS      1000 /* the released state is saved this often while records go */
#define STREAM_READ_RECORDS 4096 /* records one spool read hands out at most */
#define STREAM_MAX_PARTS    500  /* open partitions (Firehose's active partition limit) */
#define SPOOL_FILE_HEADER   8    /* a segment file's header: counted when a put starts one */

static void stream_kick(struct sl_stream *s);
static void stream_release(struct sl_stream *s);
static void stream_fill(struct sl_stream *s);

/* ------------------------------------------------------------------------------------------ */
/* Buffering */

/* A sealed object, queued for delivery. */
static void stream_emit(void *arg, struct sl_stream_obj *o)
{
    struct sl_stream *s = arg;
    s->sealed_bytes += o->data.len;
    s->sealed_records += o->n_records;
    o->next = NULL;
    if (s->tail) {
        s->tail->next = o;
    } else {
        s->head = o;
    }
    s->tail = o;
}

static void stream_interval_cb(uv_timer_t *t)
{
    struct sl_stream *s = t->data;
    sl_stream_parts_seal_due(s->parts, sl_clock_wall_ms(s->env.clock), stream_emit, s);
    stream_kick(s);
    stream_fill(s);
}

/* Arms the interval for the partition due first (none open: stopped). */
static void stream_arm(struct sl_stream *s)
{
    int64_t due = sl_stream_parts_next_due(s->parts);
    if (due == INT64_MAX) {
        uv_timer_stop(&s->interval_timer);
        return;
    }
    int64_t wait = due - sl_clock_wall_ms(s->env.clock);
    uv_timer_start(&s->interval_timer, stream_interval_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

size_t sl_stream_mem_bytes(const struct sl_stream *s)
{
    return (s->xform ? sl_stream_xform_bytes(s->xform) : 0) + sl_stream_parts_bytes(s->parts) +
           s->sealed_bytes;
}

static void stream_add(struct sl_stream *s,
                       const struct sl_stream_part_key *key,
                       const void *data,
                       size_t len,
                       bool delimit,
                       int64_t arrival_ms,
                       uint64_t id)
{
    const struct sl_fh_processing *p = s->sc->processing;
    bool d = delimit && p && p->append_delimiter;
    int r = sl_stream_parts_add(s->parts, key, data, len, d ? p->delimiter : NULL,
                                d ? p->delimiter_len : 0, arrival_ms, id, stream_emit, s);
    if (r < 0) {
        /* Not buffered and not released: delivered after a restart. */
        sl_log_error(STREAM_COMP, s->sc->name,
                     "out of memory buffering record %llu; it stays in the spool",
                     (unsigned long long)id);
    }
}

/* A record (read from the spool, or transformed) into the partition of its keys (stream_key.c);
 * when they cannot be had, its error record goes under ErrorOutputPrefix instead. */
static void stream_route(struct sl_stream *s,
                         const void *data,
                         size_t len,
                         int64_t arrival_ms,
                         uint64_t id,
                         const struct sl_strmap *lambda)
{
    struct sl_stream_part_key key = {.id = "", .lambda = lambda};
    if (!s->sc->dynamic_partitioning) {
        stream_add(s, &key, data, len, true, arrival_ms, id);
        return;
    }
    const void *line = NULL;
    size_t line_len = 0;
    int r = sl_stream_key_of(&s->key, data, len, arrival_ms, sl_clock_wall_ms(s->env.clock), lambda,
                             &key, &line, &line_len);
    if (r < 0) {
        sl_log_error(STREAM_COMP, s->sc->name,
                     "out of memory keying record %llu; it stays in the spool",
                     (unsigned long long)id);
    } else if (r == 0) {
        stream_add(s, &key, data, len, true, arrival_ms, id);
    } else {
        s->stats.partition_failed++;
        stream_add(s, &key, line, line_len, false, arrival_ms, id);
    }
}

/* One durable record read back from the spool: to the transform, or to its partition. */
static void stream_read_cb(void *arg, const struct sl_spool_rec *rec)
{
    struct sl_stream *s = arg;
    if (!s->xform) {
        stream_route(s, rec->data, rec->len, rec->arrival_ms, rec->id, NULL);
        return;
    }
    if (sl_stream_xform_add(s->xform, rec) < 0) {
        sl_log_error(STREAM_COMP, s->sc->name,
                     "out of memory buffering record %llu for the transform; it stays in the "
                     "spool",
                     (unsigned long long)rec->id);
    }
}

/* Reads durable records from the spool while memory allows (into the transform, or the
 * partitions, which seal at SizeInMBs), seals everything at once when IntervalInSeconds is 0 or
 * draining, and arms the interval for the partition due first. */
static void stream_fill(struct sl_stream *s)
{
    if (s->closing || s->filling) {
        return;
    }
    s->filling = true;
    while (sl_spool_has_unread(s->spool)) {
        size_t held = sl_stream_mem_bytes(s);
        if (held >= (size_t)s->cap_bytes) {
            break; /* a write's (or a transform's) completion calls again */
        }
        size_t room = (size_t)s->cap_bytes - held;
        if (s->xform) {
            size_t xr = sl_stream_xform_room(s->xform);
            if (xr == 0) {
                break; /* the transform's buffer is full: its batch's end calls again */
            }
            room = xr < room ? xr : room;
        } else if (room > (size_t)s->size_bytes) {
            room = (size_t)s->size_bytes;
        }
        int r = sl_spool_read(s->spool, STREAM_READ_RECORDS, room, stream_read_cb, s);
        if (r < 0) {
            sl_log_error(STREAM_COMP, s->sc->name,
                         "cannot read the spool: %s; its records are delivered after a restart",
                         sl_strerror(r));
            break;
        }
        if (r == 0) {
            break;
        }
    }
    if (sl_stream_mem_bytes(s) >= (size_t)s->cap_bytes && !s->head) {
        /* Memory is full of open partitions and nothing is being written: the partition due
         * first goes now, so that records keep flowing (many partitions, none at SizeInMBs). */
        sl_stream_parts_seal_due(s->parts, sl_stream_parts_next_due(s->parts), stream_emit, s);
    }
    if (s->xform && (s->draining || s->quota_hit)) {
        sl_stream_xform_flush(s->xform, s->draining);
    }
    if (s->draining || s->sc->interval_s == 0 || s->quota_hit) {
        sl_stream_parts_seal_due(s->parts, INT64_MAX, stream_emit, s);
        s->quota_hit = s->quota_hit && (sl_spool_has_unread(s->spool) || s->appending > 0);
    }
    stream_arm(s);
    stream_kick(s);
    s->filling = false;
}

/* ------------------------------------------------------------------------------------------ */
/* The transform's outcomes */

static void stream_xform_ok(void *arg, const struct sl_fh_rec *in, const struct sl_fh_out *out)
{
    struct sl_stream *s = arg;
    s->stats.transform_ok++;
    stream_route(s, out->data, out->len, in->arrival_ms, in->tag,
                 out->lambda_keys.n ? &out->lambda_keys : NULL);
}

static void stream_xform_dropped(void *arg, const struct sl_fh_rec *in)
{
    struct sl_stream *s = arg;
    s->stats.transform_dropped++;
    int r = sl_spool_release(s->spool, in->tag); /* nothing derived from it to wait for */
    if (r < 0) {
        sl_log_warn(STREAM_COMP, s->sc->name, "cannot release record %llu in the spool: %s",
                    (unsigned long long)in->tag, sl_strerror(r));
    }
}

static void stream_xform_failed(void *arg, const struct sl_fh_rec *in, const char *line, size_t len)
{
    struct sl_stream *s = arg;
    s->stats.transform_failed++;
    struct sl_stream_part_key key = {.id = "", .error_type = SL_S3_PROCESSING_FAILED};
    stream_add(s, &key, line, len, false, in->arrival_ms, in->tag);
}

static void stream_xform_done(void *arg)
{
    struct sl_stream *s = arg;
    if (s->freed) {
        if (!s->writing) {
            stream_release(s);
        }
        return;
    }
    stream_fill(s); /* seals what is due, arms the interval, reads what waits */
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

int sl_stream_put_in(struct sl_stream *s,
                     const struct sl_spool_in *in,
                     size_t n,
                     size_t *ret_took,
                     sl_stream_put_cb cb,
                     void *arg)
{
    *ret_took = 0;
    if (s->closing) {
        return SL_ECANCELED;
    }
    size_t bytes = 0;
    uint64_t meta_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += in[i].len;
        meta_bytes += in[i].meta_len;
    }
    size_t took = n;
    int r = stream_append(s, in, n, bytes, cb, arg);
    if (r == SL_EINVAL &&
        bytes + meta_bytes + n * SL_SPOOL_FRAME_OVERHEAD + SPOOL_FILE_HEADER > s->spool_max_bytes) {
        r = SL_ETHROTTLED; /* the call is larger than the whole quota: some of it may fit */
    }
    if (r == SL_ETHROTTLED && n > 1) {
        /* As AWS does under throttling: the first records that fit are taken, the others
         * answered ServiceUnavailableException. The quota counts the segment files. */
        struct sl_spool_stats st;
        sl_spool_stats(s->spool, &st);
        uint64_t room = st.room_bytes; /* a segment all delivered is rolled away by the append */
        uint64_t need = SPOOL_FILE_HEADER;
        size_t fit = 0;
        bytes = 0;
        while (fit < n && need + in[fit].len + in[fit].meta_len + SL_SPOOL_FRAME_OVERHEAD <= room) {
            need += in[fit].len + in[fit].meta_len + SL_SPOOL_FRAME_OVERHEAD;
            bytes += in[fit++].len;
        }
        took = fit;
        if (fit > 0) {
            r = stream_append(s, in, fit, bytes, cb, arg);
        }
    }
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
    for (size_t i = 0; i < n; i++) {
        in[i] = (struct sl_spool_in){
            .data = recs[i].data, .len = (uint32_t)recs[i].len, .arrival_ms = now};
    }
    int r = sl_stream_put_in(s, in, n, ret_took, cb, arg);
    sl_free(in);
    return r;
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
static void stream_release_records(struct sl_stream *s, const struct sl_stream_obj *o)
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
    struct sl_stream_obj *o = s->head;
    s->writing = false;
    if (err == 0) {
        s->head = o->next;
        if (!s->head) {
            s->tail = NULL;
        }
        s->sealed_bytes -= o->data.len;
        s->sealed_records -= o->n_records;
        stream_release_records(s, o);
        if (!o->error_type) {
            s->stats.delivered += o->n_records;
            s->stats.delivered_bytes += o->data.len;
        }
        s->stats.objects++;
        sl_log_debug(STREAM_COMP, s->sc->name, "delivered %zu %s (%zu bytes)", o->n_records,
                     o->error_type ? o->error_type : "records", o->data.len);
        sl_stream_obj_free(o);
    } else if (!s->freed) {
        sl_log_warn(STREAM_COMP, s->sc->name, "cannot deliver %zu records: %s, retrying",
                    o->n_records, sl_strerror(err));
        uv_timer_start(&s->retry_timer, stream_retry_cb, STREAM_RETRY_MIN_MS, 0);
    }
    if (s->freed) {
        if (!s->xform || !sl_stream_xform_busy(s->xform)) {
            stream_release(s);
        }
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
    struct sl_stream_obj *o = s->head;
    struct sl_stream_dest_obj d = {
        .recs = o->recs,
        .n = o->n_records,
        .oldest_ms = o->oldest_ms,
        .query = o->query.n ? &o->query : NULL,
        .lambda = o->lambda.n ? &o->lambda : NULL,
        .error_type = o->error_type,
    };
    int r = sl_stream_dest_deliver_obj(s->dest, &d, stream_delivered_cb, s);
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
    sl_stream_key_init(&s->key, sc->processing ? sc->processing->query : NULL, sc->layout);
    s->size_bytes = sc->size_mb * STREAM_MIB;
    s->cap_bytes = s->size_bytes + SL_FIREHOSE_CALL_MAX;
    s->spool_max_bytes = env->spool_max_bytes;
    /* Without dynamic partitioning the one buffer is reserved at once (SizeInMBs plus one
     * record), so it is never copied to grow; pages not written are not resident. */
    struct sl_stream_parts_conf pc = {
        .size_bytes = s->size_bytes,
        .interval_ms = sc->interval_s * 1000,
        .max_parts = STREAM_MAX_PARTS,
        .reserve_bytes =
            sc->dynamic_partitioning ? 0 : (size_t)s->size_bytes + SL_SPOOL_RECORD_MAX_BYTES,
    };
    int r = sl_stream_parts_new(&pc, &s->parts);
    const struct sl_fh_processing *proc = sc->processing;
    if (r == 0 && proc && proc->lambda.enabled && !env->fn) {
        (void)snprintf(errbuf, errlen, "%s: no function for its Lambda processor", sc->name);
        r = SL_EINVAL; /* never deliver untransformed what the file says to transform */
    }
    if (r == 0 && proc && proc->lambda.enabled) {
        static const struct sl_stream_xform_ops ops = {
            .ok = stream_xform_ok,
            .dropped = stream_xform_dropped,
            .failed = stream_xform_failed,
            .done = stream_xform_done,
        };
        struct sl_stream_xform_env xenv = {
            .loop = env->loop,
            .clock = env->clock,
            .conf = &proc->lambda,
            .fn = env->fn,
            .stream_arn = env->stream_arn ? env->stream_arn : "",
            .region = env->region,
            .source_kinesis_arn = sc->kinesis_arn,
            .inst = sc->name,
            .retry = env->retry,
            .ops = &ops,
            .arg = s,
        };
        r = sl_stream_xform_new(&xenv, &s->xform);
        s->cap_bytes += 2 * proc->lambda.buffer_bytes;
    }
    if (r < 0) {
        sl_stream_parts_free(s->parts);
        sl_stream_dest_free(s->dest);
        sl_free(s);
        return r;
    }
    struct sl_spool_opts so = {.dir = env->spool_dir,
                               .name = sc->name,
                               .max_bytes = env->spool_max_bytes,
                               .sync_fn = env->sync_fn,
                               .sync_arg = env->sync_arg};
    r = sl_spool_open(env->loop, &so, &s->spool, errbuf, errlen);
    if (r < 0) {
        sl_stream_xform_free(s->xform);
        sl_stream_parts_free(s->parts);
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
    stream_fill(s); /* seals every partition, and the transform sends what it buffers */
    /* A delivery waiting to retry is tried again now. */
    sl_stream_dest_retry_now(s->dest);
    if (uv_is_active((uv_handle_t *)&s->retry_timer)) {
        uv_timer_stop(&s->retry_timer);
        stream_kick(s);
    }
}

void sl_stream_cancel(struct sl_stream *s)
{
    if (s->xform) {
        sl_stream_xform_cancel(s->xform);
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

const char *sl_stream_name(const struct sl_stream *s)
{
    return s->sc->name;
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
    assert(!s->writing && !(s->xform && sl_stream_xform_busy(s->xform)));
    size_t left = sl_stream_held(s);
    if (left > 0) {
        sl_log_warn(STREAM_COMP, s->sc->name,
                    "exiting with %zu records not delivered; they stay in the spool and are "
                    "delivered at the next start",
                    left);
    }
    while (s->head) {
        struct sl_stream_obj *o = s->head;
        s->head = o->next;
        sl_stream_obj_free(o);
    }
    sl_stream_parts_free(s->parts);
    s->parts = NULL;
    sl_stream_xform_free(s->xform);
    s->xform = NULL;
    sl_stream_key_fini(&s->key);
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
    bool transforming = s->xform && sl_stream_xform_busy(s->xform);
    if (s->writing || transforming) {
        s->freed = true; /* released by the last of the two callbacks */
        if (s->writing) {
            sl_stream_dest_stop(s->dest);
        }
        if (transforming) {
            sl_stream_xform_cancel(s->xform);
        }
        return;
    }
    stream_release(s);
}

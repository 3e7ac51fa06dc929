/* SPDX-License-Identifier: Apache-2.0 */
/* stream_xform.c: a delivery stream's transform stage (stream_xform.h). It owns the Lambda
 * processor's buffer (the records read from the spool, copied, until BufferSizeInMBs or
 * BufferIntervalInSeconds), the one batch in flight through fh_transform.c, and the routing of
 * each record's outcome to the stream (ok, dropped, failed with its processing-failed line).
 * It never releases a spool record itself and never drops one: the stream does both, from the
 * outcomes; a canceled batch reports none, so its records stay in the spool. It logs the
 * batches that fail records (fh_transform.c logs each failed invocation). Loop thread. */
#include "stream_xform.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"
#include "fh_kmeta.h"
#include "spool.h"

#define XFORM_COMP "stream"

/* Records gathered for one batch: their bytes and their sl_fh_rec (data as offsets into
 * bytes until the batch starts). A record's Kinesis metadata (fh_kmeta.h), when it has some,
 * follows its data in bytes (meta_lens) and is decoded into kmeta when the batch starts. */
struct xform_buf {
    struct sl_buf bytes;
    struct sl_fh_rec *recs;
    uint32_t *meta_lens;
    struct sl_fh_kinesis_meta *kmeta;
    size_t n;
    size_t cap;
    int64_t oldest_ms;
};

struct sl_stream_xform {
    struct sl_stream_xform_env env;
    const struct sl_stream_xform_ops *ops;
    struct sl_fh_transform *t;
    uv_timer_t timer; /* BufferIntervalInSeconds of the buffer's first record */
    struct xform_buf buf;
    struct xform_buf flight; /* the batch in flight's records */
    struct sl_fh_batch *batch;
    uint64_t invocations;
    bool due;      /* the interval passed while a batch was in flight */
    bool flushing; /* drain: everything goes at once */
    bool canceled;
};

static void xform_buf_fini(struct xform_buf *b)
{
    sl_buf_fini(&b->bytes);
    sl_free(b->recs);
    sl_free(b->meta_lens);
    sl_free(b->kmeta);
    memset(b, 0, sizeof(*b));
}

int sl_stream_xform_new(const struct sl_stream_xform_env *env, struct sl_stream_xform **ret_x)
{
    struct sl_stream_xform *x = sl_calloc(1, sizeof(*x));
    if (!x) {
        return SL_ENOMEM;
    }
    x->env = *env;
    x->ops = env->ops;
    struct sl_fh_transform_env tenv = {
        .loop = env->loop,
        .clock = env->clock,
        .fn = env->fn,
        .stream_arn = env->stream_arn,
        .region = env->region ? env->region : "us-east-1",
        /* KinesisStreamAsSource: sourceKinesisStreamArn, and each record's
         * kinesisRecordMetadata from the spool; direct puts have neither. */
        .source_kinesis_arn = env->source_kinesis_arn,
        .inst = env->inst,
        .retry = env->retry,
        .rand = env->rand,
    };
    int r = sl_fh_transform_new(env->conf, &tenv, &x->t);
    if (r < 0) {
        sl_free(x);
        return r;
    }
    /* copied by the transform; inst is kept for this stage's own logs */
    x->env.stream_arn = x->env.region = x->env.source_kinesis_arn = NULL;
    uv_timer_init(env->loop, &x->timer);
    x->timer.data = x;
    sl_buf_init(&x->buf.bytes);
    *ret_x = x;
    return 0;
}

static void xform_start(struct sl_stream_xform *x);

static void xform_timer_cb(uv_timer_t *timer)
{
    struct sl_stream_xform *x = timer->data;
    x->due = true;
    xform_start(x);
}

/* The batch's outcomes, one per record in input order, to the stream. */
static void xform_route(struct sl_stream_xform *x, struct sl_fh_batch *b)
{
    struct sl_buf line;
    sl_buf_init(&line);
    size_t failed = 0;
    for (size_t i = 0; i < x->flight.n; i++) {
        const struct sl_fh_rec *in = &x->flight.recs[i];
        const struct sl_fh_out *out = sl_fh_batch_out(b, i);
        if (out->result == SL_FH_OK) {
            x->ops->ok(x->env.arg, in, out);
            continue;
        }
        if (out->result == SL_FH_DROPPED) {
            x->ops->dropped(x->env.arg, in);
            continue;
        }
        failed++;
        sl_buf_truncate(&line, 0);
        if (sl_fh_transform_error_line(&line, in, out, x->env.conf->lambda_arn) < 0) {
            /* Not written and not released: delivered (transformed again) after a restart. */
            sl_log_error(XFORM_COMP, x->env.inst,
                         "out of memory writing record %llu's processing-failed line; it stays "
                         "in the spool",
                         (unsigned long long)in->tag);
            continue;
        }
        x->ops->failed(x->env.arg, in, line.data, line.len);
    }
    sl_buf_fini(&line);
    if (failed > 0) {
        sl_log_warn(XFORM_COMP, x->env.inst,
                    "transform failed %zu of %zu records; they go under ErrorOutputPrefix as "
                    "processing-failed",
                    failed, x->flight.n);
    }
}

static void xform_batch_cb(void *arg, struct sl_fh_batch *b, int err)
{
    struct sl_stream_xform *x = arg;
    x->invocations += sl_fh_batch_invocations(b);
    if (err == 0) {
        xform_route(x, b);
    }
    /* SL_ECANCELED: no outcome, the records stay in the spool for the next start. */
    x->batch = NULL;
    sl_fh_batch_free(b);
    xform_buf_fini(&x->flight);
    if (!x->canceled) {
        xform_start(x);
    }
    x->ops->done(x->env.arg);
}

/* Starts a batch with the buffer when it is full, due or draining, and none is in flight. */
static void xform_start(struct sl_stream_xform *x)
{
    struct xform_buf *b = &x->buf;
    if (x->batch || x->canceled || b->n == 0) {
        return;
    }
    bool full = (int64_t)b->bytes.len >= x->env.conf->buffer_bytes;
    if (!full && !x->due && !x->flushing) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct sl_fh_rec *rec = &b->recs[i];
        rec->data = b->bytes.data + (uintptr_t)rec->data;
        rec->kinesis = NULL;
        if (b->meta_lens[i] > 0 && sl_fh_kmeta_decode((const char *)rec->data + rec->len,
                                                      b->meta_lens[i], &b->kmeta[i]) == 0) {
            rec->kinesis = &b->kmeta[i];
        }
    }
    x->flight = *b;
    memset(b, 0, sizeof(*b));
    sl_buf_init(&b->bytes);
    x->due = false;
    uv_timer_stop(&x->timer);
    int r = sl_fh_transform_start(x->t, x->flight.recs, x->flight.n, xform_batch_cb, x, &x->batch);
    if (r < 0) {
        /* Out of memory: the records go back to the buffer and are tried at the interval. */
        for (size_t i = 0; i < x->flight.n; i++) {
            x->flight.recs[i].data =
                (const void *)(uintptr_t)((const char *)x->flight.recs[i].data -
                                          x->flight.bytes.data);
        }
        *b = x->flight;
        memset(&x->flight, 0, sizeof(x->flight));
        uv_timer_start(&x->timer, xform_timer_cb, 500, 0);
    }
}

int sl_stream_xform_add(struct sl_stream_xform *x, const struct sl_spool_rec *rec)
{
    struct xform_buf *b = &x->buf;
    if (x->canceled) {
        return SL_ECANCELED;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        struct sl_fh_rec *recs = sl_realloc(b->recs, cap * sizeof(*recs));
        if (recs) {
            b->recs = recs;
        }
        uint32_t *lens = recs ? sl_realloc(b->meta_lens, cap * sizeof(*lens)) : NULL;
        if (lens) {
            b->meta_lens = lens;
        }
        struct sl_fh_kinesis_meta *km = lens ? sl_realloc(b->kmeta, cap * sizeof(*km)) : NULL;
        if (!km) {
            return SL_ENOMEM;
        }
        b->kmeta = km;
        b->cap = cap;
    }
    size_t at = b->bytes.len;
    if (sl_buf_append(&b->bytes, rec->data, rec->len) < 0 ||
        (rec->meta_len > 0 && sl_buf_append(&b->bytes, rec->meta, rec->meta_len) < 0)) {
        b->bytes.len = at;
        return SL_ENOMEM;
    }
    if (b->n == 0 || rec->arrival_ms < b->oldest_ms) {
        b->oldest_ms = rec->arrival_ms;
    }
    b->recs[b->n++] =
        (struct sl_fh_rec){.data = (const void *)(uintptr_t)at,
                           .len = rec->len,
                           .arrival_ms = rec->arrival_ms,
                           .tag = rec->id,
                           .kinesis = NULL /* decoded from the metadata at the start */};
    b->meta_lens[b->n - 1] = rec->meta_len;
    if (b->n == 1 && !uv_is_active((uv_handle_t *)&x->timer)) {
        /* BufferIntervalInSeconds 0: on the next loop turn, with what this read brought. */
        uv_timer_start(&x->timer, xform_timer_cb, (uint64_t)x->env.conf->buffer_interval_ms, 0);
    }
    xform_start(x);
    return 0;
}

size_t sl_stream_xform_room(const struct sl_stream_xform *x)
{
    size_t cap = (size_t)x->env.conf->buffer_bytes;
    return x->buf.bytes.len < cap ? cap - x->buf.bytes.len : 0;
}

size_t sl_stream_xform_bytes(const struct sl_stream_xform *x)
{
    /* In flight: the input, and about as much again for the outcomes. */
    return x->buf.bytes.len + 2 * x->flight.bytes.len;
}

size_t sl_stream_xform_records(const struct sl_stream_xform *x)
{
    return x->buf.n + x->flight.n;
}

int64_t sl_stream_xform_oldest(const struct sl_stream_xform *x)
{
    int64_t a = x->buf.n ? x->buf.oldest_ms : -1;
    int64_t b = x->flight.n ? x->flight.oldest_ms : -1;
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

uint64_t sl_stream_xform_invocations(const struct sl_stream_xform *x)
{
    return x->invocations;
}

void sl_stream_xform_flush(struct sl_stream_xform *x, bool drain)
{
    x->flushing = x->flushing || drain;
    x->due = x->buf.n > 0;
    xform_start(x);
}

void sl_stream_xform_cancel(struct sl_stream_xform *x)
{
    x->canceled = true;
    uv_timer_stop(&x->timer);
    xform_buf_fini(&x->buf);
    if (x->batch) {
        sl_fh_transform_stop(x->t);
        sl_function_stop(x->env.fn);
    }
}

bool sl_stream_xform_busy(const struct sl_stream_xform *x)
{
    return x->batch != NULL;
}

static void xform_close_cb(uv_handle_t *h)
{
    sl_free(h->data);
}

void sl_stream_xform_free(struct sl_stream_xform *x)
{
    if (!x) {
        return;
    }
    assert(!x->batch);
    sl_fh_transform_free(x->t);
    xform_buf_fini(&x->buf);
    xform_buf_fini(&x->flight);
    uv_close((uv_handle_t *)&x->timer, xform_close_cb);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* stream_feed.c: a delivery stream as the function of a mapping, so that any source sluice reads
 * (a file, Kafka, Kinesis, SQS) feeds a delivery stream under every mapping rule: filters apply
 * before, one batch per partition is in flight, and the checkpoint moves (or SQS deletes) only
 * once the invocation succeeded, which here means every record of the batch is durable in the
 * stream's spool (sl_stream_put_in's callback with status 0). A KinesisStreamAsSource stream
 * reads its Kinesis stream through such a mapping (config_stream.c makes it).
 *
 * It is a function type of its own, not one of "functions": its encode (function.h) writes the
 * batch's records as their payloads (what Firehose would receive: a Kinesis record's data
 * decoded, a line, a Kafka value, an SQS body), not a Lambda event, with, for a Kinesis source,
 * each record's metadata (fh_kmeta.h). Its invoke appends them to the spool. When the spool's
 * quota refuses them (SL_ETHROTTLED: the stream delivers what it holds at once), the invocation
 * keeps what was taken and offers the rest again every SL_STREAM_FEED_RETRY_MS, so the mapping
 * stops reading while it waits and nothing is skipped or put twice. A failure of the spool
 * itself is a service error (retried by the mapping without counting). stop() cancels the
 * invocations waiting for room; records already appended stay (at-least-once).
 *
 * The body between encode and invoke (this process only, native byte order), per record:
 * u32 data length | u32 metadata length | i64 arrival ms | data | metadata. */
#include "stream_feed.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "batcher.h"
#include "fh_kmeta.h"
#include "log.h"
#include "partition.h"
#include "source.h"
#include "spool.h"
#include "stream.h"

#define FEED_COMP    "stream_feed"
#define FEED_HDR     16u
#define FEED_ID_MAX  256
#define FEED_KEY_MAX (SL_FH_KMETA_STR_MAX + 1)

struct feed_inv;

struct feed_ctx {
    uv_loop_t *loop;
    struct sl_stream *s;
    const struct sl_clock *clock;
    bool kinesis;
    char *name;
    struct feed_inv *all;     /* every invocation not yet freed */
    struct feed_inv *waiting; /* those waiting for room in the spool, oldest first */
    uv_timer_t *timer;        /* its own allocation: closed by fini, freed by libuv's callback */
};

struct feed_inv {
    struct feed_inv *prev, *next; /* in ctx->all */
    struct feed_inv *wnext;       /* in ctx->waiting */
    struct feed_ctx *ctx;
    sl_invoke_cb cb;
    void *arg;
    struct sl_spool_in *in;
    size_t n;
    size_t taken;     /* records the spool took (in order) */
    unsigned pending; /* appends whose callback has not run */
    int err;          /* the first failure */
    bool waiting;
    bool answered; /* cb was called (done, or canceled by stop) */
};

static const struct sl_opt feed_opts[] = {{0}};

/* ------------------------------------------------------------------------------------------ */
/* Encoding */

/* Appends rec's Kinesis metadata (its partition's name is the shard id; its key the partition
 * key; its item id the sequence number, "SEQ:SUB" for a user record of a KPL aggregate). A
 * record whose metadata cannot be read gets none (SL_EINVAL). */
static int feed_kinesis_meta(const struct sl_source_ops *ops,
                             void *src_ctx,
                             struct sl_part *part,
                             const struct sl_record *rec,
                             struct sl_buf *out)
{
    char id[FEED_ID_MAX];
    if (ops->format_item_id(src_ctx, part, rec, id, sizeof(id)) < 0) {
        return SL_EINVAL;
    }
    uint64_t sub = 0;
    char *colon = strchr(id, ':');
    if (colon) {
        *colon = '\0';
        for (const char *p = colon + 1; *p >= '0' && *p <= '9'; p++) {
            sub = sub * 10 + (uint64_t)(*p - '0');
        }
    }
    const char *k = NULL;
    size_t klen = ops->record_key(src_ctx, part, rec, &k);
    char key[FEED_KEY_MAX];
    if (klen >= sizeof(key)) {
        return SL_EINVAL;
    }
    memcpy(key, k, klen);
    key[klen] = '\0';
    struct sl_fh_kinesis_meta m = {
        .shard_id = part->name,
        .partition_key = key,
        .sequence_number = id,
        .subsequence_number = sub,
        .arrival_ms = rec->arrival_ms,
    };
    return sl_fh_kmeta_encode(out, &m);
}

static int feed_encode(void *vctx,
                       const struct sl_batch_limits *lim,
                       const struct sl_source_ops *ops,
                       void *src_ctx,
                       const struct sl_batch_ref *refs,
                       size_t n,
                       struct sl_buf *body,
                       size_t *ret_n)
{
    struct feed_ctx *ctx = vctx;
    struct sl_buf scratch, meta;
    sl_buf_init(&scratch);
    sl_buf_init(&meta);
    sl_buf_truncate(body, 0);
    size_t done = 0;
    int r = 0;
    for (; done < n; done++) {
        struct sl_part *part = refs[done].part;
        const struct sl_record *rec = refs[done].rec;
        if (rec->flags & SL_REC_OVERSIZE) {
            break;
        }
        const char *data = NULL;
        size_t len = 0;
        r = sl_recq_payload(&part->q, rec, &scratch, &data, &len);
        if (r == SL_ENOMEM) {
            goto out;
        }
        /* A payload that cannot be read (base64 the source let through) or that the spool
         * cannot take (over 1 MiB): the mapping hands it to the on-failure path. */
        if (r < 0 || len > SL_SPOOL_RECORD_MAX_BYTES) {
            r = 0;
            break;
        }
        sl_buf_truncate(&meta, 0);
        if (ctx->kinesis) {
            r = feed_kinesis_meta(ops, src_ctx, part, rec, &meta);
            if (r == SL_ENOMEM) {
                goto out;
            }
            if (r < 0) {
                sl_buf_truncate(&meta, 0);
            }
            r = 0;
        }
        if (body->len + FEED_HDR + len + meta.len > lim->max_bytes) {
            break;
        }
        unsigned char hdr[FEED_HDR];
        uint32_t len32 = (uint32_t)len;
        uint32_t meta32 = (uint32_t)meta.len;
        int64_t arrival = rec->arrival_ms;
        memcpy(hdr, &len32, 4);
        memcpy(hdr + 4, &meta32, 4);
        memcpy(hdr + 8, &arrival, 8);
        if (sl_buf_append(body, hdr, sizeof(hdr)) < 0 || sl_buf_append(body, data, len) < 0 ||
            (meta.len && sl_buf_append(body, meta.data, meta.len) < 0)) {
            r = SL_ENOMEM;
            goto out;
        }
    }
out:
    sl_buf_fini(&scratch);
    sl_buf_fini(&meta);
    if (r < 0) {
        return r;
    }
    *ret_n = done;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Invoking */

static void feed_free_inv(struct feed_inv *inv)
{
    struct feed_ctx *ctx = inv->ctx;
    if (inv->prev) {
        inv->prev->next = inv->next;
    } else {
        ctx->all = inv->next;
    }
    if (inv->next) {
        inv->next->prev = inv->prev;
    }
    sl_free(inv->in);
    sl_free(inv);
}

static void feed_unwait(struct feed_inv *inv)
{
    if (!inv->waiting) {
        return;
    }
    struct feed_inv **pp = &inv->ctx->waiting;
    while (*pp != inv) {
        pp = &(*pp)->wnext;
    }
    *pp = inv->wnext;
    inv->wnext = NULL;
    inv->waiting = false;
}

/* Answers the mapping once nothing of inv is outstanding, and frees it once no append owes it
 * a callback. */
static void feed_settle(struct feed_inv *inv)
{
    if (inv->pending > 0 || inv->waiting) {
        return;
    }
    if (!inv->answered) {
        inv->answered = true;
        struct sl_invoke_result res = {.outcome = SL_OUTCOME_SUCCESS, .retry_after_ms = -1};
        char detail[128];
        if (inv->err < 0) {
            (void)snprintf(detail, sizeof(detail), "the delivery stream's spool: %s",
                           sl_strerror(inv->err));
            res.outcome = SL_OUTCOME_SERVICE_ERROR;
            res.detail = detail;
        }
        sl_invoke_cb cb = inv->cb;
        void *arg = inv->arg;
        feed_free_inv(inv);
        cb(arg, &res);
        return;
    }
    feed_free_inv(inv);
}

static void feed_timer_cb(uv_timer_t *t);

static void feed_wait(struct feed_inv *inv)
{
    struct feed_ctx *ctx = inv->ctx;
    inv->waiting = true;
    struct feed_inv **pp = &ctx->waiting;
    while (*pp) {
        pp = &(*pp)->wnext;
    }
    *pp = inv;
    if (!uv_is_active((uv_handle_t *)ctx->timer)) {
        uv_timer_start(ctx->timer, feed_timer_cb, SL_STREAM_FEED_RETRY_MS, 0);
    }
}

static void feed_put_cb(void *arg, int status)
{
    struct feed_inv *inv = arg;
    inv->pending--;
    if (status < 0 && inv->err == 0) {
        inv->err = status;
    }
    feed_settle(inv);
}

/* Offers the records not yet taken. Returns 0 (taken, or waiting for room) or the spool's
 * error, with nothing more taken. */
static int feed_put(struct feed_inv *inv)
{
    struct feed_ctx *ctx = inv->ctx;
    size_t left = inv->n - inv->taken;
    size_t took = 0;
    int r = sl_stream_put_in(ctx->s, inv->in + inv->taken, left, &took, feed_put_cb, inv);
    if (r == 0) {
        inv->pending++;
        inv->taken += took;
    }
    if (r == SL_ETHROTTLED || (r == 0 && took < left)) {
        feed_wait(inv);
        return 0;
    }
    return r;
}

static void feed_timer_cb(uv_timer_t *t)
{
    struct feed_ctx *ctx = t->data;
    struct feed_inv *list = ctx->waiting;
    ctx->waiting = NULL;
    while (list) {
        struct feed_inv *inv = list;
        list = inv->wnext;
        inv->wnext = NULL;
        inv->waiting = false;
        int r = feed_put(inv);
        if (r < 0) {
            inv->err = r;
        }
        feed_settle(inv);
    }
}

static int feed_invoke(void *vctx, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    struct feed_ctx *ctx = vctx;
    size_t n = 0;
    for (size_t off = 0; off < body_len; n++) {
        uint32_t len, meta_len;
        if (body_len - off < FEED_HDR) {
            return SL_EINVAL;
        }
        memcpy(&len, body + off, 4);
        memcpy(&meta_len, body + off + 4, 4);
        if (body_len - off - FEED_HDR < (size_t)len + meta_len) {
            return SL_EINVAL;
        }
        off += FEED_HDR + (size_t)len + meta_len;
    }
    if (n == 0) {
        return SL_EINVAL;
    }
    struct feed_inv *inv = sl_calloc(1, sizeof(*inv));
    struct sl_spool_in *in = inv ? sl_calloc(n, sizeof(*in)) : NULL;
    if (!in) {
        sl_free(inv);
        return SL_ENOMEM;
    }
    int64_t now = sl_clock_wall_ms(ctx->clock);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t len, meta_len;
        int64_t arrival;
        memcpy(&len, body + off, 4);
        memcpy(&meta_len, body + off + 4, 4);
        memcpy(&arrival, body + off + 8, 8);
        off += FEED_HDR;
        in[i] = (struct sl_spool_in){
            .data = body + off,
            .len = len,
            .arrival_ms = ctx->kinesis ? arrival : now,
            .meta = meta_len ? body + off + len : NULL,
            .meta_len = meta_len,
        };
        off += (size_t)len + meta_len;
    }
    *inv = (struct feed_inv){.ctx = ctx, .cb = cb, .arg = arg, .in = in, .n = n};
    inv->next = ctx->all;
    if (ctx->all) {
        ctx->all->prev = inv;
    }
    ctx->all = inv;
    int r = feed_put(inv);
    if (r < 0 && inv->pending == 0 && !inv->waiting) {
        feed_free_inv(inv); /* nothing taken: the mapping tries again */
        return r;
    }
    if (r < 0) {
        inv->err = r;
    }
    return 0;
}

/* Cancels the invocations still waiting for room: each is answered now (canceled), and
 * freed once the appends it made have called back. */
static void feed_stop(void *vctx)
{
    struct feed_ctx *ctx = vctx;
    uv_timer_stop(ctx->timer);
    struct feed_inv *inv = ctx->all;
    while (inv) {
        struct feed_inv *next = inv->next;
        if (!inv->answered) {
            feed_unwait(inv);
            inv->answered = true;
            struct sl_invoke_result res = {
                .outcome = SL_OUTCOME_TRANSPORT_ERROR,
                .detail = "canceled",
                .retry_after_ms = -1,
            };
            sl_invoke_cb cb = inv->cb;
            void *arg = inv->arg;
            if (inv->pending == 0) {
                feed_free_inv(inv);
            }
            cb(arg, &res);
            next = ctx->all; /* the callback may have invoked again (new ones are at the head) */
            while (next && next->answered) {
                next = next->next;
            }
        }
        inv = next;
    }
}

static void feed_timer_closed(uv_handle_t *h)
{
    sl_free(h);
}

static void feed_fini(void *vctx)
{
    struct feed_ctx *ctx = vctx;
    assert(!ctx->waiting);
    while (ctx->all) {
        sl_log_warn(FEED_COMP, ctx->name, "an invocation still owed an append's callback at exit");
        feed_free_inv(ctx->all);
    }
    if (ctx->timer) {
        uv_close((uv_handle_t *)ctx->timer, feed_timer_closed);
    }
    sl_free(ctx->name);
}

static int feed_check(void *ctx, char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)errbuf;
    (void)errlen;
    return 0;
}

static int feed_init(void *ctx, const struct sl_function_env *env, char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)env;
    (void)errbuf;
    (void)errlen;
    return 0;
}

static const struct sl_function_ops feed_ops = {
    .abi = SL_FUNCTION_ABI,
    .name = "delivery_stream",
    .opts = feed_opts,
    .ctx_size = sizeof(struct feed_ctx),
    .check = feed_check,
    .init = feed_init,
    .invoke = feed_invoke,
    .stop = feed_stop,
    .fini = feed_fini,
    .encode = feed_encode,
};

int sl_stream_feed_new(uv_loop_t *loop,
                       struct sl_stream *s,
                       const char *name,
                       bool kinesis,
                       const struct sl_clock *clock,
                       struct sl_function **ret_fn)
{
    struct sl_function *fn = sl_calloc(1, sizeof(*fn));
    struct feed_ctx *ctx = fn ? sl_calloc(1, sizeof(*ctx)) : NULL;
    char *fname = ctx ? sl_strdup(name) : NULL;
    char *cname = fname ? sl_strdup(name) : NULL;
    uv_timer_t *timer = cname ? sl_calloc(1, sizeof(*timer)) : NULL;
    if (!timer) {
        sl_free(cname);
        sl_free(fname);
        sl_free(ctx);
        sl_free(fn);
        return SL_ENOMEM;
    }
    uv_timer_init(loop, timer);
    timer->data = ctx;
    *ctx = (struct feed_ctx){
        .loop = loop, .s = s, .clock = clock, .kinesis = kinesis, .name = cname, .timer = timer};
    *fn = (struct sl_function){.ops = &feed_ops, .ctx = ctx, .name = fname};
    *ret_fn = fn;
    return 0;
}

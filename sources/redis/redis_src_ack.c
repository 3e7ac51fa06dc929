/* SPDX-License-Identifier: Apache-2.0 */
/* redis_src_ack.c: the Redis Streams source's acknowledgements, on a connection of their own
 * that stays open after the source's stop (a drain acknowledges after it) and outlives fini
 * until they are answered (bounded), and its reclaims, on the command connection (never the
 * reading one, which may be blocked).
 *
 * XACK: the mapping calls ack(part, last) once every record of the partition up to last is
 * done (delivered, filtered out, or written to the on-failure destination: DESIGN.md's rule
 * 1, the contiguous low-watermark), before it drops them from the queue; this sends one XACK
 * <key> <group> with the ids of the records from the front of the queue through last. Nothing
 * else acknowledges an entry, except one whose fields are gone (deleted while pending), which
 * cannot be delivered. An XACK whose connection was lost (it may or may not have run) is sent
 * again on the next connection, until it is answered or the source stops; one that never
 * succeeds (refused, or the stop's bound ran out) leaves its entries pending, so they come again
 * (read first at this consumer's next start, or claimed by another): repeats, never losses. An
 * acknowledged id that was already acknowledged counts nothing.
 *
 * Reclaim: a consumer that died (a SIGKILLed sluice whose consumer name is not used again)
 * leaves entries pending that no one reads. Every claim_idle / 2, once this consumer read its
 * own pending entries again, entries pending for longer than claim_idle are claimed: XAUTOCLAIM
 * <key> <group> <consumer> <claim_idle> <cursor> COUNT <claim_count> where the server has it
 * (6.2 and later), else XPENDING (from a cursor, claim_count at a time) and XCLAIM of those idle
 * long enough and owned by another consumer. A round goes on from the cursor while it finds
 * entries (and the entries it kept were taken by the mapping), and ends when the cursor comes
 * back to 0-0. XAUTOCLAIM claims idle entries whoever owns them, this consumer's own too (a
 * batch retried for longer than claim_idle): those it holds already are skipped
 * (redis_src_read.c), so a record is never in the queue twice. claim_idle must be longer than a
 * batch may take (function timeout and retries), or live consumers' entries are claimed and
 * delivered twice. Loop thread only. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "redis_src_int.h"

/* An XACK whose connection was lost is sent again until it is answered (or the source stops);
 * after this many tries a line says so. */
#define RS_ACK_TRIES_LOGGED 5
/* How long XACKs still out at a stop may take to be answered before their connection goes. */
#define RS_ACK_FLUSH_MS 2000

/* The XACK connection. It stays open after the source's stop (a drain stops the source first,
 * then acknowledges what its last batches delivered) and outlives fini until the XACKs on it
 * are answered (or RS_ACK_FLUSH_MS passed), so the last acknowledgements still reach Redis.
 * Nothing of it calls the mapping. */
struct rs_acker {
    struct sl_redis_conn *conn;
    uv_timer_t *timer; /* the flush's bound, once closing */
    char *stream;
    char *group;
    char *inst;
    const struct sl_clock *clock;
    struct sl_log_limit lim;
    unsigned out; /* XACKs sent and not answered */
    bool closing;
    bool freeing;
};

/* One XACK: n ids as text, each RS_ID_MAX bytes apart in text, len[i] long. */
struct rs_ack_req {
    struct rs_acker *k;
    unsigned tries;
    size_t n;
    char *text;
    size_t *len;
};

static void rs_ack_cb(void *arg, int err, const redisReply *reply, const char *detail);

static void rs_ack_req_free(struct rs_ack_req *a)
{
    if (a) {
        sl_free(a->text);
        sl_free(a->len);
        sl_free(a);
    }
}

static int rs_ack_send(struct rs_ack_req *a)
{
    struct rs_acker *k = a->k;
    size_t argc = a->n + 3;
    const char **argv = sl_calloc(argc, sizeof(*argv));
    size_t *len = sl_calloc(argc, sizeof(*len));
    int r = SL_ENOMEM;
    if (argv && len) {
        argv[0] = "XACK";
        len[0] = 4;
        argv[1] = k->stream;
        len[1] = strlen(k->stream);
        argv[2] = k->group;
        len[2] = strlen(k->group);
        for (size_t i = 0; i < a->n; i++) {
            argv[i + 3] = a->text + i * RS_ID_MAX;
            len[i + 3] = a->len[i];
        }
        r = sl_redis_conn_command(k->conn, (int)argc, argv, len, rs_ack_cb, a);
    }
    sl_free(argv);
    sl_free(len);
    if (r == 0) {
        k->out++;
    }
    return r;
}

static void rs_acker_timer_closed(uv_handle_t *h)
{
    struct rs_acker *k = h->data;
    sl_free(k->stream);
    sl_free(k->group);
    sl_free(k->inst);
    sl_free(k);
    sl_free(h);
}

/* Frees k: its connection (what is still out is answered SL_ECANCELED), then its timer. */
static void rs_acker_free(struct rs_acker *k)
{
    if (k->freeing) {
        return;
    }
    k->freeing = true;
    sl_redis_conn_free(k->conn);
    k->conn = NULL;
    uv_close((uv_handle_t *)k->timer, rs_acker_timer_closed);
}

static void rs_ack_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    (void)reply;
    struct rs_ack_req *a = arg;
    struct rs_acker *k = a->k;
    k->out--;
    if ((err == SL_EIO || err == SL_ETIMEDOUT) && !k->closing && rs_ack_send(a) == 0) {
        /* on the next connection, which comes after the connection's backoff: held no longer
         * than the outage (the mapping reads nothing meanwhile, so what waits is bounded) */
        if (++a->tries == RS_ACK_TRIES_LOGGED) {
            sl_log_warn(RS_COMP, k->inst,
                        "XACK of %zu entries of stream %s: the connection failed %u times, "
                        "retrying",
                        a->n, k->stream, a->tries);
        }
        return;
    }
    if (err < 0 && err != SL_ECANCELED) {
        sl_log_limited(&k->lim, sl_clock_now_ms(k->clock), 10000, 3, SL_LOG_WARN, RS_COMP, k->inst,
                       "XACK of %zu entries of stream %s failed (%s); they stay pending and "
                       "will be delivered again",
                       a->n, k->stream, detail ? detail : sl_strerror(err));
    } else if (err == SL_ECANCELED) {
        sl_log_debug(RS_COMP, k->inst, "XACK of %zu entries of stream %s canceled at the stop",
                     a->n, k->stream);
    }
    rs_ack_req_free(a);
    if (k->closing && k->out == 0) {
        rs_acker_free(k);
    }
}

static void rs_acker_flush_cb(uv_timer_t *t)
{
    rs_acker_free(t->data);
}

int rs_acker_new(struct rs_ctx *ctx, const struct sl_redis_conn_conf *conf)
{
    struct rs_acker *k = sl_calloc(1, sizeof(*k));
    if (!k) {
        return SL_ENOMEM;
    }
    k->stream = sl_strdup(ctx->stream);
    k->group = sl_strdup(ctx->group);
    k->inst = sl_strdup(ctx->env.inst ? ctx->env.inst : "");
    k->timer = sl_malloc(sizeof(*k->timer));
    k->clock = ctx->env.clock;
    if (!k->stream || !k->group || !k->inst || !k->timer ||
        sl_redis_conn_new(ctx->env.loop, conf, &k->conn) < 0) {
        sl_free(k->stream);
        sl_free(k->group);
        sl_free(k->inst);
        sl_free(k->timer);
        sl_free(k);
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, k->timer);
    k->timer->data = k;
    ctx->acker = k;
    return 0;
}

void rs_acker_close(struct rs_ctx *ctx)
{
    struct rs_acker *k = ctx->acker;
    ctx->acker = NULL;
    if (!k) {
        return;
    }
    k->closing = true;
    if (k->out == 0) {
        rs_acker_free(k);
    } else {
        (void)uv_timer_start(k->timer, rs_acker_flush_cb, RS_ACK_FLUSH_MS, 0);
    }
}

/* Sends one XACK of n ids (a takes them), or says why they stay pending. */
static void rs_ack_go(struct rs_ctx *ctx, struct rs_ack_req *a)
{
    if (!ctx->acker) {
        rs_ack_req_free(a); /* after fini: never, the mapping acknowledges before it */
        return;
    }
    a->k = ctx->acker;
    if (rs_ack_send(a) < 0) {
        sl_log_error(RS_COMP, ctx->env.inst,
                     "cannot send XACK: %zu entries of stream %s stay pending and will be "
                     "delivered again",
                     a->n, ctx->stream);
        rs_ack_req_free(a);
    }
}

static struct rs_ack_req *rs_ack_req_new(struct rs_ctx *ctx, size_t n)
{
    struct rs_ack_req *a = sl_calloc(1, sizeof(*a));
    if (a) {
        a->text = sl_malloc(n * RS_ID_MAX);
        a->len = sl_calloc(n, sizeof(*a->len));
    }
    if (!a || !a->text || !a->len) {
        rs_ack_req_free(a);
        sl_log_error(RS_COMP, ctx->env.inst,
                     "out of memory: %zu entries of stream %s are not acknowledged and will be "
                     "delivered again",
                     n, ctx->stream);
        return NULL;
    }
    a->n = n;
    return a;
}

void rs_ack_ids(struct rs_ctx *ctx, const struct rs_id *ids, size_t n)
{
    if (n == 0) {
        return;
    }
    struct rs_ack_req *a = rs_ack_req_new(ctx, n);
    if (a) {
        for (size_t i = 0; i < n; i++) {
            a->len[i] = rs_id_format(&ids[i], a->text + i * RS_ID_MAX);
        }
        rs_ack_go(ctx, a);
    }
}

void rs_ack(void *vctx, struct sl_part *part, const struct sl_record *last)
{
    struct rs_ctx *ctx = vctx;
    const struct sl_recq *q = &part->q;
    size_t n = 0;
    size_t count = sl_recq_count(q);
    while (n < count && sl_recq_at(q, n) != last) {
        n++;
    }
    if (n == count) {
        return; /* not in the queue: nothing of it is held here */
    }
    n++;
    struct rs_ack_req *a = rs_ack_req_new(ctx, n);
    if (!a) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *id;
        a->len[i] = rs_rec_id_text(q, sl_recq_at(q, i), &id);
        memcpy(a->text + i * RS_ID_MAX, id, a->len[i]);
    }
    rs_ack_go(ctx, a);
}

/* ---- reclaim ---- */

static void rs_claim_round_end(struct rs_ctx *ctx, bool more)
{
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (more) {
        ctx->claim_next_ms = now; /* on from the cursor at the next tick */
        return;
    }
    (void)snprintf(ctx->claim_cursor, sizeof(ctx->claim_cursor), "0-0");
    ctx->claim_next_ms = now + (ctx->claim_idle_ms / 2 > 100 ? ctx->claim_idle_ms / 2 : 100);
}

static void rs_claim_kept(struct rs_ctx *ctx, const redisReply *entries)
{
    if (!ctx->rp || ctx->rp->gone) {
        return; /* they stay pending for this consumer: read again at the next start */
    }
    int n = rs_read_keep_claimed(ctx->rp, entries);
    if (n > 0) {
        sl_log_info(RS_COMP, ctx->env.inst,
                    "stream %s: claimed %d entries pending for over %lld ms (their consumer "
                    "stopped without acknowledging them)",
                    ctx->stream, n, (long long)ctx->claim_idle_ms);
    } else if (n < 0) {
        sl_log_limited(&ctx->lim, sl_clock_now_ms(ctx->env.clock), 10000, 4, SL_LOG_ERROR, RS_COMP,
                       ctx->env.inst, "claiming entries of stream %s: %s", ctx->stream,
                       sl_strerror(n));
    }
}

static void rs_claim_failed(struct rs_ctx *ctx, int err, const char *what, const char *detail)
{
    if (err != SL_EIO && err != SL_ETIMEDOUT) {
        sl_log_limited(&ctx->lim, sl_clock_now_ms(ctx->env.clock), 60000, 5, SL_LOG_WARN, RS_COMP,
                       ctx->env.inst, "%s of stream %s: %s, retrying", what, ctx->stream,
                       detail ? detail : sl_strerror(err));
    }
    rs_claim_round_end(ctx, false);
}

static void rs_xclaim_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    struct rs_ctx *ctx = arg;
    ctx->claiming = false;
    if (ctx->stopped || err == SL_ECANCELED) {
        return;
    }
    if (err < 0) {
        rs_claim_failed(ctx, err, "XCLAIM", detail);
        return;
    }
    rs_claim_kept(ctx, reply);
    rs_claim_round_end(ctx, strcmp(ctx->claim_cursor, "0-0") != 0);
}

/* XPENDING's answer [[id, consumer, idle_ms, deliveries], ...]: XCLAIM the entries idle long
 * enough and owned by another consumer; the cursor moves past the last one listed. */
static void rs_xpending_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    struct rs_ctx *ctx = arg;
    ctx->claiming = false;
    if (ctx->stopped || err == SL_ECANCELED) {
        return;
    }
    if (err < 0 || reply->type != REDIS_REPLY_ARRAY) {
        rs_claim_failed(ctx, err < 0 ? err : SL_EPROTO, "XPENDING", detail);
        return;
    }
    size_t n = reply->elements;
    const char **argv = sl_calloc(n + 6, sizeof(*argv));
    size_t *len = sl_calloc(n + 6, sizeof(*len));
    char idle[24];
    int argc = 0;
    struct rs_id last = {0, 0};
    bool any = false;
    if (!argv || !len) {
        sl_free(argv);
        sl_free(len);
        rs_claim_failed(ctx, SL_ENOMEM, "XPENDING", NULL);
        return;
    }
    (void)snprintf(idle, sizeof(idle), "%lld", (long long)ctx->claim_idle_ms);
    argv[argc++] = "XCLAIM";
    argv[argc++] = ctx->stream;
    argv[argc++] = ctx->group;
    argv[argc++] = ctx->consumer;
    argv[argc++] = idle;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_STRING ||
            e->element[1]->type != REDIS_REPLY_STRING ||
            e->element[2]->type != REDIS_REPLY_INTEGER ||
            !rs_id_parse(e->element[0]->str, e->element[0]->len, &last)) {
            continue;
        }
        any = true;
        if (e->element[2]->integer >= ctx->claim_idle_ms &&
            strcmp(e->element[1]->str, ctx->consumer) != 0) {
            argv[argc++] = e->element[0]->str;
        }
    }
    for (int i = 0; i < argc; i++) {
        len[i] = strlen(argv[i]);
    }
    bool more = any && n >= (size_t)ctx->claim_count;
    if (more) {
        /* the next page starts after the last entry listed */
        struct rs_id next = last;
        if (++next.seq == 0) {
            next.ms++;
        }
        (void)rs_id_format(&next, ctx->claim_cursor);
    } else {
        (void)snprintf(ctx->claim_cursor, sizeof(ctx->claim_cursor), "0-0");
    }
    int r = 0;
    if (argc > 5) {
        r = sl_redis_conn_command(ctx->cmd, argc, argv, len, rs_xclaim_cb, ctx);
        ctx->claiming = r == 0;
    }
    sl_free(argv);
    sl_free(len);
    if (argc <= 5 || r < 0) {
        rs_claim_round_end(ctx, more && r == 0);
    }
}

static void rs_xautoclaim_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    struct rs_ctx *ctx = arg;
    ctx->claiming = false;
    if (ctx->stopped || err == SL_ECANCELED) {
        return;
    }
    if (err == SL_EREJECTED && detail && strncmp(detail, "ERR unknown command", 19) == 0) {
        sl_log_info(RS_COMP, ctx->env.inst,
                    "the server has no XAUTOCLAIM (before Redis 6.2): claiming with XPENDING and "
                    "XCLAIM");
        ctx->no_xautoclaim = true;
        ctx->claim_next_ms = sl_clock_now_ms(ctx->env.clock);
        return;
    }
    if (err < 0 || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[0]->len >= sizeof(ctx->claim_cursor)) {
        rs_claim_failed(ctx, err < 0 ? err : SL_EPROTO, "XAUTOCLAIM", detail);
        return;
    }
    memcpy(ctx->claim_cursor, reply->element[0]->str, reply->element[0]->len);
    ctx->claim_cursor[reply->element[0]->len] = '\0';
    rs_claim_kept(ctx, reply->element[1]);
    rs_claim_round_end(ctx, strcmp(ctx->claim_cursor, "0-0") != 0);
}

void rs_claim_tick(struct rs_ctx *ctx)
{
    struct rs_part *rp = ctx->rp;
    if (ctx->stopped || ctx->claiming || !ctx->group_ready || !rp || rp->gone || !rp->own_done ||
        rp->held.n > 0 || sl_clock_now_ms(ctx->env.clock) < ctx->claim_next_ms) {
        return;
    }
    if (!ctx->claim_cursor[0]) {
        (void)snprintf(ctx->claim_cursor, sizeof(ctx->claim_cursor), "0-0");
    }
    char idle[24], count[24];
    (void)snprintf(idle, sizeof(idle), "%lld", (long long)ctx->claim_idle_ms);
    (void)snprintf(count, sizeof(count), "%lld", (long long)ctx->claim_count);
    int r;
    if (!ctx->no_xautoclaim) {
        const char *argv[] = {"XAUTOCLAIM", ctx->stream,       ctx->group, ctx->consumer,
                              idle,         ctx->claim_cursor, "COUNT",    count};
        size_t len[SL_ARRAY_LEN(argv)];
        for (size_t i = 0; i < SL_ARRAY_LEN(argv); i++) {
            len[i] = strlen(argv[i]);
        }
        r = sl_redis_conn_command(ctx->cmd, (int)SL_ARRAY_LEN(argv), argv, len, rs_xautoclaim_cb,
                                  ctx);
    } else {
        const char *argv[] = {"XPENDING", ctx->stream, ctx->group, ctx->claim_cursor, "+", count};
        size_t len[SL_ARRAY_LEN(argv)];
        for (size_t i = 0; i < SL_ARRAY_LEN(argv); i++) {
            len[i] = strlen(argv[i]);
        }
        r = sl_redis_conn_command(ctx->cmd, (int)SL_ARRAY_LEN(argv), argv, len, rs_xpending_cb,
                                  ctx);
    }
    if (r == 0) {
        ctx->claiming = true;
    } else {
        rs_claim_round_end(ctx, false);
    }
}

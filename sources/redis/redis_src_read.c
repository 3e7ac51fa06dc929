/* SPDX-License-Identifier: Apache-2.0 */
/* redis_src_read.c: reading the stream for the mapping (XREADGROUP on the source's reading
 * connection, which is its own because a read may BLOCK). A fetch of the mapping becomes one
 * XREADGROUP GROUP <group> <consumer> COUNT <max_records> STREAMS <key> <id>, without BLOCK, and
 * answers SL_EINPROGRESS; the reply's entries go into the partition's queue and part_fetched
 * says how many. The id is first "0"-like: this consumer's own pending entries (delivered
 * before a crash or a stop, never acknowledged) are read again, in chunks after the last one
 * read, until a read finds none; then ">" (entries never delivered to the group).
 *
 * When a fetch finds nothing, it answers 0, and a blocking read (BLOCK block_time, COUNT what
 * the last fetch could take) goes out from here, outside any fetch, so that --until-idle sees
 * the partition quiet; what it brings is kept (held) and the mapping is woken; the next fetch
 * takes it at once. A read that times out empty is sent again while the mapping waits. Entries
 * reclaimed from dead consumers (redis_src_ack.c) are kept the same way. Held entries are
 * already this consumer's pending entries: they are never dropped, only handed out (or, at a
 * stop, left pending for the next start or for another consumer's claim).
 *
 * An entry whose fields are gone (deleted from the stream, or trimmed, while it was pending)
 * cannot be delivered: it is acknowledged with a warning (ctx->ack_gone: redis_src_ack.c, which
 * is above this file). A reply that says the group or the
 * stream is missing (NOGROUP; UNBLOCKED when the key was deleted under a blocked read) goes to
 * redis_src.c (ctx->group_missing). A lost connection completes the fetch with 0 and wakes the
 * mapping later (the connection logs the outage; nothing is lost: what a read delivered and the
 * reply never brought stays pending for this consumer and is read again: its own pending
 * entries after the last one a read brought are read before new ones; those it holds already
 * are skipped). Loop thread only. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "redis_src_int.h"

/* After a read failed (connection lost), the mapping is woken again after this long. */
#define RS_READ_RETRY_MS 1000

struct rs_held_hdr {
    uint64_t ms;
    uint64_t seq;
    uint32_t text_len;
    uint32_t len;
};

static int rs_held_add(struct rs_held *h,
                       const struct rs_id *id,
                       const char *text,
                       size_t text_len,
                       const char *json,
                       size_t len)
{
    struct rs_held_hdr hdr = {id->ms, id->seq, (uint32_t)text_len, (uint32_t)len};
    if (len > UINT32_MAX || text_len >= RS_ID_MAX) {
        return SL_EPROTO;
    }
    if (h->n == 0) {
        sl_buf_truncate(&h->b, 0);
        h->off = 0;
    }
    int r = sl_buf_reserve(&h->b, sizeof(hdr) + text_len + len);
    if (r < 0) {
        return r;
    }
    r = sl_buf_append(&h->b, &hdr, sizeof(hdr));
    r = r ? r : sl_buf_append(&h->b, text, text_len);
    r = r ? r : sl_buf_append(&h->b, json, len);
    if (r == 0) {
        h->n++;
    }
    return r;
}

/* Whether rp holds the entry id already: in its queue, or kept for the next fetch. */
static bool rs_holds(const struct rs_part *rp, const struct rs_id *id)
{
    const struct sl_recq *q = &rp->part->q;
    for (size_t i = 0, n = sl_recq_count(q); i < n; i++) {
        struct rs_id x = rs_rec_id(q, sl_recq_at(q, i));
        if (x.ms == id->ms && x.seq == id->seq) {
            return true;
        }
    }
    size_t off = rp->held.off;
    for (size_t i = 0; i < rp->held.n; i++) {
        struct rs_held_hdr hdr;
        memcpy(&hdr, rp->held.b.data + off, sizeof(hdr));
        if (hdr.ms == id->ms && hdr.seq == id->seq) {
            return true;
        }
        off += sizeof(hdr) + hdr.text_len + hdr.len;
    }
    return false;
}

/* Hands kept entries to the mapping: up to max_records, and about max_bytes (at least one). */
static int rs_held_take(struct rs_part *rp, size_t max_records, size_t max_bytes)
{
    struct rs_held *h = &rp->held;
    size_t n = 0;
    size_t bytes = 0;
    while (h->n > 0 && n < max_records && (n == 0 || bytes < max_bytes)) {
        struct rs_held_hdr hdr;
        memcpy(&hdr, h->b.data + h->off, sizeof(hdr));
        const struct rs_id id = {hdr.ms, hdr.seq};
        const char *text = h->b.data + h->off + sizeof(hdr);
        int r = rs_push(rp, &id, text, hdr.text_len, text + hdr.text_len, hdr.len);
        if (r < 0) {
            return n > 0 ? (int)n : r;
        }
        h->off += sizeof(hdr) + hdr.text_len + hdr.len;
        h->n--;
        bytes += hdr.len;
        n++;
    }
    if (h->n == 0) {
        sl_buf_truncate(&h->b, 0);
        h->off = 0;
    }
    return (int)n;
}

/* What one reply's entries became. */
struct rs_take {
    size_t entries; /* entries in the reply (deleted ones too) */
    size_t pushed;  /* into the queue */
    size_t kept;    /* held for the next fetch */
    struct rs_id last;
};

/* The entries of a reply: into the queue while the fetch's room lasts (push), the rest held;
 * entries whose fields are gone acknowledged and skipped; with skip_held, entries rp holds
 * already skipped (a claim that took back this consumer's own). */
static int rs_take_entries(struct rs_part *rp,
                           const redisReply *entries,
                           bool push,
                           size_t max_bytes,
                           bool skip_held,
                           struct rs_take *t)
{
    struct rs_ctx *ctx = rp->ctx;
    if (entries->type == REDIS_REPLY_NIL) {
        return 0;
    }
    if (entries->type != REDIS_REPLY_ARRAY) {
        return SL_EPROTO;
    }
    size_t bytes = 0;
    struct rs_id gone[64];
    size_t n_gone = 0;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        struct rs_id id;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= RS_ID_MAX ||
            !rs_id_parse(e->element[0]->str, e->element[0]->len, &id)) {
            return SL_EPROTO;
        }
        const char *text = e->element[0]->str;
        size_t text_len = e->element[0]->len;
        t->entries++;
        t->last = id;
        if (e->element[1]->type == REDIS_REPLY_NIL) {
            sl_log_warn(RS_COMP, ctx->env.inst,
                        "stream %s: entry %s was deleted before it was delivered; acknowledging "
                        "it, skipping",
                        ctx->stream, e->element[0]->str);
            gone[n_gone++] = id;
            if (n_gone == SL_ARRAY_LEN(gone)) {
                ctx->ack_gone(ctx, gone, n_gone);
                n_gone = 0;
            }
            continue;
        }
        if (skip_held && rs_holds(rp, &id)) {
            continue;
        }
        struct sl_buf *s = &ctx->scratch;
        sl_buf_truncate(s, 0);
        int r = rs_fields_json(s, e->element[1]);
        if (r < 0) {
            return r;
        }
        if (push && rp->held.n == 0 && (t->pushed == 0 || bytes < max_bytes)) {
            r = rs_push(rp, &id, text, text_len, s->data, s->len);
            t->pushed += r == 0;
            bytes += s->len;
        } else {
            r = rs_held_add(&rp->held, &id, text, text_len, s->data, s->len);
            t->kept += r == 0;
        }
        if (r < 0) {
            return r;
        }
    }
    if (n_gone > 0) {
        ctx->ack_gone(ctx, gone, n_gone);
    }
    return 0;
}

/* The entries of an XREADGROUP reply: nil (none), or [[key, [entry, ...]]]. */
static int rs_read_reply(
    struct rs_part *rp, const redisReply *reply, bool push, size_t max_bytes, struct rs_take *t)
{
    if (reply->type == REDIS_REPLY_NIL) {
        return 0;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        return SL_EPROTO;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *s = reply->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
            return SL_EPROTO;
        }
        /* own pending entries read again after a lost reply may be held already */
        int r = rs_take_entries(rp, s->element[1], push, max_bytes, !rp->own_done, t);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static void rs_read_fetch_cb(void *arg, int err, const redisReply *reply, const char *detail);
static void rs_read_block_cb(void *arg, int err, const redisReply *reply, const char *detail);

/* Sends an XREADGROUP of count entries: this consumer's own pending ones after own_after
 * until they are all read, then new ones; block: BLOCK block_time (new ones only). */
static int rs_read_send(struct rs_part *rp, size_t count, bool block)
{
    struct rs_ctx *ctx = rp->ctx;
    char cnt[24], blk[24], id[RS_ID_MAX];
    const char *argv[12];
    size_t len[12];
    int argc = 0;
#define RS_ARG(s)              \
    do {                       \
        argv[argc] = (s);      \
        len[argc] = strlen(s); \
        argc++;                \
    } while (0)
    (void)snprintf(cnt, sizeof(cnt), "%zu", count ? count : 1);
    (void)snprintf(blk, sizeof(blk), "%lld", (long long)ctx->block_ms);
    if (!rp->own_done) {
        (void)rs_id_format(&rp->own_after, id);
    }
    RS_ARG("XREADGROUP");
    RS_ARG("GROUP");
    RS_ARG(ctx->group);
    RS_ARG(ctx->consumer);
    RS_ARG("COUNT");
    RS_ARG(cnt);
    if (block && rp->own_done) {
        RS_ARG("BLOCK");
        RS_ARG(blk);
    }
    RS_ARG("STREAMS");
    RS_ARG(ctx->stream);
    RS_ARG(rp->own_done ? ">" : id);
#undef RS_ARG
    int r = sl_redis_conn_command(ctx->rd, argc, argv, len,
                                  block ? rs_read_block_cb : rs_read_fetch_cb, ctx);
    if (r == 0) {
        ctx->reading = true;
        ctx->read_block = block;
    }
    return r;
}

/* A blocking read for a mapping that waits, when none is out. */
static void rs_read_block(struct rs_part *rp)
{
    struct rs_ctx *ctx = rp->ctx;
    if (ctx->reading || ctx->stopped || !ctx->group_ready || !rp->own_done || rp->gone) {
        return;
    }
    if (rs_read_send(rp, rp->last_max, true) < 0) {
        ctx->wake_at_ms = sl_clock_now_ms(ctx->env.clock) + RS_READ_RETRY_MS;
    }
}

void rs_read_wake(struct rs_part *rp)
{
    if (rp->waiting && !rp->gone) {
        rp->waiting = false;
        rp->ctx->env.part_wake(rp->ctx->env.owner, rp->part);
    }
}

void rs_read_tick(struct rs_part *rp)
{
    struct rs_ctx *ctx = rp->ctx;
    if (!rp->waiting || ctx->reading || !ctx->group_ready) {
        return;
    }
    if (ctx->wake_at_ms > sl_clock_now_ms(ctx->env.clock)) {
        return;
    }
    ctx->wake_at_ms = 0;
    if (rp->held.n > 0 || !rp->own_done) {
        rs_read_wake(rp); /* the mapping's fetch reads */
    } else {
        rs_read_block(rp);
    }
}

/* A read's reply was lost with its connection: Redis may have delivered entries to this
 * consumer that never came. They are pending for it, after the last entry a read brought: read
 * this consumer's own pending entries after that one again (those held already are skipped)
 * before new ones. The mapping is woken after a while. */
static void rs_read_lost(struct rs_part *rp)
{
    struct rs_ctx *ctx = rp->ctx;
    if (rp->own_done) {
        rp->own_done = false;
        rp->own_after = rp->read_last;
    }
    ctx->wake_at_ms = sl_clock_now_ms(ctx->env.clock) + RS_READ_RETRY_MS;
}

/* The fetch is over: n entries in the queue (0: a wake is owed), or an error. */
static void rs_read_complete(struct rs_part *rp, int n)
{
    rp->fetching = false;
    if (n == 0) {
        rp->waiting = true;
        rs_read_block(rp);
    }
    rp->ctx->env.part_fetched(rp->ctx->env.owner, rp->part, n);
}

/* A reply refused: the group or the stream is missing, or something else. */
static void rs_read_refused(struct rs_ctx *ctx, const char *what, const char *detail)
{
    if (strncmp(detail, "NOGROUP", 7) == 0 || strncmp(detail, "UNBLOCKED", 9) == 0) {
        ctx->group_missing(ctx);
        return;
    }
    sl_log_limited(&ctx->lim, sl_clock_now_ms(ctx->env.clock), 10000, 1, SL_LOG_ERROR, RS_COMP,
                   ctx->env.inst, "%s of stream %s: %s, retrying", what, ctx->stream, detail);
    ctx->wake_at_ms = sl_clock_now_ms(ctx->env.clock) + RS_READ_RETRY_MS;
}

static void rs_read_fetch_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    struct rs_ctx *ctx = arg;
    ctx->reading = false;
    struct rs_part *rp = ctx->rp;
    if (ctx->stopped || err == SL_ECANCELED || !rp || !rp->fetching) {
        return;
    }
    if (err == SL_EREJECTED) {
        rs_read_refused(ctx, "XREADGROUP", detail);
        rs_read_complete(rp, 0);
        return;
    }
    if (err < 0) {
        /* the connection logged the outage; the mapping is woken after a while */
        rs_read_lost(rp);
        rs_read_complete(rp, 0);
        return;
    }
    struct rs_take t = {0};
    int r = rs_read_reply(rp, reply, true, rp->max_bytes, &t);
    if (r < 0) {
        sl_log_limited(&ctx->lim, sl_clock_now_ms(ctx->env.clock), 10000, 2, SL_LOG_ERROR, RS_COMP,
                       ctx->env.inst, "XREADGROUP of stream %s: %s", ctx->stream,
                       r == SL_EPROTO ? "an answer not shaped as entries" : sl_strerror(r));
        rs_read_complete(rp, t.pushed > 0 ? (int)t.pushed : r);
        return;
    }
    if (rp->own_done && t.entries > 0) {
        rp->read_last = t.last;
    }
    if (!rp->own_done) {
        if (t.entries == 0) {
            rp->own_done = true; /* every own pending entry was read again: new ones now */
            sl_log_debug(RS_COMP, ctx->env.inst, "stream %s: own pending entries read",
                         ctx->stream);
        } else {
            rp->own_after = t.last;
        }
        if (t.pushed == 0 && rs_read_send(rp, rp->last_max, false) == 0) {
            return; /* still fetching */
        }
    }
    rs_read_complete(rp, (int)t.pushed);
}

static void rs_read_block_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    struct rs_ctx *ctx = arg;
    ctx->reading = false;
    struct rs_part *rp = ctx->rp;
    if (ctx->stopped || err == SL_ECANCELED || !rp || rp->gone) {
        return;
    }
    if (err == SL_EREJECTED) {
        rs_read_refused(ctx, "XREADGROUP", detail);
        return;
    }
    if (err < 0) {
        rs_read_lost(rp);
        return;
    }
    struct rs_take t = {0};
    int r = rs_read_reply(rp, reply, false, 0, &t);
    if (t.entries > 0) {
        rp->read_last = t.last;
    }
    if (r < 0) {
        sl_log_limited(&ctx->lim, sl_clock_now_ms(ctx->env.clock), 10000, 2, SL_LOG_ERROR, RS_COMP,
                       ctx->env.inst, "XREADGROUP of stream %s: %s", ctx->stream,
                       r == SL_EPROTO ? "an answer not shaped as entries" : sl_strerror(r));
    }
    if (rp->held.n > 0) {
        rs_read_wake(rp);
    } else if (rp->waiting) {
        rs_read_block(rp); /* timed out empty: again */
    }
}

int rs_read_keep_claimed(struct rs_part *rp, const redisReply *entries)
{
    struct rs_take t = {0};
    int r = rs_take_entries(rp, entries, false, 0, true, &t);
    if (t.kept > 0) {
        rs_read_wake(rp);
    }
    return r < 0 ? r : (int)t.kept;
}

int rs_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct rs_ctx *ctx = vctx;
    struct rs_part *rp = part->src;
    if (rp->gone) {
        return 0;
    }
    rp->last_max = max_records;
    rp->max_bytes = max_bytes;
    if (rp->held.n > 0) {
        int n = rs_held_take(rp, max_records, max_bytes);
        if (n != 0) {
            return n;
        }
    }
    if (ctx->reading || !ctx->group_ready) {
        rp->waiting = true; /* the read out (or the group made again) wakes it */
        return 0;
    }
    int r = rs_read_send(rp, max_records, false);
    if (r < 0) {
        return r;
    }
    rp->fetching = true;
    return SL_EINPROGRESS;
}

void rs_part_free(struct rs_part *rp)
{
    sl_buf_fini(&rp->held.b);
    sl_event_kinesis_tmpl_fini(&rp->tmpl);
    sl_free(rp);
}

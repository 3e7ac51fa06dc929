/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_shards.c: which shards of the stream are read (wire.md §1.2, §1.7). ListShards, page
 * after page (a follow-up page carries only NextToken), at start, every shard_refresh_interval
 * and soon after a shard was read to its end or released. Each shard becomes one partition of
 * the mapping (id and name: its ShardId), added only once the lineage rule allows it: every
 * parent (both for a merge) is done or no longer listed (expired). A shard is done when the
 * mapping released its partition after part_gone, i.e. it was read to its end and every record
 * of it is done and checkpointed (kinesis_fetch.c records the end in the checkpoint's meta, so
 * after a restart the parent is found done from its checkpoint, without reading it again).
 *
 * GetRecords' ChildShards at a closed shard's end enter the table too ("named"), so that the
 * children start as soon as their parents are done, without waiting for a listing (one follows
 * anyway, for their hash key ranges).
 *
 * A shard whose GetShardIterator answers ResourceNotFoundException (deleted, or expired past
 * the retention period) asks for a listing; if the listing succeeds (the stream exists) without
 * the shard, the shard is dropped with one log line, its checkpoint left as it is.
 *
 * A stream that does not exist (ResourceNotFoundException) is waited for: one log line, a new
 * listing every KIN_SLOW_RETRY_MS, and one line when it appears. Throttled listings back off with
 * jitter.
 *
 * It owns the shard table (which outlives the partitions, to know which parents are done), the
 * listing timer, the listing in progress and its request. Loop thread only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "kinesis_int.h"

/* The page size of ListShards (AWS's maximum is 10,000; 1,000 keeps answers small). */
#define KIN_LIST_PAGE 1000

static void kin_shards_list(struct kin_ctx *ctx);

static void kin_shards_timer_cb(uv_timer_t *t)
{
    struct kin_ctx *ctx = t->data;
    if (!ctx->stopped) {
        kin_shards_list(ctx);
    }
}

static void kin_shards_arm(struct kin_ctx *ctx, int64_t in_ms)
{
    if (!ctx->stopped) {
        (void)uv_timer_start(ctx->list_timer, kin_shards_timer_cb, (uint64_t)in_ms, 0);
    }
}

/* A shard ended or was released as done: look again soon (its children may start). */
static void kin_shards_soon(struct kin_ctx *ctx)
{
    if (ctx->list_req) {
        ctx->list_again = true;
    } else {
        kin_shards_arm(ctx, 0);
    }
}

static struct kin_shard *kin_shards_find(struct kin_ctx *ctx, const char *id)
{
    for (struct kin_shard *e = ctx->shards; e; e = e->next) {
        if (strcmp(e->info.id, id) == 0) {
            return e;
        }
    }
    return NULL;
}

static void kin_shards_add(struct kin_ctx *ctx, struct kin_shard *e)
{
    struct kin_part *kp = kin_fetch_part_new(ctx, e);
    if (!kp) {
        sl_log_error(KIN_COMP, ctx->env.inst, "%s: out of memory, trying again at the next listing",
                     e->info.id);
        return;
    }
    struct sl_part *part = NULL;
    int r = ctx->env.part_add(ctx->env.owner, e->info.id, e->info.id, &part);
    if (r == SL_EAGAIN) {
        /* another process holds its lease: offered again at offer_again or the next listing */
        kin_fetch_part_free(kp);
        return;
    }
    if (r < 0) {
        sl_log_error(KIN_COMP, ctx->env.inst, "%s: %s, trying again at the next listing",
                     e->info.id, sl_strerror(r));
        kin_fetch_part_free(kp);
        return;
    }
    e->kp = kp;
    e->added = true;
    kin_fetch_part_attach(kp, part);
}

/* True when every parent of e is done or unknown here (expired, as the lineage rule has it). */
static bool kin_shards_parents_done(struct kin_ctx *ctx, const struct kin_shard *e)
{
    const char *parents[2] = {e->info.parent, e->info.adjacent_parent};
    for (size_t i = 0; i < 2; i++) {
        const struct kin_shard *p = parents[i][0] ? kin_shards_find(ctx, parents[i]) : NULL;
        if (p && !p->done) {
            return false;
        }
    }
    return true;
}

/* Starts the children closed shards named whose parents are all done. */
static void kin_shards_start_named(struct kin_ctx *ctx)
{
    for (struct kin_shard *e = ctx->shards; e; e = e->next) {
        if (e->named && !e->added && !e->done && kin_shards_parents_done(ctx, e)) {
            e->from_trim_horizon = true; /* a child: all of it, as AWS and KCL do */
            sl_log_info(KIN_COMP, ctx->env.inst,
                        "%s: starting it, named by its parent's last GetRecords", e->info.id);
            kin_shards_add(ctx, e);
        }
    }
}

/* GetRecords' ChildShards of a closed shard: the children enter the table (if not there) and
 * start as soon as their parents are done, here or at the parent's release. */
static void
kin_shards_children(struct kin_ctx *ctx, const struct kinesis_child_shard *children, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct kinesis_child_shard *c = &children[i];
        if (strlen(c->id) > KINESIS_SHARD_ID_MAX) {
            continue;
        }
        struct kin_shard *e = kin_shards_find(ctx, c->id);
        if (!e) {
            e = sl_calloc(1, sizeof(*e));
            if (!e) {
                continue; /* the next listing finds it */
            }
            (void)snprintf(e->info.id, sizeof(e->info.id), "%s", c->id);
            for (size_t k = 0; k < c->n_parents && k < 2; k++) {
                char *dst = k == 0 ? e->info.parent : e->info.adjacent_parent;
                (void)snprintf(dst, KINESIS_SHARD_ID_MAX + 1, "%s", c->parents[k]);
            }
            e->next = ctx->shards;
            ctx->shards = e;
        }
        e->named = true;
    }
    kin_shards_start_named(ctx);
}

/* A listing is complete: update the table, start the shards the lineage rule allows, forget
 * expired shards nobody reads. */
static void kin_shards_reconcile(struct kin_ctx *ctx)
{
    struct kinesis_shard_list *l = &ctx->listing;
    for (struct kin_shard *e = ctx->shards; e; e = e->next) {
        e->listed = false;
    }
    bool *done = sl_calloc(l->n ? l->n : 1, sizeof(*done));
    struct kin_shard **ent = sl_calloc(l->n ? l->n : 1, sizeof(*ent));
    if (!done || !ent) {
        sl_free(done);
        sl_free(ent);
        sl_log_error(KIN_COMP, ctx->env.inst, "out of memory reading the shards, trying again");
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        struct kin_shard *e = kin_shards_find(ctx, l->shards[i].id);
        if (!e) {
            e = sl_calloc(1, sizeof(*e));
            if (!e) {
                continue;
            }
            e->next = ctx->shards;
            ctx->shards = e;
        }
        e->info = l->shards[i];
        e->listed = true;
        ent[i] = e;
        done[i] = e->done;
    }
    for (size_t i = 0; i < l->n; i++) {
        struct kin_shard *e = ent[i];
        if (!e || e->added || e->done || !kinesis_wire_shard_may_start(l->shards, l->n, done, i)) {
            continue;
        }
        e->from_trim_horizon =
            (e->info.parent[0] && kin_shards_find(ctx, e->info.parent)) ||
            (e->info.adjacent_parent[0] && kin_shards_find(ctx, e->info.adjacent_parent));
        kin_shards_add(ctx, e);
    }
    sl_free(done);
    sl_free(ent);
    for (struct kin_shard *e = ctx->shards; e; e = e->next) {
        if (e->kp && e->kp->not_found && !e->kp->ended) {
            if (e->listed) {
                e->kp->not_found = false; /* listed: still there, the slow retries go on */
            } else {
                kin_fetch_part_drop(e->kp);
            }
        }
    }
    /* expired shards (no longer listed) that no partition uses are forgotten, but for
     * children a closed shard named (they may not be listed yet) */
    struct kin_shard **pp = &ctx->shards;
    while (*pp) {
        struct kin_shard *e = *pp;
        if (!e->listed && !e->kp && !(e->named && !e->added)) {
            *pp = e->next;
            sl_free(e);
        } else {
            pp = &e->next;
        }
    }
}

static int kin_shards_send_page(struct kin_ctx *ctx);

static void kin_shards_page_done(void *arg, const struct kin_answer *a)
{
    struct kin_ctx *ctx = arg;
    ctx->list_req = NULL;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!a->ok) {
        const struct kinesis_error *e = &a->err;
        int64_t delay = ctx->shard_refresh_ms;
        if (e->retry == KINESIS_RETRY_RELIST) {
            delay = 0;
        } else if (e->retry == KINESIS_RETRY_SLOW) {
            delay = KIN_SLOW_RETRY_MS;
            if (!ctx->stream_missing_logged) {
                ctx->stream_missing_logged = true;
                sl_log_warn(KIN_COMP, ctx->env.inst,
                            "stream %s cannot be listed at %s (%s%s%s); waiting for it, asking "
                            "every %ds",
                            ctx->arn.stream, ctx->url, e->type, e->message[0] ? ": " : "",
                            e->message, KIN_SLOW_RETRY_MS / 1000);
            }
        } else if (e->retry == KINESIS_RETRY_THROTTLE) {
            delay = sl_retry_delay_ms(&ctx->retry, ++ctx->list_attempt, &ctx->rng);
            sl_log_limited(&ctx->lim, now, 10000, 4, SL_LOG_WARN, KIN_COMP, ctx->env.inst,
                           "ListShards of %s: %s%s%s, retrying in %lldms", ctx->arn.stream, e->type,
                           e->message[0] ? ": " : "", e->message, (long long)delay);
        } else {
            sl_log_error(KIN_COMP, ctx->env.inst, "ListShards of %s: %s%s%s, retrying in %llds",
                         ctx->arn.stream, e->type, e->message[0] ? ": " : "", e->message,
                         (long long)(delay / 1000));
        }
        kin_shards_arm(ctx, delay);
        return;
    }
    char err[256];
    int r = kinesis_wire_list_shards_read(a->body, a->len, &ctx->listing, err, sizeof(err));
    if (r == 0 && ctx->listing.next_token) {
        r = kin_shards_send_page(ctx);
        if (r == 0) {
            return;
        }
        (void)snprintf(err, sizeof(err), "%s", sl_strerror(r));
    }
    if (r < 0) {
        sl_log_error(KIN_COMP, ctx->env.inst, "ListShards of %s: %s, retrying in %llds",
                     ctx->arn.stream, err, (long long)(ctx->shard_refresh_ms / 1000));
        kin_shards_arm(ctx, ctx->shard_refresh_ms);
        return;
    }
    if (ctx->stream_missing_logged || !ctx->listed) {
        sl_log_info(KIN_COMP, ctx->env.inst, "stream %s: %zu shards listed", ctx->arn.stream,
                    ctx->listing.n);
    }
    ctx->stream_missing_logged = false;
    ctx->list_attempt = 0;
    ctx->listed = true;
    kin_shards_reconcile(ctx);
    kin_shards_arm(ctx, ctx->list_again ? 0 : ctx->shard_refresh_ms);
    ctx->list_again = false;
}

static int kin_shards_send_page(struct kin_ctx *ctx)
{
    const struct kinesis_list_req req = {
        .stream = {.name = ctx->arn.stream},
        .next_token = ctx->listing.next_token,
        .max_results = KIN_LIST_PAGE,
    };
    struct sl_buf b;
    char err[160];
    sl_buf_init(&b);
    int r = kinesis_wire_list_shards(&b, &req, err, sizeof(err));
    if (r == 0) {
        r = kin_http_send(ctx, KINESIS_OP_LIST_SHARDS, &b, kin_shards_page_done, ctx,
                          &ctx->list_req);
    }
    sl_buf_fini(&b);
    return r;
}

static void kin_shards_list(struct kin_ctx *ctx)
{
    if (ctx->list_req) {
        ctx->list_again = true;
        return;
    }
    kinesis_shard_list_fini(&ctx->listing);
    memset(&ctx->listing, 0, sizeof(ctx->listing));
    int r = kin_shards_send_page(ctx);
    if (r < 0) {
        sl_log_error(KIN_COMP, ctx->env.inst, "ListShards of %s: %s, retrying in %llds",
                     ctx->arn.stream, sl_strerror(r), (long long)(ctx->shard_refresh_ms / 1000));
        kin_shards_arm(ctx, ctx->shard_refresh_ms);
    }
}

int kin_shards_start(struct kin_ctx *ctx)
{
    ctx->shard_ended = kin_shards_soon;
    ctx->shard_children = kin_shards_children;
    ctx->list_timer = sl_malloc(sizeof(*ctx->list_timer));
    if (!ctx->list_timer) {
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, ctx->list_timer);
    ctx->list_timer->data = ctx;
    ctx->started_ms = sl_clock_now_ms(ctx->env.clock);
    kin_shards_arm(ctx, 0);
    return 0;
}

void kin_part_release(void *vctx, struct sl_part *part)
{
    struct kin_ctx *ctx = vctx;
    struct kin_part *kp = part->src;
    if (!kp) {
        return;
    }
    struct kin_shard *e = kp->sh;
    bool done = kp->ended && kp->gone && !ctx->stopped;
    e->kp = NULL;
    bool again = !done && !ctx->stopped;
    if (again) {
        e->added = false; /* its lease was lost: offered again at a listing soon */
    }
    part->src = NULL;
    part->event = NULL;
    kin_fetch_part_free(kp);
    if (again) {
        kin_shards_soon(ctx); /* its lease may be ours again already */
    }
    if (done) {
        e->done = true;
        kin_shards_start_named(ctx);
        kin_shards_soon(ctx);
    }
}

void kin_offer_again(void *vctx)
{
    struct kin_ctx *ctx = vctx;
    if (!ctx->stopped) {
        kin_shards_soon(ctx);
    }
}

bool kin_shards_settling(struct kin_ctx *ctx)
{
    if (ctx->stopped || sl_clock_now_ms(ctx->env.clock) - ctx->started_ms > KIN_SETTLE_MAX_MS) {
        return false;
    }
    if (!ctx->listed) {
        return true;
    }
    for (struct kin_shard *e = ctx->shards; e; e = e->next) {
        if (e->kp && !e->kp->ended && !e->kp->answered) {
            return true;
        }
    }
    return false;
}

void kin_shards_stop(struct kin_ctx *ctx)
{
    ctx->stopped = true;
    if (ctx->list_timer) {
        (void)uv_timer_stop(ctx->list_timer);
    }
    if (ctx->list_req) {
        kin_http_cancel(ctx, ctx->list_req);
        ctx->list_req = NULL;
    }
    for (struct kin_shard *e = ctx->shards; e; e = e->next) {
        if (e->kp) {
            kin_fetch_part_stop(e->kp);
        }
    }
}

static void kin_shards_timer_closed(uv_handle_t *h)
{
    sl_free(h);
}

void kin_shards_fini(struct kin_ctx *ctx)
{
    if (ctx->list_timer) {
        uv_close((uv_handle_t *)ctx->list_timer, kin_shards_timer_closed);
        ctx->list_timer = NULL;
    }
    while (ctx->shards) {
        struct kin_shard *e = ctx->shards;
        ctx->shards = e->next;
        if (e->kp) {
            /* the mapping never released it (a failed start): ours to free */
            kin_fetch_part_free(e->kp);
        }
        sl_free(e);
    }
    kinesis_shard_list_fini(&ctx->listing);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_rebalance.c: rebalances: where newly assigned partitions start (the lookup on the
 * thread pool), the assignment, the revoke with its commit on revoke, rebalances deferred while
 * one is in flight, and the leftover offsets of failed commits on revoke. Its own file because
 * it is the one place that holds a group generation across asynchronous steps; it calls the
 * commit, fetch-slot and partition layers, and the adapter calls it (rebalance callback, the
 * revoke queue, fini).
 *
 * About where reading starts: on assignment the committed offsets are fetched
 * (rd_kafka_committed). A partition with one resumes there; one without starts from
 * StartingPosition: TRIM_HORIZON the beginning, LATEST the end, AT_TIMESTAMP the first offset
 * whose timestamp is at or after StartingPositionTimestamp (the end when there is none), each
 * resolved to a real offset by the lookup (offsets_for_times: ListOffsets by time, or for the
 * earliest or latest offset). That offset is where the partition is assigned, and it is
 * committed for the group at once, as if acknowledged (nothing before it is to be delivered, so
 * the commit passes no undelivered record): otherwise a run stopped before a record arrived
 * would leave the group without an offset, and the next run would start from the (new) end
 * again, skipping what was produced meanwhile. The partition has not started, and settling
 * stays true (so --until-idle does not stop), until the broker acknowledged that commit (at most
 * KAFKA_SETTLE_MS; fini commits it again, bounded, if it is still missing). It goes out with the
 * ordinary commits (kafka_commit_async, retried like them), only for a partition of the current
 * assignment: a lookup of an older generation creates no partition and so commits nothing. If
 * the lookup of that offset fails, the partition is assigned at the logical offset for librdkafka
 * to resolve, and the group's offset is committed only with the first record delivered (a
 * warning says so). auto.offset.reset is therefore always "earliest": it applies only when a
 * committed (or fetched) offset is out of range, i.e. the log was truncated by retention under us;
 * the consumer then resumes from the earliest available offset, and the gap is logged as records
 * lost to retention (any jump in offsets is logged; a compacted topic or transaction markers
 * also make jumps, which the line says). If the committed offsets cannot be fetched (timeout),
 * the partitions are assigned without explicit offsets: librdkafka looks them up itself and a
 * partition without one starts from the beginning (duplicates, never a skip), with a warning.
 *
 * About the lookup: its calls (rd_kafka_committed, then for partitions without a committed offset
 * rd_kafka_offsets_for_times, twice for AT_TIMESTAMP when no message is at or after the time)
 * each wait for a broker round trip (up to KAFKA_BLOCK_TIMEOUT_MS each when the coordinator or
 * a leader is slow or away), so they run on libuv's thread pool (a struct kafka_lookup, one per
 * assignment) and the rebalance callback returns without assigning:
 * librdkafka's group stays in its wait-for-assign state, heartbeating, until the lookup's
 * completion calls rd_kafka_assign on the loop with the offsets found. Every assignment and every
 * revoke starts a new generation; a lookup that completes in an older one (a revoke, or another
 * assignment, came while it ran) is dropped without assigning anything, since its partitions are
 * no longer this consumer's to read (the revoke answers librdkafka with rd_kafka_assign(NULL)
 * once its commit ended). fini cancels lookups not yet started and waits for a running one (it
 * uses rk). This is the one use of the pool for network calls: a lookup holds a pool thread for
 * those round trips, at most 3 x KAFKA_BLOCK_TIMEOUT_MS. librdkafka 2.0 has no asynchronous form
 * of either call (ListConsumerGroupOffsets would do the first, but nothing does ListOffsets by
 * time).
 *
 * About rebalances: eager assignors only (range, roundrobin; librdkafka's default);
 * cooperative-sticky is rejected in check(). On revoke the partitions are revoked at once with
 * env->part_revoke (the mapping abandons their batches and releases them when nothing is in
 * flight; an acknowledgement that comes later is ignored) and their staged messages dropped;
 * their acknowledged, uncommitted offsets are committed with rd_kafka_commit_queue on a queue of
 * our own (the revoke queue, which writes KAFKA_REVOKE_KEY to the pipe), and the rebalance
 * callback returns. librdkafka's eager rebalance waits, heartbeating, until the application
 * calls rd_kafka_assign(NULL); kafka_rebalance_revoke_end does that when the commit's answer
 * arrives (on the loop), or when KAFKA_BLOCK_TIMEOUT_MS passed without one (checked each tick; a
 * late answer is then ignored), so the partitions are given up only after their offsets were
 * committed or the commit failed. A rebalance delivered meanwhile waits (kafka_defer) and is
 * handled after it, in order: an assignment made before the revoke's rd_kafka_assign(NULL) would be
 * undone by it. stop() leaves a commit on revoke in flight alone; fini waits for its answer (what
 * is left of its time limit) before its own final commit, which leaves revoked partitions out, so
 * it is sent once; the revoke queue is destroyed, any late answer with it, before rk. Stopped, a
 * revoke commits nothing (fini commits what is live). A partition assigned again later is a new
 * partition object with the same id (the mapping keeps a failing batch's retry state by that
 * id). If the commit on revoke fails or times out (librdkafka's mock cluster, unlike a real
 * broker, refuses OffsetCommit while the group is joining, so it does whenever another member
 * leaves or joins), the acknowledged offset is remembered (the leftover list): when the
 * partition is assigned to this process again, reading resumes there (if beyond the committed
 * offset) and it is committed at the next tick; given to another member, that member reads
 * again from the committed offset (at-least-once).
 */
#include "kafka_int.h"

/* In the worker: where StartingPosition puts the partitions of lk without a committed offset,
 * as offsets (lk->res), with one ListOffsets per leader (rd_kafka_offsets_for_times): by time
 * for AT_TIMESTAMP, else for the latest (-1) or earliest (-2) offset, which a broker answers
 * with the end or the start of the log. An AT_TIMESTAMP partition with no message at or after
 * the time (offset -1) is asked for its end in a second call; if that fails it stays -1. */
static void kafka_lookup_starts(struct kafka_lookup *lk)
{
    int64_t what = lk->starting_position == SL_START_AT_TIMESTAMP ? lk->ts_ms
                   : lk->starting_position == SL_START_LATEST     ? RD_KAFKA_OFFSET_END
                                                                  : RD_KAFKA_OFFSET_BEGINNING;
    for (int i = 0; i < lk->parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &lk->parts->elems[i];
        if (p->offset >= 0) {
            continue;
        }
        if (!lk->res && !(lk->res = rd_kafka_topic_partition_list_new(lk->parts->cnt))) {
            return;
        }
        rd_kafka_topic_partition_list_add(lk->res, p->topic, p->partition)->offset = what;
    }
    if (!lk->res) {
        return;
    }
    lk->res_err = rd_kafka_offsets_for_times(lk->rk, lk->res, KAFKA_BLOCK_TIMEOUT_MS);
    if (lk->res_err || lk->starting_position != SL_START_AT_TIMESTAMP) {
        return;
    }
    rd_kafka_topic_partition_list_t *end = NULL;
    for (int i = 0; i < lk->res->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &lk->res->elems[i];
        if (r->err || r->offset >= 0) {
            continue;
        }
        if (!end && !(end = rd_kafka_topic_partition_list_new(lk->res->cnt))) {
            return;
        }
        rd_kafka_topic_partition_list_add(end, r->topic, r->partition)->offset =
            RD_KAFKA_OFFSET_END;
    }
    if (end && rd_kafka_offsets_for_times(lk->rk, end, KAFKA_BLOCK_TIMEOUT_MS) == 0) {
        for (int i = 0; i < end->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &end->elems[i];
            if (!e->err && e->offset >= 0) {
                rd_kafka_topic_partition_list_find(lk->res, e->topic, e->partition)->offset =
                    e->offset;
            }
        }
    }
    if (end) {
        rd_kafka_topic_partition_list_destroy(end);
    }
}

/* The worker of a lookup, on libuv's thread pool: the blocking calls, nothing else (no logging,
 * no ctx). Each is bounded by KAFKA_BLOCK_TIMEOUT_MS. */
static void kafka_lookup_work(uv_work_t *req)
{
    struct kafka_lookup *lk = req->data;
    lk->err = rd_kafka_committed(lk->rk, lk->parts, KAFKA_BLOCK_TIMEOUT_MS);
    if (lk->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        kafka_lookup_starts(lk);
    }
    uv_mutex_lock(&lk->mu);
    lk->done = true;
    uv_cond_signal(&lk->cv);
    uv_mutex_unlock(&lk->mu);
}

static const char *const kafka_start_names[SL_START_COUNT] = {
    [SL_START_TRIM_HORIZON] = "TRIM_HORIZON",
    [SL_START_LATEST] = "LATEST",
    [SL_START_AT_TIMESTAMP] = "AT_TIMESTAMP",
};

/* Decides where each partition of lk starts from what the worker found (see "About where
 * reading starts"): its committed offset, else the offset StartingPosition resolved to (left in
 * lk->res: those are committed at once), else, when that lookup failed, the logical offset
 * (LATEST the end, others the beginning) for librdkafka to resolve; without committed offsets
 * at all, RD_KAFKA_OFFSET_INVALID, which leaves the lookup to librdkafka. */
static void kafka_start_offsets(struct kafka_ctx *ctx, struct kafka_lookup *lk)
{
    rd_kafka_topic_partition_list_t *parts = lk->parts;
    if (lk->err) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "cannot fetch the committed offsets (%s): librdkafka looks them up; "
                    "partitions without one start from the beginning",
                    rd_kafka_err2str(lk->err));
        for (int i = 0; i < parts->cnt; i++) {
            parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        }
        if (lk->res) {
            rd_kafka_topic_partition_list_destroy(lk->res);
            lk->res = NULL;
        }
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->offset >= 0) {
            continue;
        }
        rd_kafka_topic_partition_t *r =
            lk->res ? rd_kafka_topic_partition_list_find(lk->res, p->topic, p->partition) : NULL;
        rd_kafka_resp_err_t e = !r || lk->res_err ? lk->res_err : r->err;
        if (r && e == RD_KAFKA_RESP_ERR_NO_ERROR && r->offset >= 0) {
            p->offset = r->offset;
            continue;
        }
        if (lk->starting_position == SL_START_AT_TIMESTAMP && r && !e) {
            p->offset = RD_KAFKA_OFFSET_END; /* no message at or after the time, and no end */
        } else {
            p->offset = lk->starting_position == SL_START_LATEST ? RD_KAFKA_OFFSET_END
                                                                 : RD_KAFKA_OFFSET_BEGINNING;
        }
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "%s-%" PRId32 ": cannot look up where StartingPosition %s starts (%s): "
                    "reading from the %s; the group's offset is committed only with the first "
                    "record delivered",
                    p->topic, p->partition, kafka_start_names[lk->starting_position],
                    !r  ? "out of memory"
                    : e ? rd_kafka_err2str(e)
                        : "no end offset",
                    p->offset == RD_KAFKA_OFFSET_END ? "end" : "beginning");
        if (r) {
            r->offset = RD_KAFKA_OFFSET_INVALID; /* not a start to commit */
        }
    }
}

static void kafka_lookup_free(struct kafka_lookup *lk)
{
    if (lk->parts) {
        rd_kafka_topic_partition_list_destroy(lk->parts);
    }
    if (lk->res) {
        rd_kafka_topic_partition_list_destroy(lk->res);
    }
    uv_cond_destroy(&lk->cv);
    uv_mutex_destroy(&lk->mu);
    sl_free(lk);
}

/* Orphans every lookup in flight and returns once none of them can touch rk any more: those
 * not started are canceled, a running one is waited for (its calls are bounded). Their
 * completions still run on the loop, and only free them. Shutdown only (fini). */
void kafka_rebalance_abandon(struct kafka_ctx *ctx)
{
    while (ctx->lookups) {
        struct kafka_lookup *lk = ctx->lookups;
        ctx->lookups = lk->next;
        lk->ctx = NULL;
        lk->next = NULL;
        if (uv_cancel((uv_req_t *)&lk->req) == 0) {
            continue;
        }
        uv_mutex_lock(&lk->mu);
        while (!lk->done) {
            uv_cond_wait(&lk->cv, &lk->mu);
        }
        uv_mutex_unlock(&lk->mu);
    }
}

/* Remembers kp's acknowledged offset when its commit on revoke failed (the mock cluster, unlike
 * a real broker, refuses commits while the group is joining): if the partition comes back to
 * this process, reading resumes there instead of re-delivering what was acknowledged. */
static void kafka_leftover_keep(
    struct kafka_ctx *ctx, const char *topic, int32_t partition, int64_t acked, int64_t committed)
{
    if (!ctx->leftover && !(ctx->leftover = rd_kafka_topic_partition_list_new(8))) {
        return;
    }
    rd_kafka_topic_partition_t *e =
        rd_kafka_topic_partition_list_find(ctx->leftover, topic, partition);
    if (!e) {
        e = rd_kafka_topic_partition_list_add(ctx->leftover, topic, partition);
        e->offset = -1;
    }
    if (acked > e->offset) {
        e->offset = acked;
    }
    sl_log_info(KAFKA_COMP, ctx->env.inst,
                "%s-%" PRId32 ": offset %" PRId64 " was acknowledged but not committed; if the "
                "partition is assigned here again reading resumes there, elsewhere it is read "
                "again from %" PRId64,
                topic, partition, acked, committed);
}

/* The leftover acknowledged offset of topic/partition (removed from the list), or -1. */
static int64_t kafka_leftover_take(struct kafka_ctx *ctx, const char *topic, int32_t partition)
{
    if (!ctx->leftover) {
        return -1;
    }
    rd_kafka_topic_partition_t *e =
        rd_kafka_topic_partition_list_find(ctx->leftover, topic, partition);
    if (!e) {
        return -1;
    }
    int64_t off = e->offset;
    (void)rd_kafka_topic_partition_list_del(ctx->leftover, topic, partition);
    return off;
}

/* Gives kp its own queue, no longer forwarded to the consumer queue, that writes kp's key to the
 * pipe when it becomes non-empty. Called before rd_kafka_assign (see "About fetching"). */
static void kafka_queue_open(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    kp->q = rd_kafka_queue_get_partition(ctx->rk, kp->topic, kp->partition);
    if (!kp->q) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "%s: no partition queue (out of memory): its messages come through the "
                    "consumer queue",
                    kp->part->name);
        return;
    }
    rd_kafka_queue_forward(kp->q, NULL);
    if (ctx->io) {
        rd_kafka_queue_io_event_enable(kp->q, ctx->io->wfd, &kp->key, sizeof(kp->key));
    }
}

/* Pauses the partitions of l (marked paused by the caller) before they are assigned; those
 * librdkafka did not pause are marked fetching again. Frees l. */
static void kafka_pause_list(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(ctx->rk, l);
    for (int i = 0; i < l->cnt; i++) {
        if (err || l->elems[i].err) {
            struct kafka_part *kp = kafka_part_find(ctx, l->elems[i].topic, l->elems[i].partition);
            if (kp) {
                kp->paused = false;
            }
        }
    }
    sl_log_info(KAFKA_COMP, ctx->env.inst,
                "%d partition(s) wait for a fetch slot: %zu fetch at once within "
                "max_bytes_buffered",
                l->cnt, kafka_fetch_slots(ctx));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Makes the assignment parts, whose offsets say where each partition starts: the partitions,
 * their queues, then rd_kafka_assign. The partitions in resolved (may be NULL) have no committed
 * offset and start where StartingPosition resolved to (kafka_start_offsets): that offset counts
 * as acknowledged, since nothing before it is to be delivered, and is committed at once (see
 * "About where reading starts"). */
static void kafka_assign_apply(struct kafka_ctx *ctx,
                               rd_kafka_topic_partition_list_t *parts,
                               const rd_kafka_topic_partition_list_t *resolved)
{
    ctx->assigned_once = true;
    bool commit_now = false;
    bool any_paused;
    size_t n_fetching = kafka_fetch_active(ctx, &any_paused);
    size_t slots = kafka_fetch_slots(ctx);
    rd_kafka_topic_partition_list_t *paused = NULL;
    rd_kafka_topic_partition_list_t *resumed = NULL;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (kafka_part_find(ctx, p->topic, p->partition)) {
            continue;
        }
        const rd_kafka_topic_partition_t *r =
            resolved ? rd_kafka_topic_partition_list_find(resolved, p->topic, p->partition) : NULL;
        bool fresh = r && r->offset >= 0 && r->offset == p->offset;
        int64_t committed = fresh ? -1 : p->offset;
        int64_t left = kafka_leftover_take(ctx, p->topic, p->partition);
        bool use_left = left >= 0 && left > committed;
        if (use_left) {
            p->offset = left; /* acknowledged here before the rebalance: see kafka_leftover_keep */
            fresh = false;
        }
        struct kafka_part *kp = kafka_part_new(ctx, p->topic, p->partition, p->offset);
        if (!kp) {
            sl_log_error(KAFKA_COMP, ctx->env.inst,
                         "%s-%" PRId32 ": out of memory adding the partition, skipping it",
                         p->topic, p->partition);
            continue;
        }
        kafka_queue_open(ctx, kp);
        if (kp->q && n_fetching >= slots) {
            /* no fetch slot for it yet: paused before librdkafka starts fetching it */
            if (!paused) {
                paused = rd_kafka_topic_partition_list_new(parts->cnt);
            }
            if (paused) {
                rd_kafka_topic_partition_list_add(paused, kp->topic, kp->partition);
                kp->paused = true;
            }
        } else if (kp->q) {
            /* resumed all the same: a pause from an earlier assignment of it would stay */
            if (!resumed) {
                resumed = rd_kafka_topic_partition_list_new(parts->cnt);
            }
            if (resumed) {
                rd_kafka_topic_partition_list_add(resumed, kp->topic, kp->partition);
            }
            n_fetching++;
            kp->slot_ms = sl_clock_now_ms(ctx->env.clock);
        }
        char from[160];
        if (use_left) {
            kp->committed = committed >= 0 ? committed : -1;
            kp->acked = left;
            kp->dirty = true; /* committed by the next tick */
            (void)snprintf(from, sizeof(from),
                           "offset %" PRId64 " (acknowledged here before the rebalance)",
                           p->offset);
        } else if (fresh) {
            kp->committed = -1;
            kp->acked = p->offset;
            kp->dirty = true;
            kp->start_by_ms = sl_clock_now_ms(ctx->env.clock) + KAFKA_SETTLE_MS;
            commit_now = true;
            (void)snprintf(from, sizeof(from),
                           "offset %" PRId64 " (StartingPosition %s; the group has no committed "
                           "offset: committing it)",
                           p->offset, kafka_start_names[ctx->env.starting_position]);
        } else if (p->offset >= 0) {
            (void)snprintf(from, sizeof(from), "offset %" PRId64, p->offset);
        }
        sl_log_info(KAFKA_COMP, ctx->env.inst, "%s: assigned, reading from %s", kp->part->name,
                    p->offset >= 0                           ? from
                    : p->offset == RD_KAFKA_OFFSET_END       ? "the end (LATEST)"
                    : p->offset == RD_KAFKA_OFFSET_BEGINNING ? "the beginning"
                                                             : "the committed offset");
    }
    if (paused) {
        kafka_pause_list(ctx, paused);
    }
    if (resumed) {
        (void)rd_kafka_resume_partitions(ctx->rk, resumed);
        rd_kafka_topic_partition_list_destroy(resumed);
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(ctx->rk, parts);
    if (err) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "assigning partitions failed: %s",
                     rd_kafka_err2str(err));
    }
    if (commit_now) {
        kafka_commit_async(ctx); /* else the next tick, once the commit in flight answered */
    }
}

/* A lookup finished (or was canceled by fini), on the loop: assigns its partitions if it is
 * still the current generation, else drops it. */
static void kafka_lookup_done(uv_work_t *req, int status)
{
    struct kafka_lookup *lk = req->data;
    struct kafka_ctx *ctx = lk->ctx;
    if (!ctx) {
        kafka_lookup_free(lk); /* orphaned by fini */
        return;
    }
    for (struct kafka_lookup **pp = &ctx->lookups; *pp; pp = &(*pp)->next) {
        if (*pp == lk) {
            *pp = lk->next;
            break;
        }
    }
    if (status < 0) {
        /* only fini cancels, and it orphans first; treat it as a failed lookup all the same */
        lk->err = RD_KAFKA_RESP_ERR__INTR;
    }
    if (lk->gen != ctx->assign_gen) {
        sl_log_info(KAFKA_COMP, ctx->env.inst,
                    "dropping an assignment of %d partition(s) revoked while their committed "
                    "offsets were looked up",
                    lk->parts->cnt);
    } else if (ctx->stopped) {
        (void)rd_kafka_assign(ctx->rk, NULL);
    } else {
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "start offsets of %d partition(s) found in %" PRId64 "ms", lk->parts->cnt,
                     sl_clock_now_ms(ctx->env.clock) - lk->started_ms);
        kafka_start_offsets(ctx, lk);
        kafka_assign_apply(ctx, lk->parts, lk->res);
    }
    kafka_lookup_free(lk);
}

/* An assignment arrived: starts the lookup of where its partitions start, on the thread pool
 * (see "About where reading starts"); kafka_lookup_done assigns them. An empty assignment
 * needs no lookup. */
static void kafka_assign(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *parts)
{
    ctx->assign_gen++;
    if (parts->cnt == 0) {
        kafka_assign_apply(ctx, parts, NULL);
        return;
    }
    struct kafka_lookup *lk = sl_calloc(1, sizeof(*lk));
    if (!lk || uv_mutex_init(&lk->mu) < 0) {
        sl_free(lk);
        lk = NULL;
    } else if (uv_cond_init(&lk->cv) < 0) {
        uv_mutex_destroy(&lk->mu);
        sl_free(lk);
        lk = NULL;
    }
    if (lk) {
        lk->req.data = lk;
        lk->ctx = ctx;
        lk->gen = ctx->assign_gen;
        lk->rk = ctx->rk;
        lk->starting_position = ctx->env.starting_position;
        lk->ts_ms = ctx->env.starting_position_ts_ms;
        lk->started_ms = sl_clock_now_ms(ctx->env.clock);
        lk->parts = rd_kafka_topic_partition_list_copy(parts);
    }
    if (lk && lk->parts &&
        uv_queue_work(ctx->env.loop, &lk->req, kafka_lookup_work, kafka_lookup_done) == 0) {
        lk->next = ctx->lookups;
        ctx->lookups = lk;
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "%d partition(s) assigned: looking up their committed offsets", parts->cnt);
        return;
    }
    if (lk) {
        kafka_lookup_free(lk);
    }
    /* Out of memory: as when the committed offsets cannot be fetched, librdkafka looks them up. */
    sl_log_warn(KAFKA_COMP, ctx->env.inst,
                "cannot look up the committed offsets (out of memory): librdkafka looks them up; "
                "partitions without one start from the beginning");
    for (int i = 0; i < parts->cnt; i++) {
        parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    }
    kafka_assign_apply(ctx, parts, NULL);
}

static void kafka_rebalance(struct kafka_ctx *ctx,
                            rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts);

/* Handles, in order, the rebalances deferred while a commit on revoke was in flight, until one
 * of them starts another such commit. */
void kafka_rebalance_replay(struct kafka_ctx *ctx)
{
    while (ctx->deferred && !ctx->revoking.offsets) {
        struct kafka_deferred *d = ctx->deferred;
        ctx->deferred = d->next;
        kafka_rebalance(ctx, d->err, d->parts);
        rd_kafka_topic_partition_list_destroy(d->parts);
        sl_free(d);
    }
}

/* The commit on revoke ended: committed (err 0 and res, its per-partition result), failed, or
 * timed out (res NULL). A partition whose offset was not committed is remembered in the
 * leftover list, as before (see "About rebalances"); then the partitions are given up
 * (rd_kafka_assign(NULL): librdkafka's rebalance goes on) and the rebalances that came
 * meanwhile are handled. */
void kafka_rebalance_revoke_end(struct kafka_ctx *ctx,
                                rd_kafka_resp_err_t err,
                                const rd_kafka_topic_partition_list_t *res)
{
    struct kafka_revoking rv = ctx->revoking;
    memset(&ctx->revoking, 0, sizeof(ctx->revoking));
    assert(rv.offsets);
    int failed = 0;
    rd_kafka_resp_err_t why = err;
    for (int i = 0; i < rv.offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &rv.offsets->elems[i];
        const rd_kafka_topic_partition_t *r =
            res ? rd_kafka_topic_partition_list_find(res, p->topic, p->partition) : NULL;
        rd_kafka_resp_err_t e = err ? err : !r ? RD_KAFKA_RESP_ERR__TIMED_OUT : r->err;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            sl_log_debug(KAFKA_COMP, ctx->env.inst, "committed offset %" PRId64 " of %s-%" PRId32,
                         p->offset, p->topic, p->partition);
            continue;
        }
        why = e;
        failed++;
        kafka_leftover_keep(ctx, p->topic, p->partition, p->offset,
                            rv.committed ? rv.committed[i] : -1);
    }
    int64_t took_ms = sl_clock_now_ms(ctx->env.clock) - rv.started_ms;
    if (failed) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "committing %d of %d partition(s) given up in a rebalance failed after "
                    "%" PRId64 "ms: %s",
                    failed, rv.offsets->cnt, took_ms, rd_kafka_err2str(why));
    } else {
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "committed %d partition(s) given up in a rebalance in %" PRId64 "ms",
                     rv.offsets->cnt, took_ms);
    }
    rd_kafka_topic_partition_list_destroy(rv.offsets);
    sl_free(rv.committed);
    (void)rd_kafka_assign(ctx->rk, NULL);
    kafka_rebalance_replay(ctx);
}

/* One event from the revoke queue: the answer to the commit on revoke in flight, or a late one
 * to an earlier commit that was given up on (KAFKA_BLOCK_TIMEOUT_MS), which changes nothing. */
void kafka_rebalance_revoke_event(struct kafka_ctx *ctx, rd_kafka_event_t *ev)
{
    if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT) {
        return;
    }
    uintptr_t seq = (uintptr_t)rd_kafka_event_opaque(ev);
    if (!ctx->revoking.offsets || seq != (uintptr_t)ctx->revoking.seq) {
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "a commit given up on in an earlier rebalance answered late: %s",
                     rd_kafka_err2str(rd_kafka_event_error(ev)));
        return;
    }
    kafka_rebalance_revoke_end(ctx, rd_kafka_event_error(ev),
                               rd_kafka_event_topic_partition_list(ev));
}

/* Serves the revoke queue without blocking, and gives up on a commit on revoke that took
 * KAFKA_BLOCK_TIMEOUT_MS (its partitions' offsets then go to the leftover list). */
void kafka_rebalance_revoke_poll(struct kafka_ctx *ctx)
{
    rd_kafka_event_t *ev;
    while (ctx->rq && (ev = rd_kafka_queue_poll(ctx->rq, 0))) {
        kafka_rebalance_revoke_event(ctx, ev);
        rd_kafka_event_destroy(ev);
    }
    if (ctx->revoking.offsets && sl_clock_now_ms(ctx->env.clock) >= ctx->revoking.deadline_ms) {
        kafka_rebalance_revoke_end(ctx, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
    }
}

/* Partitions are revoked (eager: all of them). The mapping gives them up at once
 * (env->part_revoke; acknowledgements that come later are ignored, as they always were), then
 * their acknowledged, uncommitted offsets are committed asynchronously, the answer arriving on
 * the revoke queue (kafka_rebalance_revoke_poll, on the loop); librdkafka, which waits for
 * rd_kafka_assign(NULL) before it rejoins the group, gets it only once the commit ended
 * (kafka_rebalance_revoke_end). Nothing to commit, or stopped (fini commits what is live): at once.
 */
static void kafka_revoke(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *parts)
{
    struct kafka_revoking rv = {0};
    if (!ctx->stopped) {
        rv.offsets = kafka_commit_list(ctx, parts);
    }
    if (rv.offsets) {
        rv.committed = sl_calloc((size_t)rv.offsets->cnt, sizeof(*rv.committed));
        for (int i = 0; rv.committed && i < rv.offsets->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &rv.offsets->elems[i];
            const struct kafka_part *kp = kafka_part_find(ctx, p->topic, p->partition);
            rv.committed[i] = kp ? kp->committed : -1;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        struct kafka_part *kp =
            kafka_part_find(ctx, parts->elems[i].topic, parts->elems[i].partition);
        if (!kp) {
            continue;
        }
        if (!ctx->stopped && kp->acked > kp->committed && !rv.offsets) {
            /* not being committed (out of memory for the list) */
            kafka_leftover_keep(ctx, kp->topic, kp->partition, kp->acked, kp->committed);
        }
        kp->revoked = true;
        kafka_part_queue_close(kp);
        kafka_part_stage_clear(kp);
        if (ctx->last_hit == kp) {
            ctx->last_hit = NULL;
        }
        if (kp->acked > kp->committed && rv.offsets) {
            sl_log_info(KAFKA_COMP, ctx->env.inst,
                        "%s: revoked (committed up to %" PRId64 ", committing %" PRId64 ")",
                        kp->part->name, kp->committed, kp->acked);
        } else {
            sl_log_info(KAFKA_COMP, ctx->env.inst, "%s: revoked (committed up to %" PRId64 ")",
                        kp->part->name, kp->committed);
        }
        if (!ctx->stopped) {
            ctx->env.part_revoke(ctx->env.owner, kp->part); /* may release kp at once */
        }
    }
    if (!rv.offsets) {
        (void)rd_kafka_assign(ctx->rk, NULL);
        return;
    }
    rv.seq = ++ctx->revoke_seq;
    rv.started_ms = sl_clock_now_ms(ctx->env.clock);
    rv.deadline_ms = rv.started_ms + KAFKA_BLOCK_TIMEOUT_MS;
    ctx->revoking = rv;
    rd_kafka_resp_err_t err = ctx->rq ? rd_kafka_commit_queue(ctx->rk, rv.offsets, ctx->rq, NULL,
                                                              (void *)(uintptr_t)rv.seq)
                                      : RD_KAFKA_RESP_ERR__STATE;
    if (err) {
        kafka_rebalance_revoke_end(ctx, err, NULL);
        return;
    }
    sl_log_debug(KAFKA_COMP, ctx->env.inst,
                 "committing %d partition(s) before giving them up in the rebalance",
                 rv.offsets->cnt);
}

/* Handles one rebalance (kafka_rebalance_cb, or replayed by kafka_rebalance_replay). */
static void kafka_rebalance(struct kafka_ctx *ctx,
                            rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && !ctx->stopped) {
        kafka_assign(ctx, parts);
        return;
    }
    ctx->assign_gen++; /* a lookup still running for an earlier assignment is stale now */
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        kafka_revoke(ctx, parts);
    } else {
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            sl_log_warn(KAFKA_COMP, ctx->env.inst, "rebalance failed: %s", rd_kafka_err2str(err));
        }
        (void)rd_kafka_assign(ctx->rk, NULL);
    }
}

/* Keeps a rebalance that came while a commit on revoke is in flight for after it: handled now,
 * its rd_kafka_assign would come before the revoke's rd_kafka_assign(NULL), which would then
 * undo it. Out of memory for the copy, the commits in flight are given up on (their offsets go
 * to the leftover list, as when they fail) so that order is kept all the same. */
static void
kafka_defer(struct kafka_ctx *ctx, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts)
{
    struct kafka_deferred *d = sl_calloc(1, sizeof(*d));
    if (d && !(d->parts = rd_kafka_topic_partition_list_copy(parts))) {
        sl_free(d);
        d = NULL;
    }
    if (d) {
        struct kafka_deferred **pp = &ctx->deferred;
        while (*pp) {
            pp = &(*pp)->next;
        }
        d->err = err;
        *pp = d;
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "a rebalance came while partitions given up are being committed: it waits");
        return;
    }
    sl_log_error(KAFKA_COMP, ctx->env.inst,
                 "out of memory keeping a rebalance for after a commit in flight: not waiting for "
                 "the commit");
    while (ctx->revoking.offsets) {
        kafka_rebalance_revoke_end(ctx, RD_KAFKA_RESP_ERR__TIMED_OUT,
                                   NULL); /* replays what waited */
    }
    kafka_rebalance(ctx, err, parts);
}

void kafka_rebalance_cb(rd_kafka_t *rk,
                        rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts,
                        void *opaque)
{
    (void)rk;
    struct kafka_ctx *ctx = opaque;
    if (ctx->revoking.offsets || ctx->deferred) {
        kafka_defer(ctx, err, parts);
        return;
    }
    kafka_rebalance(ctx, err, parts);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_commit.c: commits of acknowledged offsets (ack records them, the timer's
 * kafka_commit_async sends them, kafka_commit_bounded waits for one on shutdown) and their
 * results (kafka_commit_cb). Its own layer because the rebalance (commit on revoke) and the
 * adapter (tick, fini) both use it; it calls nothing above it: librdkafka reports results
 * through kafka_commit_cb, installed by kafka.c.
 *
 * About positions: Kafka's committed offsets are the checkpoint (keeps_positions): the mapping's
 * store is not used. ack(part, last) records the offset after last's (offset + 1) as the
 * partition's acknowledged offset (so is, at assignment, a start resolved from StartingPosition:
 * see "About where reading starts"); the timer commits every changed partition at most every 100 ms
 * with one asynchronous OffsetCommit carrying explicit offsets (so offsets_store is not needed;
 * auto commit and auto store are off). A failed commit is logged and sent again one second later.
 * On revoke the acknowledged offsets of the revoked partitions are committed (asynchronously,
 * see "About rebalances") before they are given up; at shutdown everything acknowledged is
 * committed (bounded wait).
 */
#include "kafka_int.h"

/* Adds the partitions whose acknowledged offset is not committed (only the revoked set's when
 * revoked is not NULL) to a new list, marking them as being committed. */
rd_kafka_topic_partition_list_t *kafka_commit_list(struct kafka_ctx *ctx,
                                                   const rd_kafka_topic_partition_list_t *only)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < ctx->n_parts; i++) {
        struct kafka_part *kp = ctx->parts[i];
        if (kp->revoked || kp->acked < 0 || kp->acked <= kp->committed) {
            continue;
        }
        if (only && !rd_kafka_topic_partition_list_find(only, kp->topic, kp->partition)) {
            continue;
        }
        if (!only && !kp->dirty) {
            continue;
        }
        if (!l && !(l = rd_kafka_topic_partition_list_new((int)ctx->n_parts))) {
            return NULL;
        }
        rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = kp->acked;
        kp->dirty = false;
    }
    return l;
}

/* Notes commit results: a partition's committed offset moves, or it is marked to retry. */
static void kafka_note_committed(struct kafka_ctx *ctx,
                                 rd_kafka_resp_err_t err,
                                 const rd_kafka_topic_partition_list_t *offsets)
{
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &offsets->elems[i];
        struct kafka_part *kp = kafka_part_find(ctx, p->topic, p->partition);
        rd_kafka_resp_err_t e = p->err ? p->err : err;
        if (!kp) {
            continue;
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && p->offset >= 0) {
            if (p->offset > kp->committed) {
                kp->committed = p->offset;
            }
            sl_log_debug(KAFKA_COMP, ctx->env.inst, "committed offset %" PRId64 " of %s-%" PRId32,
                         p->offset, p->topic, p->partition);
        } else if (e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            kp->dirty = true;
            ctx->commit_retry_at_ms = sl_clock_now_ms(ctx->env.clock) + KAFKA_COMMIT_RETRY_MS;
            kafka_log_limited(ctx, SL_LOG_WARN, 10000 + (int)e,
                              "committing offset %" PRId64 " of %s-%" PRId32 " failed: %s, "
                              "retrying",
                              p->offset, p->topic, p->partition, rd_kafka_err2str(e));
        }
    }
}

void kafka_commit_cb(rd_kafka_t *rk,
                     rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *offsets,
                     void *opaque)
{
    (void)rk;
    struct kafka_ctx *ctx = opaque;
    ctx->commit_inflight = false;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return;
    }
    if (err && !offsets) {
        kafka_log_limited(ctx, SL_LOG_WARN, 10000 + (int)err, "commit failed: %s, retrying",
                          rd_kafka_err2str(err));
        return;
    }
    kafka_note_committed(ctx, err, offsets);
}

/* Sends one asynchronous commit of every acknowledged, uncommitted offset (one at a time). */
void kafka_commit_async(struct kafka_ctx *ctx)
{
    if (!ctx->rk || ctx->commit_inflight ||
        sl_clock_now_ms(ctx->env.clock) < ctx->commit_retry_at_ms) {
        return;
    }
    rd_kafka_topic_partition_list_t *l = kafka_commit_list(ctx, NULL);
    if (!l) {
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit(ctx->rk, l, 1);
    if (err) {
        for (int i = 0; i < l->cnt; i++) {
            struct kafka_part *kp = kafka_part_find(ctx, l->elems[i].topic, l->elems[i].partition);
            if (kp) {
                kp->dirty = true;
            }
        }
        ctx->commit_retry_at_ms = sl_clock_now_ms(ctx->env.clock) + KAFKA_COMMIT_RETRY_MS;
        kafka_log_limited(ctx, SL_LOG_WARN, 10000 + (int)err, "commit failed: %s, retrying",
                          rd_kafka_err2str(err));
    } else {
        ctx->commit_inflight = true;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Commits l and waits for the answer at most timeout_ms; used on revoke and at shutdown. */
void kafka_commit_bounded(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *l, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ctx->rk);
    if (!q) {
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(ctx->rk, l, q, NULL, NULL);
    rd_kafka_event_t *ev = err ? NULL : rd_kafka_queue_poll(q, timeout_ms);
    if (!err && !ev) {
        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    if (ev) {
        err = rd_kafka_event_error(ev);
        const rd_kafka_topic_partition_list_t *res = rd_kafka_event_topic_partition_list(ev);
        kafka_note_committed(ctx, err, res);
    }
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "committing %d partition(s) failed: %s; they will be read again from the "
                    "last committed offsets",
                    l->cnt, rd_kafka_err2str(err));
    } else if (!err) {
        sl_log_debug(KAFKA_COMP, ctx->env.inst, "committed %d partition(s)", l->cnt);
    }
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
}

void kafka_ack(void *vctx, struct sl_part *part, const struct sl_record *last)
{
    struct kafka_ctx *ctx = vctx;
    struct kafka_part *kp = part->src;
    if (!kp || kp->revoked) {
        return;
    }
    int64_t next = (int64_t)kafka_rec_offset(part, last) + 1;
    if (next > kp->acked) {
        kp->acked = next;
        kp->dirty = true;
    }
    if (ctx->stopped) {
        return; /* committed in fini */
    }
}

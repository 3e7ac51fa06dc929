/* SPDX-License-Identifier: Apache-2.0 */
/* queuebatch.c: records of a queue source (caps->model SL_DELIVERY_QUEUE) at their ends. Records
 * of a queue are acknowledged one by one, so the verdict on an answer is a set of failed
 * records rather than a prefix: the partial batch response's listed records, spread to the
 * rest of their group in the batch (FIFO order), or all of them. It also turns ranges of the
 * batch into the source's lease lists (queue_hold, queue_ack, queue_release), in runs of one
 * partition; and the same for a partition's records outside batches (filtered ones, those a
 * drain gives back, one whose lease was lost). The carry (carry.c) and the mapping (mapping.c)
 * decide when; this file only reads records and calls the source. Loop thread. */
#include "queuebatch.h"

#include <string.h>

#include "alloc.h"
#include "invoker.h"
#include "source.h"

#define QB_CHUNK 64 /* leases per call at most */

enum qb_op { QB_ACK, QB_RELEASE, QB_HOLD };

static void qb_call(const struct sl_source_ops *ops,
                    void *src_ctx,
                    struct sl_part *part,
                    enum qb_op op,
                    const uint64_t *leases,
                    size_t n,
                    int64_t arg)
{
    if (n == 0) {
        return;
    }
    /* A refusal (out of memory) leaves the lease to run out: the message comes back. */
    switch (op) {
    case QB_ACK:
        (void)ops->queue_ack(src_ctx, part, leases, n);
        break;
    case QB_RELEASE:
        (void)ops->queue_release(src_ctx, part, leases, n, arg);
        break;
    case QB_HOLD:
        (void)ops->queue_hold(src_ctx, part, leases, n, arg);
        break;
    }
}

/* Calls op for the records of r not done whose failed mark is want (failed NULL: not
 * marked), in runs of one partition. Returns how many. */
static size_t qb_each(const struct sl_source_ops *ops,
                      void *src_ctx,
                      const struct sl_lanebatch *b,
                      struct sl_lanebatch_range r,
                      const bool *failed,
                      bool want,
                      enum qb_op op,
                      int64_t arg)
{
    uint64_t leases[QB_CHUNK];
    size_t n = 0;
    size_t total = 0;
    struct sl_part *run = NULL;
    for (size_t i = r.lo; i < r.hi; i++) {
        const struct sl_record *rec = sl_lanebatch_rec(b, i);
        bool marked = failed && failed[i - r.lo];
        if ((rec->flags & SL_REC_DONE) || marked != want) {
            continue;
        }
        struct sl_part *part = sl_lanebatch_part(b, i);
        if (n == QB_CHUNK || (n > 0 && part != run)) {
            qb_call(ops, src_ctx, run, op, leases, n, arg);
            n = 0;
        }
        run = part;
        leases[n++] = sl_queue_rec_lease(rec);
        total++;
    }
    qb_call(ops, src_ctx, run, op, leases, n, arg);
    return total;
}

size_t sl_queuebatch_judge(const struct sl_source_ops *ops,
                           void *src_ctx,
                           const struct sl_lanebatch *b,
                           struct sl_lanebatch_range r,
                           const struct sl_invoke_result *res,
                           bool report_item_failures,
                           bool *failed)
{
    size_t n = r.hi - r.lo;
    bool all = res->outcome != SL_OUTCOME_SUCCESS;
    memset(failed, 0, n * sizeof(*failed));
    if (!all && report_item_failures && n > 0) {
        char *idbuf = sl_malloc(n * SL_LANEBATCH_ID_MAX);
        const char **ids = sl_malloc(n * sizeof(*ids));
        if (!idbuf || !ids) {
            all = true; /* cannot read it: released, delivered again */
        } else {
            for (size_t i = 0; i < n; i++) {
                ids[i] = sl_lanebatch_item_id(b, r.lo + i, idbuf + i * SL_LANEBATCH_ID_MAX);
            }
            struct sl_partial partial;
            sl_invoker_parse_partial(ops, res->body, res->body_len, ids, n, failed, &partial);
            if (partial.kind == SL_PARTIAL_INVALID) {
                all = true;
            } else if (partial.kind == SL_PARTIAL_ALL_OK) {
                memset(failed, 0, n * sizeof(*failed));
            }
        }
        sl_free(ids);
        sl_free(idbuf);
    }
    if (all) {
        for (size_t i = 0; i < n; i++) {
            failed[i] = true;
        }
        return n;
    }
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!failed[i]) {
            continue;
        }
        count++;
        const char *key = NULL;
        struct sl_part *part = sl_lanebatch_part(b, r.lo + i);
        size_t len = ops->record_key(src_ctx, part, sl_lanebatch_rec(b, r.lo + i), &key);
        if (len == 0) {
            continue; /* no group: no order to keep */
        }
        for (size_t j = i + 1; j < n; j++) {
            const char *k2 = NULL;
            if (failed[j] || sl_lanebatch_part(b, r.lo + j) != part) {
                continue;
            }
            size_t l2 = ops->record_key(src_ctx, part, sl_lanebatch_rec(b, r.lo + j), &k2);
            if (l2 == len && memcmp(k2, key, len) == 0) {
                failed[j] = true;
            }
        }
    }
    return count;
}

size_t sl_queuebatch_end(const struct sl_source_ops *ops,
                         void *src_ctx,
                         const struct sl_lanebatch *b,
                         struct sl_lanebatch_range r,
                         const bool *failed,
                         int64_t visible_in_ms)
{
    size_t acked = qb_each(ops, src_ctx, b, r, failed, false, QB_ACK, 0);
    if (failed) {
        (void)qb_each(ops, src_ctx, b, r, failed, true, QB_RELEASE, visible_in_ms);
    }
    return acked;
}

void sl_queuebatch_hold(const struct sl_source_ops *ops,
                        void *src_ctx,
                        const struct sl_lanebatch *b,
                        struct sl_lanebatch_range r,
                        int64_t until_ms)
{
    (void)qb_each(ops, src_ctx, b, r, NULL, false, QB_HOLD, until_ms);
}

void sl_queuebatch_release(const struct sl_source_ops *ops,
                           void *src_ctx,
                           const struct sl_lanebatch *b,
                           struct sl_lanebatch_range r,
                           int64_t visible_in_ms)
{
    (void)qb_each(ops, src_ctx, b, r, NULL, false, QB_RELEASE, visible_in_ms);
}

size_t sl_queue_part_end(const struct sl_source_ops *ops,
                         void *src_ctx,
                         struct sl_part *part,
                         size_t from,
                         uint16_t mask,
                         uint16_t want,
                         bool ack,
                         int64_t visible_in_ms)
{
    struct sl_recq *q = &part->q;
    uint64_t leases[QB_CHUNK];
    size_t n = 0;
    size_t total = 0;
    size_t count = sl_recq_count(q);
    for (size_t i = from; i <= count; i++) {
        if (i == count || n == QB_CHUNK) {
            qb_call(ops, src_ctx, part, ack ? QB_ACK : QB_RELEASE, leases, n, visible_in_ms);
            n = 0;
        }
        if (i == count) {
            break;
        }
        const struct sl_record *rec = sl_recq_at(q, i);
        if ((rec->flags & mask) == want) {
            leases[n++] = sl_queue_rec_lease(rec);
            total++;
        }
    }
    return total;
}

bool sl_queue_part_lost(const struct sl_source_ops *ops,
                        void *src_ctx,
                        struct sl_part *part,
                        uint64_t lease)
{
    struct sl_recq *q = &part->q;
    for (size_t i = 0; i < sl_recq_count(q); i++) {
        struct sl_record *rec = sl_recq_at_mut(q, i);
        if (sl_queue_rec_lease(rec) != lease) {
            continue;
        }
        if (rec->flags & (SL_REC_TAKEN | SL_REC_DONE)) {
            return false;
        }
        qb_call(ops, src_ctx, part, QB_RELEASE, &lease, 1, SL_QUEUE_KEEP_VISIBILITY);
        rec->flags |= SL_REC_DONE;
        return true;
    }
    return false;
}

size_t sl_queuebatch_settle(const struct sl_source_ops *ops,
                            void *src_ctx,
                            const struct sl_lanebatch *b,
                            struct sl_lanebatch_range r,
                            const struct sl_invoke_result *res,
                            bool report_item_failures,
                            int64_t visible_in_ms,
                            size_t *ret_acked)
{
    size_t n = r.hi - r.lo;
    bool *failed = sl_calloc(n ? n : 1, sizeof(*failed));
    *ret_acked = 0;
    if (!failed) {
        sl_queuebatch_release(ops, src_ctx, b, r, visible_in_ms);
        return n;
    }
    size_t n_failed = sl_queuebatch_judge(ops, src_ctx, b, r, res, report_item_failures, failed);
    *ret_acked = sl_queuebatch_end(ops, src_ctx, b, r, failed, visible_in_ms);
    sl_free(failed);
    return n_failed;
}

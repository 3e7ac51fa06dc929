/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_QUEUEBATCH_H
#define SL_QUEUEBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "function.h"
#include "lanebatch.h"

struct sl_source_ops;

/* The queue model's ends of records (sources/README.md "The queue model"): which records of an
 * answered batch failed, and the source's queue operations on the leases of a batch's records
 * or of a partition's (hold, ack, release). It calls only the source. Loop thread. */

/* How long a batch's leases are held past the start of its invocation: the function's timeout
 * and a margin (30 s); when the function cannot tell its timeout, AWS Lambda's longest
 * (15 min). */
#define SL_QUEUEBATCH_HOLD_MARGIN_MS     ((int64_t)30 * 1000)
#define SL_QUEUEBATCH_UNKNOWN_TIMEOUT_MS ((int64_t)900 * 1000)
/* How long past a batch's first invocation its leases may be held when the source's caps do not
 * say: SQS's limit (a visibility timeout reaches at most 12 hours from the receive). */
#define SL_QUEUE_MAX_HOLD_MS ((int64_t)12 * 3600 * 1000)

/* Judges the answer res to the records r of b: sets failed[i - r.lo] for each record that is
 * not delivered and returns how many. Success: none, or with report_item_failures those the
 * partial response lists (a malformed response or an unknown itemIdentifier: all). For a
 * record of a group (a non-empty record_key: SQS FIFO's MessageGroupId) that failed, every
 * later record of that group in r fails too, so the group's order holds. Any other outcome:
 * all. */
size_t sl_queuebatch_judge(const struct sl_source_ops *ops,
                           void *src_ctx,
                           const struct sl_lanebatch *b,
                           struct sl_lanebatch_range r,
                           const struct sl_invoke_result *res,
                           bool report_item_failures,
                           bool *failed);

/* Ends the leases of the records of r that are not done yet: queue_ack for those not marked
 * in failed (NULL: none is), queue_release(visible_in_ms) for those marked. Does not mark them
 * done. Returns how many were acked. */
size_t sl_queuebatch_end(const struct sl_source_ops *ops,
                         void *src_ctx,
                         const struct sl_lanebatch *b,
                         struct sl_lanebatch_range r,
                         const bool *failed,
                         int64_t visible_in_ms);

/* Judges the answer res to the records r of b (sl_queuebatch_judge) and ends their leases
 * (sl_queuebatch_end: the failed ones released with visible_in_ms). Out of memory: all are
 * released. Returns how many failed, and in *ret_acked how many were acked. */
size_t sl_queuebatch_settle(const struct sl_source_ops *ops,
                            void *src_ctx,
                            const struct sl_lanebatch *b,
                            struct sl_lanebatch_range r,
                            const struct sl_invoke_result *res,
                            bool report_item_failures,
                            int64_t visible_in_ms,
                            size_t *ret_acked);

/* Releases the leases of the records of r that are not done yet (queue_release). */
void sl_queuebatch_release(const struct sl_source_ops *ops,
                           void *src_ctx,
                           const struct sl_lanebatch *b,
                           struct sl_lanebatch_range r,
                           int64_t visible_in_ms);

/* Holds the leases of the records of r until until_ms (queue_hold). */
void sl_queuebatch_hold(const struct sl_source_ops *ops,
                        void *src_ctx,
                        const struct sl_lanebatch *b,
                        struct sl_lanebatch_range r,
                        int64_t until_ms);

/* The records of part's queue from index from on whose flags under mask are want: their
 * leases end, acked (ack) or released with visibility visible_in_ms. Does not mark them done.
 * Returns how many. */
size_t sl_queue_part_end(const struct sl_source_ops *ops,
                         void *src_ctx,
                         struct sl_part *part,
                         size_t from,
                         uint16_t mask,
                         uint16_t want,
                         bool ack,
                         int64_t visible_in_ms);

/* The lease of one of part's records ran out (SL_QUEUE_LEASE_LOST). A record not yet in a batch
 * is released to its running visibility timeout (it is coming back) and marked done: returns
 * true, and the caller moves the partition's progress. One in a batch is left to its
 * invocation, which acks or releases it. */
bool sl_queue_part_lost(const struct sl_source_ops *ops,
                        void *src_ctx,
                        struct sl_part *part,
                        uint64_t lease);

#endif

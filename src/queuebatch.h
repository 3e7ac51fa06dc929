/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_QUEUEBATCH_H
#define SL_QUEUEBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "function.h"
#include "lanebatch.h"

struct sl_source_ops;

/* The queue model's end of a batch (sources/README.md "The queue model"): which records of an
 * answered batch failed, and the source's queue operations on their leases (hold, ack,
 * release). It calls only the source. Loop thread. */

/* How long a batch's leases are held past the start of its invocation: the engine does not
 * know the function's own timeout, so AWS Lambda's longest (15 min) and a margin (30 s). */
#define SL_QUEUEBATCH_HOLD_MS ((int64_t)(900 + 30) * 1000)

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

#endif

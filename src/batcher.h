/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_BATCHER_H
#define SL_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct sl_part;
struct sl_source_ops;

/* Lambda's synchronous payload limit: an event is at most this many bytes as sent. */
#define SL_BATCH_MAX_PAYLOAD_BYTES 6291456u

struct sl_batch_limits {
    size_t max_records; /* BatchSize */
    size_t max_bytes;   /* SL_BATCH_MAX_PAYLOAD_BYTES, smaller in tests */
    int64_t window_ms;  /* MaximumBatchingWindowInSeconds */
};

/* When the records waiting in a partition form a batch that is due: immediately (INT64_MIN)
 * once BatchSize records or about max_bytes of payload wait; otherwise when the batching
 * window, opened at window_start_ms, closes (at once for a window of 0). INT64_MAX when
 * nothing waits. window_start_ms is when the window opened: the later of the previous
 * invocation's end and the first waiting record's arrival. Pure. */
int64_t sl_batcher_due_ms(const struct sl_batch_limits *lim,
                          size_t waiting_records,
                          size_t waiting_bytes,
                          int64_t window_start_ms);

/* Appends the opening and the closing of an event of part's records: the source's event
 * shape's encode_open/encode_close (ops must be completed by the registry). Return 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_batcher_open(const struct sl_source_ops *ops,
                                 void *src_ctx,
                                 struct sl_part *part,
                                 struct sl_buf *body);
SL_NODISCARD int sl_batcher_close(const struct sl_source_ops *ops,
                                  void *src_ctx,
                                  struct sl_part *part,
                                  struct sl_buf *body);

/* One record of a batch and the partition it belongs to. */
struct sl_batch_ref {
    struct sl_part *part;
    const struct sl_record *rec;
};

/* Encodes the n >= 1 records refs lists, in order, into body (cleared first): the opening of
 * the first record's partition, records joined by the shape's sep (and, where the partition
 * changes, its encode_next_part), the closing, counting the bytes actually produced.
 * Encoding stops before the first record that would take the event past lim->max_bytes or
 * that is flagged SL_REC_OVERSIZE, and before a change of partition the source cannot express.
 * *ret_n is the number encoded; 0 means the first record cannot be sent on its own: the caller
 * fails it. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_batcher_encode(const struct sl_batch_limits *lim,
                                   const struct sl_source_ops *ops,
                                   void *src_ctx,
                                   const struct sl_batch_ref *refs,
                                   size_t n,
                                   struct sl_buf *body,
                                   size_t *ret_n);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* batcher.c: when a batch is due and what goes in it. A batch is sent as soon as any limit is
 * met (BatchSize records, the 6 MB payload as actually encoded, or the batching window), as
 * Lambda does. Records are encoded straight from the partition's queue into the request body,
 * so the bytes counted are the bytes sent. Pure functions of their arguments; loop thread. */
#include "batcher.h"

#include <stdbool.h>
#include <string.h>

#include "partition.h"
#include "source.h"

int64_t sl_batcher_due_ms(const struct sl_batch_limits *lim,
                          size_t waiting_records,
                          size_t waiting_bytes,
                          int64_t window_start_ms)
{
    if (waiting_records == 0) {
        return INT64_MAX;
    }
    /* Base64 makes payload 4/3 of the raw bytes: past that, the payload limit is reached. */
    if (waiting_records >= lim->max_records || waiting_bytes / 3 * 4 >= lim->max_bytes) {
        return INT64_MIN;
    }
    if (lim->window_ms <= 0) {
        return INT64_MIN;
    }
    return window_start_ms + lim->window_ms;
}

/* Bytes of event fields a record needs beside its data, for reserving an event's room at once
 * (the Kinesis-shaped record's fields are about 300). */
#define BATCHER_FIELDS_PER_RECORD 384

int sl_batcher_open(const struct sl_source_ops *ops,
                    void *src_ctx,
                    struct sl_part *part,
                    struct sl_buf *body)
{
    return ops->event->encode_open(ops, src_ctx, part, body);
}

int sl_batcher_close(const struct sl_source_ops *ops,
                     void *src_ctx,
                     struct sl_part *part,
                     struct sl_buf *body)
{
    return ops->event->encode_close(ops, src_ctx, part, body);
}

int sl_batcher_encode(const struct sl_batch_limits *lim,
                      const struct sl_source_ops *ops,
                      void *src_ctx,
                      const struct sl_batch_ref *refs,
                      size_t n,
                      struct sl_buf *body,
                      size_t *ret_n)
{
    const size_t sep_len = strlen(ops->event->sep);
    size_t done = 0;
    sl_buf_truncate(body, 0);
    /* One reservation for the whole event rather than a dozen doublings, each a copy: each
     * record's data as base64 and room for its fields, at most the payload limit. */
    size_t want = 0;
    for (size_t i = 0; i < n && want < lim->max_bytes; i++) {
        want += (size_t)refs[i].rec->len / 3 * 4 + BATCHER_FIELDS_PER_RECORD;
    }
    if (sl_buf_reserve(body, want < lim->max_bytes ? want : lim->max_bytes) < 0 ||
        sl_batcher_open(ops, src_ctx, refs[0].part, body) < 0) {
        return SL_ENOMEM;
    }
    /* The closing counts against the payload limit from the first record on. */
    struct sl_buf closing;
    sl_buf_init(&closing);
    if (sl_batcher_close(ops, src_ctx, refs[0].part, &closing) < 0) {
        sl_buf_fini(&closing);
        return SL_ENOMEM;
    }
    const size_t close_len = closing.len;
    int r = 0;
    while (done < n) {
        const struct sl_record *rec = refs[done].rec;
        if (rec->flags & SL_REC_OVERSIZE) {
            break;
        }
        bool next_part = done > 0 && refs[done].part != refs[done - 1].part;
        if (next_part && !ops->caps->batch_spans_partitions) {
            break;
        }
        size_t mark = body->len;
        if (next_part) {
            r = ops->event->encode_next_part(ops, src_ctx, refs[done].part, body);
        } else if (done > 0) {
            r = sl_buf_append(body, ops->event->sep, sep_len);
        }
        if (r < 0 || ops->encode_record(src_ctx, refs[done].part, rec, body) < 0) {
            r = SL_ENOMEM;
            goto out;
        }
        if (body->len + close_len > lim->max_bytes) {
            sl_buf_truncate(body, mark);
            break;
        }
        done++;
    }
    r = sl_buf_append(body, closing.data, closing.len);
out:
    sl_buf_fini(&closing);
    if (r < 0) {
        return SL_ENOMEM;
    }
    *ret_n = done;
    return 0;
}

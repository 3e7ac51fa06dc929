/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_EVENT_H
#define SL_EVENT_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

struct sl_batch_run;
struct sl_part;
struct sl_record;
struct sl_source_ops;

/* An event shape (reference/esm.md §2, §4): how the records of a batch are wrapped for the
 * function, what an on-failure destination's invocation record says about them, and what a
 * filter sees of a payload. One const object per shape, which adapters point at
 * (sl_source_ops.event): sl_event_kinesis (event_kinesis.h: files now, Kinesis and Redis
 * Streams next), Kafka's (sources/kafka/, since it needs Kafka's own state), SQS's next. How
 * one record is written stays the adapter's (sl_source_ops.encode_record), since it needs the
 * adapter's state; the shape's modules give it helpers for that (sl_event_kinesis_encode).
 *
 * The operations get the completed source ops and the source's ctx (src_ctx), so that a shape
 * can ask the adapter what it knows (the Kinesis shape: format_item_id for sequence numbers,
 * part->event for the partition's template). Members marked "May be NULL" are filled with
 * defaults by sl_event_format_complete(), which the registry applies to every source's shape
 * (on a copy), so the core never tests them for NULL. Loop thread. */
struct sl_event_format {
    const char *name;  /* "kinesis", "kafka": for tests and logs */
    const char *open;  /* before the first record, when it does not depend on the partition */
    const char *sep;   /* between two records: "," (required) */
    const char *close; /* after the last record */
    /* Writes the opening of an event made of part's records, when it depends on the partition
     * (Kafka: {"eventSource":...,"records":{"topic-0":[). May be NULL: open. */
    int (*encode_open)(const struct sl_source_ops *ops,
                       void *src_ctx,
                       struct sl_part *part,
                       struct sl_buf *out);
    /* Writes its closing. May be NULL: close. */
    int (*encode_close)(const struct sl_source_ops *ops,
                        void *src_ctx,
                        struct sl_part *part,
                        struct sl_buf *out);
    /* For sources whose batches span partitions (caps->batch_spans_partitions, which needs a
     * shape that has it): what separates the last record of one partition from the first of
     * the next, part being the next (Kafka: ],"topic-1":[ ). May be NULL: the shape cannot
     * span partitions (the default fails with SL_EINVAL; the engine never calls it then). */
    int (*encode_next_part)(const struct sl_source_ops *ops,
                            void *src_ctx,
                            struct sl_part *part,
                            struct sl_buf *out);
    /* Appends the batch-info member of an invocation record, key included, for the records
     * the runs cover (n_runs >= 1; one run per partition, in batch order):
     * "KinesisBatchInfo":{...} (esm.md §4.4). May be NULL: a generic
     * "BatchInfo":{"partition":<first run's partition>,"batchSize":<records>}. */
    int (*encode_batch_info)(const struct sl_source_ops *ops,
                             void *src_ctx,
                             const struct sl_batch_run *runs,
                             size_t n_runs,
                             struct sl_buf *out);
    /* The batch-info member of the invocation record a one-document-per-record destination
     * (kafka://) receives for rec: Kafka's "KafkaBatchInfo" with "recordInfo". May be NULL:
     * encode_batch_info of that one record. */
    int (*encode_record_info)(const struct sl_source_ops *ops,
                              void *src_ctx,
                              struct sl_part *part,
                              const struct sl_record *rec,
                              struct sl_buf *out);
    /* Appends the eventSourceARN of part's records, raw (not JSON-escaped): a tumbling window's
     * event names its source with it (esm.md §6; for Kinesis the stream's ARN, never a
     * shard's). May be NULL: the source's scheme followed by the partition's name. */
    int (*encode_source_arn)(const struct sl_source_ops *ops,
                             void *src_ctx,
                             struct sl_part *part,
                             struct sl_buf *out);
    /* The top-level members of the adapter's filter document (sl_source_ops.filter_doc) that
     * hold payloads ({"data", NULL} for the Kinesis shape; {"key", "value", NULL} for Kafka),
     * and whether a pattern that looks inside one that is not JSON is matched on metadata
     * only (Kafka) instead of failing (Kinesis). May be NULL: none. */
    const char *const *filter_payload_fields;
    bool filter_payload_mismatch_ignored;
};

/* Fills every absent optional member of ev with its default (the "May be NULL:" above). ev
 * must have sep, and open or encode_open, and close or encode_close. */
void sl_event_format_complete(struct sl_event_format *ev);

#endif

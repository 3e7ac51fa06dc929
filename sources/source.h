/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "event.h"
#include "opt.h"
#include "partition.h"
#include "sl_adapters.h"

#define SL_SOURCE_ABI 6u

/* --- The queue model (caps->model SL_DELIVERY_QUEUE; sources/README.md "The queue model") --- */

/* What env->queue_report says about one lease. */
enum sl_queue_report {
    /* Final, after queue_ack: the message is deleted at the source. */
    SL_QUEUE_ACKED,
    /* Final, after queue_ack: the source gave up deleting it (err: SL_ENOTFOUND the receipt
     * handle is no longer valid, SL_ETIMEDOUT the retries ran out, or what the service
     * said). The message stays in the queue and comes back; nothing more is owed. */
    SL_QUEUE_ACK_FAILED,
    /* Not final: the lease ran out or an extension was refused while the mapping still held
     * the record; the message may already be visible to other consumers. The mapping still
     * ends the lease (queue_ack or queue_release). */
    SL_QUEUE_LEASE_LOST,
    SL_QUEUE_REPORT_COUNT
};

/* queue_release's visible_in_ms: leave the message to its running visibility timeout. */
#define SL_QUEUE_KEEP_VISIBILITY (-1)

/* The lease a queue source's record holds: its position, which a queue source writes as one
 * native 64-bit number (sl_recq_push's pos, pos_len 8) when it fetches it (records of queue
 * sources are not checkpointed, so their position is free for this). The one place that knows
 * where the lease lives in a record. */
static inline uint64_t sl_queue_rec_lease(const struct sl_record *rec)
{
    return sl_recq_pos_u64(NULL, rec, 0); /* 8 bytes: inline, no queue needed */
}

/* "acked", "ack_failed", "lease_lost". */
const char *sl_queue_report_name(enum sl_queue_report report);

/* What a source gets from the mapping that runs it. The callbacks are the mapping's; they may
 * be called only on the loop thread, never from inside fetch() for the same partition (except
 * part_set_start), and part_add only from start() and the source's own timers and watchers. */
struct sl_source_env {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const char *inst;                /* the mapping's name, for logs */
    const char *region;              /* awsRegion written into events */
    const char *arn;                 /* the mapping's EventSourceArn */
    int starting_position;           /* enum sl_starting_position */
    int64_t starting_position_ts_ms; /* for AT_TIMESTAMP */
    /* The mapping's memory budget (max_records_buffered, max_bytes_buffered). What the source
     * holds outside the mapping (a client library's prefetch queues) counts against it too. */
    int64_t max_records_buffered;
    int64_t max_bytes_buffered;
    void *owner;
    /* A partition appeared. Returns 0 and *ret_part (owned by the mapping; its ckpt_pos and
     * ckpt_meta hold the stored checkpoint, if any), SL_EAGAIN (caps->leases: another process
     * holds the partition's lease now; offer it again later) or SL_ENOMEM. The source must set
     * part->src before returning to the loop. */
    int (*part_add)(void *owner, const char *id, const char *name, struct sl_part **ret_part);
    /* New records may be fetchable from part (after fetch returned 0). */
    void (*part_wake)(void *owner, struct sl_part *part);
    /* An asynchronous fetch (fetch returned SL_EINPROGRESS) finished: n records were appended
     * to part->q, or n is a negative SL_E* error. */
    void (*part_fetched)(void *owner, struct sl_part *part, int n);
    /* The source will produce nothing more from part (a rotated file read to its end). The
     * mapping finishes the records it holds, then calls ops->part_release and frees it. */
    void (*part_gone)(void *owner, struct sl_part *part);
    /* part is taken away now (a Kafka rebalance): the mapping drops its records, abandons its
     * batches in flight without acknowledging anything more of it, and calls part_release
     * once nothing of it is in flight. The source must not touch part after part_release. */
    void (*part_revoke)(void *owner, struct sl_part *part);
    /* part starts at pos (the position text, as the checkpoint holds it) with part->meta: the
     * mapping records it in its checkpoint store at once, and invokes nothing of part before
     * that is on disk, so a run that stops before any record of part is done resumes from
     * there (a LATEST start, the new content of a truncated file) instead of choosing again.
     * Only while the mapping holds no record of part (its queue is empty). May be called from
     * fetch(). Sources that keep positions (keeps_positions) record them themselves: a no-op
     * for them. Returns 0 or SL_ENOMEM. */
    int (*part_set_start)(void *owner, struct sl_part *part, const char *pos);

    /* --- queue sources only (caps->model SL_DELIVERY_QUEUE; see "The queue model" below) --- */
    /* What happened to the lease of one record (enum sl_queue_report; err: 0 or the SL_E* that
     * caused it). Never called from inside a source operation (always from a later loop turn),
     * never after stop returned. The mapping may call queue_ack/queue_release/queue_hold from
     * inside it. NULL for stream sources' env. */
    void (*queue_report)(
        void *owner, struct sl_part *part, uint64_t lease, enum sl_queue_report report, int err);
    /* The source learned what queue_limits tells later than start (SQS: the queue's
     * VisibilityTimeout from GetQueueAttributes): the mapping asks queue_limits again and warns
     * when the visibility timeout is shorter than the function timeout + window. BatchSize is
     * checked against what start told only. Not from inside a source operation. NULL for
     * stream sources' env. */
    void (*queue_limits_changed)(void *owner);
};

/* The records of one partition in a batch: n of them, first .. last in position order. */
struct sl_batch_run {
    struct sl_part *part;
    const struct sl_record *first;
    const struct sl_record *last;
    size_t n;
};

/* How a source delivers, and so how the engine acknowledges it (sources/README.md). */
enum sl_delivery_model {
    /* One batch in flight per partition (per key with ParallelizationFactor); the contiguous
     * low-watermark is acknowledged (ack) and checkpointed. Files, Kafka, Kinesis, Redis. */
    SL_DELIVERY_STREAM,
    /* Many batches in flight per queue; each record acknowledged or released on its own;
     * order only within a group. SQS. */
    SL_DELIVERY_QUEUE,
};

/* When the batching window (MaximumBatchingWindowInSeconds) opens. */
enum sl_window_rule {
    SL_WINDOW_AFTER_INVOKE,      /* when the previous invocation ended (streams) */
    SL_WINDOW_FROM_FIRST_RECORD, /* when the batch's first record arrived (Kafka) */
};

/* The unit of a source's lag (ops->lag), as the progress line names it. */
enum sl_lag_unit {
    SL_LAG_RECORDS, /* records not yet fetched (Kafka: high watermark - position) */
    SL_LAG_BYTES,   /* bytes not yet read (files) */
    SL_LAG_MS,      /* milliseconds behind the newest record (Kinesis: MillisBehindLatest) */
    SL_LAG_UNIT_COUNT
};

/* "records", "bytes", "ms". */
const char *sl_lag_unit_name(enum sl_lag_unit unit);

/* What a kind of source is, declared once by its adapter: the engine and the configuration
 * decide from these, never from the adapter's name. */
struct sl_source_caps {
    enum sl_delivery_model model;
    /* AWS's defaults and ranges for this kind of source (reference/esm.md §1). */
    int64_t batch_size_default;      /* 100 for streams */
    int64_t batch_size_max;          /* 10000 */
    bool starting_position_required; /* streams: StartingPosition must be given */
    bool at_timestamp_supported;     /* StartingPosition AT_TIMESTAMP is meaningful */
    /* MaximumBatchingWindowInSeconds when the mapping does not say (Kafka: 500 ms). */
    int64_t window_ms_default;
    enum sl_window_rule window_rule;
    /* The source keeps positions itself (Kafka's committed offsets): the mapping neither
     * loads nor writes its checkpoint store for it, and acknowledges through ack() alone. */
    bool keeps_positions;
    /* A batch may hold records of several partitions (Kafka: esm.md §3), grouped by
     * partition, each partition's in order (the event shape's encode_next_part separates
     * them, so the shape must have one). */
    bool batch_spans_partitions;
    /* Its partitions may be shared among processes by leases (with a Redis checkpoint store:
     * src/lease.c): it offers every partition through part_add, takes SL_EAGAIN as "not now,
     * another process holds it" (offering it again at offer_again or at its next look at the
     * partitions), and offers again a partition released without being done (its lease lost).
     * Sources with a group protocol of their own (Kafka) or queues leave it false. */
    bool leases;
    enum sl_lag_unit lag_unit;
    /* A queue: a BatchSize above this needs MaximumBatchingWindowInSeconds >= 1 (AWS's rule for
     * SQS: 10); 0: no such rule. */
    int64_t window_required_above;
    /* A queue: how long past a record's receive the mapping may keep holding its lease (SQS: a
     * visibility timeout reaches at most 12 hours from the receive); 0: 12 hours. */
    int64_t max_hold_ms;
    /* A stream whose fetches are paced (Kinesis: five GetRecords a second per shard, each of up
     * to 10,000 records) may hold this many records per partition rather than two batches per
     * lane, so one fetch can read a whole page. Its partitions share the mapping's
     * max_records_buffered (the Limit of a fetch in flight counts as held): each gets its share
     * (the bound divided among them), a busy one may borrow what quiet ones leave, busy ones
     * split evenly (src/mapping_budget.c); and max_bytes_buffered bounds the bytes. 0: two
     * batches per lane (files, Kafka). */
    size_t fetch_records_min;
    /* max_records_buffered when the mapping does not say (Kinesis: four full GetRecords pages,
     * so every shard of a few can read whole pages; max_bytes_buffered still bounds the
     * bytes); 0: the option's own default. */
    int64_t records_buffered_default;
};

/* What a queue tells of itself once started (queue_limits): what its kind's caps cannot say,
 * since it depends on the queue (SQS learns it from the queue's attributes at start). */
struct sl_queue_limits {
    int64_t batch_size_max; /* the largest BatchSize the queue takes (SQS FIFO: 10) */
    int64_t visibility_ms;  /* its visibility timeout; 0: unknown */
};

/* A source adapter: one const object per kind, found by its EventSourceArn scheme. The core
 * callocs ctx_size bytes, applies the adapter's options (from the mapping object) into ctx,
 * then calls init. All calls happen on the loop thread. An operation that returns an error
 * never calls its callback. */
struct sl_source_ops {
    uint32_t abi;              /* SL_SOURCE_ABI */
    const char *name;          /* "file": [a-z0-9_] */
    const char *scheme;        /* "file://": prefix of EventSourceArn this adapter serves */
    const struct sl_opt *opts; /* adapter options (snake_case keys in the mapping), {0}-ended */
    size_t ctx_size;
    /* The shape of its events (event.h): &sl_event_kinesis, Kafka's. Required. */
    const struct sl_event_format *event;
    /* What kind of source this is and the rules that follow from it, in one const object. */
    const struct sl_source_caps *caps;
    /* A second EventSourceArn prefix this adapter serves ("arn:aws:kafka:"), or NULL. */
    const char *arn_prefix;
    /* What EventSourceArn (or the keys standing for it) may be, as errors list what is allowed:
     * "file:///path or glob". May be NULL: the scheme. */
    const char *arn_forms;

    /* Checks the ARN and the applied options; fills errbuf (naming what is wrong and what is
     * allowed; one problem per line, starting with its key, "EventSourceArn: ..." for the ARN)
     * and returns SL_ECONFIG when they are invalid. Must not start any I/O: validate calls it
     * too. */
    int (*check)(void *ctx, const char *arn, char *errbuf, size_t errlen);
    /* For a mapping without EventSourceArn: the ARN this source would serve, derived from the
     * mapping's other keys (self-managed Kafka: SelfManagedEventSource.Endpoints.
     * KAFKA_BOOTSTRAP_SERVERS), owned, in *ret_arn, and the key it came from in *ret_key
     * (static); *ret_arn NULL when the mapping has none. Returns 0 or SL_ENOMEM. No I/O. May
     * be NULL: never (*ret_arn NULL). */
    int (*arn_from_mapping)(const cJSON *mapping, char **ret_arn, const char **ret_key);
    /* Checks an on-failure destination on this source's own cluster (a sink with
     * uses_source_cluster whose scheme is this source's: kafka://TOPIC), for a mapping of this
     * source (same_source) or of another. Fills errbuf (starting with the destination, shown
     * redacted) and returns SL_ECONFIG when it is not allowed. No I/O. May be NULL: every such
     * destination is refused (the source has no cluster to share). */
    int (*check_destination)(bool same_source,
                             const cJSON *mapping,
                             const char *destination,
                             char *errbuf,
                             size_t errlen);
    /* Reads an itemIdentifier of a partial batch response that is not a string (Kafka's
     * {"partition":"<topic>-<p>","offset":N}) as the text format_item_id writes, into buf.
     * Returns buf, or NULL when id is not such a form. Only the batch's own source reads its
     * response (sl_invoker_parse_partial), never another adapter. May be NULL: only strings
     * identify. */
    const char *(*read_item_id)(const cJSON *id, char *buf, size_t len);
    /* Prepares ctx; no partitions yet. Returns 0, SL_ECONFIG (errbuf filled) or SL_ENOMEM. */
    int (*init)(void *ctx, const struct sl_source_env *env, char *errbuf, size_t errlen);
    /* Starts discovering partitions (calls env->part_add). */
    int (*start)(void *ctx);
    /* Appends up to max_records records (and about max_bytes bytes; at least one record even
     * if it alone is larger) to part->q. Returns the number appended (0: none now, and the
     * source will call part_wake when there may be more), SL_EINPROGRESS (part_fetched will
     * follow), or a negative error (the mapping backs off and tries again). */
    int (*fetch)(void *ctx, struct sl_part *part, size_t max_records, size_t max_bytes);
    /* Appends the JSON of one record of part to out, exactly as the function receives it. */
    int (*encode_record)(void *ctx,
                         struct sl_part *part,
                         const struct sl_record *rec,
                         struct sl_buf *out);
    /* Positions are the adapter's bytes (sl_recq_push's pos, read back with sl_recq_pos()):
     * the core never reads them, so these three are required (no default could know what the
     * bytes mean; sources/README.md, "Positions").
     *
     * Orders two positions of one partition: < 0, 0 or > 0 as a is before, at or after b. */
    int (*compare_pos)(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len);
    /* Writes the checkpoint text for "everything up to and including rec is done", NUL
     * terminated, into buf (len bytes; SL_EINVAL if it does not fit). It is what part->ckpt_pos
     * holds when the source starts again. */
    int (*format_pos)(
        void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
    /* The record's itemIdentifier in partial batch responses (Kinesis: its sequenceNumber),
     * written NUL-terminated into buf (SL_EINVAL if it does not fit); also how logs and the
     * retry state of a revoked partition name a record. */
    int (*format_item_id)(
        void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
    /* The record's partition key, which orders records under ParallelizationFactor > 1:
     * records with equal keys are delivered in order. Returns the key's length and points
     * *ret_key at it (borrowed until the record is dropped). May be NULL: the default gives
     * every record the same empty key. */
    size_t (*record_key)(void *ctx,
                         struct sl_part *part,
                         const struct sl_record *rec,
                         const char **ret_key);
    /* Returns the document FilterCriteria patterns are matched against (owned by the caller,
     * cJSON_Delete it), or NULL on OOM. Streams: the record's metadata at the top level and
     * its payload under "data", parsed as JSON when it is JSON (esm.md §5). May be NULL: the
     * source cannot filter (filters false), and a mapping with FilterCriteria is refused.
     * Which of its members hold payloads, and the rule for those that are not JSON, are the
     * event shape's (event->filter_payload_fields). */
    cJSON *(*filter_doc)(void *ctx, struct sl_part *part, const struct sl_record *rec);
    /* True while the source is still getting ready to produce records (joining a consumer
     * group, waiting for a partition's first answer from the broker): --until-idle counts
     * idle time only from the first fetch after it. It must turn false within a bounded time
     * even if the source never becomes ready. May be NULL: never settling. */
    bool (*settling)(void *ctx);
    /* What is available at the source but not yet fetched, in caps->lag_unit, or -1 if unknown (the
     * progress line then says unknown, not 0; so it does before part's first fetch). May be
     * NULL: always unknown (-1). */
    int64_t (*lag)(void *ctx, struct sl_part *part);
    /* Every record of part up to and including last is done (delivered, filtered out, or
     * handed to the on-failure path): acknowledge it at the source (Kafka: store and commit
     * the offset after it). Called in order, once per advance of the low-watermark. May be
     * NULL: nothing to acknowledge. */
    void (*ack)(void *ctx, struct sl_part *part, const struct sl_record *last);
    /* The mapping is done with part (after part_gone, part_revoke, or at stop): free
     * part->src. May be NULL: nothing to free. */
    void (*part_release)(void *ctx, struct sl_part *part);
    /* A lease was taken (caps->leases): offer again soon, through part_add, every partition
     * not added yet. May be NULL: nothing (the next look at the partitions offers them). */
    void (*offer_again)(void *ctx);
    /* The client properties another client of the source's own cluster needs to connect to it
     * as the source does (a kafka:// destination's producer). Kafka: librdkafka properties,
     * bootstrap.servers and the connection security (security.protocol, sasl.*, ssl.*) from
     * SourceAccessConfigurations and the "rdkafka" pass-through. Called after init, before
     * start. Fills *ret_props (empty on entry; the caller frees it with sl_strmap_clear(,
     * true): values may be secrets, never to be logged). Returns 0, SL_ECONFIG (errbuf
     * filled, without secrets) or SL_ENOMEM; on error *ret_props holds nothing. May be NULL:
     * the source has no cluster to share (shares_cluster false; the default adds nothing). */
    int (*client_props)(void *ctx, struct sl_strmap *ret_props, char *errbuf, size_t errlen);
    /* Stops all timers and watchers; no callbacks after it returns. Non-blocking. May be NULL:
     * nothing to stop. */
    void (*stop)(void *ctx);
    /* Frees ctx's contents (not ctx). Safe after a failed or missing init. */
    void (*fini)(void *ctx);

    /* --- The queue model: operations of queue sources (caps->model SL_DELIVERY_QUEUE). ------
     *
     * A queue source (SQS) hands out leases: fetch receives messages, each of which stays invisible
     * to other consumers until its lease (visibility timeout) runs out, and comes back (its receive
     * count + 1) unless it is deleted first. Each record a queue source appends to part->q is one
     * lease, named by a number the source chooses (sl_queue_rec_lease): unique within the instance,
     * never reused, never 0. The mapping names records to these operations by that number, so it
     * may drop a record's bytes once it called queue_ack or queue_release.
     *
     * Every lease the mapping received ends with exactly one of: queue_release (the mapping lets it
     * go), or queue_ack followed by one final queue_report (SL_QUEUE_ACKED or SL_QUEUE_ACK_FAILED);
     * stop and part_release end all of them at once, reporting nothing. Before that end the source
     * may report SL_QUEUE_LEASE_LOST once for it.
     *
     * The order of a queue exists only within a group: record_key gives a record's group (SQS FIFO:
     * MessageGroupId), and an empty key means the record belongs to no group (a standard queue: no
     * order at all). A source never hands out a record of a group while an earlier record of that
     * group holds a lease (SQS does this itself).
     *
     * For queue sources the mapping keeps no checkpoint and never calls ack(part, last); it neither
     * retries function errors in process nor bisects, and has no on-failure destination (the
     * queue's redrive policy takes their place, as in AWS).
     *
     * Loop thread, never after stop. Each returns 0, or a negative SL_E* (SL_ENOMEM) when it took
     * none of the leases: the mapping calls again later. Unknown or ended leases are ignored.
     * Stream sources leave all four NULL; the registry's defaults are safe for them and never
     * called. A queue source must give queue_ack, queue_release and queue_hold (the registry test
     * checks it). */

    /* The mapping is done with these records (delivered, or filtered out): delete them at the
     * source. Asynchronous and batched by the source (SQS: DeleteMessageBatch of up to 10, sent
     * within the loop turn, never held back to fill a batch). An entry that fails is retried with
     * backoff, always with the message's latest receipt handle (a newer receive's, if the message
     * came again), while retrying can succeed (SQS: SenderFault false), a bounded number of times;
     * then each lease gets one queue_report: SL_QUEUE_ACKED (deleted) or SL_QUEUE_ACK_FAILED (err
     * says why: the message stays in the queue and comes back after its visibility timeout). The
     * lease is no longer extended. Default: SL_EINVAL, nothing taken. */
    int (*queue_ack)(void *ctx, struct sl_part *part, const uint64_t *leases, size_t n);
    /* The mapping will not acknowledge these records now (function error, listed in a
     * partial batch response, a drain, a lost lease before the invocation): stop extending
     * their leases and forget them. visible_in_ms SL_QUEUE_KEEP_VISIBILITY (-1) leaves each
     * message to its running visibility timeout (AWS's rule for failures: the queue's redrive
     * policy counts the receive); visible_in_ms >= 0 sets its visibility to that from now
     * (0: visible at once, a drain's return; SQS: ChangeMessageVisibilityBatch, rounded up to
     * seconds), best effort: when that fails, the message comes back when its lease runs out.
     * Nothing is reported. Default: 0, nothing done. */
    int (*queue_release)(
        void *ctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t visible_in_ms);
    /* These records are in flight (or about to be) until until_ms (env->clock's monotonic
     * time; the mapping gives invocation start + function timeout + a margin): keep them
     * invisible until then. The source extends each lease before it runs out (SQS:
     * ChangeMessageVisibilityBatch, batched, by at most the queue's visibility timeout at a
     * time, never past until_ms rounded up to a second) and stops at until_ms, at ack or at
     * release. A later call for the same lease replaces until_ms. When an extension is refused
     * (the lease already ran out, the handle is invalid), or a lease runs out while the mapping
     * still holds it (never acked nor released, held or not), the source reports
     * SL_QUEUE_LEASE_LOST for it once: the message may be delivered again. Default: 0, nothing
     * done (leases run out on their own). */
    int (*queue_hold)(
        void *ctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t until_ms);
    /* True when the source has no acknowledgement, release or extension waiting or in flight:
     * a drain and --until-idle wait for it (bounded by the drain timeout) before stop. Default:
     * always true. */
    bool (*queue_idle)(void *ctx);
    /* Once start returned: what the queue says of itself. The mapping fills lim first with
     * what it knows without asking (caps->batch_size_max, visibility unknown); the source
     * changes what its queue says otherwise (a FIFO queue's BatchSize maximum of 10, its
     * visibility timeout). The mapping refuses to run a BatchSize above batch_size_max, and
     * warns when the visibility timeout is shorter than the function's timeout and the
     * batching window. Default: leaves lim as it is. */
    void (*queue_limits)(void *ctx, struct sl_queue_limits *lim);
    /* --- end of the queue model ------------------------------------------------------------ */

    /* Capabilities the registry sets when it completes the ops (sl_source_ops_complete), from
     * whether the adapter gave the operation; an adapter leaves them false. */
    bool filters;        /* filter_doc given: FilterCriteria can be applied */
    bool shares_cluster; /* client_props given: a kafka:// destination may use its cluster */
};

/* Fills every absent optional operation of ops with its default (the "May be NULL:" above) and
 * sets the capabilities, once, so that the core never tests a slot for NULL; copies the
 * adapter's event shape into *ret_event, completes it (sl_event_format_complete) and points
 * ops->event at it (ret_event must live as long as ops). The registry hands out only
 * completed ops. */
void sl_source_ops_complete(struct sl_source_ops *ops, struct sl_event_format *ret_event);

/* The registry: every compiled-in source (sl_source_<name> for each name of the generated
 * sl_adapters.h's SL_SOURCES; one a build leaves out is not declared), and lookup by
 * EventSourceArn. */
#define SL_SOURCE_DECLARE(name) extern const struct sl_source_ops sl_source_##name;
SL_SOURCES(SL_SOURCE_DECLARE)
#undef SL_SOURCE_DECLARE
const struct sl_source_ops *sl_source_for_arn(const char *arn);
/* For unit tests only (production code never calls it): makes sl_source_for_arn also serve
 * ops (copied and completed) for its scheme, after the compiled-in sources; NULL removes it.
 * One at a time. Loop thread, before any lookup that should see it. */
void sl_source_register_extra(const struct sl_source_ops *ops);
const struct sl_source_ops *const *sl_source_all(size_t *ret_n);

#endif

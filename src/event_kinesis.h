/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_EVENT_KINESIS_H
#define SL_EVENT_KINESIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "err.h"
#include "event.h"

/* The Kinesis-shaped event (esm.md §4.1), its filter document and its KinesisBatchInfo, for any
 * source whose records look like Kinesis records: files now, Kinesis and Redis Streams next.
 * Loop thread or any thread: nothing here is shared. */

/* The shape an adapter points at (sl_source_ops.event): events {"Records":[rec,rec,...]},
 * KinesisBatchInfo for destinations, payloads under "data" in the filter document (a pattern
 * that looks inside a payload that is not JSON fails). What it asks of the adapter:
 *   - part->event is the partition's template (struct sl_event_kinesis_tmpl, below), set
 *     before the partition's first fetch: its arn is the batch info's streamArn and a
 *     tumbling window's eventSourceARN;
 *   - the partition's name is its shardId;
 *   - format_item_id writes a record's sequenceNumber (AWS's itemIdentifier for Kinesis is the
 *     sequence number), for startSequenceNumber and endSequenceNumber.
 * encode_record and filter_doc stay the adapter's, built with sl_event_kinesis_encode and
 * sl_event_kinesis_filter_doc below. */
extern const struct sl_event_format sl_event_kinesis;

/* What is the same for every record of one partition (all strings borrowed for the call, raw:
 * the template escapes them). */
struct sl_event_kinesis_part {
    const char *event_source; /* "aws:kinesis", "sluice:file" */
    const char *event_name;   /* "aws:kinesis:record", "sluice:file:record" */
    const char *arn;          /* eventSourceARN, and KinesisBatchInfo's streamArn */
    const char *region;       /* awsRegion; NULL: "" */
    const char *key;          /* partitionKey of records that carry none of their own */
    const char *id_prefix;    /* what every eventID starts with: "shardId-000000000000:" */
    /* invokeIdentityArn (AWS's Kinesis events always carry it), or NULL: left out */
    const char *invoke_identity_arn;
};

/* One partition's prepared template: its constant pieces as JSON, built once, so that per
 * record only what varies is written. Owns its memory. */
struct sl_event_kinesis_tmpl {
    char *enc; /* head | id | tail, see event_kinesis.c */
    size_t head_len, id_len, tail_len;
    char *key; /* the default partitionKey, raw (NUL-terminated; for the filter document) */
    char *arn; /* eventSourceARN, raw (the batch info's streamArn) */
};

/* One record, as it varies (all borrowed for the call). */
struct sl_event_kinesis_rec {
    const char *key; /* partitionKey; NULL: the template's */
    size_t key_len;
    const char *seq; /* sequenceNumber as text: Kinesis's are decimals of up to ~56 digits */
    size_t seq_len;
    const char *data; /* the payload, written base64 */
    size_t len;
    bool b64;           /* data is the payload's standard padded base64 already (len counts its
                           text, as SL_REC_BASE64 records keep it): written as it is */
    bool no_data;       /* no payload kept (an oversize record): "" in the event, data null in
                           the filter document */
    int64_t arrival_ms; /* approximateArrivalTimestamp, Unix epoch ms */
    const char *id;     /* the eventID after the template's id_prefix (may be empty) */
    size_t id_len;
    bool text_plain; /* the caller knows seq and id hold nothing JSON escapes (decimal numbers,
                        ':', '-'): they are not checked. false: they are, and escaped if need be */    /* raw JSON members written into "kinesis" after approximateArrivalTimestamp, each with its
     * leading comma (",\"subSequenceNumber\":3"), or NULL: none */
    const char *extra;
    size_t extra_len;
};

/* Builds t from p. Returns 0 or SL_ENOMEM (t then holds nothing). */
SL_NODISCARD int sl_event_kinesis_tmpl_init(struct sl_event_kinesis_tmpl *t,
                                            const struct sl_event_kinesis_part *p);
/* Frees what t holds; safe on a zeroed or finished t. */
void sl_event_kinesis_tmpl_fini(struct sl_event_kinesis_tmpl *t);

/* Appends the record's JSON to out:
 * {"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":..,"sequenceNumber":"..","data":"<b64>",
 *  "approximateArrivalTimestamp":<s.mmm>},"eventSource":..,"eventVersion":"1.0","eventID":..,
 *  "eventName":..,"eventSourceARN":..,"awsRegion":..}
 * Returns 0 or SL_ENOMEM (out then as it was). */
SL_NODISCARD int sl_event_kinesis_encode(const struct sl_event_kinesis_tmpl *t,
                                         const struct sl_event_kinesis_rec *rec,
                                         struct sl_buf *out);

/* The document FilterCriteria match: {"partitionKey":..,"sequenceNumber":"..",
 * "approximateArrivalTimestamp":<s>,"data":<the payload parsed as JSON when it is JSON, else
 * a string; null without a payload>}. Returns owned (cJSON_Delete it), or NULL on OOM. */
cJSON *sl_event_kinesis_filter_doc(const struct sl_event_kinesis_tmpl *t,
                                   const struct sl_event_kinesis_rec *rec);

/* The records of one partition a destination record describes (strings borrowed). */
struct sl_event_kinesis_batch {
    const char *shard_id;   /* shardId */
    const char *first_seq;  /* startSequenceNumber */
    const char *last_seq;   /* endSequenceNumber */
    int64_t first_ms;       /* approximateArrivalOfFirstRecord */
    int64_t last_ms;        /* approximateArrivalOfLastRecord */
    size_t n;               /* batchSize */
    const char *stream_arn; /* streamArn */
};

/* Appends "KinesisBatchInfo":{"shardId":..,"startSequenceNumber":..,"endSequenceNumber":..,
 * "approximateArrivalOfFirstRecord":"<ISO 8601 ms>","approximateArrivalOfLastRecord":..,
 * "batchSize":n,"streamArn":..} (esm.md §4.4, in AWS's key order). Returns 0 or SL_ENOMEM
 * (out then as it was). */
SL_NODISCARD int sl_event_kinesis_batch_info(const struct sl_event_kinesis_batch *bi,
                                             struct sl_buf *out);

#endif

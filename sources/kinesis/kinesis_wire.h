/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KINESIS_WIRE_H
#define SL_KINESIS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "err.h"
#include "kinesis_seq.h"

/* The Kinesis Data Streams API as the Kinesis source speaks it (wire.md §1): JSON 1.1 request
 * bodies for ListShards, GetShardIterator, GetRecords and DescribeStreamSummary, the readers of
 * their answers, the classification of an error answer, and the shard lineage rule. Requests
 * are (target, body) pairs; sending and signing them is the adapter's. Readers validate what
 * they are given and name, in errbuf, the operation and the member that is wrong. Pure; no
 * logging; any thread. */

#define KINESIS_CONTENT_TYPE "application/x-amz-json-1.1"

enum kinesis_op {
    KINESIS_OP_LIST_SHARDS,
    KINESIS_OP_GET_SHARD_ITERATOR,
    KINESIS_OP_GET_RECORDS,
    KINESIS_OP_DESCRIBE_STREAM_SUMMARY,
    KINESIS_OP_COUNT
};

/* "ListShards", ... */
const char *kinesis_wire_op_name(enum kinesis_op op);
/* The X-Amz-Target header value: "Kinesis_20131202.ListShards", ... */
const char *kinesis_wire_target(enum kinesis_op op);

/* Which stream a request names: the name, the ARN, or both (each non-NULL one is sent; AWS
 * recommends the ARN, kinesalite understands only the name). */
struct kinesis_stream {
    const char *name;
    const char *arn;
};

/* ---- requests: each replaces b's contents; 0, SL_EINVAL (errbuf says why) or SL_ENOMEM ---- */

enum kinesis_filter {
    KINESIS_FILTER_NONE = 0, /* no ShardFilter (AWS's default is FROM_TRIM_HORIZON) */
    KINESIS_FILTER_AFTER_SHARD_ID,
    KINESIS_FILTER_AT_TRIM_HORIZON,
    KINESIS_FILTER_FROM_TRIM_HORIZON,
    KINESIS_FILTER_AT_LATEST,
    KINESIS_FILTER_AT_TIMESTAMP,
    KINESIS_FILTER_FROM_TIMESTAMP,
    KINESIS_FILTER_COUNT
};

struct kinesis_list_req {
    struct kinesis_stream stream;
    const char *next_token;               /* a follow-up page: then only it and MaxResults go */
    const char *exclusive_start_shard_id; /* NULL: none */
    int max_results;                      /* 0: omitted; else 1..10000 */
    enum kinesis_filter filter;
    const char *filter_shard_id; /* AFTER_SHARD_ID */
    int64_t filter_timestamp_ms; /* AT_TIMESTAMP, FROM_TIMESTAMP: Unix epoch ms */
};

/* ListShards. A first page names the stream (and may carry ExclusiveStartShardId and
 * ShardFilter); a follow-up page (next_token set) carries only NextToken and MaxResults, since
 * AWS rejects StreamName beside NextToken. */
SL_NODISCARD int kinesis_wire_list_shards(struct sl_buf *b,
                                          const struct kinesis_list_req *req,
                                          char *errbuf,
                                          size_t errlen);

enum kinesis_iter_type {
    KINESIS_ITER_TRIM_HORIZON,
    KINESIS_ITER_LATEST,
    KINESIS_ITER_AT_SEQUENCE_NUMBER,
    KINESIS_ITER_AFTER_SEQUENCE_NUMBER,
    KINESIS_ITER_AT_TIMESTAMP,
    KINESIS_ITER_COUNT
};

/* "TRIM_HORIZON", ... */
const char *kinesis_wire_iter_name(enum kinesis_iter_type type);

/* GetShardIterator of shard_id: seq (a sequence number) for AT_/AFTER_SEQUENCE_NUMBER,
 * timestamp_ms (Unix epoch ms, sent as float seconds) for AT_TIMESTAMP; ignored otherwise. */
SL_NODISCARD int kinesis_wire_get_shard_iterator(struct sl_buf *b,
                                                 const struct kinesis_stream *stream,
                                                 const char *shard_id,
                                                 enum kinesis_iter_type type,
                                                 const char *seq,
                                                 int64_t timestamp_ms,
                                                 char *errbuf,
                                                 size_t errlen);

#define KINESIS_GET_RECORDS_LIMIT_MAX 10000

/* GetRecords from iterator, at most limit (1..10000) records; stream_arn NULL: not sent. */
SL_NODISCARD int kinesis_wire_get_records(struct sl_buf *b,
                                          const char *iterator,
                                          int limit,
                                          const char *stream_arn,
                                          char *errbuf,
                                          size_t errlen);

/* DescribeStreamSummary. */
SL_NODISCARD int kinesis_wire_describe_stream_summary(struct sl_buf *b,
                                                      const struct kinesis_stream *stream,
                                                      char *errbuf,
                                                      size_t errlen);

/* ---- answers ---- */

#define KINESIS_SHARD_ID_MAX 128 /* AWS's limit on a ShardId */
#define KINESIS_HASH_KEY_MAX 39  /* digits of 2^128 - 1 */

struct kinesis_shard {
    char id[KINESIS_SHARD_ID_MAX + 1];
    char parent[KINESIS_SHARD_ID_MAX + 1];          /* "" when none */
    char adjacent_parent[KINESIS_SHARD_ID_MAX + 1]; /* "" when none (a merge child has one) */
    char starting_hash_key[KINESIS_HASH_KEY_MAX + 1];
    char ending_hash_key[KINESIS_HASH_KEY_MAX + 1];
    char starting_seq[KINESIS_SEQ_DIGITS_MAX + 1];
    char ending_seq[KINESIS_SEQ_DIGITS_MAX + 1]; /* "" while the shard is open */
};

static inline bool kinesis_shard_is_closed(const struct kinesis_shard *s)
{
    return s->ending_seq[0] != '\0';
}

/* Shards gathered over the pages of one listing. */
struct kinesis_shard_list {
    struct kinesis_shard *shards; /* owned */
    size_t n, cap;
    char *next_token; /* owned; NULL when the last page was read */
};

void kinesis_shard_list_fini(struct kinesis_shard_list *l);

/* Reads a 200 answer of ListShards, appending its shards to l and replacing l->next_token.
 * Returns 0, SL_EPROTO (errbuf names the member; l keeps the shards of earlier pages) or
 * SL_ENOMEM. */
SL_NODISCARD int kinesis_wire_list_shards_read(
    const char *body, size_t len, struct kinesis_shard_list *l, char *errbuf, size_t errlen);

/* Reads a 200 answer of GetShardIterator: *ret_iterator (owned; sl_free). Returns 0,
 * SL_EPROTO (errbuf says why) or SL_ENOMEM. */
SL_NODISCARD int kinesis_wire_get_shard_iterator_read(
    const char *body, size_t len, char **ret_iterator, char *errbuf, size_t errlen);

/* One record of GetRecords. Strings borrow from the answer (kinesis_records.doc) and are not
 * NUL-terminated unless said. */
struct kinesis_record {
    const char *seq; /* NUL-terminated; checked with kinesis_seq_check */
    size_t seq_len;
    int64_t arrival_ms; /* ApproximateArrivalTimestamp, Unix epoch ms */
    const char *data;   /* base64 exactly as the answer has it, NUL-terminated */
    size_t data_len;
    const char *partition_key; /* NUL-terminated */
    size_t partition_key_len;
    const char *encryption_type; /* NULL when absent (kinesalite never sends it) */
};

struct kinesis_child_shard {
    const char *id;         /* NUL-terminated */
    const char *parents[2]; /* parents[1] NULL unless a merge */
    size_t n_parents;       /* 1 or 2 */
};

struct kinesis_records {
    char *doc;                      /* owned: the answer's copy, every string borrows from it */
    cJSON *children_doc;            /* owned: ChildShards parsed, children's strings borrow */
    struct kinesis_record *records; /* owned */
    size_t n;
    const char *next_iterator;            /* NULL: the shard is closed and was read to its end */
    int64_t millis_behind;                /* MillisBehindLatest, -1 when absent */
    struct kinesis_child_shard *children; /* owned; only at a closed shard's end */
    size_t n_children;
};

/* Reads a 200 answer of GetRecords. Records must come in increasing sequence number order.
 * Returns 0 (*ret filled; kinesis_records_fini), SL_EPROTO (errbuf names the member; *ret
 * empty) or SL_ENOMEM. */
SL_NODISCARD int kinesis_wire_get_records_read(
    const char *body, size_t len, struct kinesis_records *ret, char *errbuf, size_t errlen);

void kinesis_records_fini(struct kinesis_records *r);

struct kinesis_summary {
    char status[16]; /* CREATING, DELETING, ACTIVE, UPDATING */
    char arn[256];
    int open_shard_count;    /* -1 when absent */
    int retention_hours;     /* -1 when absent */
    char encryption_type[8]; /* NONE, KMS; "" when absent */
    char stream_mode[16];    /* PROVISIONED, ON_DEMAND; "" when absent (kinesalite) */
};

/* Reads a 200 answer of DescribeStreamSummary. Returns 0, SL_EPROTO or SL_ENOMEM. */
SL_NODISCARD int kinesis_wire_describe_stream_summary_read(
    const char *body, size_t len, struct kinesis_summary *ret, char *errbuf, size_t errlen);

/* ---- errors ---- */

/* What the caller does about a failed request. */
enum kinesis_retry {
    KINESIS_RETRY_RENEW_ITERATOR, /* the iterator expired: get a new one, then read again */
    KINESIS_RETRY_THROTTLE,       /* throttled or a server fault: back off with jitter, retry */
    KINESIS_RETRY_SLOW,           /* stream missing, access or KMS: back off slowly, log clearly */
    KINESIS_RETRY_RELIST,         /* ListShards' NextToken expired: list again from the start */
    KINESIS_RETRY_FATAL,          /* the request itself is wrong: retrying it as is cannot work */
    KINESIS_RETRY_COUNT
};

/* "renew iterator", "throttle", ... */
const char *kinesis_wire_retry_name(enum kinesis_retry r);

struct kinesis_error {
    char type[64];     /* __type without "namespace#" or ":..." ("" when none) */
    char message[256]; /* message or Message ("" when none) */
    enum kinesis_retry retry;
    int err; /* SL_E*: ETHROTTLED, EREMOTE, ENOTFOUND, EAUTH, EAGAIN, EPROTO, EREJECTED */
};

/* Classifies a non-2xx answer: status, its body (may be empty or not JSON) and the
 * x-amzn-ErrorType header (NULL when absent), used when the body has no __type. */
void kinesis_wire_error_read(long status,
                             const char *body,
                             size_t len,
                             const char *error_type_header,
                             struct kinesis_error *ret);

/* ---- shard lineage (wire.md §1.7) ---- */

/* True when shard i of shards[0..n) may be read: every parent of it (ParentShardId and, for a
 * merge, AdjacentParentShardId) is done (done[j] for shards[j]: read to its end, as recorded
 * in the checkpoint) or absent from the list (expired). A shard without parents may always
 * start. */
bool kinesis_wire_shard_may_start(const struct kinesis_shard *shards,
                                  size_t n,
                                  const bool *done,
                                  size_t i);

/* The same for a child named by GetRecords' ChildShards. */
bool kinesis_wire_child_may_start(const struct kinesis_child_shard *child,
                                  const struct kinesis_shard *shards,
                                  size_t n,
                                  const bool *done);

#endif

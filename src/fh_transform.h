/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_TRANSFORM_H
#define SL_FH_TRANSFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "function.h"
#include "retry.h"
#include "strmap.h"

/* Firehose's Lambda data transformation (wire.md §4.7; AWS's "Transform source data" and
 * "Required parameters for data transformation"), for a delivery stream.
 *
 * How a delivery stream uses it:
 *   at config time  sl_fh_processing_parse (fh_processing.h) reads ProcessingConfiguration
 *                   into a struct sl_fh_transform_conf. conf.lambda_arn is a FunctionName as
 *                   a mapping's: the caller resolves it (a key of "functions", any type, or a
 *                   Lambda name or ARN through the Invoke API) and reports a bad one at
 *                   conf.lambda_arn_path.
 *   at start        sl_fh_transform_new with that conf and the resolved struct sl_function.
 *   per buffer      when BufferSizeInMBs of records or BufferIntervalInSeconds is reached
 *                   (conf.buffer_bytes, conf.buffer_interval_ms: the caller's buffering),
 *                   sl_fh_transform_start with the records. It cuts them into invocations
 *                   within buffer_bytes of input and SL_FH_EVENT_MAX_BYTES of event, invokes
 *                   them all at once, retries each failed invocation NumberOfRetries times, and
 *                   calls back once with one struct sl_fh_out per record, in input order.
 *   per record      Ok: deliver out->data (partition keys for !{partitionKeyFromLambda:k} in
 *                   out->lambda_keys); Dropped: done, nothing to deliver; Failed: write
 *                   sl_fh_transform_error_line under the error prefix as processing-failed
 *                   (SL_S3_PROCESSING_FAILED), with the ORIGINAL bytes.
 *   at stop         sl_fh_transform_stop: every batch in flight calls back with SL_ECANCELED,
 *                   its records not transformed (keep them: they are transformed after a
 *                   restart). A record is never reported failed because sluice stopped. An
 *                   invocation in flight is awaited (the function's timeout bounds it) unless
 *                   the caller also calls sl_function_stop, which cuts it short.
 *
 * Firehose's rules, and sluice's choices where AWS's text is silent (test_fh_transform.c):
 *   - The event: {"invocationId":"<uuid v4>","deliveryStreamArn":..,"region":..,"records":
 *     [{"recordId":..,"approximateArrivalTimestamp":<epoch ms>,"data":"<base64>"}]}; with a
 *     Kinesis stream as source, "sourceKinesisStreamArn" after invocationId and each record's
 *     "kinesisRecordMetadata" after its data. recordIds are 56 digits, unique in the batch and
 *     the same on every retry; each retry gets a new invocationId (as captured from AWS).
 *   - An invocation that fails (function error, timeout, throttle, a service or transport
 *     error) or whose answer cannot be read as a whole is tried again, up to NumberOfRetries
 *     times after the first, with backoff (env.retry); then each of its records fails with the
 *     last error. Only sluice's own lack of resources (SL_OUTCOME_RESOURCE_EXHAUSTED) is retried
 *     without counting, so records are not failed because sluice ran short of descriptors.
 *   - Whole-answer errors: not JSON, not an object with a "records" array:
 *     Lambda.JsonProcessingException; an entry that is not an object, without a string
 *     recordId, with a result other than Ok, Dropped or ProcessingFailed, an Ok without data or
 *     with data that is not base64, partitionKeys that are not an object of scalars:
 *     Lambda.FunctionError (what AWS logs for these, bad base64 included); a recordId listed
 *     twice: Lambda.DuplicatedRecordId.
 *   - Per record: a recordId of the input missing from the answer (an unknown one in its
 *     place is ignored) fails that record alone with Lambda.MissingRecordId, not retried;
 *     result ProcessingFailed fails it with Lambda.ProcessingFailedStatus.
 *   - A record whose event alone would pass SL_FH_EVENT_MAX_BYTES is failed without an
 *     invocation (Lambda.RequestTooLargeException: sluice's name, Lambda's exception).
 *
 * Loop thread only. */

/* Lambda's synchronous request payload limit (6 MB); an invocation's event stays within it. */
#define SL_FH_EVENT_MAX_BYTES (6u * 1024u * 1024u)
/* recordId's length: digits, as Firehose's. */
#define SL_FH_RECORD_ID_LEN 56

/* Defaults and ranges of the Lambda processor's parameters (ProcessorParameter). */
#define SL_FH_RETRIES_DEFAULT         3
#define SL_FH_RETRIES_MAX             300
#define SL_FH_BUFFER_BYTES_DEFAULT    (1024 * 1024)     /* BufferSizeInMBs 1 */
#define SL_FH_BUFFER_BYTES_MIN        (1024 * 1024 / 5) /* 0.2 */
#define SL_FH_BUFFER_BYTES_MAX        (3 * 1024 * 1024) /* 3 */
#define SL_FH_BUFFER_INTERVAL_DEFAULT 60                /* seconds */
#define SL_FH_BUFFER_INTERVAL_MAX     900

/* Error codes written as errorCode in processing-failed records. */
#define SL_FH_ERR_FUNCTION_ERROR    "Lambda.FunctionError"
#define SL_FH_ERR_JSON              "Lambda.JsonProcessingException"
#define SL_FH_ERR_DUPLICATED        "Lambda.DuplicatedRecordId"
#define SL_FH_ERR_MISSING           "Lambda.MissingRecordId"
#define SL_FH_ERR_STATUS            "Lambda.ProcessingFailedStatus"
#define SL_FH_ERR_LIMIT             "Lambda.InvokeLimitExceeded"
#define SL_FH_ERR_NOT_FOUND         "Lambda.ResourceNotFound"
#define SL_FH_ERR_ACCESS_DENIED     "Lambda.InvokeAccessDenied"
#define SL_FH_ERR_SERVICE           "Lambda.ServiceException"
#define SL_FH_ERR_NETWORK           "Lambda.NetworkError"
#define SL_FH_ERR_REQUEST_TOO_LARGE "Lambda.RequestTooLargeException"

/* The Lambda processor of a ProcessingConfiguration (fh_processing.h fills it). */
struct sl_fh_transform_conf {
    bool enabled;               /* Enabled, with a Lambda processor */
    char *lambda_arn;           /* LambdaArn (owned): resolve as a FunctionName */
    char *lambda_arn_path;      /* its JSON path, for the caller's errors (owned) */
    int64_t number_of_retries;  /* NumberOfRetries: 0..SL_FH_RETRIES_MAX, default 3 */
    int64_t buffer_bytes;       /* BufferSizeInMBs in bytes (MiB, as Firehose's hints) */
    int64_t buffer_interval_ms; /* BufferIntervalInSeconds in ms */
    char *role_arn;             /* RoleArn (owned): kept, never assumed */
};

void sl_fh_transform_conf_fini(struct sl_fh_transform_conf *c);

/* A record's kinesisRecordMetadata, when the stream reads a Kinesis stream (strings borrowed). */
struct sl_fh_kinesis_meta {
    const char *shard_id;        /* shardId */
    const char *partition_key;   /* partitionKey */
    const char *sequence_number; /* sequenceNumber */
    uint64_t subsequence_number; /* subsequenceNumber (KPL de-aggregation), else 0 */
    int64_t arrival_ms;          /* approximateArrivalTimestamp in Kinesis, epoch ms */
};

/* One input record; borrowed until the batch calls back. */
struct sl_fh_rec {
    const void *data;
    size_t len;
    int64_t arrival_ms; /* approximateArrivalTimestamp: epoch ms */
    uint64_t tag;       /* the caller's (a spool id): appears in the recordId, else unused */
    const struct sl_fh_kinesis_meta *kinesis; /* NULL: direct put (no kinesisRecordMetadata) */
};

enum sl_fh_result { SL_FH_OK = 0, SL_FH_DROPPED, SL_FH_FAILED, SL_FH_RESULT_COUNT };

/* One record's outcome; owned by the batch (valid until sl_fh_batch_free). */
struct sl_fh_out {
    enum sl_fh_result result;
    const char *data; /* Ok: the transformed bytes (NUL-terminated too) */
    size_t len;
    struct sl_strmap lambda_keys; /* Ok: metadata.partitionKeys (partitionKeyFromLambda) */
    const char *error_code;       /* Failed: SL_FH_ERR_* */
    const char *error_message;    /* Failed: human text (AWS's where AWS has one) */
    unsigned attempts;            /* invocations made for its record (attemptsMade) */
    int64_t ending_ms;            /* Failed: wall ms the attempts ended (attemptEndingTimestamp) */
};

typedef void (*sl_fh_rand_fn)(void *arg, unsigned char *buf, size_t n);

struct sl_fh_transform_env {
    uv_loop_t *loop;
    const struct sl_clock *clock;        /* wall_ms for attemptEndingTimestamp */
    struct sl_function *fn;              /* borrowed: the function LambdaArn resolved to */
    const char *stream_arn;              /* deliveryStreamArn (copied) */
    const char *region;                  /* region (copied) */
    const char *source_kinesis_arn;      /* sourceKinesisStreamArn (copied); NULL: direct put */
    const char *inst;                    /* the stream's name, for logs (copied) */
    const struct sl_retry_policy *retry; /* backoff between attempts; NULL: the default */
    sl_fh_rand_fn rand;                  /* invocationId bytes; NULL: getrandom */
    void *rand_arg;
};

struct sl_fh_transform;
struct sl_fh_batch;

/* err 0: every record has its outcome (sl_fh_batch_out); SL_ECANCELED: stopped, no outcome.
 * The batch stays the caller's: sl_fh_batch_free it, in the callback or later. */
typedef void (*sl_fh_batch_cb)(void *arg, struct sl_fh_batch *b, int err);

/* Returns 0 and *ret_t (owned: sl_fh_transform_free), or SL_ENOMEM. conf is copied. */
SL_NODISCARD int sl_fh_transform_new(const struct sl_fh_transform_conf *conf,
                                     const struct sl_fh_transform_env *env,
                                     struct sl_fh_transform **ret_t);
/* Cancels every batch in flight: each calls back with SL_ECANCELED (never from inside stop). */
void sl_fh_transform_stop(struct sl_fh_transform *t);
/* Frees t; no batch may be in flight. NULL: no-op. */
void sl_fh_transform_free(struct sl_fh_transform *t);

/* Starts transforming recs[0..n) (borrowed until cb; n >= 1). Returns 0 and *ret_b (cb will be
 * called exactly once, never from inside start) or SL_ENOMEM (cb never called). */
SL_NODISCARD int sl_fh_transform_start(struct sl_fh_transform *t,
                                       const struct sl_fh_rec *recs,
                                       size_t n,
                                       sl_fh_batch_cb cb,
                                       void *arg,
                                       struct sl_fh_batch **ret_b);
size_t sl_fh_batch_count(const struct sl_fh_batch *b);
const struct sl_fh_out *sl_fh_batch_out(const struct sl_fh_batch *b, size_t i);
/* Invocations the batch made, retries included. */
unsigned sl_fh_batch_invocations(const struct sl_fh_batch *b);
/* Frees b after its callback (not while in flight). NULL: no-op. */
void sl_fh_batch_free(struct sl_fh_batch *b);

/* Appends the processing-failed error record of a Failed record (sl_s3_object_error_line:
 * attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp, rawData
 * = rec's original bytes, lambdaArn) and '\n'. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_fh_transform_error_line(struct sl_buf *out,
                                            const struct sl_fh_rec *rec,
                                            const struct sl_fh_out *o,
                                            const char *lambda_arn);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_DEST_H
#define SL_STREAM_DEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"

struct sl_clock;
struct sl_strmap;
struct sl_httpc;
struct sl_stream_conf;

/* Where a delivery stream's sealed objects go, asynchronously: one call per object, one
 * callback per call saying "this object is done" (its records may be released) or not.
 *
 *   S3 layout   ExtendedS3DestinationConfiguration: the object key from Prefix (s3_keys.h, at
 *               the oldest record's arrival), the body (s3_object.h, GZIP or not), written to
 *               file:///dir (s3_file.h) or arn:aws:s3:::BUCKET (s3_put.h). A failed write is
 *               retried with backoff, with the same key, until it succeeds: Firehose retries S3
 *               for 24 hours, sluice for as long as it runs; records are never dropped.
 *   HTTP        HttpEndpointDestinationConfiguration (fh_http.h): retried for
 *               RetryOptions.DurationInSeconds, then the records are written as Firehose's error
 *               records under ErrorOutputPrefix with error-output-type http-endpoint-failed to
 *               the S3Configuration (file or S3 API, retried until it succeeds); with
 *               S3BackupMode AllData every record is also written to it under Prefix.
 *   Sink        SinkDestinationConfiguration (sluice's own): each record one document of a sink
 *               (kafka://TOPIC: a message; redis://.../STREAM: an entry), written through
 *               sl_sink_deliver; the records a delivery did not write are retried with backoff,
 *               alone, until every one is written (never dropped).
 *
 * An object of error records (sl_stream_dest_obj.error_type: processing-failed,
 * partitioning-failed) is written as it is under ErrorOutputPrefix, to the S3 destination or
 * the HTTP endpoint's S3Configuration, retried until it is stored.
 *
 * One object in flight at a time (the stream writes in order). Loop thread only. */

/* One record of an object. Borrowed until the callback. */
struct sl_stream_dest_rec {
    const void *data;
    size_t len;
    int64_t arrival_ms; /* approximate arrival, epoch ms */
};

struct sl_stream_dest_env {
    uv_loop_t *loop;
    struct sl_httpc *httpc;       /* the S3 API and HTTP endpoint; NULL: file:// only */
    const struct sl_clock *clock; /* wall_ms: keys and timestamps */
    const char *source_arn;       /* the stream's ARN (X-Amz-Firehose-Source-Arn); copied */
};

/* Firehose's metric names (wire.md §4.9). */
struct sl_stream_dest_stats {
    uint64_t s3_records;      /* DeliveryToS3.Records: records in objects written */
    uint64_t s3_bytes;        /* DeliveryToS3.Bytes (before compression) */
    uint64_t s3_success;      /* DeliveryToS3.Success: objects written */
    uint64_t http_records;    /* DeliveryToHttpEndpoint.Records: records the endpoint took */
    uint64_t http_bytes;      /* DeliveryToHttpEndpoint.Bytes */
    uint64_t http_success;    /* DeliveryToHttpEndpoint.Success: requests answered 200 */
    uint64_t backup_records;  /* BackupToS3.Records: records written to the backup */
    uint64_t backup_success;  /* BackupToS3.Success: backup objects written */
    uint64_t failed_attempts; /* attempts that failed and are retried */
    uint64_t sink_records;    /* SinkDestinationConfiguration: records written */
    uint64_t sink_bytes;      /* their bytes */
    uint64_t sink_success;    /* objects whose every record is written */
};

/* err 0: the object is delivered (HTTP: or backed up after the retry duration): release its
 * records. SL_ECANCELED: sl_stream_dest_stop came first; the records are not delivered. */
typedef void (*sl_stream_dest_cb)(void *arg, int err);

struct sl_stream_dest;

/* Opens sc's destination (sc borrowed; must outlive it). Returns 0 and *ret_d, SL_ECONFIG
 * (errbuf: e.g. incomplete AWS credentials) or SL_ENOMEM. */
SL_NODISCARD int sl_stream_dest_new(const struct sl_stream_conf *sc,
                                    const struct sl_stream_dest_env *env,
                                    struct sl_stream_dest **ret_d,
                                    char *errbuf,
                                    size_t errlen);

/* Starts delivering one object: recs[0..n) (n >= 1; the array and the bytes borrowed until cb),
 * the oldest of which arrived at oldest_ms. Returns 0 and calls cb exactly once, later; or
 * SL_ENOMEM / SL_EAGAIN (an object is in flight) and never calls it. */
SL_NODISCARD int sl_stream_dest_deliver(struct sl_stream_dest *d,
                                        const struct sl_stream_dest_rec *recs,
                                        size_t n,
                                        int64_t oldest_ms,
                                        sl_stream_dest_cb cb,
                                        void *arg);

/* One object with what its key needs beside the time. Borrowed until the callback. */
struct sl_stream_dest_obj {
    const struct sl_stream_dest_rec *recs;
    size_t n; /* >= 1 */
    int64_t oldest_ms;
    const struct sl_strmap *query;  /* partitionKeyFromQuery values for Prefix, or NULL */
    const struct sl_strmap *lambda; /* partitionKeyFromLambda values for Prefix, or NULL */
    const char *error_type;         /* NULL: under Prefix; else error records, written under
                                       ErrorOutputPrefix with this error-output-type */
};

/* sl_stream_dest_deliver with the partition keys and error type of o; same contract. */
SL_NODISCARD int sl_stream_dest_deliver_obj(struct sl_stream_dest *d,
                                            const struct sl_stream_dest_obj *o,
                                            sl_stream_dest_cb cb,
                                            void *arg);

/* A delivery waiting to retry tries again now (drain). */
void sl_stream_dest_retry_now(struct sl_stream_dest *d);

/* Stops: no further attempt; the object in flight calls back (SL_ECANCELED, or 0 when its
 * write had finished). Later deliveries are refused with SL_ECANCELED in their callback. */
void sl_stream_dest_stop(struct sl_stream_dest *d);

/* An object is in flight (its callback has not run). */
bool sl_stream_dest_busy(const struct sl_stream_dest *d);

/* Whether the destination is an HTTP endpoint (the counters to show). */
bool sl_stream_dest_is_http(const struct sl_stream_dest *d);

const struct sl_stream_dest_stats *sl_stream_dest_stats(const struct sl_stream_dest *d);

/* Frees d; nothing may be in flight. The memory goes once its timer closed (loop turn). NULL is a
 * no-op. */
void sl_stream_dest_free(struct sl_stream_dest *d);

#endif

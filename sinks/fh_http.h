/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_HTTP_H
#define SL_FH_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "buf.h"
#include "clock.h"
#include "err.h"
#include "httpc.h"
#include "retry.h"
#include "uuid.h"

/* Firehose's HTTP endpoint destination (wire.md §4.3): a delivery stream's
 * HttpEndpointDestinationConfiguration, and the delivery of one buffer of records to the endpoint
 * exactly as Firehose does it, retries included, then the error records of a buffer that failed.
 *
 * How the delivery-stream core uses it:
 *
 *   at config time   sl_fh_http_conf_parse(obj, "$.delivery_streams[0]."
 *                    "HttpEndpointDestinationConfiguration", &conf, errbuf, errlen): every key
 *                    checked, errors name the JSON path and what is allowed. Defaults applied.
 *   per buffer       sl_fh_http_deliver(&conf, &env, recs, n, &ops, arg, &d) when the buffer is
 *                    full (conf.size_bytes) or old (conf.interval_ms). The records are copied
 *                    into the request at once (the caller may release its copy of the bytes).
 *                    One POST, repeated with the same requestId and body after each failure,
 *                    with backoff, until RetryOptions.DurationInSeconds of retrying has passed
 *                    (the time spent waiting for answers does not count, as Firehose's doesn't);
 *                    ops.done then runs exactly once, on a later loop turn, never from inside
 *                    sl_fh_http_deliver.
 *   done, delivered  res->err == 0: the endpoint answered 200 with our requestId. Release the
 *                    records from the spool.
 *   done, failed     res->err < 0 with Firehose's errorCode, errorMessage, attemptsMade and the
 *                    attempt's end time: build the backup with sl_fh_http_error_lines (Firehose's
 *                    error records, one line each) and write it under ErrorOutputPrefix with
 *                    error-output-type "http-endpoint-failed" (sl_s3_layout_key_of with error =
 *                    true, SL_S3_HTTP_ENDPOINT_FAILED); release the records once that object is
 *                    durable.
 *   done, canceled   res->err == SL_ECANCELED (sl_fh_http_cancel, shutdown): neither delivered
 *                    nor failed; the records stay in the spool for the next run.
 *
 * Choices where AWS's text leaves room or sluice's rules come first:
 * - http:// URLs are accepted beside https:// (AWS: https only, port 443), for local endpoints.
 * - The response timeout is ours: response_timeout (a duration, default "3m", Firehose's fixed
 *   three minutes) in the same object.
 * - 413 stops the retries at once (AWS calls it permanent), but the records are reported failed
 *   and backed up like any other failure: sluice never drops a record.
 * - Backoff: Firehose's shape (1 s, doubling, capped at 120 s, ±15 % jitter), with base and cap
 *   from SLUICE_RETRY_BASE_MS / SLUICE_RETRY_MAX_MS when those are set (tests), and each wait cut
 *   to what is left of the retry duration, so the last attempt starts as the duration ends.
 *
 * The access key is a secret: it goes in the X-Amz-Firehose-Access-Key header and nowhere else;
 * this module never logs it (nor the URL but redacted), and logs at debug level only. Loop
 * thread only, except the config functions and sl_fh_http_error_lines (any thread). */

/* RequestConfiguration.CommonAttributes: at most 50, names 1-256 and values 0-1024 chars. */
#define SL_FH_HTTP_MAX_ATTRS      50
#define SL_FH_HTTP_MAX_ACCESS_KEY 4096
/* Firehose's limits on an answer (its body) and the part of it an error message quotes. */
#define SL_FH_HTTP_MAX_RESPONSE (1024 * 1024)
#define SL_FH_HTTP_MAX_QUOTED   8192

/* Firehose's error codes (errorCode of the error records and of the log lines). */
#define SL_FH_HTTP_DESTINATION_EXCEPTION "HttpEndpoint.DestinationException"
#define SL_FH_HTTP_INVALID_RESPONSE      "HttpEndpoint.InvalidResponseFromDestination"
#define SL_FH_HTTP_REQUEST_TIMEOUT       "HttpEndpoint.RequestTimeout"
#define SL_FH_HTTP_RESPONSE_TOO_LARGE    "HttpEndpoint.ResponseTooLarge"
#define SL_FH_HTTP_CONNECTION_FAILED     "HttpEndpoint.ConnectionFailed"
#define SL_FH_HTTP_CONNECTION_RESET      "HttpEndpoint.ConnectionReset"
#define SL_FH_HTTP_SSL_HANDSHAKE_FAILURE "HttpEndpoint.SSLHandshakeFailure"

/* A destination's HttpEndpointDestinationConfiguration, parsed. Owns its strings. */
struct sl_fh_http_conf {
    char *url;        /* EndpointConfiguration.Url */
    char *name;       /* EndpointConfiguration.Name; NULL when absent */
    char *access_key; /* EndpointConfiguration.AccessKey (secret); NULL when absent */
    bool gzip;        /* RequestConfiguration.ContentEncoding GZIP (default NONE) */
    /* X-Amz-Firehose-Common-Attributes' value, {"commonAttributes":{...}}; NULL without
     * RequestConfiguration.CommonAttributes (the header is then not sent). */
    char *common_attributes;
    size_t n_attrs;
    int64_t size_bytes;          /* BufferingHints.SizeInMBs (1-64, default 5) in bytes */
    int64_t interval_ms;         /* BufferingHints.IntervalInSeconds (0-900, default 300) */
    int64_t retry_duration_ms;   /* RetryOptions.DurationInSeconds (0-7200, default 300) */
    int64_t response_timeout_ms; /* response_timeout (100ms-1h, default 3m) */
    bool backup_all;             /* S3BackupMode AllData (default FailedDataOnly) */
};

/* Parses obj, the HttpEndpointDestinationConfiguration at JSON path path, into *ret_conf (zeroed
 * first; sl_fh_http_conf_fini it, whatever the result). The keys the stream core owns
 * (S3Configuration, ProcessingConfiguration, RoleARN, CloudWatchLoggingOptions,
 * SecretsManagerConfiguration) are allowed and left unread; any other unknown key is an error.
 * Returns 0, SL_ECONFIG (errbuf: "<path>.<key>: <problem>; <what is allowed>", the first
 * problem found) or SL_ENOMEM. Any thread; nothing logs. */
SL_NODISCARD int sl_fh_http_conf_parse(const cJSON *obj,
                                       const char *path,
                                       struct sl_fh_http_conf *ret_conf,
                                       char *errbuf,
                                       size_t errlen);
void sl_fh_http_conf_fini(struct sl_fh_http_conf *conf);

/* One record of a buffer. Borrowed during sl_fh_http_deliver / sl_fh_http_error_lines only. */
struct sl_fh_http_rec {
    const void *data;
    size_t len;
    int64_t arrival_ms;  /* approximate arrival, epoch ms (arrivalTimestamp of a backup) */
    const char *data_id; /* dataId of a backup line; NULL: "<requestId>.<index>" */
};

/* What a delivery needs from its stream. Copied by sl_fh_http_deliver; pointers are borrowed
 * until ops.done runs. */
struct sl_fh_http_env {
    uv_loop_t *loop;
    struct sl_httpc *httpc;
    const struct sl_clock *clock;         /* now_ms: the retry duration; wall_ms: timestamps */
    const char *inst;                     /* log instance: the stream's name */
    const char *source_arn;               /* X-Amz-Firehose-Source-Arn: the stream's ARN */
    const struct sl_retry_policy *policy; /* base_ms and max_ms of the backoff; NULL: Firehose's
                                             (sl_fh_http_policy) */
    uint64_t seed;                        /* jitter generator seed; 0: from rand */
    sl_rand_fn rand;                      /* request ids and jitter; NULL: sl_rand_system */
    void *rand_arg;
    const char *request_id; /* the requestId to use (a UUID), e.g. one kept with the buffer so a
                               restart repeats it; NULL: a new random version 4 UUID */
};

/* An attempt's or a delivery's outcome. Strings are borrowed for the callback only. */
struct sl_fh_http_result {
    int err;                   /* 0 delivered; SL_EREMOTE (5xx), SL_EREJECTED (4xx), SL_EPROTO
                                  (other status, a bad answer), SL_ETIMEDOUT, SL_EIO (no
                                  connection), SL_ECANCELED, SL_ENOMEM */
    const char *error_code;    /* SL_FH_HTTP_*; NULL when delivered or canceled */
    const char *error_message; /* Firehose-style text, quoting the answer; "" when delivered */
    long status;               /* the last answer's HTTP status, 0 without one */
    unsigned attempts;         /* attempts made (attemptsMade) */
    int64_t attempt_ending_ms; /* wall time the last attempt ended (attemptEndingTimestamp) */
    const char *request_id;    /* the requestId every attempt carried */
    bool permanent;            /* the endpoint said never to retry (413) */
};

struct sl_fh_http_delivery;

struct sl_fh_http_ops {
    /* Required. The delivery's end: delivered, failed for good, or canceled. d is freed right
     * after it returns. */
    void (*done)(void *arg, struct sl_fh_http_delivery *d, const struct sl_fh_http_result *res);
    /* Optional (NULL). An attempt failed and another follows in delay_ms: for the caller's log
     * line and counters (tests advance a fake clock here). last->attempts counts the attempts
     * made so far. */
    void (*retrying)(void *arg, const struct sl_fh_http_result *last, int64_t delay_ms);
};

/* Firehose's backoff: base 1 s, cap 120 s; SLUICE_RETRY_BASE_MS and SLUICE_RETRY_MAX_MS, when set,
 * override them (as sl_retry_policy_default's). min_ms is unused. */
void sl_fh_http_policy(struct sl_retry_policy *p);

/* The wait before retry number attempt (1 = the first retry): min(max_ms, base_ms * 2^(attempt-1))
 * times a uniform factor in [0.85, 1.15]. rng: sl_retry_rand's state. */
int64_t sl_fh_http_backoff_ms(const struct sl_retry_policy *p, unsigned attempt, uint64_t *rng);

/* Starts delivering recs[0..n) (n >= 1) as one request. conf is borrowed until ops->done runs;
 * recs only during this call. Returns 0 and *ret_d (valid until ops->done returns), then
 * ops->done runs exactly once, later; or SL_ENOMEM / SL_EINVAL (n == 0) and ops->done never
 * runs. */
SL_NODISCARD int sl_fh_http_deliver(const struct sl_fh_http_conf *conf,
                                    const struct sl_fh_http_env *env,
                                    const struct sl_fh_http_rec *recs,
                                    size_t n,
                                    const struct sl_fh_http_ops *ops,
                                    void *arg,
                                    struct sl_fh_http_delivery **ret_d);

/* Stops d: no further attempt starts, an attempt in flight is aborted, and ops->done runs on a
 * later loop turn with SL_ECANCELED (the records are neither delivered nor failed). Nothing
 * once done has run (d is gone by then: do not call it after). */
void sl_fh_http_cancel(struct sl_fh_http_delivery *d);

/* The requestId d sends (a UUID), for the caller's logs. Borrowed while d lives. */
const char *sl_fh_http_request_id(const struct sl_fh_http_delivery *d);

/* Appends the backup of a failed delivery: for each of recs[0..n), the records the delivery
 * carried, one Firehose error record line (sl_s3_object_error_line: attemptsMade,
 * arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp, rawData, subsequenceNumber
 * 0, dataId) from res. Returns 0 or SL_ENOMEM (out as it was). Any thread. */
SL_NODISCARD int sl_fh_http_error_lines(const struct sl_fh_http_rec *recs,
                                        size_t n,
                                        const struct sl_fh_http_result *res,
                                        struct sl_buf *out);

#endif

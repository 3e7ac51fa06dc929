/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_XFORM_H
#define SL_STREAM_XFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"
#include "fh_transform.h"

struct sl_spool_rec;

/* A delivery stream's transform stage (ProcessingConfiguration's Lambda processor), between
 * the spool and the stream's buffers: records read from the spool gather in the processor's
 * own buffer until BufferSizeInMBs or BufferIntervalInSeconds (from the first one buffered),
 * then go to the function as one batch (fh_transform.h: invocations, retries, outcomes), one
 * batch in flight at a time. Each outcome goes to the stream through ops:
 *   ok       the transformed bytes and the function's partition keys: the stream buffers them
 *            under the record's spool id (in->tag);
 *   dropped  nothing derived from the record: the stream releases it in the spool;
 *   failed   its processing-failed error record (the ORIGINAL bytes, attemptsMade, errorCode,
 *            lambdaArn), one line: the stream writes it under ErrorOutputPrefix and releases
 *            the record once that object is written;
 *   done     a batch ended (or was canceled): memory came back.
 * A canceled batch (sl_stream_xform_cancel) reports no outcome: its records stay unreleased in
 * the spool and are transformed after a restart; a record is never failed because sluice
 * stopped. Loop thread only. */

struct sl_stream_xform_ops {
    void (*ok)(void *arg, const struct sl_fh_rec *in, const struct sl_fh_out *out);
    void (*dropped)(void *arg, const struct sl_fh_rec *in);
    void (*failed)(void *arg, const struct sl_fh_rec *in, const char *line, size_t len);
    void (*done)(void *arg);
};

struct sl_stream_xform_env {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const struct sl_fh_transform_conf *conf; /* borrowed; outlives the stage */
    struct sl_function *fn;                  /* borrowed: the function LambdaArn names */
    const char *stream_arn;                  /* deliveryStreamArn (copied) */
    const char *region;                      /* copied; NULL: us-east-1 */
    const char *source_kinesis_arn; /* KinesisStreamAsSource: the Kinesis stream's ARN (copied);
                                       NULL: direct put */
    const char *inst;               /* the stream's name, for logs (borrowed: outlives x) */
    const struct sl_retry_policy *retry; /* NULL: the default */
    sl_fh_rand_fn rand;                  /* invocationId bytes; NULL: the system's */
    const struct sl_stream_xform_ops *ops;
    void *arg;
};

struct sl_stream_xform;

/* Returns 0 and *ret_x (owned: sl_stream_xform_free), or SL_ENOMEM. */
SL_NODISCARD int sl_stream_xform_new(const struct sl_stream_xform_env *env,
                                     struct sl_stream_xform **ret_x);

/* Copies one durable record (its id as the tag) into the processor's buffer and starts a batch
 * when the buffer is full and none is in flight. Returns 0 or SL_ENOMEM (not taken). */
SL_NODISCARD int sl_stream_xform_add(struct sl_stream_xform *x, const struct sl_spool_rec *rec);

/* Bytes the buffer takes before it is full (0: full, read no more for now). */
size_t sl_stream_xform_room(const struct sl_stream_xform *x);
/* Bytes held: the buffer, and the batch in flight with its outcomes. */
size_t sl_stream_xform_bytes(const struct sl_stream_xform *x);
/* Records held (buffered or in flight). */
size_t sl_stream_xform_records(const struct sl_stream_xform *x);
/* The oldest arrival held (epoch ms), or -1. */
int64_t sl_stream_xform_oldest(const struct sl_stream_xform *x);
/* Invocations made so far, retries included. */
uint64_t sl_stream_xform_invocations(const struct sl_stream_xform *x);

/* What is buffered goes now (after the batch in flight); with drain, every later record too
 * goes at once. */
void sl_stream_xform_flush(struct sl_stream_xform *x, bool drain);

/* Cancels the batch in flight (and cuts its invocations short through sl_function_stop): it
 * reports no outcome, done runs later; buffered records are dropped from memory. Their records
 * stay in the spool. Nothing starts after this. */
void sl_stream_xform_cancel(struct sl_stream_xform *x);

/* A batch is in flight (done has not run). */
bool sl_stream_xform_busy(const struct sl_stream_xform *x);

/* Frees x; nothing may be in flight. The memory goes once its timer is closed. NULL: no-op. */
void sl_stream_xform_free(struct sl_stream_xform *x);

#endif

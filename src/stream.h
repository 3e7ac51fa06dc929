/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_H
#define SL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"

struct sl_clock;
struct sl_stream_conf;
struct sl_firehose_rec;
struct sl_stream_dest;
struct sl_function;
struct sl_retry_policy;
struct sl_spool_in;

/* One delivery stream: records in, buffered, delivered as objects. Loop thread only. */
struct sl_stream;

struct sl_stream_env {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    struct sl_stream_dest *dest; /* where objects go (stream_dest.h); the stream takes it */
    const char *spool_dir;       /* the stream's own spool directory (state_dir/streams/<name>) */
    uint64_t spool_max_bytes;    /* the spool's quota (spool_max_bytes) */
    /* Test hook, passed to the spool: replaces fdatasync/fsync; NULL for the system's. */
    int (*sync_fn)(int fd, void *arg);
    void *sync_arg;
    /* The transform (sc->processing's Lambda processor): the function its LambdaArn names,
     * borrowed (NULL: no transform runs), and what its event carries. */
    struct sl_function *fn;
    const char *stream_arn;              /* deliveryStreamArn */
    const char *region;                  /* NULL: us-east-1 */
    const struct sl_retry_policy *retry; /* between transform attempts; NULL: the default */
};

/* Firehose's metric names where they exist (wire.md §4.9). */
struct sl_stream_stats {
    uint64_t incoming_records;  /* IncomingRecords */
    uint64_t incoming_bytes;    /* IncomingBytes */
    uint64_t throttled;         /* ThrottledRecords: refused for want of spool room */
    uint64_t delivered;         /* records whose object the destination finished */
    uint64_t delivered_bytes;   /* their bytes */
    uint64_t objects;           /* objects the destination finished (the destination's own
                                   counters, stream_dest.h, have Firehose's names) */
    uint64_t transform_ok;      /* records the transform returned Ok */
    uint64_t transform_dropped; /* ... Dropped (released at once) */
    uint64_t transform_failed;  /* ... failed (written as processing-failed) */
    uint64_t partition_failed;  /* records whose partition keys could not be extracted */
};

/* Creates the stream of sc (borrowed; must outlive it) and opens its spool in env->spool_dir;
 * records a previous run left there are delivered. Takes env->dest, also on failure. Returns
 * 0, or SL_ENOMEM, SL_EIO or SL_EINVAL with errbuf naming the spool's directory and the
 * cause (or a Lambda processor without env->fn). */
SL_NODISCARD int sl_stream_new(const struct sl_stream_conf *sc,
                               const struct sl_stream_env *env,
                               struct sl_stream **ret_s,
                               char *errbuf,
                               size_t errlen);

/* status 0: the records taken are durable (fsynced in the spool); negative (SL_EIO): they
 * are not, and the client must not be told they were accepted. */
typedef void (*sl_stream_put_cb)(void *arg, int status);

/* Appends the records (copied to the spool). Returns 0 with *ret_took the number of the first
 * ones taken (n, or fewer when only those fit in the quota) and cb(arg, status) runs later, on
 * the loop, once they are durable; or, with nothing stored and cb never called:
 * SL_ETHROTTLED (the quota is full: what the spool holds is delivered at once, so retry
 * later), SL_EIO, SL_ENOMEM, SL_ECANCELED (the stream is closing). */
SL_NODISCARD int sl_stream_put(struct sl_stream *s,
                               const struct sl_firehose_rec *recs,
                               size_t n,
                               size_t *ret_took,
                               sl_stream_put_cb cb,
                               void *arg);

/* As sl_stream_put, for records that bring their own arrival time and metadata (a mapping
 * feeding the stream, stream_feed.c; a Kinesis source's record metadata, fh_kmeta.h): each is
 * copied to the spool as given (its tag unused). Same returns and callback. */
SL_NODISCARD int sl_stream_put_in(struct sl_stream *s,
                                  const struct sl_spool_in *in,
                                  size_t n,
                                  size_t *ret_took,
                                  sl_stream_put_cb cb,
                                  void *arg);

/* Delivers what is buffered now, and from then on every record at once; for SIGTERM. A
 * transform batch in flight is awaited (its records are delivered once it returns). */
void sl_stream_drain(struct sl_stream *s);

/* Cancels the transform batch in flight (drain_timeout, a second signal): it reports nothing,
 * and its records stay in the spool, transformed after a restart, never reported failed
 * because sluice stopped. Nothing is transformed after this. */
void sl_stream_cancel(struct sl_stream *s);

/* Records in the spool not yet delivered (buffered, being delivered, or waiting to be read). */
size_t sl_stream_held(const struct sl_stream *s);

/* Streams freed whose spool has not finished closing (a sync or a save in flight): the loop
 * must run until this is 0 before its handles are closed by force. */
size_t sl_stream_closing(void);

const struct sl_stream_stats *sl_stream_stats(const struct sl_stream *s);
const char *sl_stream_name(const struct sl_stream *s);

/* Logs the progress line: Firehose's counters and what is held. A stream being freed
 * (sl_stream_free called, its spool still closing) logs nothing. */
void sl_stream_log_stats(const struct sl_stream *s, const char *msg);

/* Frees s; records not delivered stay in the spool for the next start (logged). Appends in
 * flight complete (their callbacks run), and a delivery or a transform batch in flight is
 * stopped (sl_stream_cancel) and its callback awaited, on the loop, before the memory goes (see
 * sl_stream_closing). NULL is a no-op. */
void sl_stream_free(struct sl_stream *s);

#endif

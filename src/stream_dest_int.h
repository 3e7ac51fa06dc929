/* SPDX-License-Identifier: Apache-2.0 */
/* stream_dest_int.h: what the files of a delivery stream's destination share and nothing else
 * includes: a target (a file:///dir or an S3 bucket with its key layout and compression) and
 * the writing of one object to it, retried until it succeeds (stream_dest_put.c); stream_dest.c
 * (the S3 destination and the interface) and stream_dest_http.c (the HTTP endpoint and its
 * backup) call it, it calls neither. stream_dest_sink.c (a sink destination: Kafka, Redis) is
 * called by stream_dest.c only. */
#ifndef SL_STREAM_DEST_INT_H
#define SL_STREAM_DEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <uv.h>

#include "buf.h"
#include "retry.h"
#include "s3_file.h"
#include "s3_keys.h"
#include "s3_object.h"
#include "s3_put.h"
#include "stream_dest.h"

#define DEST_COMP "stream"

/* Where objects go: a BucketARN with its Prefix/ErrorOutputPrefix and CompressionFormat. */
struct dest_target {
    struct sl_s3_file *file; /* file:///dir, or NULL */
    struct sl_s3_put *put;   /* arn:aws:s3:::BUCKET, or NULL */
    const struct sl_s3_layout *layout;
    enum sl_s3_compression comp;
    const char *ext; /* ".gz" or "" */
};

/* Opens the target of sc's S3 fields (the destination, or the HTTP endpoint's backup). Returns
 * 0, SL_ECONFIG (errbuf) or SL_ENOMEM. */
int dest_target_open(struct dest_target *t,
                     const struct sl_stream_conf *sc,
                     const struct sl_stream_dest_env *env,
                     char *errbuf,
                     size_t errlen);
void dest_target_close(struct dest_target *t);

/* Appends the key of an object whose oldest record arrived at time_ms: under Prefix, or (error)
 * under ErrorOutputPrefix with error_type. Returns 0 or a negative SL_E* with errbuf. */
int dest_target_key(const struct dest_target *t,
                    const char *stream,
                    int64_t time_ms,
                    const char *error_type,
                    struct sl_buf *key,
                    char *errbuf,
                    size_t errlen);
/* The same with vars (time_ms, partition keys, error_type) as given; error: under
 * ErrorOutputPrefix. */
int dest_target_key_vars(const struct dest_target *t,
                         const char *stream,
                         const struct sl_s3_vars *vars,
                         bool error,
                         struct sl_buf *key,
                         char *errbuf,
                         size_t errlen);

/* One object written to a target, again and again with backoff until it is stored: the same key
 * and body every time. One at a time. */
struct dest_put {
    uv_timer_t timer;
    struct dest_target *t;
    const char *inst;
    struct sl_stream_dest_stats *stats;
    struct sl_buf key;
    /* The S3 API's body, made at the first attempt and kept for the retries: the records
     * themselves when they lie end to end in memory and go uncompressed, else built in body
     * (GZIP: compressed on the thread pool by gz, so the loop goes on meanwhile). */
    struct sl_buf body;
    struct sl_s3_gz *gz; /* compressing the body */
    const void *body_data;
    size_t body_len;
    bool body_ready;
    const struct iovec *iov; /* the records, borrowed */
    size_t n;
    size_t n_records; /* for the log lines */
    unsigned attempts;
    bool active;  /* started, done not yet called */
    bool writing; /* a write (or the compression of its body) is in flight */
    bool stopped; /* dest_put_stop: no further attempt */
    struct sl_retry_policy policy;
    uint64_t rng;
    void (*done)(void *arg, int err);
    void *arg;
};

void dest_put_init(struct dest_put *p, uv_loop_t *loop, const char *inst);
/* Closes the timer; cb runs when it is closed (the memory may go then). */
void dest_put_fini(struct dest_put *p, uv_close_cb cb);

/* Writes recs[0..n) (borrowed until done), n_records records, as the object key (copied) of t.
 * done(arg, 0) once it is stored, or done(arg, SL_ECANCELED) after dest_put_stop; always on a later
 * loop turn. Returns 0, or SL_ENOMEM and done never runs. */
int dest_put_start(struct dest_put *p,
                   struct dest_target *t,
                   const char *key,
                   const struct iovec *recs,
                   size_t n,
                   size_t n_records,
                   void (*done)(void *arg, int err),
                   void *arg);

void dest_put_stop(struct dest_put *p);
void dest_put_retry_now(struct dest_put *p);

/* stream_dest_http.c: the HTTP endpoint destination, with its backup to t through put. */
struct sl_fh_http_conf;
struct dest_http;

int dest_http_new(const struct sl_fh_http_conf *conf,
                  const struct sl_stream_dest_env *env,
                  const char *inst,
                  struct dest_target *backup,
                  struct dest_put *put,
                  struct sl_stream_dest_stats *stats,
                  struct dest_http **ret_h);
/* Delivers recs/iov[0..n) (borrowed until done): done(arg, 0) once delivered or backed up,
 * done(arg, SL_ECANCELED) after dest_http_stop; later. Returns 0 or SL_ENOMEM (no done). */
int dest_http_deliver(struct dest_http *h,
                      const struct sl_stream_dest_rec *recs,
                      const struct iovec *iov,
                      size_t n,
                      int64_t oldest_ms,
                      void (*done)(void *arg, int err),
                      void *arg);
void dest_http_stop(struct dest_http *h);
void dest_http_free(struct dest_http *h);

/* stream_dest_sink.c: a SinkDestinationConfiguration: each record one document of a sink
 * (sinks/sink.h), retried with backoff until every one is written. */
struct sl_stream_sink_conf;
struct dest_sink;

/* Opens the sink of conf (borrowed; must outlive it). Returns 0, SL_ECONFIG (errbuf) or
 * SL_ENOMEM. */
int dest_sink_new(const struct sl_stream_sink_conf *conf,
                  const struct sl_stream_dest_env *env,
                  const char *inst,
                  struct sl_stream_dest_stats *stats,
                  struct dest_sink **ret_s,
                  char *errbuf,
                  size_t errlen);
/* Writes recs[0..n) (borrowed until done), one document each: done(arg, 0) once every one is
 * written, done(arg, SL_ECANCELED) after dest_sink_stop; always later. Returns 0 or SL_ENOMEM
 * (no done). */
int dest_sink_deliver(struct dest_sink *s,
                      const struct sl_stream_dest_rec *recs,
                      size_t n,
                      void (*done)(void *arg, int err),
                      void *arg);
void dest_sink_stop(struct dest_sink *s);
void dest_sink_retry_now(struct dest_sink *s);
/* Frees s (nothing in flight); the memory goes once its timer is closed. NULL is a no-op. */
void dest_sink_free(struct dest_sink *s);

#endif

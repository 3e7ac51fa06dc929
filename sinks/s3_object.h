/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_S3_OBJECT_H
#define SL_S3_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <uv.h>

#include "buf.h"
#include "err.h"

/* The bodies of Firehose's S3 objects (wire.md §4.4, §4.8).
 *
 * A delivery object is its records concatenated as they are: Firehose adds no delimiter (a
 * producer that wants lines sends them, or the stream uses AppendDelimiterToRecord). With
 * CompressionFormat GZIP the concatenation is one gzip member (RFC 1952; `gzip -d` and
 * zlib's inflate with windowBits 15+16 read it) and the key ends in ".gz"
 * (sl_s3_keys_extension).
 *
 * The encoder streams: records go in with sl_s3_object_add, output leaves in chunks of at most
 * SL_S3_OBJECT_CHUNK bytes through the caller's emit function (a file write, an sl_buf append),
 * so memory stays bounded whatever the object's size. GZIP uses zlib at level 1 (speed: the
 * delivery path targets 100 MB/s a core; Firehose's level is not documented).
 *
 * A backup object (S3BackupMode FailedDataOnly/AllData, processing-failed, http-endpoint-failed)
 * holds Firehose's error records, one JSON document and '\n' per failed record
 * (sl_s3_object_error_line), compressed or not like any other object.
 *
 * One encoder per object, on one thread at a time (the file writer runs it on the pool). Nothing
 * logs.
 *
 * A GZIP object of records already in memory is better compressed in parallel (sl_s3_gz, below):
 * that is how delivery keeps up with ingest when one core compresses slower than records come. */

#define SL_S3_OBJECT_CHUNK (64 * 1024)

enum sl_s3_compression { SL_S3_UNCOMPRESSED = 0, SL_S3_GZIP, SL_S3_COMPRESSION_COUNT };

/* Takes p[0..n): returns 0 or a negative SL_E* (which the encoder then returns). */
typedef int (*sl_s3_object_emit_fn)(void *arg, const void *p, size_t n);

struct sl_s3_object;

/* Returns 0 and *ret_o (owned: sl_s3_object_free), or SL_ENOMEM. emit and arg are kept. */
SL_NODISCARD int sl_s3_object_new(enum sl_s3_compression comp,
                                  sl_s3_object_emit_fn emit,
                                  void *arg,
                                  struct sl_s3_object **ret_o);

/* Adds p[0..n) to the body. Returns 0, emit's error, or SL_ENOMEM/SL_EIO (zlib); after an
 * error every later call returns it again. */
SL_NODISCARD int sl_s3_object_add(struct sl_s3_object *o, const void *p, size_t n);

/* Emits what is buffered and, with GZIP, the rest of the stream and its trailer. Returns 0 or
 * the first error. Call once, after the last add. */
SL_NODISCARD int sl_s3_object_finish(struct sl_s3_object *o);

/* Bytes added (before compression) and bytes emitted so far. */
uint64_t sl_s3_object_bytes_in(const struct sl_s3_object *o);
uint64_t sl_s3_object_bytes_out(const struct sl_s3_object *o);

void sl_s3_object_free(struct sl_s3_object *o);

/* The whole body of n records appended to out (an S3 PutObject body). Returns 0 or SL_ENOMEM /
 * SL_EIO; out is left as it was on failure. */
SL_NODISCARD int sl_s3_object_build(const struct iovec *recs,
                                    size_t n,
                                    enum sl_s3_compression comp,
                                    struct sl_buf *out);

/* Parallel GZIP of an object whose records are all in memory (pigz's way): the body is cut into
 * blocks of SL_S3_GZ_BLOCK input bytes, each compressed by its own job on libuv's thread pool
 * (raw deflate, the 32 KiB of input before the block as its dictionary, ended on a byte boundary
 * by a sync flush, the last one by the final block) with its CRC-32; in order, between a gzip
 * header and a trailer of the combined CRC-32 and length, the blocks are one gzip member, the
 * same bytes however the jobs were scheduled (so a retry writes the same object). At most
 * SL_S3_GZ_JOBS jobs run at once, those of all compressors together (the pool is shared with the
 * spool's fsyncs), and at most
 * SL_S3_GZ_WINDOW blocks are compressed ahead of the consumer: memory stays a few MB whatever
 * the object's size.
 *
 * Usage (loop thread): sl_s3_gz_new starts the jobs; ready(arg) runs on the loop thread each
 * time something changed (a block done, an error, the last job ended after a cancel);
 * sl_s3_gz_ready lends the output that is next in order, which the consumer writes out and
 * returns with sl_s3_gz_consumed (which frees it and starts more jobs), until sl_s3_gz_done.
 * sl_s3_gz_error says a job failed (SL_ENOMEM / SL_EIO) or SL_ECANCELED after sl_s3_gz_cancel;
 * free only when !sl_s3_gz_busy. */

#define SL_S3_GZ_BLOCK  (1024 * 1024)
#define SL_S3_GZ_JOBS   2
#define SL_S3_GZ_WINDOW 4

struct sl_s3_gz;

/* Returns 0 and *ret_gz (owned: sl_s3_gz_free), or SL_ENOMEM (ready never runs). recs[0..n)
 * and the bytes they point at are borrowed until it is freed; loop borrowed. */
SL_NODISCARD int sl_s3_gz_new(uv_loop_t *loop,
                              const struct iovec *recs,
                              size_t n,
                              void (*ready)(void *arg),
                              void *arg,
                              struct sl_s3_gz **ret_gz);

/* Fills iov[0..max) with the output ready in order (the header first, the trailer last), borrowed
 * until sl_s3_gz_consumed; returns how many (0: nothing ready, or an error). Calling it again
 * before consumed returns the same pieces first. max >= SL_S3_GZ_WINDOW + 2 takes all. */
size_t sl_s3_gz_ready(struct sl_s3_gz *gz, struct iovec *iov, size_t max);

/* The first count pieces of the last sl_s3_gz_ready were written out: frees them. */
void sl_s3_gz_consumed(struct sl_s3_gz *gz, size_t count);

/* Every piece, trailer included, was consumed. */
bool sl_s3_gz_done(const struct sl_s3_gz *gz);

/* 0, or the first failure: SL_ENOMEM / SL_EIO (zlib), SL_ECANCELED (sl_s3_gz_cancel). */
int sl_s3_gz_error(const struct sl_s3_gz *gz);

/* Stops: jobs not started are canceled, no more start; ready runs once the last job ended. */
void sl_s3_gz_cancel(struct sl_s3_gz *gz);

/* Jobs are in flight: gz may not be freed yet. */
bool sl_s3_gz_busy(const struct sl_s3_gz *gz);

/* Bytes of the body so far consumed. */
uint64_t sl_s3_gz_bytes_out(const struct sl_s3_gz *gz);

void sl_s3_gz_free(struct sl_s3_gz *gz);

/* One failed record, in Firehose's error record format. Strings are borrowed. */
struct sl_s3_error_rec {
    unsigned attempts_made;    /* attemptsMade */
    int64_t arrival_ms;        /* arrivalTimestamp: the record's approximate arrival, epoch ms */
    const char *error_code;    /* errorCode: "Lambda.FunctionError", "ProcessingFailed",
                                  "HttpEndpoint.DestinationException", ... */
    const char *error_message; /* errorMessage; NULL: "" */
    int64_t attempt_ending_ms; /* attemptEndingTimestamp, epoch ms */
    const void *raw;           /* the record's original bytes */
    size_t raw_len;
    bool raw_is_base64;     /* raw is already its standard base64 (copied as is) */
    const char *lambda_arn; /* lambdaArn (processing-failed); NULL: omitted */
    const char *data_id;    /* dataId with subsequenceNumber 0 (HTTP endpoint failures);
                               NULL: both omitted */
};

/* Appends {"attemptsMade":..,"arrivalTimestamp":..,"errorCode":..,"errorMessage":..,
 * "attemptEndingTimestamp":..,"rawData":"<base64>"[,"lambdaArn":..][,"subsequenceNumber":0,
 * "dataId":..]} and '\n', keys in Firehose's order. Returns 0 or SL_ENOMEM (out as it was). */
SL_NODISCARD int sl_s3_object_error_line(struct sl_buf *out, const struct sl_s3_error_rec *e);

#endif

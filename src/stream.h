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

/* One delivery stream: records in, buffered, delivered as objects. Loop thread only. */
struct sl_stream;

struct sl_stream_env {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    struct sl_stream_dest *dest; /* where objects go (stream_dest.h); the stream takes it */
};

/* Firehose's metric names where they exist (wire.md §4.9). */
struct sl_stream_stats {
    uint64_t incoming_records; /* IncomingRecords */
    uint64_t incoming_bytes;   /* IncomingBytes */
    uint64_t throttled;        /* ThrottledRecords: refused for want of buffer room */
    uint64_t delivered;        /* records whose object the destination finished */
    uint64_t delivered_bytes;  /* their bytes */
    uint64_t objects;          /* objects the destination finished (the destination's own
                                  counters, stream_dest.h, have Firehose's names) */
};

/* Creates the stream of sc (borrowed; must outlive it). Takes env->dest, also on failure.
 * Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_stream_new(const struct sl_stream_conf *sc,
                               const struct sl_stream_env *env,
                               struct sl_stream **ret_s);

/* Takes records (copied). Returns how many of the first ones it took: fewer than n when the
 * buffer is at its cap (deliveries behind) or the stream is draining. */
size_t sl_stream_put(struct sl_stream *s, const struct sl_firehose_rec *recs, size_t n);

/* Delivers what is buffered now, and from then on every record at once; for SIGTERM. */
void sl_stream_drain(struct sl_stream *s);

/* Records accepted and not yet delivered (buffered or being written). */
size_t sl_stream_held(const struct sl_stream *s);

const struct sl_stream_stats *sl_stream_stats(const struct sl_stream *s);
const char *sl_stream_name(const struct sl_stream *s);

/* Logs the progress line: Firehose's counters and what is held. */
void sl_stream_log_stats(const struct sl_stream *s, const char *msg);

/* Frees s; records still held are lost (logged). A delivery in flight is stopped and its
 * callback awaited, on the loop, before the memory goes. NULL is a no-op. */
void sl_stream_free(struct sl_stream *s);

#endif

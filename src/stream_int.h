/* SPDX-License-Identifier: Apache-2.0 */
/* stream_int.h: a delivery stream's state, shared by stream.c, which owns it (the record's life),
 * and stream_stats.c, which only reads it for the progress line. Nothing else includes it. */
#ifndef SL_STREAM_INT_H
#define SL_STREAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "stream.h"
#include "stream_key.h"

struct sl_stream {
    const struct sl_stream_conf *sc;
    struct sl_stream_env env;
    uv_timer_t interval_timer;
    uv_timer_t retry_timer;
    uv_timer_t save_timer;
    int open_handles;
    struct sl_stream_dest *dest;
    struct sl_spool *spool;
    uint64_t spool_max_bytes;
    struct sl_stream_parts *parts; /* records read (and transformed), not yet sealed */
    struct sl_stream_xform *xform; /* the transform stage, or NULL */
    struct sl_stream_key key;      /* a record's partition keys (dynamic partitioning) */
    size_t appending;              /* records appended to the spool and not yet acknowledged */
    struct sl_stream_obj *head;    /* sealed, oldest first; head is the one being written */
    struct sl_stream_obj *tail;
    size_t sealed_bytes;
    size_t sealed_records;
    bool writing; /* head is with the destination */
    bool draining;
    bool filling;
    bool quota_hit; /* a put was refused for the quota: deliver what the spool holds now */
    bool closing;   /* sl_stream_free was called */
    bool freed;     /* sl_stream_free was called during a write or a transform */
    int64_t size_bytes;
    int64_t cap_bytes;
    struct sl_stream_stats stats;
};

/* Bytes held in memory: in the transform, in open partitions, sealed. */
size_t sl_stream_mem_bytes(const struct sl_stream *s);

#endif

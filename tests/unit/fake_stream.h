/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_FAKE_STREAM_H
#define SL_TEST_FAKE_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* A fake *stream* source for unit tests, served for EventSourceArn "fake://..." once
 * fake_stream_register() ran. The test holds a struct fake_stream and drives it: which
 * partitions exist, which records are fetchable (with partition keys), whether fetches complete
 * at once or when the test says, when a partition is gone or revoked. It logs what the engine
 * asks of it: every fetch (with its limits) and every ack(part, last).
 *
 * Positions are record indices: record i of a partition has pos i and next_pos i + 1, so the
 * checkpoint text (the registry's default format_pos) is "the number of records done" and the
 * itemIdentifier (the default format_item_id) is "i". A partition resumes from its stored
 * checkpoint. The event is {"Records":[{"part":"<id>","seq":i,"key":"...","data":...},...]}, data
 * being the record's bytes as a JSON string; the filter document is {"key":"...","data":<the bytes
 * parsed as JSON when they are JSON, else the string>}.
 *
 * One fake_stream is current at a time (the adapter's ctx, allocated by the mapping, finds it
 * through fake_stream_init). Loop thread. */

#define FAKE_STREAM_SCHEME    "fake://"
#define FAKE_STREAM_MAX_PARTS 16

struct fake_rec {
    char *data;
    size_t len;
    char key[16];
};

struct fake_part {
    char id[32];
    struct sl_part *part; /* the mapping's, while it has it; NULL before start and after release */
    struct fake_rec *recs;
    size_t n_recs;
    size_t cap_recs;
    size_t next;        /* index of the next record to fetch */
    size_t acked;       /* records acknowledged (next_pos of the last ack) */
    bool wants_wake;    /* fetch returned 0: part_wake when a record is pushed */
    bool fetch_pending; /* async: a fetch returned SL_EINPROGRESS and waits */
    size_t pending_max_records;
    size_t pending_max_bytes;
    bool gone;
    bool revoked;
    bool released;
};

struct fake_ack {
    size_t part;  /* index in parts */
    uint64_t pos; /* last->pos: records up to and including it are done */
};

struct fake_fetch {
    size_t part;
    size_t max_records;
    size_t max_bytes;
    size_t held_records;    /* what the mapping held of the whole source when it asked (fetched, */
    size_t held_bytes;      /* not yet acknowledged) */
    size_t pending_records; /* async: the max_records of the fetches then in flight */
};

struct fake_stream {
    struct sl_source_env env; /* the mapping's, copied by init */
    bool inited;
    bool started;
    bool stopped;
    bool async;      /* fetch returns SL_EINPROGRESS; fake_stream_complete() finishes them */
    bool async_auto; /* ... or the fake itself, on the next loop turn (an idle handle) */
    uv_idle_t idle;
    struct fake_part parts[FAKE_STREAM_MAX_PARTS];
    size_t n_parts;
    struct fake_ack *acks;
    size_t n_acks;
    size_t cap_acks;
    struct fake_fetch *fetches;
    size_t n_fetches;
    size_t cap_fetches;
    size_t held_records; /* fetched and not yet acknowledged, over all partitions */
    size_t held_bytes;   /* their bytes (data and key, as the mapping counts them) */
    size_t max_held_records;
    size_t max_held_bytes;
    size_t released; /* part_release calls */
    /* Called at every ack, before it is logged (tests check what was done at that moment). */
    void (*on_ack)(void *arg, size_t part, uint64_t pos);
    void *on_ack_arg;
    size_t calls_after_stop;  /* fetches the engine made after stop (it must not) */
    size_t events_after_stop; /* callbacks the fake was asked to make after stop (skipped) */
};

/* The adapter: its sl_source_ops use is in one initializer in fake_stream.c. */
extern const struct sl_source_ops fake_stream_ops;

/* Registers fake_stream_ops for "fake://" (sl_source_register_extra). */
void fake_stream_register(void);

/* Clears fs and makes it the current fake. */
void fake_stream_init(struct fake_stream *fs);
/* Frees what fs holds (after the mapping using it was freed). */
void fake_stream_fini(struct fake_stream *fs);

/* Declares a partition (created at start, or at once when started). Returns its index. */
size_t fake_stream_add_part(struct fake_stream *fs, const char *id);
/* Makes a record fetchable at the end of partition p (data copied) and wakes the mapping when
 * it waits for one. */
void fake_stream_push(
    struct fake_stream *fs, size_t p, const char *key, const char *data, size_t len);
/* The same, for a NUL-terminated data. */
void fake_stream_push_str(struct fake_stream *fs, size_t p, const char *key, const char *data);
/* Completes every fetch that returned SL_EINPROGRESS. Returns how many. */
size_t fake_stream_complete(struct fake_stream *fs);
/* The source produces nothing more of p / takes p away now. */
void fake_stream_gone(struct fake_stream *fs, size_t p);
void fake_stream_revoke(struct fake_stream *fs, size_t p);

/* Completes the fetch of partition p if one returned SL_EINPROGRESS. Returns 1, or 0 when none
 * waits. */
size_t fake_stream_complete_part(struct fake_stream *fs, size_t p);

/* The highest ack of partition p: next_pos of its last record (0 when none). */
uint64_t fake_stream_acked(const struct fake_stream *fs, size_t p);

#endif

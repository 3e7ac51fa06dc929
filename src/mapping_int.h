/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_MAPPING_INT_H
#define SL_MAPPING_INT_H

/* The inside of a mapping, shared by mapping.c (partitions, fetching, checkpoints, life cycle)
 * and lane.c (batches: invoke, verdicts, the on-failure path, tumbling windows). Nothing else
 * includes it. Loop thread. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "batcher.h"
#include "buf.h"
#include "checkpoint.h"
#include "config.h"
#include "filter.h"
#include "function.h"
#include "invoker.h"
#include "mapping.h"
#include "onfailure.h"
#include "memo.h"
#include "partition.h"
#include "progress.h"
#include "retry.h"
#include "sink.h"
#include "url.h"
#include "window.h"
#include "source.h"

enum sl_lane_state {
    SL_LANE_IDLE,          /* no batch: waiting for records or for the window to close */
    SL_LANE_READY,         /* a batch waits for a concurrency slot */
    SL_LANE_INVOKING,      /* an invocation is in flight */
    SL_LANE_BACKOFF,       /* the batch failed; the timer sends it again */
    SL_LANE_WRITING,       /* records are being written to the on-failure destination */
    SL_LANE_WRITE_BACKOFF, /* that write failed; the timer writes again */
};

struct sl_lane_range {
    size_t lo; /* indices into the lane's batch */
    size_t hi;
};

/* One record of a lane's batch: its partition, and its absolute index in that partition's
 * queue. */
struct sl_lane_item {
    struct sl_mpart *mp;
    uint64_t abs;
};

/* One of a partition's ParallelizationFactor lanes: the records whose partition key hashes to
 * it, one batch at a time. Where batches span partitions (Kafka), a lane's batch starts with
 * its own partition's records and goes on with those of other partitions that have no batch
 * in flight: the lane carries them all, and each partition has one batch in flight at most. */
struct sl_lane {
    struct sl_mpart *mp;
    enum sl_lane_state state;
    uint64_t scan; /* absolute index after the lane's last taken record: every record of
                      this lane before it is taken already */
    struct sl_lane_item *items; /* the batch, grouped by partition, each in position order */
    size_t n;
    size_t cap;
    struct sl_lane_range cur;   /* the part of the batch being tried */
    struct sl_lane_range *todo; /* parts after it (from bisection); the last is next */
    size_t n_todo;
    size_t cap_todo;
    unsigned attempts; /* counted failures of cur */
    unsigned invokes;  /* invocations of cur (approximateInvokeCount) */
    /* Destinations that take one record per document (kafka://): the records still to hand
     * over after the current one, with the condition they go under. */
    size_t give_up_rest;
    const char *give_up_condition;
    int give_up_response; /* enum sl_failrec_response */
    int last_status;
    bool last_function_error;
    struct sl_batch_ref *refs;   /* scratch: cur's records while encoding */
    struct sl_buf body;          /* cur's event, as sent */
    struct sl_onfail_write *ofw; /* the on-failure path's write, once the lane gave up */
    struct sl_lane_range dest;   /* the records it writes */
    int64_t last_end_ms;
    struct sl_window *win; /* TumblingWindowInSeconds > 0 (one lane per partition then) */
    bool in_final;         /* the invocation in flight (or backing off) is the final one */
    uv_timer_t timer;
};

/* The mapping's state for one partition (part->owner). */
struct sl_mpart {
    struct sl_mapping *m;
    struct sl_part *part;
    bool want_fetch;    /* the source may have more records */
    bool fetch_pending; /* an asynchronous fetch is running */
    bool fetch_failed;  /* the last fetch failed; retried by the mapping's timer */
    bool gone;          /* the source will produce no more */
    bool revoked;       /* taken away (rebalance): nothing more of it is acknowledged */
    bool released;
    bool fetched;          /* a fetch of it completed (records, none, or an error): before
                              that its lag is unknown and the mapping is not quiet */
    int64_t first_wait_ms; /* when the queue last became non-empty */
    size_t held_records;   /* what this partition counts against the mapping's bound */
    size_t held_bytes;
    struct sl_progress_part *prog; /* its low-watermark and checkpoint (progress.c) */
    struct sl_lane *lanes;
    size_t n_lanes;
    size_t open_timers;
    /* Where batches span partitions: the lane whose batch holds this partition's records, or
     * NULL. The partition joins no other batch meanwhile and is not released. */
    struct sl_lane *carrier;
};

struct sl_mapping {
    const struct sl_mapping_conf *conf;
    struct sl_mapping_env env;
    char *name;
    char *function_arn;
    const struct sl_source_ops *ops;
    void *src_ctx;
    bool src_inited;
    struct sl_source_env senv;
    struct sl_ckpt *ck;
    struct sl_progress *progress;
    struct sl_filter *filter;
    struct sl_onfail *onfail;
    struct sl_invoker_policy policy;
    struct sl_mpart **parts;
    size_t n_parts;
    size_t cap_parts;
    uv_idle_t pump;
    uv_timer_t fetch_retry;
    int open_handles; /* the mapping is freed when its handles are closed */
    bool freeing;
    bool draining;
    int in_flight; /* invocations */
    size_t held_records;
    size_t held_bytes;
    struct sl_batch_limits lim;
    struct sl_retry_policy retry;
    uint64_t rng;
    char warned_key[64];
    struct sl_memo *memo; /* the lanes' retry memos */
    struct sl_mapping_stats stats;
};

/* --- mapping.c, for lane.c --- */

int64_t sl_mapping_now(const struct sl_mapping *m);
void sl_mapping_schedule_pump(struct sl_mapping *m);
/* How many records and bytes mp may still fetch; false when none. */
bool sl_mapping_part_fetch_budget(const struct sl_mpart *mp,
                                  size_t *ret_records,
                                  size_t *ret_bytes);
/* Forgets mp (the source said it is gone, and nothing of it is left). */
void sl_mapping_part_release(struct sl_mpart *mp);
/* For a revoked partition: releases it once none of its lanes has anything in flight. */
void sl_mapping_part_settle(struct sl_mpart *mp);

/* --- lane.c, for mapping.c --- */

/* Starts the lane's next batch if one is due, sends a batch that waited for a concurrency
 * slot, or arms the lane's timer. */
void sl_lane_dispatch(struct sl_lane *ln);
/* mp was revoked: batches holding its records that are not in flight are abandoned now (their
 * other partitions' records are offered again, a failing batch leaves its retry state in a
 * memo); batches in flight are abandoned when they answer. */
void sl_lane_part_revoked(struct sl_mpart *mp);

#endif

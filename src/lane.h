/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_LANE_H
#define SL_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "carry.h"
#include "err.h"
#include "partition.h"
#include "progress.h"

/* The lanes of a mapping: each partition has ParallelizationFactor of them, and each lane
 * forms batches from the records its partition key hashes to (BatchSize, the batching window,
 * the 6 MB payload, the tumbling window) and hands each to its carry (carry.c), one batch in
 * flight at a time. Where batches span partitions (Kafka), a lane's batch also takes the
 * waiting records of partitions that have no batch in flight. The mapping above gives each
 * partition lanes and learns what it must through the host interface it gives them; the lanes
 * never call the mapping otherwise. Loop thread. */
struct sl_lanes;
/* One partition's lanes. */
struct sl_lane_part;

/* What the lanes ask of and tell the mapping. owner is the mapping's partition as given to
 * sl_lane_part_new. Every member is set. */
struct sl_lane_host {
    void *arg;
    /* How many records and bytes owner may still fetch; false when none (its buffer is full). */
    bool (*fetch_budget)(void *arg, void *owner, size_t *ret_records, size_t *ret_bytes);
    /* When owner's queue last became non-empty (monotonic ms): a batching window opens then. */
    int64_t (*first_wait_ms)(void *arg, void *owner);
    /* A lane of owner finished its batch and is idle: owner may go if the source is done
     * with it, else the mapping's pump runs again. */
    void (*lane_idle)(void *arg, void *owner);
    /* A batch holding records of revoked owner let go: it may be released once it is not
     * busy (sl_lane_part_is_busy). */
    void (*settle)(void *arg, void *owner);
    /* Records may be fetched or a lane may start: run the mapping's pump. */
    void (*schedule_pump)(void *arg);
    /* Adds n to a counter. */
    void (*count)(void *arg, enum sl_carry_stat stat, uint64_t n);
    /* n records of owner were taken into a batch (they are no longer waiting). */
    void (*taken)(void *arg, void *owner, size_t n);
    /* owner's lanes are closed and freed (after sl_lane_part_free): its memory may go. */
    void (*part_closed)(void *arg, void *owner);
};

struct sl_lanes_conf {
    struct sl_carry_conf carry; /* what every batch is carried with */
    int64_t window_ms;          /* TumblingWindowInSeconds * 1000; 0: none */
    size_t lanes_per_part;      /* ParallelizationFactor (1 with tumbling windows) */
};

/* Returns the lanes of a mapping, reporting to host (copied). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_lanes_new(const struct sl_lanes_conf *conf,
                              const struct sl_lane_host *host,
                              struct sl_lanes **ret_ls);
/* Frees the lanes once every partition's lanes were freed and closed (the memory goes with
 * the last partition's timer). Nothing may be in flight. NULL is a no-op. */
void sl_lanes_free(struct sl_lanes *ls);

/* Starts no more batches; backoffs, waits and batches waiting for a slot end (left for the
 * next run). Invocations and writes in flight finish. */
void sl_lanes_drain(struct sl_lanes *ls);

/* Invocations in flight. */
int sl_lanes_in_flight(const struct sl_lanes *ls);

/* Gives part (borrowed until sl_lane_part_free) lanes, with prog its progress (borrowed) and
 * owner the mapping's handle for it (passed back in host callbacks). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_lane_part_new(struct sl_lanes *ls,
                                  struct sl_part *part,
                                  struct sl_progress_part *prog,
                                  void *owner,
                                  struct sl_lane_part **ret_lp);
/* Stops the partition's lanes and closes their timers; host->part_closed follows once they
 * are closed. Nothing of it may be in flight. */
void sl_lane_part_free(struct sl_lane_part *lp);

/* Each lane of the partition starts its next batch if one is due, sends a batch that waited
 * for a concurrency slot, or arms its timer. May release the partition (host->lane_idle). */
void sl_lane_part_dispatch(struct sl_lane_part *lp);

/* The partition's source will produce nothing more of it (part_gone): a tumbling window still
 * open closes once its records are delivered (its final invocation comes at the next dispatch,
 * not at the window's end), so the partition can be done and released. */
void sl_lane_part_end(struct sl_lane_part *lp);

/* The partition was revoked: batches holding its records that are not in flight are
 * abandoned now (their other partitions' records are offered again, a failing batch leaves
 * its retry state in a memo); batches in flight are abandoned when they answer. */
void sl_lane_part_revoke(struct sl_lane_part *lp);

/* True while a batch holding its records is in flight (invoking, or writing to the
 * on-failure destination), or rides in another partition's batch. */
bool sl_lane_part_is_busy(const struct sl_lane_part *lp);

/* True while its records ride in a batch (its own lane's or another partition's). */
bool sl_lane_part_is_carried(const struct sl_lane_part *lp);

/* True when no lane of it has a batch, waits or backs off, and no batch carries it. */
bool sl_lane_part_is_idle(const struct sl_lane_part *lp);

#endif

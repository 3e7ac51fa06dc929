/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_CARRY_H
#define SL_CARRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "batcher.h"
#include "clock.h"
#include "err.h"
#include "invoker.h"
#include "onfailure.h"
#include "partition.h"
#include "progress.h"
#include "window.h"

struct sl_function;
struct sl_source_ops;

/* What one lane carries: a batch, from its first attempt to its end. It encodes the batch
 * (the 6 MB payload splits it), invokes the function and carries out the invoker's verdict on
 * each answer: done, retry after a backoff, split in two (BisectBatchOnFunctionError), resume
 * after the lowest failed record (partial batch responses), or give the records to the
 * on-failure path. The lanes above form the batches and own the partitions; a carry learns
 * and tells them what it must through the host interface it is given, and never calls them
 * otherwise. Loop thread. */
struct sl_carry;
/* What the carries of one mapping share: settings, the concurrency count, retry state and
 * the retry memos. */
struct sl_carry_group;

enum sl_carry_state {
    SL_CARRY_IDLE,          /* no batch: waiting for records or for the window to close */
    SL_CARRY_READY,         /* a batch waits for a concurrency slot */
    SL_CARRY_INVOKING,      /* an invocation is in flight */
    SL_CARRY_BACKOFF,       /* the batch failed; the timer sends it again */
    SL_CARRY_WRITING,       /* records are being written to the on-failure destination */
    SL_CARRY_WRITE_BACKOFF, /* that write failed; the timer writes again */
    SL_CARRY_STATE_COUNT,
};

/* What the carries count, for the mapping's statistics (mapping.h names them). */
enum sl_carry_stat {
    SL_CARRY_STAT_INVOKED,
    SL_CARRY_STAT_FAILED,
    SL_CARRY_STAT_DROPPED,
    SL_CARRY_STAT_DESTINATION_DELIVERED,
    SL_CARRY_STAT_DELIVERED,
    SL_CARRY_STAT_RETRIED,
    SL_CARRY_STAT_BATCHES,
    SL_CARRY_STAT_BYTES,
    SL_CARRY_STAT_QUEUE_ACKED, /* a queue's records given to queue_ack */
    SL_CARRY_STAT_COUNT,
};

/* What a carry asks of and tells the layer above. part_tag is that layer's handle for a
 * partition, given with each record (sl_carry_add); lane_tag its handle for the carry
 * (sl_carry_new). Every member is set. */
struct sl_carry_host {
    void *arg;
    /* True once the partition was revoked: nothing of it counts any more. */
    bool (*is_revoked)(void *arg, void *part_tag);
    /* A record of an abandoned batch (not done, its partition not revoked) is offered again:
     * it is no longer taken, and the lane whose it is (rec->lane) may take it from abs on. */
    void (*give_back)(void *arg, void *part_tag, uint64_t abs, uint32_t lane);
    /* The batch of lane_tag ended (done or abandoned) and held records of part_tag. */
    void (*let_go)(void *arg, void *part_tag, void *lane_tag);
    /* An abandoned batch held records of revoked part_tag: it may go once nothing holds it. */
    void (*settle)(void *arg, void *part_tag);
    /* The carry finished its batch and is idle. */
    void (*idle)(void *arg, void *lane_tag);
    /* The wait armed by sl_carry_wait ran out. */
    void (*due)(void *arg, void *lane_tag);
    /* The carry is closed and freed (after sl_carry_close). */
    void (*closed)(void *arg, void *lane_tag);
    /* Records may be fetched or a lane may start: the mapping pumps. */
    void (*schedule_pump)(void *arg);
    /* Adds n to a counter. */
    void (*count)(void *arg, enum sl_carry_stat stat, uint64_t n);
};

struct sl_carry_conf {
    const char *inst; /* the mapping's name, for logs (borrowed; outlives the group) */
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const struct sl_source_ops *ops; /* the source, for encoding events (borrowed) */
    void *src_ctx;
    struct sl_function *fn;   /* borrowed */
    struct sl_onfail *onfail; /* the on-failure path (borrowed) */
    struct sl_batch_limits lim;
    struct sl_invoker_policy policy;
    int64_t max_concurrency;   /* invocations in flight at most; <= 0: no limit */
    int64_t max_record_age_s;  /* MaximumRecordAgeInSeconds; < 0: none */
    int64_t queue_hold_ms;     /* a queue: its leases are held this long past an invocation's
                                  start (the function's timeout + a margin) */
    int64_t queue_max_hold_ms; /* a queue: no hold reaches further past a batch's first
                                  invocation (SQS: 12 hours from the receive) */
    uint64_t seed;             /* for backoff jitter; not 0 */
};

/* Returns 0 and *ret_g reporting to host (copied), or SL_ENOMEM. */
SL_NODISCARD int sl_carry_group_new(const struct sl_carry_conf *conf,
                                    const struct sl_carry_host *host,
                                    struct sl_carry_group **ret_g);
/* Only once every carry of it is closed. NULL is a no-op. */
void sl_carry_group_free(struct sl_carry_group *g);
/* Starts no more attempts; failures are left for the next run. */
void sl_carry_group_drain(struct sl_carry_group *g);
bool sl_carry_group_is_draining(const struct sl_carry_group *g);
/* Invocations in flight. */
int sl_carry_group_in_flight(const struct sl_carry_group *g);

/* Returns an idle carry for the lane lane_tag of partition part (part_tag; prog its progress;
 * both borrowed until the carry is closed), with win its tumbling window (borrowed, or NULL),
 * or NULL on OOM. */
struct sl_carry *sl_carry_new(struct sl_carry_group *g,
                              void *lane_tag,
                              void *part_tag,
                              struct sl_part *part,
                              struct sl_progress_part *prog,
                              struct sl_window *win);
/* Stops the carry and closes its timer; host->closed follows, and the memory goes. Nothing may
 * be in flight. */
void sl_carry_close(struct sl_carry *c);

enum sl_carry_state sl_carry_state(const struct sl_carry *c);
/* Records in the batch (0: none). */
size_t sl_carry_count(const struct sl_carry *c);
/* When its last invocation ended (monotonic ms; 0 before the first). */
int64_t sl_carry_last_end_ms(const struct sl_carry *c);

/* Idle: host->due in delay_ms, replacing any wait armed before. */
void sl_carry_wait(struct sl_carry *c, int64_t delay_ms);
/* Cancels the wait (or a backoff). */
void sl_carry_wait_cancel(struct sl_carry *c);

/* Empties the batch, with room for n records. Returns false when out of memory. */
SL_NODISCARD bool sl_carry_reserve(struct sl_carry *c, size_t n);
/* Appends the record at absolute index abs of part's queue (marked SL_REC_TAKEN by the
 * caller) to the batch; within the room reserved, grouped by partition. */
void sl_carry_add(struct sl_carry *c,
                  void *part_tag,
                  struct sl_part *part,
                  struct sl_progress_part *prog,
                  uint64_t abs);
/* Starts the batch: retry state a revoked partition left behind is taken back, then the first
 * attempt. */
void sl_carry_start(struct sl_carry *c);
/* Sends the tumbling window's final invocation (no records). */
void sl_carry_final(struct sl_carry *c);
/* A batch that waited for a concurrency slot is sent if one is free. */
void sl_carry_send_ready(struct sl_carry *c);

/* Drops a batch that is not in flight because a partition it holds was revoked: a failing
 * batch leaves its retry state in a memo, the other partitions' records are offered again. */
void sl_carry_abandon(struct sl_carry *c);
/* Stops the timer and goes idle (not in flight). */
void sl_carry_stop(struct sl_carry *c);
/* The mapping drains: the timer stops; backing off or waiting for a slot ends. */
void sl_carry_drain(struct sl_carry *c);

#endif

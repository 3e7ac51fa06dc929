/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_MAPPING_H
#define SL_MAPPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "clock.h"
#include "err.h"

struct sl_mapping_conf;
struct sl_function;

/* One event source mapping: a source, a function and the state machine between them (fetch,
 * batch, invoke, back off, checkpoint), one of each per partition. Loop thread. */
struct sl_mapping;

struct sl_mapping_env {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const char *state_dir;
    const char *checkpoint_store; /* redis://...: the Redis checkpoint store; NULL: files */
    int64_t lease_ttl_ms;         /* partition leases' TTL (with the Redis store) */
    const char *region;
    struct sl_function *fn; /* borrowed; outlives the mapping */
    struct sl_httpc *httpc; /* shared HTTP client, for destinations */
};

/* Per-mapping counters, as the progress line shows them (AWS's ESM metric names where they
 * exist). */
struct sl_mapping_stats {
    uint64_t fetched;  /* PolledEventCount: records read from the source */
    uint64_t filtered; /* FilteredOutEventCount: records no filter matched */
    uint64_t invoked;  /* InvokedEventCount: records sent to the function, each attempt */
    uint64_t failed;   /* FailedInvokeEventCount: records of failed invocations, or listed
                          in batchItemFailures */
    uint64_t dropped;  /* DroppedEventCount: given up without an on-failure destination */
    uint64_t destination_delivered; /* OnFailureDestinationDeliveredEventCount */
    uint64_t delivered;             /* records the function accepted */
    uint64_t retried;               /* records sent again after a failure */
    uint64_t batches;               /* invocations started */
    uint64_t bytes;                 /* payload bytes of accepted invocations */
    /* queue sources only (their leases, as the source reports them) */
    uint64_t queue_acked;               /* given to the source to delete (queue_ack) */
    uint64_t queue_deleted;             /* acked and deleted */
    uint64_t queue_delete_failed;       /* acked, but the source could not delete them */
    uint64_t queue_lease_lost;          /* leases that ran out while the mapping held the record */
    uint64_t queue_lost_in_flight;      /* ... of records whose invocation was in flight */
    uint64_t queue_visibility_warnings; /* warnings that the visibility timeout is shorter than
                                           the function's timeout + the window: once at start
                                           when the queue tells it, once at a loss in flight */
};

/* Creates the mapping (opens its checkpoint store). Returns 0 and *ret_m, SL_ECONFIG or
 * SL_EIO with errbuf filled, or SL_ENOMEM. conf is borrowed and must outlive the mapping. */
SL_NODISCARD int sl_mapping_new(const struct sl_mapping_conf *conf,
                                const struct sl_mapping_env *env,
                                struct sl_mapping **ret_m,
                                char *errbuf,
                                size_t errlen);

/* Starts discovery and fetching. */
SL_NODISCARD int sl_mapping_start(struct sl_mapping *m);

/* Stops fetching and starting batches; invocations in flight finish (their success still
 * moves the checkpoint), failures are left for the next run. */
void sl_mapping_drain(struct sl_mapping *m);

/* Cancels on-failure destination writes in flight (their records are written again on the
 * next run), and stops counting a queue source's deletes and visibility changes as in flight
 * (what they did not finish comes back from the queue). For the end of a drain that ran out of
 * time. */
void sl_mapping_cancel(struct sl_mapping *m);

/* Invocations and destination writes in flight. */
int sl_mapping_in_flight(const struct sl_mapping *m);

/* True when the source is ready (not settling), every partition was fetched at least once
 * since it appeared, and nothing is fetching, in flight, backing off or waiting to be sent,
 * and the checkpoint store is clean. How long it has been so is the daemon's business
 * (--until-idle); records fetched show in sl_mapping_stats()->fetched. */
bool sl_mapping_is_quiet(const struct sl_mapping *m);

/* Writes the checkpoint store now (a queue has none: 0). Returns 0 or SL_EIO. */
SL_NODISCARD int sl_mapping_flush(struct sl_mapping *m);

const struct sl_mapping_stats *sl_mapping_stats(const struct sl_mapping *m);
const char *sl_mapping_name(const struct sl_mapping *m);

/* What the progress line reads (mapping_stats.h logs it). Read only. */
/* True while the source is settling (joining its group). */
bool sl_mapping_is_settling(const struct sl_mapping *m);
/* The partitions, indexed 0 .. count-1 (an index is valid until the loop runs again). */
size_t sl_mapping_part_count(const struct sl_mapping *m);
const char *sl_mapping_part_name(const struct sl_mapping *m, size_t i);
/* Partition i's lag in the source's unit; SL_LOG_UNKNOWN until a fetch of it completed, and
 * whenever its source cannot tell. */
int64_t sl_mapping_part_lag(const struct sl_mapping *m, size_t i);
/* True for a queue source (caps->model SL_DELIVERY_QUEUE): the queue counters apply. */
bool sl_mapping_is_queue(const struct sl_mapping *m);
/* The name of the unit lag is in (records, bytes, ms behind). */
const char *sl_mapping_lag_unit(const struct sl_mapping *m);

/* Frees the mapping: stops the source, releases partitions, closes handles (the memory goes
 * once libuv has closed them: run the loop afterwards). Nothing may be in flight. */
void sl_mapping_free(struct sl_mapping *m);

#endif

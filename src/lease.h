/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_LEASE_H
#define SL_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "checkpoint.h"
#include "clock.h"
#include "err.h"

/* Leases on a mapping's partitions, kept in Redis beside its checkpoints, so that every process
 * running the mapping reads a share of its partitions and no two read one at once (for sources
 * without a group protocol of their own: Kinesis shards). The mapping says which partitions
 * exist (sl_lease_want) and asks whether it may work on one (sl_lease_holds); the lease layer
 * tells it when it may start one (granted, with the partition's checkpoint as Redis has it now)
 * and when it must stop one (lost). Loop thread. */
struct sl_lease;

struct sl_lease_host {
    void *arg;
    /* part's lease is ours now: the mapping may work on it, from row, the checkpoint store's
     * row of part in Redis when the lease was taken (NULL: none; sl_ckpt_refresh reads it).
     * Strings borrowed for the call. */
    void (*granted)(void *arg, const char *part, const char *row);
    /* part's lease is not ours any more (taken by another worker, or not renewed in time):
     * the mapping must stop all work on it now; its checkpoint writes are fenced anyway. */
    void (*lost)(void *arg, const char *part);
};

struct sl_lease_conf {
    const char *url;        /* the checkpoint store's redis:// URL (its ?prefix= too); copied */
    struct sl_ckpt *ck;     /* the Redis checkpoint store: its connection is shared; borrowed,
                               it must outlive the lease layer's sl_lease_free */
    const char *mapping_id; /* copied */
    const char *owner;      /* this worker's id, unique among the processes; NULL: host:pid:rand */
    int64_t ttl_ms;         /* a lease's time to live; renewed every ttl_ms / 3 */
    const struct sl_clock *clock;
};

/* Starts the lease layer (its first round runs on the next loop turn). Returns 0 and *ret_ls
 * (owned: sl_lease_free), SL_ECONFIG (errbuf filled) or SL_ENOMEM. */
SL_NODISCARD int sl_lease_new(uv_loop_t *loop,
                              const struct sl_lease_conf *conf,
                              const struct sl_lease_host *host,
                              struct sl_lease **ret_ls,
                              char *errbuf,
                              size_t errlen);

/* The source offered part: it is contended for from the next round on. Returns 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_lease_want(struct sl_lease *ls, const char *part);

/* The mapping is done with part for good (read to its end, every record done and
 * checkpointed): its lease is released once the store has written its last checkpoint (at
 * the next round that finds the store clean; so a worker that has not seen it done yet may
 * take it, find its end in the checkpoint and go on to its children) and part is no longer
 * contended for, until the source offers it again. */
void sl_lease_done(struct sl_lease *ls, const char *part);

/* True when this worker holds part's lease; *ret_counter (may be NULL) is its counter, the
 * fencing token its checkpoint writes carry. */
bool sl_lease_holds(const struct sl_lease *ls, const char *part, uint64_t *ret_counter);

/* The lease hash ("<prefix>lease:<mapping>") and this worker's id: what a fenced checkpoint
 * write names. Borrowed while ls lives. */
const char *sl_lease_key(const struct sl_lease *ls);
const char *sl_lease_owner(const struct sl_lease *ls);

/* How many leases this worker holds. */
size_t sl_lease_count(const struct sl_lease *ls);

/* Stops renewing, releases every lease held (synchronously, a few seconds at most: for exit,
 * after the last checkpoints were written), so that other workers take them at once, and
 * frees (once the commands in flight on the shared connection are answered). NULL is a
 * no-op. */
void sl_lease_free(struct sl_lease *ls);

#endif

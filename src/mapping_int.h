/* SPDX-License-Identifier: Apache-2.0 */
/* mapping_int.h: what the files of the mapping share and nothing else includes: the mapping's
 * and its partitions' state, and the steps mapping_life.c (building, starting, draining and
 * freeing a mapping) wires into the source, progress.c and the lanes, which mapping.c defines.
 * Everything outside the mapping goes through mapping.h. */
#ifndef SL_MAPPING_INT_H
#define SL_MAPPING_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "mapping.h"
#include "source.h"

#define MAPPING_COMP "mapping"

/* Where a partition stands in its life. */
enum sl_mpart_life {
    SL_MPART_LIVE,     /* its source produces records */
    SL_MPART_GONE,     /* its source will produce no more: what it holds drains, then it goes */
    SL_MPART_REVOKED,  /* taken away (rebalance): nothing more of it is acknowledged; it goes
                          once nothing of it is in flight */
    SL_MPART_RELEASED, /* forgotten: its memory goes once its lanes are closed */
    SL_MPART_LIFE_COUNT,
};

/* Its fetching. Apart from its life: an asynchronous fetch started while it was live may
 * answer after it is gone or revoked (its records are kept; no fetch starts then). */
enum sl_mpart_fetch {
    SL_MPART_WANTS,     /* the source may have more: fetched when the memory bound allows */
    SL_MPART_CAUGHT_UP, /* the last fetch found nothing: the source wakes it (part_wake) */
    SL_MPART_FETCHING,  /* an asynchronous fetch is running */
    SL_MPART_FAILED,    /* the last fetch failed: the mapping's timer wants it again */
    SL_MPART_FETCH_COUNT,
};

/* The mapping's state for one partition (part->owner). */
struct sl_mpart {
    struct sl_mapping *m;
    struct sl_part *part;
    enum sl_mpart_life life;
    enum sl_mpart_fetch fetch;
    bool fetched;          /* a fetch of it completed (records, none, or an error): before
                              that its lag is unknown and the mapping is not quiet */
    int64_t first_wait_ms; /* when the queue last became non-empty */
    size_t held_records;   /* what this partition counts against the mapping's bound */
    size_t held_bytes;
    size_t inflight_records; /* the max_records of its asynchronous fetch in flight */
    bool active;    /* holds or claims records, or wants to fetch (counted in m->n_active) */
    size_t waiting; /* a queue: records fetched and not filtered out, not yet in a batch */
    struct sl_progress_part *prog; /* its low-watermark and checkpoint (progress.c) */
    struct sl_lane_part *lp;       /* its lanes (lane.c) */
};

struct sl_mapping {
    const struct sl_mapping_conf *conf;
    struct sl_mapping_env env;
    char *name;
    const struct sl_source_ops *ops;
    void *src_ctx;
    bool src_inited;
    struct sl_source_env senv;
    struct sl_ckpt *ck;
    struct sl_lease *lease; /* partition leases (mapping_lease.c), or NULL */
    struct sl_progress *progress;
    struct sl_intake *intake; /* what becomes of fetched records (filter, lanes) */
    struct sl_onfail *onfail;
    struct sl_lanes *lanes;
    struct sl_mpart **parts;
    size_t n_parts;
    size_t cap_parts;
    uv_idle_t pump;
    uv_timer_t fetch_retry;
    int open_handles; /* the mapping is freed when its handles are closed */
    bool freeing;
    bool draining;
    bool queue;                 /* the source is a queue (caps->model SL_DELIVERY_QUEUE) */
    bool ack_failing;           /* a delete failed and none succeeded since: logged once */
    bool lost_in_flight_warned; /* a lease was lost in flight: warned once */
    bool canceled; /* the drain timed out: the queue source's work is no longer waited for */
    struct sl_queue_limits qlim; /* a queue: what it said of itself at start */
    size_t held_records;
    size_t held_bytes;
    size_t inflight_records; /* the partitions' inflight_records together */
    size_t n_active;         /* partitions that are active (mapping_budget.c) */
    struct sl_mapping_stats stats;
};

/* mapping_budget.c */
size_t mapping_lanes_per_part(const struct sl_mapping *m);
/* How many records and bytes mp may fetch now; false when none. */
bool mapping_budget_part(const struct sl_mpart *mp, size_t *ret_records, size_t *ret_bytes);
/* Re-counts what mp holds (its queue; nothing once released) against the mapping's bound. */
void mapping_budget_account(struct sl_mpart *mp);
/* mp's fetch in flight may bring n records (0: none in flight). */
void mapping_budget_inflight(struct sl_mpart *mp, size_t n);
/* mp's life or fetch state changed: re-counts whether it is active. */
void mapping_budget_note(struct sl_mpart *mp);

/* mapping_lease.c: leases when the store is Redis and the source shares by leases; each is a
 * no-op (0) otherwise. may_add: 0, SL_EAGAIN (another process holds it) or SL_ENOMEM. */
int mapping_lease_new(struct sl_mapping *m, char *errbuf, size_t errlen);
int mapping_lease_may_add(struct sl_mapping *m, const char *id);
/* A partition read to its end and released: its lease goes back at once. */
void mapping_lease_done(struct sl_mapping *m, const char *id);
void mapping_lease_free(struct sl_mapping *m);

/* mapping.c */
int mapping_format_pos(
    void *arg, struct sl_part *part, const struct sl_record *last, char *buf, size_t len);
void mapping_ack(void *arg, struct sl_part *part, const struct sl_record *last);
void mapping_dropped(void *arg, struct sl_part *part, size_t n);
void mapping_may_proceed(void *arg);
int mapping_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part);
void mapping_part_wake(void *owner, struct sl_part *part);
void mapping_part_fetched(void *owner, struct sl_part *part, int n);
void mapping_part_gone(void *owner, struct sl_part *part);
void mapping_part_revoke(void *owner, struct sl_part *part);
int mapping_part_set_start(void *owner, struct sl_part *part, const char *pos);
void mapping_queue_limits_changed(void *owner);
void mapping_queue_report(
    void *owner, struct sl_part *part, uint64_t lease, enum sl_queue_report report, int err);
int mapping_lanes_new(struct sl_mapping *m);
void mapping_part_release(struct sl_mpart *mp);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* mapping.c: one event source mapping: its source, its partitions, and the ground the lanes
 * stand on. It owns the partitions its source reports (each an explicit state machine: its
 * life, and its fetching) and moves their records from fetch through filter (intake.c) to the
 * lanes (lane.h), which it drives through their narrow interface and which tell it what they
 * must through the host interface it gives them. The on-failure destination is onfailure.c's.
 * The rules of DESIGN.md it keeps:
 *   2. each partition has ParallelizationFactor lanes; records are spread over them by
 *      partition key, and each lane has one batch in flight;
 *   4. fetching pauses at the mapping's memory bound (records and bytes).
 * Rules 1 and 3 (the checkpoint is the contiguous low-watermark of done records; a crash
 * repeats at most what was in flight and max_unsaved_batches per partition) are progress.c's:
 * the mapping gives it the checkpoint store and a host interface (format a position,
 * acknowledge the source, re-count what a partition holds, pump again once the disk caught
 * up). Records stay in the partition's queue until the low-watermark passes them; batches
 * refer to them by absolute index (the queue's count of dropped records plus the index).
 * A queue source (caps->model SL_DELIVERY_QUEUE, sources/README.md "The queue model") has no
 * checkpoint: its records end one by one (acked or released by the carries, filtered ones acked
 * here), progress only drops them once done, MaximumConcurrency lanes carry them, and the
 * source's reports about leases are counted here.
 * Its progress and lag lines are mapping_stats.c's, which reads it through mapping.h.
 * Everything runs on the loop thread; time comes from the injected clock. */
#include "mapping.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "checkpoint.h"
#include "config.h"
#include "intake.h"
#include "lane.h"
#include "log.h"
#include "onfailure.h"
#include "partition.h"
#include "progress.h"
#include "queuebatch.h"
#include "source.h"
#include "url.h"

#define MAPPING_COMP           "mapping"
#define MAPPING_FETCH_RETRY_MS 1000
#define MAPPING_ID_MAX         128
/* a queue's lanes without MaximumConcurrency (AWS starts polling a queue with five) */
#define MAPPING_QUEUE_LANES 5

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
    bool queue;       /* the source is a queue (caps->model SL_DELIVERY_QUEUE) */
    bool ack_failing; /* a delete failed and none succeeded since: logged once */
    bool canceled;    /* the drain timed out: the queue source's work is no longer waited for */
    size_t held_records;
    size_t held_bytes;
    struct sl_mapping_stats stats;
};

static void mapping_fetch_retry_cb(uv_timer_t *t);
static void mapping_schedule_pump(struct sl_mapping *m);
static void part_release(struct sl_mpart *mp);
static void part_settle(struct sl_mpart *mp);

static int64_t mapping_now(const struct sl_mapping *m)
{
    return sl_clock_now_ms(m->env.clock);
}

/* --- accounting and checkpoints --- */

/* Re-counts what a partition holds against the mapping's memory bound. */
static void part_account(struct sl_mpart *mp)
{
    struct sl_mapping *m = mp->m;
    size_t recs = sl_recq_count(&mp->part->q);
    size_t bytes = sl_recq_bytes(&mp->part->q);
    if (mp->held_records == 0 && recs > 0) {
        mp->first_wait_ms = mapping_now(m);
    }
    m->held_records = m->held_records - mp->held_records + recs;
    m->held_bytes = m->held_bytes - mp->held_bytes + bytes;
    mp->held_records = recs;
    mp->held_bytes = bytes;
}

/* ParallelizationFactor for a stream; for a queue, whose records have no order but their
 * group's, MaximumConcurrency lanes (MAPPING_QUEUE_LANES without it), each with one batch in
 * flight. */
static size_t mapping_lanes_per_part(const struct sl_mapping *m)
{
    const struct sl_mapping_conf *conf = m->conf;
    if (!m->queue) {
        return (size_t)conf->core.parallelization_factor;
    }
    return conf->max_concurrency > 0 ? (size_t)conf->max_concurrency : MAPPING_QUEUE_LANES;
}

/* How many records and bytes part may still fetch: two batches' worth per lane, within the
 * mapping's total. */
static bool part_fetch_budget(const struct sl_mpart *mp, size_t *ret_records, size_t *ret_bytes)
{
    const struct sl_mapping *m = mp->m;
    const struct sl_mapping_core *core = &m->conf->core;
    size_t n_lanes = mapping_lanes_per_part(m);
    size_t part_max_records = 2 * (size_t)core->batch_size * n_lanes;
    size_t part_max_bytes = 2 * SL_BATCH_MAX_PAYLOAD_BYTES;
    size_t total_records = (size_t)core->max_records_buffered;
    size_t total_bytes = (size_t)core->max_bytes_buffered;
    if (core->tumbling_window_s > 0) {
        /* A window's records stay until it closes: only the mapping's bound applies. */
        part_max_records = total_records;
        part_max_bytes = total_bytes;
    }
    if (mp->held_records >= part_max_records || mp->held_bytes >= part_max_bytes ||
        m->held_records >= total_records || m->held_bytes >= total_bytes) {
        return false;
    }
    size_t recs = part_max_records - mp->held_records;
    size_t bytes = part_max_bytes - mp->held_bytes;
    if (total_records - m->held_records < recs) {
        recs = total_records - m->held_records;
    }
    if (total_bytes - m->held_bytes < bytes) {
        bytes = total_bytes - m->held_bytes;
    }
    *ret_records = recs;
    *ret_bytes = bytes;
    return true;
}

/* --- what progress.c tells the mapping --- */

static int mapping_format_pos(
    void *arg, struct sl_part *part, const struct sl_record *last, char *buf, size_t len)
{
    struct sl_mapping *m = arg;
    return m->ops->format_pos(m->src_ctx, part, last, buf, len);
}

static void mapping_ack(void *arg, struct sl_part *part, const struct sl_record *last)
{
    struct sl_mapping *m = arg;
    if (m->queue) {
        return; /* a queue's records were acknowledged one by one (queue_ack) */
    }
    m->ops->ack(m->src_ctx, part, last);
}

static void mapping_dropped(void *arg, struct sl_part *part, size_t n)
{
    (void)arg;
    (void)n;
    part_account(part->owner);
}

static void mapping_may_proceed(void *arg)
{
    mapping_schedule_pump(arg);
}

/* --- fetching --- */

/* Filters and spreads over lanes the n records the source just appended to part's queue. A
 * queue's filtered records are deleted at once, as AWS does. */
static void part_take_new(struct sl_mpart *mp, size_t n)
{
    struct sl_mapping *m = mp->m;
    m->stats.fetched += n;
    size_t from = sl_recq_count(&mp->part->q) - n;
    size_t filtered = sl_intake_sort(m->intake, mp->part, from);
    m->stats.filtered += filtered;
    if (m->queue && filtered > 0) {
        (void)sl_queue_part_end(m->ops, m->src_ctx, mp->part, from, SL_REC_FILTERED,
                                SL_REC_FILTERED, true, 0);
    }
    part_account(mp);
    if (filtered > 0) {
        (void)sl_progress_part_advance(mp->prog);
    }
}

/* Fetches once from a partition if it may. */
static void part_fetch(struct sl_mpart *mp)
{
    struct sl_mapping *m = mp->m;
    size_t max_records = 0;
    size_t max_bytes = 0;
    if (m->draining || mp->life != SL_MPART_LIVE || mp->fetch != SL_MPART_WANTS ||
        !part_fetch_budget(mp, &max_records, &max_bytes)) {
        return;
    }
    int r = m->ops->fetch(m->src_ctx, mp->part, max_records, max_bytes);
    mp->fetched = mp->fetched || r != SL_EINPROGRESS;
    if (r > 0) {
        part_take_new(mp, (size_t)r);
    } else if (r == 0) {
        mp->fetch = SL_MPART_CAUGHT_UP;
    } else if (r == SL_EINPROGRESS) {
        mp->fetch = SL_MPART_FETCHING;
    } else {
        mp->fetch = SL_MPART_FAILED;
        sl_log_warn(MAPPING_COMP, m->name, "fetch from %s failed: %s, retrying in %dms",
                    mp->part->name, sl_strerror(r), MAPPING_FETCH_RETRY_MS);
        if (!uv_is_active((uv_handle_t *)&m->fetch_retry)) {
            uv_timer_start(&m->fetch_retry, mapping_fetch_retry_cb, MAPPING_FETCH_RETRY_MS, 0);
        }
    }
}

static bool mapping_wants_fetch(const struct sl_mapping *m)
{
    for (size_t i = 0; i < m->n_parts; i++) {
        const struct sl_mpart *mp = m->parts[i];
        size_t r = 0;
        size_t b = 0;
        if (mp->life == SL_MPART_LIVE && mp->fetch == SL_MPART_WANTS &&
            part_fetch_budget(mp, &r, &b)) {
            return true;
        }
    }
    return false;
}

/* One turn of the mapping's work: each partition fetches once (round robin, so one busy file
 * does not starve the others) and each lane starts a batch if one is due. Runs from an idle
 * handle while there is more to fetch, so the loop keeps serving I/O between turns. */
static void mapping_pump_cb(uv_idle_t *h)
{
    struct sl_mapping *m = h->data;
    for (size_t i = 0; i < m->n_parts; i++) {
        struct sl_mpart *mp = m->parts[i];
        if (mp->life == SL_MPART_REVOKED) {
            part_settle(mp);
            if (i < m->n_parts && m->parts[i] != mp) {
                i--;
            }
            continue;
        }
        part_fetch(mp);
        sl_lane_part_dispatch(mp->lp);
        if (mp->life == SL_MPART_GONE && sl_recq_count(&mp->part->q) == 0 &&
            sl_lane_part_is_idle(mp->lp)) {
            part_release(mp);
        }
        if (i < m->n_parts && m->parts[i] != mp) {
            i--; /* mp was released and the array shifted */
        }
    }
    if (m->draining || !mapping_wants_fetch(m)) {
        uv_idle_stop(&m->pump);
    }
}

static void mapping_schedule_pump(struct sl_mapping *m)
{
    if (!m->freeing && !uv_is_active((uv_handle_t *)&m->pump)) {
        uv_idle_start(&m->pump, mapping_pump_cb);
    }
}

static void mapping_fetch_retry_cb(uv_timer_t *t)
{
    struct sl_mapping *m = t->data;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i]->fetch == SL_MPART_FAILED) {
            m->parts[i]->fetch = SL_MPART_WANTS;
        }
    }
    mapping_schedule_pump(m);
}

/* --- the source's callbacks --- */

static int
mapping_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct sl_mapping *m = owner;
    if (m->n_parts == m->cap_parts) {
        size_t cap = m->cap_parts ? m->cap_parts * 2 : 8;
        struct sl_mpart **parts = sl_realloc(m->parts, cap * sizeof(*parts));
        if (!parts) {
            return SL_ENOMEM;
        }
        m->parts = parts;
        m->cap_parts = cap;
    }
    struct sl_mpart *mp = sl_calloc(1, sizeof(*mp));
    struct sl_part *part = sl_part_new(id, name);
    struct sl_progress_part *prog = NULL;
    if (!mp || !part || sl_progress_part_new(m->progress, part, &prog) < 0 ||
        sl_lane_part_new(m->lanes, part, prog, mp, &mp->lp) < 0) {
        sl_progress_part_free(prog);
        sl_free(mp);
        sl_part_free(part);
        return SL_ENOMEM;
    }
    mp->m = m;
    mp->part = part;
    mp->prog = prog;
    mp->life = SL_MPART_LIVE;
    mp->fetch = SL_MPART_WANTS;
    m->open_handles++;
    part->owner = mp;
    m->parts[m->n_parts++] = mp;
    sl_log_info(MAPPING_COMP, m->name, "reading %s from %s", name,
                m->ops->caps->keeps_positions ? "the position its source keeps"
                : part->ckpt_pos              ? "its checkpoint"
                                              : "the starting position");
    mapping_schedule_pump(m);
    *ret_part = part;
    return 0;
}

static int mapping_part_set_start(void *owner, struct sl_part *part, const char *pos)
{
    struct sl_mpart *mp = part->owner;
    if (((struct sl_mapping *)owner)->queue) {
        return 0; /* a queue has no start to record */
    }
    return sl_progress_part_set_start(mp->prog, pos);
}

static void mapping_part_wake(void *owner, struct sl_part *part)
{
    struct sl_mpart *mp = part->owner;
    if (mp->fetch != SL_MPART_FETCHING) {
        mp->fetch = SL_MPART_WANTS; /* a fetch running wants more when it answers anyway */
    }
    mapping_schedule_pump(owner);
}

static void mapping_part_fetched(void *owner, struct sl_part *part, int n)
{
    struct sl_mapping *m = owner;
    struct sl_mpart *mp = part->owner;
    mp->fetch = n < 0 ? SL_MPART_FAILED : SL_MPART_WANTS;
    mp->fetched = true;
    if (n > 0) {
        part_take_new(mp, (size_t)n);
    } else if (n < 0) {
        if (!uv_is_active((uv_handle_t *)&m->fetch_retry)) {
            uv_timer_start(&m->fetch_retry, mapping_fetch_retry_cb, MAPPING_FETCH_RETRY_MS, 0);
        }
    }
    mapping_schedule_pump(m);
}

static void mapping_part_gone(void *owner, struct sl_part *part)
{
    struct sl_mpart *mp = part->owner;
    if (mp->life == SL_MPART_LIVE) {
        mp->life = SL_MPART_GONE;
    }
    mapping_schedule_pump(owner);
}

static void part_settle(struct sl_mpart *mp)
{
    if (mp->life == SL_MPART_REVOKED && !sl_lane_part_is_busy(mp->lp)) {
        part_release(mp);
    }
}

/* The source took the partition away: stop its lanes now; what is in flight is abandoned when
 * it answers (lane.c), and the partition goes once nothing is. A batch that had failed leaves
 * its retry state behind, for when the partition comes back. */
static void mapping_part_revoke(void *owner, struct sl_part *part)
{
    struct sl_mpart *mp = part->owner;
    struct sl_mapping *m = owner;
    mp->life = SL_MPART_REVOKED;
    sl_progress_part_revoke(mp->prog);
    sl_lane_part_revoke(mp->lp);
    sl_log_info(MAPPING_COMP, m->name, "%s was revoked; batches in flight are abandoned",
                part->name);
    part_settle(mp);
}

/* Forgets a partition: the source frees its state, the mapping its own. Only when nothing of
 * it is in flight. */
static void part_release(struct sl_mpart *mp)
{
    struct sl_mapping *m = mp->m;
    if (mp->life == SL_MPART_RELEASED) {
        return;
    }
    mp->life = SL_MPART_RELEASED;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i] == mp) {
            memmove(&m->parts[i], &m->parts[i + 1], (m->n_parts - i - 1) * sizeof(*m->parts));
            m->n_parts--;
            break;
        }
    }
    m->held_records -= mp->held_records;
    m->held_bytes -= mp->held_bytes;
    if (m->src_inited) {
        m->ops->part_release(m->src_ctx, mp->part);
    }
    sl_part_free(mp->part);
    mp->part = NULL;
    sl_lane_part_free(mp->lp); /* lanes_part_closed follows */
}

/* What a queue source says of a lease (sources/README.md "The queue model"). The record was
 * done and dropped when it was acked or released; what is left is to count. A failed delete
 * means the message comes back: logged once per outage (until a delete succeeds again). */
static void mapping_queue_report(
    void *owner, struct sl_part *part, uint64_t lease, enum sl_queue_report report, int err)
{
    struct sl_mapping *m = owner;
    switch (report) {
    case SL_QUEUE_ACKED:
        m->stats.queue_deleted++;
        if (m->ack_failing) {
            m->ack_failing = false;
            sl_log_info(MAPPING_COMP, m->name, "deleting from %s works again", part->name);
        }
        break;
    case SL_QUEUE_ACK_FAILED:
        m->stats.queue_delete_failed++;
        if (!m->ack_failing) {
            m->ack_failing = true;
            sl_log_warn(MAPPING_COMP, m->name,
                        "cannot delete lease %" PRIu64 " of %s: %s; the message will be "
                        "delivered again (further failures are counted, not logged)",
                        lease, part->name, sl_strerror(err));
        }
        break;
    case SL_QUEUE_LEASE_LOST:
        m->stats.queue_lease_lost++;
        /* a record not yet in a batch is not invoked on a lease another consumer may hold */
        if (sl_queue_part_lost(m->ops, m->src_ctx, part, lease)) {
            struct sl_mpart *mp = part->owner;
            (void)sl_progress_part_advance(mp->prog);
            mapping_schedule_pump(m);
        }
        break;
    case SL_QUEUE_REPORT_COUNT:
        break;
    }
}

/* --- what the lanes tell the mapping (lane.h's host interface) --- */

static bool lanes_fetch_budget(void *arg, void *owner, size_t *ret_records, size_t *ret_bytes)
{
    (void)arg;
    return part_fetch_budget(owner, ret_records, ret_bytes);
}

static int64_t lanes_first_wait_ms(void *arg, void *owner)
{
    (void)arg;
    const struct sl_mpart *mp = owner;
    return mp->first_wait_ms;
}

/* A lane went idle: a partition the source is done with goes once nothing of it is left. */
static void lanes_lane_idle(void *arg, void *owner)
{
    struct sl_mpart *mp = owner;
    bool done_with = mp->life == SL_MPART_GONE || mp->life == SL_MPART_REVOKED;
    if (done_with && !sl_lane_part_is_carried(mp->lp) && sl_recq_count(&mp->part->q) == 0) {
        part_release(mp);
        return;
    }
    mapping_schedule_pump(arg);
}

static void lanes_settle(void *arg, void *owner)
{
    (void)arg;
    part_settle(owner);
}

static void lanes_schedule_pump(void *arg)
{
    mapping_schedule_pump(arg);
}

static void lanes_count(void *arg, enum sl_carry_stat stat, uint64_t n)
{
    struct sl_mapping *m = arg;
    struct sl_mapping_stats *s = &m->stats;
    uint64_t *counters[SL_CARRY_STAT_COUNT] = {
        [SL_CARRY_STAT_INVOKED] = &s->invoked,
        [SL_CARRY_STAT_FAILED] = &s->failed,
        [SL_CARRY_STAT_DROPPED] = &s->dropped,
        [SL_CARRY_STAT_DESTINATION_DELIVERED] = &s->destination_delivered,
        [SL_CARRY_STAT_DELIVERED] = &s->delivered,
        [SL_CARRY_STAT_RETRIED] = &s->retried,
        [SL_CARRY_STAT_BATCHES] = &s->batches,
        [SL_CARRY_STAT_BYTES] = &s->bytes,
    };
    assert(stat < SL_CARRY_STAT_COUNT);
    *counters[stat] += n;
}

/* The partition's lanes closed: the rest of it goes, and the mapping once nothing is open. */
static void lanes_part_closed(void *arg, void *owner)
{
    struct sl_mapping *m = arg;
    struct sl_mpart *mp = owner;
    sl_progress_part_free(mp->prog);
    sl_free(mp);
    if (--m->open_handles == 0 && m->freeing) {
        sl_free(m);
    }
}

static int mapping_lanes_new(struct sl_mapping *m)
{
    const struct sl_mapping_conf *conf = m->conf;
    uint64_t seed = (uint64_t)sl_clock_wall_ms(m->env.clock) ^ (uint64_t)(uintptr_t)m;
    struct sl_lanes_conf lconf = {
        .carry =
            {
                .inst = m->name,
                .loop = m->env.loop,
                .clock = m->env.clock,
                .ops = m->ops,
                .src_ctx = m->src_ctx,
                .fn = m->env.fn,
                .onfail = m->onfail,
                .lim = {(size_t)conf->core.batch_size, SL_BATCH_MAX_PAYLOAD_BYTES,
                        conf->core.window_ms},
                .policy =
                    {
                        .max_retry_attempts = conf->core.max_retry_attempts,
                        .bisect = conf->core.bisect,
                        .report_item_failures = conf->report_item_failures,
                    },
                .max_concurrency = conf->max_concurrency,
                .max_record_age_s = conf->core.max_record_age_s,
                .seed = seed ? seed : 0x9E3779B97F4A7C15ULL,
            },
        .window_ms = conf->core.tumbling_window_s * 1000,
        .lanes_per_part = mapping_lanes_per_part(m),
    };
    struct sl_lane_host host = {
        .arg = m,
        .fetch_budget = lanes_fetch_budget,
        .first_wait_ms = lanes_first_wait_ms,
        .lane_idle = lanes_lane_idle,
        .settle = lanes_settle,
        .schedule_pump = lanes_schedule_pump,
        .count = lanes_count,
        .part_closed = lanes_part_closed,
    };
    return sl_lanes_new(&lconf, &host, &m->lanes);
}

/* --- the public face --- */

int sl_mapping_new(const struct sl_mapping_conf *conf,
                   const struct sl_mapping_env *env,
                   struct sl_mapping **ret_m,
                   char *errbuf,
                   size_t errlen)
{
    struct sl_mapping *m = sl_calloc(1, sizeof(*m));
    if (!m) {
        return SL_ENOMEM;
    }
    m->conf = conf;
    m->env = *env;
    m->ops = conf->source;
    m->queue = m->ops->caps->model == SL_DELIVERY_QUEUE;
    m->name = sl_strdup(conf->core.uuid);
    m->src_ctx = sl_calloc(1, m->ops->ctx_size);
    int r = (m->name && m->src_ctx) ? 0 : SL_ENOMEM;
    if (r == 0) {
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        struct sl_mapping_core scratch = {0};
        struct sl_opt_target targets[2] = {
            {.table = sl_config_mapping_opts, .base = &scratch},
            {.table = m->ops->opts, .base = m->src_ctx},
        };
        r = sl_opt_apply(targets, 2, conf->json, "config", conf->path, &errs);
        sl_opt_free(sl_config_mapping_opts, &scratch);
        if (r < 0) {
            (void)snprintf(errbuf, errlen, "%s", errs.n ? errs.items[0] : sl_strerror(r));
        }
        sl_errlist_fini(&errs);
    }
    if (r == 0) {
        r = sl_intake_new(conf->core.filter_criteria, m->ops, m->src_ctx, mapping_lanes_per_part(m),
                          &m->intake, errbuf, errlen);
    }
    if (r == 0) {
        r = sl_ckpt_open(env->loop, env->state_dir, conf->core.uuid, &m->ck, errbuf, errlen);
    }
    if (r == 0) {
        struct sl_progress_conf pconf = {
            .inst = m->name,
            /* a queue keeps no positions at all: the store is neither read nor written */
            .keeps_positions = m->ops->caps->keeps_positions || m->queue,
            .max_unsaved_batches = (size_t)conf->core.max_unsaved_batches,
        };
        struct sl_progress_host host = {
            .arg = m,
            .format_pos = mapping_format_pos,
            .ack = mapping_ack,
            .dropped = mapping_dropped,
            .may_proceed = mapping_may_proceed,
        };
        r = sl_progress_new(m->ck, &pconf, &host, &m->progress);
    }
    if (r == 0) {
        m->senv = (struct sl_source_env){
            .loop = env->loop,
            .clock = env->clock,
            .inst = m->name,
            .region = env->region,
            .arn = conf->core.event_source_arn,
            .starting_position = conf->core.starting_position,
            .starting_position_ts_ms = conf->core.starting_position_ts_s * 1000,
            .max_records_buffered = conf->core.max_records_buffered,
            .max_bytes_buffered = conf->core.max_bytes_buffered,
            .owner = m,
            .part_add = mapping_part_add,
            .part_wake = mapping_part_wake,
            .part_fetched = mapping_part_fetched,
            .part_gone = mapping_part_gone,
            .part_revoke = mapping_part_revoke,
            .part_set_start = mapping_part_set_start,
            .queue_report = m->queue ? mapping_queue_report : NULL,
        };
        r = m->ops->init(m->src_ctx, &m->senv, errbuf, errlen);
        m->src_inited = r == 0;
    }
    if (r == 0) {
        /* after the source's init: a destination may connect as the source does */
        struct sl_onfail_conf oconf = {
            .url = conf->on_failure,
            .inst = m->name,
            .loop = env->loop,
            .httpc = env->httpc,
            .clock = env->clock,
            .region = env->region,
            .ops = m->ops,
            .src_ctx = m->src_ctx,
            .function_name = conf->core.function_name,
            .lim = {(size_t)conf->core.batch_size, SL_BATCH_MAX_PAYLOAD_BYTES,
                    conf->core.window_ms},
            .seed = ((uint64_t)sl_clock_wall_ms(env->clock) ^ (uint64_t)(uintptr_t)m) * 3 + 1,
        };
        r = sl_onfail_new(&oconf, &m->onfail, errbuf, errlen);
    }
    if (r == 0) {
        r = mapping_lanes_new(m);
    }
    if (r < 0) {
        if (m->src_ctx) {
            m->ops->fini(m->src_ctx);
            sl_opt_free(m->ops->opts, m->src_ctx);
        }
        sl_progress_free(m->progress);
        if (m->ck) {
            sl_ckpt_close(m->ck);
        }
        sl_lanes_free(m->lanes);
        sl_onfail_free(m->onfail);
        sl_intake_free(m->intake);
        sl_free(m->src_ctx);
        sl_free(m->name);
        sl_free(m);
        return r;
    }
    uv_idle_init(env->loop, &m->pump);
    m->pump.data = m;
    uv_timer_init(env->loop, &m->fetch_retry);
    m->fetch_retry.data = m;
    m->open_handles = 2;
    *ret_m = m;
    return 0;
}

int sl_mapping_start(struct sl_mapping *m)
{
    char arn[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(m->conf->core.event_source_arn, arn, sizeof(arn));
    int r = m->ops->start(m->src_ctx);
    if (r < 0) {
        sl_log_error(MAPPING_COMP, m->name, "cannot start source %s: %s", arn, sl_strerror(r));
        return r;
    }
    sl_log_info(MAPPING_COMP, m->name,
                "started: %s -> %s (BatchSize %" PRId64 ", window %" PRId64 "ms)", arn,
                m->conf->core.function_name, m->conf->core.batch_size, m->conf->core.window_ms);
    return 0;
}

void sl_mapping_drain(struct sl_mapping *m)
{
    if (m->draining) {
        return;
    }
    m->draining = true;
    uv_idle_stop(&m->pump);
    uv_timer_stop(&m->fetch_retry);
    if (m->queue) {
        /* Held records not in a batch go back at once; batches in flight end as usual, and
         * the source stops once they did and its deletes are done (sl_mapping_in_flight
         * counts them; sl_mapping_free stops it). */
        for (size_t i = 0; i < m->n_parts; i++) {
            struct sl_mpart *mp = m->parts[i];
            struct sl_recq *q = &mp->part->q;
            (void)sl_queue_part_end(m->ops, m->src_ctx, mp->part, 0, SL_REC_TAKEN | SL_REC_DONE, 0,
                                    false, 0);
            for (size_t k = 0; k < sl_recq_count(q); k++) {
                struct sl_record *rec = sl_recq_at_mut(q, k);
                rec->flags |= (rec->flags & SL_REC_TAKEN) ? 0 : SL_REC_DONE;
            }
            (void)sl_progress_part_advance(mp->prog);
        }
    } else {
        m->ops->stop(m->src_ctx);
    }
    sl_lanes_drain(m->lanes);
}

void sl_mapping_cancel(struct sl_mapping *m)
{
    m->canceled = true;
    if (m->onfail) { /* NULL once freed */
        sl_onfail_cancel(m->onfail);
    }
}

int sl_mapping_in_flight(const struct sl_mapping *m)
{
    if (m->freeing) {
        return 0; /* freed, its handles closing: nothing was in flight (sl_mapping_free) */
    }
    /* a queue's deletes and visibility changes count until the source is idle */
    int queue_busy = m->queue && !m->canceled && !m->ops->queue_idle(m->src_ctx) ? 1 : 0;
    return sl_lanes_in_flight(m->lanes) + sl_onfail_in_flight(m->onfail) + queue_busy;
}

bool sl_mapping_is_quiet(const struct sl_mapping *m)
{
    if (m->ops->settling(m->src_ctx)) {
        return false;
    }
    if (sl_mapping_in_flight(m) > 0 || m->held_records > 0 || !sl_ckpt_is_clean(m->ck)) {
        return false;
    }
    for (size_t i = 0; i < m->n_parts; i++) {
        const struct sl_mpart *mp = m->parts[i];
        if (mp->fetch == SL_MPART_FETCHING || (!mp->fetched && mp->life == SL_MPART_LIVE)) {
            return false;
        }
        if (!sl_lane_part_is_idle(mp->lp)) {
            return false;
        }
    }
    return true;
}

int sl_mapping_flush(struct sl_mapping *m)
{
    return sl_ckpt_flush_sync(m->ck);
}

const struct sl_mapping_stats *sl_mapping_stats(const struct sl_mapping *m)
{
    return &m->stats;
}

const char *sl_mapping_name(const struct sl_mapping *m)
{
    return m->name;
}

/* What the progress line reads (mapping_stats.c). A partition's lag is unknown
 * (SL_LOG_UNKNOWN) until a fetch of it completed, and whenever its source cannot tell. */
bool sl_mapping_is_settling(const struct sl_mapping *m)
{
    return m->ops->settling(m->src_ctx);
}

size_t sl_mapping_part_count(const struct sl_mapping *m)
{
    return m->n_parts;
}

const char *sl_mapping_part_name(const struct sl_mapping *m, size_t i)
{
    return m->parts[i]->part->name;
}

int64_t sl_mapping_part_lag(const struct sl_mapping *m, size_t i)
{
    const struct sl_mpart *mp = m->parts[i];
    int64_t l = mp->fetched ? m->ops->lag(m->src_ctx, mp->part) : -1;
    return l >= 0 ? l : SL_LOG_UNKNOWN;
}

bool sl_mapping_is_queue(const struct sl_mapping *m)
{
    return m->queue;
}

const char *sl_mapping_lag_unit(const struct sl_mapping *m)
{
    return sl_lag_unit_name(m->ops->caps->lag_unit);
}

static void mapping_close_cb(uv_handle_t *h)
{
    struct sl_mapping *m = h->data;
    if (--m->open_handles == 0) {
        sl_free(m);
    }
}

void sl_mapping_free(struct sl_mapping *m)
{
    if (!m) {
        return;
    }
    sl_mapping_drain(m);
    if (m->queue) {
        m->ops->stop(m->src_ctx); /* ends every lease still held: they come back */
    }
    m->freeing = true;
    while (m->n_parts > 0) {
        part_release(m->parts[m->n_parts - 1]);
    }
    sl_lanes_free(m->lanes); /* its memory goes with the last partition's lanes */
    m->lanes = NULL;
    m->ops->fini(m->src_ctx);
    sl_opt_free(m->ops->opts, m->src_ctx);
    sl_free(m->src_ctx);
    m->src_ctx = NULL;
    sl_onfail_free(m->onfail);
    m->onfail = NULL;
    sl_intake_free(m->intake);
    m->intake = NULL;
    sl_progress_free(m->progress);
    m->progress = NULL;
    sl_ckpt_close(m->ck);
    sl_free(m->parts);
    sl_free(m->name);
    m->parts = NULL;
    m->name = NULL;
    uv_close((uv_handle_t *)&m->pump, mapping_close_cb);
    uv_close((uv_handle_t *)&m->fetch_retry, mapping_close_cb);
}

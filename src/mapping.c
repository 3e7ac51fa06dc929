/* SPDX-License-Identifier: Apache-2.0 */
/* mapping.c: one event source mapping: its source, its partitions, and the ground the lanes
 * stand on. It owns the partitions its source reports (each an explicit state machine: its
 * life, and its fetching) and moves their records from fetch through filter (intake.c) to the
 * lanes (lane.h), which it drives through their narrow interface and which tell it what they
 * must through the host interface it gives them. The on-failure destination is onfailure.c's.
 * The rules of DESIGN.md it keeps:
 *   2. each partition has ParallelizationFactor lanes; records are spread over them by
 *      partition key, and each lane has one batch in flight;
 *   4. fetching pauses at the mapping's memory bound (records and bytes): how much each
 *      partition may fetch is mapping_budget.c's, which this file tells what changes.
 * Rules 1 and 3 (the checkpoint is the contiguous low-watermark of done records; a crash
 * repeats at most what was in flight and max_unsaved_batches per partition) are progress.c's:
 * the mapping gives it the checkpoint store and a host interface (format a position,
 * acknowledge the source, re-count what a partition holds, pump again once the disk caught
 * up). Records stay in the partition's queue until the low-watermark passes them; batches
 * refer to them by absolute index (the queue's count of dropped records plus the index).
 * A queue source (caps->model SL_DELIVERY_QUEUE, sources/README.md "The queue model") has no
 * checkpoint: its records end one by one (acked or released by the carries, filtered ones acked
 * here), progress only drops them once done, MaximumConcurrency lanes carry them, its fetch
 * budget counts the acks awaiting their report and keeps no more records waiting for a lane
 * than the lanes take at once, and the source's reports about leases are counted here.
 * Its life (building it, starting, draining and freeing it) is mapping_life.c's, which shares
 * its state and the host interfaces defined here through mapping_int.h.
 * Its progress and lag lines are mapping_stats.c's, which reads it through mapping.h.
 * Everything runs on the loop thread; time comes from the injected clock. */
#include "mapping.h"
#include "mapping_int.h"

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

#define MAPPING_FETCH_RETRY_MS 1000
#define MAPPING_ID_MAX         128

static void mapping_fetch_retry_cb(uv_timer_t *t);
static void mapping_schedule_pump(struct sl_mapping *m);
static void part_settle(struct sl_mpart *mp);

/* --- accounting (mapping_budget.c keeps the counts) --- */

static void part_account(struct sl_mpart *mp)
{
    mapping_budget_account(mp);
}

/* Its fetch state changes: whether it is active (mapping_budget.c) may change with it. */
static void part_set_fetch(struct sl_mpart *mp, enum sl_mpart_fetch fetch)
{
    mp->fetch = fetch;
    mapping_budget_note(mp);
}

/* --- what progress.c tells the mapping --- */

int mapping_format_pos(
    void *arg, struct sl_part *part, const struct sl_record *last, char *buf, size_t len)
{
    struct sl_mapping *m = arg;
    return m->ops->format_pos(m->src_ctx, part, last, buf, len);
}

void mapping_ack(void *arg, struct sl_part *part, const struct sl_record *last)
{
    struct sl_mapping *m = arg;
    if (m->queue) {
        return; /* a queue's records were acknowledged one by one (queue_ack) */
    }
    m->ops->ack(m->src_ctx, part, last);
}

void mapping_dropped(void *arg, struct sl_part *part, size_t n)
{
    (void)arg;
    (void)n;
    part_account(part->owner);
}

void mapping_may_proceed(void *arg)
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
    if (m->queue) {
        mp->waiting += n - filtered;
    }
    if (m->queue && filtered > 0) {
        m->stats.queue_acked += sl_queue_part_end(m->ops, m->src_ctx, mp->part, from,
                                                  SL_REC_FILTERED, SL_REC_FILTERED, true, 0);
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
        !mapping_budget_part(mp, &max_records, &max_bytes)) {
        return;
    }
    int r = m->ops->fetch(m->src_ctx, mp->part, max_records, max_bytes);
    mp->fetched = mp->fetched || r != SL_EINPROGRESS;
    if (r > 0) {
        part_take_new(mp, (size_t)r);
    } else if (r == 0) {
        part_set_fetch(mp, SL_MPART_CAUGHT_UP);
    } else if (r == SL_EINPROGRESS) {
        /* what the page may bring counts against the bound until it arrives */
        mp->fetch = SL_MPART_FETCHING;
        mapping_budget_inflight(mp, max_records);
    } else {
        part_set_fetch(mp, SL_MPART_FAILED);
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
            mapping_budget_part(mp, &r, &b)) {
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
            mapping_part_release(mp);
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
            part_set_fetch(m->parts[i], SL_MPART_WANTS);
        }
    }
    mapping_schedule_pump(m);
}

/* --- the source's callbacks --- */

int mapping_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct sl_mapping *m = owner;
    int r = mapping_lease_may_add(m, id);
    if (r < 0) {
        return r;
    }
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
    part_set_fetch(mp, SL_MPART_WANTS);
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

int mapping_part_set_start(void *owner, struct sl_part *part, const char *pos)
{
    struct sl_mpart *mp = part->owner;
    if (((struct sl_mapping *)owner)->queue) {
        return 0; /* a queue has no start to record */
    }
    return sl_progress_part_set_start(mp->prog, pos);
}

void mapping_part_wake(void *owner, struct sl_part *part)
{
    struct sl_mpart *mp = part->owner;
    if (mp->fetch != SL_MPART_FETCHING) {
        part_set_fetch(mp, SL_MPART_WANTS); /* a fetch running wants more when it answers */
    }
    mapping_schedule_pump(owner);
}

void mapping_part_fetched(void *owner, struct sl_part *part, int n)
{
    struct sl_mapping *m = owner;
    struct sl_mpart *mp = part->owner;
    mp->fetch = n < 0 ? SL_MPART_FAILED : SL_MPART_WANTS;
    mp->fetched = true;
    mapping_budget_inflight(mp, 0); /* notes the new fetch state too */
    if (n > 0) {
        part_take_new(mp, (size_t)n);
    } else if (n < 0) {
        if (!uv_is_active((uv_handle_t *)&m->fetch_retry)) {
            uv_timer_start(&m->fetch_retry, mapping_fetch_retry_cb, MAPPING_FETCH_RETRY_MS, 0);
        }
    }
    mapping_schedule_pump(m);
}

void mapping_part_gone(void *owner, struct sl_part *part)
{
    struct sl_mpart *mp = part->owner;
    if (mp->life == SL_MPART_LIVE) {
        mp->life = SL_MPART_GONE;
        mapping_budget_note(mp);
        sl_lane_part_end(mp->lp);
    }
    mapping_schedule_pump(owner);
}

static void part_settle(struct sl_mpart *mp)
{
    if (mp->life == SL_MPART_REVOKED && !sl_lane_part_is_busy(mp->lp)) {
        mapping_part_release(mp);
    }
}

/* The source took the partition away: stop its lanes now; what is in flight is abandoned when
 * it answers (lane.c), and the partition goes once nothing is. A batch that had failed leaves
 * its retry state behind, for when the partition comes back. */
void mapping_part_revoke(void *owner, struct sl_part *part)
{
    struct sl_mpart *mp = part->owner;
    struct sl_mapping *m = owner;
    mp->life = SL_MPART_REVOKED;
    mapping_budget_note(mp);
    sl_progress_part_revoke(mp->prog);
    sl_lane_part_revoke(mp->lp);
    sl_log_info(MAPPING_COMP, m->name, "%s was revoked; batches in flight are abandoned",
                part->name);
    part_settle(mp);
}

/* Forgets a partition: the source frees its state, the mapping its own. Only when nothing of
 * it is in flight. */
void mapping_part_release(struct sl_mpart *mp)
{
    struct sl_mapping *m = mp->m;
    if (mp->life == SL_MPART_RELEASED) {
        return;
    }
    if (mp->life == SL_MPART_GONE && !m->freeing) {
        mapping_lease_done(m, mp->part->id); /* read to its end: its lease goes back */
    }
    mp->life = SL_MPART_RELEASED;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i] == mp) {
            memmove(&m->parts[i], &m->parts[i + 1], (m->n_parts - i - 1) * sizeof(*m->parts));
            m->n_parts--;
            break;
        }
    }
    mapping_budget_account(mp); /* released: it holds nothing more */
    mapping_budget_inflight(mp, 0);
    if (m->src_inited) {
        m->ops->part_release(m->src_ctx, mp->part);
    }
    sl_part_free(mp->part);
    mp->part = NULL;
    sl_lane_part_free(mp->lp); /* lanes_part_closed follows */
}

/* A lease ran out while its record's invocation was in flight: the message may be delivered
 * again meanwhile. Counted, and warned once per mapping. */
static void mapping_lost_in_flight(struct sl_mapping *m, struct sl_part *part, uint64_t lease)
{
    m->stats.queue_lost_in_flight++;
    if (m->lost_in_flight_warned) {
        return;
    }
    m->lost_in_flight_warned = true;
    m->stats.queue_visibility_warnings++;
    sl_log_warn(MAPPING_COMP, m->name,
                "the lease %" PRIu64 " of %s ran out while its invocation was in flight: the "
                "visibility timeout is shorter than the function timeout + batching window, so "
                "the message may be delivered twice; allowed: a visibility timeout of at least "
                "the function timeout + window (AWS advises 6 times the function timeout). "
                "Further losses are counted (lost_in_flight), not logged",
                lease, part->name);
}

/* What a queue source says of a lease (sources/README.md "The queue model"). The record was
 * done and dropped when it was acked or released; what is left is to count. A failed delete
 * means the message comes back: logged once per outage (until a delete succeeds again). */
void mapping_queue_report(
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
        mapping_schedule_pump(m); /* its slot in the budget is free */
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
        mapping_schedule_pump(m);
        break;
    case SL_QUEUE_LEASE_LOST:
        m->stats.queue_lease_lost++;
        /* a record not yet in a batch is not invoked on a lease another consumer may hold */
        if (sl_queue_part_lost(m->ops, m->src_ctx, part, lease)) {
            struct sl_mpart *mp = part->owner;
            mp->waiting--;
            (void)sl_progress_part_advance(mp->prog);
            mapping_schedule_pump(m);
        } else {
            mapping_lost_in_flight(m, part, lease);
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
    return mapping_budget_part(owner, ret_records, ret_bytes);
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
        mapping_part_release(mp);
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

static void lanes_taken(void *arg, void *owner, size_t n)
{
    (void)arg;
    struct sl_mpart *mp = owner;
    mp->waiting = mp->waiting > n ? mp->waiting - n : 0; /* a stream does not count them */
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
        [SL_CARRY_STAT_QUEUE_ACKED] = &s->queue_acked,
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

/* How long a queue's leases are held past an invocation's start: the function's timeout (AWS
 * Lambda's longest when it cannot tell) and a margin. */
static int64_t mapping_queue_hold_ms(const struct sl_mapping *m)
{
    int64_t timeout = m->env.fn && m->env.fn->timeout_ms > 0 ? m->env.fn->timeout_ms
                                                             : SL_QUEUEBATCH_UNKNOWN_TIMEOUT_MS;
    return timeout + SL_QUEUEBATCH_HOLD_MARGIN_MS;
}

int mapping_lanes_new(struct sl_mapping *m)
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
                .queue_hold_ms = mapping_queue_hold_ms(m),
                .queue_max_hold_ms = m->ops->caps->max_hold_ms > 0 ? m->ops->caps->max_hold_ms
                                                                   : SL_QUEUE_MAX_HOLD_MS,
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
        .taken = lanes_taken,
        .part_closed = lanes_part_closed,
    };
    return sl_lanes_new(&lconf, &host, &m->lanes);
}

/* --- the public face --- */

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
    if (sl_mapping_in_flight(m) > 0 || m->held_records > 0 || (m->ck && !sl_ckpt_is_clean(m->ck))) {
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
    return m->ck ? sl_ckpt_flush_sync(m->ck) : 0; /* a queue has no store */
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

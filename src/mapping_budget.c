/* SPDX-License-Identifier: Apache-2.0 */
/* mapping_budget.c: how much each partition of a mapping may fetch (DESIGN.md rule 4: memory is
 * bounded, fetching pauses when the mapping holds its in-flight limit). It keeps the counts the
 * rule needs (what each partition holds, the Limit of its fetch in flight, whether it is active)
 * and answers "how many records and bytes may this partition fetch now"; mapping.c calls it, it
 * calls nothing of the mapping's files.
 *
 * Three rules, by the kind of source:
 *   - a queue (caps->model SL_DELIVERY_QUEUE): queue_fetch_budget;
 *   - a stream: two batches per lane per partition, within the mapping's totals;
 *   - a stream whose fetches are paced (caps->fetch_records_min: Kinesis, five GetRecords a
 *     second per shard, each up to 10,000 records) shares the mapping's max_records_buffered
 *     among its partitions (paced_fetch_records below), so that a busy shard may read large
 *     pages while the others are quiet, yet the bound holds and every shard gets its share.
 *
 * About the paced rule. T is max_records_buffered, N the partitions, S = T / N a partition's
 * share. A partition's claim is what it holds plus the Limit of its fetch in flight (a page may
 * bring that many: counted before it arrives, so the claims together never exceed T). A
 * partition is active while it claims anything or wants to fetch (k of them, the asker
 * included); the others are quiet (q = N - k). Room is kept free for the quiet ones: a reserve
 * of half their shares together, at least one whole share (at most all of them). The rest is
 * split evenly among the active ones: each may claim up to C = (T - reserve) / k, which is never
 * below S. A partition below its share may take it from anything free, the reserve included;
 * above its share it only borrows from what is free beyond the reserve. So:
 *   - a busy partition beside quiet ones claims up to C > S (one of four: 2.5 shares);
 *   - busy partitions split evenly: none may claim more than C, and one that finds no room
 *     stays active (it wants to fetch), which lowers the others' C at their next fetch;
 *   - the claims never exceed T;
 *   - a quiet partition that wakes gets its share at once while the reserve is there (a
 *     borrower never takes it); several waking together share what is free, and get the rest
 *     as the borrowers' records are delivered (their C already counts the wakers).
 * And a partition that still holds records fetches only once it may ask for at least half its
 * C: a paced fetch is one of few a second, better not spent on a small page (the end of each
 * batch pumps again, and one that holds nothing fetches whatever it may).
 * Loop thread only. */
#include <assert.h>

#include "batcher.h"
#include "clock.h"
#include "config.h"
#include "mapping_int.h"
#include "partition.h"

/* a queue's lanes without MaximumConcurrency (AWS starts polling a queue with five) */
#define MAPPING_QUEUE_LANES 5

/* ParallelizationFactor for a stream; for a queue, whose records have no order but their
 * group's, MaximumConcurrency lanes (MAPPING_QUEUE_LANES without it), each with one batch in
 * flight. */
size_t mapping_lanes_per_part(const struct sl_mapping *m)
{
    const struct sl_mapping_conf *conf = m->conf;
    if (!m->queue) {
        return (size_t)conf->core.parallelization_factor;
    }
    return conf->max_concurrency > 0 ? (size_t)conf->max_concurrency : MAPPING_QUEUE_LANES;
}

/* Whether mp counts among the partitions that share the room (see "About the paced rule"). */
static bool part_is_active(const struct sl_mpart *mp)
{
    if (mp->life == SL_MPART_RELEASED) {
        return false;
    }
    if (mp->held_records > 0 || mp->inflight_records > 0) {
        return true;
    }
    return mp->life == SL_MPART_LIVE &&
           (mp->fetch == SL_MPART_WANTS || mp->fetch == SL_MPART_FETCHING);
}

void mapping_budget_note(struct sl_mpart *mp)
{
    struct sl_mapping *m = mp->m;
    bool active = part_is_active(mp);
    if (active != mp->active) {
        mp->active = active;
        if (active) {
            m->n_active++;
        } else {
            assert(m->n_active > 0);
            m->n_active--;
        }
    }
}

void mapping_budget_account(struct sl_mpart *mp)
{
    struct sl_mapping *m = mp->m;
    size_t recs = mp->life == SL_MPART_RELEASED ? 0 : sl_recq_count(&mp->part->q);
    size_t bytes = mp->life == SL_MPART_RELEASED ? 0 : sl_recq_bytes(&mp->part->q);
    if (mp->held_records == 0 && recs > 0) {
        mp->first_wait_ms = sl_clock_now_ms(m->env.clock);
    }
    m->held_records = m->held_records - mp->held_records + recs;
    m->held_bytes = m->held_bytes - mp->held_bytes + bytes;
    mp->held_records = recs;
    mp->held_bytes = bytes;
    mapping_budget_note(mp);
}

void mapping_budget_inflight(struct sl_mpart *mp, size_t n)
{
    struct sl_mapping *m = mp->m;
    m->inflight_records = m->inflight_records - mp->inflight_records + n;
    mp->inflight_records = n;
    mapping_budget_note(mp);
}

/* Acks a queue source was given and has not reported on yet (deleted or not): their leases
 * are still the source's to hold, so they count against the mapping's records. */
static size_t mapping_acks_pending(const struct sl_mapping *m)
{
    const struct sl_mapping_stats *s = &m->stats;
    uint64_t reported = s->queue_deleted + s->queue_delete_failed;
    return s->queue_acked > reported ? (size_t)(s->queue_acked - reported) : 0;
}

/* A queue's budget: what it holds (fetched, not yet acked or released) and the acks awaiting
 * their report count against the mapping's records, its held bytes against its bytes; and no
 * more records wait for a batch than the lanes can take at once (MaximumConcurrency x
 * BatchSize), so none waits past its visibility timeout for want of a lane. */
static bool queue_fetch_budget(const struct sl_mpart *mp, size_t *ret_records, size_t *ret_bytes)
{
    const struct sl_mapping *m = mp->m;
    const struct sl_mapping_core *core = &m->conf->core;
    size_t waiting_max = (size_t)core->batch_size * mapping_lanes_per_part(m);
    size_t total_records = (size_t)core->max_records_buffered;
    size_t total_bytes = (size_t)core->max_bytes_buffered;
    size_t held = m->held_records + mapping_acks_pending(m);
    if (mp->waiting >= waiting_max || held >= total_records || m->held_bytes >= total_bytes) {
        return false;
    }
    size_t recs = waiting_max - mp->waiting;
    if (total_records - held < recs) {
        recs = total_records - held;
    }
    *ret_records = recs;
    *ret_bytes = total_bytes - m->held_bytes;
    return true;
}

static size_t size_min(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* The records a partition of a paced source may fetch now (see "About the paced rule"); no
 * partition claims more than ceiling (a page, or two batches per lane if that is more). */
static size_t paced_fetch_records(const struct sl_mpart *mp, size_t ceiling)
{
    const struct sl_mapping *m = mp->m;
    size_t total = (size_t)m->conf->core.max_records_buffered;
    size_t claimed = m->held_records + m->inflight_records;
    size_t n = m->n_parts > 0 ? m->n_parts : 1;
    size_t k = m->n_active > 0 ? m->n_active : 1; /* the asker is active */
    size_t q = n > k ? n - k : 0;
    size_t share = total / n;
    size_t reserve = 0;
    if (q > 0) {
        reserve = size_min(q * share, q * share / 2 > share ? q * share / 2 : share);
    }
    size_t cap = (total - reserve) / k;
    cap = size_min(cap > 0 ? cap : 1, ceiling);
    size_t mine = mp->held_records + mp->inflight_records;
    if (mine >= cap || claimed >= total) {
        return 0;
    }
    size_t free_room = total - claimed;
    size_t own = share > mine ? share - mine : 0;
    size_t borrow = free_room > reserve ? free_room - reserve : 0;
    size_t recs = size_min(size_min(cap - mine, own > borrow ? own : borrow), free_room);
    if (mine > 0 && recs < cap / 2) {
        /* a fetch is one of few a second: not spent on a small page while what it holds is
         * being delivered (each batch that ends pumps again) */
        return 0;
    }
    return recs;
}

bool mapping_budget_part(const struct sl_mpart *mp, size_t *ret_records, size_t *ret_bytes)
{
    const struct sl_mapping *m = mp->m;
    const struct sl_mapping_core *core = &m->conf->core;
    if (m->queue) {
        return queue_fetch_budget(mp, ret_records, ret_bytes);
    }
    size_t part_max_records = 2 * (size_t)core->batch_size * mapping_lanes_per_part(m);
    size_t part_max_bytes = 2 * SL_BATCH_MAX_PAYLOAD_BYTES;
    size_t total_records = (size_t)core->max_records_buffered;
    size_t total_bytes = (size_t)core->max_bytes_buffered;
    if (core->tumbling_window_s > 0) {
        /* A window's records stay until it closes: only the mapping's bound applies. */
        part_max_records = total_records;
        part_max_bytes = total_bytes;
    }
    if (mp->held_bytes >= part_max_bytes || m->held_bytes >= total_bytes) {
        return false;
    }
    size_t bytes = size_min(part_max_bytes - mp->held_bytes, total_bytes - m->held_bytes);
    size_t recs = 0;
    if (m->ops->caps->fetch_records_min > 0 && core->tumbling_window_s == 0) {
        size_t paced = m->ops->caps->fetch_records_min;
        recs = paced_fetch_records(mp, paced > part_max_records ? paced : part_max_records);
    } else if (mp->held_records < part_max_records && m->held_records < total_records) {
        recs = size_min(part_max_records - mp->held_records, total_records - m->held_records);
    }
    if (recs == 0) {
        return false;
    }
    *ret_records = recs;
    *ret_bytes = bytes;
    return true;
}

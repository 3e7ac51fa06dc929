/* SPDX-License-Identifier: Apache-2.0 */
/* lane.c: the lanes of a mapping and the batches they form. Each partition has
 * ParallelizationFactor lanes (a queue: MaximumConcurrency, and its records without a group
 * go to whichever lane takes them first); a lane takes the records of its partition key hash in
 * order (DESIGN.md rule 2: one batch in flight per lane) and forms a batch once one is due
 * (BatchSize, the batching window, the 6 MB payload; with tumbling windows, inside the window,
 * whose final invocation it also starts), then hands it to its carry (carry.c), which invokes
 * and carries out the verdicts. Where the source's batches span partitions (Kafka, esm.md §3),
 * a lane's batch also takes the waiting records of partitions that have no batch in flight,
 * and each partition rides in one batch at most. A partition that waits for the disk
 * (progress.c) starts no batch. The mapping gives each partition its lanes and learns what it
 * must through the host interface it gave; the carries tell the lanes through the host
 * interface the lanes give them. Loop thread. */
#include "lane.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "source.h"
#include "window.h"

#define LANE_COMP     "lane"
#define LANE_RETRY_MS 1000

/* One of a partition's lanes: the records whose partition key hashes to it. */
struct sl_lane {
    struct sl_lane_part *lp;
    uint64_t scan; /* absolute index after the lane's last taken record: every record of
                      this lane before it is taken already */
    struct sl_carry *carry;
    struct sl_window *win; /* TumblingWindowInSeconds > 0 (one lane per partition then) */
};

/* One partition's lanes. */
struct sl_lane_part {
    struct sl_lanes *ls;
    struct sl_part *part;
    struct sl_progress_part *prog; /* its low-watermark and checkpoint (progress.c) */
    void *owner;                   /* the mapping's handle, for host callbacks */
    struct sl_lane *lanes;
    size_t n_lanes;
    size_t open_carries; /* not closed yet */
    bool revoked;        /* taken away: nothing more of it counts */
    bool ended;          /* its source will produce nothing more of it: windows close */
    bool released;       /* freed by the mapping: its carries are closing */
    /* Where batches span partitions: the lane whose batch holds this partition's records, or
     * NULL. The partition joins no other batch meanwhile. */
    struct sl_lane *carrier;
};

struct sl_lanes {
    const struct sl_source_ops *ops;
    const struct sl_clock *clock;
    const char *inst;
    struct sl_batch_limits lim;
    int64_t window_ms;
    size_t lanes_per_part;
    bool spans; /* batches span partitions (Kafka, esm.md §3) */
    struct sl_lane_host host;
    struct sl_carry_group *group;
    bool freeing;
    /* The partitions, in the order they came (a batch that spans partitions takes them in
     * this order from its own). */
    struct sl_lane_part **parts;
    size_t n_parts;
    size_t cap_parts;
    size_t open_parts; /* given lanes and not closed yet */
};

static int64_t lane_first_wait_ms(struct sl_lane_part *lp)
{
    return lp->ls->host.first_wait_ms(lp->ls->host.arg, lp->owner);
}

/* The record is the lane's: its key hashes to it, or it has no group (a queue's record
 * without one goes to any lane). */
static bool lane_owns(const struct sl_record *rec, size_t lane_no)
{
    return rec->lane == lane_no || rec->lane == SL_REC_LANE_ANY;
}

static bool lane_is_idle(const struct sl_lane *ln)
{
    return sl_carry_state(ln->carry) == SL_CARRY_IDLE;
}

/* The tumbling window's part of dispatching (window.c decides): the window's final invocation,
 * a wait for its end, or a batch inside it (*waiting cut to the window's records). Returns
 * true when it took over. */
static bool lane_window_dispatch(struct sl_lane *ln, size_t start, size_t *waiting)
{
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    size_t r = 0;
    size_t b = 0;
    bool full = !ls->host.fetch_budget(ls->host.arg, lp->owner, &r, &b);
    int64_t wait_ms = 0;
    switch (sl_window_dispatch(ln->win, &lp->part->q, start, waiting, full, lp->ended,
                               sl_clock_wall_ms(ls->clock), &wait_ms)) {
    case SL_WINDOW_FINAL:
        sl_carry_final(ln->carry);
        return true;
    case SL_WINDOW_WAIT:
        sl_carry_wait(ln->carry, wait_ms);
        return true;
    case SL_WINDOW_BATCH:
    case SL_WINDOW_STEP_COUNT:
        break;
    }
    return false;
}

/* What waits in src's partition for src (not taken, not done, its lane's), from src->scan:
 * up to max records. *ret_oversize is set when counting stopped at a record too large to
 * send (counted alone when it comes first). */
static size_t
lane_count_waiting(const struct sl_lane *src, size_t max, size_t *ret_bytes, bool *ret_oversize)
{
    struct sl_lane_part *lp = src->lp;
    struct sl_recq *q = &lp->part->q;
    size_t count = sl_recq_count(q);
    size_t lane_no = (size_t)(src - lp->lanes);
    size_t waiting = 0;
    size_t bytes = 0;
    *ret_oversize = false;
    size_t start = src->scan > q->dropped ? (size_t)(src->scan - q->dropped) : 0;
    for (size_t i = start; i < count && waiting < max; i++) {
        const struct sl_record *rec = sl_recq_at(q, i);
        if ((rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) || !lane_owns(rec, lane_no)) {
            continue;
        }
        if (rec->flags & SL_REC_OVERSIZE) {
            if (waiting == 0) {
                waiting = 1; /* alone: it goes straight to the on-failure path */
            }
            *ret_oversize = true;
            break;
        }
        waiting++;
        bytes += sl_recq_payload_len(q, rec); /* the payload, whatever form it is kept in */
    }
    *ret_bytes = bytes;
    return waiting;
}

/* Appends the next n waiting records of src's partition to ln's batch and marks them taken. */
static void lane_take(struct sl_lane *ln, struct sl_lane *src, size_t n)
{
    struct sl_lane_part *lp = src->lp;
    struct sl_recq *q = &lp->part->q;
    size_t count = sl_recq_count(q);
    size_t lane_no = (size_t)(src - lp->lanes);
    size_t start = src->scan > q->dropped ? (size_t)(src->scan - q->dropped) : 0;
    size_t taken = 0;
    for (size_t i = start; i < count && taken < n; i++) {
        struct sl_record *rec = sl_recq_at_mut(q, i);
        if ((rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) || !lane_owns(rec, lane_no)) {
            continue;
        }
        rec->flags |= SL_REC_TAKEN;
        sl_carry_add(ln->carry, lp, lp->part, lp->prog, q->dropped + i);
        src->scan = q->dropped + i + 1;
        taken++;
    }
    if (taken > 0) {
        lp->ls->host.taken(lp->ls->host.arg, lp->owner, taken);
    }
}

/* A batch of up to n records is due at due: true when it is to be formed now (the lane has
 * room for it, its batch is empty); otherwise the lane waits until it is due, or to try again
 * after running out of memory. */
static bool lane_may_form(struct sl_lane *ln, int64_t due, size_t n)
{
    struct sl_lanes *ls = ln->lp->ls;
    int64_t now = sl_clock_now_ms(ls->clock);
    if (due > now) {
        sl_carry_wait(ln->carry, due - now);
        return false;
    }
    if (!sl_carry_reserve(ln->carry, n)) {
        sl_log_error(LANE_COMP, ls->inst, "out of memory forming a batch of %s, retrying",
                     ln->lp->part->name);
        sl_carry_wait(ln->carry, LANE_RETRY_MS);
        return false;
    }
    sl_carry_wait_cancel(ln->carry);
    return true;
}

/* A partition whose records may join a batch led by another: no batch of its own, nothing
 * waiting for the disk, not revoked. */
static bool part_may_join(struct sl_lane_part *lp)
{
    return !lp->revoked && !lp->released && !lp->carrier && lp->n_lanes == 1 &&
           lane_is_idle(&lp->lanes[0]) && !sl_progress_part_waits_for_disk(lp->prog);
}

/* Dispatch where batches span partitions: ln's partition leads; once the records waiting in
 * every partition that may join are due as one batch (BatchSize, the payload, or the window
 * opened by the earliest of them), ln takes its own and then theirs, in partition order from
 * its own, up to BatchSize. */
static void lane_dispatch_spanning(struct sl_lane *ln)
{
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    if (lp->carrier) {
        return; /* its records ride in another lane's batch */
    }
    size_t max = ls->lim.max_records;
    size_t bytes = 0;
    bool oversize = false;
    size_t own = lane_count_waiting(ln, max, &bytes, &oversize);
    if (own == 0) {
        return;
    }
    size_t total = own;
    int64_t window_start = lane_first_wait_ms(lp);
    size_t at = 0;
    while (at < ls->n_parts && ls->parts[at] != lp) {
        at++;
    }
    for (size_t k = 1; !oversize && k < ls->n_parts && total < max; k++) {
        struct sl_lane_part *other = ls->parts[(at + k) % ls->n_parts];
        size_t b = 0;
        bool big = false;
        size_t w =
            part_may_join(other) ? lane_count_waiting(&other->lanes[0], max - total, &b, &big) : 0;
        if (w == 0 || (big && w == 1)) {
            continue; /* a record too large to send leads its own batch */
        }
        total += w;
        bytes += b;
        int64_t other_start = lane_first_wait_ms(other);
        window_start = other_start < window_start ? other_start : window_start;
    }
    int64_t due = oversize ? INT64_MIN : sl_batcher_due_ms(&ls->lim, total, bytes, window_start);
    if (!lane_may_form(ln, due, total)) {
        return;
    }
    lane_take(ln, ln, own);
    lp->carrier = ln;
    for (size_t k = 1; !oversize && k < ls->n_parts && sl_carry_count(ln->carry) < total; k++) {
        struct sl_lane_part *other = ls->parts[(at + k) % ls->n_parts];
        size_t b = 0;
        bool big = false;
        size_t w =
            part_may_join(other)
                ? lane_count_waiting(&other->lanes[0], total - sl_carry_count(ln->carry), &b, &big)
                : 0;
        if (w == 0 || (big && w == 1)) {
            continue;
        }
        lane_take(ln, &other->lanes[0], w);
        other->carrier = ln;
        sl_carry_wait_cancel(other->lanes[0].carry);
    }
    sl_carry_start(ln->carry);
}

/* Starts the lane's next batch if one is due, sends one that waited for a concurrency slot,
 * or waits for the batch's or the tumbling window's time. */
static void lane_dispatch(struct sl_lane *ln)
{
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    enum sl_carry_state state = sl_carry_state(ln->carry);
    if (state == SL_CARRY_READY) {
        sl_carry_send_ready(ln->carry);
        return;
    }
    if (sl_carry_group_is_draining(ls->group) || state != SL_CARRY_IDLE ||
        sl_progress_part_waits_for_disk(lp->prog)) {
        return;
    }
    if (ls->spans) {
        lane_dispatch_spanning(ln);
        return;
    }
    struct sl_recq *q = &lp->part->q;
    size_t start = ln->scan > q->dropped ? (size_t)(ln->scan - q->dropped) : 0;
    size_t bytes = 0;
    bool stop_at_oversize = false;
    size_t waiting = lane_count_waiting(ln, ls->lim.max_records, &bytes, &stop_at_oversize);
    if (ln->win && lane_window_dispatch(ln, start, &waiting)) {
        return;
    }
    if (waiting == 0) {
        return;
    }
    /* Streams open the next window when the previous invocation ends; Kafka opens it when
     * the first record arrives (esm.md §3). */
    int64_t first_wait_ms = lane_first_wait_ms(lp);
    int64_t last_end_ms = sl_carry_last_end_ms(ln->carry);
    int64_t window_start =
        ls->ops->caps->window_rule == SL_WINDOW_FROM_FIRST_RECORD || first_wait_ms > last_end_ms
            ? first_wait_ms
            : last_end_ms;
    int64_t due =
        stop_at_oversize ? INT64_MIN : sl_batcher_due_ms(&ls->lim, waiting, bytes, window_start);
    if (!lane_may_form(ln, due, waiting)) {
        return;
    }
    lane_take(ln, ln, waiting);
    sl_carry_start(ln->carry);
}

/* --- what the carries tell the lanes (carry.h's host interface) --- */

static bool carries_is_revoked(void *arg, void *part_tag)
{
    (void)arg;
    const struct sl_lane_part *lp = part_tag;
    return lp->revoked;
}

static void carries_give_back(void *arg, void *part_tag, uint64_t abs, uint32_t lane)
{
    (void)arg;
    struct sl_lane_part *lp = part_tag;
    for (size_t l = 0; l < lp->n_lanes; l++) {
        if (l == lane || lane == SL_REC_LANE_ANY || (lane >= lp->n_lanes && l == 0)) {
            struct sl_lane *own = &lp->lanes[l];
            own->scan = own->scan > abs ? abs : own->scan;
        }
    }
}

static void carries_let_go(void *arg, void *part_tag, void *lane_tag)
{
    (void)arg;
    struct sl_lane_part *lp = part_tag;
    if (lp->carrier == lane_tag) {
        lp->carrier = NULL;
    }
}

static void carries_settle(void *arg, void *part_tag)
{
    struct sl_lanes *ls = arg;
    struct sl_lane_part *lp = part_tag;
    ls->host.settle(ls->host.arg, lp->owner);
}

static void carries_idle(void *arg, void *lane_tag)
{
    struct sl_lanes *ls = arg;
    struct sl_lane *ln = lane_tag;
    ls->host.lane_idle(ls->host.arg, ln->lp->owner);
}

static void carries_due(void *arg, void *lane_tag)
{
    (void)arg;
    lane_dispatch(lane_tag);
}

static void lanes_destroy(struct sl_lanes *ls)
{
    sl_carry_group_free(ls->group);
    sl_free(ls->parts);
    sl_free(ls);
}

/* A carry closed: once all of a partition's are, its lanes go and the mapping is told. */
static void carries_closed(void *arg, void *lane_tag)
{
    struct sl_lanes *ls = arg;
    struct sl_lane *ln = lane_tag;
    struct sl_lane_part *lp = ln->lp;
    if (--lp->open_carries > 0) {
        return;
    }
    void *owner = lp->owner;
    for (size_t l = 0; l < lp->n_lanes; l++) {
        sl_window_free(lp->lanes[l].win);
    }
    sl_free(lp->lanes);
    sl_free(lp);
    if (owner) {
        ls->host.part_closed(ls->host.arg, owner);
    }
    if (--ls->open_parts == 0 && ls->freeing) {
        lanes_destroy(ls);
    }
}

static void carries_schedule_pump(void *arg)
{
    struct sl_lanes *ls = arg;
    ls->host.schedule_pump(ls->host.arg);
}

static void carries_count(void *arg, enum sl_carry_stat stat, uint64_t n)
{
    struct sl_lanes *ls = arg;
    ls->host.count(ls->host.arg, stat, n);
}

/* --- the lanes' life --- */

int sl_lanes_new(const struct sl_lanes_conf *conf,
                 const struct sl_lane_host *host,
                 struct sl_lanes **ret_ls)
{
    struct sl_lanes *ls = sl_calloc(1, sizeof(*ls));
    if (!ls) {
        return SL_ENOMEM;
    }
    ls->ops = conf->carry.ops;
    ls->clock = conf->carry.clock;
    ls->inst = conf->carry.inst;
    ls->lim = conf->carry.lim;
    ls->window_ms = conf->window_ms;
    ls->lanes_per_part = conf->lanes_per_part;
    ls->spans =
        ls->ops->caps->batch_spans_partitions && ls->window_ms <= 0 && ls->lanes_per_part == 1;
    ls->host = *host;
    struct sl_carry_host chost = {
        .arg = ls,
        .is_revoked = carries_is_revoked,
        .give_back = carries_give_back,
        .let_go = carries_let_go,
        .settle = carries_settle,
        .idle = carries_idle,
        .due = carries_due,
        .closed = carries_closed,
        .schedule_pump = carries_schedule_pump,
        .count = carries_count,
    };
    int r = sl_carry_group_new(&conf->carry, &chost, &ls->group);
    if (r < 0) {
        sl_free(ls);
        return r;
    }
    *ret_ls = ls;
    return 0;
}

void sl_lanes_free(struct sl_lanes *ls)
{
    if (!ls) {
        return;
    }
    ls->freeing = true;
    if (ls->open_parts == 0) {
        lanes_destroy(ls);
    }
}

void sl_lanes_drain(struct sl_lanes *ls)
{
    sl_carry_group_drain(ls->group);
    for (size_t i = 0; i < ls->n_parts; i++) {
        struct sl_lane_part *lp = ls->parts[i];
        for (size_t l = 0; l < lp->n_lanes; l++) {
            sl_carry_drain(lp->lanes[l].carry);
        }
    }
}

int sl_lanes_in_flight(const struct sl_lanes *ls)
{
    return sl_carry_group_in_flight(ls->group);
}

int sl_lane_part_new(struct sl_lanes *ls,
                     struct sl_part *part,
                     struct sl_progress_part *prog,
                     void *owner,
                     struct sl_lane_part **ret_lp)
{
    if (ls->n_parts == ls->cap_parts) {
        size_t cap = ls->cap_parts ? ls->cap_parts * 2 : 8;
        struct sl_lane_part **parts = sl_realloc(ls->parts, cap * sizeof(*parts));
        if (!parts) {
            return SL_ENOMEM;
        }
        ls->parts = parts;
        ls->cap_parts = cap;
    }
    size_t n_lanes = ls->lanes_per_part;
    struct sl_lane_part *lp = sl_calloc(1, sizeof(*lp));
    struct sl_lane *lanes = sl_calloc(n_lanes, sizeof(*lanes));
    bool ok = lp && lanes;
    for (size_t l = 0; ok && l < n_lanes; l++) {
        struct sl_lane *ln = &lanes[l];
        ln->lp = lp;
        ln->win = ls->window_ms > 0 ? sl_window_new(ls->window_ms) : NULL;
        ln->carry = ln->win || ls->window_ms <= 0
                        ? sl_carry_new(ls->group, ln, lp, part, prog, ln->win)
                        : NULL;
        ok = ln->carry != NULL;
    }
    if (!ok) {
        /* Carries made already have a timer open: they go through the loop, and the partition
         * with them (released, with no owner to tell). */
        size_t made = 0;
        for (size_t l = 0; lanes && l < n_lanes; l++) {
            made += lanes[l].carry != NULL;
        }
        if (made == 0) {
            for (size_t l = 0; lanes && l < n_lanes; l++) {
                sl_window_free(lanes[l].win);
            }
            sl_free(lanes);
            sl_free(lp);
            return SL_ENOMEM;
        }
        *lp = (struct sl_lane_part){.ls = ls, .lanes = lanes, .n_lanes = n_lanes};
        lp->open_carries = made;
        lp->released = true;
        ls->open_parts++;
        for (size_t l = 0; l < n_lanes; l++) {
            if (lanes[l].carry) {
                sl_carry_close(lanes[l].carry);
            }
        }
        return SL_ENOMEM;
    }
    lp->ls = ls;
    lp->part = part;
    lp->prog = prog;
    lp->owner = owner;
    lp->lanes = lanes;
    lp->n_lanes = n_lanes;
    lp->open_carries = n_lanes;
    ls->open_parts++;
    ls->parts[ls->n_parts++] = lp;
    *ret_lp = lp;
    return 0;
}

void sl_lane_part_free(struct sl_lane_part *lp)
{
    struct sl_lanes *ls = lp->ls;
    if (lp->released) {
        return;
    }
    lp->released = true;
    for (size_t i = 0; i < ls->n_parts; i++) {
        if (ls->parts[i] == lp) {
            memmove(&ls->parts[i], &ls->parts[i + 1], (ls->n_parts - i - 1) * sizeof(*ls->parts));
            ls->n_parts--;
            break;
        }
    }
    for (size_t l = 0; l < lp->n_lanes; l++) {
        sl_carry_close(lp->lanes[l].carry);
    }
}

void sl_lane_part_dispatch(struct sl_lane_part *lp)
{
    for (size_t l = 0; l < lp->n_lanes && !lp->released; l++) {
        lane_dispatch(&lp->lanes[l]);
    }
}

static bool lane_in_flight(const struct sl_lane *ln)
{
    enum sl_carry_state st = sl_carry_state(ln->carry);
    return st == SL_CARRY_INVOKING || st == SL_CARRY_WRITING;
}

void sl_lane_part_revoke(struct sl_lane_part *lp)
{
    lp->revoked = true;
    struct sl_lane *carrier = lp->carrier;
    if (carrier && !lane_in_flight(carrier)) {
        sl_carry_abandon(carrier->carry);
    }
    for (size_t l = 0; l < lp->n_lanes; l++) {
        struct sl_lane *ln = &lp->lanes[l];
        if (lane_in_flight(ln)) {
            continue; /* abandoned when it answers */
        }
        if (sl_carry_count(ln->carry) > 0) {
            sl_carry_abandon(ln->carry);
        }
        sl_carry_stop(ln->carry);
    }
}

void sl_lane_part_end(struct sl_lane_part *lp)
{
    lp->ended = true;
}

bool sl_lane_part_is_busy(const struct sl_lane_part *lp)
{
    if (lp->carrier) {
        return true;
    }
    for (size_t l = 0; l < lp->n_lanes; l++) {
        if (lane_in_flight(&lp->lanes[l])) {
            return true;
        }
    }
    return false;
}

bool sl_lane_part_is_carried(const struct sl_lane_part *lp)
{
    return lp->carrier != NULL;
}

bool sl_lane_part_is_idle(const struct sl_lane_part *lp)
{
    if (lp->carrier) {
        return false;
    }
    for (size_t l = 0; l < lp->n_lanes; l++) {
        if (!lane_is_idle(&lp->lanes[l])) {
            return false;
        }
    }
    return true;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* lane.c: one lane of a partition and the batches it carries. A lane takes the records of its
 * partition key hash in order, forms a batch (BatchSize, the window, the 6 MB payload), and
 * carries out the invoker's verdict on each answer: done, retry after a backoff, split in two
 * (BisectBatchOnFunctionError), resume after the lowest failed record (partial batch
 * responses), or give the records to the on-failure path: the destination when there is one,
 * else a log line and the dropped count. Records older than MaximumRecordAgeInSeconds and
 * records that can never fit an event take that path before an attempt. With tumbling windows
 * it also keeps the window's state and sends the window's final invocation. Where the source's
 * batches span partitions (Kafka, esm.md §3), a lane's batch also takes the waiting records of
 * partitions that have no batch in flight; a partial batch response then resumes each
 * partition after its own lowest failed record. It never moves a checkpoint itself: it marks
 * records done and lets progress.c advance each partition's low-watermark, and asks
 * progress.c whether a partition must wait for the disk before its next batch. Loop thread. */
#include "lane.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "failrec.h"
#include "function.h"
#include "log.h"
#include "memo.h"
#include "retry.h"
#include "source.h"
#include "window.h"

#define LANE_COMP     "lane"
#define LANE_RETRY_MS 1000
#define LANE_ID_MAX   320         /* a Kafka topic name is up to 249 characters */
#define LANE_BUF_KEEP (64 * 1024) /* an idle lane's event buffers keep at most this */

enum sl_lane_state {
    SL_LANE_IDLE,          /* no batch: waiting for records or for the window to close */
    SL_LANE_READY,         /* a batch waits for a concurrency slot */
    SL_LANE_INVOKING,      /* an invocation is in flight */
    SL_LANE_BACKOFF,       /* the batch failed; the timer sends it again */
    SL_LANE_WRITING,       /* records are being written to the on-failure destination */
    SL_LANE_WRITE_BACKOFF, /* that write failed; the timer writes again */
    SL_LANE_STATE_COUNT,
};

struct sl_lane_range {
    size_t lo; /* indices into the lane's batch */
    size_t hi;
};

/* One record of a lane's batch: its partition, and its absolute index in that partition's
 * queue. */
struct sl_lane_item {
    struct sl_lane_part *lp;
    uint64_t abs;
};

/* One of a partition's ParallelizationFactor lanes: the records whose partition key hashes to
 * it, one batch at a time. Where batches span partitions (Kafka), a lane's batch starts with
 * its own partition's records and goes on with those of other partitions that have no batch
 * in flight: the lane carries them all, and each partition has one batch in flight at most. */
struct sl_lane {
    struct sl_lane_part *lp;
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
    bool in_final;         /* the invocation in flight (or backing off) is the window's final */
    uv_timer_t timer;
};

/* One partition's lanes. */
struct sl_lane_part {
    struct sl_lanes *ls;
    struct sl_part *part;
    struct sl_progress_part *prog; /* its low-watermark and checkpoint (progress.c) */
    void *owner;                   /* the mapping's handle, for host callbacks */
    struct sl_lane *lanes;
    size_t n_lanes;
    size_t open_timers;
    bool revoked;  /* taken away: nothing more of it counts */
    bool released; /* freed by the mapping: its timers are closing */
    /* Where batches span partitions: the lane whose batch holds this partition's records, or
     * NULL. The partition joins no other batch meanwhile. */
    struct sl_lane *carrier;
};

struct sl_lanes {
    const char *inst;
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const struct sl_source_ops *ops;
    void *src_ctx;
    struct sl_function *fn;
    struct sl_onfail *onfail;
    struct sl_batch_limits lim;
    struct sl_invoker_policy policy;
    int64_t max_concurrency;
    int64_t max_record_age_s;
    int64_t window_ms;
    size_t lanes_per_part;
    bool spans; /* batches span partitions (Kafka, esm.md §3) */
    struct sl_lane_host host;
    struct sl_retry_policy retry;
    uint64_t rng;
    struct sl_memo *memo; /* retry state left by batches of revoked partitions */
    char warned_key[64];
    bool draining;
    bool freeing;
    int in_flight; /* invocations */
    /* The partitions, in the order they came (a batch that spans partitions takes them in
     * this order from its own). */
    struct sl_lane_part **parts;
    size_t n_parts;
    size_t cap_parts;
    size_t open_parts; /* given lanes and not closed yet */
};

static void lane_attempt(struct sl_lane *ln);
static void lane_continue(struct sl_lane *ln);
static void lane_dispatch(struct sl_lane *ln);

/* --- the host interface, as the lanes use it --- */

static void lane_count(struct sl_lanes *ls, enum sl_lane_stat stat, uint64_t n)
{
    ls->host.count(ls->host.arg, stat, n);
}

static void lane_pump(struct sl_lanes *ls)
{
    ls->host.schedule_pump(ls->host.arg);
}

static void lane_settle(struct sl_lane_part *lp)
{
    lp->ls->host.settle(lp->ls->host.arg, lp->owner);
}

static int64_t lane_first_wait_ms(struct sl_lane_part *lp)
{
    return lp->ls->host.first_wait_ms(lp->ls->host.arg, lp->owner);
}

static struct sl_record *lane_rec(const struct sl_lane *ln, size_t i)
{
    struct sl_recq *q = &ln->items[i].lp->part->q;
    return sl_recq_at_mut(q, (size_t)(ln->items[i].abs - q->dropped));
}

static struct sl_part *lane_part(const struct sl_lane *ln, size_t i)
{
    return ln->items[i].lp->part;
}

/* Marks the records of r done and moves the checkpoint of each partition they belong to. */
static void lane_finish(struct sl_lane *ln, struct sl_lane_range r)
{
    for (size_t i = r.lo; i < r.hi; i++) {
        lane_rec(ln, i)->flags |= SL_REC_DONE;
    }
    for (size_t i = r.lo; i < r.hi; i++) {
        if (i == r.lo || ln->items[i].lp != ln->items[i - 1].lp) {
            (void)sl_progress_part_advance(ln->items[i].lp->prog);
        }
    }
}

/* "12 records of orders-0 from 5 to 16", or for several partitions "30 records of orders-0
 * from 5 to 16, orders-1 from 0 to 17": for logs. */
/* Writes the itemIdentifier of the batch's i-th record (the source's text form of its position)
 * into buf (LANE_ID_MAX bytes); empty if it does not fit. */
static const char *lane_item_id(const struct sl_lane *ln, size_t i, char *buf)
{
    const struct sl_lanes *ls = ln->lp->ls;
    if (ls->ops->format_item_id(ls->src_ctx, lane_part(ln, i), lane_rec(ln, i), buf, LANE_ID_MAX) <
        0) {
        buf[0] = '\0';
    }
    return buf;
}

static const char *
lane_describe(const struct sl_lane *ln, struct sl_lane_range r, char *buf, size_t len)
{
    char first[LANE_ID_MAX];
    char last[LANE_ID_MAX];
    size_t used = (size_t)snprintf(buf, len, "%zu records of ", r.hi - r.lo);
    for (size_t i = r.lo; i < r.hi && used < len; i++) {
        if (i > r.lo && ln->items[i].lp == ln->items[i - 1].lp) {
            continue;
        }
        size_t j = i;
        while (j + 1 < r.hi && ln->items[j + 1].lp == ln->items[i].lp) {
            j++;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s from %s to %s", i > r.lo ? ", " : "",
                                 lane_part(ln, i)->name, lane_item_id(ln, i, first),
                                 lane_item_id(ln, j, last));
    }
    return buf;
}

/* Moves the items of cur for which keep_first[i - cur.lo] is set to the front of cur, both
 * groups keeping their order (so each stays grouped by partition). Returns how many moved. */
static size_t lane_stable_split(struct sl_lane *ln, const bool *keep_first)
{
    size_t n = ln->cur.hi - ln->cur.lo;
    struct sl_lane_item *tmp = sl_malloc(n * sizeof(*tmp));
    if (!tmp) {
        return SIZE_MAX;
    }
    size_t front = 0;
    for (size_t i = 0; i < n; i++) {
        front += keep_first[i];
    }
    size_t a = 0;
    size_t b = front;
    for (size_t i = 0; i < n; i++) {
        tmp[keep_first[i] ? a++ : b++] = ln->items[ln->cur.lo + i];
    }
    memcpy(&ln->items[ln->cur.lo], tmp, n * sizeof(*tmp));
    sl_free(tmp);
    return front;
}

/* Ends the batch: its partitions may join other batches again. */
static void lane_release_parts(struct sl_lane *ln)
{
    for (size_t i = 0; i < ln->n; i++) {
        if (ln->items[i].lp->carrier == ln) {
            ln->items[i].lp->carrier = NULL;
        }
    }
    ln->n = 0;
    ln->n_todo = 0;
}

/* --- the on-failure path --- */

static void lane_timer_cb(uv_timer_t *t);

static void lane_backoff(struct sl_lane *ln, enum sl_lane_state state, int64_t delay_ms)
{
    ln->state = state;
    uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)delay_ms, 0);
}

/* Drops the lane's batch because a partition it holds was revoked. A batch that had failed
 * leaves its retry state behind for each partition (for when the partition comes back, or for
 * the next batch of one that stays); the records of partitions that stay are offered again
 * (at-least-once: a rebalance may repeat them). With settle, revoked partitions the batch held
 * are released once nothing holds them (ln's own last: it may free ln). */
static void lane_abandon(struct sl_lane *ln, bool settle)
{
    struct sl_lanes *ls = ln->lp->ls;
    uv_timer_stop(&ln->timer);
    if (ln->n > 0 && ln->cur.lo < ln->cur.hi && (ln->attempts > 0 || ln->invokes > 0)) {
        for (size_t i = ln->cur.lo; i < ln->cur.hi; i++) {
            if (i == ln->cur.lo || ln->items[i].lp != ln->items[i - 1].lp) {
                char id[LANE_ID_MAX];
                sl_memo_put(ls->memo, lane_part(ln, i)->id, lane_item_id(ln, i, id), ln->attempts,
                            ln->invokes);
            }
        }
    }
    for (size_t i = 0; i < ln->n; i++) {
        struct sl_lane_part *lp = ln->items[i].lp;
        struct sl_record *rec = lane_rec(ln, i);
        if (lp->revoked || (rec->flags & SL_REC_DONE)) {
            continue;
        }
        rec->flags &= ~SL_REC_TAKEN;
        struct sl_lane *own = &lp->lanes[rec->lane < lp->n_lanes ? rec->lane : 0];
        if (own->scan > ln->items[i].abs) {
            own->scan = ln->items[i].abs;
        }
    }
    struct sl_lane_part *own_lp = ln->lp;
    /* A revoked partition stays revoked and owned by the mapping until settled: collecting
     * them first keeps the pointers valid while the lane lets go. */
    size_t n = ln->n;
    struct sl_lane_part **revoked = settle && n ? sl_calloc(n, sizeof(*revoked)) : NULL;
    size_t n_revoked = 0;
    for (size_t i = 0; revoked && i < n; i++) {
        struct sl_lane_part *lp = ln->items[i].lp;
        if (lp->revoked && lp != own_lp && (n_revoked == 0 || revoked[n_revoked - 1] != lp)) {
            revoked[n_revoked++] = lp;
        }
    }
    lane_release_parts(ln);
    ln->state = SL_LANE_IDLE;
    ln->in_final = false;
    for (size_t i = 0; i < n_revoked; i++) {
        lane_settle(revoked[i]);
    }
    sl_free(revoked);
    lane_pump(ls);
    if (settle) {
        lane_settle(own_lp);
    }
}

/* An answer for a batch holding a partition that was revoked meanwhile: nothing of it counts
 * any more. */
static bool lane_abandon_if_revoked(struct sl_lane *ln)
{
    bool revoked = ln->lp->revoked;
    for (size_t i = 0; i < ln->n && !revoked; i++) {
        revoked = ln->items[i].lp->revoked;
    }
    if (!revoked) {
        return false;
    }
    lane_abandon(ln, true);
    return true;
}

void sl_lane_part_revoke(struct sl_lane_part *lp)
{
    lp->revoked = true;
    struct sl_lane *carrier = lp->carrier;
    if (carrier && carrier->state != SL_LANE_INVOKING && carrier->state != SL_LANE_WRITING) {
        lane_abandon(carrier, false);
    }
    for (size_t l = 0; l < lp->n_lanes; l++) {
        struct sl_lane *ln = &lp->lanes[l];
        if (ln->state == SL_LANE_INVOKING || ln->state == SL_LANE_WRITING) {
            continue; /* abandoned when it answers */
        }
        if (ln->n > 0) {
            lane_abandon(ln, false);
        }
        uv_timer_stop(&ln->timer);
        ln->state = SL_LANE_IDLE;
    }
}

static void lane_give_up(struct sl_lane *ln,
                         size_t n,
                         const char *condition,
                         enum sl_failrec_response response);

/* The on-failure path's answer for the invocation record of ln->dest. */
static void lane_written(void *arg, int err, const char *detail)
{
    struct sl_lane *ln = arg;
    struct sl_lanes *ls = ln->lp->ls;
    if (lane_abandon_if_revoked(ln)) {
        return;
    }
    size_t n = ln->dest.hi - ln->dest.lo;
    if (err < 0) {
        int64_t delay = sl_onfail_write_failed(ln->ofw, err, detail);
        if (ls->draining) {
            ln->state = SL_LANE_IDLE;
            return;
        }
        lane_backoff(ln, SL_LANE_WRITE_BACKOFF, delay);
        return;
    }
    lane_count(ls, SL_LANE_STAT_DESTINATION_DELIVERED, n);
    lane_finish(ln, ln->dest);
    if (ln->give_up_rest > 0) {
        ln->give_up_rest--;
        lane_give_up(ln, 1, ln->give_up_condition, (enum sl_failrec_response)ln->give_up_response);
        return;
    }
    lane_continue(ln);
}

/* Fills ln->refs with the records of r, for encoding. */
static void lane_refs(struct sl_lane *ln, struct sl_lane_range r)
{
    for (size_t i = r.lo; i < r.hi; i++) {
        ln->refs[i - r.lo] = (struct sl_batch_ref){lane_part(ln, i), lane_rec(ln, i)};
    }
}

/* Hands records cur.lo .. cur.lo+n of the batch to the on-failure path (onfailure.c): the
 * destination when there is one (the checkpoint passes them once it has them), else a log
 * line and the dropped count. Either way the lane carries on with the rest. */
static void
lane_give_up(struct sl_lane *ln, size_t n, const char *condition, enum sl_failrec_response response)
{
    struct sl_lanes *ls = ln->lp->ls;
    size_t per_doc = sl_onfail_doc_records(ls->onfail, n);
    if (per_doc < n) {
        /* One document per record: this one now, the others as each write lands. */
        ln->give_up_rest = n - per_doc;
        ln->give_up_condition = condition;
        ln->give_up_response = (int)response;
        n = per_doc;
    }
    struct sl_lane_range r = {ln->cur.lo, ln->cur.lo + n};
    ln->cur.lo += n;
    char what[256];
    if (!sl_onfail_has_dest(ls->onfail)) {
        sl_log_error(LANE_COMP, ls->inst, "%s: dropping %s (no on-failure destination)", condition,
                     lane_describe(ln, r, what, sizeof(what)));
        lane_count(ls, SL_LANE_STAT_DROPPED, n);
        lane_finish(ln, r);
        lane_continue(ln);
        return;
    }
    if (!ln->ofw) {
        ln->ofw = sl_onfail_write_new(ls->onfail, lane_written, ln);
    }
    struct sl_onfail_why why = {
        .condition = condition,
        .response = response,
        .invoke_count = ln->invokes,
        .status = ln->last_status,
        .function_error = ln->last_function_error,
    };
    ln->dest = r;
    ln->state = SL_LANE_WRITING;
    lane_refs(ln, r);
    if (!ln->ofw ||
        sl_onfail_write_start(ln->ofw, ln->refs, n, &why, lane_describe(ln, r, what, sizeof(what)),
                              &ln->body) < 0) {
        sl_log_error(LANE_COMP, ls->inst, "out of memory building an invocation record, retrying");
        ln->cur.lo = r.lo;
        lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
    }
}

static bool lanes_have_slot(const struct sl_lanes *ls)
{
    return ls->max_concurrency <= 0 || ls->in_flight < ls->max_concurrency;
}

/* --- tumbling windows --- */

/* Appends the window fields to the event in ln->body. */
static int lane_window_wrap(struct sl_lane *ln, bool final)
{
    struct sl_lane_part *lp = ln->lp;
    return sl_window_add_fields(ln->win, &ln->body, lp->ls->ops->scheme, lp->part->name, final);
}

/* The window closed: its records are done, so the checkpoint may pass them; its state goes. */
static void lane_window_close(struct sl_lane *ln)
{
    sl_window_close(ln->win, &ln->lp->part->q);
    ln->in_final = false;
    (void)sl_progress_part_advance(ln->lp->prog);
}

static void lane_invoke(struct sl_lane *ln);

/* Sends the window's final invocation: no records, isFinalInvokeForWindow. */
static void lane_final_invoke(struct sl_lane *ln)
{
    struct sl_lanes *ls = ln->lp->ls;
    sl_buf_truncate(&ln->body, 0);
    int r = sl_batcher_open(ls->ops, ls->src_ctx, ln->lp->part, &ln->body);
    r = r < 0 ? r : sl_batcher_close(ls->ops, ls->src_ctx, ln->lp->part, &ln->body);
    r = r < 0 ? r : lane_window_wrap(ln, true);
    if (r < 0) {
        sl_log_error(LANE_COMP, ls->inst,
                     "cannot build the final invocation of a window: %s, "
                     "retrying",
                     sl_strerror(r));
        ln->state = SL_LANE_BACKOFF;
        uv_timer_start(&ln->timer, lane_timer_cb, LANE_RETRY_MS, 0);
        return;
    }
    ln->in_final = true;
    ln->n = 0;
    ln->cur = (struct sl_lane_range){0, 0};
    ln->n_todo = 0;
    ln->invokes = 0;
    if (!lanes_have_slot(ls)) {
        ln->state = SL_LANE_READY;
        return;
    }
    lane_invoke(ln);
}

/* --- invocations --- */

static void lane_invoked(void *arg, const struct sl_invoke_result *res);

static void lane_invoke(struct sl_lane *ln)
{
    struct sl_lanes *ls = ln->lp->ls;
    ln->state = SL_LANE_INVOKING;
    ln->invokes++;
    ls->in_flight++;
    lane_count(ls, SL_LANE_STAT_BATCHES, 1);
    lane_count(ls, SL_LANE_STAT_INVOKED, ln->cur.hi - ln->cur.lo);
    if (ln->invokes > 1) {
        lane_count(ls, SL_LANE_STAT_RETRIED, ln->cur.hi - ln->cur.lo);
    }
    int r = sl_function_invoke(ls->fn, ln->body.data, ln->body.len, lane_invoked, ln);
    if (r < 0) {
        struct sl_invoke_result res = {
            .outcome = SL_OUTCOME_TRANSPORT_ERROR,
            .detail = sl_strerror(r),
            .retry_after_ms = -1,
        };
        lane_invoked(ln, &res);
    }
}

/* Reads a partial batch response against cur's item identifiers. When some records failed,
 * each partition of cur resumes at its own lowest failed record: the records before it move to
 * the front of cur, and ret->lowest counts them (for one partition that is the order already:
 * the streams rule). */
static void
lane_read_partial(struct sl_lane *ln, const struct sl_invoke_result *res, struct sl_partial *ret)
{
    size_t n = ln->cur.hi - ln->cur.lo;
    char *ids_buf = sl_malloc(n * LANE_ID_MAX);
    const char **ids = sl_calloc(n, sizeof(*ids));
    bool *failed = sl_calloc(2 * n, sizeof(*failed)); /* and done, after it */
    if (!ids_buf || !ids || !failed) {
        sl_free(ids_buf);
        sl_free(ids);
        sl_free(failed);
        memset(ret, 0, sizeof(*ret));
        ret->kind = SL_PARTIAL_INVALID;
        (void)snprintf(ret->detail, sizeof(ret->detail), "out of memory reading the response");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = lane_item_id(ln, ln->cur.lo + i, ids_buf + i * LANE_ID_MAX);
    }
    sl_invoker_parse_partial(res->body, res->body_len, ids, n, failed, ret);
    if (ret->kind == SL_PARTIAL_SOME_FAILED) {
        /* done[i]: no record of the same partition at or before i failed. */
        bool *done = failed + n;
        for (size_t i = 0; i < n; i++) {
            bool same = i > 0 && ln->items[ln->cur.lo + i].lp == ln->items[ln->cur.lo + i - 1].lp;
            done[i] = !failed[i] && (!same || done[i - 1]);
        }
        size_t front = lane_stable_split(ln, done);
        if (front == SIZE_MAX) {
            ret->kind = SL_PARTIAL_INVALID;
            (void)snprintf(ret->detail, sizeof(ret->detail), "out of memory reading the response");
        } else {
            ret->lowest = front;
        }
    }
    sl_free(failed);
    sl_free(ids);
    sl_free(ids_buf);
}

static void lane_log_failure(struct sl_lane *ln,
                             const struct sl_invoke_result *res,
                             const char *what,
                             int64_t delay)
{
    struct sl_lanes *ls = ln->lp->ls;
    char status[32] = "";
    if (res->status) {
        (void)snprintf(status, sizeof(status), " status %d", res->status);
    }
    char batch[256] = "the window's final invocation";
    if (ln->cur.lo < ln->cur.hi) {
        lane_describe(ln, ln->cur, batch, sizeof(batch));
    }
    sl_log_warn(LANE_COMP, ls->inst,
                "batch of %s: %s%s%s%s%s%s; %s in %" PRId64 "ms (invocation %u, %u counted)", batch,
                sl_outcome_name(res->outcome), status, res->error_type ? " " : "",
                res->error_type ? res->error_type : "", res->detail ? ": " : "",
                res->detail ? res->detail : "", what, delay, ln->invokes, ln->attempts);
}

static void lane_invoked(void *arg, const struct sl_invoke_result *res)
{
    struct sl_lane *ln = arg;
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    ls->in_flight--;
    if (lane_abandon_if_revoked(ln)) {
        return;
    }
    ln->last_end_ms = sl_clock_now_ms(ls->clock);
    size_t n = ln->cur.hi - ln->cur.lo;
    if (ln->in_final) {
        if (res->outcome == SL_OUTCOME_SUCCESS) {
            lane_window_close(ln);
            lane_continue(ln);
            return;
        }
        int64_t delay = sl_retry_delay_ms(&ls->retry, ln->invokes, &ls->rng);
        lane_log_failure(ln, res, "the window's final invocation failed, retrying", delay);
        if (ls->draining) {
            ln->state = SL_LANE_IDLE;
            return;
        }
        lane_backoff(ln, SL_LANE_BACKOFF, delay);
        return;
    }
    struct sl_invoke_result windowed_res;
    char *new_state = NULL;
    size_t new_state_len = 0;
    if (ln->win && res->outcome == SL_OUTCOME_SUCCESS &&
        sl_window_read_state(res->body, res->body_len, &new_state, &new_state_len) < 0) {
        /* AWS: a tumbling window function must return its state, else the batch failed. */
        windowed_res = *res;
        windowed_res.outcome = SL_OUTCOME_FUNCTION_ERROR;
        windowed_res.error_type = "State.Missing";
        windowed_res.detail = "the response has no \"state\" object";
        res = &windowed_res;
    }

    struct sl_partial partial;
    const struct sl_partial *pp = NULL;
    if (res->outcome == SL_OUTCOME_SUCCESS && ls->policy.report_item_failures) {
        lane_read_partial(ln, res, &partial);
        pp = &partial;
        if (partial.unknown_key[0] && strcmp(partial.unknown_key, ls->warned_key) != 0) {
            sl_log_warn(LANE_COMP, ls->inst,
                        "the function's response has the key \"%s\" but no batchItemFailures; "
                        "AWS counts such a batch as fully delivered, and so does sluice (is it "
                        "misspelt?)",
                        partial.unknown_key);
            (void)snprintf(ls->warned_key, sizeof(ls->warned_key), "%s", partial.unknown_key);
        }
        if (partial.kind == SL_PARTIAL_INVALID) {
            char what[256];
            sl_log_warn(LANE_COMP, ls->inst,
                        "invalid partial batch response for %s: %s; the whole batch failed",
                        lane_describe(ln, ln->cur, what, sizeof(what)), partial.detail);
        }
    }
    struct sl_verdict v;
    sl_invoker_judge(&ls->policy, res, pp, n, ln->attempts, &v);
    if (v.action != SL_VERDICT_DONE) {
        lane_count(ls, SL_LANE_STAT_FAILED,
                   pp && pp->kind == SL_PARTIAL_SOME_FAILED ? pp->n_failed : n);
        /* responseContext.statusCode is the Invoke API's: an exec function that ran and
         * failed is a 200 with a function error, whatever its exit status. */
        bool exec = strcmp(ls->fn->ops->name, "exec") == 0;
        ln->last_status = exec || res->status <= 0 ? 200 : res->status;
        ln->last_function_error = v.function_error;
    }
    if (v.counted) {
        ln->attempts++;
    }
    if (v.done_prefix > 0) {
        struct sl_lane_range done = {ln->cur.lo, ln->cur.lo + v.done_prefix};
        lane_count(ls, SL_LANE_STAT_DELIVERED, v.done_prefix);
        lane_count(ls, SL_LANE_STAT_BYTES, v.action == SL_VERDICT_DONE ? ln->body.len : 0);
        if (ln->win) {
            /* Delivered, but the checkpoint passes them only once the window closes. */
            for (size_t i = done.lo; i < done.hi; i++) {
                lane_rec(ln, i)->flags |= SL_REC_WINDOWED;
            }
            sl_window_delivered(ln->win, ln->items[done.hi - 1].abs + 1);
            ln->cur.lo = done.hi;
            (void)sl_progress_part_advance(lp->prog);
        } else {
            ln->cur.lo = done.hi;
            lane_finish(ln, done);
        }
    }
    if (new_state && sl_window_set_state(ln->win, new_state, new_state_len)) {
        sl_log_warn(LANE_COMP, ls->inst,
                    "window state of %s is %zu bytes, over %u: ending the window early",
                    lp->part->name, new_state_len, SL_WINDOW_STATE_MAX);
    }
    if (v.action == SL_VERDICT_DONE) {
        lane_continue(ln);
        return;
    }
    if (ls->draining) {
        lane_log_failure(ln, res, "left for the next run", 0);
        ln->state = SL_LANE_IDLE;
        return;
    }
    if (v.action == SL_VERDICT_EXHAUSTED) {
        lane_log_failure(ln, res, "retries exhausted, to the on-failure path", 0);
        lane_give_up(ln, ln->cur.hi - ln->cur.lo, SL_FAILREC_RETRIES_EXHAUSTED,
                     SL_FAILREC_RESPONSE_OBJECT);
        return;
    }
    int64_t delay = sl_retry_delay_ms(&ls->retry, ln->invokes, &ls->rng);
    if (res->outcome == SL_OUTCOME_THROTTLE && res->retry_after_ms > delay) {
        delay = res->retry_after_ms < ls->retry.max_ms ? res->retry_after_ms : ls->retry.max_ms;
    }
    if (v.action == SL_VERDICT_BISECT) {
        lane_log_failure(ln, res, "splitting the batch in two, retrying", delay);
        size_t mid = ln->cur.lo + (ln->cur.hi - ln->cur.lo) / 2;
        if (ln->n_todo == ln->cap_todo) {
            size_t cap = ln->cap_todo ? ln->cap_todo * 2 : 8;
            struct sl_lane_range *t = sl_realloc(ln->todo, cap * sizeof(*t));
            if (!t) {
                lane_backoff(ln, SL_LANE_BACKOFF, delay);
                return;
            }
            ln->todo = t;
            ln->cap_todo = cap;
        }
        ln->todo[ln->n_todo++] = (struct sl_lane_range){mid, ln->cur.hi};
        ln->cur.hi = mid;
        ln->attempts = 0;
        ln->invokes = 0;
    } else {
        lane_log_failure(ln, res, "retrying", delay);
    }
    lane_backoff(ln, SL_LANE_BACKOFF, delay);
}

/* Moves on once cur is handled: the next part of the batch, or the next batch. */
static void lane_continue(struct sl_lane *ln)
{
    if (ln->cur.lo < ln->cur.hi) {
        lane_attempt(ln);
        return;
    }
    if (ln->n_todo > 0) {
        ln->cur = ln->todo[--ln->n_todo];
        ln->attempts = 0;
        ln->invokes = 0;
        lane_attempt(ln);
        return;
    }
    lane_release_parts(ln);
    /* Idle, it keeps no event buffer beyond LANE_BUF_KEEP: a mapping of hundreds of partitions
     * would otherwise hold each lane's largest event for ever (DESIGN.md rule 4). */
    if (ln->body.cap > LANE_BUF_KEEP) {
        sl_buf_fini(&ln->body);
    }
    if (ln->ofw) {
        sl_onfail_write_trim(ln->ofw, LANE_BUF_KEEP);
    }
    ln->state = SL_LANE_IDLE;
    ln->last_end_ms = sl_clock_now_ms(ln->lp->ls->clock);
    struct sl_lanes *ls = ln->lp->ls;
    ls->host.lane_idle(ls->host.arg, ln->lp->owner);
}

/* The records of cur past MaximumRecordAgeInSeconds: the leading ones of each partition (a
 * record is judged only once every record before it in its partition is), moved to the front
 * of cur. Returns how many, or SIZE_MAX when out of memory. */
static size_t lane_expired_front(struct sl_lane *ln)
{
    struct sl_lanes *ls = ln->lp->ls;
    int64_t max_age_s = ls->max_record_age_s;
    if (max_age_s < 0) {
        return 0;
    }
    int64_t oldest = sl_clock_wall_ms(ls->clock) - max_age_s * 1000;
    size_t n = ln->cur.hi - ln->cur.lo;
    size_t count = 0;
    bool *expired = sl_calloc(n, sizeof(*expired));
    if (!expired) {
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = ln->cur.lo + i;
        bool same = i > 0 && ln->items[at].lp == ln->items[at - 1].lp;
        expired[i] = lane_rec(ln, at)->arrival_ms < oldest && (!same || expired[i - 1]);
        count += expired[i];
    }
    if (count > 0) {
        count = lane_stable_split(ln, expired);
    }
    sl_free(expired);
    return count;
}

/* Tries cur: records past MaximumRecordAgeInSeconds go to the on-failure path first, then the
 * rest is encoded (split further if the payload limit demands it) and invoked. */
static void lane_attempt(struct sl_lane *ln)
{
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    if (ls->draining) {
        ln->state = SL_LANE_IDLE;
        return;
    }
    size_t expired = lane_expired_front(ln);
    if (expired == SIZE_MAX) {
        lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
        return;
    }
    if (expired > 0) {
        lane_give_up(ln, expired, SL_FAILREC_RECORD_AGE, SL_FAILREC_RESPONSE_OMIT);
        return;
    }
    if (lane_rec(ln, ln->cur.lo)->flags & SL_REC_OVERSIZE) {
        lane_give_up(ln, 1, SL_FAILREC_PAYLOAD_TOO_LARGE, SL_FAILREC_RESPONSE_NULL);
        return;
    }
    size_t n = ln->cur.hi - ln->cur.lo;
    lane_refs(ln, ln->cur);
    size_t encoded = 0;
    if (sl_batcher_encode(&ls->lim, ls->ops, ls->src_ctx, ln->refs, n, &ln->body, &encoded) < 0) {
        sl_log_error(LANE_COMP, ls->inst, "out of memory building a batch of %s, retrying",
                     lp->part->name);
        lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
        return;
    }
    if (encoded == 0) {
        lane_give_up(ln, 1, SL_FAILREC_PAYLOAD_TOO_LARGE, SL_FAILREC_RESPONSE_NULL);
        return;
    }
    if (encoded < n) {
        /* Over the payload limit: the rest becomes the next part of this batch. */
        if (ln->n_todo == ln->cap_todo) {
            size_t cap = ln->cap_todo ? ln->cap_todo * 2 : 8;
            struct sl_lane_range *t = sl_realloc(ln->todo, cap * sizeof(*t));
            if (!t) {
                lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
                return;
            }
            ln->todo = t;
            ln->cap_todo = cap;
        }
        ln->todo[ln->n_todo++] = (struct sl_lane_range){ln->cur.lo + encoded, ln->cur.hi};
        ln->cur.hi = ln->cur.lo + encoded;
    }
    if (ln->win && lane_window_wrap(ln, false) < 0) {
        sl_log_error(LANE_COMP, ls->inst, "out of memory building a batch of %s, retrying",
                     lp->part->name);
        lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
        return;
    }
    if (!lanes_have_slot(ls)) {
        ln->state = SL_LANE_READY;
        return;
    }
    lane_invoke(ln);
}

static void lane_timer_cb(uv_timer_t *t)
{
    struct sl_lane *ln = t->data;
    switch (ln->state) {
    case SL_LANE_BACKOFF:
        if (ln->in_final) {
            lane_final_invoke(ln);
        } else {
            lane_attempt(ln);
        }
        return;
    case SL_LANE_WRITE_BACKOFF:
        if (ln->lp->ls->draining) {
            ln->state = SL_LANE_IDLE;
            return;
        }
        ln->state = SL_LANE_WRITING;
        sl_onfail_write_again(ln->ofw);
        return;
    case SL_LANE_IDLE:
        lane_dispatch(ln);
        return;
    case SL_LANE_READY:
    case SL_LANE_INVOKING:
    case SL_LANE_WRITING:
    case SL_LANE_STATE_COUNT:
        return;
    }
}

static bool lane_grow(struct sl_lane *ln, size_t n)
{
    if (n <= ln->cap) {
        return true;
    }
    struct sl_lane_item *items = sl_realloc(ln->items, n * sizeof(*items));
    if (items) {
        ln->items = items;
    }
    struct sl_batch_ref *refs = sl_realloc(ln->refs, n * sizeof(*refs));
    if (refs) {
        ln->refs = refs;
    }
    if (!items || !refs) {
        return false;
    }
    ln->cap = n;
    return true;
}

/* The tumbling window's part of dispatching (window.c decides): the window's final invocation,
 * a timer for its end, or a batch inside it (*waiting cut to the window's records). Returns
 * true when it took over. */
static bool lane_window_dispatch(struct sl_lane *ln, size_t start, size_t *waiting)
{
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    size_t r = 0;
    size_t b = 0;
    bool full = !ls->host.fetch_budget(ls->host.arg, lp->owner, &r, &b);
    int64_t wait_ms = 0;
    switch (sl_window_dispatch(ln->win, &lp->part->q, start, waiting, full,
                               sl_clock_wall_ms(ls->clock), &wait_ms)) {
    case SL_WINDOW_FINAL:
        lane_final_invoke(ln);
        return true;
    case SL_WINDOW_WAIT:
        uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)wait_ms, 0);
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
        if ((rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) || rec->lane != lane_no) {
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
        bytes += rec->len;
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
        if ((rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) || rec->lane != lane_no) {
            continue;
        }
        rec->flags |= SL_REC_TAKEN;
        ln->items[ln->n++] = (struct sl_lane_item){lp, q->dropped + i};
        src->scan = q->dropped + i + 1;
        taken++;
    }
}

/* A batch of up to n records is due at due: true when it is to be formed now (the lane has
 * room for it, its batch is empty); otherwise the lane's timer is armed for when it is due, or
 * to try again after running out of memory. */
static bool lane_may_form(struct sl_lane *ln, int64_t due, size_t n)
{
    struct sl_lanes *ls = ln->lp->ls;
    int64_t now = sl_clock_now_ms(ls->clock);
    if (due > now) {
        uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)(due - now), 0);
        return false;
    }
    if (!lane_grow(ln, n)) {
        sl_log_error(LANE_COMP, ls->inst, "out of memory forming a batch of %s, retrying",
                     ln->lp->part->name);
        uv_timer_start(&ln->timer, lane_timer_cb, LANE_RETRY_MS, 0);
        return false;
    }
    uv_timer_stop(&ln->timer);
    ln->n = 0;
    return true;
}

/* Starts the batch just taken into ln->items. */
static void lane_start(struct sl_lane *ln)
{
    struct sl_lanes *ls = ln->lp->ls;
    ln->cur = (struct sl_lane_range){0, ln->n};
    ln->n_todo = 0;
    ln->attempts = 0;
    ln->invokes = 0;
    ln->last_status = 0;
    ln->last_function_error = false;
    /* A batch that failed before a partition of it was revoked goes on counting: when the
     * partition comes back, or (for the partitions that stayed) in the next batch. */
    for (size_t i = 0; i < ln->n; i++) {
        if (i > 0 && ln->items[i].lp == ln->items[i - 1].lp) {
            continue;
        }
        unsigned attempts = 0;
        unsigned invokes = 0;
        char first[LANE_ID_MAX];
        if (sl_memo_take(ls->memo, lane_part(ln, i)->id, lane_item_id(ln, i, first), &attempts,
                         &invokes)) {
            sl_log_info(LANE_COMP, ls->inst,
                        "%s came back: the batch from %s keeps its %u counted failures",
                        lane_part(ln, i)->name, first, attempts);
            ln->attempts = attempts > ln->attempts ? attempts : ln->attempts;
            ln->invokes = invokes > ln->invokes ? invokes : ln->invokes;
        }
    }
    lane_attempt(ln);
}

/* A partition whose records may join a batch led by another: no batch of its own, nothing
 * waiting for the disk, not revoked. */
static bool part_may_join(struct sl_lane_part *lp)
{
    return !lp->revoked && !lp->released && !lp->carrier && lp->n_lanes == 1 &&
           lp->lanes[0].state == SL_LANE_IDLE && !sl_progress_part_waits_for_disk(lp->prog);
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
    for (size_t k = 1; !oversize && k < ls->n_parts && ln->n < total; k++) {
        struct sl_lane_part *other = ls->parts[(at + k) % ls->n_parts];
        size_t b = 0;
        bool big = false;
        size_t w = part_may_join(other)
                       ? lane_count_waiting(&other->lanes[0], total - ln->n, &b, &big)
                       : 0;
        if (w == 0 || (big && w == 1)) {
            continue;
        }
        lane_take(ln, &other->lanes[0], w);
        other->carrier = ln;
        uv_timer_stop(&other->lanes[0].timer);
    }
    lane_start(ln);
}

/* Starts the lane's next batch if one is due, or arms the window timer. */
static void lane_dispatch(struct sl_lane *ln)
{
    struct sl_lane_part *lp = ln->lp;
    struct sl_lanes *ls = lp->ls;
    if (ln->state == SL_LANE_READY) {
        if (lanes_have_slot(ls) && !ls->draining) {
            lane_invoke(ln);
        }
        return;
    }
    if (ls->draining || ln->state != SL_LANE_IDLE || sl_progress_part_waits_for_disk(lp->prog)) {
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
    int64_t window_start =
        ls->ops->caps->window_rule == SL_WINDOW_FROM_FIRST_RECORD || first_wait_ms > ln->last_end_ms
            ? first_wait_ms
            : ln->last_end_ms;
    int64_t due =
        stop_at_oversize ? INT64_MIN : sl_batcher_due_ms(&ls->lim, waiting, bytes, window_start);
    if (!lane_may_form(ln, due, waiting)) {
        return;
    }
    lane_take(ln, ln, waiting);
    lane_start(ln);
}

/* --- the lanes' life --- */

int sl_lanes_new(const struct sl_lanes_conf *conf,
                 const struct sl_lane_host *host,
                 struct sl_lanes **ret_ls)
{
    struct sl_lanes *ls = sl_calloc(1, sizeof(*ls));
    struct sl_memo *memo = sl_memo_new();
    if (!ls || !memo) {
        sl_free(ls);
        sl_memo_free(memo);
        return SL_ENOMEM;
    }
    ls->inst = conf->inst;
    ls->loop = conf->loop;
    ls->clock = conf->clock;
    ls->ops = conf->ops;
    ls->src_ctx = conf->src_ctx;
    ls->fn = conf->fn;
    ls->onfail = conf->onfail;
    ls->lim = conf->lim;
    ls->policy = conf->policy;
    ls->max_concurrency = conf->max_concurrency;
    ls->max_record_age_s = conf->max_record_age_s;
    ls->window_ms = conf->window_ms;
    ls->lanes_per_part = conf->lanes_per_part;
    ls->spans = ls->ops->caps->batch_spans_partitions && ls->ops->encode_next_part &&
                ls->window_ms <= 0 && ls->lanes_per_part == 1;
    ls->host = *host;
    sl_retry_policy_default(&ls->retry);
    ls->rng = conf->seed ? conf->seed : 0x9E3779B97F4A7C15ULL;
    ls->memo = memo;
    *ret_ls = ls;
    return 0;
}

static void lanes_destroy(struct sl_lanes *ls)
{
    sl_memo_free(ls->memo);
    sl_free(ls->parts);
    sl_free(ls);
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
    ls->draining = true;
    for (size_t i = 0; i < ls->n_parts; i++) {
        struct sl_lane_part *lp = ls->parts[i];
        for (size_t l = 0; l < lp->n_lanes; l++) {
            struct sl_lane *ln = &lp->lanes[l];
            uv_timer_stop(&ln->timer);
            if (ln->state == SL_LANE_BACKOFF || ln->state == SL_LANE_WRITE_BACKOFF ||
                ln->state == SL_LANE_READY) {
                ln->state = SL_LANE_IDLE;
            }
        }
    }
}

int sl_lanes_in_flight(const struct sl_lanes *ls)
{
    return ls->in_flight;
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
    for (size_t l = 0; ok && l < n_lanes && ls->window_ms > 0; l++) {
        lanes[l].win = sl_window_new(ls->window_ms);
        ok = lanes[l].win != NULL;
    }
    if (!ok) {
        for (size_t l = 0; lanes && l < n_lanes; l++) {
            sl_window_free(lanes[l].win);
        }
        sl_free(lanes);
        sl_free(lp);
        return SL_ENOMEM;
    }
    lp->ls = ls;
    lp->part = part;
    lp->prog = prog;
    lp->owner = owner;
    lp->lanes = lanes;
    lp->n_lanes = n_lanes;
    for (size_t l = 0; l < n_lanes; l++) {
        struct sl_lane *ln = &lanes[l];
        ln->lp = lp;
        sl_buf_init(&ln->body);
        uv_timer_init(ls->loop, &ln->timer);
        ln->timer.data = ln;
    }
    lp->open_timers = n_lanes;
    ls->open_parts++;
    ls->parts[ls->n_parts++] = lp;
    *ret_lp = lp;
    return 0;
}

static void lane_part_timer_close_cb(uv_handle_t *h)
{
    struct sl_lane *ln = h->data;
    struct sl_lane_part *lp = ln->lp;
    if (--lp->open_timers > 0) {
        return;
    }
    struct sl_lanes *ls = lp->ls;
    void *owner = lp->owner;
    for (size_t l = 0; l < lp->n_lanes; l++) {
        struct sl_lane *x = &lp->lanes[l];
        sl_free(x->items);
        sl_free(x->refs);
        sl_free(x->todo);
        sl_buf_fini(&x->body);
        sl_onfail_write_free(x->ofw);
        sl_window_free(x->win);
    }
    sl_free(lp->lanes);
    sl_free(lp);
    ls->host.part_closed(ls->host.arg, owner);
    if (--ls->open_parts == 0 && ls->freeing) {
        lanes_destroy(ls);
    }
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
        uv_timer_stop(&lp->lanes[l].timer);
        uv_close((uv_handle_t *)&lp->lanes[l].timer, lane_part_timer_close_cb);
    }
}

void sl_lane_part_dispatch(struct sl_lane_part *lp)
{
    for (size_t l = 0; l < lp->n_lanes && !lp->released; l++) {
        lane_dispatch(&lp->lanes[l]);
    }
}

bool sl_lane_part_is_busy(const struct sl_lane_part *lp)
{
    if (lp->carrier) {
        return true;
    }
    for (size_t l = 0; l < lp->n_lanes; l++) {
        enum sl_lane_state st = lp->lanes[l].state;
        if (st == SL_LANE_INVOKING || st == SL_LANE_WRITING) {
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
        if (lp->lanes[l].state != SL_LANE_IDLE) {
            return false;
        }
    }
    return true;
}

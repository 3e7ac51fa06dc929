/* SPDX-License-Identifier: Apache-2.0 */
/* carry.c: what one lane carries, a batch, from its first attempt to its end. It encodes the batch
 * (cut where the 6 MB payload demands), invokes the function, and carries out the invoker's verdict
 * on each answer: done, retry after a backoff, split in two (BisectBatchOnFunctionError), resume
 * after the lowest failed record (partial batch responses; response.c reads the answer into the
 * verdict), or give the records to the on-failure path (onfailure.c): the destination when there
 * is one, else a log line and the dropped count.
 * Records older than MaximumRecordAgeInSeconds and records that can never fit an event take that
 * path before an attempt. With tumbling windows it keeps the window's state (window.c) and sends
 * its final invocation. Where batches span partitions (Kafka, esm.md §3), a partial batch response
 * resumes each partition after its own lowest failed record. A batch holding a revoked partition is
 * abandoned: a failing one leaves its retry state in a memo (memo.c), the other partitions' records
 * are offered again. It never moves a checkpoint itself: it marks records done and lets progress.c
 * advance each partition's low-watermark. For a queue source each record ends on its own
 * (queuebatch.c): acked when delivered, released otherwise, never retried in process. The lanes
 * above (lane.c) form batches and own the partitions; what they must know they learn through the
 * host interface they gave, and the carry calls nothing of theirs otherwise. Making and freeing
 * the carries and their group is carry_life.c's, which shares their state through carry_int.h.
 * Loop thread. */
#include "carry.h"
#include "carry_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "failrec.h"
#include "function.h"
#include "lanebatch.h"
#include "log.h"
#include "memo.h"
#include "queuebatch.h"
#include "response.h"
#include "retry.h"
#include "source.h"

#define CARRY_COMP     "carry"
#define CARRY_RETRY_MS 1000
#define CARRY_BUF_KEEP (64 * 1024) /* an idle lane's event buffers keep at most this */

static void carry_attempt(struct sl_carry *c);
static void carry_continue(struct sl_carry *c);

static void carry_count(struct sl_carry_group *g, enum sl_carry_stat stat, uint64_t n)
{
    g->host.count(g->host.arg, stat, n);
}

static bool carry_is_revoked(const struct sl_carry *c, void *part_tag)
{
    return c->g->host.is_revoked(c->g->host.arg, part_tag);
}

/* The source is a queue (sources/README.md "The queue model"): records end one by one. */
static bool carry_is_queue(const struct sl_carry_group *g)
{
    return g->ops->caps->model == SL_DELIVERY_QUEUE;
}

/* Ends the batch: its partitions may join other batches again. */
static void carry_release_parts(struct sl_carry *c)
{
    struct sl_carry_group *g = c->g;
    for (size_t i = 0; i < sl_lanebatch_count(c->b); i++) {
        if (sl_lanebatch_starts_group(c->b, i, 0)) {
            g->host.let_go(g->host.arg, sl_lanebatch_tag(c->b, i), c->lane_tag);
        }
    }
    sl_lanebatch_clear(c->b);
}

/* --- abandoning a batch, and the on-failure path --- */

static void carry_timer_cb(uv_timer_t *t);

static void carry_backoff(struct sl_carry *c, enum sl_carry_state state, int64_t delay_ms)
{
    c->state = state;
    uv_timer_start(&c->timer, carry_timer_cb, (uint64_t)delay_ms, 0);
}

/* Drops the lane's batch because a partition it holds was revoked. A batch that had failed leaves
 * its retry state behind for each partition (for when the partition comes back, or for the next
 * batch of one that stays); the records of partitions that stay are offered again (at-least-once: a
 * rebalance may repeat them). With settle, revoked partitions the batch held are released once
 * nothing holds them (c's own last: it may free c). */
static void carry_abandon(struct sl_carry *c, bool settle)
{
    struct sl_carry_group *g = c->g;
    uv_timer_stop(&c->timer);
    size_t n = sl_lanebatch_count(c->b);
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    if (n > 0 && cur.lo < cur.hi && (c->attempts > 0 || c->invokes > 0)) {
        for (size_t i = cur.lo; i < cur.hi; i++) {
            if (sl_lanebatch_starts_group(c->b, i, cur.lo)) {
                char id[SL_LANEBATCH_ID_MAX];
                sl_memo_put(g->memo, sl_lanebatch_part(c->b, i)->id,
                            sl_lanebatch_item_id(c->b, i, id), c->attempts, c->invokes);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct sl_record *rec = sl_lanebatch_rec(c->b, i);
        if (carry_is_revoked(c, sl_lanebatch_tag(c->b, i)) || (rec->flags & SL_REC_DONE)) {
            continue;
        }
        rec->flags &= ~SL_REC_TAKEN;
        g->host.give_back(g->host.arg, sl_lanebatch_tag(c->b, i), sl_lanebatch_abs(c->b, i),
                          rec->lane);
    }
    void *own = c->part_tag;
    /* A revoked partition stays revoked and owned by the mapping until settled: collecting them
     * first keeps the handles valid while the lane lets go. */
    void **revoked = settle && n ? sl_calloc(n, sizeof(*revoked)) : NULL;
    size_t n_revoked = 0;
    for (size_t i = 0; revoked && i < n; i++) {
        void *tag = sl_lanebatch_tag(c->b, i);
        if (carry_is_revoked(c, tag) && tag != own &&
            (n_revoked == 0 || revoked[n_revoked - 1] != tag)) {
            revoked[n_revoked++] = tag;
        }
    }
    carry_release_parts(c);
    c->state = SL_CARRY_IDLE;
    c->in_final = false;
    for (size_t i = 0; i < n_revoked; i++) {
        g->host.settle(g->host.arg, revoked[i]);
    }
    sl_free(revoked);
    g->host.schedule_pump(g->host.arg);
    if (settle) {
        g->host.settle(g->host.arg, own);
    }
}

/* An answer for a batch holding a partition that was revoked meanwhile: nothing of it counts any
 * more. */
static bool carry_abandon_if_revoked(struct sl_carry *c)
{
    bool revoked = carry_is_revoked(c, c->part_tag);
    for (size_t i = 0; i < sl_lanebatch_count(c->b) && !revoked; i++) {
        revoked = carry_is_revoked(c, sl_lanebatch_tag(c->b, i));
    }
    if (!revoked) {
        return false;
    }
    carry_abandon(c, true);
    return true;
}

/* The on-failure path's answer for the invocation record of c->dest. */
static void carry_written(void *arg, int err, const char *detail)
{
    struct sl_carry *c = arg;
    struct sl_carry_group *g = c->g;
    if (carry_abandon_if_revoked(c)) {
        return;
    }
    size_t n = c->dest.hi - c->dest.lo;
    if (err < 0) {
        int64_t delay = sl_onfail_write_failed(c->ofw, err, detail);
        if (g->draining) {
            c->state = SL_CARRY_IDLE;
            return;
        }
        carry_backoff(c, SL_CARRY_WRITE_BACKOFF, delay);
        return;
    }
    carry_count(g, SL_CARRY_STAT_DESTINATION_DELIVERED, n);
    sl_lanebatch_finish(c->b, c->dest);
    carry_continue(c);
}

/* Hands records cur.lo .. cur.lo+n of the batch to the on-failure path (onfailure.c): the
 * destination when there is one, in one write (one document for them all, or one per record
 * where the destination takes one per record; the checkpoint passes them once every document
 * landed), else a log line and the dropped count. Either way the lane carries on with the
 * rest. */
static void carry_give_up(struct sl_carry *c,
                          size_t n,
                          const char *condition,
                          enum sl_failrec_response response)
{
    struct sl_carry_group *g = c->g;
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    struct sl_lanebatch_range r = {cur.lo, cur.lo + n};
    sl_lanebatch_set_cur_lo(c->b, r.hi);
    char what[256];
    if (!sl_onfail_has_dest(g->onfail)) {
        sl_log_error(CARRY_COMP, g->inst, "%s: dropping %s (no on-failure destination)", condition,
                     sl_lanebatch_describe(c->b, r, what, sizeof(what)));
        carry_count(g, SL_CARRY_STAT_DROPPED, n);
        sl_lanebatch_finish(c->b, r);
        carry_continue(c);
        return;
    }
    if (!c->ofw) {
        c->ofw = sl_onfail_write_new(g->onfail, carry_written, c);
    }
    struct sl_onfail_why why = {
        .condition = condition,
        .response = response,
        .invoke_count = c->invokes,
        .status = c->last_status,
        .function_error = c->last_function_error,
    };
    c->dest = r;
    c->state = SL_CARRY_WRITING;
    if (!c->ofw ||
        sl_onfail_write_start(c->ofw, sl_lanebatch_refs(c->b, r), n, &why,
                              sl_lanebatch_describe(c->b, r, what, sizeof(what)), &c->body) < 0) {
        sl_log_error(CARRY_COMP, g->inst, "out of memory building an invocation record, retrying");
        sl_lanebatch_set_cur_lo(c->b, r.lo);
        carry_backoff(c, SL_CARRY_BACKOFF, CARRY_RETRY_MS);
    }
}

static bool group_has_slot(const struct sl_carry_group *g)
{
    return g->max_concurrency <= 0 || g->in_flight < g->max_concurrency;
}

/* --- tumbling windows --- */

/* Appends the window fields to the event in c->body; the event shape names the source. */
static int carry_window_wrap(struct sl_carry *c, bool final)
{
    struct sl_carry_group *g = c->g;
    struct sl_buf arn;
    sl_buf_init(&arn);
    int r = g->ops->event->encode_source_arn(g->ops, g->src_ctx, c->part, &arn);
    if (r == 0) {
        r = sl_window_add_fields(c->win, &c->body, arn.data ? arn.data : "", c->part->name, final);
    }
    sl_buf_fini(&arn);
    return r;
}

/* The window closed: its records are done, so the checkpoint may pass them; its state goes. */
static void carry_window_close(struct sl_carry *c)
{
    sl_window_close(c->win, &c->part->q);
    c->in_final = false;
    (void)sl_progress_part_advance(c->prog);
}

static void carry_invoke(struct sl_carry *c);

/* Sends the window's final invocation: no records, isFinalInvokeForWindow. */
static void carry_final_invoke(struct sl_carry *c)
{
    struct sl_carry_group *g = c->g;
    sl_buf_truncate(&c->body, 0);
    int r = sl_batcher_open(g->ops, g->src_ctx, c->part, &c->body);
    r = r < 0 ? r : sl_batcher_close(g->ops, g->src_ctx, c->part, &c->body);
    r = r < 0 ? r : carry_window_wrap(c, true);
    if (r < 0) {
        sl_log_error(CARRY_COMP, g->inst,
                     "cannot build the final invocation of a window: %s, "
                     "retrying",
                     sl_strerror(r));
        c->state = SL_CARRY_BACKOFF;
        uv_timer_start(&c->timer, carry_timer_cb, CARRY_RETRY_MS, 0);
        return;
    }
    c->in_final = true;
    sl_lanebatch_clear(c->b);
    c->invokes = 0;
    if (!group_has_slot(g)) {
        c->state = SL_CARRY_READY;
        return;
    }
    carry_invoke(c);
}

/* --- invocations --- */

static void carry_invoked(void *arg, const struct sl_invoke_result *res);

static void carry_invoke(struct sl_carry *c)
{
    struct sl_carry_group *g = c->g;
    c->state = SL_CARRY_INVOKING;
    c->invokes++;
    if (c->invokes == 1) {
        c->first_invoke_ms = sl_clock_now_ms(g->clock);
    }
    g->in_flight++;
    carry_count(g, SL_CARRY_STAT_BATCHES, 1);
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    carry_count(g, SL_CARRY_STAT_INVOKED, cur.hi - cur.lo);
    if (c->invokes > 1) {
        carry_count(g, SL_CARRY_STAT_RETRIED, cur.hi - cur.lo);
    }
    if (carry_is_queue(g)) {
        /* the leases stay invisible while the function may run (renewed on each attempt) */
        sl_queuebatch_hold(g->ops, g->src_ctx, c->b, cur,
                           sl_clock_now_ms(g->clock) + g->queue_hold_ms);
    }
    int r = sl_function_invoke(g->fn, c->body.data, c->body.len, carry_invoked, c);
    if (r < 0) {
        struct sl_invoke_result res = {
            .outcome = SL_OUTCOME_TRANSPORT_ERROR,
            .detail = sl_strerror(r),
            .retry_after_ms = -1,
        };
        carry_invoked(c, &res);
    }
}

static void carry_log_failure(struct sl_carry *c,
                              const struct sl_invoke_result *res,
                              const char *what,
                              int64_t delay)
{
    struct sl_carry_group *g = c->g;
    char status[32] = "";
    if (res->status) {
        (void)snprintf(status, sizeof(status), " status %d", res->status);
    }
    char batch[256] = "the window's final invocation";
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    if (cur.lo < cur.hi) {
        sl_lanebatch_describe(c->b, cur, batch, sizeof(batch));
    }
    sl_log_warn(CARRY_COMP, g->inst,
                "batch of %s: %s%s%s%s%s%s; %s in %" PRId64 "ms (invocation %u, %u counted)", batch,
                sl_outcome_name(res->outcome), status, res->error_type ? " " : "",
                res->error_type ? res->error_type : "", res->detail ? ": " : "",
                res->detail ? res->detail : "", what, delay, c->invokes, c->attempts);
}

/* The verdict for a queue's batch: the delivered records are acked, the others released to
 * their running visibility timeout (the queue's redrive policy counts the receive): no retry
 * in process, no bisection, no on-failure path. Only an invocation that never reached the
 * function (throttle, service or transport error) is tried again, not counted, its leases
 * held anew at the next attempt, as long as that hold stays within queue_max_hold_ms of the
 * batch's first invocation (AWS retries a throttled SQS batch only while its messages can stay
 * invisible); past it the batch is released to its running visibility timeout. */
static void carry_queue_verdict(struct sl_carry *c, const struct sl_invoke_result *res)
{
    struct sl_carry_group *g = c->g;
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    size_t n = cur.hi - cur.lo;
    bool not_run =
        res->outcome == SL_OUTCOME_THROTTLE || res->outcome == SL_OUTCOME_SERVICE_ERROR ||
        res->outcome == SL_OUTCOME_TRANSPORT_ERROR || res->outcome == SL_OUTCOME_RESOURCE_EXHAUSTED;
    int64_t visible_in_ms = not_run ? 0 : SL_QUEUE_KEEP_VISIBILITY;
    if (not_run && !g->draining) {
        int64_t delay = sl_retry_delay_ms(&g->retry, c->invokes, &g->rng);
        if (res->outcome == SL_OUTCOME_THROTTLE && res->retry_after_ms > delay) {
            delay = res->retry_after_ms < g->retry.max_ms ? res->retry_after_ms : g->retry.max_ms;
        }
        int64_t until = sl_clock_now_ms(g->clock) + delay + g->queue_hold_ms;
        if (until <= c->first_invoke_ms + g->queue_max_hold_ms) {
            carry_log_failure(c, res, "not counted, retrying", delay);
            carry_backoff(c, SL_CARRY_BACKOFF, delay);
            return;
        }
        visible_in_ms = SL_QUEUE_KEEP_VISIBILITY;
        carry_log_failure(c, res, "the queue cannot hold it longer; left to its visibility timeout",
                          0);
    }
    size_t acked = 0;
    size_t n_failed = sl_queuebatch_settle(g->ops, g->src_ctx, c->b, cur, res,
                                           g->policy.report_item_failures, visible_in_ms, &acked);
    carry_count(g, SL_CARRY_STAT_QUEUE_ACKED, acked);
    if (n_failed > 0) {
        carry_count(g, SL_CARRY_STAT_FAILED, n_failed);
        carry_log_failure(c, res, "released to the queue's visibility timeout", 0);
    }
    if (n_failed < n) {
        carry_count(g, SL_CARRY_STAT_DELIVERED, n - n_failed);
        carry_count(g, SL_CARRY_STAT_BYTES, n_failed == 0 ? c->body.len : 0);
    }
    sl_lanebatch_set_cur_lo(c->b, cur.hi);
    sl_lanebatch_finish(c->b, cur);
    carry_continue(c);
}

static void carry_invoked(void *arg, const struct sl_invoke_result *res)
{
    struct sl_carry *c = arg;
    struct sl_carry_group *g = c->g;
    g->in_flight--;
    if (carry_abandon_if_revoked(c)) {
        return;
    }
    c->last_end_ms = sl_clock_now_ms(g->clock);
    if (carry_is_queue(g)) {
        carry_queue_verdict(c, res);
        return;
    }
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    size_t n = cur.hi - cur.lo;
    if (c->in_final) {
        if (res->outcome == SL_OUTCOME_SUCCESS) {
            carry_window_close(c);
            carry_continue(c);
            return;
        }
        int64_t delay = sl_retry_delay_ms(&g->retry, c->invokes, &g->rng);
        carry_log_failure(c, res, "the window's final invocation failed, retrying", delay);
        if (g->draining) {
            c->state = SL_CARRY_IDLE;
            return;
        }
        carry_backoff(c, SL_CARRY_BACKOFF, delay);
        return;
    }
    struct sl_response rsp;
    sl_response_read(&rsp, res, &g->policy, c->win != NULL, c->b, n, c->attempts, g->inst,
                     g->warned_key, sizeof(g->warned_key));
    res = rsp.res;
    const struct sl_partial *pp = rsp.pp;
    char *new_state = rsp.new_state;
    size_t new_state_len = rsp.new_state_len;
    struct sl_verdict v = rsp.v;
    if (v.action != SL_VERDICT_DONE) {
        carry_count(g, SL_CARRY_STAT_FAILED,
                    pp && pp->kind == SL_PARTIAL_SOME_FAILED ? pp->n_failed : n);
        /* responseContext.statusCode is the Invoke API's: an exec function that ran and failed is a
         * 200 with a function error, whatever its exit status. */
        bool exec = strcmp(g->fn->ops->name, "exec") == 0;
        c->last_status = exec || res->status <= 0 ? 200 : res->status;
        c->last_function_error = v.function_error;
    }
    if (v.counted) {
        c->attempts++;
    }
    if (v.done_prefix > 0) {
        /* cur as reordered by a partial response */
        cur = sl_lanebatch_cur(c->b);
        struct sl_lanebatch_range done = {cur.lo, cur.lo + v.done_prefix};
        carry_count(g, SL_CARRY_STAT_DELIVERED, v.done_prefix);
        carry_count(g, SL_CARRY_STAT_BYTES, v.action == SL_VERDICT_DONE ? c->body.len : 0);
        if (c->win) {
            /* Delivered, but the checkpoint passes them only once the window closes. */
            for (size_t i = done.lo; i < done.hi; i++) {
                sl_lanebatch_rec(c->b, i)->flags |= SL_REC_WINDOWED;
            }
            sl_window_delivered(c->win, sl_lanebatch_abs(c->b, done.hi - 1) + 1);
            sl_lanebatch_set_cur_lo(c->b, done.hi);
            (void)sl_progress_part_advance(c->prog);
        } else {
            sl_lanebatch_set_cur_lo(c->b, done.hi);
            sl_lanebatch_finish(c->b, done);
        }
    }
    if (new_state && sl_window_set_state(c->win, new_state, new_state_len)) {
        sl_log_warn(CARRY_COMP, g->inst,
                    "window state of %s is %zu bytes, over %u: ending the window early",
                    c->part->name, new_state_len, SL_WINDOW_STATE_MAX);
    }
    if (v.action == SL_VERDICT_DONE) {
        carry_continue(c);
        return;
    }
    if (g->draining) {
        carry_log_failure(c, res, "left for the next run", 0);
        c->state = SL_CARRY_IDLE;
        return;
    }
    if (v.action == SL_VERDICT_EXHAUSTED) {
        carry_log_failure(c, res, "retries exhausted, to the on-failure path", 0);
        cur = sl_lanebatch_cur(c->b);
        carry_give_up(c, cur.hi - cur.lo, SL_FAILREC_RETRIES_EXHAUSTED, SL_FAILREC_RESPONSE_OBJECT);
        return;
    }
    int64_t delay = sl_retry_delay_ms(&g->retry, c->invokes, &g->rng);
    if (res->outcome == SL_OUTCOME_THROTTLE && res->retry_after_ms > delay) {
        delay = res->retry_after_ms < g->retry.max_ms ? res->retry_after_ms : g->retry.max_ms;
    }
    if (v.action == SL_VERDICT_BISECT) {
        carry_log_failure(c, res, "splitting the batch in two, retrying", delay);
        cur = sl_lanebatch_cur(c->b);
        if (!sl_lanebatch_cut(c->b, cur.lo + (cur.hi - cur.lo) / 2)) {
            carry_backoff(c, SL_CARRY_BACKOFF, delay);
            return;
        }
        c->attempts = 0;
        c->invokes = 0;
    } else {
        carry_log_failure(c, res, "retrying", delay);
    }
    carry_backoff(c, SL_CARRY_BACKOFF, delay);
}

/* Moves on once cur is handled: the next part of the batch, or the next batch. */
static void carry_continue(struct sl_carry *c)
{
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    if (cur.lo < cur.hi) {
        carry_attempt(c);
        return;
    }
    if (sl_lanebatch_next(c->b)) {
        c->attempts = 0;
        c->invokes = 0;
        carry_attempt(c);
        return;
    }
    carry_release_parts(c);
    /* Idle, it keeps no event buffer beyond CARRY_BUF_KEEP: a mapping of hundreds of partitions
     * would otherwise hold each lane's largest event for ever (DESIGN.md rule 4). */
    if (c->body.cap > CARRY_BUF_KEEP) {
        sl_buf_fini(&c->body);
    }
    if (c->ofw) {
        sl_onfail_write_trim(c->ofw, CARRY_BUF_KEEP);
    }
    c->state = SL_CARRY_IDLE;
    struct sl_carry_group *g = c->g;
    c->last_end_ms = sl_clock_now_ms(g->clock);
    g->host.idle(g->host.arg, c->lane_tag);
}

/* Tries cur: records past MaximumRecordAgeInSeconds go to the on-failure path first, then the rest
 * is encoded (split further if the payload limit demands it) and invoked. */
static void carry_attempt(struct sl_carry *c)
{
    struct sl_carry_group *g = c->g;
    if (g->draining && carry_is_queue(g)) {
        /* a queue's records not invoked go back at once, visible to the next consumer */
        struct sl_lanebatch_range all = {0, sl_lanebatch_count(c->b)};
        sl_queuebatch_release(g->ops, g->src_ctx, c->b, all, 0);
        sl_lanebatch_finish(c->b, all);
        carry_release_parts(c);
        c->state = SL_CARRY_IDLE;
        return;
    }
    if (g->draining) {
        c->state = SL_CARRY_IDLE;
        return;
    }
    size_t expired = g->max_record_age_s < 0
                         ? 0
                         : sl_lanebatch_expired_front(c->b, sl_clock_wall_ms(g->clock) -
                                                                g->max_record_age_s * 1000);
    if (expired == SIZE_MAX) {
        carry_backoff(c, SL_CARRY_BACKOFF, CARRY_RETRY_MS);
        return;
    }
    if (expired > 0) {
        carry_give_up(c, expired, SL_FAILREC_RECORD_AGE, SL_FAILREC_RESPONSE_OMIT);
        return;
    }
    struct sl_lanebatch_range cur = sl_lanebatch_cur(c->b);
    if (sl_lanebatch_rec(c->b, cur.lo)->flags & SL_REC_OVERSIZE) {
        carry_give_up(c, 1, SL_FAILREC_PAYLOAD_TOO_LARGE, SL_FAILREC_RESPONSE_NULL);
        return;
    }
    size_t n = cur.hi - cur.lo;
    size_t encoded = 0;
    /* The source's event, or what a function that takes records wants (a delivery stream). */
    if (sl_function_encode(g->fn, &g->lim, g->ops, g->src_ctx, sl_lanebatch_refs(c->b, cur), n,
                           &c->body, &encoded) < 0) {
        sl_log_error(CARRY_COMP, g->inst, "out of memory building a batch of %s, retrying",
                     c->part->name);
        carry_backoff(c, SL_CARRY_BACKOFF, CARRY_RETRY_MS);
        return;
    }
    if (encoded == 0) {
        carry_give_up(c, 1, SL_FAILREC_PAYLOAD_TOO_LARGE, SL_FAILREC_RESPONSE_NULL);
        return;
    }
    if (encoded < n) {
        /* Over the payload limit: the rest becomes the next part of this batch. */
        if (!sl_lanebatch_cut(c->b, cur.lo + encoded)) {
            carry_backoff(c, SL_CARRY_BACKOFF, CARRY_RETRY_MS);
            return;
        }
    }
    if (c->win && carry_window_wrap(c, false) < 0) {
        sl_log_error(CARRY_COMP, g->inst, "out of memory building a batch of %s, retrying",
                     c->part->name);
        carry_backoff(c, SL_CARRY_BACKOFF, CARRY_RETRY_MS);
        return;
    }
    if (!group_has_slot(g)) {
        c->state = SL_CARRY_READY;
        return;
    }
    carry_invoke(c);
}

static void carry_timer_cb(uv_timer_t *t)
{
    struct sl_carry *c = t->data;
    switch (c->state) {
    case SL_CARRY_BACKOFF:
        if (c->in_final) {
            carry_final_invoke(c);
        } else {
            carry_attempt(c);
        }
        return;
    case SL_CARRY_WRITE_BACKOFF:
        if (c->g->draining) {
            c->state = SL_CARRY_IDLE;
            return;
        }
        c->state = SL_CARRY_WRITING;
        sl_onfail_write_again(c->ofw);
        return;
    case SL_CARRY_IDLE:
        c->g->host.due(c->g->host.arg, c->lane_tag);
        return;
    case SL_CARRY_READY:
    case SL_CARRY_INVOKING:
    case SL_CARRY_WRITING:
    case SL_CARRY_STATE_COUNT:
        return;
    }
}

void sl_carry_start(struct sl_carry *c)
{
    struct sl_carry_group *g = c->g;
    sl_lanebatch_begin(c->b);
    c->attempts = 0;
    c->invokes = 0;
    c->last_status = 0;
    c->last_function_error = false;
    /* A batch that failed before a partition of it was revoked goes on counting: when the partition
     * comes back, or (for the partitions that stayed) in the next batch. */
    for (size_t i = 0; i < sl_lanebatch_count(c->b); i++) {
        if (!sl_lanebatch_starts_group(c->b, i, 0)) {
            continue;
        }
        unsigned attempts = 0;
        unsigned invokes = 0;
        char first[SL_LANEBATCH_ID_MAX];
        if (sl_memo_take(g->memo, sl_lanebatch_part(c->b, i)->id,
                         sl_lanebatch_item_id(c->b, i, first), &attempts, &invokes)) {
            sl_log_info(CARRY_COMP, g->inst,
                        "%s came back: the batch from %s keeps its %u counted failures",
                        sl_lanebatch_part(c->b, i)->name, first, attempts);
            c->attempts = attempts > c->attempts ? attempts : c->attempts;
            c->invokes = invokes > c->invokes ? invokes : c->invokes;
        }
    }
    carry_attempt(c);
}

enum sl_carry_state sl_carry_state(const struct sl_carry *c)
{
    return c->state;
}

size_t sl_carry_count(const struct sl_carry *c)
{
    return sl_lanebatch_count(c->b);
}

int64_t sl_carry_last_end_ms(const struct sl_carry *c)
{
    return c->last_end_ms;
}

void sl_carry_wait(struct sl_carry *c, int64_t delay_ms)
{
    uv_timer_start(&c->timer, carry_timer_cb, (uint64_t)delay_ms, 0);
}

void sl_carry_wait_cancel(struct sl_carry *c)
{
    uv_timer_stop(&c->timer);
}

bool sl_carry_reserve(struct sl_carry *c, size_t n)
{
    return sl_lanebatch_reserve(c->b, n);
}

void sl_carry_add(struct sl_carry *c,
                  void *part_tag,
                  struct sl_part *part,
                  struct sl_progress_part *prog,
                  uint64_t abs)
{
    sl_lanebatch_add(c->b, part_tag, part, prog, abs);
}

void sl_carry_final(struct sl_carry *c)
{
    carry_final_invoke(c);
}

void sl_carry_send_ready(struct sl_carry *c)
{
    if (c->state == SL_CARRY_READY && group_has_slot(c->g) && !c->g->draining) {
        carry_invoke(c);
    }
}

void sl_carry_abandon(struct sl_carry *c)
{
    carry_abandon(c, false);
}

void sl_carry_stop(struct sl_carry *c)
{
    uv_timer_stop(&c->timer);
    c->state = SL_CARRY_IDLE;
}

void sl_carry_drain(struct sl_carry *c)
{
    uv_timer_stop(&c->timer);
    if (c->state == SL_CARRY_BACKOFF || c->state == SL_CARRY_WRITE_BACKOFF ||
        c->state == SL_CARRY_READY) {
        c->state = SL_CARRY_IDLE;
        if (carry_is_queue(c->g) && sl_lanebatch_count(c->b) > 0) {
            carry_attempt(c); /* draining: releases the batch's leases with visibility 0 */
        }
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* lane.c: one lane of a partition and the batches it carries. A lane takes the records of its
 * partition key hash in order, forms a batch (BatchSize, the window, the 6 MB payload), and
 * carries out the invoker's verdict on each answer: done, retry after a backoff, split in two
 * (BisectBatchOnFunctionError), resume after the lowest failed record (partial batch
 * responses), or give the records to the on-failure path: the destination when there is one,
 * else a log line and the dropped count. Records older than MaximumRecordAgeInSeconds and
 * records that can never fit an event take that path before an attempt. With tumbling windows
 * it also keeps the window's state and sends the window's final invocation. It never moves a
 * checkpoint itself: it marks records done and lets mapping.c advance the low-watermark.
 * Loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "failrec.h"
#include "log.h"
#include "mapping_int.h"
#include "window.h"

#define LANE_COMP     "lane"
#define LANE_RETRY_MS 1000
#define LANE_ID_MAX   320 /* a Kafka topic name is up to 249 characters */

static void lane_attempt(struct sl_lane *ln);
static void lane_continue(struct sl_lane *ln);

static struct sl_record *lane_rec(const struct sl_lane *ln, size_t i)
{
    struct sl_recq *q = &ln->mp->part->q;
    return sl_recq_at_mut(q, (size_t)(ln->abs[i] - q->dropped));
}

static void lane_mark_done(struct sl_lane *ln, struct sl_lane_range r)
{
    for (size_t i = r.lo; i < r.hi; i++) {
        lane_rec(ln, i)->flags |= SL_REC_DONE;
    }
}

/* --- the on-failure path --- */

static void lane_timer_cb(uv_timer_t *t);

static void lane_backoff(struct sl_lane *ln, enum sl_lane_state state, int64_t delay_ms)
{
    ln->state = state;
    uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)delay_ms, 0);
}

/* An answer for a partition that was revoked meanwhile: nothing of it counts any more. */
static bool lane_abandon_if_revoked(struct sl_lane *ln)
{
    if (!ln->mp->revoked) {
        return false;
    }
    ln->state = SL_LANE_IDLE;
    ln->n = 0;
    ln->n_todo = 0;
    sl_mapping_part_settle(ln->mp);
    return true;
}

static void lane_give_up(struct sl_lane *ln,
                         size_t n,
                         const char *condition,
                         enum sl_failrec_response response);

static void lane_written(void *arg, int err, const char *detail)
{
    struct sl_lane *ln = arg;
    struct sl_mapping *m = ln->mp->m;
    m->writes_in_flight--;
    if (lane_abandon_if_revoked(ln)) {
        return;
    }
    size_t n = ln->dest.hi - ln->dest.lo;
    if (err < 0) {
        int64_t delay = sl_retry_delay_ms(&m->retry, ++ln->write_failures, &m->rng);
        sl_log_warn(LANE_COMP, m->name,
                    "writing %zu records of %s to %s failed: %s%s%s, retrying in %" PRId64 "ms", n,
                    ln->mp->part->name, m->conf->on_failure, sl_strerror(err), detail ? ": " : "",
                    detail ? detail : "", delay);
        if (m->draining) {
            ln->state = SL_LANE_IDLE;
            return;
        }
        lane_backoff(ln, SL_LANE_WRITE_BACKOFF, delay);
        return;
    }
    m->stats.destination_delivered += n;
    lane_mark_done(ln, ln->dest);
    sl_mapping_part_advance(ln->mp);
    if (ln->give_up_rest > 0) {
        ln->give_up_rest--;
        lane_give_up(ln, 1, ln->give_up_condition, (enum sl_failrec_response)ln->give_up_response);
        return;
    }
    lane_continue(ln);
}

static void lane_write(struct sl_lane *ln)
{
    struct sl_mapping *m = ln->mp->m;
    struct sl_sink_doc doc = {
        .body = ln->doc.data,
        .len = ln->doc.len,
        .time_ms = sl_clock_wall_ms(m->env.clock),
    };
    if (m->dest.ops->one_doc_per_record && m->ops->record_key) {
        doc.key_len =
            m->ops->record_key(m->src_ctx, ln->mp->part, lane_rec(ln, ln->dest.lo), &doc.key);
        if (doc.key_len == 0) {
            doc.key = NULL; /* a null key stays null */
        }
    }
    ln->state = SL_LANE_WRITING;
    m->writes_in_flight++;
    int r = m->dest.ops->write(m->dest.ctx, &doc, lane_written, ln);
    if (r < 0) {
        lane_written(ln, r, "cannot start the write");
    }
}

/* Hands records cur.lo .. cur.lo+n of the batch to the on-failure path: the destination when
 * there is one (the checkpoint passes them once it has them), else a log line and the dropped
 * count. Either way the lane carries on with the rest. */
static void
lane_give_up(struct sl_lane *ln, size_t n, const char *condition, enum sl_failrec_response response)
{
    struct sl_mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    if (m->dest.ops && m->dest.ops->one_doc_per_record && n > 1) {
        /* One document per record: this one now, the others as each write lands. */
        ln->give_up_rest = n - 1;
        ln->give_up_condition = condition;
        ln->give_up_response = (int)response;
        n = 1;
    }
    struct sl_lane_range r = {ln->cur.lo, ln->cur.lo + n};
    ln->cur.lo += n;
    const struct sl_record *first = lane_rec(ln, r.lo);
    const struct sl_record *last = lane_rec(ln, r.hi - 1);
    if (!m->dest.ops) {
        sl_log_error(LANE_COMP, m->name,
                     "%s: dropping %zu records of %s from %" PRIu64 " to %" PRIu64
                     " (no on-failure destination)",
                     condition, n, mp->part->name, first->pos, last->pos);
        m->stats.dropped += n;
        lane_mark_done(ln, r);
        sl_mapping_part_advance(mp);
        lane_continue(ln);
        return;
    }
    /* The payload: the event those records made, when the destination keeps it. */
    size_t encoded = 0;
    int rc = 0;
    if (strcmp(condition, SL_FAILREC_PAYLOAD_TOO_LARGE) != 0) {
        for (size_t i = 0; i < n; i++) {
            ln->qidx[i] = (size_t)(ln->abs[r.lo + i] - mp->part->q.dropped);
        }
        rc = sl_batcher_encode(&m->lim, m->ops, m->src_ctx, mp->part, ln->qidx, n, &ln->body,
                               &encoded);
    }
    struct sl_failrec f = {
        .condition = condition,
        .function_arn = m->function_arn,
        .invoke_count = ln->invokes,
        .response = response,
        .status = ln->last_status ? ln->last_status : 200,
        .function_error = ln->last_function_error,
        .now_ms = sl_clock_wall_ms(m->env.clock),
        .request_id = {sl_retry_rand(&m->rng), sl_retry_rand(&m->rng)},
        .per_record = m->dest.ops->one_doc_per_record,
    };
    sl_buf_truncate(&ln->doc, 0);
    /* AWS's S3 destination keeps the payload, its SQS destination does not (a message is at
     * most 1 MiB, an event up to 6 MB); sluice's file and http destinations follow S3. */
    bool with_payload = rc == 0 && encoded == n && strcmp(m->dest.ops->name, "sqs") != 0;
    if (rc == 0) {
        rc = sl_failrec_build(&ln->doc, &f, m->ops, m->src_ctx, mp->part, first, last, n,
                              with_payload ? ln->body.data : NULL, ln->body.len);
    }
    if (rc < 0) {
        sl_log_error(LANE_COMP, m->name, "out of memory building an invocation record, retrying");
        ln->cur.lo = r.lo;
        lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
        return;
    }
    sl_log_warn(LANE_COMP, m->name,
                "%s: writing %zu records of %s from %" PRIu64 " to %" PRIu64 " to %s", condition, n,
                mp->part->name, first->pos, last->pos, m->conf->on_failure);
    ln->dest = r;
    ln->write_failures = 0;
    lane_write(ln);
}

static bool mapping_has_slot(const struct sl_mapping *m)
{
    return m->conf->max_concurrency <= 0 || m->in_flight < m->conf->max_concurrency;
}

/* --- tumbling windows --- */

static bool mapping_windowed(const struct sl_mapping *m)
{
    return m->conf->core.tumbling_window_s > 0;
}

static int64_t mapping_window_ms(const struct sl_mapping *m)
{
    return m->conf->core.tumbling_window_s * 1000;
}

/* Appends the window fields to the event in ln->body. */
static int lane_window_wrap(struct sl_lane *ln, bool final)
{
    struct sl_mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    struct sl_buf arn;
    sl_buf_init(&arn);
    int r = sl_buf_printf(&arn, "%s%s", m->ops->scheme, mp->part->name);
    struct sl_window_fields w = {
        .start_ms = ln->win_start_ms,
        .window_ms = mapping_window_ms(m),
        .state = ln->win_state ? ln->win_state : "{}",
        .state_len = ln->win_state ? ln->win_state_len : 2,
        .shard_id = mp->part->name,
        .arn = arn.data ? arn.data : "",
        .final = final,
        .terminated_early = final && ln->terminated_early,
    };
    if (r == 0) {
        r = sl_window_wrap(&ln->body, &w);
    }
    sl_buf_fini(&arn);
    return r;
}

/* The window closed: its records are done, so the checkpoint may pass them; its state goes. */
static void lane_window_close(struct sl_lane *ln)
{
    struct sl_mpart *mp = ln->mp;
    struct sl_recq *q = &mp->part->q;
    for (uint64_t a = ln->win_first_abs; a < ln->win_end_abs; a++) {
        if (a >= q->dropped && a - q->dropped < sl_recq_count(q)) {
            struct sl_record *rec = sl_recq_at_mut(q, (size_t)(a - q->dropped));
            if (rec->flags & SL_REC_WINDOWED) {
                rec->flags = (rec->flags & ~SL_REC_WINDOWED) | SL_REC_DONE;
            }
        }
    }
    sl_free(ln->win_state);
    ln->win_state = NULL;
    ln->win_open = false;
    ln->final_due = false;
    ln->in_final = false;
    bool early = ln->terminated_early;
    ln->terminated_early = false;
    sl_mapping_part_advance(mp);
    if (early) {
        /* The same window goes on with fresh state. */
        ln->win_open = true;
        ln->win_first_abs = ln->win_end_abs;
    }
}

static void lane_invoke(struct sl_lane *ln);

/* Sends the window's final invocation: no records, isFinalInvokeForWindow. */
static void lane_final_invoke(struct sl_lane *ln)
{
    struct sl_mapping *m = ln->mp->m;
    sl_buf_truncate(&ln->body, 0);
    int r = sl_batcher_open(m->ops, m->src_ctx, ln->mp->part, &ln->body);
    r = r < 0 ? r : sl_batcher_close(m->ops, m->src_ctx, ln->mp->part, &ln->body);
    r = r < 0 ? r : lane_window_wrap(ln, true);
    if (r < 0) {
        sl_log_error(LANE_COMP, m->name,
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
    if (!mapping_has_slot(m)) {
        ln->state = SL_LANE_READY;
        return;
    }
    lane_invoke(ln);
}

/* --- invocations --- */

static void lane_invoked(void *arg, const struct sl_invoke_result *res);

static void lane_invoke(struct sl_lane *ln)
{
    struct sl_mapping *m = ln->mp->m;
    ln->state = SL_LANE_INVOKING;
    ln->invokes++;
    m->in_flight++;
    m->stats.batches++;
    m->stats.invoked += ln->cur.hi - ln->cur.lo;
    if (ln->invokes > 1) {
        m->stats.retried += ln->cur.hi - ln->cur.lo;
    }
    int r = sl_function_invoke(m->env.fn, ln->body.data, ln->body.len, lane_invoked, ln);
    if (r < 0) {
        struct sl_invoke_result res = {
            .outcome = SL_OUTCOME_TRANSPORT_ERROR,
            .detail = sl_strerror(r),
            .retry_after_ms = -1,
        };
        lane_invoked(ln, &res);
    }
}

/* Reads a partial batch response against cur's item identifiers. */
static void
lane_read_partial(struct sl_lane *ln, const struct sl_invoke_result *res, struct sl_partial *ret)
{
    struct sl_mapping *m = ln->mp->m;
    size_t n = ln->cur.hi - ln->cur.lo;
    char *ids_buf = sl_malloc(n * LANE_ID_MAX);
    const char **ids = sl_calloc(n, sizeof(*ids));
    if (!ids_buf || !ids) {
        sl_free(ids_buf);
        sl_free(ids);
        memset(ret, 0, sizeof(*ret));
        ret->kind = SL_PARTIAL_INVALID;
        (void)snprintf(ret->detail, sizeof(ret->detail), "out of memory reading the response");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char *id = ids_buf + i * LANE_ID_MAX;
        const struct sl_record *rec = lane_rec(ln, ln->cur.lo + i);
        if (!m->ops->format_item_id ||
            m->ops->format_item_id(m->src_ctx, ln->mp->part, rec, id, LANE_ID_MAX) < 0) {
            (void)snprintf(id, LANE_ID_MAX, "%" PRIu64, rec->pos);
        }
        ids[i] = id;
    }
    sl_invoker_parse_partial(res->body, res->body_len, ids, n, ret);
    sl_free(ids);
    sl_free(ids_buf);
}

static void lane_log_failure(struct sl_lane *ln,
                             const struct sl_invoke_result *res,
                             const char *what,
                             int64_t delay)
{
    struct sl_mapping *m = ln->mp->m;
    char status[32] = "";
    if (res->status) {
        (void)snprintf(status, sizeof(status), " status %d", res->status);
    }
    sl_log_warn(LANE_COMP, m->name,
                "batch of %zu records of %s from %" PRIu64 ": %s%s%s%s%s%s; %s in %" PRId64
                "ms (invocation %u, %u counted)",
                ln->cur.hi - ln->cur.lo, ln->mp->part->name, lane_rec(ln, ln->cur.lo)->pos,
                sl_outcome_name(res->outcome), status, res->error_type ? " " : "",
                res->error_type ? res->error_type : "", res->detail ? ": " : "",
                res->detail ? res->detail : "", what, delay, ln->invokes, ln->attempts);
}

static void lane_invoked(void *arg, const struct sl_invoke_result *res)
{
    struct sl_lane *ln = arg;
    struct sl_mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    m->in_flight--;
    if (lane_abandon_if_revoked(ln)) {
        return;
    }
    ln->last_end_ms = sl_mapping_now(m);
    size_t n = ln->cur.hi - ln->cur.lo;
    if (ln->in_final) {
        if (res->outcome == SL_OUTCOME_SUCCESS) {
            lane_window_close(ln);
            lane_continue(ln);
            return;
        }
        int64_t delay = sl_retry_delay_ms(&m->retry, ln->invokes, &m->rng);
        lane_log_failure(ln, res, "the window's final invocation failed, retrying", delay);
        if (m->draining) {
            ln->state = SL_LANE_IDLE;
            return;
        }
        lane_backoff(ln, SL_LANE_BACKOFF, delay);
        return;
    }
    struct sl_invoke_result windowed_res;
    char *new_state = NULL;
    size_t new_state_len = 0;
    if (mapping_windowed(m) && res->outcome == SL_OUTCOME_SUCCESS &&
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
    if (res->outcome == SL_OUTCOME_SUCCESS && m->policy.report_item_failures) {
        lane_read_partial(ln, res, &partial);
        pp = &partial;
        if (partial.unknown_key[0] && strcmp(partial.unknown_key, m->warned_key) != 0) {
            sl_log_warn(LANE_COMP, m->name,
                        "the function's response has the key \"%s\" but no batchItemFailures; "
                        "AWS counts such a batch as fully delivered, and so does sluice (is it "
                        "misspelt?)",
                        partial.unknown_key);
            (void)snprintf(m->warned_key, sizeof(m->warned_key), "%s", partial.unknown_key);
        }
        if (partial.kind == SL_PARTIAL_INVALID) {
            sl_log_warn(LANE_COMP, m->name,
                        "invalid partial batch response for %zu records of %s: %s; the whole "
                        "batch failed",
                        n, mp->part->name, partial.detail);
        }
    }
    struct sl_verdict v;
    sl_invoker_judge(&m->policy, res, pp, n, ln->attempts, &v);
    if (v.action != SL_VERDICT_DONE) {
        m->stats.failed += pp && pp->kind == SL_PARTIAL_SOME_FAILED ? pp->n_failed : n;
        /* responseContext.statusCode is the Invoke API's: an exec function that ran and
         * failed is a 200 with a function error, whatever its exit status. */
        bool exec = strcmp(m->env.fn->ops->name, "exec") == 0;
        ln->last_status = exec || res->status <= 0 ? 200 : res->status;
        ln->last_function_error = v.function_error;
    }
    if (v.counted) {
        ln->attempts++;
    }
    if (v.done_prefix > 0) {
        struct sl_lane_range done = {ln->cur.lo, ln->cur.lo + v.done_prefix};
        m->stats.delivered += v.done_prefix;
        m->stats.bytes += v.action == SL_VERDICT_DONE ? ln->body.len : 0;
        if (mapping_windowed(m)) {
            /* Delivered, but the checkpoint passes them only once the window closes. */
            for (size_t i = done.lo; i < done.hi; i++) {
                lane_rec(ln, i)->flags |= SL_REC_WINDOWED;
            }
            ln->win_end_abs = ln->abs[done.hi - 1] + 1;
        } else {
            lane_mark_done(ln, done);
        }
        ln->cur.lo = done.hi;
        sl_mapping_part_advance(mp);
    }
    if (new_state) {
        sl_free(ln->win_state);
        ln->win_state = new_state;
        ln->win_state_len = new_state_len;
        if (new_state_len > SL_WINDOW_STATE_MAX) {
            sl_log_warn(LANE_COMP, m->name,
                        "window state of %s is %zu bytes, over %u: ending the window early",
                        mp->part->name, new_state_len, SL_WINDOW_STATE_MAX);
            ln->final_due = true;
            ln->terminated_early = true;
        }
    }
    if (v.action == SL_VERDICT_DONE) {
        lane_continue(ln);
        return;
    }
    if (m->draining) {
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
    int64_t delay = sl_retry_delay_ms(&m->retry, ln->invokes, &m->rng);
    if (res->outcome == SL_OUTCOME_THROTTLE && res->retry_after_ms > delay) {
        delay = res->retry_after_ms < m->retry.max_ms ? res->retry_after_ms : m->retry.max_ms;
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
    ln->n = 0;
    ln->state = SL_LANE_IDLE;
    ln->last_end_ms = sl_mapping_now(ln->mp->m);
    if (ln->mp->gone && sl_recq_count(&ln->mp->part->q) == 0) {
        sl_mapping_part_release(ln->mp);
        return;
    }
    sl_mapping_schedule_pump(ln->mp->m);
}

/* Tries cur: records past MaximumRecordAgeInSeconds go to the on-failure path first, then the
 * rest is encoded (split further if the payload limit demands it) and invoked. */
static void lane_attempt(struct sl_lane *ln)
{
    struct sl_mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    if (m->draining) {
        ln->state = SL_LANE_IDLE;
        return;
    }
    int64_t max_age_s = m->conf->core.max_record_age_s;
    if (max_age_s >= 0) {
        int64_t oldest = sl_clock_wall_ms(m->env.clock) - max_age_s * 1000;
        size_t expired = 0;
        while (ln->cur.lo + expired < ln->cur.hi &&
               lane_rec(ln, ln->cur.lo + expired)->arrival_ms < oldest) {
            expired++;
        }
        if (expired > 0) {
            lane_give_up(ln, expired, SL_FAILREC_RECORD_AGE, SL_FAILREC_RESPONSE_OMIT);
            return;
        }
    }
    if (lane_rec(ln, ln->cur.lo)->flags & SL_REC_OVERSIZE) {
        lane_give_up(ln, 1, SL_FAILREC_PAYLOAD_TOO_LARGE, SL_FAILREC_RESPONSE_NULL);
        return;
    }
    size_t n = ln->cur.hi - ln->cur.lo;
    for (size_t i = 0; i < n; i++) {
        ln->qidx[i] = (size_t)(ln->abs[ln->cur.lo + i] - mp->part->q.dropped);
    }
    size_t encoded = 0;
    if (sl_batcher_encode(&m->lim, m->ops, m->src_ctx, mp->part, ln->qidx, n, &ln->body, &encoded) <
        0) {
        sl_log_error(LANE_COMP, m->name, "out of memory building a batch of %s, retrying",
                     mp->part->name);
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
    if (mapping_windowed(m) && lane_window_wrap(ln, false) < 0) {
        sl_log_error(LANE_COMP, m->name, "out of memory building a batch of %s, retrying",
                     mp->part->name);
        lane_backoff(ln, SL_LANE_BACKOFF, LANE_RETRY_MS);
        return;
    }
    if (!mapping_has_slot(m)) {
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
        if (ln->mp->m->draining) {
            ln->state = SL_LANE_IDLE;
            return;
        }
        lane_write(ln);
        return;
    case SL_LANE_IDLE:
        sl_lane_dispatch(ln);
        return;
    case SL_LANE_READY:
    case SL_LANE_INVOKING:
    case SL_LANE_WRITING:
        return;
    }
}

static bool lane_grow(struct sl_lane *ln, size_t n)
{
    if (n <= ln->cap) {
        return true;
    }
    uint64_t *abs = sl_realloc(ln->abs, n * sizeof(*abs));
    size_t *qidx = sl_realloc(ln->qidx, n * sizeof(*qidx));
    if (abs) {
        ln->abs = abs;
    }
    if (qidx) {
        ln->qidx = qidx;
    }
    if (!abs || !qidx) {
        return false;
    }
    ln->cap = n;
    return true;
}

/* The tumbling window's part of dispatching: closes a window that is over (by time, by the
 * next record's window, by its state's size, or because its records fill the partition's
 * buffer) with the final invocation, opens the window of the next record, and keeps a batch
 * inside one window. *waiting counts the lane's eligible records from start; it is cut to
 * those of the current window. Returns true when it took over (final invocation or a timer). */
static bool lane_window_dispatch(struct sl_lane *ln, size_t start, size_t *waiting)
{
    struct sl_mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    struct sl_recq *q = &mp->part->q;
    int64_t wms = mapping_window_ms(m);
    int64_t now = sl_clock_wall_ms(m->env.clock);
    const struct sl_record *first = NULL;
    size_t count = sl_recq_count(q);
    size_t in_window = 0;
    if (ln->win_open && ln->win_end_abs == ln->win_first_abs) {
        ln->win_open = false; /* nothing delivered in it yet: the next record opens its own */
    }
    for (size_t i = start; i < count && in_window < *waiting; i++) {
        const struct sl_record *rec = sl_recq_at(q, i);
        if (rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) {
            continue;
        }
        int64_t w = sl_window_start_ms(rec->arrival_ms, wms);
        if (!first) {
            first = rec;
            if (!ln->win_open) {
                ln->win_open = true;
                ln->win_start_ms = w;
                ln->win_first_abs = q->dropped + i;
                ln->win_end_abs = ln->win_first_abs;
            }
        }
        if (w > ln->win_start_ms) {
            break; /* the next window's: not in this batch */
        }
        in_window++;
    }
    if (ln->win_open && ln->win_end_abs > ln->win_first_abs) {
        size_t r = 0;
        size_t b = 0;
        bool full = in_window == 0 && !sl_mapping_part_fetch_budget(mp, &r, &b);
        bool next_window = first && in_window == 0;
        if (full && !ln->final_due) {
            ln->terminated_early = true;
        }
        bool over = in_window == 0 && now >= ln->win_start_ms + wms;
        if (ln->final_due || full || next_window || over) {
            lane_final_invoke(ln);
            return true;
        }
        if (in_window == 0) {
            uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)(ln->win_start_ms + wms - now), 0);
            return true;
        }
    }
    *waiting = in_window;
    return false;
}

/* Starts the lane's next batch if one is due, or arms the window timer. */
void sl_lane_dispatch(struct sl_lane *ln)
{
    struct sl_mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    if (ln->state == SL_LANE_READY) {
        if (mapping_has_slot(m) && !m->draining) {
            lane_invoke(ln);
        }
        return;
    }
    if (m->draining || ln->state != SL_LANE_IDLE || sl_mapping_part_waits_for_disk(mp)) {
        return;
    }
    struct sl_recq *q = &mp->part->q;
    size_t count = sl_recq_count(q);
    size_t lane_no = (size_t)(ln - mp->lanes);
    size_t waiting = 0;
    size_t bytes = 0;
    bool stop_at_oversize = false;
    size_t start = ln->scan > q->dropped ? (size_t)(ln->scan - q->dropped) : 0;
    for (size_t i = start; i < count && waiting < m->lim.max_records; i++) {
        const struct sl_record *rec = sl_recq_at(q, i);
        if ((rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) || rec->lane != lane_no) {
            continue;
        }
        if (rec->flags & SL_REC_OVERSIZE) {
            if (waiting == 0) {
                waiting = 1; /* alone: it goes straight to the on-failure path */
            }
            stop_at_oversize = true;
            break;
        }
        waiting++;
        bytes += rec->len;
    }
    if (mapping_windowed(m) && lane_window_dispatch(ln, start, &waiting)) {
        return;
    }
    if (waiting == 0) {
        return;
    }
    /* Streams open the next window when the previous invocation ends; Kafka opens it when
     * the first record arrives (esm.md §3). */
    int64_t window_start = m->ops->window_from_first_record || mp->first_wait_ms > ln->last_end_ms
                               ? mp->first_wait_ms
                               : ln->last_end_ms;
    int64_t due =
        stop_at_oversize ? INT64_MIN : sl_batcher_due_ms(&m->lim, waiting, bytes, window_start);
    int64_t now = sl_mapping_now(m);
    if (due > now) {
        uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)(due - now), 0);
        return;
    }
    if (!lane_grow(ln, waiting)) {
        sl_log_error(LANE_COMP, m->name, "out of memory forming a batch of %s, retrying",
                     mp->part->name);
        uv_timer_start(&ln->timer, lane_timer_cb, LANE_RETRY_MS, 0);
        return;
    }
    uv_timer_stop(&ln->timer);
    ln->n = 0;
    for (size_t i = start; i < count && ln->n < waiting; i++) {
        struct sl_record *rec = sl_recq_at_mut(q, i);
        if ((rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) || rec->lane != lane_no) {
            continue;
        }
        rec->flags |= SL_REC_TAKEN;
        ln->abs[ln->n++] = q->dropped + i;
    }
    ln->scan = ln->abs[ln->n - 1] + 1;
    ln->cur = (struct sl_lane_range){0, ln->n};
    ln->n_todo = 0;
    ln->attempts = 0;
    ln->invokes = 0;
    ln->last_status = 0;
    ln->last_function_error = false;
    /* A batch that failed before its partition was revoked and came back goes on counting. */
    if (sl_mapping_memo_take(m, mp->part->id, lane_rec(ln, 0)->pos, &ln->attempts, &ln->invokes)) {
        sl_log_info(LANE_COMP, m->name,
                    "%s came back: the batch from %" PRIu64 " keeps its %u counted failures",
                    mp->part->name, lane_rec(ln, 0)->pos, ln->attempts);
    }
    lane_attempt(ln);
}

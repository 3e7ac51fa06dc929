/* SPDX-License-Identifier: Apache-2.0 */
/* mapping.c: one event source mapping's state machine. It owns the partitions its source
 * reports and moves their records through fetch -> filter -> batch -> invoke -> checkpoint,
 * carrying out the invoker's verdicts (retry, bisect, resume after a partial failure, give up
 * to the on-failure destination). The rules of DESIGN.md live here:
 *   1. a record's position is checkpointed only once it and every record before it were
 *      delivered, filtered out, or written to the on-failure destination (or, without one,
 *      reported and counted as dropped);
 *   2. each partition has ParallelizationFactor lanes, records are spread over them by
 *      partition key, each lane has one batch in flight, and the checkpoint only moves as the
 *      contiguous low-watermark of done records;
 *   3. a crash repeats at most what was in flight and max_unsaved_batches per partition;
 *   4. fetching pauses at the mapping's memory bound (records and bytes).
 * A batch is a list of absolute record indices (the queue's count of dropped records plus the
 * index), so records stay put in the partition's queue until the low-watermark passes them.
 * Everything runs on the loop thread; time comes from the injected clock. */
#include "mapping.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "batcher.h"
#include "checkpoint.h"
#include "config.h"
#include "failrec.h"
#include "filter.h"
#include "function.h"
#include "invoker.h"
#include "log.h"
#include "partition.h"
#include "retry.h"
#include "sink.h"
#include "source.h"
#include "window.h"

#define MAPPING_COMP           "mapping"
#define MAPPING_FETCH_RETRY_MS 1000
#define MAPPING_POS_MAX        128
#define MAPPING_ID_MAX         128

enum lane_state {
    LANE_IDLE,          /* no batch: waiting for records or for the window to close */
    LANE_READY,         /* a batch waits for a concurrency slot */
    LANE_INVOKING,      /* an invocation is in flight */
    LANE_BACKOFF,       /* the batch failed; the timer sends it again */
    LANE_WRITING,       /* records are being written to the on-failure destination */
    LANE_WRITE_BACKOFF, /* that write failed; the timer writes again */
};

struct range {
    size_t lo; /* indices into the lane's batch */
    size_t hi;
};

/* One of a partition's ParallelizationFactor lanes: the records whose partition key hashes to
 * it, one batch at a time. */
struct lane {
    struct mpart *mp;
    enum lane_state state;
    uint64_t scan; /* absolute index after the lane's last taken record: every record of
                      this lane before it is taken already */
    uint64_t *abs; /* the batch: absolute record indices, ascending */
    size_t n;
    size_t cap;
    struct range cur;   /* the part of the batch being tried */
    struct range *todo; /* parts after it (from bisection); the last is next */
    size_t n_todo;
    size_t cap_todo;
    unsigned attempts; /* counted failures of cur */
    unsigned invokes;  /* invocations of cur (approximateInvokeCount) */
    int last_status;
    bool last_function_error;
    size_t *qidx;       /* scratch: queue indices of cur while encoding */
    struct sl_buf body; /* cur's event, as sent */
    struct sl_buf doc;  /* the invocation record being written */
    struct range dest;  /* the records doc covers */
    int64_t last_end_ms;
    /* Tumbling window (TumblingWindowInSeconds > 0; one lane per partition then). */
    bool win_open;
    int64_t win_start_ms; /* wall clock */
    char *win_state;      /* the state the next invocation receives (JSON object text) */
    size_t win_state_len;
    uint64_t win_first_abs; /* the window's records: [win_first_abs, win_end_abs) */
    uint64_t win_end_abs;
    bool final_due; /* the window is over: its final invocation comes next */
    bool terminated_early;
    bool in_final; /* the invocation in flight (or backing off) is the final one */
    uv_timer_t timer;
};

/* The mapping's state for one partition (part->owner). */
struct mpart {
    struct sl_mapping *m;
    struct sl_part *part;
    bool want_fetch;    /* the source may have more records */
    bool fetch_pending; /* an asynchronous fetch is running */
    bool fetch_failed;  /* the last fetch failed; retried by the mapping's timer */
    bool gone;          /* the source will produce no more */
    bool released;
    int64_t first_wait_ms; /* when the queue last became non-empty */
    size_t held_records;   /* what this partition counts against the mapping's bound */
    size_t held_bytes;
    uint64_t *undurable; /* store generations of checkpoints not on disk yet */
    size_t n_undurable;
    struct lane *lanes;
    size_t n_lanes;
    size_t open_timers;
};

struct sink {
    const struct sl_sink_ops *ops;
    void *ctx;
};

struct sl_mapping {
    const struct sl_mapping_conf *conf;
    struct sl_mapping_env env;
    char *name;
    char *function_arn;
    const struct sl_source_ops *ops;
    void *src_ctx;
    bool src_inited;
    struct sl_source_env senv;
    struct sl_ckpt *ck;
    struct sl_filter *filter;
    struct sink dest;
    struct sl_invoker_policy policy;
    struct mpart **parts;
    size_t n_parts;
    size_t cap_parts;
    uv_idle_t pump;
    uv_timer_t fetch_retry;
    int open_handles; /* the mapping is freed when its handles are closed */
    bool freeing;
    bool draining;
    int in_flight;        /* invocations */
    int writes_in_flight; /* on-failure destination writes */
    size_t held_records;
    size_t held_bytes;
    int64_t last_fetch_ms;
    struct sl_batch_limits lim;
    struct sl_retry_policy retry;
    uint64_t rng;
    char warned_key[64];
    struct sl_mapping_stats stats;
};

static void mapping_schedule_pump(struct sl_mapping *m);
static void lane_dispatch(struct lane *ln);
static void lane_attempt(struct lane *ln);
static void lane_continue(struct lane *ln);
static void part_release(struct mpart *mp);
static void mapping_fetch_retry_cb(uv_timer_t *t);

static int64_t mapping_now(const struct sl_mapping *m)
{
    return sl_clock_now_ms(m->env.clock);
}

static struct sl_record *lane_rec(const struct lane *ln, size_t i)
{
    struct sl_recq *q = &ln->mp->part->q;
    return sl_recq_at_mut(q, (size_t)(ln->abs[i] - q->dropped));
}

/* --- accounting and checkpoints --- */

/* Re-counts what a partition holds against the mapping's memory bound. */
static void part_account(struct mpart *mp)
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

/* How many records and bytes part may still fetch: two batches' worth per lane, within the
 * mapping's total. */
static bool part_fetch_budget(const struct mpart *mp, size_t *ret_records, size_t *ret_bytes)
{
    const struct sl_mapping *m = mp->m;
    const struct sl_mapping_core *core = &m->conf->core;
    size_t part_max_records = 2 * m->lim.max_records * mp->n_lanes;
    size_t part_max_bytes = 2 * SL_BATCH_MAX_PAYLOAD_BYTES;
    size_t total_records = (size_t)core->max_records_buffered;
    size_t total_bytes = (size_t)core->max_bytes_buffered;
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

/* Moves the checkpoint past the done records at the front of the queue and drops them. */
static void part_advance(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
    struct sl_part *part = mp->part;
    size_t count = sl_recq_count(&part->q);
    size_t n = 0;
    while (n < count && (sl_recq_at(&part->q, n)->flags & SL_REC_DONE)) {
        n++;
    }
    if (n == 0) {
        return;
    }
    const struct sl_record *last = sl_recq_at(&part->q, n - 1);
    char pos[MAPPING_POS_MAX];
    int r = 0;
    if (m->ops->format_pos) {
        r = m->ops->format_pos(m->src_ctx, part, last, pos, sizeof(pos));
    } else {
        (void)snprintf(pos, sizeof(pos), "%" PRIu64, last->next_pos);
    }
    if (r == 0) {
        r = sl_ckpt_set(m->ck, part->id, pos, part->meta);
    }
    if (r == 0 && mp->n_undurable < (size_t)m->conf->core.max_unsaved_batches) {
        mp->undurable[mp->n_undurable++] = sl_ckpt_generation(m->ck);
    }
    if (r < 0) {
        /* Only OOM gets here. Not moving the checkpoint repeats records after a crash; it
         * never skips one. */
        sl_log_error(MAPPING_COMP, m->name, "cannot record the checkpoint of %s: %s", part->name,
                     sl_strerror(r));
    }
    sl_recq_drop(&part->q, n);
    part_account(mp);
}

/* True when the partition has as many delivered batches waiting for the disk as it may. */
static bool part_waits_for_disk(struct mpart *mp)
{
    uint64_t durable = sl_ckpt_durable_generation(mp->m->ck);
    size_t n = 0;
    for (size_t i = 0; i < mp->n_undurable; i++) {
        if (mp->undurable[i] > durable) {
            mp->undurable[n++] = mp->undurable[i];
        }
    }
    mp->n_undurable = n;
    return n >= (size_t)mp->m->conf->core.max_unsaved_batches;
}

static void lane_mark_done(struct lane *ln, struct range r)
{
    for (size_t i = r.lo; i < r.hi; i++) {
        lane_rec(ln, i)->flags |= SL_REC_DONE;
    }
}

/* --- the on-failure path --- */

static void lane_timer_cb(uv_timer_t *t);

static void lane_backoff(struct lane *ln, enum lane_state state, int64_t delay_ms)
{
    ln->state = state;
    uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)delay_ms, 0);
}

static void lane_written(void *arg, int err, const char *detail)
{
    struct lane *ln = arg;
    struct sl_mapping *m = ln->mp->m;
    m->writes_in_flight--;
    size_t n = ln->dest.hi - ln->dest.lo;
    if (err < 0) {
        int64_t delay = sl_retry_delay_ms(&m->retry, 1 + ln->invokes, &m->rng);
        sl_log_warn(MAPPING_COMP, m->name,
                    "writing %zu records of %s to %s failed: %s%s%s, retrying in %" PRId64 "ms", n,
                    ln->mp->part->name, m->conf->on_failure, sl_strerror(err), detail ? ": " : "",
                    detail ? detail : "", delay);
        if (m->draining) {
            ln->state = LANE_IDLE;
            return;
        }
        lane_backoff(ln, LANE_WRITE_BACKOFF, delay);
        return;
    }
    m->stats.destination_delivered += n;
    lane_mark_done(ln, ln->dest);
    part_advance(ln->mp);
    lane_continue(ln);
}

static void lane_write(struct lane *ln)
{
    struct sl_mapping *m = ln->mp->m;
    struct sl_sink_doc doc = {
        .body = ln->doc.data,
        .len = ln->doc.len,
        .time_ms = sl_clock_wall_ms(m->env.clock),
    };
    ln->state = LANE_WRITING;
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
lane_give_up(struct lane *ln, size_t n, const char *condition, enum sl_failrec_response response)
{
    struct mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    struct range r = {ln->cur.lo, ln->cur.lo + n};
    ln->cur.lo += n;
    const struct sl_record *first = lane_rec(ln, r.lo);
    const struct sl_record *last = lane_rec(ln, r.hi - 1);
    if (!m->dest.ops) {
        sl_log_error(MAPPING_COMP, m->name,
                     "%s: dropping %zu records of %s from %" PRIu64 " to %" PRIu64
                     " (no on-failure destination)",
                     condition, n, mp->part->name, first->pos, last->pos);
        m->stats.dropped += n;
        lane_mark_done(ln, r);
        part_advance(mp);
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
    };
    sl_buf_truncate(&ln->doc, 0);
    bool with_payload = rc == 0 && encoded == n && strncmp(m->conf->on_failure, "arn:aws:sqs", 11);
    if (rc == 0) {
        rc = sl_failrec_build(&ln->doc, &f, m->ops, m->src_ctx, mp->part, first, last, n,
                              with_payload ? ln->body.data : NULL, ln->body.len);
    }
    if (rc < 0) {
        sl_log_error(MAPPING_COMP, m->name,
                     "out of memory building an invocation record, retrying");
        ln->cur.lo = r.lo;
        lane_backoff(ln, LANE_BACKOFF, MAPPING_FETCH_RETRY_MS);
        return;
    }
    sl_log_warn(MAPPING_COMP, m->name,
                "%s: writing %zu records of %s from %" PRIu64 " to %" PRIu64 " to %s", condition, n,
                mp->part->name, first->pos, last->pos, m->conf->on_failure);
    ln->dest = r;
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
static int lane_window_wrap(struct lane *ln, bool final)
{
    struct mpart *mp = ln->mp;
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
static void lane_window_close(struct lane *ln)
{
    struct mpart *mp = ln->mp;
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
    part_advance(mp);
    if (early) {
        /* The same window goes on with fresh state. */
        ln->win_open = true;
        ln->win_first_abs = ln->win_end_abs;
    }
}

static void lane_invoke(struct lane *ln);

/* Sends the window's final invocation: no records, isFinalInvokeForWindow. */
static void lane_final_invoke(struct lane *ln)
{
    struct sl_mapping *m = ln->mp->m;
    sl_buf_truncate(&ln->body, 0);
    int r = sl_buf_puts(&ln->body, m->ops->event_open);
    r = r < 0 ? r : sl_buf_puts(&ln->body, m->ops->event_close);
    r = r < 0 ? r : lane_window_wrap(ln, true);
    if (r < 0) {
        sl_log_error(MAPPING_COMP, m->name,
                     "cannot build the final invocation of a window: %s, "
                     "retrying",
                     sl_strerror(r));
        ln->state = LANE_BACKOFF;
        uv_timer_start(&ln->timer, lane_timer_cb, MAPPING_FETCH_RETRY_MS, 0);
        return;
    }
    ln->in_final = true;
    ln->n = 0;
    ln->cur = (struct range){0, 0};
    ln->n_todo = 0;
    ln->invokes = 0;
    if (!mapping_has_slot(m)) {
        ln->state = LANE_READY;
        return;
    }
    lane_invoke(ln);
}

/* --- invocations --- */

static void lane_invoked(void *arg, const struct sl_invoke_result *res);

static void lane_invoke(struct lane *ln)
{
    struct sl_mapping *m = ln->mp->m;
    ln->state = LANE_INVOKING;
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
lane_read_partial(struct lane *ln, const struct sl_invoke_result *res, struct sl_partial *ret)
{
    struct sl_mapping *m = ln->mp->m;
    size_t n = ln->cur.hi - ln->cur.lo;
    char *ids_buf = sl_malloc(n * MAPPING_ID_MAX);
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
        char *id = ids_buf + i * MAPPING_ID_MAX;
        const struct sl_record *rec = lane_rec(ln, ln->cur.lo + i);
        if (!m->ops->format_item_id ||
            m->ops->format_item_id(m->src_ctx, ln->mp->part, rec, id, MAPPING_ID_MAX) < 0) {
            (void)snprintf(id, MAPPING_ID_MAX, "%" PRIu64, rec->pos);
        }
        ids[i] = id;
    }
    sl_invoker_parse_partial(res->body, res->body_len, ids, n, ret);
    sl_free(ids);
    sl_free(ids_buf);
}

static void lane_log_failure(struct lane *ln,
                             const struct sl_invoke_result *res,
                             const char *what,
                             int64_t delay)
{
    struct sl_mapping *m = ln->mp->m;
    char status[32] = "";
    if (res->status) {
        (void)snprintf(status, sizeof(status), " status %d", res->status);
    }
    sl_log_warn(MAPPING_COMP, m->name,
                "batch of %zu records of %s from %" PRIu64 ": %s%s%s%s%s%s; %s in %" PRId64
                "ms (invocation %u, %u counted)",
                ln->cur.hi - ln->cur.lo, ln->mp->part->name, lane_rec(ln, ln->cur.lo)->pos,
                sl_outcome_name(res->outcome), status, res->error_type ? " " : "",
                res->error_type ? res->error_type : "", res->detail ? ": " : "",
                res->detail ? res->detail : "", what, delay, ln->invokes, ln->attempts);
}

static void lane_invoked(void *arg, const struct sl_invoke_result *res)
{
    struct lane *ln = arg;
    struct mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    m->in_flight--;
    ln->last_end_ms = mapping_now(m);
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
            ln->state = LANE_IDLE;
            return;
        }
        lane_backoff(ln, LANE_BACKOFF, delay);
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
            sl_log_warn(MAPPING_COMP, m->name,
                        "the function's response has the key \"%s\" but no batchItemFailures; "
                        "AWS counts such a batch as fully delivered, and so does sluice (is it "
                        "misspelt?)",
                        partial.unknown_key);
            (void)snprintf(m->warned_key, sizeof(m->warned_key), "%s", partial.unknown_key);
        }
        if (partial.kind == SL_PARTIAL_INVALID) {
            sl_log_warn(MAPPING_COMP, m->name,
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
        struct range done = {ln->cur.lo, ln->cur.lo + v.done_prefix};
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
        part_advance(mp);
    }
    if (new_state) {
        sl_free(ln->win_state);
        ln->win_state = new_state;
        ln->win_state_len = new_state_len;
        if (new_state_len > SL_WINDOW_STATE_MAX) {
            sl_log_warn(MAPPING_COMP, m->name,
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
        ln->state = LANE_IDLE;
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
            struct range *t = sl_realloc(ln->todo, cap * sizeof(*t));
            if (!t) {
                lane_backoff(ln, LANE_BACKOFF, delay);
                return;
            }
            ln->todo = t;
            ln->cap_todo = cap;
        }
        ln->todo[ln->n_todo++] = (struct range){mid, ln->cur.hi};
        ln->cur.hi = mid;
        ln->attempts = 0;
        ln->invokes = 0;
    } else {
        lane_log_failure(ln, res, "retrying", delay);
    }
    lane_backoff(ln, LANE_BACKOFF, delay);
}

/* Moves on once cur is handled: the next part of the batch, or the next batch. */
static void lane_continue(struct lane *ln)
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
    ln->state = LANE_IDLE;
    ln->last_end_ms = mapping_now(ln->mp->m);
    if (ln->mp->gone && sl_recq_count(&ln->mp->part->q) == 0) {
        part_release(ln->mp);
        return;
    }
    mapping_schedule_pump(ln->mp->m);
}

/* Tries cur: records past MaximumRecordAgeInSeconds go to the on-failure path first, then the
 * rest is encoded (split further if the payload limit demands it) and invoked. */
static void lane_attempt(struct lane *ln)
{
    struct mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    if (m->draining) {
        ln->state = LANE_IDLE;
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
        sl_log_error(MAPPING_COMP, m->name, "out of memory building a batch of %s, retrying",
                     mp->part->name);
        lane_backoff(ln, LANE_BACKOFF, MAPPING_FETCH_RETRY_MS);
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
            struct range *t = sl_realloc(ln->todo, cap * sizeof(*t));
            if (!t) {
                lane_backoff(ln, LANE_BACKOFF, MAPPING_FETCH_RETRY_MS);
                return;
            }
            ln->todo = t;
            ln->cap_todo = cap;
        }
        ln->todo[ln->n_todo++] = (struct range){ln->cur.lo + encoded, ln->cur.hi};
        ln->cur.hi = ln->cur.lo + encoded;
    }
    if (mapping_windowed(m) && lane_window_wrap(ln, false) < 0) {
        sl_log_error(MAPPING_COMP, m->name, "out of memory building a batch of %s, retrying",
                     mp->part->name);
        lane_backoff(ln, LANE_BACKOFF, MAPPING_FETCH_RETRY_MS);
        return;
    }
    if (!mapping_has_slot(m)) {
        ln->state = LANE_READY;
        return;
    }
    lane_invoke(ln);
}

static void lane_timer_cb(uv_timer_t *t)
{
    struct lane *ln = t->data;
    switch (ln->state) {
    case LANE_BACKOFF:
        if (ln->in_final) {
            lane_final_invoke(ln);
        } else {
            lane_attempt(ln);
        }
        return;
    case LANE_WRITE_BACKOFF:
        if (ln->mp->m->draining) {
            ln->state = LANE_IDLE;
            return;
        }
        lane_write(ln);
        return;
    case LANE_IDLE:
        lane_dispatch(ln);
        return;
    case LANE_READY:
    case LANE_INVOKING:
    case LANE_WRITING:
        return;
    }
}

static bool lane_grow(struct lane *ln, size_t n)
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
static bool lane_window_dispatch(struct lane *ln, size_t start, size_t *waiting)
{
    struct mpart *mp = ln->mp;
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
        bool full = in_window == 0 && !part_fetch_budget(mp, &r, &b);
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
static void lane_dispatch(struct lane *ln)
{
    struct mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    if (ln->state == LANE_READY) {
        if (mapping_has_slot(m) && !m->draining) {
            lane_invoke(ln);
        }
        return;
    }
    if (m->draining || ln->state != LANE_IDLE || part_waits_for_disk(mp)) {
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
    int64_t window_start =
        mp->first_wait_ms > ln->last_end_ms ? mp->first_wait_ms : ln->last_end_ms;
    int64_t due =
        stop_at_oversize ? INT64_MIN : sl_batcher_due_ms(&m->lim, waiting, bytes, window_start);
    int64_t now = mapping_now(m);
    if (due > now) {
        uv_timer_start(&ln->timer, lane_timer_cb, (uint64_t)(due - now), 0);
        return;
    }
    if (!lane_grow(ln, waiting)) {
        sl_log_error(MAPPING_COMP, m->name, "out of memory forming a batch of %s, retrying",
                     mp->part->name);
        uv_timer_start(&ln->timer, lane_timer_cb, MAPPING_FETCH_RETRY_MS, 0);
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
    ln->cur = (struct range){0, ln->n};
    ln->n_todo = 0;
    ln->attempts = 0;
    ln->invokes = 0;
    ln->last_status = 0;
    ln->last_function_error = false;
    lane_attempt(ln);
}

/* --- fetching --- */

static uint64_t mapping_key_hash(const char *key, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Filters and spreads over lanes the n records the source just appended to part's queue. */
static void part_take_new(struct mpart *mp, size_t n)
{
    struct sl_mapping *m = mp->m;
    struct sl_recq *q = &mp->part->q;
    size_t count = sl_recq_count(q);
    m->stats.fetched += n;
    m->last_fetch_ms = mapping_now(m);
    bool filtered_any = false;
    bool per_record = m->filter || (mp->n_lanes > 1 && m->ops->record_key);
    for (size_t i = count - n; per_record && i < count; i++) {
        struct sl_record *rec = sl_recq_at_mut(q, i);
        if (m->filter && !(rec->flags & SL_REC_OVERSIZE)) {
            cJSON *doc = m->ops->filter_doc(m->src_ctx, mp->part, rec);
            if (doc && !sl_filter_match_payload(m->filter, doc, "data")) {
                rec->flags |= SL_REC_FILTERED | SL_REC_DONE;
                m->stats.filtered++;
                filtered_any = true;
            }
            cJSON_Delete(doc);
        }
        if (mp->n_lanes > 1 && m->ops->record_key) {
            const char *key = NULL;
            size_t len = m->ops->record_key(m->src_ctx, mp->part, rec, &key);
            rec->lane = (uint32_t)(mapping_key_hash(key, len) % mp->n_lanes);
        }
    }
    part_account(mp);
    if (filtered_any) {
        part_advance(mp);
    }
}

/* Fetches once from a partition if it may. */
static void part_fetch(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
    size_t max_records = 0;
    size_t max_bytes = 0;
    if (m->draining || !mp->want_fetch || mp->fetch_pending || mp->gone ||
        !part_fetch_budget(mp, &max_records, &max_bytes)) {
        return;
    }
    int r = m->ops->fetch(m->src_ctx, mp->part, max_records, max_bytes);
    if (r > 0) {
        part_take_new(mp, (size_t)r);
    } else if (r == 0) {
        mp->want_fetch = false;
    } else if (r == SL_EINPROGRESS) {
        mp->fetch_pending = true;
    } else {
        mp->want_fetch = false;
        mp->fetch_failed = true;
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
        const struct mpart *mp = m->parts[i];
        size_t r = 0;
        size_t b = 0;
        if (mp->want_fetch && !mp->fetch_pending && !mp->gone && part_fetch_budget(mp, &r, &b)) {
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
        struct mpart *mp = m->parts[i];
        part_fetch(mp);
        for (size_t l = 0; l < mp->n_lanes && !mp->released; l++) {
            lane_dispatch(&mp->lanes[l]);
        }
        if (!mp->released && mp->gone && sl_recq_count(&mp->part->q) == 0) {
            bool busy = false;
            for (size_t l = 0; l < mp->n_lanes; l++) {
                busy = busy || mp->lanes[l].state != LANE_IDLE;
            }
            if (!busy) {
                part_release(mp);
            }
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

static void mapping_durable_cb(void *arg)
{
    mapping_schedule_pump(arg);
}

static void mapping_fetch_retry_cb(uv_timer_t *t)
{
    struct sl_mapping *m = t->data;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i]->fetch_failed) {
            m->parts[i]->fetch_failed = false;
            m->parts[i]->want_fetch = true;
        }
    }
    mapping_schedule_pump(m);
}

/* --- the source's callbacks --- */

static void mpart_timer_close_cb(uv_handle_t *h)
{
    struct lane *ln = h->data;
    struct mpart *mp = ln->mp;
    struct sl_mapping *m = mp->m;
    if (--mp->open_timers > 0) {
        return;
    }
    for (size_t l = 0; l < mp->n_lanes; l++) {
        struct lane *x = &mp->lanes[l];
        sl_free(x->abs);
        sl_free(x->qidx);
        sl_free(x->todo);
        sl_buf_fini(&x->body);
        sl_buf_fini(&x->doc);
        sl_free(x->win_state);
    }
    sl_free(mp->lanes);
    sl_free(mp->undurable);
    sl_free(mp);
    if (--m->open_handles == 0 && m->freeing) {
        sl_free(m);
    }
}

static int
mapping_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct sl_mapping *m = owner;
    if (m->n_parts == m->cap_parts) {
        size_t cap = m->cap_parts ? m->cap_parts * 2 : 8;
        struct mpart **parts = sl_realloc(m->parts, cap * sizeof(*parts));
        if (!parts) {
            return SL_ENOMEM;
        }
        m->parts = parts;
        m->cap_parts = cap;
    }
    size_t n_lanes = (size_t)m->conf->core.parallelization_factor;
    struct mpart *mp = sl_calloc(1, sizeof(*mp));
    struct sl_part *part = sl_part_new(id, name);
    uint64_t *undurable = sl_calloc((size_t)m->conf->core.max_unsaved_batches, sizeof(uint64_t));
    struct lane *lanes = sl_calloc(n_lanes, sizeof(*lanes));
    struct sl_ckpt_entry e;
    if (!mp || !part || !undurable || !lanes ||
        (sl_ckpt_get(m->ck, id, &e) && sl_part_set_checkpoint(part, e.pos, e.meta) < 0)) {
        sl_free(lanes);
        sl_free(undurable);
        sl_free(mp);
        sl_part_free(part);
        return SL_ENOMEM;
    }
    mp->m = m;
    mp->part = part;
    mp->undurable = undurable;
    mp->lanes = lanes;
    mp->n_lanes = n_lanes;
    mp->want_fetch = true;
    for (size_t l = 0; l < n_lanes; l++) {
        struct lane *ln = &lanes[l];
        ln->mp = mp;
        sl_buf_init(&ln->body);
        sl_buf_init(&ln->doc);
        uv_timer_init(m->env.loop, &ln->timer);
        ln->timer.data = ln;
    }
    mp->open_timers = n_lanes;
    m->open_handles++;
    part->owner = mp;
    m->parts[m->n_parts++] = mp;
    sl_log_info(MAPPING_COMP, m->name, "reading %s from %s", name,
                part->ckpt_pos ? "its checkpoint" : "the starting position");
    mapping_schedule_pump(m);
    *ret_part = part;
    return 0;
}

static void mapping_part_wake(void *owner, struct sl_part *part)
{
    struct mpart *mp = part->owner;
    mp->want_fetch = true;
    mapping_schedule_pump(owner);
}

static void mapping_part_fetched(void *owner, struct sl_part *part, int n)
{
    struct sl_mapping *m = owner;
    struct mpart *mp = part->owner;
    mp->fetch_pending = false;
    if (n > 0) {
        part_take_new(mp, (size_t)n);
    } else if (n < 0) {
        mp->want_fetch = false;
        mp->fetch_failed = true;
        if (!uv_is_active((uv_handle_t *)&m->fetch_retry)) {
            uv_timer_start(&m->fetch_retry, mapping_fetch_retry_cb, MAPPING_FETCH_RETRY_MS, 0);
        }
    }
    mapping_schedule_pump(m);
}

static void mapping_part_gone(void *owner, struct sl_part *part)
{
    struct mpart *mp = part->owner;
    mp->gone = true;
    mapping_schedule_pump(owner);
}

/* Forgets a partition: the source frees its state, the mapping its own. Only when nothing of
 * it is in flight. */
static void part_release(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
    if (mp->released) {
        return;
    }
    mp->released = true;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i] == mp) {
            memmove(&m->parts[i], &m->parts[i + 1], (m->n_parts - i - 1) * sizeof(*m->parts));
            m->n_parts--;
            break;
        }
    }
    m->held_records -= mp->held_records;
    m->held_bytes -= mp->held_bytes;
    if (m->src_inited && m->ops->part_release) {
        m->ops->part_release(m->src_ctx, mp->part);
    }
    sl_part_free(mp->part);
    mp->part = NULL;
    for (size_t l = 0; l < mp->n_lanes; l++) {
        uv_timer_stop(&mp->lanes[l].timer);
        uv_close((uv_handle_t *)&mp->lanes[l].timer, mpart_timer_close_cb);
    }
}

/* --- the public face --- */

static int mapping_open_destination(struct sl_mapping *m, char *errbuf, size_t errlen)
{
    const char *d = m->conf->on_failure;
    if (!d) {
        return 0;
    }
    const struct sl_sink_ops *ops = sl_sink_for(d);
    if (!ops) {
        (void)snprintf(errbuf, errlen, "no sink writes %s", d);
        return SL_ECONFIG;
    }
    m->dest.ctx = sl_calloc(1, ops->ctx_size);
    if (!m->dest.ctx) {
        return SL_ENOMEM;
    }
    struct sl_sink_env env = {
        .loop = m->env.loop,
        .httpc = m->env.httpc,
        .clock = m->env.clock,
        .inst = m->name,
        .region = m->env.region,
    };
    int r = ops->init(m->dest.ctx, &env, d, errbuf, errlen);
    if (r < 0) {
        ops->fini(m->dest.ctx);
        sl_free(m->dest.ctx);
        m->dest.ctx = NULL;
        return r;
    }
    m->dest.ops = ops;
    return 0;
}

static int mapping_function_arn(struct sl_mapping *m)
{
    const char *fn = m->conf->core.function_name;
    struct sl_buf b;
    sl_buf_init(&b);
    int r =
        strncmp(fn, "arn:", 4) == 0
            ? sl_buf_puts(&b, fn)
            : sl_buf_printf(&b, "arn:aws:lambda:%s:000000000000:function:%s", m->env.region, fn);
    if (r < 0) {
        sl_buf_fini(&b);
        return r;
    }
    m->function_arn = sl_buf_steal(&b);
    return m->function_arn ? 0 : SL_ENOMEM;
}

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
    m->name = sl_strdup(conf->core.uuid);
    m->src_ctx = sl_calloc(1, m->ops->ctx_size);
    int r = (m->name && m->src_ctx) ? 0 : SL_ENOMEM;
    if (r == 0) {
        r = mapping_function_arn(m);
    }
    if (r == 0) {
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        struct sl_mapping_core scratch = {0};
        struct sl_opt_target targets[2] = {
            {sl_config_mapping_opts, &scratch},
            {m->ops->opts, m->src_ctx},
        };
        r = sl_opt_apply(targets, 2, conf->json, "config", conf->path, &errs);
        sl_opt_free(sl_config_mapping_opts, &scratch);
        if (r < 0) {
            (void)snprintf(errbuf, errlen, "%s", errs.n ? errs.items[0] : sl_strerror(r));
        }
        sl_errlist_fini(&errs);
    }
    if (r == 0 && conf->core.filter_criteria) {
        r = sl_filter_compile(conf->core.filter_criteria, &m->filter, errbuf, errlen);
        if (r == 0 && sl_filter_count(m->filter) == 0) {
            sl_filter_free(m->filter);
            m->filter = NULL;
        }
        if (r == 0 && m->filter && !m->ops->filter_doc) {
            (void)snprintf(errbuf, errlen, "%s sources cannot filter", m->ops->name);
            r = SL_ECONFIG;
        }
    }
    if (r == 0) {
        r = mapping_open_destination(m, errbuf, errlen);
    }
    if (r == 0) {
        r = sl_ckpt_open(env->loop, env->state_dir, conf->core.uuid, &m->ck, errbuf, errlen);
    }
    if (r == 0) {
        sl_ckpt_on_durable(m->ck, mapping_durable_cb, m);
        m->senv = (struct sl_source_env){
            .loop = env->loop,
            .clock = env->clock,
            .inst = m->name,
            .region = env->region,
            .arn = conf->core.event_source_arn,
            .starting_position = conf->core.starting_position,
            .starting_position_ts_ms = conf->core.starting_position_ts_s * 1000,
            .owner = m,
            .part_add = mapping_part_add,
            .part_wake = mapping_part_wake,
            .part_fetched = mapping_part_fetched,
            .part_gone = mapping_part_gone,
        };
        r = m->ops->init(m->src_ctx, &m->senv, errbuf, errlen);
        m->src_inited = r == 0;
    }
    if (r < 0) {
        if (m->src_ctx) {
            m->ops->fini(m->src_ctx);
            sl_opt_free(m->ops->opts, m->src_ctx);
        }
        if (m->ck) {
            sl_ckpt_close(m->ck);
        }
        if (m->dest.ops) {
            m->dest.ops->fini(m->dest.ctx);
        }
        sl_free(m->dest.ctx);
        sl_filter_free(m->filter);
        sl_free(m->src_ctx);
        sl_free(m->function_arn);
        sl_free(m->name);
        sl_free(m);
        return r;
    }
    m->policy = (struct sl_invoker_policy){
        .max_retry_attempts = conf->core.max_retry_attempts,
        .bisect = conf->core.bisect,
        .report_item_failures = conf->report_item_failures,
    };
    m->lim.max_records = (size_t)conf->core.batch_size;
    m->lim.max_bytes = SL_BATCH_MAX_PAYLOAD_BYTES;
    m->lim.window_ms = conf->core.window_ms;
    sl_retry_policy_default(&m->retry);
    m->rng = (uint64_t)sl_clock_wall_ms(env->clock) ^ (uint64_t)(uintptr_t)m;
    if (m->rng == 0) {
        m->rng = 0x9E3779B97F4A7C15ULL;
    }
    m->last_fetch_ms = mapping_now(m);
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
    int r = m->ops->start(m->src_ctx);
    if (r < 0) {
        sl_log_error(MAPPING_COMP, m->name, "cannot start source %s: %s",
                     m->conf->core.event_source_arn, sl_strerror(r));
        return r;
    }
    sl_log_info(MAPPING_COMP, m->name,
                "started: %s -> %s (BatchSize %" PRId64 ", window %" PRId64 "ms)",
                m->conf->core.event_source_arn, m->conf->core.function_name,
                m->conf->core.batch_size, m->conf->core.window_ms);
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
    if (m->ops->stop) {
        m->ops->stop(m->src_ctx);
    }
    for (size_t i = 0; i < m->n_parts; i++) {
        struct mpart *mp = m->parts[i];
        for (size_t l = 0; l < mp->n_lanes; l++) {
            struct lane *ln = &mp->lanes[l];
            uv_timer_stop(&ln->timer);
            if (ln->state == LANE_BACKOFF || ln->state == LANE_WRITE_BACKOFF ||
                ln->state == LANE_READY) {
                ln->state = LANE_IDLE;
            }
        }
    }
}

void sl_mapping_cancel(struct sl_mapping *m)
{
    if (m->dest.ops && m->dest.ops->stop) {
        m->dest.ops->stop(m->dest.ctx);
    }
}

int sl_mapping_in_flight(const struct sl_mapping *m)
{
    return m->in_flight + m->writes_in_flight;
}

bool sl_mapping_is_idle(const struct sl_mapping *m, int64_t idle_ms)
{
    if (m->in_flight > 0 || m->writes_in_flight > 0 || m->held_records > 0 ||
        !sl_ckpt_is_clean(m->ck)) {
        return false;
    }
    for (size_t i = 0; i < m->n_parts; i++) {
        const struct mpart *mp = m->parts[i];
        if (mp->fetch_pending) {
            return false;
        }
        for (size_t l = 0; l < mp->n_lanes; l++) {
            if (mp->lanes[l].state != LANE_IDLE) {
                return false;
            }
        }
    }
    return mapping_now(m) - m->last_fetch_ms >= idle_ms;
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

void sl_mapping_log_stats(const struct sl_mapping *m, const char *msg)
{
    int64_t lag = 0;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->ops->lag) {
            int64_t l = m->ops->lag(m->src_ctx, m->parts[i]->part);
            lag += l > 0 ? l : 0;
        }
    }
    const struct sl_mapping_stats *s = &m->stats;
    static const char *const keys[] = {
        "PolledEventCount",
        "FilteredOutEventCount",
        "InvokedEventCount",
        "FailedInvokeEventCount",
        "DroppedEventCount",
        "OnFailureDestinationDeliveredEventCount",
        "delivered",
        "retried",
        "batches",
        "in_flight",
        "bytes",
        "lag",
        "partitions",
    };
    const int64_t values[] = {
        (int64_t)s->fetched,     (int64_t)s->filtered, (int64_t)s->invoked,
        (int64_t)s->failed,      (int64_t)s->dropped,  (int64_t)s->destination_delivered,
        (int64_t)s->delivered,   (int64_t)s->retried,  (int64_t)s->batches,
        sl_mapping_in_flight(m), (int64_t)s->bytes,    lag,
        (int64_t)m->n_parts,
    };
    sl_log_fields(SL_LOG_INFO, MAPPING_COMP, m->name, msg, keys, values, SL_ARRAY_LEN(keys));
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
    m->freeing = true;
    while (m->n_parts > 0) {
        part_release(m->parts[m->n_parts - 1]);
    }
    m->ops->fini(m->src_ctx);
    sl_opt_free(m->ops->opts, m->src_ctx);
    sl_free(m->src_ctx);
    m->src_ctx = NULL;
    if (m->dest.ops) {
        if (m->dest.ops->stop) {
            m->dest.ops->stop(m->dest.ctx);
        }
        m->dest.ops->fini(m->dest.ctx);
        sl_free(m->dest.ctx);
        m->dest.ctx = NULL;
    }
    sl_filter_free(m->filter);
    m->filter = NULL;
    sl_ckpt_close(m->ck);
    sl_free(m->parts);
    sl_free(m->function_arn);
    sl_free(m->name);
    m->parts = NULL;
    m->name = NULL;
    uv_close((uv_handle_t *)&m->pump, mapping_close_cb);
    uv_close((uv_handle_t *)&m->fetch_retry, mapping_close_cb);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* mapping.c: one event source mapping's state machine. It owns the partitions its source
 * reports and, for each, moves records through fetch -> batch -> invoke -> checkpoint, with a
 * retry schedule when the function fails. The rules of DESIGN.md live here:
 *   1. a position is checkpointed only after every record up to it was delivered (or, for a
 *      record that can never be sent, reported and counted);
 *   2. one batch in flight per partition, and the checkpoint only moves to the end of the
 *      batch at the front of the partition's queue;
 *   3. a crash repeats at most what was fetched and not checkpointed; it never skips;
 *   4. fetching pauses at the mapping's memory bound (records and bytes).
 * The invoker's decisions (classify, back off, retry forever for now) are made in
 * part_invoked(). Everything runs on the loop thread; time comes from the injected clock. */
#include "mapping.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "batcher.h"
#include "checkpoint.h"
#include "config.h"
#include "function.h"
#include "log.h"
#include "partition.h"
#include "retry.h"
#include "source.h"

#define MAPPING_COMP           "mapping"
#define MAPPING_FETCH_RETRY_MS 1000
#define MAPPING_POS_MAX        128

enum mpart_state {
    MPART_IDLE,     /* waiting for records or for the window to close */
    MPART_INVOKING, /* a batch is in flight */
    MPART_BACKOFF,  /* a batch failed; the timer will send it again */
};

/* The mapping's state for one partition (part->owner). */
struct mpart {
    struct sl_mapping *m;
    struct sl_part *part;
    enum mpart_state state;
    bool want_fetch;            /* the source may have more records */
    bool fetch_pending;         /* an asynchronous fetch is running */
    bool fetch_failed;          /* the last fetch failed; retried by the mapping's timer */
    bool gone;                  /* the source will produce no more */
    size_t batch_n;             /* records at the front of the queue that form the batch */
    struct sl_buf body;         /* the batch's event, as sent */
    unsigned attempt;           /* failed invocations of this batch so far */
    int64_t first_wait_ms;      /* when the queue last became non-empty */
    int64_t last_invoke_end_ms; /* when the last invocation of this partition ended */
    size_t held_records;        /* what this partition counts against the mapping's bound */
    size_t held_bytes;
    uint64_t *undurable; /* store generations of delivered batches whose checkpoint is not on
                            disk yet: at most max_unsaved_batches (the partition then waits) */
    size_t n_undurable;
    uv_timer_t timer; /* batching window or backoff */
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
    struct mpart **parts;
    size_t n_parts;
    size_t cap_parts;
    uv_idle_t pump;
    uv_timer_t fetch_retry;
    int open_handles; /* the mapping is freed when its handles are closed */
    bool freeing;
    bool draining;
    bool started;
    int in_flight;
    size_t held_records;
    size_t held_bytes;
    int64_t last_fetch_ms;
    struct sl_batch_limits lim;
    struct sl_retry_policy retry;
    uint64_t rng;
    struct sl_mapping_stats stats;
};

static void mapping_schedule_pump(struct sl_mapping *m);
static void part_dispatch(struct mpart *mp);
static void part_release(struct mpart *mp);

static int64_t mapping_now(const struct sl_mapping *m)
{
    return sl_clock_now_ms(m->env.clock);
}

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

/* How many records and bytes part may still fetch: each partition may hold two batches' worth
 * (one in flight, one forming), within the mapping's total. */
static bool part_fetch_budget(const struct mpart *mp, size_t *ret_records, size_t *ret_bytes)
{
    const struct sl_mapping *m = mp->m;
    const struct sl_mapping_core *core = &m->conf->core;
    size_t part_max_records = 2 * m->lim.max_records;
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

/* Records that the records up to and including the n-th at the front of the queue are done,
 * and drops them. */
static void part_checkpoint(struct mpart *mp, size_t n)
{
    struct sl_mapping *m = mp->m;
    struct sl_part *part = mp->part;
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

/* A record at the front that can never be sent (over max_line_bytes or the payload limit):
 * reported and counted, then passed by the checkpoint. On-failure destinations will take these
 * once they exist. */
static void part_fail_head_record(struct mpart *mp, const char *why)
{
    struct sl_mapping *m = mp->m;
    const struct sl_record *rec = sl_recq_at(&mp->part->q, 0);
    sl_log_error(MAPPING_COMP, m->name,
                 "record %s:%" PRIu64 " (%" PRIu64 " bytes) %s; it cannot be sent, skipping",
                 mp->part->name, rec->pos, rec->next_pos - rec->pos, why);
    m->stats.dropped++;
    part_checkpoint(mp, 1);
}

static void part_timer_cb(uv_timer_t *t);
static void mapping_fetch_retry_cb(uv_timer_t *t);
static void part_invoked(void *arg, const struct sl_invoke_result *res);

static void part_invoke(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
    mp->state = MPART_INVOKING;
    m->in_flight++;
    m->stats.batches++;
    int r = sl_function_invoke(m->env.fn, mp->body.data, mp->body.len, part_invoked, mp);
    if (r < 0) {
        struct sl_invoke_result res = {
            .outcome = SL_OUTCOME_TRANSPORT_ERROR,
            .detail = sl_strerror(r),
            .retry_after_ms = -1,
        };
        part_invoked(mp, &res);
    }
}

static void part_invoked(void *arg, const struct sl_invoke_result *res)
{
    struct mpart *mp = arg;
    struct sl_mapping *m = mp->m;
    m->in_flight--;
    mp->last_invoke_end_ms = mapping_now(m);

    if (res->outcome == SL_OUTCOME_SUCCESS) {
        m->stats.delivered += mp->batch_n;
        m->stats.bytes += mp->body.len;
        if (mp->attempt > 0) {
            sl_log_info(MAPPING_COMP, m->name, "batch of %zu records from %s delivered after %u %s",
                        mp->batch_n, mp->part->name, mp->attempt,
                        mp->attempt == 1 ? "retry" : "retries");
        }
        part_checkpoint(mp, mp->batch_n);
        mp->batch_n = 0;
        mp->attempt = 0;
        mp->state = MPART_IDLE;
        if (mp->gone && sl_recq_count(&mp->part->q) == 0) {
            part_release(mp);
        }
        mapping_schedule_pump(m);
        return;
    }

    m->stats.failed += mp->batch_n;
    if (m->draining) {
        /* Not checkpointed: the next run sends these records again. */
        sl_log_warn(MAPPING_COMP, m->name,
                    "batch of %zu records from %s failed (%s%s%s) while draining; left for the "
                    "next run",
                    mp->batch_n, mp->part->name, sl_outcome_name(res->outcome),
                    res->detail ? ": " : "", res->detail ? res->detail : "");
        mp->state = MPART_IDLE;
        return;
    }
    mp->attempt++;
    int64_t delay = sl_retry_delay_ms(&m->retry, mp->attempt, &m->rng);
    if (res->outcome == SL_OUTCOME_THROTTLE && res->retry_after_ms > delay) {
        delay = res->retry_after_ms < m->retry.max_ms ? res->retry_after_ms : m->retry.max_ms;
    }
    char status[32] = "";
    if (res->status) {
        (void)snprintf(status, sizeof(status), " status %d", res->status);
    }
    sl_log_warn(MAPPING_COMP, m->name,
                "batch of %zu records from %s at %" PRIu64
                " failed: %s%s%s%s%s%s, retrying in %" PRId64 "ms (attempt %u)",
                mp->batch_n, mp->part->name, sl_recq_at(&mp->part->q, 0)->pos,
                sl_outcome_name(res->outcome), status, res->error_type ? " " : "",
                res->error_type ? res->error_type : "", res->detail ? ": " : "",
                res->detail ? res->detail : "", delay, mp->attempt + 1);
    mp->state = MPART_BACKOFF;
    uv_timer_start(&mp->timer, part_timer_cb, (uint64_t)delay, 0);
}

static void part_timer_cb(uv_timer_t *t)
{
    struct mpart *mp = t->data;
    struct sl_mapping *m = mp->m;
    if (mp->state == MPART_BACKOFF) {
        if (m->draining) {
            mp->state = MPART_IDLE;
            return;
        }
        m->stats.retried += mp->batch_n;
        part_invoke(mp);
        return;
    }
    part_dispatch(mp);
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

/* Starts the next batch of a partition if one is due, or arms the window timer. */
static void part_dispatch(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
    if (m->draining || mp->state != MPART_IDLE || part_waits_for_disk(mp)) {
        return;
    }
    struct sl_recq *q = &mp->part->q;
    for (;;) {
        while (sl_recq_count(q) > 0 && (sl_recq_at(q, 0)->flags & SL_REC_OVERSIZE)) {
            part_fail_head_record(mp, "is over max_line_bytes");
        }
        size_t waiting = sl_recq_count(q);
        if (waiting == 0) {
            if (mp->gone) {
                part_release(mp);
            }
            return;
        }
        int64_t window_start =
            mp->first_wait_ms > mp->last_invoke_end_ms ? mp->first_wait_ms : mp->last_invoke_end_ms;
        int64_t due = sl_batcher_due_ms(&m->lim, waiting, sl_recq_bytes(q), window_start);
        int64_t now = mapping_now(m);
        if (due > now) {
            uv_timer_start(&mp->timer, part_timer_cb, (uint64_t)(due - now), 0);
            return;
        }
        size_t n = 0;
        if (sl_batcher_build(&m->lim, m->ops, m->src_ctx, mp->part, &mp->body, &n) < 0) {
            sl_log_error(MAPPING_COMP, m->name, "out of memory building a batch for %s, retrying",
                         mp->part->name);
            uv_timer_start(&mp->timer, part_timer_cb, MAPPING_FETCH_RETRY_MS, 0);
            return;
        }
        if (n == 0) {
            part_fail_head_record(mp, "makes an event over the 6 MB payload limit");
            continue;
        }
        uv_timer_stop(&mp->timer);
        mp->batch_n = n;
        mp->attempt = 0;
        part_invoke(mp);
        return;
    }
}

/* Fetches once from a partition if it may. Returns true if records arrived. */
static bool part_fetch(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
    size_t max_records = 0;
    size_t max_bytes = 0;
    if (m->draining || !mp->want_fetch || mp->fetch_pending || mp->gone ||
        !part_fetch_budget(mp, &max_records, &max_bytes)) {
        return false;
    }
    int r = m->ops->fetch(m->src_ctx, mp->part, max_records, max_bytes);
    if (r > 0) {
        m->stats.fetched += (uint64_t)r;
        m->last_fetch_ms = mapping_now(m);
        part_account(mp);
        return true;
    }
    if (r == 0) {
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
    return false;
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
 * does not starve the others) and starts a batch if one is due. Runs from an idle handle while
 * there is more to fetch, so the loop keeps serving I/O between turns. */
static void mapping_pump_cb(uv_idle_t *h)
{
    struct sl_mapping *m = h->data;
    for (size_t i = 0; i < m->n_parts; i++) {
        struct mpart *mp = m->parts[i];
        (void)part_fetch(mp);
        part_dispatch(mp);
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
    struct mpart *mp = sl_calloc(1, sizeof(*mp));
    struct sl_part *part = sl_part_new(id, name);
    uint64_t *undurable = sl_calloc((size_t)m->conf->core.max_unsaved_batches, sizeof(uint64_t));
    if (!mp || !part || !undurable) {
        sl_free(undurable);
        sl_free(mp);
        sl_part_free(part);
        return SL_ENOMEM;
    }
    struct sl_ckpt_entry e;
    if (sl_ckpt_get(m->ck, id, &e) && sl_part_set_checkpoint(part, e.pos, e.meta) < 0) {
        sl_free(undurable);
        sl_free(mp);
        sl_part_free(part);
        return SL_ENOMEM;
    }
    mp->m = m;
    mp->part = part;
    mp->undurable = undurable;
    mp->want_fetch = true;
    sl_buf_init(&mp->body);
    uv_timer_init(m->env.loop, &mp->timer);
    mp->timer.data = mp;
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
    struct sl_mapping *m = owner;
    struct mpart *mp = part->owner;
    mp->want_fetch = true;
    mapping_schedule_pump(m);
}

static void mapping_part_fetched(void *owner, struct sl_part *part, int n)
{
    struct sl_mapping *m = owner;
    struct mpart *mp = part->owner;
    mp->fetch_pending = false;
    if (n > 0) {
        m->stats.fetched += (uint64_t)n;
        m->last_fetch_ms = mapping_now(m);
        part_account(mp);
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
    struct sl_mapping *m = owner;
    struct mpart *mp = part->owner;
    mp->gone = true;
    mapping_schedule_pump(m);
}

static void mpart_close_cb(uv_handle_t *h)
{
    struct mpart *mp = h->data;
    struct sl_mapping *m = mp->m;
    sl_buf_fini(&mp->body);
    sl_free(mp->undurable);
    sl_free(mp);
    if (--m->open_handles == 0 && m->freeing) {
        sl_free(m);
    }
}

/* Forgets a partition: the source frees its state, the mapping its own. Only when nothing of
 * it is in flight. */
static void part_release(struct mpart *mp)
{
    struct sl_mapping *m = mp->m;
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
    uv_timer_stop(&mp->timer);
    uv_close((uv_handle_t *)&mp->timer, mpart_close_cb);
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
    m->name = sl_strdup(conf->core.uuid);
    m->src_ctx = sl_calloc(1, m->ops->ctx_size);
    int r = (m->name && m->src_ctx) ? 0 : SL_ENOMEM;
    if (r == 0) {
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        struct sl_opt_target targets[2] = {
            {sl_config_mapping_opts, &(struct sl_mapping_core){0}},
            {m->ops->opts, m->src_ctx},
        };
        r = sl_opt_apply(targets, 2, conf->json, "config", conf->path, &errs);
        sl_opt_free(sl_config_mapping_opts, targets[0].base);
        if (r < 0) {
            (void)snprintf(errbuf, errlen, "%s", errs.n ? errs.items[0] : sl_strerror(r));
        }
        sl_errlist_fini(&errs);
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
        sl_free(m->src_ctx);
        sl_free(m->name);
        sl_free(m);
        return r;
    }
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
    m->started = true;
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
        uv_timer_stop(&mp->timer);
        if (mp->state == MPART_BACKOFF) {
            mp->state = MPART_IDLE;
        }
    }
}

int sl_mapping_in_flight(const struct sl_mapping *m)
{
    return m->in_flight;
}

bool sl_mapping_is_idle(const struct sl_mapping *m, int64_t idle_ms)
{
    if (m->in_flight > 0 || m->held_records > 0 || !sl_ckpt_is_clean(m->ck)) {
        return false;
    }
    for (size_t i = 0; i < m->n_parts; i++) {
        if (m->parts[i]->state != MPART_IDLE || m->parts[i]->fetch_pending) {
            return false;
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
    static const char *const keys[] = {"fetched", "delivered", "failed", "retried", "dropped",
                                       "batches", "in_flight", "bytes",  "lag",     "partitions"};
    const int64_t values[] = {
        (int64_t)m->stats.fetched,
        (int64_t)m->stats.delivered,
        (int64_t)m->stats.failed,
        (int64_t)m->stats.retried,
        (int64_t)m->stats.dropped,
        (int64_t)m->stats.batches,
        m->in_flight,
        (int64_t)m->stats.bytes,
        lag,
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
    sl_ckpt_close(m->ck);
    sl_free(m->parts);
    sl_free(m->name);
    m->parts = NULL;
    m->name = NULL;
    uv_close((uv_handle_t *)&m->pump, mapping_close_cb);
    uv_close((uv_handle_t *)&m->fetch_retry, mapping_close_cb);
}

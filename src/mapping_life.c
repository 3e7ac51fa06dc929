/* SPDX-License-Identifier: Apache-2.0 */
/* mapping_life.c: a mapping's life: it builds one (its options, filter, checkpoint store,
 * progress, source, on-failure path and lanes, wired to the host interfaces mapping.c defines),
 * starts its source, drains it (a queue's held records not in a batch go back at once; a stream's
 * source stops), cancels its waiting, and frees it once its handles are closed. What a mapping
 * does while it lives is mapping.c's. Loop thread. */
#include "mapping_int.h"

#include <inttypes.h>
#include <stdio.h>

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
#include "url.h"

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
    if (r == 0 && !m->queue) {
        /* a queue keeps no positions at all: no store is opened, read or written */
        r = env->checkpoint_store
                ? sl_ckpt_open_redis(env->loop, env->checkpoint_store, conf->core.uuid, &m->ck,
                                     errbuf, errlen)
                : sl_ckpt_open(env->loop, env->state_dir, conf->core.uuid, &m->ck, errbuf, errlen);
    }
    if (r == 0) {
        struct sl_progress_conf pconf = {
            .inst = m->name,
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
    if (r == 0 && m->ck) {
        r = mapping_lease_new(m, errbuf, errlen);
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
            .queue_limits_changed = m->queue ? mapping_queue_limits_changed : NULL,
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
            .sink_opts = conf->core.destination_options,
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
        mapping_lease_free(m);
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

/* Warns when the queue's visibility timeout (0: unknown) is shorter than the function's
 * timeout + the batching window: a message may come back while its batch waits or runs. */
static void mapping_queue_visibility_check(struct sl_mapping *m, const char *arn)
{
    const struct sl_mapping_core *core = &m->conf->core;
    int64_t timeout = m->env.fn ? m->env.fn->timeout_ms : 0;
    int64_t vis = m->qlim.visibility_ms;
    if (vis > 0 && timeout > 0 && vis < timeout + core->window_ms) {
        m->stats.queue_visibility_warnings++;
        sl_log_warn(MAPPING_COMP, m->name,
                    "%s: the visibility timeout (%" PRId64 "ms) is shorter than the function "
                    "timeout + batching window (%" PRId64 "ms): a message may become visible "
                    "again while its batch waits or runs; allowed: a visibility timeout of at "
                    "least %" PRId64 "ms (AWS advises 6 times the function timeout)",
                    arn, vis, timeout + core->window_ms, timeout + core->window_ms);
    }
}

/* What a queue says of itself once started (queue_limits): a BatchSize it does not take
 * stops the mapping before anything is received (SQS FIFO takes at most 10). */
static int mapping_queue_started(struct sl_mapping *m, const char *arn)
{
    const struct sl_mapping_core *core = &m->conf->core;
    m->qlim = (struct sl_queue_limits){.batch_size_max = m->ops->caps->batch_size_max};
    m->ops->queue_limits(m->src_ctx, &m->qlim);
    if (core->batch_size > m->qlim.batch_size_max) {
        sl_log_error(MAPPING_COMP, m->name,
                     "%s: BatchSize %" PRId64 " is more than this queue takes (a FIFO queue "
                     "takes at most 10); allowed: BatchSize 1 to %" PRId64,
                     arn, core->batch_size, m->qlim.batch_size_max);
        return SL_ECONFIG;
    }
    mapping_queue_visibility_check(m, arn);
    return 0;
}

/* The source learned its queue's limits after start (env->queue_limits_changed): the
 * visibility timeout is checked again when it changed; the BatchSize maximum stays what start
 * told, since the mapping may already have invoked batches. */
void mapping_queue_limits_changed(void *owner)
{
    struct sl_mapping *m = owner;
    struct sl_queue_limits lim = {.batch_size_max = m->qlim.batch_size_max};
    m->ops->queue_limits(m->src_ctx, &lim);
    if (lim.visibility_ms == m->qlim.visibility_ms) {
        return;
    }
    m->qlim.visibility_ms = lim.visibility_ms;
    char arn[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(m->conf->core.event_source_arn, arn, sizeof(arn));
    mapping_queue_visibility_check(m, arn);
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
    if (m->queue) {
        r = mapping_queue_started(m, arn);
        if (r < 0) {
            sl_mapping_drain(m); /* nothing is fetched; the source stops when it is freed */
            return r;
        }
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
            mp->waiting = 0;
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
        mapping_part_release(m->parts[m->n_parts - 1]);
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
    mapping_lease_free(m);
    sl_ckpt_close(m->ck);
    sl_free(m->parts);
    sl_free(m->name);
    m->parts = NULL;
    m->name = NULL;
    uv_close((uv_handle_t *)&m->pump, mapping_close_cb);
    uv_close((uv_handle_t *)&m->fetch_retry, mapping_close_cb);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* daemon.c: the process around the mappings and delivery streams: the loop, the shared HTTP
 * client, the functions, the delivery streams and their HTTP server (stream_set.c), signals, the
 * progress timer, idle detection for --until-idle, and the drain on shutdown (stop fetching, let
 * invocations finish within drain_timeout, write checkpoints). It owns every object it creates and
 * frees them in reverse order. Loop thread only.
 *
 * About --until-idle: the idle time counts only from the moment every mapping is quiet
 * (sl_mapping_is_quiet): its source ready (not settling: Kafka assigned, its start committed
 * and each partition answered by the broker once; files scanned), every partition fetched
 * once, nothing in flight or unwritten. A record fetched, or a sample that is not quiet,
 * starts the count again. So a slow start (a group join longer than the idle time) never
 * ends a run before the first fetch; the clock does not run from start-up.
 *
 * Delivery streams and --until-idle: a record put to a delivery stream counts as a record
 * fetched, so a run ends once no mapping fetched and no stream received a record for the idle
 * time; the end is a drain, which stops the HTTP server and delivers every buffer whatever its
 * BufferingHints, and the run exits only when all of it is written. */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "function.h"
#include "httpc.h"
#include "log.h"
#include "mapping.h"
#include "mapping_stats.h"
#include "stream_set.h"

#define DAEMON_COMP          "daemon"
#define DAEMON_POLL_MS       20
#define DAEMON_IDLE_CHECK_MS 100

struct daemon {
    const struct sl_config *cfg;
    struct sl_daemon_opts opts;
    uv_loop_t loop;
    struct sl_httpc *httpc;
    struct sl_function **fns; /* parallel to cfg->functions */
    struct sl_mapping **maps;
    size_t n_maps;
    struct sl_stream_set *streams; /* the delivery streams and their HTTP server, or NULL */
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t stats_timer;
    uv_timer_t watch_timer; /* idle detection, then drain progress */
    uv_timer_t drain_timer; /* drain_timeout */
    struct sl_daemon_idle idle;
    bool draining;
    bool drain_expired;
    bool done;
    bool stopping; /* daemon_stop_all: mappings and streams are going */
    int exit_code;
};

static void daemon_finish(struct daemon *d);

void sl_daemon_idle_init(struct sl_daemon_idle *w, const struct sl_clock *clock, int64_t idle_ms)
{
    memset(w, 0, sizeof(*w));
    w->clock = clock;
    w->idle_ms = idle_ms;
    w->record_ms = -1;
}

bool sl_daemon_idle_sample(struct sl_daemon_idle *w, bool quiet, uint64_t fetched)
{
    int64_t now = sl_clock_now_ms(w->clock);
    if (fetched != w->fetched) {
        w->fetched = fetched;
        w->record_ms = now;
        quiet = false;
    }
    if (!quiet) {
        w->quiet = false;
        return false;
    }
    if (!w->quiet) {
        w->quiet = true;
        w->since_ms = now;
    }
    return now - w->since_ms >= w->idle_ms;
}

/* One --until-idle sample of every mapping. */
static bool daemon_is_idle(struct daemon *d)
{
    bool quiet = true;
    uint64_t fetched = 0;
    for (size_t i = 0; i < d->n_maps; i++) {
        quiet = quiet && sl_mapping_is_quiet(d->maps[i]);
        fetched += sl_mapping_stats(d->maps[i])->fetched;
    }
    if (d->streams) {
        fetched += sl_stream_set_incoming(d->streams);
    }
    return sl_daemon_idle_sample(&d->idle, quiet, fetched);
}

static size_t daemon_in_flight(const struct daemon *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n_maps; i++) {
        n += (size_t)sl_mapping_in_flight(d->maps[i]);
    }
    /* After drain_timeout a stream's records wait no longer: they are lost at exit, said so,
     * since nothing else keeps them (until the durable spool does). */
    if (d->streams && !d->drain_expired) {
        n += sl_stream_set_in_flight(d->streams);
    }
    return n;
}

static void daemon_drain_expired_cb(uv_timer_t *t)
{
    struct daemon *d = t->data;
    size_t held = d->streams ? sl_stream_set_in_flight(d->streams) : 0;
    sl_log_warn(DAEMON_COMP, NULL,
                "drain_timeout reached with %zu invocations in flight; canceling them (their "
                "records are sent again on the next run)",
                daemon_in_flight(d) - held);
    d->drain_expired = true;
    for (size_t i = 0; i < d->n_maps; i++) {
        sl_mapping_cancel(d->maps[i]);
    }
    if (d->streams) {
        /* mappings' batches waiting for room in a spool, and transform batches in flight
         * (their records stay in the spool), before the functions stop: nothing is failed */
        sl_stream_set_cancel(d->streams);
    }
    for (size_t i = 0; i < d->cfg->n_functions; i++) {
        if (d->fns[i]) {
            sl_function_stop(d->fns[i]);
        }
    }
}

static void daemon_watch_cb(uv_timer_t *t)
{
    struct daemon *d = t->data;
    if (!d->draining) {
        if (!daemon_is_idle(d)) {
            return;
        }
        /* "last record read" is as precise as the samples (DAEMON_IDLE_CHECK_MS); the Kafka
         * benchmark reads it to tell when the last record was fetched. */
        if (d->idle.record_ms >= 0) {
            sl_log_info(DAEMON_COMP, NULL,
                        "idle for %lldms (last record read %lldms ago), stopping",
                        (long long)d->opts.idle_ms,
                        (long long)(sl_clock_now_ms(&sl_clock_system) - d->idle.record_ms));
        } else {
            sl_log_info(DAEMON_COMP, NULL, "idle for %lldms (no record read), stopping",
                        (long long)d->opts.idle_ms);
        }
        d->draining = true;
        for (size_t i = 0; i < d->n_maps; i++) {
            sl_mapping_drain(d->maps[i]);
        }
        if (d->streams) {
            sl_stream_set_drain(d->streams);
        }
        uv_timer_start(&d->drain_timer, daemon_drain_expired_cb, (uint64_t)d->cfg->drain_timeout_ms,
                       0);
        uv_timer_start(&d->watch_timer, daemon_watch_cb, DAEMON_POLL_MS, DAEMON_POLL_MS);
    }
    if (daemon_in_flight(d) == 0) {
        daemon_finish(d);
    }
}

static void daemon_begin_drain(struct daemon *d, const char *why)
{
    if (d->draining) {
        return;
    }
    size_t held = d->streams ? sl_stream_set_in_flight(d->streams) : 0;
    sl_log_info(DAEMON_COMP, NULL,
                "%s: draining (%zu invocations in flight, %zu delivery stream records to "
                "deliver, drain_timeout %lldms)",
                why, daemon_in_flight(d) - held, held, (long long)d->cfg->drain_timeout_ms);
    d->draining = true;
    for (size_t i = 0; i < d->n_maps; i++) {
        sl_mapping_drain(d->maps[i]);
    }
    if (d->streams) {
        sl_stream_set_drain(d->streams);
    }
    uv_timer_start(&d->drain_timer, daemon_drain_expired_cb, (uint64_t)d->cfg->drain_timeout_ms, 0);
    uv_timer_start(&d->watch_timer, daemon_watch_cb, 0, DAEMON_POLL_MS);
}

static void daemon_signal_cb(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (d->stopping) {
        return; /* already on the way out */
    }
    if (d->draining) {
        sl_log_warn(DAEMON_COMP, NULL, "%s again: canceling invocations in flight",
                    strsignal(signum));
        daemon_drain_expired_cb(&d->drain_timer);
        return;
    }
    daemon_begin_drain(d, strsignal(signum));
}

static void daemon_stats_cb(uv_timer_t *t)
{
    struct daemon *d = t->data;
    for (size_t i = 0; i < d->n_maps; i++) {
        sl_mapping_log_stats(d->maps[i], "progress");
    }
    if (d->streams) {
        sl_stream_set_log_stats(d->streams, "progress");
    }
}

/* Everything in flight is done: write the checkpoints and stop the loop. */
static void daemon_finish(struct daemon *d)
{
    if (d->done) {
        return;
    }
    d->done = true;
    for (size_t i = 0; i < d->n_maps; i++) {
        if (sl_mapping_flush(d->maps[i]) < 0) {
            sl_log_error(DAEMON_COMP, sl_mapping_name(d->maps[i]),
                         "cannot write the checkpoint at exit; records after the last written "
                         "one are sent again on the next run");
            d->exit_code = 1;
        }
        sl_mapping_log_stats(d->maps[i], "exit");
    }
    if (d->streams) {
        sl_stream_set_log_stats(d->streams, "exit");
        if (sl_stream_set_in_flight(d->streams) > 0) {
            d->exit_code = 1; /* records accepted and not delivered: each stream says how many */
        }
    }
    uv_stop(&d->loop);
}

static void daemon_close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

static int daemon_start(struct daemon *d)
{
    const struct sl_config *cfg = d->cfg;
    char errbuf[1024];
    int r = sl_httpc_new(&d->loop, &d->httpc);
    if (r < 0) {
        sl_log_error(DAEMON_COMP, NULL, "cannot start the HTTP client: %s", sl_strerror(r));
        return r;
    }
    d->fns = sl_calloc(cfg->n_functions ? cfg->n_functions : 1, sizeof(*d->fns));
    d->maps = sl_calloc(cfg->n_mappings ? cfg->n_mappings : 1, sizeof(*d->maps));
    if (!d->fns || !d->maps) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < cfg->n_functions; i++) {
        const struct sl_function_conf *fc = &cfg->functions[i];
        struct sl_function_env fenv = {
            .loop = &d->loop,
            .httpc = d->httpc,
            .clock = &sl_clock_system,
            .name = fc->name,
            .region = cfg->region,
        };
        errbuf[0] = '\0';
        r = sl_function_new(fc, &fenv, &d->fns[i], errbuf, sizeof(errbuf));
        if (r < 0) {
            sl_log_error(DAEMON_COMP, fc->name, "cannot set up function: %s",
                         errbuf[0] ? errbuf : sl_strerror(r));
            return r;
        }
    }
    /* The streams before the mappings: a mapping may feed one. */
    errbuf[0] = '\0';
    r = sl_stream_set_new(cfg, &d->loop, d->httpc, d->fns, &d->streams, errbuf, sizeof(errbuf));
    if (r < 0) {
        sl_log_error(DAEMON_COMP, NULL, "cannot start the delivery streams: %s",
                     errbuf[0] ? errbuf : sl_strerror(r));
        return r;
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        const struct sl_mapping_conf *mc = &cfg->mappings[i];
        if (!mc->core.enabled) {
            sl_log_info(DAEMON_COMP, mc->core.uuid, "mapping is disabled (Enabled: false)");
            continue;
        }
        struct sl_function *fn = NULL;
        for (size_t j = 0; j < cfg->n_functions; j++) {
            if (&cfg->functions[j] == mc->function) {
                fn = d->fns[j];
            }
        }
        if (mc->delivery_stream) {
            r = sl_stream_set_feed(d->streams, mc->stream_index, &fn);
            if (r < 0) {
                return r;
            }
        }
        struct sl_mapping_env menv = {
            .loop = &d->loop,
            .clock = &sl_clock_system,
            .state_dir = cfg->state_dir,
            .checkpoint_store = cfg->checkpoint_store,
            .lease_ttl_ms = cfg->lease_ttl_ms,
            .region = cfg->region,
            .fn = fn,
            .httpc = d->httpc,
        };
        errbuf[0] = '\0';
        r = sl_mapping_new(mc, &menv, &d->maps[d->n_maps], errbuf, sizeof(errbuf));
        if (r < 0) {
            sl_log_error(DAEMON_COMP, mc->core.uuid, "cannot set up mapping: %s",
                         errbuf[0] ? errbuf : sl_strerror(r));
            return r;
        }
        d->n_maps++;
    }
    for (size_t i = 0; i < d->n_maps; i++) {
        r = sl_mapping_start(d->maps[i]);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static void daemon_stop_all(struct daemon *d)
{
    /* Nothing of the daemon's runs from here on: the mappings and streams go while the loop still
     * runs (a spool closes on it), and a progress line, an idle or drain check or a signal's
     * drain would reach them half freed. */
    d->stopping = true;
    uv_timer_stop(&d->stats_timer);
    uv_timer_stop(&d->watch_timer);
    uv_timer_stop(&d->drain_timer);
    for (size_t i = 0; i < d->n_maps; i++) {
        sl_mapping_free(d->maps[i]);
    }
    sl_stream_set_free(d->streams);
    d->streams = NULL;
    for (size_t i = 0; d->fns && i < d->cfg->n_functions; i++) {
        if (d->fns[i]) {
            sl_function_stop(d->fns[i]);
        }
    }
    /* Let canceled invocations report and handles close before freeing what they use. */
    (void)uv_run(&d->loop, UV_RUN_NOWAIT);
    for (size_t i = 0; d->fns && i < d->cfg->n_functions; i++) {
        sl_function_free(d->fns[i]);
    }
    if (d->httpc) {
        sl_httpc_free(d->httpc);
    }
    uv_walk(&d->loop, daemon_close_walk_cb, NULL);
    (void)uv_run(&d->loop, UV_RUN_DEFAULT);
    sl_free(d->fns);
    sl_free(d->maps);
}

int sl_daemon_run(const struct sl_config *cfg, const struct sl_daemon_opts *opts)
{
    struct daemon d;
    memset(&d, 0, sizeof(d));
    d.cfg = cfg;
    d.opts = *opts;
    (void)signal(SIGPIPE, SIG_IGN);
    if (uv_loop_init(&d.loop) != 0) {
        sl_log_error(DAEMON_COMP, NULL, "cannot create the event loop");
        return 1;
    }
    uv_signal_init(&d.loop, &d.sigterm);
    uv_signal_init(&d.loop, &d.sigint);
    uv_timer_init(&d.loop, &d.stats_timer);
    uv_timer_init(&d.loop, &d.watch_timer);
    uv_timer_init(&d.loop, &d.drain_timer);
    d.sigterm.data = d.sigint.data = &d;
    d.stats_timer.data = d.watch_timer.data = d.drain_timer.data = &d;
    uv_signal_start(&d.sigterm, daemon_signal_cb, SIGTERM);
    uv_signal_start(&d.sigint, daemon_signal_cb, SIGINT);

    int r = daemon_start(&d);
    if (r < 0) {
        d.exit_code = 1;
    } else {
        uv_timer_start(&d.stats_timer, daemon_stats_cb, (uint64_t)cfg->stats_interval_ms,
                       (uint64_t)cfg->stats_interval_ms);
        if (opts->until_idle) {
            sl_daemon_idle_init(&d.idle, &sl_clock_system, opts->idle_ms);
            uv_timer_start(&d.watch_timer, daemon_watch_cb, DAEMON_IDLE_CHECK_MS,
                           DAEMON_IDLE_CHECK_MS);
        }
        sl_log_info(DAEMON_COMP, NULL, "running %zu mappings and %zu delivery streams%s", d.n_maps,
                    cfg->n_streams, opts->until_idle ? " until idle" : "");
        (void)uv_run(&d.loop, UV_RUN_DEFAULT);
    }
    daemon_stop_all(&d);
    if (uv_loop_close(&d.loop) != 0) {
        sl_log_debug(DAEMON_COMP, NULL, "loop closed with handles still open");
    }
    return d.exit_code;
}

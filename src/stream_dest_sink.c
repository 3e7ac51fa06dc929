/* SPDX-License-Identifier: Apache-2.0 */
/* stream_dest_sink.c: a delivery stream's SinkDestinationConfiguration (stream_dest.h): each
 * record of an object is one document of a sink (kafka://TOPIC: one message, produced by an
 * idempotent producer; redis://.../STREAM: one entry), written through the generic sink
 * interface (sl_sink_deliver, which cuts the object into the sink's calls). The object is done,
 * and its records may be released from the spool, only once every record is written: the
 * records a delivery did not write (RETRY or REJECTED: there is no backup to give them to) are
 * delivered again, alone and in their order, after a backoff (retry.c), for as long as it
 * runs, as the S3 destination does; a written record is never written again by this file (a
 * repeat comes only from a write whose answer was lost: at-least-once). It owns the sink's
 * state (opened with sl_sink_open from the configuration, closed on free), the retry timer and
 * the log line of each failed attempt. Loop thread. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "retry.h"
#include "sink.h"
#include "stream_dest_int.h"

struct dest_sink {
    const struct sl_stream_sink_conf *conf;
    const struct sl_sink_ops *ops;
    void *ctx; /* the open sink */
    const char *inst;
    struct sl_stream_dest_stats *stats;
    uv_timer_t timer;
    struct sl_retry_policy policy;
    uint64_t rng;
    unsigned attempts;        /* failed attempts of this object */
    struct sl_sink_doc *docs; /* the records not yet written, in order */
    size_t cap;
    size_t n_left;
    bool active;  /* an object is being delivered (done not yet called) */
    bool calling; /* a sl_sink_deliver is in flight */
    bool stopped;
    void (*done)(void *arg, int err);
    void *arg;
};

int dest_sink_new(const struct sl_stream_sink_conf *conf,
                  const struct sl_stream_dest_env *env,
                  const char *inst,
                  struct sl_stream_dest_stats *stats,
                  struct dest_sink **ret_s,
                  char *errbuf,
                  size_t errlen)
{
    struct dest_sink *s = sl_calloc(1, sizeof(*s));
    if (!s) {
        return SL_ENOMEM;
    }
    s->conf = conf;
    s->ops = conf->ops;
    s->inst = inst;
    s->stats = stats;
    sl_retry_policy_default(&s->policy);
    s->rng = (uint64_t)(uintptr_t)s ^ uv_hrtime();
    s->rng = s->rng ? s->rng : 1;
    struct sl_sink_env senv = {
        .loop = env->loop,
        .httpc = env->httpc,
        .clock = env->clock,
        .inst = inst,
        .region = "us-east-1",
        .cluster = conf->cluster.n > 0 ? &conf->cluster : NULL,
    };
    int r =
        sl_sink_open(s->ops, &senv, conf->destination, conf->options, NULL,
                     "SinkDestinationConfiguration.DestinationOptions", &s->ctx, errbuf, errlen);
    if (r < 0) {
        sl_free(s);
        return r;
    }
    (void)uv_timer_init(env->loop, &s->timer);
    s->timer.data = s;
    *ret_s = s;
    return 0;
}

static void sink_finish(struct dest_sink *s, int err)
{
    s->active = false;
    s->done(s->arg, err);
}

static void sink_attempt(struct dest_sink *s);

static void sink_timer_cb(uv_timer_t *t)
{
    struct dest_sink *s = t->data;
    if (s->stopped) {
        sink_finish(s, SL_ECANCELED);
        return;
    }
    sink_attempt(s);
}

/* Some records were not written: log the attempt and try them again after the backoff. */
static void sink_retry_later(struct dest_sink *s, size_t n_tried, int err, const char *detail)
{
    s->stats->failed_attempts++;
    s->attempts++;
    int64_t delay_ms = sl_retry_delay_ms(&s->policy, s->attempts, &s->rng);
    sl_log_warn(DEST_COMP, s->inst,
                "%s: %zu of %zu records not written (attempt %u): %s: %s, "
                "retrying in %lldms",
                s->ops->name, s->n_left, n_tried, s->attempts, sl_strerror(err),
                detail ? detail : "", (long long)delay_ms);
    (void)uv_timer_start(&s->timer, sink_timer_cb, (uint64_t)(s->stopped ? 0 : delay_ms), 0);
}

static void sink_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct dest_sink *s = arg;
    s->calling = false;
    size_t n_tried = s->n_left;
    size_t kept = 0;
    int err = 0;
    char detail[256] = "";
    for (size_t i = 0; i < n_tried; i++) {
        const struct sl_sink_result *res = i < n ? &results[i] : NULL;
        if (res && res->outcome == SL_SINK_DELIVERED) {
            s->stats->sink_records++;
            s->stats->sink_bytes += s->docs[i].len;
            continue;
        }
        if (!err) { /* the first failure says why */
            err = res ? res->err : SL_EPROTO;
            (void)snprintf(detail, sizeof(detail), "%s",
                           res && res->detail ? res->detail : "no result");
        }
        s->docs[kept++] = s->docs[i];
    }
    s->n_left = kept;
    if (kept == 0) {
        s->stats->sink_success++;
        sink_finish(s, 0);
        return;
    }
    if (s->stopped) {
        sink_finish(s, SL_ECANCELED);
        return;
    }
    sink_retry_later(s, n_tried, err, detail);
}

static void sink_attempt(struct dest_sink *s)
{
    s->calling = true;
    int r = sl_sink_deliver(s->ops, s->ctx, s->docs, s->n_left, sink_delivered, s);
    if (r < 0) {
        s->calling = false;
        sink_retry_later(s, s->n_left, r, "cannot start the delivery");
    }
}

int dest_sink_deliver(struct dest_sink *s,
                      const struct sl_stream_dest_rec *recs,
                      size_t n,
                      void (*done)(void *arg, int err),
                      void *arg)
{
    if (n > s->cap) {
        struct sl_sink_doc *docs = sl_realloc(s->docs, n * sizeof(*docs));
        if (!docs) {
            return SL_ENOMEM;
        }
        s->docs = docs;
        s->cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        s->docs[i] = (struct sl_sink_doc){
            .body = recs[i].data, .len = recs[i].len, .time_ms = recs[i].arrival_ms};
    }
    s->n_left = n;
    s->attempts = 0;
    s->done = done;
    s->arg = arg;
    s->active = true;
    /* Started on the timer: done never runs from inside this call, even when the sink
     * refuses to start. */
    (void)uv_timer_start(&s->timer, sink_timer_cb, 0, 0);
    return 0;
}

void dest_sink_stop(struct dest_sink *s)
{
    if (s->stopped) {
        return;
    }
    s->stopped = true;
    if (s->calling) {
        if (s->ops->stop) {
            s->ops->stop(s->ctx); /* the delivery in flight answers, canceled */
        }
    } else if (s->active) {
        (void)uv_timer_start(&s->timer, sink_timer_cb, 0, 0); /* end now, on the timer */
    }
}

void dest_sink_retry_now(struct dest_sink *s)
{
    if (s->active && !s->calling && !s->stopped && uv_is_active((uv_handle_t *)&s->timer)) {
        (void)uv_timer_start(&s->timer, sink_timer_cb, 0, 0);
    }
}

static void sink_closed(uv_handle_t *h)
{
    struct dest_sink *s = h->data;
    sl_free(s->docs);
    sl_free(s);
}

void dest_sink_free(struct dest_sink *s)
{
    if (!s) {
        return;
    }
    sl_sink_close(s->ops, s->ctx);
    s->ctx = NULL;
    uv_close((uv_handle_t *)&s->timer, sink_closed);
}

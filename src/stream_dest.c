/* SPDX-License-Identifier: Apache-2.0 */
/* stream_dest.c: a delivery stream's destination behind one asynchronous call per object
 * (stream_dest.h). It owns the choice of destination from the configuration, the S3 one itself
 * (the key from Prefix at the oldest record's arrival, made once so every retry writes the same
 * object; the write through stream_dest_put.c, retried until it is stored) and the counters;
 * the HTTP endpoint is stream_dest_http.c's, a sink destination (Kafka, Redis)
 * stream_dest_sink.c's; objects of error records (processing-failed, partitioning-failed) go
 * under ErrorOutputPrefix of the S3 destination or of the endpoint's S3Configuration (a sink
 * destination has neither a transform nor partitioning, so no error records). One object in
 * flight. Loop thread. */
#include "stream_dest.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "stream_dest_int.h"

struct sl_stream_dest {
    const struct sl_stream_conf *sc;
    struct sl_stream_dest_env env;
    char *source_arn;
    struct dest_target target; /* the S3 destination, or the HTTP endpoint's backup */
    struct dest_put put;
    struct dest_http *http; /* the HTTP endpoint, or NULL */
    struct dest_sink *sink; /* a SinkDestinationConfiguration, or NULL */
    struct sl_stream_dest_stats stats;
    struct iovec *iov; /* the object's records as iovecs */
    size_t iov_cap;
    size_t n;
    uint64_t bytes;
    sl_stream_dest_cb cb;
    void *arg;
    bool busy;
    bool stopped;
    bool error_obj; /* the object in flight holds error records */
};

int sl_stream_dest_new(const struct sl_stream_conf *sc,
                       const struct sl_stream_dest_env *env,
                       struct sl_stream_dest **ret_d,
                       char *errbuf,
                       size_t errlen)
{
    struct sl_stream_dest *d = sl_calloc(1, sizeof(*d));
    if (!d) {
        return SL_ENOMEM;
    }
    d->sc = sc;
    d->env = *env;
    d->source_arn = sl_strdup(env->source_arn ? env->source_arn : "");
    if (!d->source_arn) {
        sl_free(d);
        return SL_ENOMEM;
    }
    d->env.source_arn = d->source_arn;
    dest_put_init(&d->put, env->loop, sc->name);
    d->put.stats = &d->stats;
    int r = sc->sink
                ? dest_sink_new(sc->sink, &d->env, sc->name, &d->stats, &d->sink, errbuf, errlen)
                : dest_target_open(&d->target, sc, env, errbuf, errlen);
    if (r == 0 && sc->http) {
        r = dest_http_new(sc->http, &d->env, sc->name, &d->target, &d->put, &d->stats, &d->http);
    }
    if (r < 0) {
        sl_stream_dest_free(d);
        return r;
    }
    *ret_d = d;
    return 0;
}

static void dest_done(void *arg, int err)
{
    struct sl_stream_dest *d = arg;
    d->busy = false;
    if (err == 0 && !d->http && !d->sink && !d->error_obj) {
        d->stats.s3_records += d->n;
        d->stats.s3_bytes += d->bytes;
        d->stats.s3_success++;
    }
    d->cb(d->arg, err);
}

int sl_stream_dest_deliver(struct sl_stream_dest *d,
                           const struct sl_stream_dest_rec *recs,
                           size_t n,
                           int64_t oldest_ms,
                           sl_stream_dest_cb cb,
                           void *arg)
{
    struct sl_stream_dest_obj o = {.recs = recs, .n = n, .oldest_ms = oldest_ms};
    return sl_stream_dest_deliver_obj(d, &o, cb, arg);
}

int sl_stream_dest_deliver_obj(struct sl_stream_dest *d,
                               const struct sl_stream_dest_obj *o,
                               sl_stream_dest_cb cb,
                               void *arg)
{
    const struct sl_stream_dest_rec *recs = o->recs;
    size_t n = o->n;
    assert(n >= 1);
    if (d->busy) {
        return SL_EAGAIN;
    }
    if (d->stopped) {
        return SL_ECANCELED;
    }
    if (n > d->iov_cap) {
        struct iovec *iov = sl_realloc(d->iov, n * sizeof(*iov));
        if (!iov) {
            return SL_ENOMEM;
        }
        d->iov = iov;
        d->iov_cap = n;
    }
    d->bytes = 0;
    for (size_t i = 0; i < n; i++) {
        d->iov[i] = (struct iovec){(void *)recs[i].data, recs[i].len};
        d->bytes += recs[i].len;
    }
    d->n = n;
    d->cb = cb;
    d->arg = arg;
    int r;
    d->error_obj = o->error_type != NULL;
    if (d->sink) {
        /* no error objects: the configuration allows no transform or partitioning here */
        assert(!o->error_type);
        r = dest_sink_deliver(d->sink, recs, n, dest_done, d);
    } else if (d->http && !o->error_type) {
        r = dest_http_deliver(d->http, recs, d->iov, n, o->oldest_ms, dest_done, d);
    } else {
        /* The key is made once per object: every retry writes the same one. Error records go
         * to the S3 destination, or the HTTP endpoint's S3Configuration (target). */
        struct sl_buf key;
        sl_buf_init(&key);
        char err[256] = "";
        struct sl_s3_vars vars = {.time_ms = o->oldest_ms,
                                  .query = o->query,
                                  .lambda = o->lambda,
                                  .error_type = o->error_type};
        r = dest_target_key_vars(&d->target, d->sc->name, &vars, o->error_type != NULL, &key, err,
                                 sizeof(err));
        if (r < 0 && r != SL_ENOMEM) {
            sl_log_error(DEST_COMP, d->sc->name, "cannot name the object: %s", err);
        }
        if (r == 0) {
            r = dest_put_start(&d->put, &d->target, key.data, d->iov, n, n, dest_done, d);
        }
        sl_buf_fini(&key);
    }
    if (r < 0) {
        return r;
    }
    d->busy = true;
    return 0;
}

void sl_stream_dest_retry_now(struct sl_stream_dest *d)
{
    if (d->sink) {
        dest_sink_retry_now(d->sink);
        return;
    }
    dest_put_retry_now(&d->put);
}

void sl_stream_dest_stop(struct sl_stream_dest *d)
{
    d->stopped = true;
    if (d->sink) {
        dest_sink_stop(d->sink);
    } else if (d->http && !d->error_obj) {
        dest_http_stop(d->http);
    } else {
        dest_put_stop(&d->put);
    }
}

bool sl_stream_dest_busy(const struct sl_stream_dest *d)
{
    return d->busy;
}

bool sl_stream_dest_is_http(const struct sl_stream_dest *d)
{
    return d->http != NULL;
}

const struct sl_stream_dest_stats *sl_stream_dest_stats(const struct sl_stream_dest *d)
{
    return &d->stats;
}

static void dest_close_cb(uv_handle_t *h)
{
    struct dest_put *p = h->data;
    sl_free((char *)p - offsetof(struct sl_stream_dest, put));
}

void sl_stream_dest_free(struct sl_stream_dest *d)
{
    if (!d) {
        return;
    }
    assert(!d->busy);
    dest_http_free(d->http);
    dest_sink_free(d->sink);
    dest_target_close(&d->target);
    sl_free(d->iov);
    sl_free(d->source_arn);
    dest_put_fini(&d->put, dest_close_cb);
}

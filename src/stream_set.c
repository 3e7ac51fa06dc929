/* SPDX-License-Identifier: Apache-2.0 */
/* stream_set.c: the delivery streams of a run and the HTTP server that feeds them. It starts
 * the server only when there is a delivery stream, routes its requests to the Firehose API
 * (firehose_api.c) with the streams as the API's host (each stream's spool in
 * state_dir/streams/<DeliveryStreamName>), and drains, counts and frees the streams for the
 * daemon, and cancels their transforms at drain_timeout. A drain (SIGTERM, end of --until-idle)
 * refuses new puts at once (the API answers ServiceUnavailableException, which the SDKs retry),
 * lets the puts already being made durable be answered, and delivers what the streams hold. It
 * holds no buffering or API rules of its own. Loop thread. */
#include "stream_set.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "firehose_api.h"
#include "httpd.h"
#include "log.h"
#include "stream.h"
#include "stream_dest.h"

#define SET_COMP "httpd"

struct sl_stream_set {
    const struct sl_config *cfg;
    struct sl_stream **streams;
    size_t n;
    struct sl_httpd *httpd;
    struct sl_firehose_host host;
    uv_loop_t *loop;
    bool draining; /* shutting down: new puts are refused, taken ones delivered */
    bool stopping; /* the streams are being freed: puts are refused */
};

static const struct sl_stream_conf *set_conf_at(void *arg, size_t i)
{
    struct sl_stream_set *set = arg;
    return &set->cfg->streams[i];
}

static int set_put(void *arg,
                   size_t i,
                   const struct sl_firehose_rec *recs,
                   size_t n,
                   size_t *ret_took,
                   sl_firehose_put_cb cb,
                   void *cb_arg)
{
    struct sl_stream_set *set = arg;
    if (set->draining || set->stopping) {
        /* Answered ServiceUnavailableException, which the SDKs retry: sent again, to this
         * process's successor, nothing is lost. */
        return SL_ECANCELED;
    }
    return sl_stream_put(set->streams[i], recs, n, ret_took, cb, cb_arg);
}

static void set_handler(void *arg, struct sl_httpd_req *req)
{
    struct sl_stream_set *set = arg;
    sl_firehose_api_serve(&set->host, req);
}

int sl_stream_set_new(const struct sl_config *cfg,
                      uv_loop_t *loop,
                      struct sl_httpc *httpc,
                      struct sl_function *const *fns,
                      struct sl_stream_set **ret_set,
                      char *errbuf,
                      size_t errlen)
{
    *ret_set = NULL;
    if (cfg->n_streams == 0) {
        return 0;
    }
    struct sl_stream_set *set = sl_calloc(1, sizeof(*set));
    if (!set) {
        return SL_ENOMEM;
    }
    set->cfg = cfg;
    set->loop = loop;
    set->streams = sl_calloc(cfg->n_streams, sizeof(*set->streams));
    if (!set->streams) {
        sl_free(set);
        return SL_ENOMEM;
    }
    int r = 0;
    for (size_t i = 0; i < cfg->n_streams && r == 0; i++) {
        const struct sl_stream_conf *sc = &cfg->streams[i];
        /* Each stream's spool in a directory of its own, named after the stream. */
        char dir[4096];
        int len = snprintf(dir, sizeof(dir), "%s/streams/%s", cfg->state_dir, sc->name);
        if (len < 0 || (size_t)len >= sizeof(dir)) {
            (void)snprintf(errbuf, errlen, "%s: state_dir is too long for a spool directory",
                           sc->path);
            r = SL_EINVAL;
            break;
        }
        char arn[256];
        (void)snprintf(arn, sizeof(arn), "arn:aws:firehose:%s:%s:deliverystream/%s",
                       cfg->region ? cfg->region : "us-east-1", SL_FIREHOSE_ACCOUNT_DEFAULT,
                       sc->name);
        struct sl_stream_dest_env denv = {
            .loop = loop, .httpc = httpc, .clock = &sl_clock_system, .source_arn = arn};
        struct sl_stream_env env = {
            .loop = loop,
            .clock = &sl_clock_system,
            .spool_dir = dir,
            .spool_max_bytes =
                (uint64_t)(sc->spool_max_bytes > 0 ? sc->spool_max_bytes : cfg->spool_max_bytes),
            .fn = sc->transform_fn ? fns[sc->transform_fn - cfg->functions] : NULL,
            .stream_arn = arn,
            .region = cfg->region,
        };
        char err[512] = "";
        r = sl_stream_dest_new(sc, &denv, &env.dest, err, sizeof(err));
        if (r < 0) {
            (void)snprintf(errbuf, errlen, "%s: %s", sc->path, err[0] ? err : sl_strerror(r));
            break;
        }
        r = sl_stream_new(sc, &env, &set->streams[i], errbuf, errlen);
        set->n += r == 0;
    }
    uint64_t salt = 0;
    if (uv_random(NULL, NULL, &salt, sizeof(salt), 0, NULL) != 0) {
        salt = (uint64_t)sl_clock_wall_ms(&sl_clock_system);
    }
    set->host = (struct sl_firehose_host){
        .arg = set,
        .region = cfg->region,
        .account = SL_FIREHOSE_ACCOUNT_DEFAULT,
        .created_s = (double)sl_clock_wall_ms(&sl_clock_system) / 1000.0,
        .n_streams = cfg->n_streams,
        .conf_at = set_conf_at,
        .put = set_put,
        .id_salt = salt,
    };
    if (r == 0) {
        struct sl_httpd_conf hc = {
            .listen = cfg->listen,
            .max_body_bytes = SL_FIREHOSE_BODY_MAX,
            .max_conns = 256,
            .idle_timeout_s = 60,
            .handler = set_handler,
            .arg = set,
        };
        r = sl_httpd_new(loop, &hc, &set->httpd, errbuf, errlen);
    }
    if (r < 0) {
        sl_stream_set_free(set);
        return r;
    }
    /* Tests and scripts read the port from this line when `listen` asked for port 0. */
    sl_log_info(SET_COMP, NULL, "listening on %s (port %d): Firehose API for %zu delivery stream%s",
                cfg->listen, sl_httpd_port(set->httpd), set->n, set->n == 1 ? "" : "s");
    *ret_set = set;
    return 0;
}

void sl_stream_set_drain(struct sl_stream_set *set)
{
    set->draining = true;
    if (set->httpd) {
        sl_httpd_quiesce(set->httpd);
    }
    for (size_t i = 0; i < set->n; i++) {
        sl_stream_drain(set->streams[i]);
    }
}

void sl_stream_set_cancel(struct sl_stream_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        sl_stream_cancel(set->streams[i]);
    }
}

size_t sl_stream_set_in_flight(const struct sl_stream_set *set)
{
    size_t n = set->httpd ? sl_httpd_busy(set->httpd) : 0;
    for (size_t i = 0; i < set->n; i++) {
        n += sl_stream_held(set->streams[i]);
    }
    return n;
}

uint64_t sl_stream_set_incoming(const struct sl_stream_set *set)
{
    uint64_t n = 0;
    for (size_t i = 0; i < set->n; i++) {
        n += sl_stream_stats(set->streams[i])->incoming_records;
    }
    return n;
}

void sl_stream_set_log_stats(const struct sl_stream_set *set, const char *msg)
{
    for (size_t i = 0; i < set->n; i++) {
        sl_stream_log_stats(set->streams[i], msg);
    }
}

void sl_stream_set_free(struct sl_stream_set *set)
{
    if (!set) {
        return;
    }
    set->stopping = true;
    if (set->httpd) {
        sl_httpd_quiesce(set->httpd);
    }
    for (size_t i = 0; i < set->n; i++) {
        sl_stream_free(set->streams[i]);
    }
    /* The spools finish closing on the loop: puts waiting for a sync are answered then, which
     * the server needs before it stops (it cannot stop with a request still waiting). */
    while (sl_stream_closing() > 0 && uv_run(set->loop, UV_RUN_ONCE) != 0) {
    }
    sl_httpd_free(set->httpd);
    sl_free(set->streams);
    sl_free(set);
}

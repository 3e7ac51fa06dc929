/* SPDX-License-Identifier: Apache-2.0 */
/* stream_dest_http.c: a delivery stream's HTTP endpoint destination (wire.md §4.3): one object
 * is one request through fh_http.c (retried there for RetryOptions.DurationInSeconds, with the
 * same requestId), then the backup: with S3BackupMode AllData every record is written, as it
 * came, to the S3Configuration under its Prefix; when the endpoint failed for the whole
 * duration the records are written as Firehose's error records under ErrorOutputPrefix with
 * error-output-type http-endpoint-failed. Backup objects are retried until they are stored
 * (stream_dest_put.c), so the object is done, and its records released, only once they are
 * delivered or backed up; never dropped. It logs the failed attempts and the backup. Loop
 * thread. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "fh_http.h"
#include "log.h"
#include "stream_dest_int.h"

struct dest_http {
    const struct sl_fh_http_conf *conf;
    struct sl_fh_http_env env;
    struct dest_target *backup;
    struct dest_put *put;
    struct sl_stream_dest_stats *stats;
    struct sl_fh_http_delivery *d; /* the request in flight, or NULL */
    struct sl_fh_http_rec *recs;
    size_t recs_cap;
    const struct iovec *iov;
    size_t n;
    uint64_t bytes;
    int64_t oldest_ms;
    struct sl_buf lines; /* the error records of a failed delivery */
    struct iovec lines_iov;
    bool failed;        /* the endpoint failed for the retry duration */
    bool all_written;   /* AllData: the records are in the backup */
    bool lines_written; /* the error records are in the backup */
    bool stopped;
    void (*done)(void *arg, int err);
    void *arg;
};

int dest_http_new(const struct sl_fh_http_conf *conf,
                  const struct sl_stream_dest_env *env,
                  const char *inst,
                  struct dest_target *backup,
                  struct dest_put *put,
                  struct sl_stream_dest_stats *stats,
                  struct dest_http **ret_h)
{
    struct dest_http *h = sl_calloc(1, sizeof(*h));
    if (!h) {
        return SL_ENOMEM;
    }
    h->conf = conf;
    h->env = (struct sl_fh_http_env){
        .loop = env->loop,
        .httpc = env->httpc,
        .clock = env->clock,
        .inst = inst,
        .source_arn = env->source_arn,
    };
    h->backup = backup;
    h->put = put;
    h->stats = stats;
    sl_buf_init(&h->lines);
    *ret_h = h;
    return 0;
}

static void http_finish(struct dest_http *h, int err)
{
    sl_buf_fini(&h->lines);
    sl_buf_init(&h->lines);
    h->done(h->arg, err);
}

static void http_put_done(void *arg, int err);

/* The backup writes still to do, one at a time; then the end. */
static void http_next(struct dest_http *h)
{
    const char *inst = h->env.inst;
    if (h->stopped) {
        http_finish(h, SL_ECANCELED);
        return;
    }
    const char *type = NULL;
    const struct iovec *iov = NULL;
    size_t n = 0;
    if (h->conf->backup_all && !h->all_written) {
        iov = h->iov;
        n = h->n;
    } else if (h->failed && !h->lines_written) {
        type = SL_S3_HTTP_ENDPOINT_FAILED;
        h->lines_iov = (struct iovec){h->lines.data, h->lines.len};
        iov = &h->lines_iov;
        n = 1;
    } else {
        http_finish(h, 0);
        return;
    }
    struct sl_buf key;
    sl_buf_init(&key);
    char err[256] = "";
    int r = dest_target_key(h->backup, inst, h->oldest_ms, type, &key, err, sizeof(err));
    if (r == 0) {
        r = dest_put_start(h->put, h->backup, key.data, iov, n, h->n, http_put_done, h);
    }
    if (r == 0 && type) {
        sl_log_warn(DEST_COMP, inst, "backing up %zu records as %s", h->n, key.data);
    }
    sl_buf_fini(&key);
    if (r < 0) {
        /* Nothing was written: the records stay with the stream, which tries them again. */
        sl_log_error(DEST_COMP, inst, "cannot start the backup: %s, retrying",
                     err[0] ? err : sl_strerror(r));
        http_finish(h, r);
    }
}

static void http_put_done(void *arg, int err)
{
    struct dest_http *h = arg;
    if (err < 0) {
        http_finish(h, err);
        return;
    }
    h->stats->backup_records += h->n;
    h->stats->backup_success++;
    if (h->conf->backup_all && !h->all_written) {
        h->all_written = true;
    } else {
        h->lines_written = true;
    }
    http_next(h);
}

static void http_retrying(void *arg, const struct sl_fh_http_result *last, int64_t delay_ms)
{
    struct dest_http *h = arg;
    h->stats->failed_attempts++;
    sl_log_warn(DEST_COMP, h->env.inst,
                "HTTP endpoint attempt %u failed: %s: %s, retrying in %lldms", last->attempts,
                last->error_code ? last->error_code : sl_strerror(last->err),
                last->error_message ? last->error_message : "", (long long)delay_ms);
}

static void http_done(void *arg, struct sl_fh_http_delivery *d, const struct sl_fh_http_result *res)
{
    (void)d;
    struct dest_http *h = arg;
    h->d = NULL;
    if (res->err == SL_ECANCELED) {
        http_finish(h, SL_ECANCELED);
        return;
    }
    if (res->err == 0) {
        h->stats->http_records += h->n;
        h->stats->http_bytes += h->bytes;
        h->stats->http_success++;
        http_next(h);
        return;
    }
    sl_log_warn(DEST_COMP, h->env.inst,
                "HTTP endpoint failed for the retry duration (%u attempts): %s: %s; writing the "
                "records to the backup under %s",
                res->attempts, res->error_code ? res->error_code : sl_strerror(res->err),
                res->error_message ? res->error_message : "", SL_S3_HTTP_ENDPOINT_FAILED);
    if (sl_fh_http_error_lines(h->recs, h->n, res, &h->lines) < 0) {
        http_finish(h, SL_ENOMEM); /* the stream keeps the records and tries again */
        return;
    }
    h->failed = true;
    http_next(h);
}

int dest_http_deliver(struct dest_http *h,
                      const struct sl_stream_dest_rec *recs,
                      const struct iovec *iov,
                      size_t n,
                      int64_t oldest_ms,
                      void (*done)(void *arg, int err),
                      void *arg)
{
    if (n > h->recs_cap) {
        struct sl_fh_http_rec *r = sl_realloc(h->recs, n * sizeof(*r));
        if (!r) {
            return SL_ENOMEM;
        }
        h->recs = r;
        h->recs_cap = n;
    }
    h->bytes = 0;
    for (size_t i = 0; i < n; i++) {
        h->recs[i] = (struct sl_fh_http_rec){recs[i].data, recs[i].len, recs[i].arrival_ms, NULL};
        h->bytes += recs[i].len;
    }
    h->iov = iov;
    h->n = n;
    h->oldest_ms = oldest_ms;
    h->failed = h->all_written = h->lines_written = h->stopped = false;
    h->done = done;
    h->arg = arg;
    static const struct sl_fh_http_ops ops = {.done = http_done, .retrying = http_retrying};
    return sl_fh_http_deliver(h->conf, &h->env, h->recs, n, &ops, h, &h->d);
}

void dest_http_stop(struct dest_http *h)
{
    h->stopped = true;
    if (h->d) {
        sl_fh_http_cancel(h->d);
    } else {
        dest_put_stop(h->put);
    }
}

void dest_http_free(struct dest_http *h)
{
    if (!h) {
        return;
    }
    sl_buf_fini(&h->lines);
    sl_free(h->recs);
    sl_free(h);
}

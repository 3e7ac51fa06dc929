/* SPDX-License-Identifier: Apache-2.0 */
/* stream_dest_put.c: a delivery stream's objects written to their bucket: the target (a
 * file:///dir through s3_file.c, or arn:aws:s3:::BUCKET through s3_put.c, with the key layout
 * and the compression of its configuration) and one object written to it, tried again with
 * backoff, with the same key and body, until it is stored. Firehose retries S3 for 24 hours and
 * then loses the data; sluice keeps trying for as long as it runs (a record is never dropped),
 * and only a stop ends the attempts. It logs each failed attempt (the boundary that handles
 * it). Loop thread. */
#include "stream_dest_int.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "config.h"
#include "log.h"

#define DEST_PUT_TIMEOUT_MS 300000 /* one PutObject, whole: 5 minutes */

/* ------------------------------------------------------------------------------------------ */
/* Targets */

int dest_target_open(struct dest_target *t,
                     const struct sl_stream_conf *sc,
                     const struct sl_stream_dest_env *env,
                     char *errbuf,
                     size_t errlen)
{
    memset(t, 0, sizeof(*t));
    t->layout = sc->layout;
    t->comp = sc->compression == SL_STREAM_GZIP ? SL_S3_GZIP : SL_S3_UNCOMPRESSED;
    t->ext = t->comp == SL_S3_GZIP ? sl_s3_keys_extension("GZIP") : "";
    if (sc->dir) {
        return sl_s3_file_new(env->loop, sc->bucket_arn, &t->file, errbuf, errlen);
    }
    if (!env->httpc) {
        (void)snprintf(errbuf, errlen, "%s: no HTTP client for the S3 API", sc->bucket_arn);
        return SL_ECONFIG;
    }
    return sl_s3_put_new(env->httpc, NULL, sc->bucket_arn, &t->put, errbuf, errlen);
}

void dest_target_close(struct dest_target *t)
{
    if (t->file) {
        sl_s3_file_free(t->file);
    }
    if (t->put) {
        sl_s3_put_free(t->put);
    }
    memset(t, 0, sizeof(*t));
}

int dest_target_key(const struct dest_target *t,
                    const char *stream,
                    int64_t time_ms,
                    const char *error_type,
                    struct sl_buf *key,
                    char *errbuf,
                    size_t errlen)
{
    struct sl_s3_vars vars = {.time_ms = time_ms, .error_type = error_type};
    return dest_target_key_vars(t, stream, &vars, error_type != NULL, key, errbuf, errlen);
}

int dest_target_key_vars(const struct dest_target *t,
                         const char *stream,
                         const struct sl_s3_vars *vars,
                         bool error,
                         struct sl_buf *key,
                         char *errbuf,
                         size_t errlen)
{
    /* Stream version 1: sluice does not change a running stream's destination. */
    return sl_s3_layout_key_of(t->layout, vars, error, stream, 1, t->ext, key, errbuf, errlen);
}

/* ------------------------------------------------------------------------------------------ */
/* One object */

static void put_attempt(struct dest_put *p);

void dest_put_init(struct dest_put *p, uv_loop_t *loop, const char *inst)
{
    memset(p, 0, sizeof(*p));
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->inst = inst;
    sl_buf_init(&p->key);
    sl_buf_init(&p->body);
    sl_retry_policy_default(&p->policy);
    p->rng = (uint64_t)(uintptr_t)p | 1;
}

void dest_put_fini(struct dest_put *p, uv_close_cb cb)
{
    assert(!p->active);
    sl_buf_fini(&p->key);
    sl_buf_fini(&p->body);
    uv_close((uv_handle_t *)&p->timer, cb);
}

/* The end of the object: done runs once, with 0 or SL_ECANCELED. */
static void put_finish(struct dest_put *p, int err)
{
    p->active = false;
    sl_buf_truncate(&p->key, 0);
    sl_buf_fini(&p->body);
    sl_buf_init(&p->body);
    p->done(p->arg, err);
}

/* Runs the next attempt, or ends a stopped put (on the timer, so never from inside a call). */
static void put_timer_cb(uv_timer_t *timer)
{
    struct dest_put *p = timer->data;
    if (p->stopped) {
        put_finish(p, SL_ECANCELED);
        return;
    }
    put_attempt(p);
}

static void put_result(struct dest_put *p, int err, const char *detail)
{
    p->writing = false;
    if (err == 0) {
        if (p->attempts > 1) {
            sl_log_info(DEST_COMP, p->inst, "wrote %s after %u attempts", p->key.data, p->attempts);
        }
        put_finish(p, 0);
        return;
    }
    if (p->stopped) {
        put_finish(p, SL_ECANCELED);
        return;
    }
    p->stats->failed_attempts++;
    int64_t delay = sl_retry_delay_ms(&p->policy, p->attempts, &p->rng);
    sl_log_warn(DEST_COMP, p->inst,
                "cannot deliver %zu records as %s (attempt %u): %s, retrying in %lldms",
                p->n_records, p->key.data, p->attempts, detail ? detail : sl_strerror(err),
                (long long)delay);
    uv_timer_start(&p->timer, put_timer_cb, (uint64_t)delay, 0);
}

static void put_file_cb(void *arg, int err, const char *detail)
{
    put_result(arg, err, detail);
}

static void put_s3_cb(void *arg, int err, long status, const char *detail)
{
    struct dest_put *p = arg;
    char msg[640];
    (void)snprintf(msg, sizeof(msg), "%s (HTTP %ld)%s%s", sl_strerror(err), status,
                   detail ? ": " : "", detail ? detail : "");
    put_result(p, err, msg);
}

static void put_attempt(struct dest_put *p)
{
    p->attempts++;
    int r;
    if (p->t->file) {
        r = sl_s3_file_put(p->t->file, p->key.data, p->iov, p->n, p->t->comp, put_file_cb, p);
    } else {
        r = 0;
        if (p->body.len == 0) {
            r = sl_s3_object_build(p->iov, p->n, p->t->comp, &p->body);
        }
        if (r == 0) {
            r = sl_s3_put_object(p->t->put, p->key.data, p->body.data ? p->body.data : "",
                                 p->body.len, DEST_PUT_TIMEOUT_MS, put_s3_cb, p);
        }
    }
    if (r < 0) {
        /* Not started (out of memory): tried again after the backoff like a failed write. */
        p->writing = true;
        put_result(p, r, "cannot start the write");
        return;
    }
    p->writing = true;
}

int dest_put_start(struct dest_put *p,
                   struct dest_target *t,
                   const char *key,
                   const struct iovec *recs,
                   size_t n,
                   size_t n_records,
                   void (*done)(void *arg, int err),
                   void *arg)
{
    assert(!p->active);
    sl_buf_truncate(&p->key, 0);
    if (sl_buf_append(&p->key, key, strlen(key)) < 0) {
        return SL_ENOMEM;
    }
    p->t = t;
    p->iov = recs;
    p->n = n;
    p->n_records = n_records;
    p->attempts = 0;
    p->done = done;
    p->arg = arg;
    p->active = true;
    p->stopped = false;
    /* The first attempt on the next loop turn, so done never runs inside this call. */
    uv_timer_start(&p->timer, put_timer_cb, 0, 0);
    return 0;
}

void dest_put_stop(struct dest_put *p)
{
    if (!p->active || p->stopped) {
        return;
    }
    p->stopped = true;
    if (p->writing) {
        if (p->t->file) {
            sl_s3_file_stop(p->t->file);
        } else {
            sl_s3_put_stop(p->t->put);
        }
        return;
    }
    /* Waiting for the next attempt: end now, on the timer. */
    uv_timer_start(&p->timer, put_timer_cb, 0, 0);
}

void dest_put_retry_now(struct dest_put *p)
{
    if (p->active && !p->writing && !p->stopped && uv_is_active((uv_handle_t *)&p->timer)) {
        uv_timer_start(&p->timer, put_timer_cb, 0, 0);
    }
}

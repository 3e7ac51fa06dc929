/* SPDX-License-Identifier: Apache-2.0 */
/* fh_http.c: one delivery of a buffer to a Firehose HTTP endpoint (fh_http.h): the request
 * built once (body, headers, requestId) and POSTed through the loop's HTTP client, repeated
 * after each failure with Firehose's backoff until the retry duration is used up, then one
 * report to the caller. It owns the delivery's state (the body, the headers, the timer between
 * attempts, the retry budget); what goes on the wire and how an answer is judged are
 * fh_http_wire.c's, what happens to the records after is the caller's.
 *
 * The retry duration is counted as AWS's RetryOptions says: it starts when the first attempt
 * fails and counts only the waits between attempts, never the time spent waiting for an answer
 * (that one is bounded by the response timeout; an attempt in flight when the duration runs out
 * is still awaited). The waits are measured with the stream's clock (now_ms), so a test with a
 * fake clock decides how much time each wait took.
 *
 * Every attempt starts from the timer (the first after 0 ms), so the caller's callback never
 * runs inside sl_fh_http_deliver and a request that cannot even start counts as a failed attempt
 * like any other. The end always goes through closing the timer, and the callback runs from the
 * close callback, after which the delivery is freed. Loop thread only. Logs at debug level only,
 * with the URL redacted and never the access key (nor the endpoint's answer, which could echo
 * it). */
#include "fh_http_int.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "url.h"

#define FH_HTTP_COMP "fh_http"

enum fh_http_state {
    FH_HTTP_WAITING,   /* the timer runs: the next attempt starts when it fires */
    FH_HTTP_IN_FLIGHT, /* a request is out */
    FH_HTTP_ENDING,    /* the timer is closing; done runs from its close callback */
    FH_HTTP_STATE_COUNT
};

struct sl_fh_http_delivery {
    const struct sl_fh_http_conf *conf;
    struct sl_fh_http_env env;
    struct sl_retry_policy policy;
    uint64_t rng;
    struct sl_fh_http_ops ops;
    void *arg;
    char request_id[FH_HTTP_MAX_REQUEST_ID + 1];
    char shown[SL_URL_REDACTED_MAX]; /* the URL, redacted, for the log */
    struct sl_buf body;
    struct curl_slist *headers;
    uv_timer_t timer;
    enum fh_http_state state;
    bool canceled;
    bool in_retrying; /* inside ops.retrying: a cancel there is handled after it returns */
    unsigned attempts;
    int64_t spent_ms;  /* retry duration used: the waits between attempts */
    int64_t failed_at; /* now_ms when the last wait began */
    int64_t attempt_ending_ms;
    struct fh_http_verdict last;
    struct sl_buf message; /* the last attempt's error message */
};

static void fh_http_free(struct sl_fh_http_delivery *d)
{
    sl_buf_fini(&d->body);
    sl_buf_fini(&d->message);
    curl_slist_free_all(d->headers);
    sl_free(d);
}

static void fh_http_closed(uv_handle_t *h)
{
    struct sl_fh_http_delivery *d = h->data;
    struct sl_fh_http_result res = {
        .err = d->last.err,
        .error_code = d->last.err && d->last.err != SL_ECANCELED ? d->last.error_code : NULL,
        .error_message = d->last.err && d->message.data ? d->message.data : "",
        .status = d->last.status,
        .attempts = d->attempts,
        .attempt_ending_ms = d->attempt_ending_ms,
        .request_id = d->request_id,
        .permanent = d->last.permanent,
    };
    d->ops.done(d->arg, d, &res);
    fh_http_free(d);
}

/* Ends the delivery with d->last as its outcome. */
static void fh_http_finish(struct sl_fh_http_delivery *d)
{
    d->state = FH_HTTP_ENDING;
    (void)uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, fh_http_closed);
}

static void fh_http_attempt(struct sl_fh_http_delivery *d);

static void fh_http_fire(uv_timer_t *t)
{
    struct sl_fh_http_delivery *d = t->data;
    assert(d->state == FH_HTTP_WAITING);
    if (d->attempts > 0) {
        int64_t waited = sl_clock_now_ms(d->env.clock) - d->failed_at;
        d->spent_ms += waited > 0 ? waited : 0;
    }
    fh_http_attempt(d);
}

/* An attempt failed (d->last, d->message): waits and tries again, or ends the delivery when the
 * retry duration is used up or the answer said never to retry. */
static void fh_http_failed(struct sl_fh_http_delivery *d)
{
    int64_t left = d->conf->retry_duration_ms - d->spent_ms;
    if (d->last.permanent || left <= 0) {
        sl_log_debug(FH_HTTP_COMP, d->env.inst,
                     "POST %s (requestId %s) failed after %u attempts: %s, status %ld", d->shown,
                     d->request_id, d->attempts, d->last.error_code, d->last.status);
        fh_http_finish(d);
        return;
    }
    int64_t delay = sl_fh_http_backoff_ms(&d->policy, d->attempts, &d->rng);
    if (delay > left) {
        delay = left;
    }
    sl_log_debug(FH_HTTP_COMP, d->env.inst,
                 "POST %s (requestId %s) attempt %u: %s, status %ld%s%s, retrying in %lld ms",
                 d->shown, d->request_id, d->attempts, d->last.error_code, d->last.status,
                 d->last.status ? "" : ": ",
                 d->last.status || !d->message.data ? "" : d->message.data, (long long)delay);
    d->state = FH_HTTP_WAITING;
    d->failed_at = sl_clock_now_ms(d->env.clock);
    if (d->ops.retrying) {
        struct sl_fh_http_result res = {
            .err = d->last.err,
            .error_code = d->last.error_code,
            .error_message = d->message.data ? d->message.data : "",
            .status = d->last.status,
            .attempts = d->attempts,
            .attempt_ending_ms = d->attempt_ending_ms,
            .request_id = d->request_id,
        };
        d->in_retrying = true;
        d->ops.retrying(d->arg, &res, delay);
        d->in_retrying = false;
    }
    if (d->canceled) { /* canceled from inside retrying */
        d->last.err = SL_ECANCELED;
        fh_http_finish(d);
        return;
    }
    (void)uv_timer_start(&d->timer, fh_http_fire, (uint64_t)delay, 0);
}

static void fh_http_answered(void *arg, const struct sl_http_resp *resp)
{
    struct sl_fh_http_delivery *d = arg;
    assert(d->state == FH_HTTP_IN_FLIGHT);
    d->attempt_ending_ms = sl_clock_wall_ms(d->env.clock);
    int r = fh_http_judge(resp, d->request_id, d->conf->response_timeout_ms, &d->last, &d->message);
    if (r < 0) {
        sl_buf_truncate(&d->message, 0); /* out of memory: the code alone */
    }
    if (d->last.err == 0) {
        sl_log_debug(FH_HTTP_COMP, d->env.inst, "POST %s (requestId %s) delivered, attempt %u",
                     d->shown, d->request_id, d->attempts);
        fh_http_finish(d);
        return;
    }
    if (d->canceled || d->last.err == SL_ECANCELED) {
        d->last.err = SL_ECANCELED;
        fh_http_finish(d);
        return;
    }
    fh_http_failed(d);
}

static void fh_http_attempt(struct sl_fh_http_delivery *d)
{
    if (d->canceled) {
        d->last.err = SL_ECANCELED;
        fh_http_finish(d);
        return;
    }
    d->attempts++;
    d->state = FH_HTTP_IN_FLIGHT;
    struct sl_http_req req = {
        .method = "POST",
        .url = d->conf->url,
        .headers = d->headers,
        .body = d->body.data,
        .body_len = d->body.len,
        .timeout_ms = (long)d->conf->response_timeout_ms,
        .max_response_bytes = SL_FH_HTTP_MAX_RESPONSE,
    };
    int r = sl_httpc_request(d->env.httpc, &req, fh_http_answered, d);
    if (r == 0) {
        return;
    }
    /* Not even started: a failed attempt like any other (retried). */
    d->attempt_ending_ms = sl_clock_wall_ms(d->env.clock);
    d->last = (struct fh_http_verdict){
        .err = SL_EIO, .error_code = SL_FH_HTTP_CONNECTION_FAILED, .status = 0};
    sl_buf_truncate(&d->message, 0);
    if (sl_buf_printf(&d->message, "The request could not be started: %s", sl_strerror(r)) < 0) {
        sl_buf_truncate(&d->message, 0);
    }
    fh_http_failed(d);
}

int sl_fh_http_deliver(const struct sl_fh_http_conf *conf,
                       const struct sl_fh_http_env *env,
                       const struct sl_fh_http_rec *recs,
                       size_t n,
                       const struct sl_fh_http_ops *ops,
                       void *arg,
                       struct sl_fh_http_delivery **ret_d)
{
    assert(conf->url && env->loop && env->httpc && env->clock && ops->done);
    if (n == 0 || (env->request_id && !fh_http_request_id_ok(env->request_id))) {
        return SL_EINVAL;
    }
    struct sl_fh_http_delivery *d = sl_calloc(1, sizeof(*d));
    if (!d) {
        return SL_ENOMEM;
    }
    d->conf = conf;
    d->env = *env;
    d->env.request_id = NULL; /* copied below */
    d->ops = *ops;
    d->arg = arg;
    sl_buf_init(&d->body);
    sl_buf_init(&d->message);
    if (env->policy) {
        d->policy = *env->policy;
    } else {
        sl_fh_http_policy(&d->policy);
    }
    (void)sl_url_redact(conf->url, d->shown, sizeof(d->shown));

    struct sl_buf id;
    sl_buf_init(&id);
    int r = env->request_id ? sl_buf_puts(&id, env->request_id)
                            : sl_uuid_v4_append(&id, env->rand, env->rand_arg);
    if (r == 0) {
        memcpy(d->request_id, id.data, id.len + 1);
    }
    sl_buf_fini(&id);
    if (r < 0) {
        goto fail;
    }
    d->rng = env->seed;
    if (d->rng == 0) {
        (env->rand ? env->rand : sl_rand_system)(env->rand_arg, (unsigned char *)&d->rng,
                                                 sizeof(d->rng));
        d->rng |= 1; /* xorshift's state must not be 0 */
    }
    r = fh_http_body(&d->body, d->request_id, sl_clock_wall_ms(env->clock), recs, n, conf->gzip);
    if (r < 0) {
        goto fail;
    }
    r = fh_http_headers(conf, d->request_id, env->source_arn, &d->headers);
    if (r < 0) {
        goto fail;
    }
    if (uv_timer_init(env->loop, &d->timer) < 0) {
        r = SL_EIO;
        goto fail;
    }
    d->timer.data = d;
    d->state = FH_HTTP_WAITING;
    (void)uv_timer_start(&d->timer, fh_http_fire, 0, 0);
    *ret_d = d;
    return 0;
fail:
    fh_http_free(d);
    return r;
}

void sl_fh_http_cancel(struct sl_fh_http_delivery *d)
{
    if (d->state == FH_HTTP_ENDING || d->canceled) {
        return;
    }
    d->canceled = true;
    if (d->in_retrying) {
        return; /* fh_http_failed ends it when retrying returns */
    }
    if (d->state == FH_HTTP_IN_FLIGHT) {
        (void)sl_httpc_cancel(d->env.httpc, d); /* fh_http_answered ends it */
        return;
    }
    d->last.err = SL_ECANCELED;
    fh_http_finish(d);
}

const char *sl_fh_http_request_id(const struct sl_fh_http_delivery *d)
{
    return d->request_id;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* fh_transform.c: a delivery stream's Lambda data transformation at run time. A batch is the
 * records the stream hands over at once; it is cut into invocations (fh_wire.c sizes
 * them within BufferSizeInMBs of input and 6 MB of event), all started together through the
 * function interface (function.h: any type, so an exec script or an http endpoint is a
 * transform as a Lambda function is). Each invocation ("call") is retried on its own with
 * backoff, NumberOfRetries times after the first, a new invocationId each time and the same
 * recordIds; then its records fail with the last error. The batch calls back once, when every
 * call ended, with one outcome per record.
 *
 * It never drops a record on its own: an outcome is Ok, Dropped (the function said so) or
 * Failed (the caller writes it under processing-failed); a stop reports the batch canceled and
 * the caller keeps its records. It does not stop the function: invocations in flight at a stop
 * are awaited (bounded by the function's timeout), or cut short by the caller's
 * sl_function_stop. It logs each failed invocation (it is the boundary that handles them).
 *
 * Handles: one timer per call (the first attempt starts from it, so a batch never calls back
 * from inside start; then the backoffs) and one per batch (a stop's callback). They are closed
 * by sl_fh_batch_free and the memory freed from the last close callback. Loop thread only. */
#include "fh_transform.h"
#include "fh_transform_int.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "s3_object.h"

#define FH_COMP "fh_transform"

#define FH_MSG_FUNCTION \
    "The Lambda function was successfully invoked but it returned an error result."
#define FH_MSG_LIMIT \
    "The Lambda concurrent execution limit is exceeded. Increase the concurrent execution limit."
#define FH_MSG_NOT_FOUND \
    "The specified Lambda function does not exist. Use a different function that does exist."
#define FH_MSG_DENIED \
    "Access was denied. Ensure that the access policy allows access to the Lambda function."
#define FH_MSG_SERVICE   "The Lambda service failed to run the function."
#define FH_MSG_NETWORK   "The Lambda function could not be reached."
#define FH_MSG_TOO_LARGE "The record is too large for a Lambda invocation's 6 MB request payload."

struct sl_fh_transform {
    struct sl_fh_transform_conf conf; /* lambda_arn and role_arn owned copies */
    uv_loop_t *loop;
    const struct sl_clock *clock;
    struct sl_function *fn;
    char *stream_arn;
    char *region;
    char *source_arn; /* sourceKinesisStreamArn, or NULL */
    struct sl_fh_wire_ctx ev;
    char *inst;
    struct sl_retry_policy retry;
    uint64_t rng;
    sl_fh_rand_fn rand;
    void *rand_arg;
    size_t head_len;
    struct sl_fh_batch *batches; /* in flight */
};

struct fh_call {
    struct sl_fh_batch *b;
    size_t lo, hi;
    uv_timer_t timer;
    struct sl_buf event;
    unsigned made;    /* invocations made */
    unsigned counted; /* of those, the ones that count toward NumberOfRetries */
    bool in_flight;
    bool ended;
    bool too_large;
};

struct sl_fh_batch {
    struct sl_fh_transform *t;
    struct sl_fh_batch *prev, *next;
    const struct sl_fh_rec *recs;
    size_t n;
    struct sl_fh_out *outs;
    struct fh_call *calls;
    size_t n_calls;
    size_t pending; /* calls not ended */
    uint64_t nonce;
    unsigned invocations;
    sl_fh_batch_cb cb;
    void *arg;
    uv_timer_t timer; /* the callback after a stop */
    bool canceled;
    bool called_back;
    size_t closing; /* handles still to close at free */
};

void sl_fh_transform_conf_fini(struct sl_fh_transform_conf *c)
{
    sl_free(c->lambda_arn);
    sl_free(c->lambda_arn_path);
    sl_free(c->role_arn);
    memset(c, 0, sizeof(*c));
}

int sl_fh_transform_new(const struct sl_fh_transform_conf *conf,
                        const struct sl_fh_transform_env *env,
                        struct sl_fh_transform **ret_t)
{
    struct sl_fh_transform *t = sl_calloc(1, sizeof(*t));
    if (!t) {
        return SL_ENOMEM;
    }
    t->conf = *conf;
    t->conf.lambda_arn = sl_strdup(conf->lambda_arn ? conf->lambda_arn : "");
    t->conf.lambda_arn_path = NULL;
    t->conf.role_arn = NULL;
    t->loop = env->loop;
    t->clock = env->clock;
    t->fn = env->fn;
    t->stream_arn = sl_strdup(env->stream_arn);
    t->region = sl_strdup(env->region);
    t->source_arn = env->source_kinesis_arn ? sl_strdup(env->source_kinesis_arn) : NULL;
    t->inst = sl_strdup(env->inst ? env->inst : "");
    if (env->retry) {
        t->retry = *env->retry;
    } else {
        sl_retry_policy_default(&t->retry);
    }
    t->rng = (uint64_t)(uintptr_t)t ^ UINT64_C(0x9e3779b97f4a7c15);
    t->rand = env->rand;
    t->rand_arg = env->rand_arg;
    if (!t->conf.lambda_arn || !t->stream_arn || !t->region || !t->inst ||
        (env->source_kinesis_arn && !t->source_arn)) {
        sl_fh_transform_free(t);
        return SL_ENOMEM;
    }
    t->ev = (struct sl_fh_wire_ctx){t->stream_arn, t->region, t->source_arn};
    t->head_len = sl_fh_wire_head_len(&t->ev);
    *ret_t = t;
    return 0;
}

void sl_fh_transform_free(struct sl_fh_transform *t)
{
    if (!t) {
        return;
    }
    assert(!t->batches);
    sl_fh_transform_conf_fini(&t->conf);
    sl_free(t->stream_arn);
    sl_free(t->region);
    sl_free(t->source_arn);
    sl_free(t->inst);
    sl_free(t);
}

/* --- ending --- */

static void fh_batch_call_back(struct sl_fh_batch *b)
{
    struct sl_fh_transform *t = b->t;
    if (b->called_back) {
        return;
    }
    b->called_back = true;
    if (b->prev) {
        b->prev->next = b->next;
    } else {
        t->batches = b->next;
    }
    if (b->next) {
        b->next->prev = b->prev;
    }
    b->prev = b->next = NULL;
    b->cb(b->arg, b, b->canceled ? SL_ECANCELED : 0);
}

static void fh_call_end(struct fh_call *c)
{
    struct sl_fh_batch *b = c->b;
    assert(!c->ended);
    c->ended = true;
    sl_buf_fini(&c->event);
    b->pending--;
    if (b->pending == 0) {
        fh_batch_call_back(b);
    }
}

/* Fails every record of c with code and msg. */
static void fh_call_fail(struct fh_call *c, const char *code, const char *msg)
{
    struct sl_fh_batch *b = c->b;
    int64_t now = sl_clock_wall_ms(b->t->clock);
    for (size_t i = c->lo; i < c->hi; i++) {
        struct sl_fh_out *o = &b->outs[i];
        sl_fh_wire_out_clear(o);
        o->result = SL_FH_FAILED;
        o->error_code = code;
        o->error_message = msg;
        o->attempts = c->made;
        o->ending_ms = now;
    }
    fh_call_end(c);
}

/* --- attempts --- */

static void fh_call_attempt(struct fh_call *c);

static void fh_timer_cb(uv_timer_t *timer)
{
    struct fh_call *c = timer->data;
    if (c->b->canceled) {
        fh_call_end(c);
        return;
    }
    if (c->too_large) {
        fh_call_fail(c, SL_FH_ERR_REQUEST_TOO_LARGE, FH_MSG_TOO_LARGE);
        return;
    }
    fh_call_attempt(c);
}

/* What an invocation that did not return an answer means for its records. */
static void
fh_outcome_error(const struct sl_invoke_result *res, const char **code, const char **msg)
{
    switch (res->outcome) {
    case SL_OUTCOME_THROTTLE:
        *code = SL_FH_ERR_LIMIT;
        *msg = FH_MSG_LIMIT;
        return;
    case SL_OUTCOME_SERVICE_ERROR:
        if (res->status == 404) {
            *code = SL_FH_ERR_NOT_FOUND;
            *msg = FH_MSG_NOT_FOUND;
        } else if (res->status == 401 || res->status == 403) {
            *code = SL_FH_ERR_ACCESS_DENIED;
            *msg = FH_MSG_DENIED;
        } else if (res->status == 413) {
            *code = SL_FH_ERR_REQUEST_TOO_LARGE;
            *msg = FH_MSG_TOO_LARGE;
        } else {
            *code = SL_FH_ERR_SERVICE;
            *msg = FH_MSG_SERVICE;
        }
        return;
    case SL_OUTCOME_TRANSPORT_ERROR:
    case SL_OUTCOME_RESOURCE_EXHAUSTED:
        *code = SL_FH_ERR_NETWORK;
        *msg = FH_MSG_NETWORK;
        return;
    default:
        *code = SL_FH_ERR_FUNCTION_ERROR;
        *msg = FH_MSG_FUNCTION;
        return;
    }
}

/* An attempt failed as a whole: back off and try again, or fail the call's records. */
static void fh_call_failed(struct fh_call *c,
                           const struct sl_invoke_result *res,
                           bool counts,
                           const char *code,
                           const char *msg)
{
    struct sl_fh_transform *t = c->b->t;
    char status[32] = "";
    if (res->status) {
        (void)snprintf(status, sizeof(status), " status %d", res->status);
    }
    if (counts) {
        c->counted++;
    }
    /* an answer that arrived but breaks the status model: say so, not "success" */
    const char *what =
        res->outcome == SL_OUTCOME_SUCCESS ? "answer refused" : sl_outcome_name(res->outcome);
    if (c->counted <= (unsigned)t->conf.number_of_retries) {
        int64_t delay = sl_retry_delay_ms(&t->retry, c->made, &t->rng);
        if (res->outcome == SL_OUTCOME_THROTTLE && res->retry_after_ms > delay) {
            delay = res->retry_after_ms < t->retry.max_ms ? res->retry_after_ms : t->retry.max_ms;
        }
        sl_log_warn(FH_COMP, t->inst,
                    "transform of %zu records: %s%s%s%s (%s); invocation %u, retrying in %" PRId64
                    "ms",
                    c->hi - c->lo, what, status, res->detail ? ": " : "",
                    res->detail ? res->detail : "", code, c->made, delay);
        uv_timer_start(&c->timer, fh_timer_cb, (uint64_t)delay, 0);
        return;
    }
    sl_log_warn(FH_COMP, t->inst,
                "transform of %zu records: %s%s%s%s (%s); %u invocations made, the records go to "
                "processing-failed",
                c->hi - c->lo, what, status, res->detail ? ": " : "",
                res->detail ? res->detail : "", code, c->made);
    fh_call_fail(c, code, msg);
}

static void fh_call_invoked(void *arg, const struct sl_invoke_result *res)
{
    struct fh_call *c = arg;
    struct sl_fh_batch *b = c->b;
    c->in_flight = false;
    sl_buf_fini(&c->event);
    if (b->canceled) {
        fh_call_end(c);
        return;
    }
    const char *code;
    const char *msg;
    if (res->outcome != SL_OUTCOME_SUCCESS) {
        fh_outcome_error(res, &code, &msg);
        fh_call_failed(c, res, res->outcome != SL_OUTCOME_RESOURCE_EXHAUSTED, code, msg);
        return;
    }
    int r = sl_fh_wire_answer_read(res->body, res->body_len, b->nonce, b->recs, c->lo, c->hi,
                                   &b->outs[c->lo], &code, &msg);
    if (r == SL_ENOMEM) {
        struct sl_invoke_result oom = *res;
        oom.outcome = SL_OUTCOME_RESOURCE_EXHAUSTED;
        oom.detail = "out of memory reading the answer";
        fh_call_failed(c, &oom, false, SL_FH_ERR_SERVICE, FH_MSG_SERVICE);
        return;
    }
    if (r == 1) {
        struct sl_invoke_result bad = *res;
        bad.detail = msg;
        fh_call_failed(c, &bad, true, code, msg);
        return;
    }
    int64_t now = sl_clock_wall_ms(b->t->clock);
    for (size_t i = c->lo; i < c->hi; i++) {
        b->outs[i].attempts = c->made;
        b->outs[i].ending_ms = now;
    }
    fh_call_end(c);
}

static void fh_call_attempt(struct fh_call *c)
{
    struct sl_fh_batch *b = c->b;
    struct sl_fh_transform *t = b->t;
    char id[37];
    sl_fh_wire_uuid(id, t->rand, t->rand_arg);
    sl_buf_init(&c->event);
    c->made++;
    b->invocations++;
    int r = sl_fh_wire_build(&c->event, id, &t->ev, b->nonce, b->recs, c->lo, c->hi);
    if (r == 0) {
        c->in_flight = true;
        r = sl_function_invoke(t->fn, c->event.data, c->event.len, fh_call_invoked, c);
        c->in_flight = r == 0;
    }
    if (r < 0) {
        sl_buf_fini(&c->event);
        struct sl_invoke_result res = {
            .outcome = r == SL_ENOMEM ? SL_OUTCOME_RESOURCE_EXHAUSTED : SL_OUTCOME_TRANSPORT_ERROR,
            .detail = sl_strerror(r),
            .retry_after_ms = -1,
        };
        const char *code;
        const char *msg;
        fh_outcome_error(&res, &code, &msg);
        fh_call_failed(c, &res, res.outcome != SL_OUTCOME_RESOURCE_EXHAUSTED, code, msg);
    }
}

/* --- batches --- */

int sl_fh_transform_start(struct sl_fh_transform *t,
                          const struct sl_fh_rec *recs,
                          size_t n,
                          sl_fh_batch_cb cb,
                          void *arg,
                          struct sl_fh_batch **ret_b)
{
    assert(n >= 1);
    struct sl_fh_batch *b = sl_calloc(1, sizeof(*b));
    if (!b) {
        return SL_ENOMEM;
    }
    b->outs = sl_calloc(n, sizeof(*b->outs));
    b->calls = sl_calloc(n, sizeof(*b->calls)); /* at most one call per record */
    if (!b->outs || !b->calls) {
        sl_free(b->outs);
        sl_free(b->calls);
        sl_free(b);
        return SL_ENOMEM;
    }
    b->t = t;
    b->recs = recs;
    b->n = n;
    b->cb = cb;
    b->arg = arg;
    b->nonce = sl_retry_rand(&t->rng) % UINT64_C(10000000000000000000);
    for (size_t lo = 0; lo < n; b->n_calls++) {
        struct fh_call *c = &b->calls[b->n_calls];
        c->b = b;
        c->lo = lo;
        c->hi = sl_fh_wire_cut(recs, n, lo, t->head_len, t->conf.buffer_bytes, &c->too_large);
        lo = c->hi;
    }
    b->pending = b->n_calls;
    uv_timer_init(t->loop, &b->timer);
    b->timer.data = b;
    for (size_t i = 0; i < b->n_calls; i++) {
        struct fh_call *c = &b->calls[i];
        uv_timer_init(t->loop, &c->timer);
        c->timer.data = c;
        uv_timer_start(&c->timer, fh_timer_cb, 0, 0);
    }
    b->next = t->batches;
    if (t->batches) {
        t->batches->prev = b;
    }
    t->batches = b;
    *ret_b = b;
    return 0;
}

static void fh_batch_timer_cb(uv_timer_t *timer)
{
    fh_batch_call_back(timer->data);
}

void sl_fh_transform_stop(struct sl_fh_transform *t)
{
    for (struct sl_fh_batch *b = t->batches; b; b = b->next) {
        if (b->canceled) {
            continue;
        }
        b->canceled = true;
        for (size_t i = 0; i < b->n_calls; i++) {
            struct fh_call *c = &b->calls[i];
            if (!c->ended && !c->in_flight) {
                /* waiting on its timer: ends now, quietly */
                uv_timer_stop(&c->timer);
                c->ended = true;
                b->pending--;
            }
        }
        if (b->pending == 0) {
            uv_timer_start(&b->timer, fh_batch_timer_cb, 0, 0);
        }
    }
}

size_t sl_fh_batch_count(const struct sl_fh_batch *b)
{
    return b->n;
}

const struct sl_fh_out *sl_fh_batch_out(const struct sl_fh_batch *b, size_t i)
{
    assert(i < b->n);
    return &b->outs[i];
}

unsigned sl_fh_batch_invocations(const struct sl_fh_batch *b)
{
    return b->invocations;
}

static void fh_batch_release(struct sl_fh_batch *b)
{
    if (--b->closing > 0) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        sl_fh_wire_out_clear(&b->outs[i]);
    }
    sl_free(b->outs);
    sl_free(b->calls);
    sl_free(b);
}

static void fh_batch_timer_closed(uv_handle_t *h)
{
    fh_batch_release(h->data);
}

static void fh_call_timer_closed(uv_handle_t *h)
{
    fh_batch_release(((struct fh_call *)h->data)->b);
}

void sl_fh_batch_free(struct sl_fh_batch *b)
{
    if (!b) {
        return;
    }
    assert(b->called_back);
    b->closing = b->n_calls + 1;
    uv_close((uv_handle_t *)&b->timer, fh_batch_timer_closed);
    for (size_t i = 0; i < b->n_calls; i++) {
        uv_close((uv_handle_t *)&b->calls[i].timer, fh_call_timer_closed);
    }
}

int sl_fh_transform_error_line(struct sl_buf *out,
                               const struct sl_fh_rec *rec,
                               const struct sl_fh_out *o,
                               const char *lambda_arn)
{
    struct sl_s3_error_rec e = {
        .attempts_made = o->attempts,
        .arrival_ms = rec->arrival_ms,
        .error_code = o->error_code,
        .error_message = o->error_message,
        .attempt_ending_ms = o->ending_ms,
        .raw = rec->data,
        .raw_len = rec->len,
        .lambda_arn = lambda_arn,
    };
    return sl_s3_object_error_line(out, &e);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* sqs_call.c: the SQS source's requests on the wire: one AmazonSQS.<action> request over AWS
 * JSON 1.0 (sqs_wire.h's headers, shared with the SQS sink), POSTed to the queue's endpoint
 * through the source's own HTTP client on the loop, signed with SigV4 when credentials were
 * found, and translated into the project's errors (sl_sqs_wire_outcome) before the caller's
 * callback sees it. It keeps the list of calls in flight, so stop can drop them all: a
 * callback never runs after stop. A ReceiveMessage may wait WaitTimeSeconds, so its timeout is
 * that plus the request timeout. Loop thread. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "sqs_int.h"
#include "sqs_wire.h"

int64_t sqs_now(const struct sqs_ctx *ctx)
{
    return sl_clock_now_ms(ctx->env.clock);
}

static const char *const sqs_actions[SQS_CALL_KINDS] = {
    [SQS_CALL_GETURL] = "GetQueueUrl",
    [SQS_CALL_ATTRS] = "GetQueueAttributes",
    [SQS_CALL_RECEIVE] = "ReceiveMessage",
    [SQS_CALL_DELETE] = "DeleteMessageBatch",
    [SQS_CALL_EXTEND] = "ChangeMessageVisibilityBatch",
    [SQS_CALL_RELEASE] = "ChangeMessageVisibilityBatch",
};

const char *sqs_call_action(enum sqs_call_kind kind)
{
    return sqs_actions[kind];
}

int64_t sqs_backoff_ms(unsigned n, int64_t max_ms)
{
    int64_t d = SQS_RETRY_BASE_MS;
    for (unsigned i = 1; i < n && d < max_ms; i++) {
        d *= 2;
    }
    return d < max_ms ? d : max_ms;
}

int sqs_call_init_headers(struct sqs_ctx *ctx)
{
    for (int k = 0; k < SQS_CALL_KINDS; k++) {
        /* the signer adds the session token itself */
        int r = sl_sqs_wire_headers(sqs_actions[k], NULL, &ctx->headers[k]);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static void sqs_call_unlink(struct sqs_call *call)
{
    struct sqs_ctx *ctx = call->ctx;
    if (call->prev) {
        call->prev->next = call->next;
    } else {
        ctx->calls = call->next;
    }
    if (call->next) {
        call->next->prev = call->prev;
    }
    call->prev = call->next = NULL;
}

static void sqs_call_free(struct sqs_call *call)
{
    sl_buf_fini(&call->body);
    sl_free(call);
}

static void sqs_call_done(void *arg, const struct sl_http_resp *resp)
{
    struct sqs_call *call = arg;
    struct sqs_ctx *ctx = call->ctx;
    if (!ctx) {
        sqs_call_free(call); /* dropped by stop */
        return;
    }
    sqs_call_unlink(call);
    char detail[SQS_DETAIL];
    const char *where = ctx->queue_url ? ctx->queue_shown : ctx->dest.name;
    int err = sl_sqs_wire_outcome(sqs_actions[call->kind], where, ctx->endpoint_shown, resp, detail,
                                  sizeof(detail));
    call->cb(ctx, call, err, detail, resp);
    sqs_call_free(call);
}

int sqs_call_start(struct sqs_ctx *ctx,
                   enum sqs_call_kind kind,
                   struct sl_buf *b,
                   sqs_call_cb cb,
                   struct sqs_call **ret_call)
{
    struct sqs_call *call = sl_calloc(1, sizeof(*call));
    if (!call) {
        return SL_ENOMEM;
    }
    call->ctx = ctx;
    call->kind = kind;
    call->cb = cb;
    call->body = *b;
    sl_buf_init(b);
    call->sent_at = sqs_now(ctx);
    long timeout = (long)ctx->timeout_ms;
    if (kind == SQS_CALL_RECEIVE) {
        timeout += (long)ctx->wait_ms;
    }
    struct sl_http_req req = {
        .method = "POST",
        .url = ctx->endpoint,
        .headers = ctx->headers[kind],
        .body = call->body.data,
        .body_len = call->body.len,
        .timeout_ms = timeout,
        .aws_signer = ctx->signer,
        .aws_region = ctx->region,
        .aws_service = "sqs",
        .aws_clock = ctx->env.clock,
        .max_response_bytes = SQS_RESPONSE_MAX,
    };
    int r = sl_httpc_request(ctx->httpc, &req, sqs_call_done, call);
    if (r < 0) {
        sqs_call_free(call);
        return r;
    }
    call->next = ctx->calls;
    if (ctx->calls) {
        ctx->calls->prev = call;
    }
    ctx->calls = call;
    if (ret_call) {
        *ret_call = call;
    }
    return 0;
}

void sqs_call_cancel_all(struct sqs_ctx *ctx)
{
    /* Each call forgets its ctx, so its callback (run by the client's cancel or free) only
     * frees it. */
    for (struct sqs_call *call = ctx->calls; call;) {
        struct sqs_call *next = call->next;
        call->ctx = NULL;
        call->prev = call->next = NULL;
        call = next;
    }
    ctx->calls = NULL;
}

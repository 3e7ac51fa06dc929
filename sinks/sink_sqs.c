/* SPDX-License-Identifier: Apache-2.0 */
/* sink_sqs.c: the SQS destination, named by a queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)
 * or a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, or any http(s) URL whose path
 * is /ACCOUNT/NAME with a 12-digit account, which is how local servers such as fauxqs name
 * queues). Each document becomes one message: a write is one SendMessage, a delivery of up to
 * 10 documents and 256 KiB one SendMessageBatch whose answer gives each document its own
 * outcome (the core cuts larger deliveries to these capabilities), over AWS JSON 1.0 (POST,
 * X-Amz-Target: AmazonSQS.<action>) through the shared HTTP client on the loop, signed with
 * SigV4 (sigv4.c, applied by the HTTP client) when credentials are found (sl_aws_creds_load),
 * unsigned otherwise. The signer keeps its own copy of the credentials, which are loaded once
 * and not kept here.
 *
 * Where requests go. For an ARN, to sl_aws_endpoint_url("sqs") (AWS_ENDPOINT_URL_SQS,
 * AWS_ENDPOINT_URL, the profile) or else https://sqs.REGION.amazonaws.com; the QueueUrl is
 * resolved once with GetQueueUrl (QueueName + QueueOwnerAWSAccountId) and cached, and writes
 * that arrive meanwhile wait for that one request. A QueueDoesNotExist answer drops the cached
 * URL, so a queue created later is found on the caller's retry. For a URL, to the URL's own
 * scheme://host:port/, with the URL as QueueUrl (local servers look queues up by exact URL).
 *
 * FIFO queues (name ending .fifo): MessageGroupId "sluice" (one group, so failure records stay
 * in order) and MessageDeduplicationId = the document's key when it is a valid id (1-128
 * printable ASCII characters), else a 128-bit hash of the body, so a send repeated after a lost
 * answer is deduplicated by SQS within its 5-minute window.
 *
 * Errors (translated here, logged at debug only; the caller logs the outcome and retries):
 * a body over 1 MiB (SQS's message limit) → SL_EREJECTED without a request, as does any other
 * 4xx (e.g. a queue whose MaximumMessageSize is lower); QueueDoesNotExist → SL_ENOTFOUND;
 * throttling (RequestThrottled, ThrottlingException, KmsThrottled, 429, 503) → SL_ETHROTTLED;
 * signature and permission errors → SL_EAUTH; 5xx → SL_EREMOTE; no answer → SL_ETIMEDOUT or
 * SL_EIO.
 *
 * This file is the sink's state machine: the operations, the QueueUrl resolution, requests in
 * flight, cancellation. What a destination names is sqs_dest.c's; the bytes of requests and
 * the reading of answers are sqs_wire.c's (neither knows this file). Loop thread only. */
#include "sink.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "alloc.h"
#include "aws.h"
#include "buf.h"
#include "httpc.h"
#include "log.h"
#include "sqs_dest.h"
#include "sqs_wire.h"
#include "url.h"

#define SQS_MAX_RESPONSE_SIZE (64u * 1024u)
#define SQS_MAX_BODY_BYTES    (1024u * 1024u) /* SQS's message size limit, 1 MiB */
#define SQS_BATCH_MAX_BYTES   (256u * 1024u)  /* bodies per SendMessageBatch (AWS's older limit) */

struct sqs_ctx;

/* One write or deliver call: one SendMessage (n == 1) or SendMessageBatch (n > 1). */
struct sqs_op {
    struct sqs_op *prev, *next; /* in ctx->ops: every op not yet called back */
    struct sqs_op *wnext;       /* in ctx->waiting */
    struct sqs_ctx *ctx;
    size_t n;
    struct sl_sink_doc docs[SQS_BATCH_MAX]; /* copies; bodies and keys borrowed until the cb */
    struct sl_buf req;                      /* the request body */
    sl_sink_cb write_cb;                    /* a write, or */
    sl_sink_deliver_cb deliver_cb;          /* a deliver */
    void *arg;
    uv_timer_t timer; /* for failures found before any request */
    bool has_timer;
    struct sl_sink_result results[SQS_BATCH_MAX];
    char details[SQS_BATCH_MAX][SQS_DETAIL_MAX];
};

struct sqs_ctx {
    int64_t timeout_ms; /* option timeout */
    uv_loop_t *loop;
    struct sl_httpc *httpc;
    const char *inst;
    struct sqs_dest dest;
    char *endpoint;  /* where requests are POSTed, owned */
    char *queue_url; /* known or resolved QueueUrl, owned; NULL until resolved */
    /* endpoint and queue_url as logs and details show them (url.h: an endpoint from the
     * environment may carry credentials); owned, each NULL while its URL is. */
    char *endpoint_shown;
    char *queue_shown;
    struct sl_sigv4 *signer;      /* or NULL (unsigned) */
    const struct sl_clock *clock; /* signing time */
    char *region;                 /* signing region */
    struct curl_slist *send_headers;
    struct curl_slist *batch_headers;
    struct curl_slist *geturl_headers;
    struct sl_buf geturl_req;
    bool resolving;
    struct sqs_op *waiting; /* writes waiting for the QueueUrl */
    struct sqs_op **wtail;
    struct sqs_op *ops;
    bool stopped;
};

static const struct sl_opt sqs_opts[] = {
    {"timeout", SL_OPT_DURATION, "30s", 100, 900000, offsetof(struct sqs_ctx, timeout_ms), 0, NULL,
     "How long one SQS request may take before it counts as failed (and is retried)."},
    {0},
};

/* The queue as details name it: its URL once known, else its name. */
static const char *sqs_where(const struct sqs_ctx *ctx)
{
    return ctx->queue_url ? ctx->queue_shown : ctx->dest.name;
}

/* ---- completion ---- */

static void sqs_timer_closed(uv_handle_t *h)
{
    struct sqs_op *op = h->data;
    sl_free(op);
}

static void sqs_unlink(struct sqs_op *op)
{
    struct sqs_ctx *ctx = op->ctx;
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        ctx->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    op->prev = op->next = NULL;
}

/* Gives every document of op the outcome err (0: delivered) with detail. */
static void sqs_result_all(struct sqs_op *op, int err, const char *detail)
{
    for (size_t i = 0; i < op->n; i++) {
        if (err == 0) {
            op->results[i] = (struct sl_sink_result){SL_SINK_DELIVERED, 0, NULL};
            continue;
        }
        if (op->details[i] != detail) {
            (void)snprintf(op->details[i], SQS_DETAIL_MAX, "%s", detail ? detail : "");
        }
        op->results[i] = (struct sl_sink_result){
            err == SL_EREJECTED ? SL_SINK_REJECTED : SL_SINK_RETRY, err, op->details[i]};
    }
}

/* Reports op's results to its owner and frees it. Never called from inside write/deliver. The
 * op is unlinked first, so the callback may stop or write again. */
static void sqs_finish(struct sqs_op *op)
{
    sqs_unlink(op);
    for (size_t i = 0; i < op->n; i++) {
        if (op->results[i].err && op->results[i].err != SL_ECANCELED) {
            sl_log_debug("sink_sqs", op->ctx->inst, "%s", op->results[i].detail);
        }
    }
    sl_buf_fini(&op->req);
    if (op->write_cb) {
        op->write_cb(op->arg, op->results[0].err, op->results[0].detail);
    } else {
        op->deliver_cb(op->arg, op->results, op->n);
    }
    if (op->has_timer) {
        uv_close((uv_handle_t *)&op->timer, sqs_timer_closed);
    } else {
        sl_free(op);
    }
}

/* Reports op with one outcome for all its documents. */
static void sqs_complete(struct sqs_op *op, int err, const char *detail)
{
    sqs_result_all(op, err, detail);
    sqs_finish(op);
}

static void sqs_timer_cb(uv_timer_t *t)
{
    struct sqs_op *op = t->data;
    if (op->ctx->stopped) {
        sqs_complete(op, SL_ECANCELED, "canceled");
    } else {
        sqs_finish(op); /* its results were set when it was refused */
    }
}

/* ---- requests ---- */

static void sqs_send_done(void *arg, const struct sl_http_resp *resp);

static const char *sqs_action(const struct sqs_op *op)
{
    return op->n == 1 ? "SendMessage" : "SendMessageBatch";
}

/* Starts op's SendMessage, or SendMessageBatch for more than one document. Returns 0 or an
 * error (nothing started). */
static int sqs_send(struct sqs_ctx *ctx, struct sqs_op *op)
{
    const struct sl_sink_doc *d = &op->docs[0];
    int r =
        op->n == 1
            ? sl_sqs_wire_send(&op->req, ctx->queue_url, ctx->dest.fifo, d->body, d->len, d->key)
            : sl_sqs_wire_batch(&op->req, ctx->queue_url, ctx->dest.fifo, op->docs, op->n);
    if (r < 0) {
        return r;
    }
    struct sl_http_req req = {
        .method = "POST",
        .url = ctx->endpoint,
        .headers = op->n == 1 ? ctx->send_headers : ctx->batch_headers,
        .body = op->req.data,
        .body_len = op->req.len,
        .timeout_ms = ctx->timeout_ms,
        .aws_signer = ctx->signer,
        .aws_region = ctx->region,
        .aws_service = "sqs",
        .aws_clock = ctx->clock,
        .max_response_bytes = SQS_MAX_RESPONSE_SIZE,
    };
    return sl_httpc_request(ctx->httpc, &req, sqs_send_done, op);
}

/* Sets (url non-NULL) or forgets the QueueUrl and its redacted form, both or neither. Returns 0
 * or SL_ENOMEM (then both are NULL). */
static int sqs_set_queue_url(struct sqs_ctx *ctx, const char *url)
{
    sl_free(ctx->queue_url);
    sl_free(ctx->queue_shown);
    ctx->queue_url = ctx->queue_shown = NULL;
    if (!url) {
        return 0;
    }
    ctx->queue_url = sl_strdup(url);
    ctx->queue_shown = sl_url_redact_dup(url);
    if (!ctx->queue_url || !ctx->queue_shown) {
        (void)sqs_set_queue_url(ctx, NULL);
        return SL_ENOMEM;
    }
    return 0;
}

static void sqs_send_done(void *arg, const struct sl_http_resp *resp)
{
    struct sqs_op *op = arg;
    struct sqs_ctx *ctx = op->ctx;
    char *detail = op->details[0];
    int err = sl_sqs_wire_outcome(sqs_action(op), sqs_where(ctx), ctx->endpoint_shown, resp, detail,
                                  SQS_DETAIL_MAX);
    if (err == SL_ENOTFOUND && ctx->dest.is_arn && ctx->queue_url) {
        /* Resolve again on the next write: the queue may have been deleted and recreated. */
        (void)sqs_set_queue_url(ctx, NULL);
    }
    if (err == 0 && op->n > 1) {
        /* Each entry answered on its own; one not named is not delivered. */
        sl_sqs_wire_batch_read(resp->body, resp->body_len, sqs_where(ctx), op->n, op->results,
                               op->details);
        sqs_finish(op);
        return;
    }
    sqs_complete(op, err, detail);
}

static void sqs_geturl_done(void *arg, const struct sl_http_resp *resp)
{
    struct sqs_ctx *ctx = arg;
    ctx->resolving = false;
    char detail[SQS_DETAIL_MAX];
    int err = sl_sqs_wire_outcome("GetQueueUrl", sqs_where(ctx), ctx->endpoint_shown, resp, detail,
                                  sizeof(detail));
    if (err == 0) {
        cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "QueueUrl");
        if (cJSON_IsString(u) && *u->valuestring) {
            if (sqs_set_queue_url(ctx, u->valuestring) < 0) {
                err = SL_ENOMEM;
                (void)snprintf(detail, sizeof(detail), "GetQueueUrl %s: out of memory",
                               ctx->dest.name);
            } else {
                sl_log_debug("sink_sqs", ctx->inst, "queue %s is %s", ctx->dest.name,
                             ctx->queue_shown);
            }
        } else {
            err = SL_EPROTO;
            (void)snprintf(detail, sizeof(detail), "GetQueueUrl %s: no QueueUrl in the answer",
                           ctx->dest.name);
        }
        cJSON_Delete(j);
    }
    /* Take the waiting list first: callbacks may write again. */
    struct sqs_op *op = ctx->waiting;
    ctx->waiting = NULL;
    ctx->wtail = &ctx->waiting;
    while (op) {
        struct sqs_op *next = op->wnext;
        op->wnext = NULL;
        if (err) {
            sqs_complete(op, err, detail);
        } else if (ctx->stopped || !ctx->queue_url) {
            sqs_complete(op, SL_ECANCELED, "canceled");
        } else {
            int r = sqs_send(ctx, op);
            if (r < 0) {
                char d[SQS_DETAIL_MAX];
                (void)snprintf(d, sizeof(d), "%s %s: %s", sqs_action(op), ctx->queue_shown,
                               sl_strerror(r));
                sqs_complete(op, r, d);
            }
        }
        op = next;
    }
}

static int sqs_resolve(struct sqs_ctx *ctx)
{
    struct sl_buf *b = &ctx->geturl_req;
    if (b->len == 0) {
        int r = sl_sqs_wire_geturl(b, ctx->dest.name, ctx->dest.account);
        if (r < 0) {
            sl_buf_truncate(b, 0);
            return r;
        }
    }
    struct sl_http_req req = {
        .method = "POST",
        .url = ctx->endpoint,
        .headers = ctx->geturl_headers,
        .body = b->data,
        .body_len = b->len,
        .timeout_ms = ctx->timeout_ms,
        .aws_signer = ctx->signer,
        .aws_region = ctx->region,
        .aws_service = "sqs",
        .aws_clock = ctx->clock,
        .max_response_bytes = SQS_MAX_RESPONSE_SIZE,
    };
    int r = sl_httpc_request(ctx->httpc, &req, sqs_geturl_done, ctx);
    if (r == 0) {
        ctx->resolving = true;
    }
    return r;
}

/* ---- the sink ---- */

static int sqs_init(
    void *ctx_, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct sqs_ctx *ctx = ctx_;
    ctx->wtail = &ctx->waiting;
    sl_buf_init(&ctx->geturl_req);
    int r = sl_sqs_dest_check(destination, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    assert(env->httpc);
    ctx->loop = env->loop;
    ctx->httpc = env->httpc;
    ctx->inst = env->inst;
    ctx->clock = env->clock;
    (void)sl_sqs_dest_parse(destination, &ctx->dest);

    char *region = NULL;
    if (*ctx->dest.region) {
        region = sl_strdup(ctx->dest.region);
    } else if (env->region && *env->region) {
        region = sl_strdup(env->region);
    } else {
        region = sl_aws_region();
        if (!region) {
            region = sl_strdup("us-east-1");
        }
    }
    struct sl_buf b;
    sl_buf_init(&b);
    if (!region) {
        r = SL_ENOMEM;
        goto fail;
    }

    if (ctx->dest.is_arn) {
        ctx->endpoint = sl_aws_endpoint_url("sqs");
        if (!ctx->endpoint) {
            r = sl_buf_printf(&b, "https://sqs.%s.amazonaws.com%s", region,
                              strcmp(ctx->dest.partition, "aws-cn") == 0 ? ".cn" : "");
            ctx->endpoint = r == 0 ? sl_buf_steal(&b) : NULL;
        }
    } else {
        r = sl_buf_append(&b, destination, ctx->dest.origin_len);
        r = r ? r : sl_buf_puts(&b, "/");
        ctx->endpoint = r == 0 ? sl_buf_steal(&b) : NULL;
        if (sqs_set_queue_url(ctx, destination) < 0) {
            r = SL_ENOMEM;
            goto fail;
        }
    }
    if (!ctx->endpoint) {
        r = SL_ENOMEM;
        goto fail;
    }
    ctx->endpoint_shown = sl_url_redact_dup(ctx->endpoint);
    if (!ctx->endpoint_shown) {
        r = SL_ENOMEM;
        goto fail;
    }

    char aws_err[256] = "";
    struct sl_aws_creds creds;
    r = sl_aws_creds_load(&creds, aws_err, sizeof(aws_err));
    if (r == SL_ECONFIG) {
        (void)snprintf(errbuf, errlen, "%s", aws_err);
        goto fail;
    } else if (r == SL_ENOTFOUND) {
        sl_log_debug("sink_sqs", ctx->inst, "no AWS credentials found; requests to %s unsigned",
                     ctx->endpoint_shown);
    } else if (r < 0) {
        goto fail;
    } else {
        r = sl_sigv4_new(creds.access_key_id, creds.secret_access_key, creds.session_token,
                         &ctx->signer);
        sl_aws_creds_fini(&creds);
        if (r < 0) {
            goto fail;
        }
        ctx->region = region;
        region = NULL;
    }
    /* The signer adds the session token itself. */
    r = sl_sqs_wire_headers("SendMessage", NULL, &ctx->send_headers);
    r = r ? r : sl_sqs_wire_headers("SendMessageBatch", NULL, &ctx->batch_headers);
    r = r ? r : sl_sqs_wire_headers("GetQueueUrl", NULL, &ctx->geturl_headers);
    if (r < 0) {
        goto fail;
    }
    sl_free(region);
    sl_buf_fini(&b);
    return 0;
fail:
    sl_free(region);
    sl_buf_fini(&b);
    return r;
}

/* Starts op (its documents set): refused at once when one document is over SQS's message
 * limit (reported through the callback, so the caller gets the detail), else sent, or queued
 * behind the QueueUrl's resolution. Returns 0 or an error (op freed, no callback). */
static int sqs_start(struct sqs_ctx *ctx, struct sqs_op *op)
{
    sl_buf_init(&op->req);
    int r = 0;
    if (op->n == 1 && op->docs[0].len > SQS_MAX_BODY_BYTES) {
        (void)snprintf(op->details[0], SQS_DETAIL_MAX,
                       "SendMessage %s: a document of %zu bytes exceeds SQS's %u-byte message "
                       "limit",
                       sqs_where(ctx), op->docs[0].len, SQS_MAX_BODY_BYTES);
        sqs_result_all(op, SL_EREJECTED, op->details[0]);
        r = uv_timer_init(ctx->loop, &op->timer);
        if (r == 0) {
            op->has_timer = true;
            op->timer.data = op;
            r = uv_timer_start(&op->timer, sqs_timer_cb, 0, 0);
        }
        if (r < 0) {
            r = SL_EIO;
            goto fail;
        }
    } else if (ctx->queue_url) {
        r = sqs_send(ctx, op);
        if (r < 0) {
            goto fail;
        }
    } else {
        if (!ctx->resolving) {
            r = sqs_resolve(ctx);
            if (r < 0) {
                goto fail;
            }
        }
        *ctx->wtail = op;
        ctx->wtail = &op->wnext;
    }
    op->next = ctx->ops;
    if (ctx->ops) {
        ctx->ops->prev = op;
    }
    ctx->ops = op;
    return 0;
fail:
    sl_buf_fini(&op->req);
    if (op->has_timer) {
        uv_close((uv_handle_t *)&op->timer, sqs_timer_closed);
    } else {
        sl_free(op);
    }
    return r;
}

static struct sqs_op *sqs_op_new(struct sqs_ctx *ctx, const struct sl_sink_doc *docs, size_t n)
{
    struct sqs_op *op = sl_calloc(1, sizeof(*op));
    if (!op) {
        return NULL;
    }
    op->ctx = ctx;
    op->n = n;
    memcpy(op->docs, docs, n * sizeof(*docs));
    return op;
}

static int sqs_write(void *ctx_, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct sqs_ctx *ctx = ctx_;
    if (ctx->stopped) {
        return SL_ECANCELED;
    }
    struct sqs_op *op = sqs_op_new(ctx, doc, 1);
    if (!op) {
        return SL_ENOMEM;
    }
    op->write_cb = cb;
    op->arg = arg;
    return sqs_start(ctx, op);
}

/* Up to SQS_BATCH_MAX documents of at most SQS_BATCH_MAX_BYTES in all (the capabilities the
 * core cuts deliveries to) in one SendMessageBatch, with one result per entry; a single
 * document goes as SendMessage, which takes messages up to SQS's 1 MiB limit. */
static int
sqs_deliver(void *ctx_, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg)
{
    struct sqs_ctx *ctx = ctx_;
    if (ctx->stopped) {
        return SL_ECANCELED;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += docs[i].len;
    }
    if (n == 0 || n > SQS_BATCH_MAX || (n > 1 && bytes > SQS_BATCH_MAX_BYTES)) {
        return SL_EINVAL; /* beyond the capabilities: sl_sink_deliver never asks this */
    }
    struct sqs_op *op = sqs_op_new(ctx, docs, n);
    if (!op) {
        return SL_ENOMEM;
    }
    op->deliver_cb = cb;
    op->arg = arg;
    return sqs_start(ctx, op);
}

static void sqs_stop(void *ctx_)
{
    struct sqs_ctx *ctx = ctx_;
    ctx->stopped = true;
    if (ctx->resolving) {
        (void)sl_httpc_cancel(ctx->httpc, ctx);
    }
    for (struct sqs_op *op = ctx->ops; op; op = op->next) {
        (void)sl_httpc_cancel(ctx->httpc, op);
    }
}

static void sqs_fini(void *ctx_)
{
    struct sqs_ctx *ctx = ctx_;
    assert(!ctx->ops && !ctx->resolving);
    curl_slist_free_all(ctx->send_headers);
    curl_slist_free_all(ctx->batch_headers);
    curl_slist_free_all(ctx->geturl_headers);
    ctx->send_headers = ctx->batch_headers = ctx->geturl_headers = NULL;
    sl_buf_fini(&ctx->geturl_req);
    sl_sigv4_free(ctx->signer);
    ctx->signer = NULL;
    (void)sqs_set_queue_url(ctx, NULL);
    sl_free(ctx->endpoint);
    sl_free(ctx->endpoint_shown);
    sl_free(ctx->region);
    ctx->endpoint = ctx->endpoint_shown = ctx->region = NULL;
}

const struct sl_sink_ops sl_sink_sqs = {
    .abi = SL_SINK_ABI,
    .name = "sqs",
    .opts = sqs_opts,
    .ctx_size = sizeof(struct sqs_ctx),
    .handles = sl_sqs_dest_handles,
    .max_docs = SQS_BATCH_MAX,
    .max_bytes = SQS_BATCH_MAX_BYTES,
    .keeps_payload = false, /* batch info only, as AWS's SQS destination */
    .check = sl_sqs_dest_check,
    .init = sqs_init,
    .write = sqs_write,
    .deliver = sqs_deliver,
    .stop = sqs_stop,
    .fini = sqs_fini,
};

/* SPDX-License-Identifier: Apache-2.0 */
/* sink_http.c: the `http://...` / `https://...` destination. It owns nothing but the URL: each
 * document is POSTed as the whole body with Content-Type application/json through the shared
 * HTTP client on the loop (src/httpc.h), with a deadline (option timeout, 30 s by default). A 2xx
 * answer acknowledges the document; everything else becomes an error for the caller to retry with
 * backoff: 429 and 503 → SL_ETHROTTLED, other 5xx → SL_EREMOTE, 4xx → SL_EREJECTED (413 included,
 * so the caller can retry with a smaller document), other statuses → SL_EPROTO (redirects are not
 * followed), no answer → SL_ETIMEDOUT or SL_EIO with curl's text. The detail names the status
 * or curl's error. URLs that name an SQS queue (see sink_sqs.c) are left to the SQS sink.
 * The module logs only at debug level, and the URL only redacted (url.h); the caller logs
 * outcomes. Loop thread only. */
#include "sink.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "alloc.h"
#include "httpc.h"
#include "log.h"
#include "url.h"

#define HTTP_MAX_RESPONSE_SIZE (64u * 1024u)

struct http_op {
    struct http_op *prev, *next; /* in ctx->ops */
    struct http_ctx *ctx;
    sl_sink_cb cb;
    void *arg;
};

struct http_ctx {
    int64_t timeout_ms; /* option timeout */
    struct sl_httpc *httpc;
    const char *inst;
    char *url;                       /* owned */
    char shown[SL_URL_REDACTED_MAX]; /* url without user-info and query, for logs */
    struct curl_slist *headers;
    struct http_op *ops;
    bool stopped;
};

static const struct sl_opt http_opts[] = {
    {"timeout", SL_OPT_DURATION, "30s", 100, 900000, offsetof(struct http_ctx, timeout_ms), 0, NULL,
     "How long one POST may take before it counts as failed (and is retried)."},
    {0},
};

static bool http_is_http_url(const char *destination)
{
    return strncasecmp(destination, "http://", 7) == 0 ||
           strncasecmp(destination, "https://", 8) == 0;
}

static bool http_handles(const char *destination)
{
    return http_is_http_url(destination) && !sl_sink_sqs.handles(destination);
}

static const char *const http_schemes[] = {"http", "https", NULL};

/* The URL is shown redacted: its user-info and query may hold secrets. */
static int http_check(const char *destination, char *errbuf, size_t errlen)
{
    return sl_url_check(destination, http_schemes, false, errbuf, errlen);
}

static int http_init(
    void *ctx_, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct http_ctx *ctx = ctx_;
    int r = http_check(destination, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    assert(env->httpc);
    ctx->httpc = env->httpc;
    ctx->inst = env->inst;
    ctx->url = sl_strdup(destination);
    (void)sl_url_redact(destination, ctx->shown, sizeof(ctx->shown));
    ctx->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!ctx->url || !ctx->headers) {
        return SL_ENOMEM;
    }
    return 0;
}

/* Translates a finished request into an error code and a detail (the SQS sink has its own,
 * since it reads AWS's error shapes). Returns 0 for 2xx. */
static int http_outcome(const struct sl_http_resp *resp, char *detail, size_t len)
{
    if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        (void)snprintf(detail, len, "canceled");
        return SL_ECANCELED;
    }
    if (resp->curl_code != CURLE_OK) {
        (void)snprintf(detail, len, "%s",
                       resp->curl_error && *resp->curl_error ? resp->curl_error
                                                             : curl_easy_strerror(resp->curl_code));
        return resp->curl_code == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
    }
    long s = resp->status;
    if (s >= 200 && s < 300) {
        return 0;
    }
    (void)snprintf(detail, len, "status %ld", s);
    if (s == 429 || s == 503) {
        return SL_ETHROTTLED;
    }
    if (s >= 500 && s < 600) {
        return SL_EREMOTE;
    }
    if (s >= 400 && s < 500) {
        return SL_EREJECTED;
    }
    return SL_EPROTO;
}

static void http_done(void *arg, const struct sl_http_resp *resp)
{
    struct http_op *op = arg;
    struct http_ctx *ctx = op->ctx;
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        ctx->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    char detail[CURL_ERROR_SIZE + 64];
    detail[0] = '\0';
    int err = http_outcome(resp, detail, sizeof(detail));
    if (err) {
        sl_log_debug("sink_http", ctx->inst, "POST %s: %s", ctx->shown, detail);
    }
    sl_sink_cb cb = op->cb;
    void *cb_arg = op->arg;
    sl_free(op);
    cb(cb_arg, err, err ? detail : NULL);
}

static int http_write(void *ctx_, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct http_ctx *ctx = ctx_;
    if (ctx->stopped) {
        return SL_ECANCELED;
    }
    struct http_op *op = sl_calloc(1, sizeof(*op));
    if (!op) {
        return SL_ENOMEM;
    }
    op->ctx = ctx;
    op->cb = cb;
    op->arg = arg;
    struct sl_http_req req = {
        .method = "POST",
        .url = ctx->url,
        .headers = ctx->headers,
        .body = doc->body,
        .body_len = doc->len,
        .timeout_ms = ctx->timeout_ms,
        .max_response_bytes = HTTP_MAX_RESPONSE_SIZE,
    };
    int r = sl_httpc_request(ctx->httpc, &req, http_done, op);
    if (r < 0) {
        sl_free(op);
        return r;
    }
    op->next = ctx->ops;
    if (ctx->ops) {
        ctx->ops->prev = op;
    }
    ctx->ops = op;
    return 0;
}

static void http_stop(void *ctx_)
{
    struct http_ctx *ctx = ctx_;
    ctx->stopped = true;
    for (struct http_op *op = ctx->ops; op; op = op->next) {
        (void)sl_httpc_cancel(ctx->httpc, op);
    }
}

static void http_fini(void *ctx_)
{
    struct http_ctx *ctx = ctx_;
    assert(!ctx->ops);
    curl_slist_free_all(ctx->headers);
    ctx->headers = NULL;
    sl_free(ctx->url);
    ctx->url = NULL;
}

const struct sl_sink_ops sl_sink_http = {
    .abi = SL_SINK_ABI,
    .name = "http",
    .opts = http_opts,
    .ctx_size = sizeof(struct http_ctx),
    .handles = http_handles,
    .keeps_payload = true,
    .check = http_check,
    .init = http_init,
    .write = http_write,
    .stop = http_stop,
    .fini = http_fini,
};

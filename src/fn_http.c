/* SPDX-License-Identifier: Apache-2.0 */
/* fn_http.c: the "http" function type, a webhook. Each invocation POSTs the event JSON to `url`
 * through the shared HTTP client (keep-alive, so a busy mapping reuses one connection) and
 * turns the answer into an outcome: 2xx success with the body as the response, 429 and 503
 * throttles (with Retry-After), any other status a function error, no answer a transport error
 * (no connection) or a timeout (the request was sent: the function's, counted), a body over
 * 6 MB a function error "Function.ResponseSizeTooLarge".
 *
 * The configured headers may hold secrets (tokens): they go into one curl_slist at init and are
 * never logged, neither are the URL's query or credentials (errors show it redacted, url.h).
 * Headers that frame the request (Content-Length, Transfer-Encoding, Connection, Host, Expect)
 * are refused: curl sets them from the body and the URL. The event body is borrowed from the
 * caller until the callback; nothing is copied. Loop thread. */
#include "function.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "buf.h"
#include "httpc.h"
#include "log.h"
#include "secret.h"
#include "url.h"

struct http_inv {
    struct sl_invocation base; /* first: the list of invocations in flight */
    struct http_ctx *ctx;
};

struct http_ctx {
    /* options */
    char *url;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    struct sl_strmap headers;
    /* state */
    struct sl_httpc *httpc;
    char *name;
    struct curl_slist *hdrs;
    struct sl_invocation *inflight;
};

static const struct sl_opt http_opts[] = {
    {"url", SL_OPT_STR, NULL, 1, 0, offsetof(struct http_ctx, url), SL_OPT_REQUIRED, NULL,
     "URL the event is POSTed to (http:// or https://)."},
    {"timeout", SL_OPT_DURATION, "30s", 100, 900000, offsetof(struct http_ctx, timeout_ms), 0, NULL,
     "Time allowed for the whole request; past it the invocation is a timeout, a function "
     "error that counts toward MaximumRetryAttempts (unless it was still connecting)."},
    {"connect_timeout", SL_OPT_DURATION, "10s", 100, 900000,
     offsetof(struct http_ctx, connect_timeout_ms), 0, NULL,
     "Time allowed to open the connection (DNS, TCP, TLS)."},
    {"headers", SL_OPT_STRMAP, NULL, 1, 0, offsetof(struct http_ctx, headers), SL_OPT_SECRET, NULL,
     "Extra request headers (values may be secrets; never logged); not Content-Length, "
     "Transfer-Encoding, Connection, Host or Expect, which frame the request."},
    {0},
};

static bool http_is_token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Headers curl or sluice set from the request itself: a user value would contradict the body
 * (Content-Length, Transfer-Encoding), the connection (Connection, Host) or curl's own
 * handshake (Expect), so that the function could read part of an event as a whole one. */
static const char *const http_refused_headers[] = {
    "Content-Length", "Transfer-Encoding", "Connection", "Host", "Expect", NULL,
};

static bool http_header_refused(const char *name)
{
    for (size_t i = 0; http_refused_headers[i]; i++) {
        if (strcasecmp(name, http_refused_headers[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* Reports every problem, one per line of errbuf, not only the first. */
static int http_check(void *vctx, char *errbuf, size_t errlen)
{
    static const char *const schemes[] = {"http", "https", NULL};
    struct http_ctx *ctx = vctx;
    errbuf[0] = '\0';
    char msg[SL_URL_REDACTED_MAX + 256];
    int r = ctx->url ? sl_url_check(ctx->url, schemes, false, msg, sizeof(msg)) : SL_ECONFIG;
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        sl_function_check_err(errbuf, errlen, "url: %s", ctx->url ? msg : "missing required key");
    }
    for (size_t i = 0; i < ctx->headers.n; i++) {
        const char *k = ctx->headers.keys[i];
        bool token = *k != '\0';
        for (const char *p = k; *p; p++) {
            token = token && http_is_token_char(*p);
        }
        if (!*k) {
            sl_function_check_err(
                errbuf, errlen,
                "headers: a header name is empty; allowed: a non-empty header name");
        } else if (!token) {
            sl_function_check_err(
                errbuf, errlen,
                "headers.%.64s: not a valid header name; allowed: letters, digits "
                "and !#$%%&'*+-.^_`|~",
                k);
        } else if (http_header_refused(k)) {
            sl_function_check_err(
                errbuf, errlen,
                "headers.%.64s: sluice sets this header from the request itself, and "
                "another value would break the HTTP framing; allowed: any header but "
                "Content-Length, Transfer-Encoding, Connection, Host and Expect",
                k);
        }
        if (strpbrk(ctx->headers.values[i], "\r\n")) {
            /* The value is not shown: it may be a secret. */
            sl_function_check_err(
                errbuf, errlen,
                "headers.%.64s: the value contains a line break; allowed: a value "
                "on one line",
                k);
        }
    }
    return errbuf[0] ? SL_ECONFIG : 0;
}

static int http_append_header(struct curl_slist **l, const char *name, const char *value)
{
    struct sl_buf b;
    sl_buf_init(&b);
    /* "Name;" is curl's way to send a header with an empty value ("Name:" would remove it). */
    int r = *value ? sl_buf_printf(&b, "%s: %s", name, value) : sl_buf_printf(&b, "%s;", name);
    if (r == 0) {
        struct curl_slist *n = curl_slist_append(*l, b.data);
        if (!n) {
            r = SL_ENOMEM;
        } else {
            *l = n;
        }
    }
    sl_secret_buf_fini(&b); /* may hold a secret */
    return r;
}

static int http_init(void *vctx, const struct sl_function_env *env, char *errbuf, size_t errlen)
{
    struct http_ctx *ctx = vctx;
    int r = http_check(ctx, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    if (!env->httpc) {
        snprintf(errbuf, errlen, "no HTTP client");
        return SL_EINVAL;
    }
    ctx->httpc = env->httpc;
    ctx->name = sl_strdup(env->name ? env->name : "http");
    if (!ctx->name) {
        return SL_ENOMEM;
    }
    bool has_ct = false;
    for (size_t i = 0; i < ctx->headers.n; i++) {
        if (strcasecmp(ctx->headers.keys[i], "Content-Type") == 0) {
            has_ct = true;
        }
        if (http_append_header(&ctx->hdrs, ctx->headers.keys[i], ctx->headers.values[i]) < 0) {
            return SL_ENOMEM;
        }
    }
    if (!has_ct && http_append_header(&ctx->hdrs, "Content-Type", "application/json") < 0) {
        return SL_ENOMEM;
    }
    sl_log_debug("fn_http", ctx->name, "ready, %zu extra header(s), timeout %lldms", ctx->headers.n,
                 (long long)ctx->timeout_ms);
    return 0;
}

static void http_done(void *varg, const struct sl_http_resp *resp)
{
    struct http_inv *inv = varg;
    struct http_ctx *ctx = inv->ctx;
    char detail[256];
    struct sl_invoke_result res;
    if (!sl_invoke_result_from_transport(resp, &res, detail, sizeof(detail))) {
        res.outcome = sl_outcome_from_http_status(resp->status);
        res.body = resp->body;
        res.body_len = resp->body_len;
        if (res.outcome == SL_OUTCOME_THROTTLE) {
            res.retry_after_ms = sl_http_retry_after_ms(resp);
        }
        if (res.outcome != SL_OUTCOME_SUCCESS) {
            snprintf(detail, sizeof(detail), "HTTP %ld", resp->status);
        }
    }

    sl_invocation_complete(&ctx->inflight, &inv->base, &res);
}

static int http_invoke(void *vctx, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    struct http_ctx *ctx = vctx;
    struct http_inv *inv = sl_calloc(1, sizeof(*inv));
    if (!inv) {
        return SL_ENOMEM;
    }
    inv->ctx = ctx;
    inv->base.cb = cb;
    inv->base.arg = arg;
    struct sl_http_req req = {
        .method = "POST",
        .url = ctx->url,
        .headers = ctx->hdrs,
        .body = body,
        .body_len = body_len,
        .timeout_ms = (long)ctx->timeout_ms,
        .connect_timeout_ms = (long)ctx->connect_timeout_ms,
        .max_response_bytes = SL_FUNCTION_MAX_RESPONSE_BYTES,
    };
    return sl_invocation_send(ctx->httpc, &ctx->inflight, &req, http_done, &inv->base);
}

static void http_stop(void *vctx)
{
    struct http_ctx *ctx = vctx;
    sl_invocation_cancel_all(ctx->httpc, ctx->inflight);
}

static void http_fini(void *vctx)
{
    struct http_ctx *ctx = vctx;
    curl_slist_free_all(ctx->hdrs);
    ctx->hdrs = NULL;
    sl_free(ctx->name);
    ctx->name = NULL;
}

static int64_t http_timeout_ms(const void *vctx)
{
    const struct http_ctx *ctx = vctx;
    return ctx->timeout_ms;
}

const struct sl_function_ops sl_function_http = {
    .abi = SL_FUNCTION_ABI,
    .name = "http",
    .opts = http_opts,
    .ctx_size = sizeof(struct http_ctx),
    .check = http_check,
    .init = http_init,
    .invoke = http_invoke,
    .stop = http_stop,
    .fini = http_fini,
    .timeout_ms = http_timeout_ms,
};

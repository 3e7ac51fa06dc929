/* SPDX-License-Identifier: Apache-2.0 */
/* fn_lambda.c: the "lambda" function type, the Lambda Invoke API as the event source mapping
 * uses it: POST {endpoint}/2015-03-31/functions/{function_name}/invocations with
 * X-Amz-Invocation-Type: RequestResponse, through the shared HTTP client. It works against AWS
 * (SigV4 by our signer, sigv4.c, applied by the HTTP client), LocalStack and the Lambda Runtime
 * Interface Emulator (both accept unsigned requests, which we send when no credentials are
 * found).
 *
 * Credentials and the region are resolved once at init (aws.c) and handed to a signer, which
 * keeps its own copy (and adds the session token); the request headers are built once into a
 * curl_slist. A function ARN goes into the path escaped ("arn%3Aaws%3Alambda..."), signed or
 * not: the signer encodes the path once more as AWS does, so a function in another account is
 * invoked by its ARN. The read timeout is the function's timeout
 * plus a margin, so a function that runs to its limit still reports its own error; no answer
 * within it is a timeout, the function's failure (counted), unless it was still connecting.
 *
 * Outcomes follow reference/esm.md §4.1: 200 without X-Amz-Function-Error success, with it a
 * function error; 429 a throttle; other statuses a service error (the batch never ran), with
 * the x-amzn-ErrorType and message in the detail. Secrets are never logged. Loop thread. */
#include "function.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "aws.h"
#include "buf.h"
#include "httpc.h"
#include "log.h"
#include "url.h"

/* Time allowed beyond the function's timeout for the service to answer (LocalStack uses 5 s). */
#define LAMBDA_MARGIN_MS 5000

struct lambda_inv {
    struct sl_invocation base; /* first: the list of invocations in flight */
    struct lambda_ctx *ctx;
};

struct lambda_ctx {
    /* options */
    char *endpoint;
    char *function_name;
    char *qualifier;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    char *region;
    /* state */
    struct sl_httpc *httpc;
    char *name;
    char *url;
    struct sl_sigv4 *signer; /* NULL: unsigned */
    char *signing_region;
    const struct sl_clock *clock;
    long http_timeout_ms;
    struct curl_slist *hdrs;
    struct sl_invocation *inflight;
};

static const struct sl_opt lambda_opts[] = {
    {"endpoint", SL_OPT_STR, NULL, 1, 0, offsetof(struct lambda_ctx, endpoint), SL_OPT_REQUIRED,
     NULL,
     "Base URL of the Lambda API: https://lambda.REGION.amazonaws.com, LocalStack's "
     "http://localhost:4566 or the Runtime Interface Emulator's http://localhost:9000."},
    {"function_name", SL_OPT_STR, NULL, 1, 0, offsetof(struct lambda_ctx, function_name),
     SL_OPT_REQUIRED, NULL,
     "Function name, partial ARN or ARN (with an optional :qualifier); \"function\" for the "
     "Runtime Interface Emulator."},
    {"qualifier", SL_OPT_STR, NULL, 1, 0, offsetof(struct lambda_ctx, qualifier), 0, NULL,
     "Version or alias to invoke."},
    {"timeout", SL_OPT_DURATION, "900s", 100, 900000, offsetof(struct lambda_ctx, timeout_ms), 0,
     NULL, "The function's timeout; the HTTP read timeout is this plus a margin of up to 5s."},
    {"connect_timeout", SL_OPT_DURATION, "10s", 100, 900000,
     offsetof(struct lambda_ctx, connect_timeout_ms), 0, NULL,
     "Time allowed to open the connection (DNS, TCP, TLS)."},
    {"region", SL_OPT_STR, NULL, 1, 0, offsetof(struct lambda_ctx, region), 0, NULL,
     "Signing region; default: the ARN's region, then the daemon's region, AWS_REGION, "
     "AWS_DEFAULT_REGION, the profile's region, us-east-1."},
    {0},
};

static bool lambda_region_ok(const char *r)
{
    if (!*r) {
        return false;
    }
    for (; *r; r++) {
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-')) {
            return false;
        }
    }
    return true;
}

static int lambda_check(void *vctx, char *errbuf, size_t errlen)
{
    static const char *const schemes[] = {"http", "https", NULL};
    struct lambda_ctx *ctx = vctx;
    char msg[SL_URL_REDACTED_MAX + 256];
    int ur =
        ctx->endpoint ? sl_url_check(ctx->endpoint, schemes, true, msg, sizeof(msg)) : SL_ECONFIG;
    if (ur == SL_ENOMEM) {
        return ur;
    }
    if (ur < 0) {
        /* Shown redacted (url.h): an endpoint may carry credentials. */
        snprintf(errbuf, errlen, "endpoint: %s", ctx->endpoint ? msg : "missing required key");
        return SL_ECONFIG;
    }
    struct sl_aws_lambda_ref ref;
    int r = ctx->function_name ? sl_aws_lambda_ref_parse(ctx->function_name, &ref) : SL_EINVAL;
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        snprintf(errbuf, errlen,
                 "function_name: '%.160s' is not a function name, partial ARN or Lambda ARN",
                 ctx->function_name ? ctx->function_name : "");
        return SL_ECONFIG;
    }
    bool clash = ref.qualifier && ctx->qualifier && strcmp(ref.qualifier, ctx->qualifier) != 0;
    sl_aws_lambda_ref_fini(&ref);
    if (clash) {
        snprintf(errbuf, errlen, "qualifier: differs from the qualifier in function_name");
        return SL_ECONFIG;
    }
    if (ctx->qualifier) {
        struct sl_aws_lambda_ref q;
        /* A qualifier has the characters of a name plus '$' ("$LATEST"). */
        bool ok = !strchr(ctx->qualifier, ':');
        if (ok) {
            struct sl_buf b;
            sl_buf_init(&b);
            ok = sl_buf_printf(&b, "x:%s", ctx->qualifier) == 0 &&
                 sl_aws_lambda_ref_parse(b.data, &q) == 0;
            if (ok) {
                sl_aws_lambda_ref_fini(&q);
            }
            sl_buf_fini(&b);
        }
        if (!ok) {
            snprintf(errbuf, errlen, "qualifier: '%.64s' is not a version or alias",
                     ctx->qualifier);
            return SL_ECONFIG;
        }
    }
    if (ctx->region && !lambda_region_ok(ctx->region)) {
        snprintf(errbuf, errlen, "region: '%.64s' is not a region name", ctx->region);
        return SL_ECONFIG;
    }
    return 0;
}

static int lambda_add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n) {
        return SL_ENOMEM;
    }
    *l = n;
    return 0;
}

/* Builds ctx->url from the endpoint, the function reference and the qualifier. */
static int lambda_build_url(struct lambda_ctx *ctx)
{
    struct sl_buf b;
    sl_buf_init(&b);
    size_t elen = strlen(ctx->endpoint);
    while (elen > 0 && ctx->endpoint[elen - 1] == '/') {
        elen--;
    }
    const char *fname = ctx->function_name;
    const char *qual = ctx->qualifier;
    int r = sl_buf_append(&b, ctx->endpoint, elen);
    r = r ? r : sl_buf_puts(&b, "/2015-03-31/functions/");
    r = r ? r : sl_aws_uri_encode(&b, fname, false);
    r = r ? r : sl_buf_puts(&b, "/invocations");
    if (qual) {
        r = r ? r : sl_buf_puts(&b, "?Qualifier=");
        r = r ? r : sl_aws_uri_encode(&b, qual, false);
    }
    if (r < 0) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    ctx->url = sl_buf_steal(&b);
    return ctx->url ? 0 : SL_ENOMEM;
}

static int lambda_init(void *vctx, const struct sl_function_env *env, char *errbuf, size_t errlen)
{
    static bool logged_unsigned;
    struct lambda_ctx *ctx = vctx;
    int r = lambda_check(ctx, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    if (!env->httpc) {
        snprintf(errbuf, errlen, "no HTTP client");
        return SL_EINVAL;
    }
    ctx->httpc = env->httpc;
    ctx->name = sl_strdup(env->name ? env->name : "lambda");
    if (!ctx->name) {
        return SL_ENOMEM;
    }
    int64_t margin = ctx->timeout_ms < LAMBDA_MARGIN_MS ? ctx->timeout_ms : LAMBDA_MARGIN_MS;
    ctx->http_timeout_ms = (long)(ctx->timeout_ms + margin);

    struct sl_aws_lambda_ref ref;
    r = sl_aws_lambda_ref_parse(ctx->function_name, &ref);
    if (r < 0) {
        return r; /* checked above: only OOM is left */
    }
    char *region = NULL;
    if (ctx->region) {
        region = sl_strdup(ctx->region);
    } else if (ref.region) {
        region = sl_strdup(ref.region);
    } else if (env->region && *env->region) {
        region = sl_strdup(env->region);
    } else {
        region = sl_aws_region();
        if (!region) {
            region = sl_strdup("us-east-1");
        }
    }
    if (!region) {
        r = SL_ENOMEM;
        goto fail;
    }

    char aws_err[256] = "";
    struct sl_aws_creds creds;
    r = sl_aws_creds_load(&creds, aws_err, sizeof(aws_err));
    if (r == SL_ECONFIG) {
        snprintf(errbuf, errlen, "%s", aws_err);
        goto fail;
    } else if (r == SL_ENOTFOUND) {
        if (!logged_unsigned) {
            logged_unsigned = true;
            sl_log_info("fn_lambda", ctx->name,
                        "no AWS credentials found; sending unsigned requests (fine for the "
                        "Runtime Interface Emulator and LocalStack)");
        }
    } else if (r < 0) {
        goto fail;
    } else {
        r = sl_sigv4_new(creds.access_key_id, creds.secret_access_key, creds.session_token,
                         &ctx->signer);
        sl_log_debug("fn_lambda", ctx->name, "signing with credentials from the %s, region %s",
                     creds.source, region);
        sl_aws_creds_fini(&creds);
        if (r < 0) {
            goto fail;
        }
        ctx->signing_region = region;
        region = NULL;
    }
    ctx->clock = env->clock;

    r = lambda_build_url(ctx);
    if (r < 0) {
        goto fail;
    }
    r = lambda_add_header(&ctx->hdrs, "Content-Type: application/json");
    r = r ? r : lambda_add_header(&ctx->hdrs, "X-Amz-Invocation-Type: RequestResponse");
    if (r < 0) {
        goto fail;
    }
    sl_free(region);
    sl_aws_lambda_ref_fini(&ref);
    return 0;
fail:
    sl_free(region);
    sl_aws_lambda_ref_fini(&ref);
    return r;
}

/* Writes "<ErrorType>: <message>" for an error answer into detail: the type from
 * x-amzn-ErrorType (without its ":http://..." suffix) or the body's errorType / __type, the
 * message from the body's message / Message / errorMessage. */
static const char *lambda_error_detail(
    const struct sl_http_resp *resp, char *detail, size_t len, char *type, size_t type_len)
{
    type[0] = '\0';
    const char *et = sl_http_resp_header(resp, "x-amzn-ErrorType");
    if (et) {
        size_t n = strcspn(et, ":");
        snprintf(type, type_len, "%.*s", (int)(n < 128 ? n : 128), et);
    }
    const char *msg = NULL;
    cJSON *j = NULL;
    if (resp->body_len && resp->body_len < 64 * 1024) {
        j = cJSON_ParseWithLength(resp->body, resp->body_len);
    }
    if (cJSON_IsObject(j)) {
        static const char *const msg_keys[] = {"message", "Message", "errorMessage"};
        for (size_t i = 0; i < SL_ARRAY_LEN(msg_keys) && !msg; i++) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, msg_keys[i]);
            msg = cJSON_IsString(m) ? m->valuestring : NULL;
        }
        if (!type[0]) {
            static const char *const type_keys[] = {"errorType", "__type", "Type"};
            for (size_t i = 0; i < SL_ARRAY_LEN(type_keys) && !type[0]; i++) {
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, type_keys[i]);
                if (cJSON_IsString(t)) {
                    size_t n = strcspn(t->valuestring, ":");
                    snprintf(type, type_len, "%.*s", (int)(n < 128 ? n : 128), t->valuestring);
                }
            }
        }
    }
    snprintf(detail, len, "HTTP %ld%s%s%s%.160s", resp->status, type[0] ? " " : "", type,
             msg ? ": " : "", msg ? msg : "");
    cJSON_Delete(j);
    return type[0] ? type : NULL;
}

static void lambda_done(void *varg, const struct sl_http_resp *resp)
{
    struct lambda_inv *inv = varg;
    struct lambda_ctx *ctx = inv->ctx;
    char detail[320];
    char type[136];
    struct sl_invoke_result res;
    if (!sl_invoke_result_from_transport(resp, &res, detail, sizeof(detail))) {
        const char *ferr = sl_http_resp_header(resp, "X-Amz-Function-Error");
        res.outcome = sl_outcome_from_lambda(resp->status, ferr);
        res.body = resp->body;
        res.body_len = resp->body_len;
        switch (res.outcome) {
        case SL_OUTCOME_SUCCESS:
            break;
        case SL_OUTCOME_FUNCTION_ERROR:
            res.error_type = ferr;
            (void)lambda_error_detail(resp, detail, sizeof(detail), type, sizeof(type));
            break;
        case SL_OUTCOME_THROTTLE:
            res.retry_after_ms = sl_http_retry_after_ms(resp);
            res.error_type = lambda_error_detail(resp, detail, sizeof(detail), type, sizeof(type));
            break;
        default:
            res.error_type = lambda_error_detail(resp, detail, sizeof(detail), type, sizeof(type));
            break;
        }
    }

    sl_invocation_complete(&ctx->inflight, &inv->base, &res);
}

static int lambda_invoke(void *vctx, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    struct lambda_ctx *ctx = vctx;
    struct lambda_inv *inv = sl_calloc(1, sizeof(*inv));
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
        .timeout_ms = ctx->http_timeout_ms,
        .connect_timeout_ms = (long)ctx->connect_timeout_ms,
        .max_response_bytes = SL_FUNCTION_MAX_RESPONSE_BYTES,
    };
    if (ctx->signer) {
        req.aws_signer = ctx->signer;
        req.aws_region = ctx->signing_region;
        req.aws_service = "lambda";
        req.aws_clock = ctx->clock;
    }
    return sl_invocation_send(ctx->httpc, &ctx->inflight, &req, lambda_done, &inv->base);
}

static void lambda_stop(void *vctx)
{
    struct lambda_ctx *ctx = vctx;
    sl_invocation_cancel_all(ctx->httpc, ctx->inflight);
}

static void lambda_fini(void *vctx)
{
    struct lambda_ctx *ctx = vctx;
    curl_slist_free_all(ctx->hdrs);
    ctx->hdrs = NULL;
    sl_sigv4_free(ctx->signer);
    ctx->signer = NULL;
    sl_free(ctx->url);
    sl_free(ctx->signing_region);
    sl_free(ctx->name);
    ctx->url = NULL;
    ctx->signing_region = NULL;
    ctx->name = NULL;
}

static int64_t lambda_timeout_ms(const void *vctx)
{
    const struct lambda_ctx *ctx = vctx;
    return ctx->timeout_ms;
}

const struct sl_function_ops sl_function_lambda = {
    .abi = SL_FUNCTION_ABI,
    .name = "lambda",
    .opts = lambda_opts,
    .ctx_size = sizeof(struct lambda_ctx),
    .check = lambda_check,
    .init = lambda_init,
    .invoke = lambda_invoke,
    .stop = lambda_stop,
    .fini = lambda_fini,
    .timeout_ms = lambda_timeout_ms,
};

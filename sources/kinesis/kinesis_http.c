/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_http.c: one request of the Kinesis source to the Kinesis API (wire.md §1): a JSON
 * 1.1 POST to "/" of the endpoint with its X-Amz-Target, signed with SigV4 for the stream's
 * region and the service "kinesis" by the project's signer (sigv4.c, applied by httpc; the
 * credentials from aws.c, resolved once at init), sent
 * through the source's own HTTP client on the loop (httpc.c: curl multi, never blocking). The
 * answer comes back classified (kinesis_wire_error_read) so that callers act on what to do,
 * never on status codes.
 *
 * It owns the endpoint URL, the signer (holding the credentials), the prepared headers of each
 * operation and the HTTP client; the requests in flight are owned by httpc until their callback.
 * Never logs a secret. Loop thread only.
 *
 * About the endpoint: AWS_ENDPOINT_URL_KINESIS, then AWS_ENDPOINT_URL (the SDKs' variables),
 * then the mapping's endpoint_url, then the profile's configured endpoint (aws.c), then AWS's
 * regional endpoint https://kinesis.REGION.amazonaws.com (".com.cn" in China). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "sigv4.h"
#include "kinesis_int.h"

struct kin_req {
    struct kin_ctx *ctx;
    kin_req_cb cb;
    void *arg;
    bool canceled;
    char *body; /* owned: httpc borrows it until the callback */
};

static int kin_http_endpoint(struct kin_ctx *ctx)
{
    const char *env_k = getenv("AWS_ENDPOINT_URL_KINESIS");
    const char *env_a = getenv("AWS_ENDPOINT_URL");
    char *url = NULL;
    if ((env_k && *env_k) || (env_a && *env_a) || !ctx->endpoint_url) {
        url = sl_aws_endpoint_url("kinesis");
    }
    if (!url && ctx->endpoint_url) {
        url = sl_strdup(ctx->endpoint_url);
        if (!url) {
            return SL_ENOMEM;
        }
    }
    if (!url) {
        struct sl_buf b;
        sl_buf_init(&b);
        bool cn = strcmp(ctx->arn.partition, "aws-cn") == 0;
        if (sl_buf_printf(&b, "https://kinesis.%s.amazonaws.com%s", ctx->arn.region,
                          cn ? ".cn" : "") < 0) {
            sl_buf_fini(&b);
            return SL_ENOMEM;
        }
        url = sl_buf_steal(&b);
        if (!url) {
            return SL_ENOMEM;
        }
    }
    ctx->url = url;
    return 0;
}

static int kin_http_header(struct curl_slist **list, const char *h)
{
    struct curl_slist *n = curl_slist_append(*list, h);
    if (!n) {
        return SL_ENOMEM;
    }
    *list = n;
    return 0;
}

int kin_http_init(struct kin_ctx *ctx, char *errbuf, size_t errlen)
{
    int r = kin_http_endpoint(ctx);
    if (r < 0) {
        return r;
    }
    char aws_err[256] = "";
    struct sl_aws_creds creds;
    r = sl_aws_creds_load(&creds, aws_err, sizeof(aws_err));
    if (r == SL_ECONFIG) {
        (void)snprintf(errbuf, errlen, "%s", aws_err);
        return r;
    } else if (r == SL_ENOTFOUND) {
        sl_log_info(KIN_COMP, ctx->env.inst,
                    "no AWS credentials found; sending unsigned requests to %s", ctx->url);
    } else if (r < 0) {
        return r;
    } else {
        r = sl_sigv4_new(creds.access_key_id, creds.secret_access_key, creds.session_token,
                         &ctx->signer);
        sl_log_debug(KIN_COMP, ctx->env.inst,
                     "signing with credentials from the %s, region %s, endpoint %s", creds.source,
                     ctx->arn.region, ctx->url);
        sl_aws_creds_fini(&creds);
        if (r < 0) {
            return r;
        }
    }
    for (int op = 0; op < KINESIS_OP_COUNT; op++) {
        struct sl_buf b;
        sl_buf_init(&b);
        r = sl_buf_printf(&b, "X-Amz-Target: %s", kinesis_wire_target((enum kinesis_op)op));
        r = r ? r : kin_http_header(&ctx->hdrs[op], b.data);
        sl_buf_fini(&b);
        r = r ? r : kin_http_header(&ctx->hdrs[op], "Content-Type: " KINESIS_CONTENT_TYPE);
        /* curl would send "Expect: 100-continue" for large bodies; ours are small */
        r = r ? r : kin_http_header(&ctx->hdrs[op], "Expect:");
        if (r < 0) {
            return r;
        }
    }
    return sl_httpc_new(ctx->env.loop, &ctx->httpc);
}

void kin_http_fini(struct kin_ctx *ctx)
{
    /* aborts what is in flight: each callback runs now, canceled, and frees its request */
    sl_httpc_free(ctx->httpc);
    ctx->httpc = NULL;
    for (int op = 0; op < KINESIS_OP_COUNT; op++) {
        curl_slist_free_all(ctx->hdrs[op]);
        ctx->hdrs[op] = NULL;
    }
    sl_sigv4_free(ctx->signer);
    sl_free(ctx->url);
    ctx->signer = NULL;
    ctx->url = NULL;
}

static void kin_http_done(void *arg, const struct sl_http_resp *resp)
{
    struct kin_req *req = arg;
    if (!req->canceled) {
        struct kin_answer a = {0};
        if (resp->curl_code == CURLE_OK && resp->status == 200 && !resp->too_large) {
            a.ok = true;
            a.body = resp->body;
            a.len = resp->body_len;
        } else if (resp->curl_code != CURLE_OK || resp->status == 0) {
            /* no answer: a transport error, retried as a server fault would be */
            a.err.retry = KINESIS_RETRY_THROTTLE;
            a.err.err = resp->curl_code == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
            (void)snprintf(a.err.type, sizeof(a.err.type), "transport");
            (void)snprintf(a.err.message, sizeof(a.err.message), "%s (curl %d)",
                           resp->curl_error ? resp->curl_error : "", (int)resp->curl_code);
        } else if (resp->too_large) {
            a.err.retry = KINESIS_RETRY_FATAL;
            a.err.err = SL_EPROTO;
            (void)snprintf(a.err.type, sizeof(a.err.type), "too large");
            (void)snprintf(a.err.message, sizeof(a.err.message), "the answer exceeds %u bytes",
                           KIN_MAX_RESPONSE_BYTES);
        } else {
            kinesis_wire_error_read(resp->status, resp->body, resp->body_len,
                                    sl_http_resp_header(resp, "x-amzn-ErrorType"), &a.err);
        }
        req->cb(req->arg, &a);
    }
    sl_free(req->body);
    sl_free(req);
}

int kin_http_send(struct kin_ctx *ctx,
                  enum kinesis_op op,
                  const struct sl_buf *body,
                  kin_req_cb cb,
                  void *arg,
                  struct kin_req **ret_req)
{
    struct kin_req *req = sl_calloc(1, sizeof(*req));
    if (!req) {
        return SL_ENOMEM;
    }
    req->body = sl_malloc(body->len + 1);
    if (!req->body) {
        sl_free(req);
        return SL_ENOMEM;
    }
    memcpy(req->body, body->data, body->len);
    req->body[body->len] = '\0';
    req->ctx = ctx;
    req->cb = cb;
    req->arg = arg;
    struct sl_http_req hr = {
        .method = "POST",
        .url = ctx->url,
        .headers = ctx->hdrs[op],
        .body = req->body,
        .body_len = body->len,
        .timeout_ms = KIN_REQUEST_TIMEOUT_MS,
        .max_response_bytes = KIN_MAX_RESPONSE_BYTES,
    };
    if (ctx->signer) {
        hr.aws_signer = ctx->signer;
        hr.aws_region = ctx->arn.region;
        hr.aws_service = "kinesis";
        hr.aws_clock = ctx->env.clock;
    }
    int r = sl_httpc_request(ctx->httpc, &hr, kin_http_done, req);
    if (r < 0) {
        sl_free(req->body);
        sl_free(req);
        return r;
    }
    *ret_req = req;
    return 0;
}

void kin_http_cancel(struct kin_ctx *ctx, struct kin_req *req)
{
    /* the transfer is aborted; its callback, on a later loop turn, only frees it */
    req->canceled = true;
    (void)sl_httpc_cancel(ctx->httpc, req);
}

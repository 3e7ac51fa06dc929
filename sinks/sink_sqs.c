/* SPDX-License-Identifier: Apache-2.0 */
/* sink_sqs.c: the SQS destination, named by a queue ARN (arn:PARTITION:sqs:REGION:ACCOUNT:NAME)
 * or a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME, or any http(s) URL whose path
 * is /ACCOUNT/NAME with a 12-digit account, which is how local servers such as fauxqs name
 * queues). Each document becomes one message: SendMessage over AWS JSON 1.0 (POST,
 * X-Amz-Target: AmazonSQS.SendMessage) through the shared HTTP client on the loop, signed with
 * SigV4 by curl when credentials are found (sl_aws_creds_load), unsigned otherwise.
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
 * SL_EIO. Loop thread only. */
#include "sink.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "alloc.h"
#include "aws.h"
#include "buf.h"
#include "encoder.h"
#include "httpc.h"
#include "log.h"
#include "url.h"

#define SQS_TIMEOUT_MS        30000L
#define SQS_MAX_RESPONSE_SIZE (64u * 1024u)
#define SQS_MAX_BODY_BYTES    (1024u * 1024u) /* SQS's message size limit, 1 MiB */
#define SQS_NAME_MAX          80
#define SQS_ACCOUNT_LEN       12
#define SQS_DETAIL_MAX        512
#define SQS_GROUP_ID          "sluice"

/* A destination taken apart; no allocation, so handles() can use it. */
struct sqs_dest {
    bool is_arn;
    bool fifo;
    char partition[32]; /* ARN only */
    char region[64];    /* ARN, or an AWS URL's host; else "" */
    char account[SQS_ACCOUNT_LEN + 1];
    char name[SQS_NAME_MAX + 1];
    size_t origin_len; /* URL only: length of "scheme://authority" */
};

struct sqs_ctx;

struct sqs_op {
    struct sqs_op *prev, *next; /* in ctx->ops: every op not yet called back */
    struct sqs_op *wnext;       /* in ctx->waiting */
    struct sqs_ctx *ctx;
    const char *body; /* borrowed until the callback */
    size_t len;
    const char *key;
    struct sl_buf req; /* the SendMessage request body */
    sl_sink_cb cb;
    void *arg;
    uv_timer_t timer; /* for failures found before any request */
    bool has_timer;
    int err;
    char detail[SQS_DETAIL_MAX];
};

struct sqs_ctx {
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
    char *sigv4; /* "aws:amz:REGION:sqs" or NULL (unsigned) */
    struct sl_aws_creds creds;
    struct curl_slist *send_headers;
    struct curl_slist *geturl_headers;
    struct sl_buf geturl_req;
    bool resolving;
    struct sqs_op *waiting; /* writes waiting for the QueueUrl */
    struct sqs_op **wtail;
    struct sqs_op *ops;
    bool stopped;
};

/* ---- destinations ---- */

static bool sqs_valid_name(const char *s, size_t n)
{
    if (n == 0 || n > SQS_NAME_MAX) {
        return false;
    }
    size_t base = n;
    if (n > 5 && memcmp(s + n - 5, ".fifo", 5) == 0) {
        base = n - 5;
    }
    for (size_t i = 0; i < base; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_') {
            return false;
        }
    }
    return true;
}

static bool sqs_all(const char *s, size_t n, const char *allowed_extra, bool digits_only)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (digits_only ? !isdigit(c)
                        : !(islower(c) || isdigit(c) || (c && strchr(allowed_extra, c)))) {
            return false;
        }
    }
    return true;
}

static bool sqs_copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) {
        return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* "arn:PARTITION:sqs:REGION:ACCOUNT:NAME" */
static bool sqs_parse_arn(const char *d, struct sqs_dest *ret)
{
    const char *f[6];
    size_t len[6];
    const char *p = d;
    for (int i = 0; i < 6; i++) {
        const char *c = i < 5 ? strchr(p, ':') : p + strlen(p);
        if (!c) {
            return false;
        }
        f[i] = p;
        len[i] = (size_t)(c - p);
        p = c + 1;
    }
    if (len[0] != 3 || memcmp(f[0], "arn", 3) != 0 || len[2] != 3 || memcmp(f[2], "sqs", 3) != 0) {
        return false;
    }
    if (len[1] == 0 || !sqs_all(f[1], len[1], "-", false) || len[3] == 0 ||
        !sqs_all(f[3], len[3], "-", false) || len[4] != SQS_ACCOUNT_LEN ||
        !sqs_all(f[4], len[4], "", true) || !sqs_valid_name(f[5], len[5])) {
        return false;
    }
    ret->is_arn = true;
    return sqs_copy(ret->partition, sizeof(ret->partition), f[1], len[1]) &&
           sqs_copy(ret->region, sizeof(ret->region), f[3], len[3]) &&
           sqs_copy(ret->account, sizeof(ret->account), f[4], len[4]) &&
           sqs_copy(ret->name, sizeof(ret->name), f[5], len[5]);
}

/* "http(s)://AUTHORITY/ACCOUNT/NAME" with a 12-digit account; the region is read from AWS host
 * names (sqs.REGION.amazonaws.com[.cn], REGION.queue.amazonaws.com). */
static bool sqs_parse_url(const char *d, struct sqs_dest *ret)
{
    const char *a;
    if (strncasecmp(d, "http://", 7) == 0) {
        a = d + 7;
    } else if (strncasecmp(d, "https://", 8) == 0) {
        a = d + 8;
    } else {
        return false;
    }
    const char *path = strchr(a, '/');
    if (!path || path == a || memchr(a, '@', (size_t)(path - a)) || strpbrk(path, "?#")) {
        return false;
    }
    const char *acct = path + 1;
    const char *slash = strchr(acct, '/');
    if (!slash || slash - acct != SQS_ACCOUNT_LEN || !sqs_all(acct, SQS_ACCOUNT_LEN, "", true)) {
        return false;
    }
    const char *name = slash + 1;
    if (!sqs_valid_name(name, strlen(name))) {
        return false;
    }
    ret->is_arn = false;
    ret->origin_len = (size_t)(path - d);
    (void)sqs_copy(ret->account, sizeof(ret->account), acct, SQS_ACCOUNT_LEN);
    (void)sqs_copy(ret->name, sizeof(ret->name), name, strlen(name));
    /* The host, without a port. */
    size_t hlen = (size_t)(path - a);
    const char *colon = memchr(a, ':', hlen);
    if (colon) {
        hlen = (size_t)(colon - a);
    }
    const char *dot = memchr(a, '.', hlen);
    if (hlen > 4 && strncasecmp(a, "sqs.", 4) == 0) {
        const char *r = a + 4;
        const char *e = memchr(r, '.', hlen - 4);
        if (e && e > r) {
            (void)sqs_copy(ret->region, sizeof(ret->region), r, (size_t)(e - r));
        }
    } else if (dot && (size_t)(a + hlen - dot) >= 20 &&
               strncasecmp(dot, ".queue.amazonaws.com", 20) == 0) {
        (void)sqs_copy(ret->region, sizeof(ret->region), a, (size_t)(dot - a));
    }
    return true;
}

static bool sqs_parse(const char *d, struct sqs_dest *ret)
{
    memset(ret, 0, sizeof(*ret));
    bool ok = strncmp(d, "arn:", 4) == 0 ? sqs_parse_arn(d, ret) : sqs_parse_url(d, ret);
    if (ok) {
        size_t n = strlen(ret->name);
        ret->fifo = n > 5 && strcmp(ret->name + n - 5, ".fifo") == 0;
    }
    return ok;
}

static bool sqs_handles(const char *destination)
{
    struct sqs_dest dest;
    if (strncmp(destination, "arn:", 4) == 0) {
        /* Any ARN of the sqs service is ours, so check() can say what is wrong with it. */
        const char *p = strchr(destination + 4, ':');
        return p && strncmp(p, ":sqs:", 5) == 0;
    }
    return sqs_parse_url(destination, &dest);
}

static int sqs_check(const char *destination, char *errbuf, size_t errlen)
{
    static const char *const schemes[] = {"http", "https", NULL};
    struct sqs_dest dest;
    if (!sqs_parse(destination, &dest)) {
        char shown[SL_URL_REDACTED_MAX];
        (void)snprintf(errbuf, errlen,
                       "'%s' is not an SQS queue: expected an ARN "
                       "arn:aws:sqs:REGION:ACCOUNT:NAME or a URL "
                       "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (ACCOUNT: 12 digits; NAME: "
                       "up to 80 letters, digits, '-' or '_', optionally ending in .fifo)",
                       sl_url_redact(destination, shown, sizeof(shown)));
        return SL_ECONFIG;
    }
    /* A queue URL's host and port are where requests go: refuse what curl could not reach. */
    return dest.is_arn ? 0 : sl_url_check(destination, schemes, true, errbuf, errlen);
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

/* Reports op to its owner and frees it. Never called from inside write. */
static void sqs_complete(struct sqs_op *op, int err, const char *detail)
{
    sqs_unlink(op);
    if (err && err != SL_ECANCELED) {
        sl_log_debug("sink_sqs", op->ctx->inst, "%s", detail);
    }
    sl_sink_cb cb = op->cb;
    void *arg = op->arg;
    sl_buf_fini(&op->req);
    if (op->has_timer) {
        /* The detail may live in op: call back before the op goes. */
        cb(arg, err, err ? detail : NULL);
        uv_close((uv_handle_t *)&op->timer, sqs_timer_closed);
        return;
    }
    char copy[SQS_DETAIL_MAX];
    (void)snprintf(copy, sizeof(copy), "%s", err && detail ? detail : "");
    sl_free(op);
    cb(arg, err, err ? copy : NULL);
}

static void sqs_timer_cb(uv_timer_t *t)
{
    struct sqs_op *op = t->data;
    sqs_complete(op, op->ctx->stopped ? SL_ECANCELED : op->err,
                 op->ctx->stopped ? "canceled" : op->detail);
}

/* ---- responses ---- */

struct sqs_error {
    const char *type; /* __type without its "namespace#" prefix, or the query code, or "" */
    char message[256];
};

/* Reads AWS's JSON error body and the x-amzn-query-error header of resp. */
static void sqs_read_error(const struct sl_http_resp *resp, cJSON **ret_json, struct sqs_error *ret)
{
    ret->type = "";
    ret->message[0] = '\0';
    cJSON *j = resp->body_len ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;
    *ret_json = j;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
    if (cJSON_IsString(t)) {
        const char *hash = strrchr(t->valuestring, '#');
        ret->type = hash ? hash + 1 : t->valuestring;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(m)) {
        m = cJSON_GetObjectItemCaseSensitive(j, "Message");
    }
    if (cJSON_IsString(m)) {
        (void)snprintf(ret->message, sizeof(ret->message), "%s", m->valuestring);
    }
}

static bool sqs_type_is(const char *type, const char *const *names)
{
    for (; *names; names++) {
        if (strcmp(type, *names) == 0) {
            return true;
        }
    }
    return false;
}

/* Translates a finished request of action (SendMessage, GetQueueUrl) into an error and
 * detail. Returns 0 for 2xx. */
static int sqs_outcome(const struct sqs_ctx *ctx,
                       const char *action,
                       const struct sl_http_resp *resp,
                       char *detail,
                       size_t len)
{
    if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        (void)snprintf(detail, len, "%s canceled", action);
        return SL_ECANCELED;
    }
    const char *where = ctx->queue_url ? ctx->queue_shown : ctx->dest.name;
    if (resp->curl_code != CURLE_OK) {
        (void)snprintf(detail, len, "%s %s via %s: %s", action, where, ctx->endpoint_shown,
                       resp->curl_error && *resp->curl_error ? resp->curl_error
                                                             : curl_easy_strerror(resp->curl_code));
        return resp->curl_code == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
    }
    long s = resp->status;
    if (s >= 200 && s < 300) {
        return 0;
    }
    cJSON *j = NULL;
    struct sqs_error e;
    sqs_read_error(resp, &j, &e);
    const char *qerr = sl_http_resp_header(resp, "x-amzn-query-error");
    char qcode[128] = "";
    if (qerr) {
        (void)snprintf(qcode, sizeof(qcode), "%s", qerr);
        char *semi = strchr(qcode, ';');
        if (semi) {
            *semi = '\0';
        }
    }
    if (!*e.type && *qcode) {
        e.type = qcode;
    }
    static const char *const not_found[] = {"QueueDoesNotExist",
                                            "AWS.SimpleQueueService.NonExistentQueue", NULL};
    static const char *const throttled[] = {"RequestThrottled",
                                            "ThrottlingException",
                                            "Throttling",
                                            "KmsThrottled",
                                            "AWS.SimpleQueueService.RequestThrottled",
                                            NULL};
    static const char *const auth[] = {"InvalidClientTokenId",
                                       "SignatureDoesNotMatch",
                                       "IncompleteSignature",
                                       "MissingAuthenticationToken",
                                       "UnrecognizedClientException",
                                       "ExpiredToken",
                                       "InvalidSecurity",
                                       "AccessDenied",
                                       "AccessDeniedException",
                                       "KmsAccessDenied",
                                       NULL};
    int err;
    if (sqs_type_is(e.type, not_found) || sqs_type_is(qcode, not_found)) {
        err = SL_ENOTFOUND;
    } else if (s == 429 || s == 503 || sqs_type_is(e.type, throttled)) {
        err = SL_ETHROTTLED;
    } else if (s >= 500) {
        err = SL_EREMOTE;
    } else if (sqs_type_is(e.type, auth) || s == 401 || s == 403) {
        err = SL_EAUTH;
    } else if (s >= 400) {
        err = SL_EREJECTED;
    } else {
        err = SL_EPROTO;
    }
    (void)snprintf(detail, len, "%s %s: status %ld%s%s%s%s", action, where, s, *e.type ? " " : "",
                   e.type, *e.message ? ": " : "", e.message);
    cJSON_Delete(j);
    return err;
}

/* ---- requests ---- */

static void sqs_send_done(void *arg, const struct sl_http_resp *resp);

/* Appends a FIFO deduplication id for body: 32 hex digits from two independent 64-bit FNV-1a
 * hashes, each finished with a splitmix64 mix. Not cryptographic: it only has to tell apart
 * the failure records sent within SQS's 5-minute deduplication window, which already differ in
 * their request ids and timestamps. */
static int sqs_dedup_hash(struct sl_buf *out, const char *body, size_t len)
{
    uint64_t h[2] = {0xcbf29ce484222325u, 0x84222325cbf29ce4u ^ (uint64_t)len};
    for (size_t i = 0; i < len; i++) {
        h[0] = (h[0] ^ (unsigned char)body[i]) * 0x100000001b3u;
        h[1] = (h[1] ^ (unsigned char)body[len - 1 - i]) * 0x100000001b3u;
    }
    for (int k = 0; k < 2; k++) {
        uint64_t z = h[k] + 0x9e3779b97f4a7c15u;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        h[k] = z ^ (z >> 31);
    }
    return sl_buf_printf(out, "%016llx%016llx", (unsigned long long)h[0], (unsigned long long)h[1]);
}

static bool sqs_valid_dedup_id(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static int sqs_build_send(const struct sqs_ctx *ctx, struct sqs_op *op)
{
    struct sl_buf *b = &op->req;
    sl_buf_truncate(b, 0);
    int r = sl_buf_reserve(b, op->len + op->len / 8 + 256);
    r = r ? r : sl_buf_puts(b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(b, ctx->queue_url, strlen(ctx->queue_url));
    r = r ? r : sl_buf_puts(b, ",\"MessageBody\":");
    r = r ? r : sl_enc_json_str(b, op->body, op->len);
    if (ctx->dest.fifo) {
        r = r ? r : sl_buf_puts(b, ",\"MessageGroupId\":\"" SQS_GROUP_ID "\"");
        r = r ? r : sl_buf_puts(b, ",\"MessageDeduplicationId\":");
        if (op->key && sqs_valid_dedup_id(op->key)) {
            r = r ? r : sl_enc_json_str(b, op->key, strlen(op->key));
        } else {
            r = r ? r : sl_buf_puts(b, "\"");
            r = r ? r : sqs_dedup_hash(b, op->body, op->len);
            r = r ? r : sl_buf_puts(b, "\"");
        }
    }
    r = r ? r : sl_buf_puts(b, "}");
    return r;
}

/* Starts op's SendMessage. Returns 0 or an error (nothing started). */
static int sqs_send(struct sqs_ctx *ctx, struct sqs_op *op)
{
    int r = sqs_build_send(ctx, op);
    if (r < 0) {
        return r;
    }
    struct sl_http_req req = {
        .method = "POST",
        .url = ctx->endpoint,
        .headers = ctx->send_headers,
        .body = op->req.data,
        .body_len = op->req.len,
        .timeout_ms = SQS_TIMEOUT_MS,
        .aws_sigv4 = ctx->sigv4,
        .username = ctx->sigv4 ? ctx->creds.access_key_id : NULL,
        .password = ctx->sigv4 ? ctx->creds.secret_access_key : NULL,
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
    char detail[SQS_DETAIL_MAX];
    int err = sqs_outcome(ctx, "SendMessage", resp, detail, sizeof(detail));
    if (err == SL_ENOTFOUND && ctx->dest.is_arn && ctx->queue_url) {
        /* Resolve again on the next write: the queue may have been deleted and recreated. */
        (void)sqs_set_queue_url(ctx, NULL);
    }
    sqs_complete(op, err, detail);
}

static void sqs_geturl_done(void *arg, const struct sl_http_resp *resp)
{
    struct sqs_ctx *ctx = arg;
    ctx->resolving = false;
    char detail[SQS_DETAIL_MAX];
    int err = sqs_outcome(ctx, "GetQueueUrl", resp, detail, sizeof(detail));
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
                char d[128];
                (void)snprintf(d, sizeof(d), "SendMessage %s: %s", ctx->queue_shown,
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
        int r = sl_buf_puts(b, "{\"QueueName\":");
        r = r ? r : sl_enc_json_str(b, ctx->dest.name, strlen(ctx->dest.name));
        r = r ? r : sl_buf_puts(b, ",\"QueueOwnerAWSAccountId\":");
        r = r ? r : sl_enc_json_str(b, ctx->dest.account, strlen(ctx->dest.account));
        r = r ? r : sl_buf_puts(b, "}");
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
        .timeout_ms = SQS_TIMEOUT_MS,
        .aws_sigv4 = ctx->sigv4,
        .username = ctx->sigv4 ? ctx->creds.access_key_id : NULL,
        .password = ctx->sigv4 ? ctx->creds.secret_access_key : NULL,
        .max_response_bytes = SQS_MAX_RESPONSE_SIZE,
    };
    int r = sl_httpc_request(ctx->httpc, &req, sqs_geturl_done, ctx);
    if (r == 0) {
        ctx->resolving = true;
    }
    return r;
}

/* ---- the sink ---- */

static int sqs_headers(const struct sqs_ctx *ctx, const char *action, struct curl_slist **ret)
{
    struct sl_buf b;
    sl_buf_init(&b);
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
    int r = l ? sl_buf_printf(&b, "X-Amz-Target: AmazonSQS.%s", action) : SL_ENOMEM;
    struct curl_slist *n = r == 0 ? curl_slist_append(l, b.data) : NULL;
    if (n) {
        l = n;
    }
    if (n && ctx->sigv4 && ctx->creds.session_token) {
        sl_buf_truncate(&b, 0);
        r = sl_buf_printf(&b, "X-Amz-Security-Token: %s", ctx->creds.session_token);
        n = r == 0 ? curl_slist_append(l, b.data) : NULL;
        if (n) {
            l = n;
        }
    }
    if (b.data) {
        explicit_bzero(b.data, b.cap);
    }
    sl_buf_fini(&b);
    *ret = l;
    return n ? 0 : SL_ENOMEM;
}

static int sqs_init(
    void *ctx_, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct sqs_ctx *ctx = ctx_;
    ctx->wtail = &ctx->waiting;
    sl_buf_init(&ctx->geturl_req);
    int r = sqs_check(destination, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    assert(env->httpc);
    ctx->loop = env->loop;
    ctx->httpc = env->httpc;
    ctx->inst = env->inst;
    (void)sqs_parse(destination, &ctx->dest);

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
    r = sl_aws_creds_load(&ctx->creds, aws_err, sizeof(aws_err));
    if (r == SL_ECONFIG) {
        (void)snprintf(errbuf, errlen, "%s", aws_err);
        goto fail;
    } else if (r == SL_ENOTFOUND) {
        sl_log_debug("sink_sqs", ctx->inst, "no AWS credentials found; requests to %s unsigned",
                     ctx->endpoint_shown);
    } else if (r < 0) {
        goto fail;
    } else {
        sl_buf_truncate(&b, 0);
        r = sl_buf_printf(&b, "aws:amz:%s:sqs", region);
        ctx->sigv4 = r == 0 ? sl_buf_steal(&b) : NULL;
        if (!ctx->sigv4) {
            r = SL_ENOMEM;
            goto fail;
        }
    }
    r = sqs_headers(ctx, "SendMessage", &ctx->send_headers);
    r = r ? r : sqs_headers(ctx, "GetQueueUrl", &ctx->geturl_headers);
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

static int sqs_write(void *ctx_, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct sqs_ctx *ctx = ctx_;
    if (ctx->stopped) {
        return SL_ECANCELED;
    }
    struct sqs_op *op = sl_calloc(1, sizeof(*op));
    if (!op) {
        return SL_ENOMEM;
    }
    op->ctx = ctx;
    op->body = doc->body;
    op->len = doc->len;
    op->key = doc->key;
    op->cb = cb;
    op->arg = arg;
    sl_buf_init(&op->req);

    int r = 0;
    if (doc->len > SQS_MAX_BODY_BYTES) {
        /* Reported through the callback, so the caller gets the detail. */
        op->err = SL_EREJECTED;
        (void)snprintf(op->detail, sizeof(op->detail),
                       "SendMessage %s: a document of %zu bytes exceeds SQS's %u-byte message "
                       "limit",
                       ctx->queue_url ? ctx->queue_shown : ctx->dest.name, doc->len,
                       SQS_MAX_BODY_BYTES);
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
    curl_slist_free_all(ctx->geturl_headers);
    ctx->send_headers = ctx->geturl_headers = NULL;
    sl_buf_fini(&ctx->geturl_req);
    sl_aws_creds_fini(&ctx->creds);
    (void)sqs_set_queue_url(ctx, NULL);
    sl_free(ctx->endpoint);
    sl_free(ctx->endpoint_shown);
    sl_free(ctx->sigv4);
    ctx->endpoint = ctx->endpoint_shown = ctx->sigv4 = NULL;
}

const struct sl_sink_ops sl_sink_sqs = {
    .abi = SL_SINK_ABI,
    .name = "sqs",
    .handles = sqs_handles,
    .ctx_size = sizeof(struct sqs_ctx),
    .keeps_payload = false, /* batch info only, as AWS's SQS destination */
    .check = sqs_check,
    .init = sqs_init,
    .write = sqs_write,
    .stop = sqs_stop,
    .fini = sqs_fini,
};

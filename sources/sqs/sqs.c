/* SPDX-License-Identifier: Apache-2.0 */
/* sqs.c: the SQS source (sources/README.md "The queue model"), the first queue adapter. A
 * mapping names its queue by EventSourceArn arn:aws:sqs:REGION:ACCOUNT:NAME, as
 * `aws lambda create-event-source-mapping` does, or by the queue's URL (our extension; local
 * servers such as fauxqs). Requests go over AWS JSON 1.0 to, for an ARN,
 * sl_aws_endpoint_url("sqs") (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, the profile's config)
 * or AWS's https://sqs.REGION.amazonaws.com, the QueueUrl resolved once with GetQueueUrl; for a
 * URL, to its own origin. Signed with SigV4 when credentials are found.
 *
 * At start (asynchronously: start never blocks) the queue is resolved and GetQueueAttributes
 * read: FifoQueue (a .fifo name is confirmed, or the server's answer wins with a warning) and
 * VisibilityTimeout; only then does the queue's one partition appear. A queue that does not
 * exist is an error line at start, tried again every 30 s, never a silent wait. This file owns
 * the options, the ARN, those start steps, what a record says of itself (its group as the key,
 * its MessageId as the itemIdentifier, its SQS event and filter document) and stop; receiving
 * is sqs_recv.c's, the leases sqs_lease.c's, the wire sqs_call.c's. Loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "aws.h"
#include "encoder.h"
#include "event_sqs.h"
#include "log.h"
#include "sqs_int.h"
#include "sqs_wire.h"
#include "url.h"

static const struct sl_opt sqs_opts[] = {
    {"wait_time", SL_OPT_DURATION, "20s", 0, 20000, offsetof(struct sqs_ctx, wait_ms), 0, NULL,
     "ReceiveMessage's WaitTimeSeconds (long polling), whole seconds up to 20."},
    {"timeout", SL_OPT_DURATION, "30s", 100, 900000, offsetof(struct sqs_ctx, timeout_ms), 0, NULL,
     "How long one SQS request may take (a receive: this plus wait_time)."},
    {"delete_attempts", SL_OPT_INT, "5", 1, 100, offsetof(struct sqs_ctx, delete_retries), 0, NULL,
     "Attempts to delete one message whose delete failed on SQS's side before the "
     "mapping is told it failed (the message then comes back)."},
    {"visibility_timeout", SL_OPT_DURATION, "0", 0, 43200000,
     offsetof(struct sqs_ctx, visibility_ms), 0, NULL,
     "The visibility timeout each receive asks for, whole seconds; 0: the queue's own."},
    {0},
};

/* --- the queue's facts --- */

/* What the mapping asks right after start: a FIFO queue (its name ends .fifo, which SQS
 * requires of every FIFO queue) takes a BatchSize of at most 10; the visibility timeout is
 * known then only when the mapping sets visibility_timeout, since the queue's own is read with
 * GetQueueAttributes after start returned: when it is, it is logged and the mapping is told
 * (env->queue_limits_changed), which asks again. */
static void sqs_queue_limits(void *vctx, struct sl_queue_limits *lim)
{
    const struct sqs_ctx *ctx = vctx;
    if (ctx->dest.fifo && lim->batch_size_max > 10) {
        lim->batch_size_max = 10;
    }
    if (ctx->ready) {
        lim->visibility_ms = ctx->queue_visibility_ms;
    } else if (ctx->visibility_ms > 0) {
        lim->visibility_ms = (ctx->visibility_ms + 999) / 1000 * 1000;
    }
}

/* --- start: GetQueueUrl, GetQueueAttributes, the partition --- */

static void sqs_resolve(struct sqs_ctx *ctx);

static void sqs_start_timer_cb(uv_timer_t *t)
{
    sqs_resolve(t->data);
}

static void sqs_start_failed(struct sqs_ctx *ctx, int err, const char *detail)
{
    ctx->start_tried = true;
    bool slow = err == SL_ENOTFOUND || err == SL_EAUTH;
    int64_t delay = slow ? SQS_SLOW_RETRY_MS : sqs_backoff_ms(4, SQS_RETRY_MAX_MS);
    sl_log_error(SQS_COMP, ctx->env.inst, "EventSourceArn %s: %s%s; trying again in %" PRId64 " s",
                 ctx->arn, detail, err == SL_ENOTFOUND ? " (the queue does not exist)" : "",
                 delay / 1000);
    (void)uv_timer_start(ctx->start_timer, sqs_start_timer_cb, (uint64_t)delay, 0);
}

static int sqs_set_queue_url(struct sqs_ctx *ctx, const char *url)
{
    char *u = sl_strdup(url);
    char *shown = sl_url_redact_dup(url);
    if (!u || !shown) {
        sl_free(u);
        sl_free(shown);
        return SL_ENOMEM;
    }
    sl_free(ctx->queue_url);
    sl_free(ctx->queue_shown);
    ctx->queue_url = u;
    ctx->queue_shown = shown;
    return 0;
}

static void sqs_attrs_done(struct sqs_ctx *ctx,
                           struct sqs_call *call,
                           int err,
                           const char *detail,
                           const struct sl_http_resp *resp)
{
    (void)call;
    if (err) {
        sqs_start_failed(ctx, err, detail);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(j, "Attributes");
    const cJSON *fifo = cJSON_GetObjectItemCaseSensitive(attrs, "FifoQueue");
    const cJSON *vt = cJSON_GetObjectItemCaseSensitive(attrs, "VisibilityTimeout");
    bool is_fifo = cJSON_IsString(fifo) && strcmp(fifo->valuestring, "true") == 0;
    if (is_fifo != ctx->dest.fifo) {
        sl_log_warn(SQS_COMP, ctx->env.inst, "queue %s says FifoQueue %s: taken as %s",
                    ctx->queue_shown, is_fifo ? "true" : "false", is_fifo ? "FIFO" : "standard");
    }
    ctx->fifo = is_fifo;
    ctx->queue_visibility_ms =
        cJSON_IsString(vt) ? strtoll(vt->valuestring, NULL, 10) * 1000 : 30000;
    cJSON_Delete(j);
    if (ctx->visibility_ms > 0) {
        ctx->queue_visibility_ms = (ctx->visibility_ms + 999) / 1000 * 1000;
    }
    if (ctx->queue_visibility_ms <= 0) {
        ctx->queue_visibility_ms = 1000;
    }
    struct sl_part *part = NULL;
    if (ctx->env.part_add(ctx->env.owner, ctx->arn, ctx->dest.name, &part) < 0) {
        sqs_start_failed(ctx, SL_ENOMEM, "out of memory");
        return;
    }
    part->src = ctx;
    ctx->part = part;
    ctx->ready = true;
    ctx->start_tried = true;
    sl_log_info(SQS_COMP, ctx->env.inst, "queue %s: %s, visibility timeout %" PRId64 " s",
                ctx->queue_shown, ctx->fifo ? "FIFO" : "standard", ctx->queue_visibility_ms / 1000);
    if (ctx->env.queue_limits_changed) {
        ctx->env.queue_limits_changed(ctx->env.owner); /* the visibility timeout is known now */
    }
}

static void sqs_read_attributes(struct sqs_ctx *ctx)
{
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(&b, ctx->queue_url, strlen(ctx->queue_url));
    r = r ? r : sl_buf_puts(&b, ",\"AttributeNames\":[\"FifoQueue\",\"VisibilityTimeout\"]}");
    r = r ? r : sqs_call_start(ctx, SQS_CALL_ATTRS, &b, sqs_attrs_done, NULL);
    sl_buf_fini(&b);
    if (r < 0) {
        sqs_start_failed(ctx, r, sl_strerror(r));
    }
}

static void sqs_geturl_done(struct sqs_ctx *ctx,
                            struct sqs_call *call,
                            int err,
                            const char *detail,
                            const struct sl_http_resp *resp)
{
    (void)call;
    if (err) {
        sqs_start_failed(ctx, err, detail);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "QueueUrl");
    int r =
        cJSON_IsString(u) && *u->valuestring ? sqs_set_queue_url(ctx, u->valuestring) : SL_EPROTO;
    cJSON_Delete(j);
    if (r < 0) {
        sqs_start_failed(ctx, r, "GetQueueUrl: no QueueUrl in the answer");
        return;
    }
    sqs_read_attributes(ctx);
}

static void sqs_resolve(struct sqs_ctx *ctx)
{
    if (ctx->stopped) {
        return;
    }
    if (ctx->queue_url) {
        sqs_read_attributes(ctx);
        return;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_sqs_wire_geturl(&b, ctx->dest.name, ctx->dest.account);
    r = r ? r : sqs_call_start(ctx, SQS_CALL_GETURL, &b, sqs_geturl_done, NULL);
    sl_buf_fini(&b);
    if (r < 0) {
        sqs_start_failed(ctx, r, sl_strerror(r));
    }
}

/* --- the operations --- */

static int sqs_check(void *vctx, const char *arn, char *errbuf, size_t errlen)
{
    (void)vctx;
    char why[512];
    if (sl_sqs_dest_check(arn, why, sizeof(why)) < 0) {
        (void)snprintf(errbuf, errlen, "EventSourceArn: %s", why);
        return SL_ECONFIG;
    }
    return 0;
}

static int sqs_timer_new(struct sqs_ctx *ctx, uv_timer_t **ret)
{
    uv_timer_t *t = sl_calloc(1, sizeof(*t));
    if (!t) {
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, t);
    t->data = ctx;
    *ret = t;
    return 0;
}

static int sqs_init(void *vctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    struct sqs_ctx *ctx = vctx;
    ctx->env = *env;
    if (!sl_sqs_dest_parse(env->arn, &ctx->dest)) {
        return sqs_check(ctx, env->arn, errbuf, errlen);
    }
    ctx->fifo = ctx->dest.fifo;
    ctx->queue_visibility_ms = 30000;
    ctx->depth = -1;
    if (*ctx->dest.region) {
        ctx->region = sl_strdup(ctx->dest.region);
    } else if (env->region && *env->region) {
        ctx->region = sl_strdup(env->region);
    } else {
        ctx->region = sl_aws_region();
        if (!ctx->region) {
            ctx->region = sl_strdup("us-east-1");
        }
    }
    if (!ctx->region) {
        return SL_ENOMEM;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = 0;
    if (ctx->dest.is_arn) {
        ctx->arn = sl_strdup(env->arn);
        ctx->endpoint = sl_aws_endpoint_url("sqs");
        if (!ctx->endpoint) {
            r = sl_buf_printf(&b, "https://sqs.%s.amazonaws.com%s", ctx->region,
                              strcmp(ctx->dest.partition, "aws-cn") == 0 ? ".cn" : "");
            ctx->endpoint = r == 0 ? sl_buf_steal(&b) : NULL;
        }
    } else {
        r = sl_buf_printf(&b, "arn:aws:sqs:%s:%s:%s", ctx->region, ctx->dest.account,
                          ctx->dest.name);
        ctx->arn = r == 0 ? sl_buf_steal(&b) : NULL;
        r = r ? r : sl_buf_append(&b, env->arn, ctx->dest.origin_len);
        r = r ? r : sl_buf_puts(&b, "/");
        ctx->endpoint = r == 0 ? sl_buf_steal(&b) : NULL;
        r = r ? r : sqs_set_queue_url(ctx, env->arn);
    }
    sl_buf_fini(&b);
    if (r < 0 || !ctx->arn || !ctx->endpoint ||
        !(ctx->endpoint_shown = sl_url_redact_dup(ctx->endpoint))) {
        return SL_ENOMEM;
    }
    char aws_err[256] = "";
    struct sl_aws_creds creds;
    r = sl_aws_creds_load(&creds, aws_err, sizeof(aws_err));
    if (r == SL_ECONFIG) {
        (void)snprintf(errbuf, errlen, "%s", aws_err);
        return r;
    }
    if (r == 0) {
        r = sl_sigv4_new(creds.access_key_id, creds.secret_access_key, creds.session_token,
                         &ctx->signer);
        sl_aws_creds_fini(&creds);
        if (r < 0) {
            return r;
        }
    } else if (r == SL_ENOTFOUND) {
        sl_log_debug(SQS_COMP, env->inst, "no AWS credentials found; requests to %s unsigned",
                     ctx->endpoint_shown);
    } else {
        return r;
    }
    r = sqs_call_init_headers(ctx);
    r = r ? r : sl_httpc_new(env->loop, &ctx->httpc);
    r = r ? r : sqs_timer_new(ctx, &ctx->start_timer);
    r = r ? r : sqs_timer_new(ctx, &ctx->recv_timer);
    r = r ? r : sqs_timer_new(ctx, &ctx->tick);
    if (r < 0) {
        return r;
    }
    ctx->inited = true;
    return 0;
}

static int sqs_start(void *vctx)
{
    sqs_resolve(vctx);
    return 0;
}

static void sqs_depth_done(struct sqs_ctx *ctx,
                           struct sqs_call *call,
                           int err,
                           const char *detail,
                           const struct sl_http_resp *resp)
{
    (void)call;
    ctx->depth_busy = false;
    if (err) {
        sl_log_debug(SQS_COMP, ctx->env.inst, "%s", detail);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(resp->body, resp->body_len);
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(j, "Attributes"), "ApproximateNumberOfMessages");
    if (cJSON_IsString(n)) {
        ctx->depth = strtoll(n->valuestring, NULL, 10);
    }
    cJSON_Delete(j);
}

/* The queue's depth: the messages visible in it, not yet received (ApproximateNumberOfMessages),
 * as last read; each call asks again, at most once a second, answered for the next one. -1 until
 * the first answer. */
static int64_t sqs_lag(void *vctx, struct sl_part *part)
{
    struct sqs_ctx *ctx = vctx;
    int64_t now = sqs_now(ctx);
    if (part != ctx->part || ctx->stopped || ctx->depth_busy ||
        (ctx->depth_at && now - ctx->depth_at < 1000)) {
        return ctx->depth;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(&b, ctx->queue_url, strlen(ctx->queue_url));
    r = r ? r : sl_buf_puts(&b, ",\"AttributeNames\":[\"ApproximateNumberOfMessages\"]}");
    r = r ? r : sqs_call_start(ctx, SQS_CALL_ATTRS, &b, sqs_depth_done, NULL);
    sl_buf_fini(&b);
    ctx->depth_at = now;
    ctx->depth_busy = r == 0;
    return ctx->depth;
}

static bool sqs_settling(void *vctx)
{
    const struct sqs_ctx *ctx = vctx;
    return !ctx->start_tried;
}

static size_t
sqs_record_key(void *vctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key)
{
    (void)vctx;
    struct sqs_meta m;
    sqs_meta_read(&part->q, rec, &m);
    *ret_key = m.group;
    return m.group_len;
}

static int sqs_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    struct sqs_meta m;
    sqs_meta_read(&part->q, rec, &m);
    if (m.msg_id_len >= len) {
        return SL_EINVAL;
    }
    memcpy(buf, m.msg_id, m.msg_id_len);
    buf[m.msg_id_len] = '\0';
    return 0;
}

/* Never called for a queue (nothing is checkpointed): the lease, for logs. */
static int
sqs_format_pos(void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    (void)part;
    int n = snprintf(buf, len, "%" PRIu64, sl_queue_rec_lease(rec));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static int
sqs_encode_record(void *vctx, struct sl_part *part, const struct sl_record *rec, struct sl_buf *out)
{
    (void)vctx;
    struct sqs_meta m;
    sqs_meta_read(&part->q, rec, &m);
    return sl_event_sqs_encode(out, m.head, m.head_len, sl_recq_data(&part->q, rec), rec->len,
                               m.tail, m.tail_len);
}

static cJSON *sqs_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    struct sqs_meta m;
    sqs_meta_read(&part->q, rec, &m);
    return sl_event_sqs_filter_doc(m.head, m.head_len, sl_recq_data(&part->q, rec), rec->len,
                                   m.tail, m.tail_len);
}

static void sqs_part_release(void *vctx, struct sl_part *part)
{
    struct sqs_ctx *ctx = vctx;
    if (part != ctx->part) {
        return;
    }
    sqs_lease_clear(ctx);
    sqs_recv_clear(ctx);
    ctx->part = NULL;
}

static void sqs_stop(void *vctx)
{
    struct sqs_ctx *ctx = vctx;
    ctx->stopped = true;
    if (!ctx->inited) {
        return;
    }
    (void)uv_timer_stop(ctx->start_timer);
    (void)uv_timer_stop(ctx->recv_timer);
    (void)uv_timer_stop(ctx->tick);
    sqs_call_cancel_all(ctx);
    sl_httpc_free(ctx->httpc); /* runs the dropped calls' callbacks, which only free them */
    ctx->httpc = NULL;
}

static void sqs_timer_closed(uv_handle_t *h)
{
    sl_free(h);
}

static void sqs_timer_close(uv_timer_t **t)
{
    if (*t) {
        uv_close((uv_handle_t *)*t, sqs_timer_closed);
        *t = NULL;
    }
}

static void sqs_fini(void *vctx)
{
    struct sqs_ctx *ctx = vctx;
    if (ctx->httpc) {
        ctx->stopped = true;
        sqs_call_cancel_all(ctx);
        sl_httpc_free(ctx->httpc);
        ctx->httpc = NULL;
    }
    sqs_timer_close(&ctx->start_timer);
    sqs_timer_close(&ctx->recv_timer);
    sqs_timer_close(&ctx->tick);
    sqs_lease_fini(ctx);
    sqs_recv_clear(ctx);
    for (int k = 0; k < SQS_CALL_KINDS; k++) {
        curl_slist_free_all(ctx->headers[k]);
        ctx->headers[k] = NULL;
    }
    sl_sigv4_free(ctx->signer);
    sl_free(ctx->region);
    sl_free(ctx->arn);
    sl_free(ctx->endpoint);
    sl_free(ctx->endpoint_shown);
    sl_free(ctx->queue_url);
    sl_free(ctx->queue_shown);
    ctx->signer = NULL;
    ctx->region = ctx->arn = ctx->endpoint = ctx->endpoint_shown = NULL;
    ctx->queue_url = ctx->queue_shown = NULL;
    ctx->inited = false;
}

static const struct sl_source_caps sqs_caps = {
    .model = SL_DELIVERY_QUEUE,
    .batch_size_default = 10,
    .batch_size_max = 10000,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .lag_unit = SL_LAG_RECORDS,
    .window_required_above = 10, /* AWS: BatchSize above 10 needs a window of at least 1 s */
};

/* queue_release: the lease table forgets the leases; a release with visibility 0 (a drain)
 * also pauses polling until the next fetch, so the poll in flight does not take the messages
 * back unseen (what it brings is returned too). */
static int sqs_release(
    void *vctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t visible_in_ms)
{
    int r = sqs_queue_release(vctx, part, leases, n, visible_in_ms);
    if (r == 0 && visible_in_ms == 0) {
        sqs_recv_pause(vctx);
    }
    return r;
}

const struct sl_source_ops sl_source_sqs = {
    .abi = SL_SOURCE_ABI,
    .name = "sqs",
    .scheme = "arn:aws:sqs:",
    .arn_prefix = "http", /* a queue URL, http:// or https:// (check refuses other URLs) */
    .arn_forms = "arn:aws:sqs:REGION:ACCOUNT:NAME or a queue URL "
                 "http(s)://HOST/ACCOUNT/NAME",
    .opts = sqs_opts,
    .ctx_size = sizeof(struct sqs_ctx),
    .event = &sl_event_sqs,
    .caps = &sqs_caps,
    .check = sqs_check,
    .init = sqs_init,
    .start = sqs_start,
    .fetch = sqs_fetch,
    .encode_record = sqs_encode_record,
    .compare_pos = sl_recq_pos_compare_u64,
    .format_pos = sqs_format_pos,
    .format_item_id = sqs_format_item_id,
    .record_key = sqs_record_key,
    .filter_doc = sqs_filter_doc,
    .settling = sqs_settling,
    .lag = sqs_lag,
    .part_release = sqs_part_release,
    .stop = sqs_stop,
    .fini = sqs_fini,
    .queue_ack = sqs_queue_ack,
    .queue_release = sqs_release,
    .queue_hold = sqs_queue_hold,
    .queue_idle = sqs_queue_idle,
    .queue_limits = sqs_queue_limits,
};

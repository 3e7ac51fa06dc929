/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis.c: the Kinesis source (issue 10). EventSourceArn "arn:aws:kinesis:REGION:ACCOUNT:
 * stream/NAME", as AWS's event source mappings take it; each shard is a partition, each record
 * a record, delivered as AWS's Kinesis event (esm.md §2), read over the Kinesis JSON 1.1 API
 * (wire.md §1) on the loop's curl multi handle, signed with SigV4. A *stream* source
 * (sources/README.md): one batch in flight per shard (per key with ParallelizationFactor), the
 * contiguous low-watermark checkpointed as the last done sequence number, a restart resuming
 * AFTER_SEQUENCE_NUMBER of it.
 *
 * This file is the adapter: its options, the checks of the ARN and options, init, start, stop,
 * fini, lag, settling and the operations table; the work is done by one module per concern
 * (kinesis_int.h draws the layers): kinesis_shards.c (ListShards, lineage, partitions),
 * kinesis_fetch.c (iterators, GetRecords, pacing, backoff), kinesis_event.c (records and
 * events), kinesis_http.c (one signed request), kinesis_arn.c (the ARN). It must not block the
 * loop, must not call the mapping from inside fetch(), and must never skip a record: a record
 * is checkpointed only through the mapping's low-watermark. Loop thread only. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "kinesis_int.h"

static const struct sl_opt kin_opts[] = {
    {"poll_interval", SL_OPT_DURATION, "1s", 0, 60000, offsetof(struct kin_ctx, poll_ms), 0, NULL,
     "How long a shard waits after an empty GetRecords before it asks again (AWS: 1 s); after a "
     "page with records it asks again at once, at most five times a second per shard."},
    {"shard_refresh_interval", SL_OPT_DURATION, "30s", 100, 3600000,
     offsetof(struct kin_ctx, shard_refresh_ms), 0, NULL,
     "How often ListShards is asked for new and closed shards (also soon after a shard was read "
     "to its end)."},
    {"endpoint_url", SL_OPT_STR, NULL, 1, 0, offsetof(struct kin_ctx, endpoint_url), 0, NULL,
     "The Kinesis endpoint (http://127.0.0.1:4567 for a local server). AWS_ENDPOINT_URL_KINESIS "
     "and AWS_ENDPOINT_URL take precedence; without any, the profile's endpoint_url, else "
     "https://kinesis.REGION.amazonaws.com of the ARN's region."},
    {"invoke_identity_arn", SL_OPT_STR, NULL, 1, 0, offsetof(struct kin_ctx, invoke_identity_arn),
     0, NULL,
     "The invokeIdentityArn written into every event (AWS: the function's execution role); "
     "default arn:aws:iam::ACCOUNT:role/sluice with the stream's account."},
    {"deaggregate", SL_OPT_BOOL, "false", 0, 0, offsetof(struct kin_ctx, deaggregate), 0, NULL,
     "Split KPL-aggregated records into their user records (our extension; Lambda delivers "
     "aggregates as stored): each its own record with the aggregate's sequenceNumber plus "
     "subSequenceNumber and aggregated:true, eventID and itemIdentifier SEQ:SUB, user records "
     "outside the shard's hash key range dropped as KCL does."},
    {0},
};

/* Appends one problem to errbuf, on a line of its own. */
static void kin_check_add(char *errbuf, size_t errlen, size_t *used, const char *line)
{
    if (*used < errlen) {
        int n = snprintf(errbuf + *used, errlen - *used, "%s%s", *used ? "\n" : "", line);
        *used += n > 0 ? (size_t)n : 0;
    }
}

static int kin_check(void *vctx, const char *arn, char *errbuf, size_t errlen)
{
    struct kin_ctx *ctx = vctx;
    struct kin_arn a;
    char line[512];
    size_t used = 0;
    errbuf[0] = '\0';
    int r = kin_arn_parse(arn, &a, line, sizeof(line));
    if (r == SL_ENOMEM) {
        return r;
    } else if (r < 0) {
        kin_check_add(errbuf, errlen, &used, line);
    } else {
        kin_arn_fini(&a);
    }
    if (ctx->endpoint_url && strncmp(ctx->endpoint_url, "http://", 7) != 0 &&
        strncmp(ctx->endpoint_url, "https://", 8) != 0) {
        (void)snprintf(line, sizeof(line),
                       "endpoint_url: \"%.100s\" is not a URL; allowed: http://HOST:PORT or "
                       "https://HOST",
                       ctx->endpoint_url);
        kin_check_add(errbuf, errlen, &used, line);
    }
    if (ctx->invoke_identity_arn && strncmp(ctx->invoke_identity_arn, "arn:", 4) != 0) {
        (void)snprintf(line, sizeof(line),
                       "invoke_identity_arn: \"%.100s\" is not an ARN; allowed: an IAM role ARN "
                       "such as arn:aws:iam::123456789012:role/my-function-role",
                       ctx->invoke_identity_arn);
        kin_check_add(errbuf, errlen, &used, line);
    }
    return used ? SL_ECONFIG : 0;
}

static int kin_init(void *vctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    struct kin_ctx *ctx = vctx;
    ctx->env = *env;
    int r = kin_arn_parse(env->arn, &ctx->arn, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    if (ctx->invoke_identity_arn) {
        ctx->iia = sl_strdup(ctx->invoke_identity_arn);
    } else {
        struct sl_buf b;
        sl_buf_init(&b);
        r = sl_buf_printf(&b, "arn:%s:iam::%s:role/sluice", ctx->arn.partition, ctx->arn.account);
        ctx->iia = r == 0 ? sl_buf_steal(&b) : NULL;
        sl_buf_fini(&b);
    }
    if (!ctx->iia) {
        return SL_ENOMEM;
    }
    sl_retry_policy_default(&ctx->retry);
    ctx->rng = (uint64_t)sl_clock_wall_ms(env->clock) | 1u;
    return kin_http_init(ctx, errbuf, errlen);
}

static int kin_start(void *vctx)
{
    struct kin_ctx *ctx = vctx;
    sl_log_info(KIN_COMP, ctx->env.inst, "reading stream %s (region %s) at %s", ctx->arn.stream,
                ctx->arn.region, ctx->url);
    return kin_shards_start(ctx);
}

static int64_t kin_lag(void *vctx, struct sl_part *part)
{
    (void)vctx;
    const struct kin_part *kp = part->src;
    return kp && kp->answered ? kp->millis_behind : -1;
}

static bool kin_settling(void *vctx)
{
    return kin_shards_settling(vctx);
}

static void kin_stop(void *vctx)
{
    kin_shards_stop(vctx);
}

static void kin_fini(void *vctx)
{
    struct kin_ctx *ctx = vctx;
    ctx->stopped = true;
    kin_http_fini(ctx); /* first: callbacks of aborted requests run now */
    kin_shards_fini(ctx);
    kin_arn_fini(&ctx->arn);
    sl_free(ctx->iia); /* the options' strings are the core's to free */
    ctx->iia = NULL;
}

static const struct sl_source_caps kin_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .at_timestamp_supported = true,
    .window_ms_default = 0,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .lag_unit = SL_LAG_MS,
    .leases = true, /* no group protocol: shards are shared by leases (src/lease.c) */
    /* five GetRecords a second per shard: a page of up to 10,000 records each */
    .fetch_records_min = KINESIS_GET_RECORDS_LIMIT_MAX,
    /* Four full pages: with the default 10,000 four busy shards could each ask for only 2,500
     * records a call, five calls a second, which capped a mapping near a plain GetRecords loop's
     * rate; the bytes stay bounded by max_bytes_buffered. */
    .records_buffered_default = 4 * KINESIS_GET_RECORDS_LIMIT_MAX,
};

const struct sl_source_ops sl_source_kinesis = {
    .abi = SL_SOURCE_ABI,
    .name = "kinesis",
    .scheme = "arn:aws:kinesis:",
    .arn_forms = "arn:aws:kinesis:REGION:ACCOUNT:stream/NAME",
    .opts = kin_opts,
    .ctx_size = sizeof(struct kin_ctx),
    .event = &sl_event_kinesis,
    .caps = &kin_caps,
    .check = kin_check,
    .init = kin_init,
    .start = kin_start,
    .fetch = kin_fetch,
    .encode_record = kin_encode_record,
    .filter_doc = kin_filter_doc,
    .record_key = kin_record_key,
    .compare_pos = kin_compare_pos,
    .format_pos = kin_format_pos,
    .format_item_id = kin_format_item_id,
    .settling = kin_settling,
    .lag = kin_lag,
    .part_release = kin_part_release,
    .offer_again = kin_offer_again,
    .stop = kin_stop,
    .fini = kin_fini,
};

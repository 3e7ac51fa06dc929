/* SPDX-License-Identifier: Apache-2.0 */
/* redis_src.c: the Redis Streams source (issue 13). EventSourceArn
 * "redis://[user:password@]host:port/db/STREAM" (rediss:// is refused: hiredis 0.14 has no TLS;
 * a password may come from ${VAR}, expanded with the configuration); the stream is one
 * partition, each entry a record, delivered as the shared Kinesis-shaped event
 * (redis_src_event.c). It reads as one consumer (consumer_name; default "<host>-<pid>") of a
 * consumer group (consumer_group; default the mapping's UUID), so several sluice processes
 * with the same group share the stream's entries, as Redis' consumer groups share them.
 *
 * A *stream* source whose positions the group keeps (keeps_positions: the mapping keeps no
 * checkpoint of its own): an entry read is pending for this consumer until it is acknowledged,
 * and it is acknowledged (XACK, redis_src_ack.c) only once every record before it is done, as
 * the mapping's low-watermark says. A restart reads this consumer's own pending entries again
 * first (redis_src_read.c); those of a consumer that did not come back are claimed by the
 * others after claim_idle. So a crash repeats entries, never loses one.
 *
 * This file is the adapter: options, the checks, init, start, stop, fini, the consumer group
 * (XGROUP CREATE ... MKSTREAM when it is missing, at "0" for TRIM_HORIZON, "$" for LATEST, the
 * millisecond before for AT_TIMESTAMP), the partition added once the group exists, and the
 * source's timer (a tenth of a second: group creation again after a failure, the claim rounds,
 * a waiting mapping woken after a failed read, the group's lag asked for twice a second:
 * XINFO GROUPS' "lag", entries not yet delivered to the group, Redis 7.0 and later). When a
 * reply says the group is missing, it is created again (at the starting position, with a
 * warning); when the stream itself was deleted, the partition is gone (part_gone), and when the
 * key exists again it comes back as a new partition read from its start. Three connections
 * (redis_conn.c: reconnect with backoff; an outage is one log line, said by the command
 * connection alone): one for reads, which may block; one for XACKs (redis_src_ack.c: open from
 * the stop until fini, since a drain acknowledges its last batches after the stop, and then
 * until they are answered); one for everything else. Never blocks the loop; never logs the
 * password. Loop thread only. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "config.h"
#include "redis_src_int.h"
#include "url.h"

#define RS_SCHEME       "redis://"
#define RS_TICK_MS      100
#define RS_SETTLE_MAX   30000
#define RS_GONE_WAIT    1000 /* how often a deleted stream is looked for again */
#define RS_LAG_EVERY_MS 500  /* how often the group's lag is asked for */
#define RS_ARN_FORMS    "redis://[user:password@]host:port/db/STREAM"
#define RS_NO_KEY_TEXT  "requires the key to exist"

static const struct sl_opt rs_opts[] = {
    {"consumer_group", SL_OPT_STR, NULL, 1, 0, offsetof(struct rs_ctx, consumer_group), 0, NULL,
     "The consumer group the mapping reads as (created with XGROUP CREATE ... MKSTREAM when it is "
     "missing, at StartingPosition); default the mapping's UUID. Processes with the same group "
     "share the stream's entries."},
    {"consumer_name", SL_OPT_STR, NULL, 1, 0, offsetof(struct rs_ctx, consumer_name), 0, NULL,
     "This process' consumer name in the group; default <host name>-<process id>. A name used "
     "again after a restart reads its own pending entries again at once; another name's are "
     "claimed after claim_idle."},
    {"claim_idle", SL_OPT_DURATION, "60s", 100, 86400000, offsetof(struct rs_ctx, claim_idle_ms), 0,
     NULL,
     "Entries pending for longer than this (their consumer died before acknowledging them) are "
     "claimed and delivered (XAUTOCLAIM, or XPENDING + XCLAIM before Redis 6.2); looked for "
     "every claim_idle / 2. Must be longer than a batch may take, function retries included."},
    {"claim_count", SL_OPT_INT, "100", 1, 10000, offsetof(struct rs_ctx, claim_count), 0, NULL,
     "How many pending entries one claim command looks at (COUNT)."},
    {"block_time", SL_OPT_DURATION, "2s", 10, 60000, offsetof(struct rs_ctx, block_ms), 0, NULL,
     "How long one XREADGROUP waits (BLOCK) for new entries of an idle stream before it is sent "
     "again; a new entry is delivered as soon as it is added either way."},
    {"connect_timeout", SL_OPT_DURATION, "5s", 100, 600000,
     offsetof(struct rs_ctx, connect_timeout_ms), 0, NULL,
     "How long connecting (with AUTH and SELECT) may take before the attempt counts as failed "
     "and is made again after a backoff."},
    {"command_timeout", SL_OPT_DURATION, "30s", 100, 3600000,
     offsetof(struct rs_ctx, command_timeout_ms), 0, NULL,
     "A connection whose oldest command has waited this long (beyond block_time for reads) is "
     "dropped and made again."},
    {0},
};

static void rs_check_add(char *errbuf, size_t errlen, size_t *used, const char *line)
{
    if (*used < errlen) {
        int n = snprintf(errbuf + *used, errlen - *used, "%s%s", *used ? "\n" : "", line);
        *used += n > 0 ? (size_t)n : 0;
    }
}

/* Parses arn into *u and checks its stream part. Returns 0, SL_ECONFIG (errbuf) or SL_ENOMEM. */
static int rs_arn_parse(const char *arn, struct sl_redis_url *u, char *errbuf, size_t errlen)
{
    char err[400];
    int r = sl_redis_url_parse(arn, u, err, sizeof(err));
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        (void)snprintf(errbuf, errlen, "EventSourceArn: %s", err);
        return r;
    }
    char red[SL_URL_REDACTED_MAX];
    const char *why = NULL;
    if (!u->rest[0]) {
        why = "names no stream";
    } else if (u->query) {
        why = "has a query (?...), which a stream source does not take";
    }
    if (why) {
        (void)snprintf(errbuf, errlen, "EventSourceArn: \"%s\" %s; allowed: " RS_ARN_FORMS,
                       sl_url_redact(arn, red, sizeof(red)), why);
        sl_redis_url_fini(u);
        return SL_ECONFIG;
    }
    return 0;
}

static int rs_check(void *vctx, const char *arn, char *errbuf, size_t errlen)
{
    struct rs_ctx *ctx = vctx;
    struct sl_redis_url u = {0};
    char line[600];
    size_t used = 0;
    errbuf[0] = '\0';
    int r = rs_arn_parse(arn, &u, line, sizeof(line));
    if (r == SL_ENOMEM) {
        return r;
    } else if (r < 0) {
        rs_check_add(errbuf, errlen, &used, line);
    }
    sl_redis_url_fini(&u);
    if (ctx->consumer_group && !ctx->consumer_group[0]) {
        rs_check_add(errbuf, errlen, &used,
                     "consumer_group: empty; allowed: a group name, or no key for the mapping's "
                     "UUID");
    }
    if (ctx->consumer_name && !ctx->consumer_name[0]) {
        rs_check_add(errbuf, errlen, &used,
                     "consumer_name: empty; allowed: a consumer name, or no key for "
                     "<host name>-<process id>");
    }
    return used ? SL_ECONFIG : 0;
}

static void rs_group_lost(struct rs_ctx *ctx);

static int rs_init(void *vctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    struct rs_ctx *ctx = vctx;
    ctx->env = *env;
    sl_buf_init(&ctx->scratch);
    int r = rs_arn_parse(env->arn, &ctx->url, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ctx->stream = sl_strdup(ctx->url.rest);
    ctx->group = sl_strdup(ctx->consumer_group ? ctx->consumer_group : env->inst);
    struct sl_buf b;
    sl_buf_init(&b);
    if (ctx->consumer_name) {
        r = sl_buf_puts(&b, ctx->consumer_name);
    } else {
        char host[256] = "sluice";
        if (gethostname(host, sizeof(host) - 1) != 0) {
            (void)snprintf(host, sizeof(host), "sluice");
        }
        host[sizeof(host) - 1] = '\0';
        r = sl_buf_printf(&b, "%s-%ld", host, (long)getpid());
    }
    ctx->consumer = r == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    sl_buf_init(&b);
    r = sl_buf_printf(
        &b, strchr(ctx->url.host, ':') ? RS_SCHEME "[%s]:%d/%d/%s" : RS_SCHEME "%s:%d/%d/%s",
        ctx->url.host, ctx->url.port, ctx->url.db, ctx->stream ? ctx->stream : "");
    ctx->event_arn = r == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    sl_buf_init(&b);
    switch (env->starting_position) {
    case SL_START_LATEST:
        r = sl_buf_puts(&b, "$");
        break;
    case SL_START_AT_TIMESTAMP:
        /* entries from that millisecond on: after the last id of the one before */
        r = env->starting_position_ts_ms > 0
                ? sl_buf_printf(&b, "%lld-18446744073709551615",
                                (long long)env->starting_position_ts_ms - 1)
                : sl_buf_puts(&b, "0");
        break;
    default:
        r = sl_buf_puts(&b, "0");
        break;
    }
    ctx->start_id = r == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    if (!ctx->stream || !ctx->group || !ctx->consumer || !ctx->event_arn || !ctx->start_id) {
        return SL_ENOMEM;
    }
    sl_retry_policy_default(&ctx->retry);
    ctx->rng = (uint64_t)sl_clock_wall_ms(env->clock) | 1u;
    ctx->group_missing = rs_group_lost;
    ctx->ack_gone = rs_ack_ids;
    return 0;
}

/* ---- the partition ---- */

static void rs_part_add(struct rs_ctx *ctx)
{
    struct rs_part *rp = sl_calloc(1, sizeof(*rp));
    if (!rp) {
        return; /* tried again at the next tick */
    }
    rp->ctx = ctx;
    rp->last_max = 1;
    sl_buf_init(&rp->held.b);
    struct sl_part *part = NULL;
    if (rs_event_prepare(ctx, rp) < 0 ||
        ctx->env.part_add(ctx->env.owner, ctx->stream, ctx->stream, &part) < 0) {
        rs_part_free(rp);
        return;
    }
    rp->part = part;
    part->src = rp;
    part->event = &rp->tmpl;
    ctx->rp = rp;
}

/* The stream was deleted: its partition is over. */
static void rs_part_end(struct rs_ctx *ctx)
{
    struct rs_part *rp = ctx->rp;
    if (!rp || rp->gone) {
        return;
    }
    sl_log_warn(RS_COMP, ctx->env.inst,
                "stream %s was deleted; its partition ends, and a stream of that name is read "
                "from its start when it exists again",
                ctx->stream);
    if (rp->fetching) {
        rp->fetching = false;
        ctx->env.part_fetched(ctx->env.owner, rp->part, 0);
    }
    rp->gone = true;
    rp->waiting = false;
    ctx->env.part_gone(ctx->env.owner, rp->part);
}

static void rs_part_release(void *vctx, struct sl_part *part)
{
    struct rs_ctx *ctx = vctx;
    struct rs_part *rp = part->src;
    if (!rp) {
        return;
    }
    if (ctx->rp == rp) {
        ctx->rp = NULL;
    }
    part->src = NULL;
    part->event = NULL;
    rs_part_free(rp);
}

/* ---- the consumer group ---- */

static void rs_group_create(struct rs_ctx *ctx);

static void rs_group_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    (void)reply;
    struct rs_ctx *ctx = arg;
    ctx->creating = false;
    if (ctx->stopped || err == SL_ECANCELED) {
        return;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (err == SL_EREJECTED && detail && strstr(detail, RS_NO_KEY_TEXT)) {
        /* the stream was deleted (a create without MKSTREAM found no key) */
        if (!ctx->stream_gone) {
            ctx->stream_gone = true;
            rs_part_end(ctx);
        }
        ctx->create_at_ms = now + RS_GONE_WAIT;
        return;
    }
    if (err < 0 && !(err == SL_EREJECTED && detail && strncmp(detail, "BUSYGROUP", 9) == 0)) {
        ctx->attempt++;
        int64_t delay = sl_retry_delay_ms(&ctx->retry, ctx->attempt, &ctx->rng);
        ctx->create_at_ms = now + delay;
        if (err != SL_EIO && err != SL_ETIMEDOUT) {
            sl_log_limited(&ctx->lim, now, 60000, 6, SL_LOG_ERROR, RS_COMP, ctx->env.inst,
                           "XGROUP CREATE %s %s: %s, retrying in %lldms", ctx->stream, ctx->group,
                           detail ? detail : sl_strerror(err), (long long)delay);
        }
        return;
    }
    ctx->attempt = 0;
    ctx->group_ready = true;
    if (ctx->stream_gone) {
        if (ctx->rp) {
            /* the old partition is still being let go: looked at again at the next tick */
            ctx->group_ready = false;
            ctx->create_at_ms = now + RS_TICK_MS;
            return;
        }
        ctx->stream_gone = false;
        sl_log_info(RS_COMP, ctx->env.inst, "stream %s exists again; reading it from its start",
                    ctx->stream);
    }
    if (!ctx->rp) {
        rs_part_add(ctx);
    } else if (ctx->rp->waiting) {
        rs_read_tick(ctx->rp);
    }
}

/* XGROUP CREATE: at the first start with MKSTREAM (so the group is there before the first
 * entry, which a LATEST start must not miss); after the group was lost, without, to learn
 * whether the stream is gone. */
static void rs_group_create(struct rs_ctx *ctx)
{
    bool first = !ctx->group_lost && !ctx->stream_gone;
    const char *argv[6] = {
        "XGROUP",  "CREATE", ctx->stream, ctx->group, ctx->stream_gone ? "0" : ctx->start_id,
        "MKSTREAM"};
    int argc = first ? 6 : 5;
    size_t len[6];
    for (int i = 0; i < argc; i++) {
        len[i] = strlen(argv[i]);
    }
    if (sl_redis_conn_command(ctx->cmd, argc, argv, len, rs_group_cb, ctx) == 0) {
        ctx->creating = true;
    } else {
        ctx->create_at_ms = sl_clock_now_ms(ctx->env.clock) + 1000;
    }
}

static void rs_group_lost(struct rs_ctx *ctx)
{
    if (!ctx->group_ready) {
        return;
    }
    sl_log_warn(RS_COMP, ctx->env.inst,
                "stream %s: the consumer group %s or the stream is missing; creating the group "
                "again",
                ctx->stream, ctx->group);
    ctx->group_ready = false;
    ctx->group_lost = true;
    if (!ctx->creating) {
        rs_group_create(ctx);
    }
}

/* XINFO GROUPS: each group a flat map; ours says "lag" (Redis 7.0 and later; nil when Redis
 * cannot tell, as after a deletion inside the stream). */
static void rs_lag_cb(void *arg, int err, const redisReply *reply, const char *detail)
{
    (void)detail;
    struct rs_ctx *ctx = arg;
    ctx->lag_asking = false;
    if (ctx->stopped || err < 0 || reply->type != REDIS_REPLY_ARRAY) {
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *g = reply->element[i];
        bool ours = false;
        int64_t lag = -1;
        for (size_t j = 0; g->type == REDIS_REPLY_ARRAY && j + 1 < g->elements; j += 2) {
            const redisReply *k = g->element[j], *v = g->element[j + 1];
            if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS) {
                continue;
            }
            if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING) {
                ours = strcmp(v->str, ctx->group) == 0;
            } else if (strcmp(k->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER) {
                lag = v->integer;
            }
        }
        if (ours) {
            ctx->lag = lag;
            return;
        }
    }
}

static void rs_lag_ask(struct rs_ctx *ctx)
{
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (ctx->lag_asking || now < ctx->lag_next_ms) {
        return;
    }
    ctx->lag_next_ms = now + RS_LAG_EVERY_MS;
    const char *argv[] = {"XINFO", "GROUPS", ctx->stream};
    size_t len[] = {5, 6, strlen(ctx->stream)};
    ctx->lag_asking = sl_redis_conn_command(ctx->cmd, 3, argv, len, rs_lag_cb, ctx) == 0;
}

static int64_t rs_lag(void *vctx, struct sl_part *part)
{
    (void)part;
    const struct rs_ctx *ctx = vctx;
    return ctx->lag;
}

static void rs_tick_cb(uv_timer_t *t)
{
    struct rs_ctx *ctx = t->data;
    if (ctx->stopped) {
        return;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!ctx->group_ready && !ctx->creating && now >= ctx->create_at_ms) {
        rs_group_create(ctx);
    }
    if (ctx->group_ready && !ctx->rp && !ctx->stream_gone) {
        rs_part_add(ctx); /* an earlier part_add ran out of memory */
    }
    if (ctx->rp && !ctx->rp->gone) {
        rs_read_tick(ctx->rp);
        rs_claim_tick(ctx);
        if (ctx->group_ready) {
            rs_lag_ask(ctx);
        }
    }
}

static int rs_start(void *vctx)
{
    struct rs_ctx *ctx = vctx;
    ctx->started_ms = sl_clock_now_ms(ctx->env.clock);
    ctx->lag = -1;
    const struct sl_redis_conn_conf cc = {
        .url = &ctx->url,
        .inst = ctx->env.inst,
        .connect_timeout_ms = ctx->connect_timeout_ms,
        .command_timeout_ms = ctx->command_timeout_ms,
    };
    struct sl_redis_conn_conf rc = cc;
    rc.command_timeout_ms = ctx->command_timeout_ms + ctx->block_ms;
    rc.reply_functions = &rs_reply_functions; /* replies of entries built in a few blocks */
    rc.quiet = true; /* the command connection says an outage (asked twice a second, it sees one) */
    struct sl_redis_conn_conf ac = cc;
    ac.quiet = true;
    int r = sl_redis_conn_new(ctx->env.loop, &cc, &ctx->cmd);
    r = r ? r : sl_redis_conn_new(ctx->env.loop, &rc, &ctx->rd);
    r = r ? r : rs_acker_new(ctx, &ac);
    if (r < 0) {
        return r;
    }
    ctx->timer = sl_malloc(sizeof(*ctx->timer));
    if (!ctx->timer) {
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, ctx->timer);
    ctx->timer->data = ctx;
    (void)uv_timer_start(ctx->timer, rs_tick_cb, RS_TICK_MS, RS_TICK_MS);
    sl_log_info(RS_COMP, ctx->env.inst, "reading stream %s at %s db %d as consumer %s of group %s",
                ctx->stream, sl_redis_conn_name(ctx->cmd), ctx->url.db, ctx->consumer, ctx->group);
    rs_group_create(ctx);
    return 0;
}

static bool rs_settling(void *vctx)
{
    struct rs_ctx *ctx = vctx;
    return !ctx->rp && !ctx->stream_gone &&
           sl_clock_now_ms(ctx->env.clock) - ctx->started_ms < RS_SETTLE_MAX;
}

static void rs_stop(void *vctx)
{
    struct rs_ctx *ctx = vctx;
    ctx->stopped = true;
    if (ctx->timer) {
        (void)uv_timer_stop(ctx->timer);
    }
    /* what is still out is answered with SL_ECANCELED now, and ignored; entries read and not
     * acknowledged stay pending for this consumer */
    sl_redis_conn_free(ctx->rd);
    ctx->rd = NULL;
    sl_redis_conn_free(ctx->cmd);
    ctx->cmd = NULL;
    /* the XACK connection stays: a drain acknowledges what its last batches delivered after
     * the stop (fini closes it) */
}

static void rs_timer_closed(uv_handle_t *h)
{
    sl_free(h);
}

static void rs_fini(void *vctx)
{
    struct rs_ctx *ctx = vctx;
    rs_stop(ctx);
    rs_acker_close(ctx);
    if (ctx->timer) {
        uv_close((uv_handle_t *)ctx->timer, rs_timer_closed);
        ctx->timer = NULL;
    }
    if (ctx->rp) {
        ctx->rp->part->src = NULL;
        rs_part_free(ctx->rp);
        ctx->rp = NULL;
    }
    sl_buf_fini(&ctx->scratch);
    sl_redis_url_fini(&ctx->url);
    sl_free(ctx->stream);
    sl_free(ctx->group);
    sl_free(ctx->consumer);
    sl_free(ctx->event_arn);
    sl_free(ctx->start_id);
    ctx->stream = ctx->group = ctx->consumer = ctx->event_arn = ctx->start_id = NULL;
}

static const struct sl_source_caps rs_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .at_timestamp_supported = true,
    .window_ms_default = 0,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    /* the group keeps the positions: last delivered id and the pending entries */
    .keeps_positions = true,
    .lag_unit = SL_LAG_RECORDS,
};

const struct sl_source_ops sl_source_redis = {
    .abi = SL_SOURCE_ABI,
    .name = "redis",
    .scheme = RS_SCHEME,
    .arn_prefix = "rediss://",
    .arn_forms = RS_ARN_FORMS,
    .opts = rs_opts,
    .ctx_size = sizeof(struct rs_ctx),
    .event = &sl_event_kinesis,
    .caps = &rs_caps,
    .check = rs_check,
    .init = rs_init,
    .start = rs_start,
    .fetch = rs_fetch,
    .encode_record = rs_encode_record,
    .filter_doc = rs_filter_doc,
    .compare_pos = rs_compare_pos,
    .format_pos = rs_format_pos,
    .format_item_id = rs_format_item_id,
    .settling = rs_settling,
    .lag = rs_lag,
    .ack = rs_ack,
    .part_release = rs_part_release,
    .stop = rs_stop,
    .fini = rs_fini,
};

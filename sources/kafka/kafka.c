/* SPDX-License-Identifier: Apache-2.0 */
/* kafka.c: the Kafka source, on librdkafka's KafkaConsumer. A mapping is self-managed Kafka
 * (EventSourceArn "kafka://" + bootstrap servers, which the config loader synthesizes from
 * SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS) or MSK-style (an arn:aws:kafka: ARN
 * plus our own bootstrap_servers, since there is no MSK API to ask). Each assigned
 * topic-partition is a partition, id and name "<topic>-<partition>"; each message a record.
 *
 * It owns, per mapping: the consumer (group ConsumerGroupId, by default the mapping's UUID), a
 * pipe that librdkafka writes to when the consumer queue or a partition queue becomes non-empty
 * (watched by a uv_poll), a 100 ms timer (backstop for wake-ups and callbacks, and the commit
 * clock), an idle handle that continues a drain of the consumer queue cut short by the per-turn
 * cap, and per partition its own librdkafka queue, a small stash of messages taken from it but
 * not yet fetched by the mapping, and the constant pieces of its events.
 * It must not block the loop, except in fini (shutdown): the wait for a commit on revoke still
 * in flight, then commit + leave-group, each bounded. It must never commit an
 * offset the mapping has not acknowledged. Loop thread only, with one exception: the lookup of
 * where newly assigned partitions start runs on libuv's thread pool (kafka_lookup_work, which
 * touches nothing but its own struct kafka_lookup and the thread-safe rd_kafka_t);
 * librdkafka's own threads call nothing here but kafka_log_cb, which only formats a log line.
 *
 * About lag (progress line): the cached high watermark minus the acknowledged offset (committed
 * within a tick; a resolved start counts as acknowledged); before the first acknowledgement,
 * minus the committed offset, else the first offset received, else the log start (the end for
 * LATEST). Unknown (-1) until a fetch answer from the broker gave the high watermark; until
 * then, too, the source is settling (bounded), so --until-idle does not stop before it. */
#include "kafka_int.h"
#include "kafka_mapping.h"

static const struct sl_opt kafka_opts[] = {
    {"Topics", SL_OPT_STRLIST, NULL, 1, KAFKA_TOPICS_MAX, offsetof(struct kafka_ctx, topics),
     SL_OPT_REQUIRED, NULL,
     "The topic to consume (AWS allows exactly one; several are accepted as an extension)."},
    {"SelfManagedEventSource", SL_OPT_JSON, NULL, 1, 0, offsetof(struct kafka_ctx, self_managed), 0,
     NULL,
     "Self-managed Kafka: {\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[\"host:port\", ...]}} "
     "(1 to 10 servers)."},
    {"SelfManagedKafkaEventSourceConfig", SL_OPT_JSON, NULL, 1, 0,
     offsetof(struct kafka_ctx, smk_config), 0, NULL,
     "{\"ConsumerGroupId\":\"...\"} (1 to 200 characters); the default group is the mapping's "
     "UUID."},
    {"AmazonManagedKafkaEventSourceConfig", SL_OPT_JSON, NULL, 1, 0,
     offsetof(struct kafka_ctx, msk_config), 0, NULL,
     "MSK: {\"ConsumerGroupId\":\"...\"}; the default group is the mapping's UUID."},
    {"SourceAccessConfigurations", SL_OPT_JSON, NULL, 1, 0, offsetof(struct kafka_ctx, sac), 0,
     NULL,
     "Authentication: a list of {\"Type\",\"URI\"}: BASIC_AUTH (SASL/PLAIN), "
     "SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, "
     "SERVER_ROOT_CA_CERTIFICATE; URI file:///path or env://NAME holding the secret's JSON "
     "(username/password, or certificate/privateKey/privateKeyPassword), or a PEM file for the "
     "root CA."},
    {"bootstrap_servers", SL_OPT_STRLIST, NULL, 1, KAFKA_SERVERS_MAX,
     offsetof(struct kafka_ctx, bootstrap), 0, NULL,
     "Bootstrap servers (host:port) of the MSK cluster an arn:aws:kafka: EventSourceArn names."},
    {"rdkafka", SL_OPT_STRMAP, NULL, 1, 0, offsetof(struct kafka_ctx, rdkafka), 0, NULL,
     "librdkafka consumer properties, passed to rd_kafka_conf_set after sluice's own (e.g. "
     "{\"session.timeout.ms\":\"6000\"}); group.id, bootstrap.servers, auto.offset.reset and "
     "the commit settings are sluice's."},
    {0},
};

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);
/* Builds the consumer's configuration: sluice's settings, then the access configurations (with
 * their secrets), then the rdkafka pass-through, which wins. Returns 0 and *ret_conf (owned),
 * SL_ECONFIG (errbuf filled) or SL_ENOMEM. */
static int
kafka_build_conf(struct kafka_ctx *ctx, rd_kafka_conf_t **ret_conf, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return SL_ENOMEM;
    }
    const char *fixed[][2] = {
        {"bootstrap.servers", ctx->servers},
        {"group.id", ctx->group_id},
        {"client.id", "sluice"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* Per partition: librdkafka stops fetching a partition whose queue holds either. */
        {"queued.max.messages.kbytes", "2048"},
        {"queued.min.messages", "5000"},
        /* an empty fetch holds the next one this long (see "About memory") */
        {"fetch.wait.max.ms", "100"},
    };
    int r = 0;
    for (size_t i = 0; i < SL_ARRAY_LEN(fixed) && r == 0; i++) {
        r = kafka_conf_set(conf, "Kafka settings", fixed[i][0], fixed[i][1], false, errbuf, errlen);
    }
    if (r == 0) {
        r = kafka_conf_apply_sac(ctx, &(struct kafka_dst){.conf = conf}, errbuf, errlen);
    }
    if (r == 0) {
        r = kafka_conf_passthrough(ctx, conf, errbuf, errlen);
    }
    if (r < 0) {
        rd_kafka_conf_destroy(conf);
        return r;
    }
    kafka_conf_queue_limits(ctx, conf);
    rd_kafka_conf_set_opaque(conf, ctx);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, kafka_commit_cb);
    *ret_conf = conf;
    return 0;
}

static int kafka_init(void *vctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    struct kafka_ctx *ctx = vctx;
    ctx->env = *env;
    int r = kafka_check(ctx, env->arn, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ctx->msk = strncmp(env->arn, KAFKA_MSK_PREFIX, strlen(KAFKA_MSK_PREFIX)) == 0;
    struct sl_buf b;
    sl_buf_init(&b);
    const cJSON *servers = NULL;
    if (ctx->self_managed) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(ctx->self_managed, "Endpoints");
        servers = cJSON_GetObjectItemCaseSensitive(ep, "KAFKA_BOOTSTRAP_SERVERS");
        for (const cJSON *s = servers->child; s && r == 0; s = s->next) {
            r = sl_buf_printf(&b, "%s%s", s == servers->child ? "" : ",", s->valuestring);
        }
    } else if (ctx->msk) {
        for (size_t i = 0; i < ctx->bootstrap.n && r == 0; i++) {
            r = sl_buf_printf(&b, "%s%s", i ? "," : "", ctx->bootstrap.items[i]);
        }
    } else {
        r = sl_buf_puts(&b, env->arn + KAFKA_SCHEME_LEN);
    }
    if (r < 0 || !(ctx->servers = sl_buf_steal(&b))) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    const cJSON *gc = ctx->smk_config ? ctx->smk_config : ctx->msk_config;
    const cJSON *g = gc ? cJSON_GetObjectItemCaseSensitive(gc, "ConsumerGroupId") : NULL;
    ctx->group_id = sl_strdup(g ? g->valuestring : env->inst);
    if (!ctx->group_id) {
        return SL_ENOMEM;
    }
    if (!g) {
        sl_log_info(KAFKA_COMP, env->inst,
                    "no ConsumerGroupId: using the mapping's UUID %s as the consumer group",
                    ctx->group_id);
    }
    return kafka_build_conf(ctx, &ctx->conf, errbuf, errlen);
}

/* The client properties of the source's cluster (ops->client_props): bootstrap.servers, then
 * what kafka_build_conf applies for the connection's security, in the same order so that the
 * same value wins: SourceAccessConfigurations (secrets read again from their URIs) and the
 * security.protocol they imply, then the security entries of the rdkafka pass-through. */
static int kafka_client_props(void *vctx, struct sl_strmap *ret_props, char *errbuf, size_t errlen)
{
    const struct kafka_ctx *ctx = vctx;
    assert(ctx->servers && ret_props->n == 0);
    const struct kafka_dst d = {.props = ret_props};
    int r = sl_strmap_put(ret_props, "bootstrap.servers", ctx->servers);
    if (r == 0) {
        r = kafka_conf_apply_sac(ctx, &d, errbuf, errlen);
    }
    for (size_t i = 0; i < ctx->rdkafka.n && r == 0; i++) {
        if (kafka_conf_is_security_prop(ctx->rdkafka.keys[i])) {
            r = sl_strmap_put(ret_props, ctx->rdkafka.keys[i], ctx->rdkafka.values[i]);
        }
    }
    if (r < 0) {
        sl_strmap_clear(ret_props, true);
    }
    return r;
}

/* A message from the consumer queue: an error, or one of a partition without its own queue. */
static void kafka_on_message(struct kafka_ctx *ctx, rd_kafka_message_t *msg)
{
    if (msg->err) {
        kafka_log_message_error(ctx, msg);
        rd_kafka_message_destroy(msg);
        return;
    }
    struct kafka_part *kp = kafka_part_find(ctx, rd_kafka_topic_name(msg->rkt), msg->partition);
    if (!kp) {
        rd_kafka_message_destroy(msg); /* a revoked partition's: read again by its new owner */
        return;
    }
    if (kafka_part_stash(kp, msg) < 0) {
        /* Without room, drop it and go back: librdkafka fetches it again. */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        if (l) {
            rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = msg->offset;
            (void)rd_kafka_seek_partitions(ctx->rk, l, 0);
            rd_kafka_topic_partition_list_destroy(l);
        }
        rd_kafka_message_destroy(msg);
        return;
    }
    if (kp->waiting) {
        kp->waiting = false;
        ctx->env.part_wake(ctx->env.owner, kp->part);
    }
}

/* The partition whose queue writes key, or NULL (revoked since). */
static struct kafka_part *kafka_find_key(struct kafka_ctx *ctx, uint32_t key)
{
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i]->key == key) {
            return ctx->parts[i];
        }
    }
    return NULL;
}

/* kp's queue has (or may have) messages: wakes the mapping if a fetch found none before. */
static void kafka_wake(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    if (kp && kp->waiting && !kp->revoked && !ctx->stopped) {
        kp->waiting = false;
        ctx->env.part_wake(ctx->env.owner, kp->part);
    }
}

static void kafka_more_cb(uv_idle_t *h);

/* Serves the consumer queue without blocking: messages, rebalances, commits, errors. */
static void kafka_drain(struct kafka_ctx *ctx)
{
    for (int i = 0; i < KAFKA_POLL_CAP && !ctx->stopped; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(ctx->rk, 0);
        if (!msg) {
            if (ctx->more) {
                (void)uv_idle_stop(ctx->more);
            }
            return;
        }
        kafka_on_message(ctx, msg);
    }
    if (ctx->more && !ctx->stopped) {
        (void)uv_idle_start(ctx->more, kafka_more_cb); /* the cap was reached: go on next turn */
    }
}

static void kafka_more_cb(uv_idle_t *h)
{
    kafka_drain(h->data);
}

/* The pipe: 4-byte keys (every write is one whole key, and the pipe is read in multiples of
 * 4, so keys never split): 0 for the consumer queue, KAFKA_REVOKE_KEY for the revoke queue,
 * else a partition's. */
static void kafka_io_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct sl_kafka_wake *io = (struct sl_kafka_wake *)h;
    struct kafka_ctx *ctx = h->data;
    uint32_t keys[64];
    bool consumer = false;
    bool revoke = false;
    ssize_t got;
    while ((got = read(io->rfd, keys, sizeof(keys))) > 0) {
        for (size_t i = 0; i < (size_t)got / sizeof(keys[0]); i++) {
            if (keys[i] == 0) {
                consumer = true;
            } else if (keys[i] == KAFKA_REVOKE_KEY) {
                revoke = true;
            } else {
                kafka_wake(ctx, kafka_find_key(ctx, keys[i]));
            }
        }
    }
    if (revoke) {
        kafka_rebalance_revoke_poll(ctx);
    }
    if (consumer) {
        kafka_drain(ctx);
    }
}

static void kafka_tick(uv_timer_t *t)
{
    struct kafka_ctx *ctx = t->data;
    kafka_rebalance_revoke_poll(ctx); /* a backstop too, and the commit on revoke's time limit */
    kafka_drain(ctx);
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    /* Backstop: a wake-up lost (a full pipe) costs at most one tick. */
    for (size_t i = 0; i < ctx->n_parts && !ctx->stopped; i++) {
        struct kafka_part *kp = ctx->parts[i];
        if (kp->waiting && kp->q && rd_kafka_queue_length(kp->q) > 0) {
            kafka_wake(ctx, kp);
        } else if (kp->waiting && !kp->paused && kp->st_n == 0 &&
                   now - kp->waiting_ms >= KAFKA_SLICE_MS &&
                   (kafka_fetch_caught_up(ctx, kp) || now - kp->slot_ms >= 10 * KAFKA_SLICE_MS)) {
            kafka_fetch_slot_yield(ctx, kp); /* found empty a while: its slot goes to another */
        } else {
            kafka_fetch_kick_if_stalled(ctx, kp, now);
        }
    }
    kafka_fetch_slots_fill(ctx); /* slots freed by revokes, by a smaller average message */
    kafka_commit_async(ctx);
}

/* librdkafka's log lines. Its "FAIL" lines (a broker connection failed) are debug: librdkafka
 * reports each of them through error_cb too, with the same text, and kafka_error_cb logs that
 * one, rate-limited. Any thread: it only formats a line. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct kafka_ctx *ctx = rd_kafka_opaque(rk);
    enum sl_log_level l = level <= 3   ? SL_LOG_ERROR
                          : level == 4 ? SL_LOG_WARN
                          : level <= 6 ? SL_LOG_INFO
                                       : SL_LOG_DEBUG;
    if (strcmp(fac, "FAIL") == 0) {
        l = SL_LOG_DEBUG;
    }
    sl_log(l, KAFKA_COMP, ctx ? ctx->env.inst : NULL, "librdkafka %s: %s", fac, buf);
}

/* librdkafka's errors, from the consumer queue (kafka_drain, on the loop). */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_ctx *ctx = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        sl_log_error(KAFKA_COMP, ctx->env.inst, "fatal consumer error: %s: %s",
                     rd_kafka_err2name(ferr), fatal);
        return;
    }
    if (kafka_log_secfail(ctx, err, reason)) {
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && ctx->secfail_at_ms &&
        sl_clock_now_ms(ctx->env.clock) - ctx->secfail_at_ms < KAFKA_SECFAIL_LOG_EVERY_MS) {
        sl_log_debug(KAFKA_COMP, ctx->env.inst, "%s: %s", rd_kafka_err2name(err), reason);
        return;
    }
    kafka_log_limited(ctx, SL_LOG_WARN, err, "%s: %s, retrying", rd_kafka_err2name(err), reason);
}

static int64_t kafka_lag(void *vctx, struct sl_part *part)
{
    struct kafka_ctx *ctx = vctx;
    const struct kafka_part *kp = part->src;
    if (!kp || !ctx->rk) {
        return -1;
    }
    int64_t lo = -1;
    int64_t hi = -1;
    if (rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) != 0 ||
        hi < 0) {
        return -1;
    }
    /* Nothing acknowledged or committed yet: everything from where reading began is lag (the
     * first offset received; before that the log start, or the end for LATEST). */
    int64_t done = kp->acked >= 0                     ? kp->acked
                   : kp->committed >= 0               ? kp->committed
                   : kp->first >= 0                   ? kp->first
                   : kp->start == RD_KAFKA_OFFSET_END ? hi
                                                      : lo;
    if (done < 0) {
        return -1;
    }
    if (done < lo) {
        done = lo;
    }
    return hi > done ? hi - done : 0;
}

/* True from start() until the first assignment, at most KAFKA_SETTLE_MS (joining the group),
 * then while a partition of the assignment waits for the broker to acknowledge the commit of
 * where it starts (a group without a committed offset), at most KAFKA_SETTLE_MS after it was
 * assigned: until then the partition has not started, and --until-idle that exited meanwhile
 * would leave the group without a start (fini would still try, bounded). Also while a
 * partition has had no fetch answer from the broker (its high watermark is unknown; its first
 * records may be on the way), at most KAFKA_SETTLE_MS after it was assigned: an empty local
 * queue says nothing before that. */
static bool kafka_settling(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    if (!ctx->rk || ctx->stopped) {
        return false;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!ctx->assigned_once) {
        return now - ctx->started_ms < KAFKA_SETTLE_MS;
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        struct kafka_part *kp = ctx->parts[i];
        if (kp->revoked) {
            continue;
        }
        if (kp->committed < kp->start && now < kp->start_by_ms) {
            return true;
        }
        if (!kp->answered) {
            int64_t lo = -1;
            int64_t hi = -1;
            kp->answered =
                rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) == 0 &&
                hi >= 0;
            if (!kp->answered && now - kp->assigned_ms < KAFKA_SETTLE_MS) {
                return true;
            }
        }
    }
    return false;
}

/* ---- life cycle ---- */

static void kafka_handle_closed(uv_handle_t *h)
{
    sl_free(h);
}

static int kafka_start(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    char err[512];
    if (!ctx->conf) {
        return SL_EINVAL;
    }
    ctx->rk = rd_kafka_new(RD_KAFKA_CONSUMER, ctx->conf, err, sizeof(err));
    if (!ctx->rk) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "cannot create the consumer: %s", err);
        return SL_ECONFIG;
    }
    ctx->conf = NULL; /* rd_kafka_new took it */
    ctx->started_ms = sl_clock_now_ms(ctx->env.clock);
    (void)rd_kafka_poll_set_consumer(ctx->rk);
    if (!(ctx->cq = rd_kafka_queue_get_consumer(ctx->rk))) {
        return SL_ENOMEM;
    }
    if (!(ctx->rq = rd_kafka_queue_new(ctx->rk))) {
        return SL_ENOMEM;
    }
    if (!(ctx->timer = sl_calloc(1, sizeof(*ctx->timer)))) {
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, ctx->timer);
    ctx->timer->data = ctx;
    if (!(ctx->more = sl_calloc(1, sizeof(*ctx->more)))) {
        return SL_ENOMEM;
    }
    (void)uv_idle_init(ctx->env.loop, ctx->more);
    ctx->more->data = ctx;
    int r = sl_kafka_wake_open(ctx->env.loop, ctx, &ctx->io, err, sizeof(err));
    if (r < 0) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "%s", err);
        return r;
    }
    static const uint32_t consumer_key = 0;
    rd_kafka_queue_io_event_enable(ctx->cq, ctx->io->wfd, &consumer_key, sizeof(consumer_key));
    static const uint32_t revoke_key = KAFKA_REVOKE_KEY;
    rd_kafka_queue_io_event_enable(ctx->rq, ctx->io->wfd, &revoke_key, sizeof(revoke_key));
    (void)uv_poll_start(&ctx->io->poll, UV_READABLE, kafka_io_cb);
    (void)uv_timer_start(ctx->timer, kafka_tick, KAFKA_TICK_MS, KAFKA_TICK_MS);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)ctx->topics.n);
    if (!topics) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < ctx->topics.n; i++) {
        (void)rd_kafka_topic_partition_list_add(topics, ctx->topics.items[i],
                                                RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ctx->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "cannot subscribe: %s", rd_kafka_err2str(e));
        return SL_EINVAL;
    }
    sl_log_info(KAFKA_COMP, ctx->env.inst, "consuming %s%s from %s in group %s",
                ctx->topics.items[0], ctx->topics.n > 1 ? " (and more)" : "", ctx->servers,
                ctx->group_id);
    return 0;
}

static void kafka_stop(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    ctx->stopped = true;
    /* No librdkafka thread may write to the pipe once it is closed (its fd could be reused). */
    if (ctx->cq) {
        rd_kafka_queue_io_event_enable(ctx->cq, -1, NULL, 0);
    }
    if (ctx->rq) {
        rd_kafka_queue_io_event_enable(ctx->rq, -1, NULL, 0);
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i]->q) {
            rd_kafka_queue_io_event_enable(ctx->parts[i]->q, -1, NULL, 0);
        }
    }
    sl_kafka_wake_close(ctx->io);
    ctx->io = NULL;
    if (ctx->timer) {
        (void)uv_timer_stop(ctx->timer);
        uv_close((uv_handle_t *)ctx->timer, kafka_handle_closed);
        ctx->timer = NULL;
    }
    if (ctx->more) {
        (void)uv_idle_stop(ctx->more);
        uv_close((uv_handle_t *)ctx->more, kafka_handle_closed);
        ctx->more = NULL;
    }
}

static void kafka_part_release(void *vctx, struct sl_part *part)
{
    struct kafka_ctx *ctx = vctx;
    struct kafka_part *kp = part->src;
    if (!kp) {
        return;
    }
    if (ctx->stopped && !kp->revoked && kp->acked > kp->committed && ctx->rk) {
        if (!ctx->final) {
            ctx->final = rd_kafka_topic_partition_list_new(8);
        }
        if (ctx->final) {
            rd_kafka_topic_partition_list_add(ctx->final, kp->topic, kp->partition)->offset =
                kp->acked;
        }
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i] == kp) {
            memmove(&ctx->parts[i], &ctx->parts[i + 1],
                    (ctx->n_parts - i - 1) * sizeof(*ctx->parts));
            ctx->n_parts--;
            break;
        }
    }
    if (ctx->last_hit == kp) {
        ctx->last_hit = NULL;
    }
    part->src = NULL;
    kafka_part_free(kp);
}

/* Shutdown (fini, after stop: the loop no longer serves the revoke queue): waits for the answer
 * to a commit on revoke in flight, within what is left of its KAFKA_BLOCK_TIMEOUT_MS, so that it
 * is neither sent twice (fini's own commit leaves revoked partitions out) nor left behind when
 * the consumer closes; then handles what waited for it (stopped: assigns nothing). */
static void kafka_revoke_wait(struct kafka_ctx *ctx)
{
    while (ctx->revoking.offsets) {
        int64_t left_ms = ctx->revoking.deadline_ms - sl_clock_now_ms(ctx->env.clock);
        if (left_ms <= 0) {
            kafka_rebalance_revoke_end(ctx, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
            break;
        }
        rd_kafka_event_t *ev = rd_kafka_queue_poll(ctx->rq, left_ms < 100 ? (int)left_ms : 100);
        if (ev) {
            kafka_rebalance_revoke_event(ctx, ev);
            rd_kafka_event_destroy(ev);
        }
    }
    kafka_rebalance_replay(ctx);
}

/* Leaves the group within KAFKA_CLOSE_TIMEOUT_MS, serving the rebalance it causes. */
static void kafka_close_consumer(struct kafka_ctx *ctx)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ctx->rk);
    rd_kafka_error_t *error = q ? rd_kafka_consumer_close_queue(ctx->rk, q) : NULL;
    if (!q || error) {
        if (error) {
            sl_log_warn(KAFKA_COMP, ctx->env.inst, "closing the consumer: %s",
                        rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        if (q) {
            rd_kafka_queue_destroy(q);
        }
        return;
    }
    int64_t deadline = sl_clock_now_ms(ctx->env.clock) + KAFKA_CLOSE_TIMEOUT_MS;
    while (!rd_kafka_consumer_closed(ctx->rk) && sl_clock_now_ms(ctx->env.clock) < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev) {
            continue;
        }
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
            (void)rd_kafka_assign(ctx->rk, NULL);
        }
        rd_kafka_event_destroy(ev);
    }
    if (!rd_kafka_consumer_closed(ctx->rk)) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "leaving the group took over %dms; the group rebalances after "
                    "session.timeout.ms",
                    KAFKA_CLOSE_TIMEOUT_MS);
    }
    rd_kafka_queue_destroy(q);
}

static void kafka_fini(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    kafka_stop(ctx);
    kafka_rebalance_abandon(ctx); /* before rk goes: a running lookup uses it */
    if (ctx->rk) {
        kafka_revoke_wait(ctx); /* its partitions are not committed again below */
        /* What was acknowledged and not committed: live partitions and released ones. */
        rd_kafka_topic_partition_list_t *l = kafka_commit_list(ctx, NULL);
        for (size_t i = 0; i < ctx->n_parts; i++) {
            struct kafka_part *kp = ctx->parts[i];
            if (!kp->revoked && kp->acked > kp->committed) {
                if (!l) {
                    l = rd_kafka_topic_partition_list_new((int)ctx->n_parts);
                }
                if (l && !rd_kafka_topic_partition_list_find(l, kp->topic, kp->partition)) {
                    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset =
                        kp->acked;
                }
            }
        }
        for (int i = 0; ctx->final && i < ctx->final->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &ctx->final->elems[i];
            if (!l) {
                l = rd_kafka_topic_partition_list_new(ctx->final->cnt);
            }
            if (l) {
                rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->offset;
            }
        }
        if (l) {
            kafka_commit_bounded(ctx, l, KAFKA_CLOSE_TIMEOUT_MS);
            rd_kafka_topic_partition_list_destroy(l);
        }
        for (size_t i = 0; i < ctx->n_parts; i++) {
            kafka_part_queue_close(ctx->parts[i]); /* before the handle they belong to goes */
            kafka_part_stage_clear(ctx->parts[i]);
        }
        kafka_close_consumer(ctx);
        if (ctx->rq) {
            rd_kafka_queue_destroy(ctx->rq); /* a late answer in it goes with it */
            ctx->rq = NULL;
        }
        if (ctx->cq) {
            rd_kafka_queue_destroy(ctx->cq);
            ctx->cq = NULL;
        }
        rd_kafka_destroy_flags(ctx->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        ctx->rk = NULL;
    }
    while (ctx->n_parts > 0) {
        struct kafka_part *kp = ctx->parts[--ctx->n_parts];
        kafka_part_free(kp); /* not kp->part: the mapping may have freed it already */
    }
    sl_free(ctx->parts);
    ctx->parts = NULL;
    if (ctx->final) {
        rd_kafka_topic_partition_list_destroy(ctx->final);
        ctx->final = NULL;
    }
    if (ctx->leftover) {
        rd_kafka_topic_partition_list_destroy(ctx->leftover);
        ctx->leftover = NULL;
    }
    while (ctx->deferred) { /* only without rk: kafka_revoke_wait replayed them */
        struct kafka_deferred *d = ctx->deferred;
        ctx->deferred = d->next;
        rd_kafka_topic_partition_list_destroy(d->parts);
        sl_free(d);
    }
    if (ctx->conf) {
        rd_kafka_conf_destroy(ctx->conf);
        ctx->conf = NULL;
    }
    sl_free(ctx->servers);
    sl_free(ctx->group_id);
    ctx->servers = ctx->group_id = NULL;
}

static const struct sl_source_caps kafka_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .at_timestamp_supported = true,
    .window_ms_default = 500,
    .window_rule = SL_WINDOW_FROM_FIRST_RECORD,
    .keeps_positions = true,
    .batch_spans_partitions = true,
    .lag_unit = SL_LAG_RECORDS,
};

const struct sl_source_ops sl_source_kafka = {
    .abi = SL_SOURCE_ABI,
    .name = "kafka",
    .scheme = KAFKA_SCHEME,
    .arn_prefix = KAFKA_MSK_PREFIX,
    .arn_forms = KAFKA_MAPPING_ARN_FORMS,
    .opts = kafka_opts,
    .ctx_size = sizeof(struct kafka_ctx),
    .event = &kafka_event_format,
    .caps = &kafka_caps,
    .check = kafka_check,
    .arn_from_mapping = kafka_mapping_arn,
    .check_destination = kafka_mapping_check_destination,
    .read_item_id = kafka_mapping_read_item_id,
    .init = kafka_init,
    .start = kafka_start,
    .fetch = kafka_fetch,
    .encode_record = kafka_encode_record,
    .compare_pos = sl_recq_pos_compare_u64,
    .format_pos = kafka_format_pos,
    .format_item_id = kafka_format_item_id,
    .record_key = kafka_record_key,
    .filter_doc = kafka_filter_doc,
    .settling = kafka_settling,
    .lag = kafka_lag,
    .ack = kafka_ack,
    .part_release = kafka_part_release,
    .client_props = kafka_client_props,
    .stop = kafka_stop,
    .fini = kafka_fini,
};

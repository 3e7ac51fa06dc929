/* SPDX-License-Identifier: Apache-2.0 */
/* sink_kafka.c: the kafka://topic on-failure destination of mappings, and of a delivery
 * stream's SinkDestinationConfiguration (whose configuration gives the cluster). AWS writes one
 * message per failed record to a topic of the source's own cluster, keyed by the record's key;
 * so does this sink, with a librdkafka producer (acks=all, idempotent: the client's own retries
 * of a produce never write a message twice). For a Kafka mapping it connects as the source
 * does: the client properties the source gives (env->cluster: bootstrap servers and connection
 * security, for self-managed and MSK mappings alike), so it parses no ARN and reads no secret
 * itself. Beyond AWS, any mapping (file, Kinesis, SQS, Redis; a Kafka one for another cluster)
 * may name a cluster of the destination's own in its options: bootstrap_servers (a list of
 * host:port, as a Kafka source's) and rdkafka (the connection's librdkafka settings, values
 * secret: never shown, wiped once the producer has them). Either way the configuration is built
 * by sl_kafka_conf_client, the Kafka source's own code (sources/kafka/kafka_conf.h), and the
 * sink never logs a value it was given; the settings the producer needs (acks, idempotence,
 * message.timeout.ms, linger.ms) are its own and refused in rdkafka.
 * A write completes when the broker acknowledged the message (the delivery report), never
 * before: the caller moves the checkpoint only then. A delivery (deliver) produces one message
 * per document and answers once every report is in, with each document's own outcome: a
 * message refused as such (too large, invalid) is REJECTED, anything else that did not land
 * RETRY. How long a message may take is the option delivery_timeout (message.timeout.ms). The
 * producer wakes the loop as the Kafka source's consumer does: librdkafka writes a byte to a pipe
 * (rd_kafka_queue_io_event_enable on the main queue, where delivery reports land) whenever that
 * queue becomes non-empty, and a uv_poll on the pipe's read end, active only while writes are in
 * flight, serves the queue with rd_kafka_poll(rk, 0). No timer: an idle producer costs nothing, a
 * busy one wakes once per batch of reports. Callbacks therefore run on the loop thread and never
 * from inside write(). Every message has a bounded life (message.timeout.ms), so every write gets
 * its report and with it a wake-up. It does not retry by itself: a failed write is reported and the
 * caller retries. Loop thread (librdkafka's own threads only write to the pipe). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "alloc.h"
#include "buf.h"
#include "kafka/kafka_conf.h"
#include "kafka/kafka_wake.h"
#include "log.h"
#include "opt.h"
#include "sink.h"

#define SINK_KAFKA_SCHEME      "kafka://"
#define SINK_KAFKA_TOPIC_MAX   249
#define SINK_KAFKA_SERVERS_MAX 100

/* One write or deliver call in flight: its documents' results so far. Each message's opaque
 * is its slot in msgs. */
struct kafka_sink_call {
    sl_sink_cb write_cb;           /* a write: one document */
    sl_sink_deliver_cb deliver_cb; /* a deliver: n documents */
    void *arg;
    size_t n;
    size_t pending; /* messages produced and not yet reported */
    struct sl_sink_result *results;
    struct kafka_sink_msg *msgs;
};

struct kafka_sink_msg {
    struct kafka_sink_call *call;
    size_t i;
};

struct kafka_sink {
    int64_t delivery_timeout_ms; /* option delivery_timeout: message.timeout.ms */
    struct sl_strlist bootstrap; /* option bootstrap_servers: a cluster of its own, or none */
    struct sl_strmap rdkafka;    /* option rdkafka: that cluster's connection (secrets) */
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq; /* where delivery reports land; its io event writes to io->wfd */
    char *topic;
    char *inst;
    struct sl_kafka_wake *io; /* the pipe librdkafka wakes the loop through, and its watcher */
    int in_flight;
};

static const struct sl_opt kafka_sink_opts[] = {
    {"delivery_timeout", SL_OPT_DURATION, "30s", 1000, 900000,
     offsetof(struct kafka_sink, delivery_timeout_ms), 0, NULL,
     "How long the producer tries to deliver one message (librdkafka's message.timeout.ms) "
     "before the write counts as failed (and is retried)."},
    {"bootstrap_servers", SL_OPT_STRLIST, NULL, 1, SINK_KAFKA_SERVERS_MAX,
     offsetof(struct kafka_sink, bootstrap), 0, NULL,
     "The cluster the topic is on, as a list of host:port (as a Kafka source's "
     "bootstrap_servers): needed by a mapping whose source is not Kafka; a Kafka mapping "
     "without it writes to its source's own cluster. Not for a SinkDestinationConfiguration "
     "(it has BootstrapServers)."},
    {"rdkafka", SL_OPT_STRMAP, NULL, 1, 0, offsetof(struct kafka_sink, rdkafka), SL_OPT_SECRET,
     NULL,
     "librdkafka settings of the connection to that cluster (security.protocol, sasl.*, ssl.*; "
     "values may be ${VAR} and are never shown); only with bootstrap_servers. acks, "
     "enable.idempotence, message.timeout.ms (see delivery_timeout) and linger.ms are "
     "sluice's."},
    {0},
};

/* The producer's own settings, after the cluster's (so they win): none of them may be given in
 * rdkafka. */
static const char *const kafka_sink_settings_keys[] = {
    "acks",
    "enable.idempotence",
    "message.timeout.ms",
    "linger.ms",
};

static bool kafka_sink_handles(const char *destination)
{
    return strncmp(destination, SINK_KAFKA_SCHEME, strlen(SINK_KAFKA_SCHEME)) == 0;
}

static int kafka_sink_check(const char *destination, char *errbuf, size_t errlen)
{
    const char *topic = destination + strlen(SINK_KAFKA_SCHEME);
    size_t n = strlen(topic);
    bool ok = n > 0 && n <= SINK_KAFKA_TOPIC_MAX && strcmp(topic, ".") && strcmp(topic, "..");
    for (size_t i = 0; ok && i < n; i++) {
        char c = topic[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        (void)snprintf(errbuf, errlen,
                       "\"%.300s\" is not kafka:// and a topic name; allowed: kafka://TOPIC with "
                       "1 to 249 of a-z A-Z 0-9 . _ -",
                       destination);
        return SL_ECONFIG;
    }
    return 0;
}

/* The cluster the options name, as client properties: the rdkafka settings, then
 * bootstrap.servers (the servers joined by commas). Secrets included: the caller wipes it
 * (sl_strmap_clear(..., true)). Returns 0 or SL_ENOMEM. */
static int kafka_sink_own_cluster(const struct kafka_sink *ctx, struct sl_strmap *ret_cluster)
{
    struct sl_buf servers;
    sl_buf_init(&servers);
    int r = 0;
    for (size_t i = 0; i < ctx->bootstrap.n && r == 0; i++) {
        r = sl_buf_printf(&servers, "%s%s", i ? "," : "", ctx->bootstrap.items[i]);
    }
    for (size_t i = 0; i < ctx->rdkafka.n && r == 0; i++) {
        r = sl_strmap_put(ret_cluster, ctx->rdkafka.keys[i], ctx->rdkafka.values[i]);
    }
    if (r == 0) {
        r = sl_strmap_put(ret_cluster, "bootstrap.servers", servers.data);
    }
    sl_buf_fini(&servers);
    return r < 0 ? SL_ENOMEM : 0;
}

/* The settings the producer gives librdkafka after the cluster's. timeout is
 * message.timeout.ms as text, or "" for librdkafka's default. */
static void kafka_sink_settings(const char *timeout, const char *ret_settings[][2])
{
    const char *values[] = {"all", "true", *timeout ? timeout : NULL, "0"};
    for (size_t i = 0; i < SL_ARRAY_LEN(kafka_sink_settings_keys); i++) {
        ret_settings[i][0] = kafka_sink_settings_keys[i];
        ret_settings[i][1] = values[i];
    }
}

/* What to give instead of a key of rdkafka the sink sets itself, or NULL when it may be given.
 */
static const char *kafka_sink_reserved(const char *key)
{
    if (!strcmp(key, "bootstrap.servers") || !strcmp(key, "metadata.broker.list")) {
        return "bootstrap_servers";
    }
    if (!strcmp(key, "message.timeout.ms")) {
        return "delivery_timeout";
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(kafka_sink_settings_keys); i++) {
        if (!strcmp(key, kafka_sink_settings_keys[i])) {
            return "nothing: the producer is idempotent, with acks=all and linger.ms=0";
        }
    }
    return NULL;
}

/* sl_sink_ops.check_opts: rdkafka only with bootstrap_servers, each server host:port, none of
 * the producer's own settings, and every setting one librdkafka takes (tried on a
 * configuration that is thrown away; errors name the key, never its value). */
static int kafka_sink_check_opts(const void *vctx, char *errbuf, size_t errlen)
{
    const struct kafka_sink *ctx = vctx;
    if (ctx->rdkafka.n > 0 && ctx->bootstrap.n == 0) {
        (void)snprintf(errbuf, errlen,
                       "rdkafka: settings of a cluster of the destination's own; allowed: only "
                       "with bootstrap_servers (without it a Kafka mapping's destination "
                       "connects as its source does)");
        return SL_ECONFIG;
    }
    for (size_t i = 0; i < ctx->bootstrap.n; i++) {
        if (!sl_kafka_conf_is_server(ctx->bootstrap.items[i])) {
            (void)snprintf(errbuf, errlen,
                           "bootstrap_servers[%zu]: \"%.80s\" is not host:port; allowed: a host "
                           "name or address and a port 1 to 65535, such as \"broker1:9092\"",
                           i, ctx->bootstrap.items[i]);
            return SL_ECONFIG;
        }
    }
    for (size_t i = 0; i < ctx->rdkafka.n; i++) {
        const char *instead = kafka_sink_reserved(ctx->rdkafka.keys[i]);
        if (instead) {
            (void)snprintf(errbuf, errlen, "rdkafka.%.200s: set by sluice; allowed: %s",
                           ctx->rdkafka.keys[i], instead);
            return SL_ECONFIG;
        }
    }
    if (ctx->bootstrap.n == 0) {
        return 0;
    }
    struct sl_strmap cluster = {0};
    int r = kafka_sink_own_cluster(ctx, &cluster);
    rd_kafka_conf_t *conf = NULL;
    const char *settings[SL_ARRAY_LEN(kafka_sink_settings_keys)][2];
    kafka_sink_settings("", settings);
    char why[400] = "";
    if (r == 0) {
        r = sl_kafka_conf_client(&cluster, (const char *const(*)[2])settings,
                                 SL_ARRAY_LEN(settings), "rdkafka", &conf, why, sizeof(why));
    }
    sl_strmap_clear(&cluster, true);
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    if (r == SL_ECONFIG) {
        (void)snprintf(errbuf, errlen,
                       "%s; allowed: librdkafka's producer properties with values it takes", why);
    }
    return r;
}

/* What err means for the document, as a result; detail is librdkafka's static text. A message
 * the broker or the client refuses as such (too large, invalid) is REJECTED; anything else
 * (timeouts, brokers down, authorization, a topic not there yet) is RETRY. */
static struct sl_sink_result kafka_sink_result(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return (struct sl_sink_result){SL_SINK_DELIVERED, 0, NULL};
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
        return (struct sl_sink_result){SL_SINK_RETRY, SL_ECANCELED, "canceled"};
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return (struct sl_sink_result){SL_SINK_REJECTED, SL_EREJECTED, rd_kafka_err2str(e)};
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
        return (struct sl_sink_result){SL_SINK_RETRY, SL_ETHROTTLED, rd_kafka_err2str(e)};
    default:
        return (struct sl_sink_result){SL_SINK_RETRY, SL_EIO, rd_kafka_err2str(e)};
    }
}

static void kafka_sink_call_free(struct kafka_sink_call *call)
{
    sl_free(call->results);
    sl_free(call->msgs);
    sl_free(call);
}

static struct kafka_sink_call *kafka_sink_call_new(size_t n)
{
    struct kafka_sink_call *call = sl_calloc(1, sizeof(*call));
    if (!call) {
        return NULL;
    }
    call->n = n;
    call->results = sl_calloc(n, sizeof(*call->results));
    call->msgs = sl_calloc(n, sizeof(*call->msgs));
    if (!call->results || !call->msgs) {
        kafka_sink_call_free(call);
        return NULL;
    }
    return call;
}

/* Reports call to its owner and frees it. */
static void kafka_sink_call_done(struct kafka_sink_call *call)
{
    if (call->write_cb) {
        const struct sl_sink_result *res = &call->results[0];
        sl_sink_cb cb = call->write_cb;
        void *arg = call->arg;
        int err = res->err;
        const char *detail = res->detail; /* static text */
        kafka_sink_call_free(call);
        cb(arg, err, detail);
        return;
    }
    call->deliver_cb(call->arg, call->results, call->n);
    kafka_sink_call_free(call);
}

/* librdkafka's delivery report, run from rd_kafka_poll on the loop thread. */
static void kafka_sink_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct kafka_sink *ctx = opaque;
    struct kafka_sink_msg *m = msg->_private;
    struct kafka_sink_call *call = m->call;
    ctx->in_flight--;
    call->results[m->i] = kafka_sink_result(msg->err);
    if (--call->pending == 0) {
        kafka_sink_call_done(call);
    }
}

/* The pipe is readable: librdkafka queued something (a delivery report, an error) on the main
 * queue. Empty the pipe first, then serve the whole queue: what is queued after the queue was
 * emptied writes a new byte, so no report waits for a wake-up that never comes. */
static void kafka_sink_io_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct kafka_sink *ctx = h->data;
    char drain[64];
    while (read(ctx->io->rfd, drain, sizeof(drain)) > 0) {
    }
    (void)rd_kafka_poll(ctx->rk, 0);
    if (ctx->in_flight == 0 && ctx->io) {
        (void)uv_poll_stop(&ctx->io->poll);
    }
}

/* kafka_sink_init on cluster (borrowed: its values may be secrets). */
static int kafka_sink_open(struct kafka_sink *ctx,
                           const struct sl_sink_env *env,
                           const char *destination,
                           const struct sl_strmap *cluster,
                           char *errbuf,
                           size_t errlen)
{
    if (!cluster || !sl_strmap_get(cluster, "bootstrap.servers")) {
        (void)snprintf(errbuf, errlen,
                       "%s: kafka:// destinations write to the source's own cluster unless "
                       "destination_options.bootstrap_servers names one; allowed: a Kafka source, "
                       "or bootstrap_servers",
                       destination);
        return SL_ECONFIG;
    }
    ctx->topic = sl_strdup(destination + strlen(SINK_KAFKA_SCHEME));
    ctx->inst = sl_strdup(env->inst);
    if (!ctx->topic || !ctx->inst) {
        return SL_ENOMEM;
    }
    char timeout[32] = "";
    if (ctx->delivery_timeout_ms > 0) { /* 0: init called without the core's options */
        (void)snprintf(timeout, sizeof(timeout), "%lld", (long long)ctx->delivery_timeout_ms);
    }
    /* acks=all, and idempotence: a retried produce never writes a message twice (nor out of
     * order) */
    const char *settings[SL_ARRAY_LEN(kafka_sink_settings_keys)][2];
    kafka_sink_settings(timeout, settings);
    /* The cluster's connection, as the source connects (sources/kafka/kafka_conf.c). */
    rd_kafka_conf_t *conf = NULL;
    int r = sl_kafka_conf_client(cluster, (const char *const(*)[2])settings, SL_ARRAY_LEN(settings),
                                 "kafka:// destination", &conf, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_sink_delivered);
    rd_kafka_conf_set_opaque(conf, ctx);
    char err[512];
    ctx->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!ctx->rk) {
        (void)snprintf(errbuf, errlen, "kafka:// destination: %s", err);
        rd_kafka_conf_destroy(conf); /* rd_kafka_new takes conf only when it succeeds */
        return SL_ECONFIG;
    }
    if (!(ctx->mainq = rd_kafka_queue_get_main(ctx->rk))) {
        return SL_ENOMEM;
    }
    char why[128];
    r = sl_kafka_wake_open(env->loop, ctx, &ctx->io, why, sizeof(why));
    if (r < 0) {
        (void)snprintf(errbuf, errlen, "kafka:// destination: %s", why);
        return r;
    }
    static const char wake = 1;
    rd_kafka_queue_io_event_enable(ctx->mainq, ctx->io->wfd, &wake, sizeof(wake));
    /* librdkafka writes only when the queue goes from empty to not: what it queued between
     * rd_kafka_new and the line above (a broker's connection error, say) would leave the queue
     * not empty and silent for good. One wake-up of our own: the first serve empties it. */
    if (write(ctx->io->wfd, &wake, sizeof(wake)) < 0) {
        (void)snprintf(errbuf, errlen, "kafka:// destination: wake-up pipe: %s", strerror(errno));
        return SL_EIO;
    }
    return 0;
}

static int kafka_sink_init(
    void *vctx, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct kafka_sink *ctx = vctx;
    /* The cluster the options name, else the source's (or the delivery stream's). */
    struct sl_strmap own = {0};
    const struct sl_strmap *cluster = env->cluster;
    if (ctx->bootstrap.n > 0) {
        int r = kafka_sink_own_cluster(ctx, &own);
        sl_strmap_clear(&ctx->rdkafka, true); /* the secrets live on only in own, wiped below */
        if (r < 0) {
            sl_strmap_clear(&own, true);
            return r;
        }
        cluster = &own;
    }
    int r = kafka_sink_open(ctx, env, destination, cluster, errbuf, errlen);
    sl_strmap_clear(&own, true);
    return r;
}

/* Produces docs[0..n) for call: every message copied (RD_KAFKA_MSG_F_COPY), so nothing is
 * borrowed past this call. A message librdkafka refuses at once gets its result now. Returns
 * how many were produced (their reports come later, never from inside this call). */
static size_t kafka_sink_produce(struct kafka_sink *ctx,
                                 struct kafka_sink_call *call,
                                 const struct sl_sink_doc *docs,
                                 size_t n)
{
    size_t produced = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sl_sink_doc *doc = &docs[i];
        call->msgs[i] = (struct kafka_sink_msg){call, i};
        rd_kafka_resp_err_t e = rd_kafka_producev(
            ctx->rk, RD_KAFKA_V_TOPIC(ctx->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(doc->key, doc->key ? doc->key_len : 0),
            RD_KAFKA_V_VALUE((void *)doc->body, doc->len), RD_KAFKA_V_OPAQUE(&call->msgs[i]),
            RD_KAFKA_V_END);
        if (e) {
            sl_log_debug("sink_kafka", ctx->inst, "produce to %s: %s", ctx->topic,
                         rd_kafka_err2str(e));
            call->results[i] = kafka_sink_result(e);
            continue;
        }
        produced++;
    }
    call->pending = produced;
    ctx->in_flight += (int)produced;
    if (produced > 0 && !uv_is_active((uv_handle_t *)&ctx->io->poll)) {
        (void)uv_poll_start(&ctx->io->poll, UV_READABLE, kafka_sink_io_cb);
    }
    return produced;
}

static int kafka_sink_write(void *vctx, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct kafka_sink_call *call = kafka_sink_call_new(1);
    if (!call) {
        return SL_ENOMEM;
    }
    call->write_cb = cb;
    call->arg = arg;
    if (kafka_sink_produce(vctx, call, doc, 1) == 0) {
        int err = call->results[0].err;
        kafka_sink_call_free(call);
        return err;
    }
    return 0;
}

/* One message per document, each with its own delivery report: the results are per document.
 * A document librdkafka refuses at once (too large for message.max.bytes) is REJECTED in the
 * callback while the others go on; when it refuses all of them, the first one's error is
 * returned and the callback never runs. */
static int kafka_sink_deliver(
    void *vctx, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg)
{
    struct kafka_sink_call *call = kafka_sink_call_new(n);
    if (!call) {
        return SL_ENOMEM;
    }
    call->deliver_cb = cb;
    call->arg = arg;
    if (kafka_sink_produce(vctx, call, docs, n) == 0) {
        int err = call->results[0].err;
        kafka_sink_call_free(call);
        return err;
    }
    return 0;
}

static void kafka_sink_stop(void *vctx)
{
    struct kafka_sink *ctx = vctx;
    if (ctx->rk && ctx->in_flight > 0) {
        (void)rd_kafka_purge(ctx->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    }
}

static void kafka_sink_fini(void *vctx)
{
    struct kafka_sink *ctx = vctx;
    if (ctx->mainq) {
        /* No librdkafka thread may write to the pipe once it is closed (its fd could be
         * reused). */
        rd_kafka_queue_io_event_enable(ctx->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(ctx->mainq);
        ctx->mainq = NULL;
    }
    if (ctx->rk) {
        /* Nothing is in flight (the caller's contract): let librdkafka close its connections. */
        (void)rd_kafka_flush(ctx->rk, 1000);
        rd_kafka_destroy(ctx->rk);
        ctx->rk = NULL;
    }
    sl_kafka_wake_close(ctx->io);
    ctx->io = NULL;
    sl_free(ctx->topic);
    sl_free(ctx->inst);
    ctx->topic = ctx->inst = NULL;
}

const struct sl_sink_ops sl_sink_kafka = {
    .abi = SL_SINK_ABI,
    .name = "kafka",
    .opts = kafka_sink_opts,
    .ctx_size = sizeof(struct kafka_sink),
    .handles = kafka_sink_handles,
    .max_docs = 1000, /* per call; the producer's own queue holds far more */
    .one_doc_per_record = true,
    .uses_source_cluster = true,
    .own_cluster_opt = "bootstrap_servers",
    .keeps_payload = true,
    .check = kafka_sink_check,
    .check_opts = kafka_sink_check_opts,
    .init = kafka_sink_init,
    .write = kafka_sink_write,
    .deliver = kafka_sink_deliver,
    .stop = kafka_sink_stop,
    .fini = kafka_sink_fini,
};

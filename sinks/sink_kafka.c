/* SPDX-License-Identifier: Apache-2.0 */
/* sink_kafka.c: the kafka://topic on-failure destination of Kafka mappings. AWS writes one
 * message per failed record to a topic of the source's own cluster, keyed by the record's key;
 * so does this sink, with a librdkafka producer (acks=all) that connects as the source does: the
 * client properties the source gives (env->cluster: bootstrap servers and connection security,
 * for self-managed and MSK mappings alike), so it parses no ARN and reads no secret itself, and
 * never logs a value it was given.
 * A write completes when the broker acknowledged the message (the delivery report), never
 * before: the caller moves the checkpoint only then. Delivery reports are served by polling the
 * producer from a libuv timer while writes are in flight, so callbacks run on the loop thread
 * and never from inside write(). It does not retry by itself: a failed write is reported and the
 * caller retries. Loop thread (librdkafka's own threads never call back into sluice). */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "alloc.h"
#include "log.h"
#include "opt.h"
#include "sink.h"

#define SINK_KAFKA_SCHEME    "kafka://"
#define SINK_KAFKA_POLL_MS   5
#define SINK_KAFKA_TOPIC_MAX 249

struct kafka_sink_op {
    sl_sink_cb cb;
    void *arg;
};

struct kafka_sink {
    rd_kafka_t *rk;
    char *topic;
    char *inst;
    uv_timer_t *poll; /* heap: freed in its close callback, after fini */
    int in_flight;
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

/* librdkafka's delivery report, run from rd_kafka_poll on the loop thread. */
static void kafka_sink_delivered(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    struct kafka_sink *ctx = opaque;
    struct kafka_sink_op *op = msg->_private;
    ctx->in_flight--;
    int err = 0;
    const char *detail = NULL;
    if (msg->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
        msg->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT) {
        err = SL_ECANCELED;
        detail = "canceled";
    } else if (msg->err) {
        err = SL_EIO;
        detail = rd_kafka_err2str(msg->err);
    }
    sl_sink_cb cb = op->cb;
    void *arg = op->arg;
    sl_free(op);
    cb(arg, err, detail);
}

static void kafka_sink_poll_cb(uv_timer_t *t)
{
    struct kafka_sink *ctx = t->data;
    (void)rd_kafka_poll(ctx->rk, 0);
    if (ctx->in_flight == 0) {
        uv_timer_stop(t);
    }
}

static int kafka_sink_init(
    void *vctx, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct kafka_sink *ctx = vctx;
    if (!env->cluster || !sl_strmap_get(env->cluster, "bootstrap.servers")) {
        (void)snprintf(errbuf, errlen,
                       "%s: kafka:// destinations write to the source's own cluster, so they need "
                       "a Kafka source",
                       destination);
        return SL_ECONFIG;
    }
    ctx->topic = sl_strdup(destination + strlen(SINK_KAFKA_SCHEME));
    ctx->inst = sl_strdup(env->inst);
    ctx->poll = sl_calloc(1, sizeof(*ctx->poll));
    if (!ctx->topic || !ctx->inst || !ctx->poll) {
        return SL_ENOMEM;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    static const char *const settings[][2] = {
        {"acks", "all"},
        {"message.timeout.ms", "30000"},
        {"linger.ms", "0"},
    };
    if (!conf) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < env->cluster->n; i++) {
        const char *key = env->cluster->keys[i];
        if (rd_kafka_conf_set(conf, key, env->cluster->values[i], err, sizeof(err))) {
            /* librdkafka's text may quote the value, which may be a secret: name the key */
            (void)snprintf(errbuf, errlen,
                           "kafka:// destination: the source's connection property %s is not "
                           "valid for a producer",
                           key);
            rd_kafka_conf_destroy(conf);
            return SL_ECONFIG;
        }
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(settings); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof(err))) {
            (void)snprintf(errbuf, errlen, "kafka:// destination: %s", err);
            rd_kafka_conf_destroy(conf);
            return SL_ECONFIG;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_sink_delivered);
    rd_kafka_conf_set_opaque(conf, ctx);
    ctx->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!ctx->rk) {
        (void)snprintf(errbuf, errlen, "kafka:// destination: %s", err);
        return SL_ECONFIG; /* rd_kafka_new destroyed conf */
    }
    uv_timer_init(env->loop, ctx->poll);
    ctx->poll->data = ctx;
    return 0;
}

static int kafka_sink_write(void *vctx, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct kafka_sink *ctx = vctx;
    struct kafka_sink_op *op = sl_calloc(1, sizeof(*op));
    if (!op) {
        return SL_ENOMEM;
    }
    op->cb = cb;
    op->arg = arg;
    rd_kafka_resp_err_t e = rd_kafka_producev(
        ctx->rk, RD_KAFKA_V_TOPIC(ctx->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(doc->key, doc->key ? doc->key_len : 0),
        RD_KAFKA_V_VALUE((void *)doc->body, doc->len), RD_KAFKA_V_OPAQUE(op), RD_KAFKA_V_END);
    if (e) {
        sl_log_debug("sink_kafka", ctx->inst, "produce to %s: %s", ctx->topic, rd_kafka_err2str(e));
        sl_free(op);
        return e == RD_KAFKA_RESP_ERR__QUEUE_FULL ? SL_ETHROTTLED : SL_EIO;
    }
    ctx->in_flight++;
    if (!uv_is_active((uv_handle_t *)ctx->poll)) {
        uv_timer_start(ctx->poll, kafka_sink_poll_cb, SINK_KAFKA_POLL_MS, SINK_KAFKA_POLL_MS);
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

static void kafka_sink_poll_closed(uv_handle_t *h)
{
    sl_free(h);
}

static void kafka_sink_fini(void *vctx)
{
    struct kafka_sink *ctx = vctx;
    if (ctx->rk) {
        /* Nothing is in flight (the caller's contract): let librdkafka close its connections. */
        (void)rd_kafka_flush(ctx->rk, 1000);
        rd_kafka_destroy(ctx->rk);
        ctx->rk = NULL;
    }
    if (ctx->poll && ctx->poll->loop) {
        uv_timer_stop(ctx->poll);
        uv_close((uv_handle_t *)ctx->poll, kafka_sink_poll_closed);
    } else {
        sl_free(ctx->poll);
    }
    ctx->poll = NULL;
    sl_free(ctx->topic);
    sl_free(ctx->inst);
    ctx->topic = ctx->inst = NULL;
}

const struct sl_sink_ops sl_sink_kafka = {
    .abi = SL_SINK_ABI,
    .name = "kafka",
    .handles = kafka_sink_handles,
    .ctx_size = sizeof(struct kafka_sink),
    .one_doc_per_record = true,
    .uses_source_cluster = true,
    .keeps_payload = true,
    .check = kafka_sink_check,
    .init = kafka_sink_init,
    .write = kafka_sink_write,
    .stop = kafka_sink_stop,
    .fini = kafka_sink_fini,
};

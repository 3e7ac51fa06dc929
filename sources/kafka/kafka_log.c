/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_log.c: logging for the Kafka source: librdkafka errors at most once per interval per
 * error code (the core's rate limiter, log.h), connection-security failures (authentication, TLS,
 * authorization) recognized and logged as one line a minute, and error messages from the queues.
 * The bottom layer: every other module logs through it, it calls none of them.
 */
#include "kafka_int.h"

/* Logs a librdkafka error at most once per every_ms per error code (or other key). */
static void kafka_vlog_limited(struct kafka_ctx *ctx,
                               enum sl_log_level level,
                               int err,
                               int64_t every_ms,
                               const char *fmt,
                               va_list ap) SL_PRINTF(5, 0);

void kafka_log_limited(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, const char *fmt, ...) SL_PRINTF(4, 5);

static void kafka_log_every(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, int64_t every_ms, const char *fmt, ...)
    SL_PRINTF(5, 6);

static void kafka_log_every(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, int64_t every_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kafka_vlog_limited(ctx, level, err, every_ms, fmt, ap);
    va_end(ap);
}

/* kafka_vlog_limited every KAFKA_LOG_EVERY_MS. */
void kafka_log_limited(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kafka_vlog_limited(ctx, level, err, KAFKA_LOG_EVERY_MS, fmt, ap);
    va_end(ap);
}

static void kafka_vlog_limited(struct kafka_ctx *ctx,
                               enum sl_log_level level,
                               int err,
                               int64_t every_ms,
                               const char *fmt,
                               va_list ap)
{
    sl_log_vlimited(&ctx->logged, sl_clock_now_ms(ctx->env.clock), every_ms, err, level, KAFKA_COMP,
                    ctx->env.inst, fmt, ap);
}

/* ---- messages ---- */

/* About connection-security failures (authentication, TLS, authorization): librdkafka treats the
 * first two as a broken connection and connects again after reconnect.backoff.ms, doubled per
 * failure up to reconnect.backoff.max.ms (100 ms and 10 s by default, per broker, jittered): a
 * slow backoff with no work on the loop meanwhile, and as quick a recovery as any once the cause
 * is fixed (a password rotated back, a listener switched). A topic it may not read is reported
 * at each metadata refresh (topic.metadata.refresh.interval.ms) and consumed once allowed. The
 * mapping keeps running throughout. What sluice adds is the line that says so: one error per
 * kind (all brokers alike, from error_cb or a consumer error) at most every
 * KAFKA_SECFAIL_LOG_EVERY_MS, with librdkafka's reason (which never holds a secret), what to
 * check, and how many more there were; meanwhile "all brokers are down", a consequence, is
 * debug, and librdkafka's own "FAIL" lines always are (kafka_log_cb). */

/* What a connection-security failure is about, for the line that says what to check. */
enum kafka_secfail {
    KAFKA_SECFAIL_NONE,
    KAFKA_SECFAIL_AUTH,  /* SASL: credentials, mechanism, or a broker without SASL */
    KAFKA_SECFAIL_TLS,   /* TLS: certificates, or TLS against a plaintext listener */
    KAFKA_SECFAIL_ACL,   /* authenticated, but the topic or group is not allowed */
    KAFKA_SECFAIL_COUNT, /* (also the log slot keys: KAFKA_SECFAIL_KEY + kind) */
};

#define KAFKA_SECFAIL_KEY 20000

static enum kafka_secfail kafka_secfail_kind(int err, const char *reason)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
        return KAFKA_SECFAIL_AUTH;
    case RD_KAFKA_RESP_ERR__SSL:
        return KAFKA_SECFAIL_TLS;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
        return KAFKA_SECFAIL_ACL;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        /* TLS against a plaintext listener or the reverse: librdkafka says so only in words
         * ("SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?",
         * "might be caused by incorrect security.protocol configuration") */
        if (reason && (strstr(reason, "SSL handshake failed") ||
                       strstr(reason, "security.protocol") || strstr(reason, "state SSL_"))) {
            return KAFKA_SECFAIL_TLS;
        }
        if (reason && strstr(reason, "state AUTH_")) {
            return KAFKA_SECFAIL_AUTH; /* the broker hung up during SASL */
        }
        return KAFKA_SECFAIL_NONE;
    default:
        return KAFKA_SECFAIL_NONE;
    }
}

/* Logs err if it is a connection-security failure (see "About connection-security failures"):
 * one error line per kind at most every KAFKA_SECFAIL_LOG_EVERY_MS. Returns
 * whether it was one. */
bool kafka_log_secfail(struct kafka_ctx *ctx, int err, const char *reason)
{
    static const char *const what[KAFKA_SECFAIL_COUNT] = {
        [KAFKA_SECFAIL_AUTH] = "authentication failed",
        [KAFKA_SECFAIL_TLS] = "the TLS connection failed",
        [KAFKA_SECFAIL_ACL] = "authorization failed",
    };
    static const char *const check[KAFKA_SECFAIL_COUNT] = {
        [KAFKA_SECFAIL_AUTH] = "the credentials and mechanism of SourceAccessConfigurations "
                               "(BASIC_AUTH, SASL_SCRAM_*) and rdkafka security.protocol/sasl.*",
        [KAFKA_SECFAIL_TLS] = "SourceAccessConfigurations (SERVER_ROOT_CA_CERTIFICATE, "
                              "CLIENT_CERTIFICATE_TLS_AUTH) and rdkafka security.protocol/ssl.*",
        [KAFKA_SECFAIL_ACL] = "the broker's ACLs for the topic and the consumer group",
    };
    static const char *const again[KAFKA_SECFAIL_COUNT] = {
        [KAFKA_SECFAIL_AUTH] = "connects again with backoff (up to reconnect.backoff.max.ms)",
        [KAFKA_SECFAIL_TLS] = "connects again with backoff (up to reconnect.backoff.max.ms)",
        [KAFKA_SECFAIL_ACL] = "tries again at each metadata refresh "
                              "(topic.metadata.refresh.interval.ms)",
    };
    enum kafka_secfail kind = kafka_secfail_kind(err, reason);
    if (kind == KAFKA_SECFAIL_NONE) {
        return false;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    ctx->secfail_at_ms = now ? now : 1;
    kafka_log_every(ctx, SL_LOG_ERROR, KAFKA_SECFAIL_KEY + (int)kind, KAFKA_SECFAIL_LOG_EVERY_MS,
                    "cannot consume: %s (%s: %s); check %s. The source keeps running and %s",
                    what[kind], rd_kafka_err2name(err), reason ? reason : "", check[kind],
                    again[kind]);
    return true;
}

void kafka_log_message_error(struct kafka_ctx *ctx, const rd_kafka_message_t *msg)
{
    const char *topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "";
    if (kafka_log_secfail(ctx, (int)msg->err, rd_kafka_message_errstr(msg))) {
        return; /* TOPIC_AUTHORIZATION_FAILED ("Subscribed topic not available") */
    }
    enum sl_log_level level =
        msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? SL_LOG_DEBUG : SL_LOG_WARN;
    kafka_log_limited(ctx, level, (int)msg->err, "consumer error on %s [%" PRId32 "]: %s", topic,
                      msg->partition, rd_kafka_message_errstr(msg));
}

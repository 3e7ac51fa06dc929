/* SPDX-License-Identifier: MIT */
/*
 * kafka-produce: the tests' Kafka producer.  Writes exactly the records it is given (keys,
 * values, headers as raw bytes, null keys, tombstones, explicit partitions and timestamps),
 * waits for every delivery report and fails loudly if any record was not acknowledged.
 *
 *   kafka-produce -b BOOTSTRAP -t TOPIC [-p PART] [-X prop=value]... [-o] [-q] < records.jsonl
 *   kafka-produce -b BOOTSTRAP -t TOPIC -n COUNT [-s SIZE] [-k] [-p PART] [-X ...] [-o] [-q]
 *
 * JSON lines mode (the default): one object per line,
 *   {"partition": 3, "timestamp": 1700000000000,
 *    "key": "text" | null,          or "key_b64": "..."     (absent: null key)
 *    "value": "text" | null,        or "value_b64": "..."   (absent or null: a tombstone)
 *    "headers": [["name", "text"], ["name", {"b64": "..."}], ["name", null]]}
 * Text is sent as its UTF-8 bytes; base64 carries any bytes, NUL included.  A record without
 * "partition" uses -p, else librdkafka's partitioner (by key).
 *
 * Generated mode (-n): COUNT records of SIZE bytes (default 100), value "r%010ld " padded with
 * 'x'; with -k the key is "k%ld" (else null).  Without -p, record i goes to partition
 * i % partition_count, so partitions get equal shares (mind the mock's 5 MiB per partition).
 *
 * -M (no records): one Metadata request; prints "brokers N" and "topic NAME PARTITIONS" lines
 * and exits 0 when it was answered (with -t: and the topic exists).  start.sh's readiness probe.
 *
 * -o prints one "PARTITION OFFSET" line per record on stdout, in input order, after all were
 * acknowledged.  Unless -q, a summary goes to stderr: "produced N records (B bytes) in S s:
 * R rec/s".  Exit 0 only when every record was acknowledged; 1 on a failed delivery, 2 on bad
 * input or usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>
#include <librdkafka/rdkafka.h>

struct result {
    int32_t partition;
    int64_t offset;
};

struct prod {
    rd_kafka_t *rk;
    const char *topic;
    struct result *results; /* by record index, when -o */
    size_t results_cap;
    size_t sent, acked, failed;
    uint64_t bytes;
};

static double now_s(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct prod *p = opaque;
    (void)rk;
    size_t idx = (size_t)(uintptr_t)msg->_private;
    if (msg->err) {
        p->failed++;
        if (p->failed <= 10) {
            fprintf(stderr, "kafka-produce: record %zu not delivered: %s\n", idx,
                    rd_kafka_err2str(msg->err));
        }
    } else {
        p->acked++;
    }
    if (p->results != NULL && idx < p->results_cap) {
        p->results[idx].partition = msg->partition;
        p->results[idx].offset = msg->err ? -1 : msg->offset;
    }
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

/* Decodes standard or URL-safe base64 (padding optional) into a malloc'd buffer. */
static int b64_decode(const char *s, unsigned char **ret_buf, size_t *ret_len)
{
    size_t n = strlen(s);
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (out == NULL) {
        return -1;
    }
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') {
            break;
        }
        int v = b64val((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    *ret_buf = out;
    *ret_len = len;
    return 0;
}

/* Bytes of a field given as text (`name`) or base64 (`name`_b64).  *ret_buf stays NULL for an
 * absent or null field; *ret_owned says whether to free it. */
static int field_bytes(const cJSON *obj,
                       const char *name,
                       const char *b64name,
                       void **ret_buf,
                       size_t *ret_len,
                       bool *ret_owned)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, name);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, b64name);
    *ret_buf = NULL;
    *ret_len = 0;
    *ret_owned = false;
    if (t != NULL && b != NULL) {
        return -1;
    }
    if (t != NULL && !cJSON_IsNull(t)) {
        if (!cJSON_IsString(t)) {
            return -1;
        }
        *ret_buf = t->valuestring;
        *ret_len = strlen(t->valuestring);
        return 0;
    }
    if (b != NULL && !cJSON_IsNull(b)) {
        unsigned char *buf;
        if (!cJSON_IsString(b) || b64_decode(b->valuestring, &buf, ret_len) != 0) {
            return -1;
        }
        *ret_buf = buf;
        *ret_owned = true;
    }
    return 0;
}

/* Produces, waiting for queue room when librdkafka's local queue is full. */
static int produce_one(struct prod *p,
                       int32_t part,
                       void *key,
                       size_t key_len,
                       void *val,
                       size_t val_len,
                       rd_kafka_headers_t *hdrs,
                       int64_t ts,
                       size_t idx)
{
    for (;;) {
        rd_kafka_resp_err_t err;
        if (hdrs != NULL) {
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_PARTITION(part),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(val, val_len),
                                    RD_KAFKA_V_TIMESTAMP(ts),
                                    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)idx),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        } else {
            err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(p->topic), RD_KAFKA_V_PARTITION(part),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(val, val_len),
                                    RD_KAFKA_V_TIMESTAMP(ts),
                                    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)idx), RD_KAFKA_V_END);
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(p->rk, 10);
            continue;
        }
        if (err) {
            fprintf(stderr, "kafka-produce: record %zu: %s\n", idx, rd_kafka_err2str(err));
            if (hdrs != NULL) {
                rd_kafka_headers_destroy(hdrs); /* ownership passes only on success */
            }
            return -1;
        }
        p->sent++;
        p->bytes += key_len + val_len;
        return 0;
    }
}

static int results_reserve(struct prod *p, size_t n)
{
    if (n <= p->results_cap) {
        return 0;
    }
    size_t cap = p->results_cap ? p->results_cap * 2 : 1024;
    while (cap < n) {
        cap *= 2;
    }
    struct result *r = realloc(p->results, cap * sizeof(*r));
    if (r == NULL) {
        return -1;
    }
    p->results = r;
    p->results_cap = cap;
    return 0;
}

static int add_headers(const cJSON *arr, size_t idx, rd_kafka_headers_t **ret_hdrs)
{
    *ret_hdrs = NULL;
    if (arr == NULL || cJSON_IsNull(arr)) {
        return 0;
    }
    if (!cJSON_IsArray(arr)) {
        fprintf(stderr, "kafka-produce: line %zu: headers must be a list of [name, value]\n",
                idx + 1);
        return -1;
    }
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new((size_t)cJSON_GetArraySize(arr));
    const cJSON *h;
    cJSON_ArrayForEach(h, arr)
    {
        const cJSON *name = cJSON_GetArrayItem(h, 0);
        const cJSON *val = cJSON_GetArrayItem(h, 1);
        if (!cJSON_IsArray(h) || cJSON_GetArraySize(h) != 2 || !cJSON_IsString(name)) {
            goto bad;
        }
        if (cJSON_IsNull(val)) {
            (void)rd_kafka_header_add(hdrs, name->valuestring, -1, NULL, 0);
        } else if (cJSON_IsString(val)) {
            (void)rd_kafka_header_add(hdrs, name->valuestring, -1, val->valuestring,
                                      (ssize_t)strlen(val->valuestring));
        } else if (cJSON_IsObject(val)) {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(val, "b64");
            unsigned char *buf;
            size_t len;
            if (!cJSON_IsString(b) || b64_decode(b->valuestring, &buf, &len) != 0) {
                goto bad;
            }
            (void)rd_kafka_header_add(hdrs, name->valuestring, -1, buf, (ssize_t)len);
            free(buf);
        } else {
            goto bad;
        }
    }
    *ret_hdrs = hdrs;
    return 0;
bad:
    fprintf(stderr,
            "kafka-produce: line %zu: a header is [\"name\", \"text\" | {\"b64\": \"...\"} | "
            "null]\n",
            idx + 1);
    rd_kafka_headers_destroy(hdrs);
    return -1;
}

/* One JSON line; returns 0, -1 (delivery/queue error) or -2 (bad input). */
static int produce_json(struct prod *p, const char *line, int32_t def_part, size_t idx)
{
    cJSON *obj = cJSON_Parse(line);
    void *key = NULL, *val = NULL;
    size_t key_len, val_len;
    bool key_owned = false, val_owned = false;
    rd_kafka_headers_t *hdrs = NULL;
    int r = -2;
    if (!cJSON_IsObject(obj)) {
        fprintf(stderr, "kafka-produce: line %zu: not a JSON object\n", idx + 1);
        goto done;
    }
    int32_t part = def_part;
    int64_t ts = 0;
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(obj, "partition");
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(obj, "timestamp");
    if (jp != NULL && !cJSON_IsNull(jp)) {
        if (!cJSON_IsNumber(jp) || jp->valuedouble < 0 || jp->valuedouble > INT32_MAX) {
            fprintf(stderr, "kafka-produce: line %zu: bad partition\n", idx + 1);
            goto done;
        }
        part = (int32_t)jp->valuedouble;
    }
    if (jt != NULL && !cJSON_IsNull(jt)) {
        if (!cJSON_IsNumber(jt) || jt->valuedouble < 0) {
            fprintf(stderr, "kafka-produce: line %zu: bad timestamp\n", idx + 1);
            goto done;
        }
        ts = (int64_t)jt->valuedouble;
    }
    if (field_bytes(obj, "key", "key_b64", &key, &key_len, &key_owned) != 0 ||
        field_bytes(obj, "value", "value_b64", &val, &val_len, &val_owned) != 0) {
        fprintf(stderr,
                "kafka-produce: line %zu: key/value must be a string or null, or "
                "key_b64/value_b64 base64 (not both forms)\n",
                idx + 1);
        goto done;
    }
    if (add_headers(cJSON_GetObjectItemCaseSensitive(obj, "headers"), idx, &hdrs) != 0) {
        goto done;
    }
    r = produce_one(p, part, key, key_len, val, val_len, hdrs, ts, idx) == 0 ? 0 : -1;
done:
    if (key_owned) {
        free(key);
    }
    if (val_owned) {
        free(val);
    }
    cJSON_Delete(obj);
    return r;
}

static int partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    if (rkt != NULL && rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n = md->topics[0].partition_cnt;
        } else if (md->topic_cnt == 1) {
            fprintf(stderr, "kafka-produce: topic %s: %s\n", topic,
                    rd_kafka_err2str(md->topics[0].err));
        }
        rd_kafka_metadata_destroy(md);
    } else {
        fprintf(stderr, "kafka-produce: no metadata for %s within 10 s\n", topic);
    }
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    return n;
}

/* -M: a Metadata round trip, the readiness check of tests/services/start.sh */
static int print_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        fprintf(stderr, "kafka-produce: metadata: %s\n", rd_kafka_err2str(err));
        return 1;
    }
    int rc = topic != NULL ? 1 : 0;
    printf("brokers %d\n", md->broker_cnt);
    for (int i = 0; i < md->topic_cnt; i++) {
        printf("topic %s %d\n", md->topics[i].topic, md->topics[i].partition_cnt);
        if (topic != NULL && strcmp(topic, md->topics[i].topic) == 0 && !md->topics[i].err) {
            rc = 0;
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

static int set_conf(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-produce: %s=%s: %s\n", name, value, errstr);
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka-produce -b BOOTSTRAP -t TOPIC [-p PARTITION] [-X prop=value]... "
                    "[-o] [-q] [-n COUNT [-s SIZE] [-k]] < records.jsonl\n"
                    "       kafka-produce -b BOOTSTRAP -M [-t TOPIC]\n");
}

int main(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL;
    long count = -1, size = 100, part_arg = RD_KAFKA_PARTITION_UA;
    bool keys = false, print_offsets = false, quiet = false, metadata = false;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int opt;
    /* defaults for throughput; -X overrides them */
    if (set_conf(conf, "linger.ms", "5") || set_conf(conf, "batch.num.messages", "10000") ||
        set_conf(conf, "queue.buffering.max.messages", "500000") ||
        set_conf(conf, "message.timeout.ms", "30000")) {
        return 2;
    }
    while ((opt = getopt(argc, argv, "b:t:p:X:n:s:koqMh")) != -1) {
        char *eq, *end;
        switch (opt) {
        case 'b':
            bootstrap = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        case 'p':
            part_arg = strtol(optarg, &end, 10);
            if (*end != '\0' || part_arg < 0 || part_arg > INT32_MAX) {
                usage();
                return 2;
            }
            break;
        case 'X':
            eq = strchr(optarg, '=');
            if (eq == NULL) {
                usage();
                return 2;
            }
            *eq = '\0';
            if (set_conf(conf, optarg, eq + 1) != 0) {
                return 2;
            }
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end != '\0' || count < 0) {
                usage();
                return 2;
            }
            break;
        case 's':
            size = strtol(optarg, &end, 10);
            if (*end != '\0' || size < 0 || size > 100 * 1024 * 1024) {
                usage();
                return 2;
            }
            break;
        case 'k':
            keys = true;
            break;
        case 'o':
            print_offsets = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'M':
            metadata = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (bootstrap == NULL || (topic == NULL && !metadata) || optind != argc) {
        usage();
        return 2;
    }
    struct prod p = {.topic = topic};
    char errstr[512];
    if (set_conf(conf, "bootstrap.servers", bootstrap) != 0) {
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &p);
    p.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p.rk == NULL) {
        fprintf(stderr, "kafka-produce: %s\n", errstr);
        return 2;
    }

    int rc = 0;
    if (metadata) {
        rc = print_metadata(p.rk, topic, 2000);
        goto out;
    }
    double t0 = now_s();
    if (count >= 0) {
        int nparts = 1;
        if (part_arg == RD_KAFKA_PARTITION_UA && (nparts = partition_count(p.rk, topic)) <= 0) {
            rc = 1;
            goto out;
        }
        if (print_offsets && results_reserve(&p, (size_t)count) != 0) {
            rc = 2;
            goto out;
        }
        char *val = malloc((size_t)size + 32);
        char key[32];
        if (val == NULL) {
            rc = 2;
            goto out;
        }
        memset(val, 'x', (size_t)size + 32);
        for (long i = 0; i < count && rc == 0; i++) {
            char head[24];
            int hl = snprintf(head, sizeof(head), "r%010ld ", i);
            memcpy(val, head, (size_t)hl < (size_t)size ? (size_t)hl : (size_t)size);
            int kl = keys ? snprintf(key, sizeof(key), "k%ld", i) : 0;
            int32_t part =
                part_arg != RD_KAFKA_PARTITION_UA ? (int32_t)part_arg : (int32_t)(i % nparts);
            if (produce_one(&p, part, keys ? key : NULL, (size_t)kl, val, (size_t)size, NULL, 0,
                            (size_t)i) != 0) {
                rc = 1;
            }
            if ((i & 1023) == 0) {
                rd_kafka_poll(p.rk, 0);
            }
        }
        free(val);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        size_t idx = 0;
        while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
                line[--n] = '\0';
            }
            if (n == 0) {
                continue;
            }
            if (print_offsets && results_reserve(&p, idx + 1) != 0) {
                rc = 2;
                break;
            }
            int r = produce_json(&p, line, (int32_t)part_arg, idx++);
            rc = r == 0 ? 0 : r == -2 ? 2 : 1;
            rd_kafka_poll(p.rk, 0);
        }
        free(line);
    }
    if (rd_kafka_flush(p.rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka-produce: %d records still unacknowledged after 60 s\n",
                rd_kafka_outq_len(p.rk));
        rc = rc ? rc : 1;
    }
    double dt = now_s() - t0;
    if (p.failed > 0 && rc == 0) {
        rc = 1;
    }
    if (print_offsets && rc == 0) {
        for (size_t i = 0; i < p.sent; i++) {
            printf("%" PRId32 " %" PRId64 "\n", p.results[i].partition, p.results[i].offset);
        }
    }
    if (!quiet) {
        fprintf(stderr,
                "kafka-produce: produced %zu records (%" PRIu64 " bytes) in %.3f s: %.0f rec/s"
                "%s\n",
                p.acked, p.bytes, dt, dt > 0 ? (double)p.acked / dt : 0.0,
                p.failed ? " (SOME FAILED)" : "");
    }
out:
    rd_kafka_destroy(p.rk);
    free(p.results);
    return rc;
}

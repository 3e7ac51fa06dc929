/* SPDX-License-Identifier: Apache-2.0 */
/* test_kafka.c: the Kafka source without a broker: the exact bytes of the event (key, value,
 * headers as signed bytes, null key, tombstone, no headers, no timestamp), the item id, the filter
 * document and KafkaBatchInfo; option validation (each error names the key and what is allowed;
 * librdkafka's own text for a bad property); SourceAccessConfigurations mapped onto librdkafka
 * properties, with secrets read from files and the environment and never logged; client_props,
 * what the kafka:// destination's producer gets of them (and uses), for MSK and self-managed
 * mappings. Two tests run the whole consumer path against librdkafka's in-process mock cluster
 * (test.mock.num.brokers): assignment, records, ack and commit; and the fetch path proper: each
 * partition read from its own queue, fetch's record and byte limits with what a chunk leaves over
 * kept in order for the next fetch, part_wake after an empty fetch when records arrive, and
 * settling until the first assignment. Three more run the lookup of where assigned partitions
 * start against a mock coordinator whose OffsetFetch answer is 2.5 s late: the loop keeps turning
 * meanwhile (a 10 ms timer's worst lateness is measured; 2.5 s when the lookup ran on the loop)
 * and the partition starts at the committed offset; a revoke while the lookup runs leaves nothing
 * assigned when it completes, and a fresh assignment after it is made once; fini while a lookup
 * runs waits for it and leaks nothing. Two run the commit on revoke against a coordinator whose
 * OffsetCommit answer is 2.5 s late: the loop keeps turning (worst lateness of a 10 ms timer:
 * 2.5 s when the commit was waited for on the loop), the partition stays assigned at librdkafka
 * until the commit answered and the group then has the acknowledged offset; an assignment
 * arriving behind the revoke waits for the commit and starts at the offset it committed; fini
 * while the commit runs waits for it, commits it no second time, and leaks nothing. Four start a
 * new group (no committed offset): with LATEST, TRIM_HORIZON and AT_TIMESTAMP the partition is
 * assigned at the offset the position resolves to, which is committed at once, and settling
 * lasts until the broker acknowledged it (LATEST: an OffsetCommit answer 2.5 s late); a revoke
 * while the start is looked up commits nothing, the assignment after it commits its own.
 * Authentication, TLS and authorization failures are recognized and logged as one error a minute
 * however often librdkafka reports them (fake clock).
 *
 * About the #include of the adapter's files (sources/kafka/): records are made from field values
 * with kafka_push_view (a librdkafka message cannot be built by hand) and the built configuration
 * is read from ctx, so the test compiles the adapter into itself; its external symbols
 * (sl_source_kafka and the kafka_ functions its modules share) then come from here and libsluice's
 * copy is never linked in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../sources/kafka/kafka.c"
#include "../../sources/kafka/kafka_check.c"
#include "../../sources/kafka/kafka_commit.c"
#include "../../sources/kafka/kafka_conf.c"
#include "../../sources/kafka/kafka_event.c"
#include "../../sources/kafka/kafka_fetch.c"
#include "../../sources/kafka/kafka_log.c"
#include "../../sources/kafka/kafka_part.c"
#include "../../sources/kafka/kafka_rebalance.c"
#include "../../sources/kafka/kafka_record.c"
#include "../../sources/kafka/kafka_wake.c"
#include "../../sinks/sink_kafka.c"

#include <librdkafka/rdkafka_mock.h>

#include "helpers.h"

#define MAX_PARTS 16

struct owner {
    struct sl_part *parts[MAX_PARTS];
    bool revoked[MAX_PARTS];
    size_t n;
    unsigned wakes;
};

static int owner_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct owner *o = owner;
    assert_true(o->n < MAX_PARTS);
    struct sl_part *part = sl_part_new(id, name);
    assert_non_null(part);
    o->parts[o->n++] = part;
    *ret_part = part;
    return 0;
}

static void owner_part_wake(void *owner, struct sl_part *part)
{
    (void)part;
    ((struct owner *)owner)->wakes++;
}

static void owner_part_revoke(void *owner, struct sl_part *part)
{
    struct owner *o = owner;
    for (size_t i = 0; i < o->n; i++) {
        if (o->parts[i] == part) {
            o->revoked[i] = true;
        }
    }
}

struct fx {
    char *dir;
    uv_loop_t loop;
    struct sl_clock_fake clk;
    struct owner owner;
    struct sl_source_env env;
    struct kafka_ctx *ctx;
    char arn[256];
    char err[1024];
    int log_fd;
    char log_path[600];
    rd_kafka_t *mock_rk; /* owns a mock cluster the source connects to, or NULL */
};

static int fx_setup(void **state)
{
    struct fx *f = sl_calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    sl_clock_fake_init(&f->clk, 1000000, 1545084650987);
    snprintf(f->log_path, sizeof(f->log_path), "%s/log", f->dir);
    f->log_fd = open(f->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(f->log_fd >= 0);
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_HUMAN, f->log_fd);
    *state = f;
    return 0;
}

static void src_free(struct fx *f)
{
    if (!f->ctx) {
        return;
    }
    kafka_stop(f->ctx);
    for (size_t i = 0; i < f->owner.n; i++) {
        kafka_part_release(f->ctx, f->owner.parts[i]);
        sl_part_free(f->owner.parts[i]);
    }
    memset(&f->owner, 0, sizeof(f->owner));
    kafka_fini(f->ctx);
    sl_opt_free(kafka_opts, f->ctx);
    sl_free(f->ctx);
    f->ctx = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    src_free(f);
    if (f->mock_rk) {
        rd_kafka_destroy(f->mock_rk);
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_log_setup(SL_LOG_WARN, SL_LOG_HUMAN, 2);
    close(f->log_fd);
    test_rmtree(f->dir);
    free(f->dir);
    sl_free(f);
    return 0;
}

/* Applies the options in json (the adapter's keys of a mapping object) and runs check. Returns
 * check's (or the option layer's) result; f->err holds the message. */
static int src_new(struct fx *f, const char *arn, const char *json, int starting_position)
{
    assert_null(f->ctx);
    f->ctx = sl_calloc(1, sizeof(struct kafka_ctx));
    assert_non_null(f->ctx);
    snprintf(f->arn, sizeof(f->arn), "%s", arn);
    f->env = (struct sl_source_env){
        .loop = &f->loop,
        .clock = &f->clk.clock,
        .inst = "esm-1",
        .region = "us-east-1",
        .arn = f->arn,
        .starting_position = starting_position,
        .owner = &f->owner,
        .part_add = owner_part_add,
        .part_wake = owner_part_wake,
        .part_revoke = owner_part_revoke,
    };
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_opt_target t = {.table = kafka_opts, .base = f->ctx};
    int r = sl_opt_apply(&t, 1, obj, "test.json", "$.mappings[0]", &errs);
    cJSON_Delete(obj);
    f->err[0] = '\0';
    if (r < 0) {
        snprintf(f->err, sizeof(f->err), "%s", errs.n ? errs.items[0] : "?");
        sl_errlist_fini(&errs);
        return r;
    }
    sl_errlist_fini(&errs);
    return kafka_check(f->ctx, f->arn, f->err, sizeof(f->err));
}

static int src_init(struct fx *f)
{
    f->err[0] = '\0';
    return kafka_init(f->ctx, &f->env, f->err, sizeof(f->err));
}

#define SMK_MIN                                                                            \
    "\"SelfManagedEventSource\":{\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[\"b1:9092\"," \
    "\"b2:9092\"]}},\"Topics\":[\"orders\"]"

/* Makes a partition orders-3 directly (as an assignment would). */
static struct kafka_part *make_part(struct fx *f, const char *arn, const char *extra)
{
    char json[512];
    snprintf(json, sizeof(json), "{" SMK_MIN "%s}", extra);
    assert_int_equal(src_new(f, arn, json, SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), 0);
    struct kafka_part *kp = kafka_part_new(f->ctx, "orders", 3, 10);
    assert_non_null(kp);
    assert_string_equal(kp->part->id, "orders-3");
    return kp;
}

static void push(struct kafka_part *kp,
                 int64_t offset,
                 const char *key,
                 size_t key_len,
                 const char *value,
                 size_t value_len,
                 rd_kafka_headers_t *hdrs)
{
    struct kafka_msgview v = {
        .offset = offset,
        .ts = 1545084650987,
        .tstype = RD_KAFKA_TIMESTAMP_CREATE_TIME,
        .key = key,
        .key_len = key_len,
        .value = value,
        .value_len = value_len,
        .hdrs = hdrs,
    };
    assert_int_equal(kafka_push_view(kp, &v, 42), 0);
}

static char *event_of(struct fx *f, struct kafka_part *kp)
{
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(kafka_encode_open(&sl_source_kafka, f->ctx, kp->part, &b), 0);
    for (size_t i = 0; i < sl_recq_count(&kp->part->q); i++) {
        if (i) {
            assert_int_equal(sl_buf_puts(&b, ","), 0);
        }
        assert_int_equal(kafka_encode_record(f->ctx, kp->part, sl_recq_at(&kp->part->q, i), &b), 0);
    }
    assert_int_equal(kafka_encode_close(&sl_source_kafka, f->ctx, kp->part, &b), 0);
    return sl_buf_steal(&b);
}

/* A batch over two partitions: one "records" member per partition, each with its own records,
 * and one recordsInfo member per partition in the invocation record (esm.md §2, §4.4). */
static void test_kafka_batch_spans_partitions(void **state)
{
    struct fx *f = *state;
    struct kafka_part *a = make_part(f, "kafka://b1:9092", "");
    struct kafka_part *b = kafka_part_new(f->ctx, "orders", 4, 10);
    assert_non_null(b);
    push(a, 15, NULL, 0, "a15", 3, NULL);
    push(a, 16, NULL, 0, "a16", 3, NULL);
    push(b, 7, NULL, 0, "b7", 2, NULL);
    assert_true(sl_source_kafka.caps->batch_spans_partitions);
    struct sl_buf ev;
    sl_buf_init(&ev);
    assert_int_equal(kafka_encode_open(&sl_source_kafka, f->ctx, a->part, &ev), 0);
    assert_int_equal(kafka_encode_record(f->ctx, a->part, sl_recq_at(&a->part->q, 0), &ev), 0);
    assert_int_equal(sl_buf_puts(&ev, ","), 0);
    assert_int_equal(kafka_encode_record(f->ctx, a->part, sl_recq_at(&a->part->q, 1), &ev), 0);
    assert_int_equal(kafka_encode_next_part(&sl_source_kafka, f->ctx, b->part, &ev), 0);
    assert_int_equal(kafka_encode_record(f->ctx, b->part, sl_recq_at(&b->part->q, 0), &ev), 0);
    assert_int_equal(kafka_encode_close(&sl_source_kafka, f->ctx, b->part, &ev), 0);
    cJSON *doc = cJSON_ParseWithLength(ev.data, ev.len);
    assert_non_null(doc);
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(doc, "records");
    assert_int_equal(cJSON_GetArraySize(recs), 2);
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(recs, "orders-3");
    const cJSON *rb = cJSON_GetObjectItemCaseSensitive(recs, "orders-4");
    assert_int_equal(cJSON_GetArraySize(ra), 2);
    assert_int_equal(cJSON_GetArraySize(rb), 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(ra, 1), "offset")->valueint, 16);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rb, 0), "partition")->valueint, 4);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rb, 0), "value")->valuestring,
                        "Yjc=");
    cJSON_Delete(doc);

    struct sl_batch_run runs[] = {
        {a->part, sl_recq_at(&a->part->q, 0), sl_recq_at(&a->part->q, 1), 2},
        {b->part, sl_recq_at(&b->part->q, 0), sl_recq_at(&b->part->q, 0), 1},
    };
    sl_buf_truncate(&ev, 0);
    assert_int_equal(sl_buf_puts(&ev, "{"), 0);
    assert_int_equal(kafka_encode_batch_info(&sl_source_kafka, f->ctx, runs, 2, &ev), 0);
    assert_int_equal(sl_buf_puts(&ev, "}"), 0);
    doc = cJSON_ParseWithLength(ev.data, ev.len);
    assert_non_null(doc);
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(doc, "KafkaBatchInfo");
    assert_int_equal(cJSON_GetObjectItem(info, "batchSize")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(info, "payloadSize")->valueint,
                     (int)(sl_recq_at(&a->part->q, 0)->len + sl_recq_at(&a->part->q, 0)->meta_len +
                           sl_recq_at(&a->part->q, 1)->len + sl_recq_at(&a->part->q, 1)->meta_len +
                           sl_recq_at(&b->part->q, 0)->len + sl_recq_at(&b->part->q, 0)->meta_len));
    const cJSON *ri = cJSON_GetObjectItemCaseSensitive(info, "recordsInfo");
    assert_int_equal(cJSON_GetArraySize(ri), 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ri, "orders-3"), "lastRecordOffset")->valuestring,
        "16");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(ri, "orders-4"), "firstRecordOffset")->valuestring,
        "7");
    cJSON_Delete(doc);
    sl_buf_fini(&ev);
}

static void test_kafka_event_exact_bytes(void **state)
{
    struct fx *f = *state;
    struct kafka_part *kp = make_part(f, "kafka://b1:9092,b2:9092", "");
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    assert_int_equal(rd_kafka_header_add(h, "headerKey", -1, "header", 6), 0);
    assert_int_equal(rd_kafka_header_add(h, "h\xc3\xa9", -1, "\xc3\xa9\xff\x80\x7f\x00", 6), 0);
    assert_int_equal(rd_kafka_header_add(h, "nil", -1, NULL, 0), 0);
    push(kp, 15, "k1", 2, "{\"a\":1}", 7, h);
    rd_kafka_headers_destroy(h);
    char *ev = event_of(f, kp);
    assert_string_equal(
        ev, "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":\"b1:9092,b2:9092\","
            "\"records\":{\"orders-3\":[{\"topic\":\"orders\",\"partition\":3,\"offset\":15,"
            "\"timestamp\":1545084650987,\"timestampType\":\"CREATE_TIME\",\"key\":\"azE=\","
            "\"value\":\"eyJhIjoxfQ==\",\"headers\":[{\"headerKey\":[104,101,97,100,101,114]},"
            "{\"h\xc3\xa9\":[-61,-87,-1,-128,127,0]},{\"nil\":[]}]}]}}");
    sl_free(ev);
    const struct sl_record *rec = sl_recq_at(&kp->part->q, 0);
    assert_int_equal(kafka_rec_offset(kp->part, rec), 15);
    char next[32];
    assert_int_equal(kafka_format_pos(f->ctx, kp->part, rec, next, sizeof(next)), 0);
    assert_string_equal(next, "16");
    assert_int_equal(rec->arrival_ms, 1545084650987);
}

static void test_kafka_event_null_key_tombstone_no_headers(void **state)
{
    struct fx *f = *state;
    struct kafka_part *kp = make_part(f, "kafka://b1:9092,b2:9092", "");
    push(kp, 7, NULL, 0, "v", 1, NULL);              /* null key */
    push(kp, 8, "k", 1, NULL, 0, NULL);              /* tombstone */
    push(kp, 9, "", 0, "", 0, NULL);                 /* empty key, empty value: present, "" */
    rd_kafka_headers_t *h = rd_kafka_headers_new(1); /* headers object with none in it */
    push(kp, 10, NULL, 0, NULL, 0, h);
    rd_kafka_headers_destroy(h);
    char *ev = event_of(f, kp);
    assert_string_equal(
        ev, "{\"eventSource\":\"SelfManagedKafka\",\"bootstrapServers\":\"b1:9092,b2:9092\","
            "\"records\":{\"orders-3\":["
            "{\"topic\":\"orders\",\"partition\":3,\"offset\":7,\"timestamp\":1545084650987,"
            "\"timestampType\":\"CREATE_TIME\",\"value\":\"dg==\",\"headers\":[]},"
            "{\"topic\":\"orders\",\"partition\":3,\"offset\":8,\"timestamp\":1545084650987,"
            "\"timestampType\":\"CREATE_TIME\",\"key\":\"aw==\",\"headers\":[]},"
            "{\"topic\":\"orders\",\"partition\":3,\"offset\":9,\"timestamp\":1545084650987,"
            "\"timestampType\":\"CREATE_TIME\",\"key\":\"\",\"value\":\"\",\"headers\":[]},"
            "{\"topic\":\"orders\",\"partition\":3,\"offset\":10,\"timestamp\":1545084650987,"
            "\"timestampType\":\"CREATE_TIME\",\"headers\":[]}]}}");
    sl_free(ev);
}

static void test_kafka_event_msk_and_log_append_time(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        src_new(f, "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc-1",
                "{\"Topics\":[\"t\"],\"bootstrap_servers\":[\"b-1:9092\",\"b-2:9092\"],"
                "\"AmazonManagedKafkaEventSourceConfig\":{\"ConsumerGroupId\":\"g1\"}}",
                SL_START_LATEST),
        0);
    assert_int_equal(src_init(f), 0);
    assert_string_equal(f->ctx->group_id, "g1");
    struct kafka_part *kp = kafka_part_new(f->ctx, "t", 0, -1);
    assert_non_null(kp);
    struct kafka_msgview v = {.offset = 0,
                              .ts = 1700000000123,
                              .tstype = RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME,
                              .value = "x",
                              .value_len = 1};
    assert_int_equal(kafka_push_view(kp, &v, 5), 0);
    struct kafka_msgview nots = {.offset = 1,
                                 .ts = -1,
                                 .tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE,
                                 .value = "y",
                                 .value_len = 1};
    assert_int_equal(kafka_push_view(kp, &nots, 5), 0);
    assert_int_equal(sl_recq_at(&kp->part->q, 1)->arrival_ms, 5);
    char *ev = event_of(f, kp);
    assert_string_equal(
        ev, "{\"eventSource\":\"aws:kafka\",\"eventSourceArn\":\"arn:aws:kafka:us-east-1:"
            "123456789012:cluster/c/abc-1\",\"bootstrapServers\":\"b-1:9092,b-2:9092\","
            "\"records\":{\"t-0\":[{\"topic\":\"t\",\"partition\":0,\"offset\":0,"
            "\"timestamp\":1700000000123,\"timestampType\":\"LOG_APPEND_TIME\",\"value\":\"eA==\","
            "\"headers\":[]},{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"timestamp\":-1,"
            "\"timestampType\":\"NO_TIMESTAMP_TYPE\",\"value\":\"eQ==\",\"headers\":[]}]}}");
    sl_free(ev);
}

static void test_kafka_item_id_filter_doc_batch_info(void **state)
{
    struct fx *f = *state;
    struct kafka_part *kp = make_part(f, "kafka://b1:9092,b2:9092", "");
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    assert_int_equal(rd_kafka_header_add(h, "a", -1, "\xff", 1), 0);
    push(kp, 15, "user-1", 6, "{\"amount\":12}", 13, h);
    rd_kafka_headers_destroy(h);
    push(kp, 16, "\xff\xfe", 2, "plain text", 10, NULL);
    push(kp, 17, NULL, 0, "\xc3\x28", 2, NULL); /* not UTF-8 */
    char id[128];
    assert_int_equal(
        kafka_format_item_id(f->ctx, kp->part, sl_recq_at(&kp->part->q, 0), id, sizeof(id)), 0);
    assert_string_equal(id, "orders-3-15");
    assert_int_equal(kafka_format_item_id(f->ctx, kp->part, sl_recq_at(&kp->part->q, 0), id, 8),
                     SL_EINVAL);

    cJSON *doc = kafka_filter_doc(f->ctx, kp->part, sl_recq_at(&kp->part->q, 0));
    char *s = cJSON_PrintUnformatted(doc);
    assert_string_equal(s,
                        "{\"topic\":\"orders\",\"partition\":3,\"offset\":15,"
                        "\"timestamp\":1545084650987,\"timestampType\":\"CREATE_TIME\","
                        "\"key\":\"user-1\",\"value\":{\"amount\":12},\"headers\":[{\"a\":[-1]}]}");
    cJSON_free(s);
    cJSON_Delete(doc);
    doc = kafka_filter_doc(f->ctx, kp->part, sl_recq_at(&kp->part->q, 1));
    assert_null(cJSON_GetObjectItem(doc, "key")); /* not UTF-8: metadata filters only */
    assert_string_equal(cJSON_GetObjectItem(doc, "value")->valuestring, "plain text");
    cJSON_Delete(doc);
    doc = kafka_filter_doc(f->ctx, kp->part, sl_recq_at(&kp->part->q, 2));
    assert_null(cJSON_GetObjectItem(doc, "value"));
    assert_null(cJSON_GetObjectItem(doc, "key"));
    cJSON_Delete(doc);

    const char *key = NULL;
    assert_int_equal(kafka_record_key(f->ctx, kp->part, sl_recq_at(&kp->part->q, 0), &key), 6);
    assert_memory_equal(key, "user-1", 6);
    assert_int_equal(kafka_record_key(f->ctx, kp->part, sl_recq_at(&kp->part->q, 2), &key), 0);

    struct sl_buf b;
    sl_buf_init(&b);
    struct sl_batch_run run = {kp->part, sl_recq_at(&kp->part->q, 0), sl_recq_at(&kp->part->q, 1),
                               2};
    assert_int_equal(kafka_encode_batch_info(&sl_source_kafka, f->ctx, &run, 1, &b), 0);
    char expect[1024];
    size_t payload = sl_recq_at(&kp->part->q, 0)->len + sl_recq_at(&kp->part->q, 0)->meta_len +
                     sl_recq_at(&kp->part->q, 1)->len + sl_recq_at(&kp->part->q, 1)->meta_len;
    snprintf(expect, sizeof(expect),
             "\"KafkaBatchInfo\":{\"batchSize\":2,\"bootstrapServers\":\"b1:9092,b2:9092\","
             "\"payloadSize\":%zu,\"recordsInfo\":{\"orders-3\":{\"firstRecordOffset\":\"15\","
             "\"lastRecordOffset\":\"16\",\"firstRecordTimestamp\":\"2018-12-17T22:10:50.987Z\","
             "\"lastRecordTimestamp\":\"2018-12-17T22:10:50.987Z\"}}}",
             payload);
    assert_string_equal(b.data, expect);
    cJSON *parsed = cJSON_Parse(b.data + strlen("\"KafkaBatchInfo\":"));
    assert_non_null(parsed);
    cJSON_Delete(parsed);

    /* The kafka:// destination's form: one record, "recordInfo". */
    sl_buf_truncate(&b, 0);
    assert_int_equal(kafka_encode_record_info(&sl_source_kafka, f->ctx, kp->part,
                                              sl_recq_at(&kp->part->q, 1), &b),
                     0);
    snprintf(expect, sizeof(expect),
             "\"KafkaBatchInfo\":{\"batchSize\":1,\"bootstrapServers\":\"b1:9092,b2:9092\","
             "\"payloadSize\":%u,\"recordInfo\":{\"offset\":\"16\",\"timestamp\":"
             "\"2018-12-17T22:10:50.987Z\"}}",
             (unsigned)(sl_recq_at(&kp->part->q, 1)->len + sl_recq_at(&kp->part->q, 1)->meta_len));
    assert_string_equal(b.data, expect);
    sl_buf_fini(&b);
}

static void test_kafka_fetch_from_stage_limits(void **state)
{
    struct fx *f = *state;
    struct kafka_part *kp = make_part(f, "kafka://b1:9092", "");
    /* an empty stage: 0, and a wake is owed */
    assert_int_equal(kafka_fetch(f->ctx, kp->part, 10, 1000), 0);
    assert_true(kp->waiting);
    /* oversize: the event of one record would pass 6 MB */
    size_t big = 5 * 1024 * 1024;
    char *v = sl_calloc(1, big);
    assert_non_null(v);
    push(kp, 20, "k", 1, v, big, NULL);
    sl_free(v);
    const struct sl_record *rec = sl_recq_at(&kp->part->q, 0);
    assert_true(rec->flags & SL_REC_OVERSIZE);
    assert_int_equal(rec->len, 0);
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(kafka_encode_record(f->ctx, kp->part, rec, &b), 0);
    assert_string_equal(b.data, "{\"topic\":\"orders\",\"partition\":3,\"offset\":20,"
                                "\"timestamp\":1545084650987,\"timestampType\":\"CREATE_TIME\","
                                "\"key\":\"aw==\",\"headers\":[]}");
    sl_buf_fini(&b);
}

/* ---- options ---- */

static void expect_error(struct fx *f, const char *arn, const char *json, const char *needle)
{
    int r = src_new(f, arn, json, SL_START_TRIM_HORIZON);
    assert_int_equal(r, SL_ECONFIG);
    if (!strstr(f->err, needle)) {
        fail_msg("error \"%s\" lacks \"%s\"", f->err, needle);
    }
    src_free(f);
}

static void test_kafka_options_valid(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        src_new(f, "kafka://b1:9092,b2:9092",
                "{" SMK_MIN ",\"SelfManagedKafkaEventSourceConfig\":{\"ConsumerGroupId\":\"grp\"},"
                "\"rdkafka\":{\"session.timeout.ms\":\"6000\",\"fetch.wait.max.ms\":\"100\"}}",
                SL_START_TRIM_HORIZON),
        0);
    src_free(f);
    /* several topics (our extension); kafka:// written directly */
    assert_int_equal(
        src_new(f, "kafka://[::1]:9092", "{\"Topics\":[\"a\",\"b.c_d-e\"]}", SL_START_LATEST), 0);
    assert_int_equal(src_init(f), 0);
    assert_string_equal(f->ctx->servers, "[::1]:9092");
    assert_string_equal(f->ctx->group_id, "esm-1"); /* the mapping's UUID */
    char v[64];
    size_t n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(f->ctx->conf, "enable.auto.commit", v, &n), 0);
    assert_string_equal(v, "false");
    n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(f->ctx->conf, "auto.offset.reset", v, &n), 0);
    assert_string_equal(v, "smallest"); /* librdkafka's name for earliest */
    n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(f->ctx->conf, "group.id", v, &n), 0);
    assert_string_equal(v, "esm-1");
}

static void test_kafka_options_errors(void **state)
{
    struct fx *f = *state;
    const char *smk = "kafka://b1:9092,b2:9092";
    expect_error(f, smk,
                 "{\"SelfManagedEventSource\":{\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":"
                 "[\"b1:9092\"]}}}",
                 "Topics");
    expect_error(f, smk, "{\"Topics\":[\".bad\"]}", "Topics[0]");
    expect_error(f, smk, "{\"Topics\":[\"a b\"]}", "allowed: 1 to 249 characters");
    expect_error(f, smk, "{\"Topics\":[\"a\",\"a\"]}", "twice");
    expect_error(f, smk, "{\"Topics\":[]}", "Topics");
    expect_error(f, smk,
                 "{\"Topics\":[\"t\"],\"SelfManagedEventSource\":{\"Endpoints\":{"
                 "\"KAFKA_BOOTSTRAP_SERVERS\":[\"nohost\"]}}}",
                 "KAFKA_BOOTSTRAP_SERVERS[0]: \"nohost\" is not host:port");
    expect_error(f, smk,
                 "{\"Topics\":[\"t\"],\"SelfManagedEventSource\":{\"Endpoints\":{"
                 "\"KAFKA_BOOTSTRAP_SERVERS\":[]}}}",
                 "needs 1 to 10 servers");
    expect_error(f, smk, "{\"Topics\":[\"t\"],\"SelfManagedEventSource\":{\"Endpoint\":{}}}",
                 "SelfManagedEventSource.Endpoint: unknown key");
    expect_error(f, smk,
                 "{" SMK_MIN ",\"SelfManagedKafkaEventSourceConfig\":{\"ConsumerGroupId\":\"\"}}",
                 "ConsumerGroupId");
    expect_error(
        f, smk, "{" SMK_MIN ",\"SelfManagedKafkaEventSourceConfig\":{\"SchemaRegistryConfig\":{}}}",
        "SchemaRegistryConfig: schema registries are not supported");
    expect_error(
        f, smk, "{" SMK_MIN ",\"AmazonManagedKafkaEventSourceConfig\":{\"ConsumerGroupId\":\"g\"}}",
        "only for an MSK");
    expect_error(f, smk, "{" SMK_MIN ",\"bootstrap_servers\":[\"x:1\"]}", "only for an MSK");
    const char *msk = "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc";
    expect_error(f, msk, "{\"Topics\":[\"t\"]}", "bootstrap_servers: missing");
    expect_error(f, msk, "{" SMK_MIN ",\"bootstrap_servers\":[\"x:1\"]}",
                 "SelfManagedEventSource: not allowed with an MSK");
    expect_error(f, "arn:aws:kafka:us-east-1:1:topic/x", "{\"Topics\":[\"t\"]}",
                 "not an MSK cluster ARN");
    expect_error(f, "kafka://", "{\"Topics\":[\"t\"]}", "no bootstrap servers");
    expect_error(f, "kafka://h:99999", "{\"Topics\":[\"t\"]}", "\"h:99999\" is not host:port");
    /* SourceAccessConfigurations */
    expect_error(f, smk,
                 "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"VIRTUAL_HOST\","
                 "\"URI\":\"x\"}]}",
                 "is for RabbitMQ");
    expect_error(f, smk,
                 "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"BASIC_AUTH\","
                 "\"URI\":\"arn:aws:secretsmanager:us-east-1:1:secret:s\"}]}",
                 "Secrets Manager ARNs cannot be read");
    expect_error(f, smk,
                 "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"BASIC_AUTH\","
                 "\"URI\":\"env://A\"},{\"Type\":\"SASL_SCRAM_512_AUTH\",\"URI\":\"env://B\"}]}",
                 "BASIC_AUTH and SASL_SCRAM_512_AUTH both set");
    expect_error(f, smk,
                 "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"BASIC_AUTH\","
                 "\"URI\":\"http://x\"}]}",
                 "allowed: file:///path/to/secret.json or env://NAME");
    expect_error(f, smk, "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"BASIC_AUTH\"}]}",
                 "SourceAccessConfigurations[0].URI: missing");
    expect_error(f, smk, "{" SMK_MIN ",\"SourceAccessConfigurations\":{}}", "not a list");
    /* the rdkafka pass-through */
    expect_error(f, smk, "{" SMK_MIN ",\"rdkafka\":{\"enable.auto.commit\":\"true\"}}",
                 "rdkafka.enable.auto.commit: set by sluice");
    expect_error(f, smk, "{" SMK_MIN ",\"rdkafka\":{\"group.id\":\"x\"}}", "ConsumerGroupId");
    expect_error(f, smk, "{" SMK_MIN ",\"rdkafka\":{\"no.such.property\":\"1\"}}",
                 "rdkafka.no.such.property: No such configuration property");
    expect_error(f, smk, "{" SMK_MIN ",\"rdkafka\":{\"fetch.wait.max.ms\":\"soon\"}}",
                 "rdkafka.fetch.wait.max.ms: Invalid value");
    expect_error(f, smk,
                 "{" SMK_MIN ",\"rdkafka\":{\"partition.assignment.strategy\":"
                 "\"cooperative-sticky\"}}",
                 "eager assignors");
    expect_error(f, smk, "{" SMK_MIN ",\"rdkafka\":{\"session.timeout.ms\":6000}}", "rdkafka");
    expect_error(f, "file:///x", "{\"Topics\":[\"t\"]}", "not a Kafka source");
}

/* ---- SourceAccessConfigurations ---- */

static void write_secret(struct fx *f, const char *name, const char *text, char *uri, size_t len)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    test_write_file(path, "w", text, strlen(text));
    /* "file://" plus the path: a buffer of the path's size plus 8 always holds it. */
    assert_true(strlen(path) + 8 <= len);
    memcpy(uri, "file://", 7);
    memcpy(uri + 7, path, strlen(path) + 1);
}

static void conf_is(struct fx *f, const char *key, const char *want)
{
    char v[4096];
    size_t n = sizeof(v);
    assert_int_equal(rd_kafka_conf_get(f->ctx->conf, key, v, &n), RD_KAFKA_CONF_OK);
    if (strcmp(v, want) != 0) {
        fail_msg("%s is \"%s\", want \"%s\"", key, v, want);
    }
}

static void log_lacks(struct fx *f, const char *secret)
{
    char buf[65536];
    FILE *fp = fopen(f->log_path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    if (strstr(buf, secret)) {
        fail_msg("the log shows a secret: %s", buf);
    }
}

static void test_kafka_sac_scram_from_file(void **state)
{
    struct fx *f = *state;
    char uri[700];
    char json[2048];
    write_secret(f, "s.json", "{\"username\":\"alice\",\"password\":\"pw-S3cret\"}", uri,
                 sizeof(uri));
    snprintf(json, sizeof(json),
             "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"SASL_SCRAM_512_AUTH\","
             "\"URI\":\"%s\"},{\"Type\":\"VPC_SUBNET\",\"URI\":\"subnet:subnet-1\"}]}",
             uri);
    assert_int_equal(src_new(f, "kafka://b1:9092", json, SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), 0);
    conf_is(f, "sasl.mechanisms", "SCRAM-SHA-512");
    conf_is(f, "sasl.username", "alice");
    conf_is(f, "sasl.password", "pw-S3cret");
    conf_is(f, "security.protocol", "sasl_ssl");
    log_lacks(f, "pw-S3cret");
}

static void test_kafka_sac_basic_env_and_plaintext_override(void **state)
{
    struct fx *f = *state;
    setenv("SL_TEST_KAFKA_SECRET", "{\"username\":\"bob\",\"password\":\"hunter2-x\"}", 1);
    assert_int_equal(src_new(f, "kafka://b1:9092",
                             "{" SMK_MIN
                             ",\"SourceAccessConfigurations\":[{\"Type\":\"BASIC_AUTH\","
                             "\"URI\":\"env://SL_TEST_KAFKA_SECRET\"}],"
                             "\"rdkafka\":{\"security.protocol\":\"SASL_PLAINTEXT\"}}",
                             SL_START_TRIM_HORIZON),
                     0);
    assert_int_equal(src_init(f), 0);
    conf_is(f, "sasl.mechanisms", "PLAIN");
    conf_is(f, "sasl.username", "bob");
    conf_is(f, "security.protocol", "sasl_plaintext");
    log_lacks(f, "hunter2-x");
    unsetenv("SL_TEST_KAFKA_SECRET");
    src_free(f);
    /* a missing variable, a secret without a password */
    assert_int_equal(src_new(f, "kafka://b1:9092",
                             "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":"
                             "\"SASL_SCRAM_256_AUTH\",\"URI\":\"env://SL_TEST_KAFKA_SECRET\"}]}",
                             SL_START_TRIM_HORIZON),
                     0);
    assert_int_equal(src_init(f), SL_ECONFIG);
    assert_non_null(strstr(f->err, "SL_TEST_KAFKA_SECRET is not set"));
    src_free(f);
    setenv("SL_TEST_KAFKA_SECRET", "{\"username\":\"bob\"}", 1);
    assert_int_equal(src_new(f, "kafka://b1:9092",
                             "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":"
                             "\"SASL_SCRAM_256_AUTH\",\"URI\":\"env://SL_TEST_KAFKA_SECRET\"}]}",
                             SL_START_TRIM_HORIZON),
                     0);
    assert_int_equal(src_init(f), SL_ECONFIG);
    assert_non_null(strstr(f->err, "needs username and password"));
    unsetenv("SL_TEST_KAFKA_SECRET");
}

#define PEM_CERT "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
#define PEM_KEY  "-----BEGIN PRIVATE KEY-----\nMIIEkeyS3CRET\n-----END PRIVATE KEY-----\n"
/* the same, escaped for a JSON string */
#define PEM_CERT_JSON "-----BEGIN CERTIFICATE-----\\nMIIBfake\\n-----END CERTIFICATE-----\\n"
#define PEM_KEY_JSON  "-----BEGIN PRIVATE KEY-----\\nMIIEkeyS3CRET\\n-----END PRIVATE KEY-----\\n"

static void test_kafka_sac_tls(void **state)
{
    struct fx *f = *state;
    char ca[700];
    char cert[700];
    char json[4096];
    write_secret(f, "ca.pem", PEM_CERT, ca, sizeof(ca));
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "certificate", PEM_CERT);
    cJSON_AddStringToObject(s, "privateKey", PEM_KEY);
    cJSON_AddStringToObject(s, "privateKeyPassword", "keypass-S3");
    char *text = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    write_secret(f, "client.json", text, cert, sizeof(cert));
    cJSON_free(text);
    snprintf(json, sizeof(json),
             "{" SMK_MIN
             ",\"SourceAccessConfigurations\":[{\"Type\":\"SERVER_ROOT_CA_CERTIFICATE\","
             "\"URI\":\"%s\"},{\"Type\":\"CLIENT_CERTIFICATE_TLS_AUTH\",\"URI\":\"%s\"}]}",
             ca, cert);
    assert_int_equal(src_new(f, "kafka://b1:9092", json, SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), 0);
    conf_is(f, "security.protocol", "ssl");
    conf_is(f, "ssl.key.password", "keypass-S3");
    log_lacks(f, "keypass-S3");
    log_lacks(f, "MIIEkeyS3CRET");
    src_free(f);
    /* a root CA file that is not PEM */
    write_secret(f, "bad.pem", "hello", ca, sizeof(ca));
    snprintf(json, sizeof(json),
             "{" SMK_MIN
             ",\"SourceAccessConfigurations\":[{\"Type\":\"SERVER_ROOT_CA_CERTIFICATE\","
             "\"URI\":\"%s\"}]}",
             ca);
    assert_int_equal(src_new(f, "kafka://b1:9092", json, SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), SL_ECONFIG);
    assert_non_null(strstr(f->err, "no PEM certificate"));
    src_free(f);
    /* a file that does not exist */
    snprintf(json, sizeof(json),
             "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":\"BASIC_AUTH\","
             "\"URI\":\"file://%s/none.json\"}]}",
             f->dir);
    assert_int_equal(src_new(f, "kafka://b1:9092", json, SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), SL_ECONFIG);
    assert_non_null(strstr(f->err, "SourceAccessConfigurations[0] (BASIC_AUTH): cannot open"));
}

/* Checks that props holds exactly the n pairs of want, in that order. */
static void props_are(const struct sl_strmap *props, const char *const want[][2], size_t n)
{
    for (size_t i = 0; i < props->n && i < n; i++) {
        if (strcmp(props->keys[i], want[i][0]) != 0 || strcmp(props->values[i], want[i][1]) != 0) {
            fail_msg("property %zu is %s, want %s=%s", i, props->keys[i], want[i][0], want[i][1]);
        }
    }
    assert_int_equal(props->n, n);
}

/* The kafka:// sink given props: its producer's configuration has them, and the log none of
 * the secrets. Frees the sink. */
static void sink_uses(struct fx *f, const struct sl_strmap *props, const char *secret)
{
    struct kafka_sink sk = {0};
    struct sl_sink_env env = {.loop = &f->loop, .clock = &f->clk.clock, .inst = "esm-1"};
    env.cluster = props;
    char err[512];
    assert_int_equal(sl_sink_kafka.init(&sk, &env, "kafka://dlq", err, sizeof(err)), 0);
    const rd_kafka_conf_t *pc = rd_kafka_conf(sk.rk);
    for (size_t i = 0; i < props->n; i++) {
        const char *k = props->keys[i];
        if (kafka_is_secret_key(k)) {
            continue; /* librdkafka may have cleared them already */
        }
        char v[8192];
        size_t vn = sizeof(v);
        assert_int_equal(rd_kafka_conf_get(pc, k, v, &vn), RD_KAFKA_CONF_OK);
        if (strcasecmp(v, props->values[i]) != 0) {
            fail_msg("the producer's %s is \"%s\", want \"%s\"", k, v, props->values[i]);
        }
    }
    sl_sink_kafka.fini(&sk);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (secret) {
        log_lacks(f, secret);
    }
}

/* client_props: what another client of the source's cluster needs to connect as the source
 * does (the kafka:// destination's producer), for MSK (bootstrap_servers) and self-managed
 * mappings: bootstrap.servers, the SourceAccessConfigurations' settings and secrets, the
 * security.protocol they imply unless the pass-through says otherwise, and the pass-through's
 * security entries only. The sink applies them all and logs no secret. */
static void test_kafka_client_props(void **state)
{
    struct fx *f = *state;
    char uri[700];
    char json[4096];
    struct sl_strmap props = {0};
    /* MSK, SASL/SCRAM, a pass-through that says SASL_PLAINTEXT */
    write_secret(f, "s.json", "{\"username\":\"alice\",\"password\":\"pw-S3cret\"}", uri,
                 sizeof(uri));
    snprintf(
        json, sizeof(json),
        "{\"Topics\":[\"orders\"],\"bootstrap_servers\":[\"b-1.c:9096\",\"b-2.c:9096\"],"
        "\"SourceAccessConfigurations\":[{\"Type\":\"SASL_SCRAM_512_AUTH\",\"URI\":\"%s\"}],"
        "\"rdkafka\":{\"session.timeout.ms\":\"6000\",\"security.protocol\":\"SASL_PLAINTEXT\","
        "\"ssl.endpoint.identification.algorithm\":\"none\",\"fetch.wait.max.ms\":\"100\","
        "\"enable.ssl.certificate.verification\":\"false\"}}",
        uri);
    assert_int_equal(src_new(f, "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc", json,
                             SL_START_TRIM_HORIZON),
                     0);
    assert_int_equal(src_init(f), 0);
    assert_int_equal(kafka_client_props(f->ctx, &props, f->err, sizeof(f->err)), 0);
    static const char *const msk[][2] = {
        {"bootstrap.servers", "b-1.c:9096,b-2.c:9096"},
        {"sasl.mechanisms", "SCRAM-SHA-512"},
        {"sasl.username", "alice"},
        {"sasl.password", "pw-S3cret"},
        {"security.protocol", "SASL_PLAINTEXT"},
        {"ssl.endpoint.identification.algorithm", "none"},
        {"enable.ssl.certificate.verification", "false"},
    };
    props_are(&props, msk, SL_ARRAY_LEN(msk));
    sink_uses(f, &props, "pw-S3cret");
    sl_strmap_clear(&props, true);
    assert_int_equal(props.n, 0);
    src_free(f);

    /* self-managed, TLS: root CA and client certificate */
    char ca[700];
    char cert[700];
    write_secret(f, "ca.pem", PEM_CERT, ca, sizeof(ca));
    write_secret(f, "client.json",
                 "{\"certificate\":\"" PEM_CERT_JSON "\",\"privateKey\":\"" PEM_KEY_JSON
                 "\",\"privateKeyPassword\":\"keypass-S3\"}",
                 cert, sizeof(cert));
    snprintf(json, sizeof(json),
             "{" SMK_MIN
             ",\"SourceAccessConfigurations\":[{\"Type\":\"SERVER_ROOT_CA_CERTIFICATE\","
             "\"URI\":\"%s\"},{\"Type\":\"VPC_SUBNET\",\"URI\":\"subnet:subnet-1\"},"
             "{\"Type\":\"CLIENT_CERTIFICATE_TLS_AUTH\",\"URI\":\"%s\"}]}",
             ca, cert);
    assert_int_equal(src_new(f, "kafka://b1:9092,b2:9092", json, SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), 0);
    assert_int_equal(kafka_client_props(f->ctx, &props, f->err, sizeof(f->err)), 0);
    static const char *const tls[][2] = {
        {"bootstrap.servers", "b1:9092,b2:9092"}, {"ssl.ca.pem", PEM_CERT},
        {"ssl.certificate.pem", PEM_CERT},        {"ssl.key.pem", PEM_KEY},
        {"ssl.key.password", "keypass-S3"},       {"security.protocol", "SSL"},
    };
    props_are(&props, tls, SL_ARRAY_LEN(tls));
    sl_strmap_clear(&props, true);
    src_free(f);

    /* plaintext: the servers alone */
    assert_int_equal(src_new(f, "kafka://b1:9092", "{" SMK_MIN "}", SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), 0);
    assert_int_equal(kafka_client_props(f->ctx, &props, f->err, sizeof(f->err)), 0);
    static const char *const plain[][2] = {{"bootstrap.servers", "b1:9092,b2:9092"}};
    props_are(&props, plain, SL_ARRAY_LEN(plain));
    sink_uses(f, &props, NULL);
    sl_strmap_clear(&props, true);

    /* the sink: no cluster, and a value librdkafka refuses (named by key, never shown) */
    struct kafka_sink sk = {0};
    struct sl_sink_env env = {.loop = &f->loop, .clock = &f->clk.clock, .inst = "esm-1"};
    char err[512];
    assert_int_equal(sl_sink_kafka.init(&sk, &env, "kafka://dlq", err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "unless destination_options.bootstrap_servers names one"));
    sl_sink_kafka.fini(&sk);
    memset(&sk, 0, sizeof(sk));
    assert_int_equal(sl_strmap_put(&props, "bootstrap.servers", "b1:9092"), 0);
    assert_int_equal(sl_strmap_put(&props, "security.protocol", "NOPE-S3cret"), 0);
    env.cluster = &props;
    assert_int_equal(sl_sink_kafka.init(&sk, &env, "kafka://dlq", err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "security.protocol"));
    assert_null(strstr(err, "NOPE-S3cret"));
    sl_sink_kafka.fini(&sk);
    sl_strmap_clear(&props, true);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until done(arg), for at most ms (scaled for slow runs). On expiry it prints
 * the source's log (its last 8 KiB) before failing, so a failure on a slow machine says where
 * the source was stuck (a group join, a lookup, a commit). */
static void fx_wait(struct fx *f, bool (*done)(void *arg), void *arg, int64_t ms)
{
    if (test_run_until(&f->loop, done, arg, ms)) {
        return;
    }
    char buf[16384];
    FILE *fp = fopen(f->log_path, "r");
    if (fp) {
        fseek(fp, 0, SEEK_END);
        long end = ftell(fp);
        fseek(fp, end > (long)sizeof(buf) - 1 ? end - (long)sizeof(buf) + 1 : 0, SEEK_SET);
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        fprintf(stderr, "--- the source's log, its end ---\n%s--- end of log ---\n", buf);
    }
    fail_msg("condition not reached within %" PRId64 " ms", test_deadline_ms(ms));
}

/* How many lines of the log hold text. */
static int log_count(struct fx *f, const char *text)
{
    char buf[1 << 16];
    FILE *fp = fopen(f->log_path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    int c = 0;
    for (const char *p = buf; (p = strstr(p, text)); p += strlen(text)) {
        c++;
    }
    return c;
}

/* Connection-security failures (see "About connection-security failures"): each kind is
 * recognized (by code, or by librdkafka's words for TLS against a plaintext listener) and logged
 * as one error per minute however often librdkafka reports it, with the count of the others;
 * "all brokers are down" meanwhile is debug; other errors keep their warning. Fake clock. */
static void test_kafka_security_failures_logged_once_a_minute(void **state)
{
    struct fx *f = *state;
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR__AUTHENTICATION, "x"),
                     KAFKA_SECFAIL_AUTH);
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, NULL),
                     KAFKA_SECFAIL_AUTH);
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR__SSL, "x"), KAFKA_SECFAIL_TLS);
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR__TRANSPORT,
                                        "ssl://b:1/bootstrap: SSL handshake failed: "
                                        "Disconnected: connecting to a PLAINTEXT broker "
                                        "listener? (after 0ms in state SSL_HANDSHAKE)"),
                     KAFKA_SECFAIL_TLS);
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR__TRANSPORT,
                                        "b:1/bootstrap: Disconnected while requesting "
                                        "ApiVersion: might be caused by incorrect "
                                        "security.protocol configuration (connecting to a SSL "
                                        "listener?)"),
                     KAFKA_SECFAIL_TLS);
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR__TRANSPORT,
                                        "b:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: "
                                        "Connection refused (after 0ms in state CONNECT)"),
                     KAFKA_SECFAIL_NONE);
    assert_int_equal(kafka_secfail_kind(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "x"),
                     KAFKA_SECFAIL_ACL);

    assert_int_equal(src_new(f, "kafka://b1:9092", "{" SMK_MIN "}", SL_START_TRIM_HORIZON), 0);
    assert_int_equal(src_init(f), 0);
    const char *why = "sasl_plaintext://b1:9092/bootstrap: Failed to initialize SASL "
                      "authentication: SASL Handshake not supported by broker";
    for (int i = 0; i < 100; i++) {
        kafka_error_cb(NULL, RD_KAFKA_RESP_ERR__AUTHENTICATION, why, f->ctx);
        kafka_error_cb(NULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", f->ctx);
        sl_clock_fake_advance(&f->clk, 500); /* 50 s in all */
    }
    assert_int_equal(log_count(f, " error "), 1);
    assert_int_equal(log_count(f, "cannot consume: authentication failed (_AUTHENTICATION: "), 1);
    assert_int_equal(log_count(f, "SASL Handshake not supported by broker); check the "
                                  "credentials and mechanism of SourceAccessConfigurations"),
                     1);
    assert_int_equal(log_count(f, " warn "), 0);
    assert_int_equal(log_count(f, "_ALL_BROKERS_DOWN: 1/1 brokers are down"), 100); /* debug */
    sl_clock_fake_advance(&f->clk, 10000);
    kafka_error_cb(NULL, RD_KAFKA_RESP_ERR__AUTHENTICATION, why, f->ctx);
    assert_int_equal(log_count(f, " error "), 2);
    assert_int_equal(log_count(f, "(99 more like it since the last)"), 1);
    /* a minute without one: "all brokers are down" is a warning again, as other errors are */
    sl_clock_fake_advance(&f->clk, 60000);
    kafka_error_cb(NULL, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, "1/1 brokers are down", f->ctx);
    kafka_error_cb(NULL, RD_KAFKA_RESP_ERR__TRANSPORT, "Connection refused", f->ctx);
    assert_int_equal(log_count(f, " warn "), 2);
}

static void test_kafka_fini_after_failed_init(void **state)
{
    struct fx *f = *state;
    assert_int_equal(src_new(f, "kafka://b1:9092",
                             "{" SMK_MIN ",\"SourceAccessConfigurations\":[{\"Type\":"
                             "\"BASIC_AUTH\",\"URI\":\"env://SL_TEST_NOT_SET_EVER\"}]}",
                             SL_START_TRIM_HORIZON),
                     0);
    assert_int_equal(src_init(f), SL_ECONFIG);
    kafka_fini(f->ctx);
    kafka_fini(f->ctx); /* twice is fine too */
    /* and fini of a context that never saw init */
    struct kafka_ctx *c = sl_calloc(1, sizeof(*c));
    kafka_fini(c);
    sl_free(c);
}

/* ---- the whole path against librdkafka's in-process mock cluster ---- */

struct e2e {
    struct fx *f;
    size_t want;
};

static size_t e2e_fetch_all(struct fx *f)
{
    size_t total = 0;
    for (size_t i = 0; i < f->owner.n; i++) {
        if (f->owner.revoked[i]) {
            continue;
        }
        int r = kafka_fetch(f->ctx, f->owner.parts[i], 1000, 1 << 20);
        assert_true(r >= 0);
        total += sl_recq_count(&f->owner.parts[i]->q);
    }
    return total;
}

static bool e2e_have(void *arg)
{
    struct e2e *e = arg;
    return e2e_fetch_all(e->f) >= e->want;
}

static bool e2e_committed(void *arg)
{
    struct e2e *e = arg;
    struct kafka_ctx *ctx = e->f->ctx;
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i]->acked != ctx->parts[i]->committed) {
            return false;
        }
    }
    return true;
}

static void test_kafka_mock_cluster_consume_ack_commit(void **state)
{
    struct fx *f = *state;
    f->clk.clock = sl_clock_system; /* real time: librdkafka's timers are real */
    assert_int_equal(
        src_new(
            f, "kafka://127.0.0.1:1",
            "{\"Topics\":[\"mt\"],\"rdkafka\":{\"test.mock.num.brokers\":\"3\","
            "\"session.timeout.ms\":\"6000\",\"topic.metadata.refresh.interval.ms\":\"60000\"}}",
            SL_START_TRIM_HORIZON),
        0);
    assert_int_equal(src_init(f), 0);
    assert_int_equal(kafka_start(f->ctx), 0);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->ctx->rk);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "mt", 2, 1), 0);

    char err[256];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    assert_non_null(prod);
    for (int i = 0; i < 10; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("mt"),
                                           RD_KAFKA_V_PARTITION(i % 2),
                                           RD_KAFKA_V_VALUE(v, strlen(v)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_HEADER("h", "\xe9", 1), RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    rd_kafka_destroy(prod);

    struct e2e e = {f, 10};
    fx_wait(f, e2e_have, &e, 20000);
    assert_int_equal(f->owner.n, 2);
    for (size_t i = 0; i < f->owner.n; i++) {
        struct sl_part *part = f->owner.parts[i];
        assert_int_equal(sl_recq_count(&part->q), 5);
        const struct sl_record *last = sl_recq_at(&part->q, 4);
        assert_int_equal(kafka_rec_offset(part, last), 4);
        struct sl_buf b;
        sl_buf_init(&b);
        assert_int_equal(kafka_encode_record(f->ctx, part, sl_recq_at(&part->q, 0), &b), 0);
        assert_non_null(strstr(b.data, ",\"offset\":0,"));
        assert_non_null(strstr(b.data, "\"headers\":[{\"h\":[-23]}]}"));
        sl_buf_fini(&b);
        kafka_ack(f->ctx, part, last);
    }
    fx_wait(f, e2e_committed, &e, 10000);
    for (size_t i = 0; i < f->ctx->n_parts; i++) {
        assert_int_equal(f->ctx->parts[i]->committed, 5);
        assert_true(kafka_lag(f->ctx, f->ctx->parts[i]->part) <= 0 ||
                    kafka_lag(f->ctx, f->ctx->parts[i]->part) == -1);
    }
}

struct pq {
    struct fx *f;
    size_t want;
    unsigned wakes;
};

static bool pq_assigned(void *arg)
{
    struct pq *p = arg;
    return p->f->owner.n == 1 && !kafka_settling(p->f->ctx);
}

/* Fetches 7 records at a time (and one by max_bytes) until p->want are in part->q. */
static bool pq_fetched(void *arg)
{
    struct pq *p = arg;
    struct sl_part *part = p->f->owner.parts[0];
    for (int i = 0; i < 50 && sl_recq_count(&part->q) < p->want; i++) {
        size_t before = sl_recq_count(&part->q);
        int r = kafka_fetch(p->f->ctx, part, i % 5 == 4 ? 1000 : 7, i % 5 == 4 ? 1 : 1 << 20);
        assert_true(r >= 0);
        assert_true(r <= (i % 5 == 4 ? 1 : 7));
        assert_int_equal(sl_recq_count(&part->q), before + (size_t)r);
        if (r == 0) {
            break;
        }
    }
    return sl_recq_count(&part->q) >= p->want;
}

static bool pq_woken(void *arg)
{
    struct pq *p = arg;
    return p->f->owner.wakes > p->wakes;
}

static void pq_produce(rd_kafka_mock_cluster_t *mc, int from, int to)
{
    char err[256];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    assert_non_null(prod);
    for (int i = from; i < to; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("pq"), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE(v, strlen(v)),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    rd_kafka_destroy(prod);
}

static void test_kafka_mock_cluster_partition_queue_fetch(void **state)
{
    struct fx *f = *state;
    f->clk.clock = sl_clock_system;
    assert_int_equal(
        src_new(f, "kafka://127.0.0.1:1",
                "{\"Topics\":[\"pq\"],\"rdkafka\":{\"test.mock.num.brokers\":\"1\","
                "\"session.timeout.ms\":\"6000\",\"topic.metadata.refresh.interval.ms\":\"60000\","
                "\"queued.min.messages\":\"100\"}}",
                SL_START_TRIM_HORIZON),
        0);
    assert_int_equal(src_init(f), 0);
    assert_false(kafka_settling(f->ctx)); /* not started */
    assert_int_equal(kafka_start(f->ctx), 0);
    assert_true(kafka_settling(f->ctx)); /* joining */
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->ctx->rk);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, "pq", 1, 1), 0);
    /* more than a chunk, and more than queued.min.messages: librdkafka holds back the rest */
    pq_produce(mc, 0, 700);

    struct pq p = {f, 0, 0};
    fx_wait(f, pq_assigned, &p, 20000);
    struct kafka_part *kp = f->owner.parts[0]->src;
    assert_non_null(kp->q); /* its own queue: nothing of it goes through the consumer queue */
    p.want = 700;
    fx_wait(f, pq_fetched, &p, 20000);
    struct sl_part *part = f->owner.parts[0];
    assert_int_equal(sl_recq_count(&part->q), 700);
    for (size_t i = 0; i < 700; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        char v[16];
        int n = snprintf(v, sizeof(v), "v%zu", i);
        assert_int_equal(kafka_rec_offset(part, rec), i);
        assert_int_equal(rec->len, (uint32_t)n);
        assert_memory_equal(sl_recq_data(&part->q, rec), v, (size_t)n);
    }
    /* drained: 0, a wake is owed, and comes when more arrive */
    assert_int_equal(kafka_fetch(f->ctx, part, 1000, 1 << 20), 0);
    assert_true(kp->waiting);
    p.wakes = f->owner.wakes;
    pq_produce(mc, 700, 701);
    fx_wait(f, pq_woken, &p, 10000);
    assert_false(kp->waiting);
    assert_int_equal(kafka_fetch(f->ctx, part, 1000, 1 << 20), 1);
    assert_int_equal(kafka_rec_offset(part, sl_recq_at(&part->q, 700)), 700);
    assert_false(kafka_settling(f->ctx));
}

/* ---- the start-offset lookup off the loop ---- */

/* Measures how late a 10 ms repeating timer fires: a stall of the loop shows as a gap. */
struct stall {
    uv_timer_t timer;
    uint64_t last_ns;
    uint64_t max_gap_ns;
    struct fx *f;
    uint64_t lookup_seen_ns; /* when a lookup was first seen in flight, or 0 */
};

static void stall_cb(uv_timer_t *t)
{
    struct stall *st = t->data;
    uint64_t now = uv_hrtime();
    if (st->last_ns && now - st->last_ns > st->max_gap_ns) {
        st->max_gap_ns = now - st->last_ns;
    }
    st->last_ns = now;
    if (!st->lookup_seen_ns && st->f->ctx->lookups) {
        st->lookup_seen_ns = now;
    }
}

static void stall_start(struct stall *st, struct fx *f)
{
    memset(st, 0, sizeof(*st));
    st->f = f;
    assert_int_equal(uv_timer_init(&f->loop, &st->timer), 0);
    st->timer.data = st;
    assert_int_equal(uv_timer_start(&st->timer, stall_cb, 10, 10), 0);
}

static void stall_stop(struct stall *st)
{
    uv_timer_stop(&st->timer);
    uv_close((uv_handle_t *)&st->timer, NULL);
}

static bool slow_assigned(void *arg)
{
    struct fx *f = arg;
    return f->owner.n == 1;
}

static bool slow_lookup_pending(void *arg)
{
    struct fx *f = arg;
    return f->ctx->lookups != NULL;
}

static bool slow_lookup_over(void *arg)
{
    struct fx *f = arg;
    return f->ctx->lookups == NULL;
}

#define SLOW_OFFSET_FETCH_MS 2500

/* Commits offset off of topic-0 for group gid, as another client of the group would. */
static void
mock_commit(rd_kafka_mock_cluster_t *mc, const char *gid, const char *topic, int64_t off)
{
    char err[256];
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(cc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(cc, "group.id", gid, err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = off;
    assert_int_equal(rd_kafka_commit(c, l, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
}

/* Produces n messages to topic-0. */
static void mock_produce(rd_kafka_mock_cluster_t *mc, const char *topic, int n)
{
    char err[256];
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(pc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    assert_non_null(prod);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                           RD_KAFKA_V_VALUE("v", 1),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_END),
                         0);
    }
    assert_int_equal(rd_kafka_flush(prod, 10000), 0);
    rd_kafka_destroy(prod);
}

/* Starts a consumer (group "g-<topic>", StartingPosition sp) of one partition on an in-process
 * mock cluster of one broker that holds n_msgs messages, whose next OffsetFetch answer comes
 * fetch_delay_ms late and next OffsetCommit answer commit_delay_ms late (0: on time), with the
 * group's committed offset `committed` to find (-1: none). The cluster belongs to a handle of
 * its own (f->mock_rk), so that the offset can be committed before the consumer joins the group
 * (the broker refuses a simple commit to a group that is rebalancing). */
static rd_kafka_mock_cluster_t *mock_start(struct fx *f,
                                           const char *topic,
                                           int fetch_delay_ms,
                                           int64_t committed,
                                           int sp,
                                           int n_msgs,
                                           int commit_delay_ms)
{
    char err[256];
    char json[1024];
    char gid[300];
    f->clk.clock = sl_clock_system; /* real time: librdkafka's timers are real */
    rd_kafka_conf_t *mconf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(mconf, "test.mock.num.brokers", "1", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof(err));
    assert_non_null(f->mock_rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->mock_rk);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, topic, 1, 1), 0);
    if (n_msgs > 0) {
        mock_produce(mc, topic, n_msgs);
    }
    snprintf(gid, sizeof(gid), "g-%s", topic);
    if (committed >= 0) {
        mock_commit(mc, gid, topic, committed);
    }
    if (fetch_delay_ms > 0) {
        assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mc, 1, 9 /* OffsetFetch */, 1,
                                                                      RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                      fetch_delay_ms),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    if (commit_delay_ms > 0) {
        assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mc, 1, 8 /* OffsetCommit */,
                                                                      1, RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                      commit_delay_ms),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    char arn[300];
    snprintf(arn, sizeof(arn), "kafka://%s", rd_kafka_mock_cluster_bootstraps(mc));
    snprintf(json, sizeof(json),
             "{\"Topics\":[\"%s\"],\"SelfManagedKafkaEventSourceConfig\":{\"ConsumerGroupId\":"
             "\"%s\"},\"rdkafka\":{\"session.timeout.ms\":\"6000\",\"debug\":\"cgrp\","
             "\"topic.metadata.refresh.interval.ms\":\"60000\"}}",
             topic, gid);
    assert_int_equal(src_new(f, arn, json, sp), 0);
    if (sp == SL_START_AT_TIMESTAMP) {
        f->env.starting_position_ts_ms = 1545084650987; /* before every message */
    }
    assert_int_equal(src_init(f), 0);
    assert_int_equal(kafka_start(f->ctx), 0);
    return mc;
}

/* A consumer of a group with the committed offset 3 (see mock_start). */
static rd_kafka_mock_cluster_t *slow_start(struct fx *f, const char *topic, int fetch_delay_ms)
{
    return mock_start(f, topic, fetch_delay_ms, 3, SL_START_TRIM_HORIZON, 0, 0);
}

/* A slow group coordinator: the committed offsets arrive SLOW_OFFSET_FETCH_MS after the
 * assignment. The loop keeps turning all that time (a 10 ms timer is never late by more than a
 * fraction of it; with rd_kafka_committed on the loop it was late by the whole delay), and the
 * partition is assigned afterwards at the committed offset. */
static void test_kafka_slow_offset_fetch_does_not_block_loop(void **state)
{
    struct fx *f = *state;
    slow_start(f, "slow", SLOW_OFFSET_FETCH_MS);
    struct stall st;
    stall_start(&st, f);
    fx_wait(f, slow_assigned, f, 30000);
    uint64_t assigned_ns = uv_hrtime();
    stall_stop(&st);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    fprintf(stderr, "slow OffsetFetch: longest loop stall %.1f ms, lookup %.1f ms\n",
            (double)st.max_gap_ns / 1e6,
            st.lookup_seen_ns ? (double)(assigned_ns - st.lookup_seen_ns) / 1e6 : -1.0);
    if (st.max_gap_ns >= 1000 * 1000000ull) {
        fail_msg("the loop stalled %.1f ms while the committed offsets were looked up",
                 (double)st.max_gap_ns / 1e6);
    }
    /* the delay was in effect: the lookup was seen in flight for most of it */
    assert_true(st.lookup_seen_ns != 0);
    assert_true(assigned_ns - st.lookup_seen_ns >= (SLOW_OFFSET_FETCH_MS - 500) * 1000000ull);
    struct kafka_part *kp = f->owner.parts[0]->src;
    assert_int_equal(kp->start, 3);
    assert_int_equal(kp->committed, 3);
}

static bool log_has(struct fx *f, const char *text)
{
    char buf[1 << 16];
    FILE *fp = fopen(f->log_path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return strstr(buf, text) != NULL;
}

/* A revoke that arrives while the committed offsets of an assignment are being looked up: the
 * lookup's partitions are not assigned when it completes, neither to the mapping nor to
 * librdkafka; an assignment that follows the revoke gets its own lookup and is made.
 *
 * About the revoke: librdkafka 2.0.2 itself holds a rebalance back while it waits for the
 * application's assign call (tried: a heartbeat answered UNKNOWN_MEMBER_ID then logs "rebalance
 * (EAGER) already in progress, skipping in state up (join-state wait-assign-call)" and revokes
 * only after the assignment), so the revoke is delivered here by calling the rebalance callback
 * as librdkafka would. */
static void test_kafka_revoke_during_lookup_assigns_nothing(void **state)
{
    struct fx *f = *state;
    slow_start(f, "stale", SLOW_OFFSET_FETCH_MS);
    fx_wait(f, slow_lookup_pending, f, 30000);
    struct kafka_ctx *ctx = f->ctx;
    struct kafka_lookup *stale = ctx->lookups;
    assert_int_equal(stale->parts->cnt, 1);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "stale", 0);
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, l, ctx);
    assert_ptr_equal(ctx->lookups, stale); /* still running */
    fx_wait(f, slow_lookup_over, f, 30000);
    /* nothing was assigned: no partition for the mapping, none at librdkafka */
    assert_int_equal(f->owner.n, 0);
    assert_int_equal(ctx->n_parts, 0);
    rd_kafka_topic_partition_list_t *now = NULL;
    assert_int_equal(rd_kafka_assignment(ctx->rk, &now), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(now->cnt, 0);
    rd_kafka_topic_partition_list_destroy(now);
    assert_true(log_has(f, "dropping an assignment of 1 partition(s) revoked while"));
    assert_false(log_has(f, "stale-0: assigned"));

    /* A slow lookup, its revoke, and a new assignment of the same partition while the first
     * lookup still runs: only the new one is made, once, at the committed offset. */
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->mock_rk);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mc, 1, 9 /* OffsetFetch */, 1,
                                                                  RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                  SLOW_OFFSET_FETCH_MS),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, l, ctx);
    assert_non_null(ctx->lookups);
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, l, ctx);
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, l, ctx);
    assert_non_null(ctx->lookups->next); /* two in flight */
    fx_wait(f, slow_lookup_over, f, 30000);
    assert_int_equal(f->owner.n, 1);
    assert_int_equal(ctx->n_parts, 1);
    assert_int_equal(ctx->parts[0]->start, 3);
    assert_int_equal(rd_kafka_assignment(ctx->rk, &now), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(now->cnt, 1);
    assert_int_equal(now->elems[0].offset, 3);
    rd_kafka_topic_partition_list_destroy(now);
    rd_kafka_topic_partition_list_destroy(l);
}

/* fini while a lookup runs: it waits for the lookup (which uses rk), and the lookup's
 * completion, run afterwards on the loop, only frees it. */
static void test_kafka_fini_during_lookup(void **state)
{
    struct fx *f = *state;
    slow_start(f, "finid", SLOW_OFFSET_FETCH_MS);
    fx_wait(f, slow_lookup_pending, f, 30000);
    src_free(f); /* kafka_fini; the teardown's uv_loop_close checks nothing is left */
    assert_false(log_has(f, "finid-0: assigned"));
}

/* ---- the commit on revoke off the loop ---- */

#define SLOW_COMMIT_MS 2500

/* A revoke as librdkafka delivers it, from the loop (a timer, 100 ms on, so that the stall
 * timer is already running): first the newest partition's offset up to ack is acknowledged,
 * then the rebalance callback runs, then (reassign) an assignment of the same partition follows
 * at once. */
struct rv {
    struct fx *f;
    uv_timer_t timer;
    rd_kafka_topic_partition_list_t *l;
    int64_t ack;
    bool reassign;
    bool deferred; /* the assignment was kept for after the commit */
    uint64_t revoked_ns, over_ns;
    int assigned_while_pending; /* the fewest partitions librdkafka had while it ran, or -1 */
};

static bool rv_pending(const struct kafka_ctx *ctx)
{
    return ctx->revoking.offsets != NULL;
}

static void rv_cb(uv_timer_t *t)
{
    struct rv *r = t->data;
    struct kafka_ctx *ctx = r->f->ctx;
    struct sl_part *part = r->f->owner.parts[r->f->owner.n - 1];
    struct sl_record rec = {.pos_len = sizeof(uint64_t)};
    const uint64_t off = (uint64_t)r->ack - 1;
    memcpy(rec.pos_inline, &off, sizeof(off));
    kafka_ack(ctx, part, &rec);
    r->revoked_ns = uv_hrtime();
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, r->l, ctx);
    if (r->reassign) {
        kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, r->l, ctx);
        r->deferred = ctx->deferred != NULL && ctx->lookups == NULL;
    }
}

static void rv_sample(struct rv *r)
{
    rd_kafka_topic_partition_list_t *now = NULL;
    assert_int_equal(rd_kafka_assignment(r->f->ctx->rk, &now), RD_KAFKA_RESP_ERR_NO_ERROR);
    if (r->assigned_while_pending < 0 || now->cnt < r->assigned_while_pending) {
        r->assigned_while_pending = now->cnt;
    }
    rd_kafka_topic_partition_list_destroy(now);
}

static bool rv_seen_pending(void *arg)
{
    struct rv *r = arg;
    return r->revoked_ns && rv_pending(r->f->ctx);
}

static bool rv_over(void *arg)
{
    struct rv *r = arg;
    if (!r->revoked_ns) {
        return false;
    }
    if (rv_pending(r->f->ctx)) {
        rv_sample(r);
        return false;
    }
    r->over_ns = uv_hrtime();
    return true;
}

static void rv_start(struct rv *r, struct fx *f, const char *topic, int64_t ack, bool reassign)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    r->ack = ack;
    r->reassign = reassign;
    r->assigned_while_pending = -1;
    r->l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(r->l, topic, 0);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->mock_rk);
    assert_int_equal(rd_kafka_mock_broker_push_request_error_rtts(mc, 1, 8 /* OffsetCommit */, 1,
                                                                  RD_KAFKA_RESP_ERR_NO_ERROR,
                                                                  SLOW_COMMIT_MS),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(uv_timer_init(&f->loop, &r->timer), 0);
    r->timer.data = r;
    assert_int_equal(uv_timer_start(&r->timer, rv_cb, 100, 0), 0);
}

static void rv_stop(struct rv *r)
{
    uv_close((uv_handle_t *)&r->timer, NULL);
    rd_kafka_topic_partition_list_destroy(r->l);
    uv_run(&r->f->loop, UV_RUN_NOWAIT); /* the close, while r is still there */
}

/* The group's committed offset of topic-0, asked by another client of the group. */
static int64_t group_committed(struct fx *f, const char *topic)
{
    char err[256];
    char gid[300];
    snprintf(gid, sizeof(gid), "g-%s", topic);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(f->mock_rk);
    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(cc, "bootstrap.servers",
                                       rd_kafka_mock_cluster_bootstraps(mc), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(cc, "group.id", gid, err, sizeof(err)), RD_KAFKA_CONF_OK);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0);
    assert_int_equal(rd_kafka_committed(c, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(c);
    return off;
}

struct rv_want {
    struct fx *f;
    size_t n; /* partitions the mapping was given in all */
};

static bool rv_assigned(void *arg)
{
    struct rv_want *w = arg;
    return w->f->owner.n == w->n && w->f->ctx->lookups == NULL;
}

/* The source's state of the newest partition the mapping was given. */
static struct kafka_part *rv_newest(struct fx *f)
{
    return f->owner.parts[f->owner.n - 1]->src;
}

/* A slow group coordinator: the answer to the commit on revoke comes SLOW_COMMIT_MS late. The
 * loop keeps turning all that time (a 10 ms timer is never late by more than a fraction of it;
 * with the commit waited for on the loop it was late by the whole delay); the partition stays
 * assigned at librdkafka until the commit answered, so it is given up only once its
 * acknowledged offset is committed, and nothing is left over. Then the same with an assignment
 * of the partition right behind the revoke: it waits for the commit (so the revoke's
 * rd_kafka_assign(NULL) cannot undo it) and its lookup finds the offset just committed.
 * The rebalances are delivered by calling the callback as librdkafka would (see
 * test_kafka_revoke_during_lookup_assigns_nothing; a real one, another member joining, makes
 * the mock refuse the commit). */
static void test_kafka_slow_commit_on_revoke_does_not_block_loop(void **state)
{
    struct fx *f = *state;
    slow_start(f, "rvk", 0);
    struct rv_want w = {f, 1};
    fx_wait(f, rv_assigned, &w, 30000);
    struct kafka_ctx *ctx = f->ctx;
    assert_int_equal(rv_newest(f)->committed, 3);

    struct rv r;
    struct stall st;
    rv_start(&r, f, "rvk", 5, false);
    stall_start(&st, f);
    fx_wait(f, rv_over, &r, 30000);
    stall_stop(&st);
    fprintf(stderr, "slow OffsetCommit on revoke: longest loop stall %.1f ms, commit %.1f ms\n",
            (double)st.max_gap_ns / 1e6, (double)(r.over_ns - r.revoked_ns) / 1e6);
    if (st.max_gap_ns >= 1000 * 1000000ull) {
        fail_msg("the loop stalled %.1f ms while revoked partitions were committed",
                 (double)st.max_gap_ns / 1e6);
    }
    /* the delay was in effect, and the partition was given up only after it */
    assert_true(r.over_ns - r.revoked_ns >= (SLOW_COMMIT_MS - 500) * 1000000ull);
    assert_int_equal(r.assigned_while_pending, 1);
    assert_true(f->owner.revoked[0]);
    rd_kafka_topic_partition_list_t *now = NULL;
    assert_int_equal(rd_kafka_assignment(ctx->rk, &now), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(now->cnt, 0);
    rd_kafka_topic_partition_list_destroy(now);
    assert_true(!ctx->leftover || ctx->leftover->cnt == 0);
    assert_int_equal(group_committed(f, "rvk"), 5);

    /* assigned again, at 5; acknowledged up to 7, then revoked and at once assigned again */
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, r.l, ctx);
    w.n = 2;
    fx_wait(f, rv_assigned, &w, 30000);
    assert_int_equal(rv_newest(f)->start, 5);
    struct rv r2; /* another timer: r's closes on the loop */
    rv_start(&r2, f, "rvk", 7, true);
    fx_wait(f, rv_over, &r2, 30000);
    assert_true(r2.deferred);
    assert_int_equal(r2.assigned_while_pending, 1);
    w.n = 3;
    fx_wait(f, rv_assigned, &w, 30000);
    assert_true(f->owner.revoked[1]);
    assert_false(f->owner.revoked[2]);
    assert_int_equal(rv_newest(f)->start, 7);
    assert_false(rv_newest(f)->revoked);
    assert_int_equal(rd_kafka_assignment(ctx->rk, &now), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(now->cnt, 1);
    assert_int_equal(now->elems[0].offset, 7);
    rd_kafka_topic_partition_list_destroy(now);
    assert_int_equal(group_committed(f, "rvk"), 7);
    rv_stop(&r);
    rv_stop(&r2);
}

/* fini while the commit on revoke is in flight: it waits for the answer (bounded), commits the
 * revoked partition no second time, and leaks nothing (the teardown's uv_loop_close; valgrind). */
static void test_kafka_fini_during_revoke_commit(void **state)
{
    struct fx *f = *state;
    slow_start(f, "rvfini", 0);
    struct rv_want w = {f, 1};
    fx_wait(f, rv_assigned, &w, 30000);
    struct rv r;
    rv_start(&r, f, "rvfini", 5, false);
    fx_wait(f, rv_seen_pending, &r, 30000);
    rv_stop(&r);
    src_free(f);
    assert_int_equal(log_count(f, "committed 1 partition(s) given up in a rebalance"), 1);
    assert_int_equal(log_count(f, "committed 1 partition(s)"), 1); /* not again by fini */
    assert_int_equal(group_committed(f, "rvfini"), 5);
}

/* ---- a new group's start committed at once ---- */

static bool fresh_settled(void *arg)
{
    struct fx *f = arg;
    return f->owner.n == 1 && !kafka_settling(f->ctx);
}

/* A new group (no committed offset) on a partition that holds 4 messages, with StartingPosition
 * sp, and a coordinator whose answer to the first OffsetCommit comes commit_delay_ms late: the
 * partition starts at the offset sp resolves to (want), which is committed at once; the source
 * stays settling (so --until-idle cannot call it idle and exit) until the broker acknowledged
 * that commit, and the group then has it. */
static void fresh_start(struct fx *f, const char *topic, int sp, int64_t want, int commit_delay_ms)
{
    mock_start(f, topic, 0, -1, sp, 4, commit_delay_ms);
    fx_wait(f, slow_assigned, f, 30000);
    uint64_t assigned_ns = uv_hrtime();
    struct kafka_ctx *ctx = f->ctx;
    struct kafka_part *kp = f->owner.parts[0]->src;
    assert_int_equal(kp->start, want);
    assert_int_equal(kp->acked, want);
    if (commit_delay_ms > 0) {
        assert_int_equal(kp->committed, -1);
        assert_true(kafka_settling(ctx));
    }
    rd_kafka_topic_partition_list_t *now = NULL;
    assert_int_equal(rd_kafka_assignment(ctx->rk, &now), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(now->cnt, 1);
    assert_int_equal(now->elems[0].offset, want); /* read from there, not a logical offset */
    rd_kafka_topic_partition_list_destroy(now);
    fx_wait(f, fresh_settled, f, 30000);
    uint64_t settled_ns = uv_hrtime();
    fprintf(stderr, "%s: start %" PRId64 " committed %.1f ms after the assignment\n", topic, want,
            (double)(settled_ns - assigned_ns) / 1e6);
    assert_true(settled_ns - assigned_ns >= (uint64_t)(commit_delay_ms * 4 / 5) * 1000000ull);
    assert_int_equal(kp->committed, want);
    assert_int_equal(group_committed(f, topic), want);
}

static void test_kafka_new_group_latest_start_committed_before_settled(void **state)
{
    fresh_start(*state, "fresh-latest", SL_START_LATEST, 4, SLOW_COMMIT_MS);
}

static void test_kafka_new_group_trim_horizon_start_committed(void **state)
{
    fresh_start(*state, "fresh-trim", SL_START_TRIM_HORIZON, 0, 0);
}

/* The mock answers every lookup by time with "none" (-1): the start is the end, looked up in a
 * second call. */
static void test_kafka_new_group_at_timestamp_start_committed(void **state)
{
    fresh_start(*state, "fresh-ts", SL_START_AT_TIMESTAMP, 4, 0);
}

/* A revoke while a new group's start is looked up: the stale lookup commits nothing (the
 * partition may be another member's by then); the assignment that follows commits its own. */
static void test_kafka_new_group_revoked_during_lookup_commits_nothing(void **state)
{
    struct fx *f = *state;
    mock_start(f, "fresh-stale", SLOW_OFFSET_FETCH_MS, -1, SL_START_LATEST, 4, 0);
    fx_wait(f, slow_lookup_pending, f, 30000);
    struct kafka_ctx *ctx = f->ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "fresh-stale", 0);
    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS, l, ctx);
    fx_wait(f, slow_lookup_over, f, 30000);
    assert_int_equal(ctx->n_parts, 0);
    assert_false(ctx->commit_inflight);
    assert_int_equal(group_committed(f, "fresh-stale"), RD_KAFKA_OFFSET_INVALID);
    assert_false(log_has(f, "committing it"));

    kafka_rebalance_cb(ctx->rk, RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS, l, ctx);
    fx_wait(f, fresh_settled, f, 30000);
    assert_int_equal(ctx->parts[0]->start, 4);
    assert_int_equal(ctx->parts[0]->committed, 4);
    assert_int_equal(group_committed(f, "fresh-stale"), 4);
    rd_kafka_topic_partition_list_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kafka_event_exact_bytes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_event_null_key_tombstone_no_headers, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_event_msk_and_log_append_time, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_item_id_filter_doc_batch_info, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_fetch_from_stage_limits, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_options_valid, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_options_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_sac_scram_from_file, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_sac_basic_env_and_plaintext_override, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_sac_tls, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_batch_spans_partitions, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_client_props, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_security_failures_logged_once_a_minute, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_fini_after_failed_init, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_mock_cluster_consume_ack_commit, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_mock_cluster_partition_queue_fetch, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_slow_offset_fetch_does_not_block_loop, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_revoke_during_lookup_assigns_nothing, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_fini_during_lookup, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_slow_commit_on_revoke_does_not_block_loop,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_fini_during_revoke_commit, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_new_group_latest_start_committed_before_settled,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_new_group_trim_horizon_start_committed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_new_group_at_timestamp_start_committed, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_kafka_new_group_revoked_during_lookup_commits_nothing,
                                        fx_setup, fx_teardown),
    };
    if (getenv("SLUICE_TEST_FILTER")) { /* e.g. "test_kafka_slow_*", to repeat a few */
        cmocka_set_test_filter(getenv("SLUICE_TEST_FILTER"));
    }
    return cmocka_run_group_tests_name("kafka", tests, NULL, NULL);
}

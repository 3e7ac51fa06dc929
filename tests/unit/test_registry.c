/* SPDX-License-Identifier: Apache-2.0 */
/* test_registry.c: the registry is what the build has. The sources and sinks registered are
 * exactly the generated sl_adapters.h's lists, in their order, each once, each with the ABI of
 * its interface and an option table; `sluice version`'s lists say the same; an adapter the build
 * left out (meson -Dkafka=disabled) is recognised by the URIs it serves, case aside, and one
 * built in never is. The sources are handed out completed: no optional operation absent, the
 * defaults doing what the core did for an absent one. Run in both kinds of build (CI builds both).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "function.h"
#include "registry.h"
#include "sink.h"
#include "sl_adapters.h"
#include "source.h"

#define NAME(name) #name,
static const char *const want_sources[] = {SL_SOURCES(NAME)};
static const char *const want_sinks[] = {SL_SINKS(NAME)};
#undef NAME

static void test_registry_sources_are_the_built_list(void **state)
{
    (void)state;
    size_t n = 0;
    const struct sl_source_ops *const *all = sl_source_all(&n);
    assert_int_equal(n, SL_ARRAY_LEN(want_sources));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(all[i]->name, want_sources[i]);
        assert_int_equal(all[i]->abi, SL_SOURCE_ABI);
        assert_non_null(all[i]->opts);
        assert_non_null(all[i]->scheme);
        assert_ptr_equal(sl_source_for_arn(all[i]->scheme), all[i]);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(all[i]->name, all[j]->name);
        }
    }
}

static void test_registry_sinks_are_the_built_list(void **state)
{
    (void)state;
    size_t n = 0;
    const struct sl_sink_ops *const *all = sl_sink_all(&n);
    assert_int_equal(n, SL_ARRAY_LEN(want_sinks));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(all[i]->name, want_sinks[i]);
        assert_int_equal(all[i]->abi, SL_SINK_ABI);
    }
}

static void test_registry_version_lists(void **state)
{
    (void)state;
#if SL_HAVE_KAFKA && SL_HAVE_KINESIS
    assert_string_equal(sl_registry_sources_built(),
                        SL_HAVE_REDIS ? "file sqs kafka redis kinesis" : "file sqs kafka kinesis");
    assert_string_equal(sl_registry_sinks_built(),
                        SL_HAVE_REDIS ? "file kafka redis sqs http" : "file kafka sqs http");
#elif SL_HAVE_KINESIS
    assert_string_equal(sl_registry_sources_built(),
                        SL_HAVE_REDIS ? "file sqs redis kinesis" : "file sqs kinesis");
    assert_string_equal(sl_registry_sinks_built(),
                        SL_HAVE_REDIS ? "file redis sqs http" : "file sqs http");
#elif SL_HAVE_KAFKA
    assert_string_equal(sl_registry_sources_built(),
                        SL_HAVE_REDIS ? "file sqs kafka redis" : "file sqs kafka");
    assert_string_equal(sl_registry_sinks_built(),
                        SL_HAVE_REDIS ? "file kafka redis sqs http" : "file kafka sqs http");
#else
    assert_string_equal(sl_registry_sources_built(), SL_HAVE_REDIS ? "file sqs redis" : "file sqs");
    assert_string_equal(sl_registry_sinks_built(),
                        SL_HAVE_REDIS ? "file redis sqs http" : "file sqs http");
#endif
}

static void test_registry_left_out(void **state)
{
    (void)state;
    static const char *const kafka_uris[] = {"kafka://dlq", "KAFKA://dlq",
                                             "kafka://b-1:9092,b-2:9092",
                                             "arn:aws:kafka:us-east-1:1:cluster/c/abc"};
    for (size_t i = 0; i < SL_ARRAY_LEN(kafka_uris); i++) {
        const struct sl_registry_feature *f = sl_registry_left_out(kafka_uris[i]);
#if SL_HAVE_KAFKA
        assert_null(f);
#else
        assert_non_null(f);
        assert_string_equal(f->option, "kafka");
        assert_string_equal(f->title, "Kafka");
        assert_string_equal(f->library, "librdkafka");
        assert_false(f->built);
#endif
    }
    const struct sl_registry_feature *kin = sl_registry_left_out("arn:aws:kinesis:x");
#if SL_HAVE_KINESIS
    assert_null(kin);
#else
    assert_non_null(kin);
    assert_string_equal(kin->option, "kinesis");
    assert_false(kin->built);
#endif
    static const char *const others[] = {"file:///tmp/x", "http://h/x", "", "kafka:/x",
                                         "arn:aws:sqs:us-east-1:1:q"};
    for (size_t i = 0; i < SL_ARRAY_LEN(others); i++) {
        assert_null(sl_registry_left_out(others[i]));
    }
}

/* Every source the registry hands out is its adapter's ops with each absent optional operation
 * filled by a default, and each one the adapter gave kept; the capabilities say which of
 * filter_doc and client_props the adapter gave. */
#define GIVEN(name) &sl_source_##name,
static const struct sl_source_ops *const given_sources[] = {SL_SOURCES(GIVEN)};
#undef GIVEN

#define SLOT_KEPT_OR_FILLED(slot)                     \
    do {                                              \
        assert_non_null(all[i]->slot);                \
        if (given->slot) {                            \
            assert_true(all[i]->slot == given->slot); \
        }                                             \
    } while (0)

#define EVENT_KEPT_OR_FILLED(slot)                                  \
    do {                                                            \
        assert_non_null(all[i]->event->slot);                       \
        if (given->event->slot) {                                   \
            assert_true(all[i]->event->slot == given->event->slot); \
        }                                                           \
    } while (0)

static void test_registry_sources_are_completed(void **state)
{
    (void)state;
    size_t n = 0;
    const struct sl_source_ops *const *all = sl_source_all(&n);
    assert_int_equal(n, SL_ARRAY_LEN(given_sources));
    for (size_t i = 0; i < n; i++) {
        const struct sl_source_ops *given = given_sources[i];
        assert_ptr_not_equal(all[i], given); /* a completed copy */
        assert_string_equal(all[i]->name, given->name);
        assert_ptr_equal(sl_source_all(&n)[i], all[i]); /* filled once */
        /* mandatory */
        assert_non_null(all[i]->check);
        assert_non_null(all[i]->init);
        assert_non_null(all[i]->start);
        assert_non_null(all[i]->fetch);
        assert_non_null(all[i]->encode_record);
        assert_non_null(all[i]->fini);
        /* positions are the adapter's bytes: the operations on them are its own */
        assert_non_null(given->compare_pos);
        assert_non_null(given->format_pos);
        assert_non_null(given->format_item_id);
        /* optional: filled when absent */
        SLOT_KEPT_OR_FILLED(record_key);
        SLOT_KEPT_OR_FILLED(filter_doc);
        SLOT_KEPT_OR_FILLED(settling);
        SLOT_KEPT_OR_FILLED(lag);
        SLOT_KEPT_OR_FILLED(ack);
        SLOT_KEPT_OR_FILLED(part_release);
        SLOT_KEPT_OR_FILLED(client_props);
        SLOT_KEPT_OR_FILLED(stop);
        SLOT_KEPT_OR_FILLED(arn_forms);
        SLOT_KEPT_OR_FILLED(arn_from_mapping);
        SLOT_KEPT_OR_FILLED(check_destination);
        SLOT_KEPT_OR_FILLED(read_item_id);
        SLOT_KEPT_OR_FILLED(queue_ack);
        SLOT_KEPT_OR_FILLED(queue_release);
        SLOT_KEPT_OR_FILLED(queue_hold);
        SLOT_KEPT_OR_FILLED(queue_idle);
        SLOT_KEPT_OR_FILLED(queue_limits);
        /* a queue source gives its own acknowledgement, release and lease extension */
        if (all[i]->caps->model == SL_DELIVERY_QUEUE) {
            assert_non_null(given->queue_ack);
            assert_non_null(given->queue_release);
            assert_non_null(given->queue_hold);
        }
        assert_true(all[i]->filters == (given->filter_doc != NULL));
        assert_true(all[i]->shares_cluster == (given->client_props != NULL));
        /* the event shape: a completed copy of the adapter's, consistent with its caps */
        assert_non_null(given->event);
        assert_ptr_not_equal(all[i]->event, given->event);
        assert_string_equal(all[i]->event->name, given->event->name);
        assert_non_null(all[i]->event->sep);
        EVENT_KEPT_OR_FILLED(encode_open);
        EVENT_KEPT_OR_FILLED(encode_close);
        EVENT_KEPT_OR_FILLED(encode_next_part);
        EVENT_KEPT_OR_FILLED(encode_batch_info);
        EVENT_KEPT_OR_FILLED(encode_record_info);
        EVENT_KEPT_OR_FILLED(encode_source_arn);
        EVENT_KEPT_OR_FILLED(filter_payload_fields);
        assert_true(all[i]->event->filter_payload_mismatch_ignored ==
                    given->event->filter_payload_mismatch_ignored);
        assert_true(!all[i]->caps->batch_spans_partitions || given->event->encode_next_part);
        assert_true(given->event->encode_open || given->event->open);
        assert_true(given->event->encode_close || given->event->close);
        assert_non_null(all[i]->caps);
        assert_true(all[i]->caps->batch_size_default >= 1 &&
                    all[i]->caps->batch_size_default <= all[i]->caps->batch_size_max);
        assert_true(all[i]->caps->lag_unit < SL_LAG_UNIT_COUNT);
    }
    /* The sources built in filter; only Kafka's shares its cluster. */
    for (size_t i = 0; i < n; i++) {
        assert_true(all[i]->filters);
        assert_true(all[i]->shares_cluster == (strcmp(all[i]->name, "kafka") == 0));
    }
}

#undef SLOT_KEPT_OR_FILLED
#undef EVENT_KEPT_OR_FILLED

/* The required position operations of a bare source (one byte; never called here). */
static int bare_compare_pos(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)ctx;
    (void)a_len;
    (void)b_len;
    return memcmp(a, b, 1);
}

static int
bare_format_pos(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    (void)part;
    return snprintf(buf, len, "%u", sl_recq_pos(NULL, rec)[0]) < (int)len ? 0 : SL_EINVAL;
}

/* The defaults do what the core did when a slot was NULL. */
static void test_registry_defaults_behave_as_absent(void **state)
{
    (void)state;
    struct sl_source_ops ops = {
        .abi = SL_SOURCE_ABI,
        .name = "bare",
        .scheme = "bare://",
        .compare_pos = bare_compare_pos,
        .format_pos = bare_format_pos,
        .format_item_id = bare_format_pos,
        .event =
            &(const struct sl_event_format){.name = "bare", .open = "[", .sep = ",", .close = "]"},
    };
    struct sl_event_format ev;
    sl_source_ops_complete(&ops, &ev);
    assert_ptr_equal(ops.event, &ev);
    /* caps: a stream with AWS's stream defaults */
    assert_non_null(ops.caps);
    assert_int_equal(ops.caps->model, SL_DELIVERY_STREAM);
    assert_int_equal(ops.caps->batch_size_default, 100);
    assert_int_equal(ops.caps->batch_size_max, 10000);
    assert_string_equal(sl_lag_unit_name(ops.caps->lag_unit), "records");
    assert_string_equal(sl_lag_unit_name(SL_LAG_BYTES), "bytes");
    assert_string_equal(sl_lag_unit_name(SL_LAG_MS), "ms");
    struct sl_part part = {.name = "p-0"};
    struct sl_record a = {.pos_len = 1, .pos_inline = {7}};
    struct sl_record b = {.pos_len = 1, .pos_inline = {9}};

    /* record_key: one (empty) key for all, so a per-record destination writes a null key */
    const char *key = "x";
    assert_int_equal(ops.record_key(NULL, &part, &a, &key), 0);
    const char *key_b = "y";
    assert_int_equal(ops.record_key(NULL, &part, &b, &key_b), 0);
    assert_string_equal(key, key_b);
    /* cannot filter: no payload fields, the capability says so */
    assert_false(ops.filters);
    assert_non_null(ops.event->filter_payload_fields);
    assert_null(ops.event->filter_payload_fields[0]);
    assert_false(ops.event->filter_payload_mismatch_ignored);
    /* the event shape's: encode_batch_info, the generic BatchInfo failrec wrote without one */
    struct sl_buf out;
    sl_buf_init(&out);
    struct sl_batch_run runs[] = {{&part, &a, &b, 2}, {&part, &b, &b, 1}};
    assert_int_equal(ops.event->encode_batch_info(&ops, NULL, runs, 2, &out), 0);
    assert_string_equal(out.data, "\"BatchInfo\":{\"partition\":\"p-0\",\"batchSize\":3}");
    /* encode_record_info: encode_batch_info of the one record */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops.event->encode_record_info(&ops, NULL, &part, &a, &out), 0);
    assert_string_equal(out.data, "\"BatchInfo\":{\"partition\":\"p-0\",\"batchSize\":1}");
    /* encode_open/encode_close: the constant opening and closing */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops.event->encode_open(&ops, NULL, &part, &out), 0);
    assert_int_equal(ops.event->encode_close(&ops, NULL, &part, &out), 0);
    assert_string_equal(out.data, "[]");
    /* encode_next_part: this shape cannot span partitions */
    assert_int_equal(ops.event->encode_next_part(&ops, NULL, &part, &out), SL_EINVAL);
    /* encode_source_arn: the scheme and the partition's name */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops.event->encode_source_arn(&ops, NULL, &part, &out), 0);
    assert_string_equal(out.data, "bare://p-0");
    sl_buf_fini(&out);
    /* never settling; lag unknown */
    assert_false(ops.settling(NULL));
    assert_int_equal(ops.lag(NULL, &part), -1);
    /* no cluster to share: nothing added, and the capability says so */
    struct sl_strmap props = {0};
    char err[64] = "";
    assert_int_equal(ops.client_props(NULL, &props, err, sizeof(err)), 0);
    assert_int_equal(props.n, 0);
    assert_string_equal(err, "");
    assert_false(ops.shares_cluster);
    /* nothing to acknowledge, release or stop */
    ops.ack(NULL, &part, &a);
    ops.part_release(NULL, &part);
    ops.stop(NULL);
    /* named only by EventSourceArn, as its scheme */
    assert_string_equal(ops.arn_forms, "bare://");
    char *arn = (char *)"x";
    const char *from = NULL;
    assert_int_equal(ops.arn_from_mapping(NULL, &arn, &from), 0);
    assert_null(arn);
    /* no cluster a destination can share: refused, the destination shown redacted */
    char why[256] = "";
    assert_int_equal(ops.check_destination(true, NULL, "kafka://u:pw@dlq", why, sizeof(why)),
                     SL_ECONFIG);
    assert_non_null(strstr(why, "no cluster a destination can share"));
    assert_null(strstr(why, "pw"));
    /* only strings identify records */
    cJSON *id = cJSON_Parse("{\"partition\":\"t-0\",\"offset\":5}");
    char buf[64];
    assert_null(ops.read_item_id(id, buf, sizeof(buf)));
    cJSON_Delete(id);
    /* queue model (never called for a stream): an acknowledgement is refused, not dropped; a
     * release or hold does nothing, leaving the lease to run out; nothing is pending */
    uint64_t leases[] = {1, 2};
    assert_int_equal(ops.queue_ack(NULL, &part, leases, 2), SL_EINVAL);
    assert_int_equal(ops.queue_release(NULL, &part, leases, 2, SL_QUEUE_KEEP_VISIBILITY), 0);
    assert_int_equal(ops.queue_hold(NULL, &part, leases, 2, 1000), 0);
    assert_true(ops.queue_idle(NULL));
    /* what the mapping knows without asking stays */
    struct sl_queue_limits lim = {.batch_size_max = 10000, .visibility_ms = 0};
    ops.queue_limits(NULL, &lim);
    assert_int_equal(lim.batch_size_max, 10000);
    assert_int_equal(lim.visibility_ms, 0);
    /* a queue record's lease is its 8-byte position */
    struct sl_record q = {.pos_len = sizeof(uint64_t)};
    const uint64_t lease = 7;
    memcpy(q.pos_inline, &lease, sizeof(lease));
    assert_int_equal(sl_queue_rec_lease(&q), 7);
    assert_string_equal(sl_queue_report_name(SL_QUEUE_ACKED), "acked");
    assert_string_equal(sl_queue_report_name(SL_QUEUE_ACK_FAILED), "ack_failed");
    assert_string_equal(sl_queue_report_name(SL_QUEUE_LEASE_LOST), "lease_lost");
}

/* The rules of an adapter the build may leave out that the core needs read the same in every
 * build: a self-managed Kafka mapping's ARN. */
static void test_registry_rules_of_every_build(void **state)
{
    (void)state;
    cJSON *m = cJSON_Parse("{\"SelfManagedEventSource\":{\"Endpoints\":"
                           "{\"KAFKA_BOOTSTRAP_SERVERS\":[\"a:9092\",\"b:9092\"]}}}");
    char *arn = NULL;
    const char *key = NULL;
    assert_int_equal(sl_registry_arn_from_mapping(m, &arn, &key), 0);
    assert_string_equal(arn, "kafka://a:9092,b:9092");
    assert_string_equal(key, "SelfManagedEventSource");
    sl_free(arn);
    cJSON_Delete(m);
    m = cJSON_Parse("{\"FunctionName\":\"f\"}");
    assert_int_equal(sl_registry_arn_from_mapping(m, &arn, &key), 0);
    assert_null(arn);
    cJSON_Delete(m);
    /* the destinations listed are those built */
    assert_non_null(strstr(sl_registry_destinations(), "file:///dir, http(s)://..."));
    assert_true((strstr(sl_registry_destinations(), "kafka://TOPIC") != NULL) == SL_HAVE_KAFKA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_sources_are_the_built_list),
        cmocka_unit_test(test_registry_sinks_are_the_built_list),
        cmocka_unit_test(test_registry_version_lists),
        cmocka_unit_test(test_registry_left_out),
        cmocka_unit_test(test_registry_sources_are_completed),
        cmocka_unit_test(test_registry_defaults_behave_as_absent),
        cmocka_unit_test(test_registry_rules_of_every_build),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}

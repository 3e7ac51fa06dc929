/* SPDX-License-Identifier: Apache-2.0 */
/* test_invoker.c: AWS's partial batch response contract and the verdict for every outcome:
 * which answers count as attempts, when a batch is split, retried, or exhausted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "invoker.h"
#include "kafka/kafka_mapping.h"
#include "source.h"

/* A source whose identifiers are strings only, and one that also reads Kafka's object form. */
static const char *strings_only(const cJSON *id, char *buf, size_t len)
{
    (void)id;
    (void)buf;
    (void)len;
    return NULL;
}
static const struct sl_source_ops plain_src = {.name = "plain", .read_item_id = strings_only};
static const struct sl_source_ops kafka_src = {.name = "kafka",
                                               .read_item_id = kafka_mapping_read_item_id};

static const char *const ids[] = {"100", "200", "300", "400", "500"};

static struct sl_partial parse(const char *body)
{
    struct sl_partial p;
    sl_invoker_parse_partial(&plain_src, body, body ? strlen(body) : 0, ids, 5, NULL, &p);
    return p;
}

static void test_invoker_partial_success_forms(void **state)
{
    (void)state;
    const char *ok[] = {NULL,
                        "",
                        "  \n",
                        "null",
                        "\"\"",
                        "{}",
                        "{\"batchItemFailures\":[]}",
                        "{\"batchItemFailures\":null}",
                        "{\"state\":{\"n\":1}}"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct sl_partial p = parse(ok[i]);
        assert_int_equal(p.kind, SL_PARTIAL_ALL_OK);
        assert_string_equal(p.unknown_key, "");
    }
}

static void test_invoker_partial_misspelled_key_is_success_with_warning(void **state)
{
    (void)state;
    struct sl_partial p = parse("{\"batchItemFailure\":[{\"itemIdentifier\":\"200\"}]}");
    assert_int_equal(p.kind, SL_PARTIAL_ALL_OK);
    assert_string_equal(p.unknown_key, "batchItemFailure");
    p = parse("{\"statusCode\":200,\"body\":\"ok\"}");
    assert_int_equal(p.kind, SL_PARTIAL_ALL_OK);
    assert_string_equal(p.unknown_key, "statusCode");
}

static void test_invoker_partial_invalid_forms(void **state)
{
    (void)state;
    const char *bad[] = {
        "{not json",
        "[1,2]",
        "42",
        "\"text\"",
        "{\"batchItemFailures\":\"300\"}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":null}]}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":300}]}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"999\"}]}",
        "{\"batchItemFailures\":[{\"foo\":\"300\"}]}",
        "{\"batchItemFailures\":[\"300\"]}",
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"200\"},{\"itemIdentifier\":\"nope\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sl_partial p = parse(bad[i]);
        if (p.kind != SL_PARTIAL_INVALID) {
            print_error("case %zu (%s) was not invalid\n", i, bad[i]);
        }
        assert_int_equal(p.kind, SL_PARTIAL_INVALID);
        assert_true(p.detail[0] != '\0');
    }
}

static void test_invoker_partial_lowest_failed_wins(void **state)
{
    (void)state;
    struct sl_partial p = parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"400\"},"
                                "{\"itemIdentifier\":\"200\"},{\"itemIdentifier\":\"500\"}]}");
    assert_int_equal(p.kind, SL_PARTIAL_SOME_FAILED);
    assert_int_equal(p.lowest, 1);
    assert_int_equal(p.n_failed, 3);
    p = parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"100\"}]}");
    assert_int_equal(p.lowest, 0);
}

static void test_invoker_partial_deep_and_binary_bodies(void **state)
{
    (void)state;
    static char deep[200001];
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    deep[200000] = '\0';
    assert_int_equal(parse(deep).kind, SL_PARTIAL_INVALID);
    const char bin[] = {'{', '\0', '\x01', (char)0xff, '}'};
    struct sl_partial p;
    sl_invoker_parse_partial(&plain_src, bin, sizeof(bin), ids, 5, NULL, &p);
    assert_int_equal(p.kind, SL_PARTIAL_INVALID);
}

static void test_invoker_partial_many_ids(void **state)
{
    (void)state;
    static char idbuf[10000][8];
    static const char *many[10000];
    for (int i = 0; i < 10000; i++) {
        (void)snprintf(idbuf[i], sizeof(idbuf[i]), "%d", i * 7);
        many[i] = idbuf[i];
    }
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"69993\"},"
                       "{\"itemIdentifier\":\"35000\"}]}";
    struct sl_partial p;
    sl_invoker_parse_partial(&plain_src, body, strlen(body), many, 10000, NULL, &p);
    assert_int_equal(p.kind, SL_PARTIAL_SOME_FAILED);
    assert_int_equal(p.lowest, 5000);
}

static void test_invoker_partial_kafka_object_form(void **state)
{
    (void)state;
    static const char *const kids[] = {"orders-0-15", "orders-0-16", "orders-0-17"};
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":"
                       "\"orders-0\",\"offset\":16}},{\"itemIdentifier\":\"orders-0-17\"}]}";
    struct sl_partial p;
    bool failed[3] = {true, false, false};
    sl_invoker_parse_partial(&kafka_src, body, strlen(body), kids, 3, failed, &p);
    assert_int_equal(p.kind, SL_PARTIAL_SOME_FAILED);
    assert_int_equal(p.lowest, 1);
    assert_int_equal(p.n_failed, 2);
    /* Each listed record is flagged, and only those (the array is cleared first). */
    assert_false(failed[0]);
    assert_true(failed[1]);
    assert_true(failed[2]);
    body = "{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-0\","
           "\"offset\":\"15\"}}]}";
    sl_invoker_parse_partial(&kafka_src, body, strlen(body), kids, 3, NULL, &p);
    assert_int_equal(p.kind, SL_PARTIAL_SOME_FAILED);
    assert_int_equal(p.lowest, 0);
    body = "{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"orders-1\","
           "\"offset\":15}}]}";
    sl_invoker_parse_partial(&kafka_src, body, strlen(body), kids, 3, NULL, &p);
    assert_int_equal(p.kind, SL_PARTIAL_INVALID);
    body = "{\"batchItemFailures\":[{\"itemIdentifier\":{\"offset\":15}}]}";
    sl_invoker_parse_partial(&kafka_src, body, strlen(body), kids, 3, NULL, &p);
    assert_int_equal(p.kind, SL_PARTIAL_INVALID);
}

static struct sl_verdict judge(const struct sl_invoker_policy *pol,
                               enum sl_outcome o,
                               const struct sl_partial *partial,
                               size_t n,
                               unsigned attempts)
{
    struct sl_invoke_result res = {.outcome = o, .retry_after_ms = -1};
    struct sl_verdict v;
    sl_invoker_judge(pol, &res, partial, n, attempts, &v);
    return v;
}

static void test_invoker_counts_only_function_errors(void **state)
{
    (void)state;
    struct sl_invoker_policy pol = {.max_retry_attempts = 2};
    enum sl_outcome free_outcomes[] = {SL_OUTCOME_THROTTLE, SL_OUTCOME_SERVICE_ERROR,
                                       SL_OUTCOME_TRANSPORT_ERROR, SL_OUTCOME_RESOURCE_EXHAUSTED};
    for (size_t i = 0; i < sizeof(free_outcomes) / sizeof(free_outcomes[0]); i++) {
        struct sl_verdict v = judge(&pol, free_outcomes[i], NULL, 5, 1000);
        assert_int_equal(v.action, SL_VERDICT_RETRY);
        assert_false(v.counted);
        assert_false(v.function_error);
    }
    /* N = 2 allows 3 invocations: the first two failures retry, the third exhausts. */
    assert_int_equal(judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 5, 0).action, SL_VERDICT_RETRY);
    assert_int_equal(judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 5, 1).action, SL_VERDICT_RETRY);
    struct sl_verdict v = judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 5, 2);
    assert_int_equal(v.action, SL_VERDICT_EXHAUSTED);
    assert_true(v.counted);
    assert_true(v.function_error);
    assert_int_equal(v.done_prefix, 0);
    pol.max_retry_attempts = -1;
    assert_int_equal(judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 5, 100000).action,
                     SL_VERDICT_RETRY);
    pol.max_retry_attempts = 0;
    assert_int_equal(judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 1, 0).action,
                     SL_VERDICT_EXHAUSTED);
}

/* A function that ran past its timeout failed, as on AWS ("Task timed out", Unhandled): the
 * timeout counts, exhausts the batch past MaximumRetryAttempts, and bisects. */
static void test_invoker_timeout_counts_as_function_error(void **state)
{
    (void)state;
    struct sl_invoker_policy pol = {.max_retry_attempts = 1};
    struct sl_verdict v = judge(&pol, SL_OUTCOME_TIMEOUT, NULL, 5, 0);
    assert_int_equal(v.action, SL_VERDICT_RETRY);
    assert_true(v.counted);
    assert_true(v.function_error);
    v = judge(&pol, SL_OUTCOME_TIMEOUT, NULL, 5, 1);
    assert_int_equal(v.action, SL_VERDICT_EXHAUSTED);
    assert_true(v.counted);
    assert_true(v.function_error);
    pol.bisect = true;
    v = judge(&pol, SL_OUTCOME_TIMEOUT, NULL, 8, 0);
    assert_int_equal(v.action, SL_VERDICT_BISECT);
    assert_false(v.counted);
    /* Running out of descriptors is sluice's problem: never counted, never bisected. */
    v = judge(&pol, SL_OUTCOME_RESOURCE_EXHAUSTED, NULL, 8, 1);
    assert_int_equal(v.action, SL_VERDICT_RETRY);
    assert_false(v.counted);
}

static void test_invoker_bisect_splits_without_counting(void **state)
{
    (void)state;
    struct sl_invoker_policy pol = {.max_retry_attempts = 0, .bisect = true};
    struct sl_verdict v = judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 8, 0);
    assert_int_equal(v.action, SL_VERDICT_BISECT);
    assert_false(v.counted);
    v = judge(&pol, SL_OUTCOME_FUNCTION_ERROR, NULL, 1, 0);
    assert_int_equal(v.action, SL_VERDICT_EXHAUSTED);
    /* Throttles never bisect. */
    assert_int_equal(judge(&pol, SL_OUTCOME_THROTTLE, NULL, 8, 0).action, SL_VERDICT_RETRY);
}

static void test_invoker_partial_verdicts(void **state)
{
    (void)state;
    struct sl_invoker_policy pol = {.max_retry_attempts = 1, .report_item_failures = true};
    struct sl_partial p = parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"300\"}]}");
    struct sl_verdict v = judge(&pol, SL_OUTCOME_SUCCESS, &p, 5, 0);
    assert_int_equal(v.action, SL_VERDICT_RETRY);
    assert_int_equal(v.done_prefix, 2);
    assert_true(v.counted);
    assert_false(v.function_error);
    v = judge(&pol, SL_OUTCOME_SUCCESS, &p, 5, 1);
    assert_int_equal(v.action, SL_VERDICT_EXHAUSTED);
    assert_int_equal(v.done_prefix, 2);
    assert_false(v.function_error);
    /* Invalid responses fail the whole batch, as a function error would. */
    p = parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}");
    v = judge(&pol, SL_OUTCOME_SUCCESS, &p, 5, 0);
    assert_int_equal(v.action, SL_VERDICT_RETRY);
    assert_int_equal(v.done_prefix, 0);
    assert_true(v.counted);
    /* A partial failure is not bisected even when bisection is on. */
    pol.bisect = true;
    p = parse("{\"batchItemFailures\":[{\"itemIdentifier\":\"300\"}]}");
    v = judge(&pol, SL_OUTCOME_SUCCESS, &p, 5, 0);
    assert_int_equal(v.action, SL_VERDICT_RETRY);
    /* Without ReportBatchItemFailures the body is ignored. */
    pol.report_item_failures = false;
    v = judge(&pol, SL_OUTCOME_SUCCESS, &p, 5, 0);
    assert_int_equal(v.action, SL_VERDICT_DONE);
    assert_int_equal(v.done_prefix, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invoker_partial_success_forms),
        cmocka_unit_test(test_invoker_partial_misspelled_key_is_success_with_warning),
        cmocka_unit_test(test_invoker_partial_invalid_forms),
        cmocka_unit_test(test_invoker_partial_lowest_failed_wins),
        cmocka_unit_test(test_invoker_partial_deep_and_binary_bodies),
        cmocka_unit_test(test_invoker_partial_many_ids),
        cmocka_unit_test(test_invoker_partial_kafka_object_form),
        cmocka_unit_test(test_invoker_counts_only_function_errors),
        cmocka_unit_test(test_invoker_timeout_counts_as_function_error),
        cmocka_unit_test(test_invoker_bisect_splits_without_counting),
        cmocka_unit_test(test_invoker_partial_verdicts),
    };
    return cmocka_run_group_tests_name("invoker", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_failrec.c: the invocation record on-failure destinations receive, byte for byte, for
 * each condition: a full responseContext, none at all (RecordAgeExceeded) and null
 * (MaximumPayloadSizeExceeded), with and without the payload. The source is a fake whose batch
 * info is a fixed member. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "failrec.h"
#include "partition.h"
#include "source.h"

/* The fake's records have one-byte positions (outside any queue: no arena to read). */
static int fake_batch_info(const struct sl_source_ops *ops,
                           void *ctx,
                           const struct sl_batch_run *runs,
                           size_t n_runs,
                           struct sl_buf *out)
{
    (void)ops;
    (void)ctx;
    assert_int_equal(n_runs, 1);
    return sl_buf_printf(out, "\"KinesisBatchInfo\":{\"start\":%llu,\"end\":%llu,\"n\":%zu}",
                         (unsigned long long)sl_recq_pos(NULL, runs[0].first)[0],
                         (unsigned long long)sl_recq_pos(NULL, runs[0].last)[0], runs[0].n);
}

/* Completed with the defaults in main(), as the registry does. */
static struct sl_event_format fake_event = {
    .name = "fake",
    .open = "{\"Records\":[",
    .sep = ",",
    .close = "]}",
    .encode_batch_info = fake_batch_info,
};

static const struct sl_source_ops fake_ops = {
    .abi = SL_SOURCE_ABI,
    .name = "fake",
    .event = &fake_event,
};

static void test_failrec_retries_exhausted_with_payload(void **state)
{
    (void)state;
    struct sl_record a = {.pos_len = 1, .pos_inline = {10}};
    struct sl_record b = {.pos_len = 1, .pos_inline = {30}};
    struct sl_failrec f = {
        .condition = SL_FAILREC_RETRIES_EXHAUSTED,
        .function_arn = "arn:aws:lambda:us-east-1:000000000000:function:f",
        .invoke_count = 3,
        .response = SL_FAILREC_RESPONSE_OBJECT,
        .status = 200,
        .function_error = true,
        .now_ms = 1573691886021,
        .request_id = {0x0123456789abcdefULL, 0xfedcba9876543210ULL},
    };
    struct sl_buf out;
    sl_buf_init(&out);
    const char *payload = "{\"Records\":[]}";
    assert_int_equal(sl_failrec_build(&out, &f, &fake_ops, NULL,
                                      &(struct sl_batch_run){NULL, &a, &b, 2}, 1, payload,
                                      strlen(payload)),
                     0);
    assert_string_equal(
        out.data,
        "{\"requestContext\":{\"requestId\":\"01234567-89ab-4def-bedc-ba9876543210\","
        "\"functionArn\":\"arn:aws:lambda:us-east-1:000000000000:function:f\","
        "\"condition\":\"RetryAttemptsExhausted\",\"approximateInvokeCount\":3},"
        "\"responseContext\":{\"statusCode\":200,\"executedVersion\":\"$LATEST\","
        "\"functionError\":\"Unhandled\"},\"version\":\"1.0\","
        "\"timestamp\":\"2019-11-14T00:38:06.021Z\","
        "\"KinesisBatchInfo\":{\"start\":10,\"end\":30,\"n\":2},\"payload\":{\"Records\":[]}}");
    sl_buf_fini(&out);
}

static void test_failrec_partial_exhaustion_has_null_function_error(void **state)
{
    (void)state;
    struct sl_record a = {.pos_len = 1, .pos_inline = {5}};
    struct sl_failrec f = {
        .condition = SL_FAILREC_RETRIES_EXHAUSTED,
        .function_arn = "fn",
        .invoke_count = 1,
        .response = SL_FAILREC_RESPONSE_OBJECT,
        .status = 200,
        .function_error = false,
        .now_ms = 0,
    };
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_failrec_build(&out, &f, &fake_ops, NULL,
                                      &(struct sl_batch_run){NULL, &a, &a, 1}, 1, NULL, 0),
                     0);
    assert_non_null(strstr(out.data, "\"functionError\":null}"));
    assert_null(strstr(out.data, "payload"));
    assert_non_null(strstr(out.data, "\"timestamp\":\"1970-01-01T00:00:00.000Z\""));
    sl_buf_fini(&out);
}

static void test_failrec_record_age_has_no_response_context(void **state)
{
    (void)state;
    struct sl_record a = {.pos_len = 1, .pos_inline = {5}};
    struct sl_failrec f = {
        .condition = SL_FAILREC_RECORD_AGE,
        .function_arn = "fn",
        .invoke_count = 0,
        .response = SL_FAILREC_RESPONSE_OMIT,
        .now_ms = 0,
    };
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_failrec_build(&out, &f, &fake_ops, NULL,
                                      &(struct sl_batch_run){NULL, &a, &a, 1}, 1, NULL, 0),
                     0);
    assert_null(strstr(out.data, "responseContext"));
    assert_non_null(strstr(out.data, "\"condition\":\"RecordAgeExceeded\""));
    sl_buf_fini(&out);
}

static void test_failrec_payload_too_large_has_null_response(void **state)
{
    (void)state;
    struct sl_record a = {.pos_len = 1, .pos_inline = {5}};
    struct sl_failrec f = {
        .condition = SL_FAILREC_PAYLOAD_TOO_LARGE,
        .function_arn = "fn",
        .response = SL_FAILREC_RESPONSE_NULL,
        .now_ms = 0,
    };
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_failrec_build(&out, &f, &fake_ops, NULL,
                                      &(struct sl_batch_run){NULL, &a, &a, 1}, 1, NULL, 0),
                     0);
    assert_non_null(strstr(out.data, ",\"responseContext\":null,\"version\""));
    sl_buf_fini(&out);
}

int main(void)
{
    sl_event_format_complete(&fake_event);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failrec_retries_exhausted_with_payload),
        cmocka_unit_test(test_failrec_partial_exhaustion_has_null_function_error),
        cmocka_unit_test(test_failrec_record_age_has_no_response_context),
        cmocka_unit_test(test_failrec_payload_too_large_has_null_response),
    };
    return cmocka_run_group_tests_name("failrec", tests, NULL, NULL);
}

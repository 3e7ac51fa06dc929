/* SPDX-License-Identifier: Apache-2.0 */
/* test_event_sqs.c: the SQS event (event_sqs.h): one ReceiveMessage message written as AWS's
 * SQS record, byte for byte (fields, order, the message attributes' lower-cased keys, null
 * md5OfMessageAttributes without attributes), and its filter document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "alloc.h"
#include "event_sqs.h"

static char *encode(const char *message_json, const char *body)
{
    struct sl_json_scan m;
    sl_json_scan_init(&m);
    assert_int_equal(sl_json_scan_parse(&m, message_json, strlen(message_json)), 0);
    struct sl_buf head, tail, out;
    sl_buf_init(&head);
    sl_buf_init(&tail);
    sl_buf_init(&out);
    assert_int_equal(sl_event_sqs_prepare(&m, SL_JSON_SCAN_ROOT,
                                          "arn:aws:sqs:us-east-2:123456789012:q", "us-east-2",
                                          &head, &tail),
                     0);
    assert_int_equal(
        sl_event_sqs_encode(&out, head.data, head.len, body, strlen(body), tail.data, tail.len), 0);
    cJSON *doc =
        sl_event_sqs_filter_doc(head.data, head.len, body, strlen(body), tail.data, tail.len);
    assert_non_null(doc);
    const cJSON *b = cJSON_GetObjectItem(doc, "body");
    if (strcmp(body, "{\"k\":1}") == 0) {
        assert_true(cJSON_IsObject(b)); /* a JSON body is parsed */
        assert_int_equal(cJSON_GetObjectItem(b, "k")->valueint, 1);
    } else {
        assert_true(cJSON_IsString(b));
        assert_string_equal(b->valuestring, body);
    }
    assert_string_equal(cJSON_GetObjectItem(doc, "eventSource")->valuestring, "aws:sqs");
    cJSON_Delete(doc);
    sl_json_scan_fini(&m);
    sl_buf_fini(&head);
    sl_buf_fini(&tail);
    return sl_buf_steal(&out);
}

static void test_event_sqs_record(void **state)
{
    (void)state;
    char *got = encode(
        "{\"MessageId\":\"id-1\",\"ReceiptHandle\":\"AQEB\\\"x\",\"MD5OfBody\":\"abc\","
        "\"Body\":\"ignored: the record's bytes are the body\","
        "\"Attributes\":{\"SentTimestamp\":\"1545082649183\",\"ApproximateReceiveCount\":\"1\","
        "\"MessageGroupId\":\"g\"},"
        "\"MD5OfMessageAttributes\":\"def\","
        "\"MessageAttributes\":{\"s\":{\"DataType\":\"String\",\"StringValue\":\"x\"},"
        "\"b\":{\"DataType\":\"Binary.png\",\"BinaryValue\":\"AAE=\"}}}",
        "{\"k\":1}");
    assert_string_equal(
        got, "{\"messageId\":\"id-1\",\"receiptHandle\":\"AQEB\\\"x\",\"body\":\"{\\\"k\\\":1}\","
             "\"attributes\":{\"SentTimestamp\":\"1545082649183\",\"ApproximateReceiveCount\":"
             "\"1\",\"MessageGroupId\":\"g\"},\"messageAttributes\":{\"s\":{\"stringValue\":\"x\","
             "\"stringListValues\":[],\"binaryListValues\":[],\"dataType\":\"String\"},\"b\":{"
             "\"binaryValue\":\"AAE=\",\"stringListValues\":[],\"binaryListValues\":[],"
             "\"dataType\":\"Binary.png\"}},\"md5OfMessageAttributes\":\"def\",\"md5OfBody\":"
             "\"abc\",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":"
             "\"arn:aws:sqs:us-east-2:123456789012:q\",\"awsRegion\":\"us-east-2\"}");
    sl_free(got);
}

static void test_event_sqs_no_attributes(void **state)
{
    (void)state;
    char *got =
        encode("{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"MD5OfBody\":\"5d\"}", "plain");
    assert_string_equal(got,
                        "{\"messageId\":\"m\",\"receiptHandle\":\"r\",\"body\":\"plain\","
                        "\"attributes\":{},\"messageAttributes\":{},"
                        "\"md5OfMessageAttributes\":null,\"md5OfBody\":\"5d\","
                        "\"eventSource\":\"aws:sqs\",\"eventSourceARN\":"
                        "\"arn:aws:sqs:us-east-2:123456789012:q\",\"awsRegion\":\"us-east-2\"}");
    sl_free(got);
}

static void test_event_sqs_needs_id_and_handle(void **state)
{
    (void)state;
    const char *text = "{\"MessageId\":\"m\"}";
    struct sl_json_scan m;
    sl_json_scan_init(&m);
    assert_int_equal(sl_json_scan_parse(&m, text, strlen(text)), 0);
    struct sl_buf head, tail;
    sl_buf_init(&head);
    sl_buf_init(&tail);
    assert_int_equal(sl_event_sqs_prepare(&m, SL_JSON_SCAN_ROOT, "a", "r", &head, &tail),
                     SL_EPROTO);
    sl_buf_fini(&head);
    sl_buf_fini(&tail);
    sl_json_scan_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_sqs_record),
        cmocka_unit_test(test_event_sqs_no_attributes),
        cmocka_unit_test(test_event_sqs_needs_id_and_handle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_event_kinesis.c: the shared Kinesis-shaped event on its own, byte for byte: a record as
 * AWS documents it (esm.md §4.1), escaping of every text it carries, sequence numbers far past
 * 64 bits kept as text, the filter document (data parsed as JSON when it is JSON), and the
 * KinesisBatchInfo of a destination record; and the shape as an adapter picks it
 * (sl_event_kinesis) with positions that are 56-digit sequence numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "event_kinesis.h"
#include "json.h"
#include "partition.h"
#include "source.h"

/* A 56-digit sequence number, as Kinesis gives them (esm.md §4.1's example). */
#define BIG_SEQ "49590338271490256608559692538361571095921575989136588898"

static const struct sl_event_kinesis_part kinesis_part = {
    .event_source = "aws:kinesis",
    .event_name = "aws:kinesis:record",
    .arn = "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream",
    .region = "us-east-1",
    .key = "1",
    .id_prefix = "shardId-000000000006:",
};

static struct sl_event_kinesis_rec rec_of(const char *seq, const char *data, int64_t arrival_ms)
{
    return (struct sl_event_kinesis_rec){
        .seq = seq,
        .seq_len = strlen(seq),
        .data = data,
        .len = strlen(data),
        .arrival_ms = arrival_ms,
        .id = seq,
        .id_len = strlen(seq),
    };
}

static void test_event_kinesis_record_exact(void **state)
{
    (void)state;
    struct sl_event_kinesis_tmpl t;
    assert_int_equal(sl_event_kinesis_tmpl_init(&t, &kinesis_part), 0);
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_buf_puts(&out, sl_event_kinesis.open), 0);
    struct sl_event_kinesis_rec rec = rec_of(BIG_SEQ, "Hello, this is a test.", 1545084650987);
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &out), 0);
    assert_int_equal(sl_buf_puts(&out, sl_event_kinesis.sep), 0);
    rec = rec_of("1", "", 0); /* an empty payload, the epoch */
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &out), 0);
    assert_int_equal(sl_buf_puts(&out, sl_event_kinesis.close), 0);
    assert_string_equal(
        out.data,
        "{\"Records\":["
        "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"1\",\"sequenceNumber\":"
        "\"" BIG_SEQ "\",\"data\":\"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==\","
        "\"approximateArrivalTimestamp\":1545084650.987},\"eventSource\":\"aws:kinesis\","
        "\"eventVersion\":\"1.0\",\"eventID\":\"shardId-000000000006:" BIG_SEQ "\","
        "\"eventName\":\"aws:kinesis:record\",\"eventSourceARN\":"
        "\"arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream\",\"awsRegion\":"
        "\"us-east-1\"},"
        "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"1\",\"sequenceNumber\":"
        "\"1\",\"data\":\"\",\"approximateArrivalTimestamp\":0.000},\"eventSource\":"
        "\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":\"shardId-000000000006:1\","
        "\"eventName\":\"aws:kinesis:record\",\"eventSourceARN\":"
        "\"arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream\",\"awsRegion\":"
        "\"us-east-1\"}]}");
    cJSON *doc = cJSON_Parse(out.data);
    assert_non_null(doc);
    cJSON_Delete(doc);
    sl_buf_fini(&out);
    sl_event_kinesis_tmpl_fini(&t);
    sl_event_kinesis_tmpl_fini(&t); /* safe twice */
}

/* text_plain skips the check of seq and id, not their bytes: the same event either way. */
static void test_event_kinesis_text_plain_same_bytes(void **state)
{
    (void)state;
    struct sl_event_kinesis_tmpl t;
    assert_int_equal(sl_event_kinesis_tmpl_init(&t, &kinesis_part), 0);
    struct sl_buf a, b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    struct sl_event_kinesis_rec rec = rec_of(BIG_SEQ, "payload", 1545084650987);
    rec.key = "own key";
    rec.key_len = 7;
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &a), 0);
    rec.text_plain = true;
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &b), 0);
    assert_string_equal(a.data, b.data);
    assert_non_null(strstr(a.data, "\"partitionKey\":\"own key\",\"sequenceNumber\":\"" BIG_SEQ));
    sl_buf_fini(&a);
    sl_buf_fini(&b);
    sl_event_kinesis_tmpl_fini(&t);
}

/* Every text is escaped where it lands: the template's (once, when built) and the record's. */
static void test_event_kinesis_escaping(void **state)
{
    (void)state;
    const struct sl_event_kinesis_part p = {
        .event_source = "src\"q",
        .event_name = "name\\b",
        .arn = "file:///tmp/a \"b\"\n.log",
        .region = NULL,
        .key = "/tmp/a \"b\"\n.log",
        .id_prefix = "/tmp/a \"b\"\n.log:",
    };
    struct sl_event_kinesis_tmpl t;
    assert_int_equal(sl_event_kinesis_tmpl_init(&t, &p), 0);
    struct sl_buf out;
    sl_buf_init(&out);
    struct sl_event_kinesis_rec rec = rec_of("7", "x", 1000);
    rec.id = "3:7";
    rec.id_len = 3;
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &out), 0);
    assert_string_equal(
        out.data,
        "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"/tmp/a "
        "\\\"b\\\"\\n.log\","
        "\"sequenceNumber\":\"7\",\"data\":\"eA==\",\"approximateArrivalTimestamp\":1.000},"
        "\"eventSource\":\"src\\\"q\",\"eventVersion\":\"1.0\",\"eventID\":"
        "\"/tmp/a \\\"b\\\"\\n.log:3:7\",\"eventName\":\"name\\\\b\",\"eventSourceARN\":"
        "\"file:///tmp/a \\\"b\\\"\\n.log\",\"awsRegion\":\"\"}");

    /* a record's own key, and a sequence number and id that need escaping */
    sl_buf_truncate(&out, 0);
    const char key[] = "k\"\\\t\x01\xc3\xa9";
    rec = rec_of("1-\"2\"", "", 0);
    rec.key = key;
    rec.key_len = sizeof(key) - 1;
    rec.id = "a\\b";
    rec.id_len = 3;
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &out), 0);
    assert_string_equal(
        out.data, "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":"
                  "\"k\\\"\\\\\\t\\u0001\xc3\xa9\",\"sequenceNumber\":\"1-\\\"2\\\"\","
                  "\"data\":\"\",\"approximateArrivalTimestamp\":0.000},\"eventSource\":"
                  "\"src\\\"q\",\"eventVersion\":\"1.0\",\"eventID\":"
                  "\"/tmp/a \\\"b\\\"\\n.log:a\\\\b\",\"eventName\":\"name\\\\b\","
                  "\"eventSourceARN\":\"file:///tmp/a \\\"b\\\"\\n.log\",\"awsRegion\":\"\"}");
    cJSON *doc = cJSON_Parse(out.data);
    assert_non_null(doc);
    cJSON *k = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "kinesis"), "partitionKey");
    assert_string_equal(cJSON_GetStringValue(k), "k\"\\\t\x01\xc3\xa9");
    cJSON_Delete(doc);
    sl_buf_fini(&out);
    sl_event_kinesis_tmpl_fini(&t);
}

static char *doc_text(const struct sl_event_kinesis_tmpl *t, const struct sl_event_kinesis_rec *rec)
{
    cJSON *doc = sl_event_kinesis_filter_doc(t, rec);
    assert_non_null(doc);
    char *s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    assert_non_null(s);
    return s;
}

static void expect_doc(const struct sl_event_kinesis_tmpl *t,
                       const struct sl_event_kinesis_rec *rec,
                       const char *want)
{
    char *s = doc_text(t, rec);
    assert_string_equal(s, want);
    cJSON_free(s);
}

static void test_event_kinesis_filter_doc(void **state)
{
    (void)state;
    struct sl_event_kinesis_tmpl t;
    assert_int_equal(sl_event_kinesis_tmpl_init(&t, &kinesis_part), 0);

    /* JSON data is parsed; the sequence number stays text whatever its size */
    struct sl_event_kinesis_rec rec = rec_of(BIG_SEQ, " {\"a\":[1,\"x\"]}\r\n", 1545084650500);
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"" BIG_SEQ "\","
               "\"approximateArrivalTimestamp\":1545084650.5,\"data\":{\"a\":[1,\"x\"]}}");
    /* one JSON value and nothing else: a number, a string */
    rec = rec_of("2", "12", 0);
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"2\","
               "\"approximateArrivalTimestamp\":0,\"data\":12}");
    /* not JSON ("12 apples" would be 12 to cJSON alone): the bytes as a string */
    rec = rec_of("3", "12 apples", 0);
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"3\","
               "\"approximateArrivalTimestamp\":0,\"data\":\"12 apples\"}");
    rec = rec_of("4", "", 0);
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"4\","
               "\"approximateArrivalTimestamp\":0,\"data\":\"\"}");
    /* no payload kept (oversize): data is null; a record's own key */
    rec = rec_of("5", "", 0);
    rec.no_data = true;
    rec.key = "user-42 and more";
    rec.key_len = 7;
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"user-42\",\"sequenceNumber\":\"5\","
               "\"approximateArrivalTimestamp\":0,\"data\":null}");
    /* data is read by length, not to a NUL: a JSON value followed by more bytes is not JSON */
    const char nul[] = "{}\0{}";
    rec = rec_of("6", "", 0);
    rec.data = nul;
    rec.len = sizeof(nul) - 1;
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"6\","
               "\"approximateArrivalTimestamp\":0,\"data\":\"{}\"}");
    sl_event_kinesis_tmpl_fini(&t);
}

/* A payload kept as base64 already (b64) is written as it is: the same event as its bytes
 * encoded, and its filter document sees the bytes (parsed as JSON when they are). */
static void test_event_kinesis_stored_base64(void **state)
{
    (void)state;
    struct sl_event_kinesis_tmpl t;
    assert_int_equal(sl_event_kinesis_tmpl_init(&t, &kinesis_part), 0);
    struct sl_buf a, b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    struct sl_event_kinesis_rec rec = rec_of(BIG_SEQ, "{\"a\":1}", 1545084650987);
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &a), 0);
    rec.data = "eyJhIjoxfQ==";
    rec.len = strlen(rec.data);
    rec.b64 = true;
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &b), 0);
    assert_string_equal(a.data, b.data);
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"" BIG_SEQ "\","
               "\"approximateArrivalTimestamp\":1545084650.987,\"data\":{\"a\":1}}");
    /* the slow path (a sequence number to escape) copies it too; not decodable text is kept */
    sl_buf_truncate(&b, 0);
    rec = rec_of("7\"", "QR==", 0);
    rec.b64 = true;
    assert_int_equal(sl_event_kinesis_encode(&t, &rec, &b), 0);
    assert_non_null(strstr(b.data, "\"data\":\"QR==\""));
    rec = rec_of("8", "", 0);
    rec.b64 = true;
    expect_doc(&t, &rec,
               "{\"partitionKey\":\"1\",\"sequenceNumber\":\"8\","
               "\"approximateArrivalTimestamp\":0,\"data\":\"\"}");
    sl_buf_fini(&a);
    sl_buf_fini(&b);
    sl_event_kinesis_tmpl_fini(&t);
}

static void test_event_kinesis_batch_info(void **state)
{
    (void)state;
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_buf_puts(&out, "{"), 0);
    const struct sl_event_kinesis_batch bi = {
        .shard_id = "shardId-000000000001",
        .first_seq = "49590338271490256608559692538361571095921575989136588898",
        .last_seq = "49590338271490256608559692540925702759324208523137515618",
        .first_ms = 1573691884835,
        .last_ms = 1573691885580,
        .n = 500,
        .stream_arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s",
    };
    assert_int_equal(sl_event_kinesis_batch_info(&bi, &out), 0);
    assert_string_equal(out.data,
                        "{\"KinesisBatchInfo\":{\"shardId\":\"shardId-000000000001\","
                        "\"startSequenceNumber\":"
                        "\"49590338271490256608559692538361571095921575989136588898\","
                        "\"endSequenceNumber\":"
                        "\"49590338271490256608559692540925702759324208523137515618\","
                        "\"approximateArrivalOfFirstRecord\":\"2019-11-14T00:38:04.835Z\","
                        "\"approximateArrivalOfLastRecord\":\"2019-11-14T00:38:05.580Z\","
                        "\"batchSize\":500,"
                        "\"streamArn\":\"arn:aws:kinesis:us-east-1:123456789012:stream/s\"}");

    /* a file's path as the shard: escaped in both places */
    sl_buf_truncate(&out, 0);
    const struct sl_event_kinesis_batch fb = {
        .shard_id = "/logs/a\"b.log",
        .first_seq = "0",
        .last_seq = "120",
        .first_ms = 0,
        .last_ms = 999,
        .n = 3,
        .stream_arn = "file:///logs/a\"b.log",
    };
    assert_int_equal(sl_event_kinesis_batch_info(&fb, &out), 0);
    assert_string_equal(out.data,
                        "\"KinesisBatchInfo\":{\"shardId\":\"/logs/a\\\"b.log\","
                        "\"startSequenceNumber\":\"0\",\"endSequenceNumber\":\"120\","
                        "\"approximateArrivalOfFirstRecord\":\"1970-01-01T00:00:00.000Z\","
                        "\"approximateArrivalOfLastRecord\":\"1970-01-01T00:00:00.999Z\","
                        "\"batchSize\":3,\"streamArn\":\"file:///logs/a\\\"b.log\"}");
    sl_buf_fini(&out);
}

/* The core's payload rule, which Kafka's filter document uses too. */
static void test_event_kinesis_json_helpers(void **state)
{
    (void)state;
    cJSON *v = sl_json_parse_exact("[1] ", 4);
    assert_true(cJSON_IsArray(v));
    cJSON_Delete(v);
    assert_null(sl_json_parse_exact("[1] x", 5));
    assert_null(sl_json_parse_exact("", 0));
    assert_true(sl_json_is_utf8((const unsigned char *)"caf\xc3\xa9", 5));
    assert_false(sl_json_is_utf8((const unsigned char *)"a\0b", 3));
    assert_false(sl_json_is_utf8((const unsigned char *)"\xc0\xaf", 2));     /* overlong '/' */
    assert_false(sl_json_is_utf8((const unsigned char *)"\xed\xa0\x80", 3)); /* surrogate */
    assert_false(sl_json_is_utf8((const unsigned char *)"\xc3", 1));
}

/* --- the shape as a Kinesis source would pick it: positions are 56-digit sequence numbers --- */

/* A Kinesis-like adapter: a record's position is its sequence number's text, which is also its
 * itemIdentifier and its checkpoint (resume after it). */
static int
kin_src_format(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    if (rec->pos_len >= len) {
        return SL_EINVAL;
    }
    memcpy(buf, sl_recq_pos(&part->q, rec), rec->pos_len);
    buf[rec->pos_len] = '\0';
    return 0;
}

static int kin_src_compare(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)ctx;
    if (a_len != b_len) {
        return a_len < b_len ? -1 : 1;
    }
    return memcmp(a, b, a_len);
}

static void test_event_kinesis_shape_with_big_positions(void **state)
{
    (void)state;
    struct sl_source_ops ops = {
        .abi = SL_SOURCE_ABI,
        .name = "kin",
        .scheme = "kin://",
        .event = &sl_event_kinesis,
        .compare_pos = kin_src_compare,
        .format_pos = kin_src_format,
        .format_item_id = kin_src_format,
    };
    struct sl_event_format ev;
    sl_source_ops_complete(&ops, &ev);
    struct sl_part *part = sl_part_new("shardId-000000000006", "shardId-000000000006");
    assert_non_null(part);
    struct sl_event_kinesis_tmpl t;
    assert_int_equal(sl_event_kinesis_tmpl_init(&t, &kinesis_part), 0);
    part->event = &t;
    const char *first = BIG_SEQ;
    const char *last = "49590338271490256608559692540925702759324208523137515618";
    assert_int_equal(
        sl_recq_push(&part->q, "a", 1, NULL, 0, first, strlen(first), 1573691884835, 0), 0);
    assert_int_equal(sl_recq_push(&part->q, "b", 1, NULL, 0, last, strlen(last), 1573691885580, 0),
                     0);
    const struct sl_record *a = sl_recq_at(&part->q, 0), *b = sl_recq_at(&part->q, 1);
    assert_true(ops.compare_pos(NULL, sl_recq_pos(&part->q, a), a->pos_len,
                                sl_recq_pos(&part->q, b), b->pos_len) < 0);
    struct sl_buf out;
    sl_buf_init(&out);
    /* the batch info a destination gets: the sequence numbers whole, the template's ARN */
    const struct sl_batch_run run = {part, a, b, 2};
    assert_int_equal(ops.event->encode_batch_info(&ops, NULL, &run, 1, &out), 0);
    assert_string_equal(out.data,
                        "\"KinesisBatchInfo\":{\"shardId\":\"shardId-000000000006\","
                        "\"startSequenceNumber\":\"" BIG_SEQ "\","
                        "\"endSequenceNumber\":"
                        "\"49590338271490256608559692540925702759324208523137515618\","
                        "\"approximateArrivalOfFirstRecord\":\"2019-11-14T00:38:04.835Z\","
                        "\"approximateArrivalOfLastRecord\":\"2019-11-14T00:38:05.580Z\","
                        "\"batchSize\":2,\"streamArn\":"
                        "\"arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream\"}");
    /* one record for a per-record destination: the same, of that record */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops.event->encode_record_info(&ops, NULL, part, b, &out), 0);
    assert_non_null(strstr(out.data, "\"startSequenceNumber\":\"4959033827149025660855969254092"
                                     "5702759324208523137515618\",\"endSequenceNumber\":\"49590338"
                                     "271490256608559692540925702759324208523137515618\""));
    assert_non_null(strstr(out.data, "\"batchSize\":1,"));
    /* a tumbling window's eventSourceARN: the stream's, not the shard's */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops.event->encode_source_arn(&ops, NULL, part, &out), 0);
    assert_string_equal(out.data, "arn:aws:kinesis:us-east-1:123456789012:stream/lambda-stream");
    /* the wrapping and the filter rule */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops.event->encode_open(&ops, NULL, part, &out), 0);
    assert_int_equal(ops.event->encode_close(&ops, NULL, part, &out), 0);
    assert_string_equal(out.data, "{\"Records\":[]}");
    assert_string_equal(ops.event->sep, ",");
    assert_string_equal(ops.event->filter_payload_fields[0], "data");
    assert_null(ops.event->filter_payload_fields[1]);
    assert_false(ops.event->filter_payload_mismatch_ignored);
    /* the checkpoint text is the 56-digit number itself */
    char pos[SL_REC_POS_MAX + 1];
    assert_int_equal(ops.format_pos(NULL, part, b, pos, sizeof(pos)), 0);
    assert_string_equal(pos, "49590338271490256608559692540925702759324208523137515618");
    sl_buf_fini(&out);
    sl_event_kinesis_tmpl_fini(&t);
    sl_part_free(part);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_kinesis_record_exact),
        cmocka_unit_test(test_event_kinesis_text_plain_same_bytes),
        cmocka_unit_test(test_event_kinesis_escaping),
        cmocka_unit_test(test_event_kinesis_filter_doc),
        cmocka_unit_test(test_event_kinesis_stored_base64),
        cmocka_unit_test(test_event_kinesis_batch_info),
        cmocka_unit_test(test_event_kinesis_json_helpers),
        cmocka_unit_test(test_event_kinesis_shape_with_big_positions),
    };
    return cmocka_run_group_tests_name("event_kinesis", tests, NULL, NULL);
}

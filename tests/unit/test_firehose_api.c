/* SPDX-License-Identifier: Apache-2.0 */
/* test_firehose_api.c: the Firehose ingest API (firehose_api.c) against a fake host of two
 * streams: the answers' shapes (PutRecord, PutRecordBatch with per-record results,
 * DescribeDeliveryStream, ListDeliveryStreams with Limit and ExclusiveStart), and every refusal
 * with AWS's error type and status (unknown stream, too many or no records, a record over
 * 1,000 KiB, a call over 4 MiB, bad base64, bad JSON, unknown or missing X-Amz-Target, a body
 * over the limit), none of which hands a record to the host; and the answer to a put waiting
 * for the host to say its records are durable (a success only then, InternalFailure when they
 * could not be stored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "config.h"
#include "encoder.h"
#include "fh_http.h"
#include "firehose_api.h"

#define T_PUT   "Firehose_20150804.PutRecord"
#define T_BATCH "Firehose_20150804.PutRecordBatch"
#define T_DESC  "Firehose_20150804.DescribeDeliveryStream"
#define T_LIST  "Firehose_20150804.ListDeliveryStreams"

struct fake {
    struct sl_stream_conf confs[2];
    struct sl_firehose_host host;
    size_t puts;  /* put calls */
    size_t recs;  /* records handed over */
    size_t take;  /* how many of a put to take; SIZE_MAX: all; 0: SL_ETHROTTLED */
    bool defer;   /* keep the put's callback for the test to call (durable later) */
    bool closing; /* the host is shutting down: puts return SL_ECANCELED */
    int status;   /* what the put's callback says when called at once */
    sl_firehose_put_cb put_cb;
    void *put_arg;
    size_t later;                       /* answers that came later */
    struct sl_firehose_reply later_rep; /* the last of them */
    struct sl_buf got;                  /* the records' bytes, concatenated */
    struct sl_firehose_reply rep;
    cJSON *json; /* the reply, parsed */
};

static const struct sl_stream_conf *fake_conf_at(void *arg, size_t i)
{
    struct fake *f = arg;
    return &f->confs[i];
}

static int fake_put(void *arg,
                    size_t i,
                    const struct sl_firehose_rec *recs,
                    size_t n,
                    size_t *ret_took,
                    sl_firehose_put_cb cb,
                    void *cb_arg)
{
    struct fake *f = arg;
    (void)i;
    f->puts++;
    if (f->closing) {
        return SL_ECANCELED;
    }
    size_t took = n < f->take ? n : f->take;
    if (took == 0) {
        return SL_ETHROTTLED;
    }
    for (size_t k = 0; k < took; k++) {
        assert_int_equal(sl_buf_append(&f->got, recs[k].data, recs[k].len), 0);
    }
    f->recs += took;
    *ret_took = took;
    if (f->defer) {
        f->put_cb = cb;
        f->put_arg = cb_arg;
    } else {
        cb(cb_arg, f->status);
    }
    return 0;
}

static void later_cb(void *arg, struct sl_firehose_reply *rep)
{
    struct fake *f = arg;
    sl_free(f->later_rep.body);
    f->later_rep = *rep;
    f->later++;
}

static int setup(void **state)
{
    struct fake *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    f->confs[0] = (struct sl_stream_conf){.name = "clicks",
                                          .bucket_arn = "file:///tmp/out",
                                          .prefix = "raw/",
                                          .size_mb = 1,
                                          .interval_s = 0};
    f->confs[1] = (struct sl_stream_conf){.name = "audit",
                                          .bucket_arn = "file:///tmp/a",
                                          .prefix = "",
                                          .size_mb = 5,
                                          .interval_s = 300};
    f->host = (struct sl_firehose_host){.arg = f,
                                        .region = "eu-west-1",
                                        .account = SL_FIREHOSE_ACCOUNT_DEFAULT,
                                        .created_s = 1700000000.5,
                                        .n_streams = 2,
                                        .conf_at = fake_conf_at,
                                        .put = fake_put,
                                        .id_salt = 7};
    f->take = SIZE_MAX;
    sl_buf_init(&f->got);
    *state = f;
    return 0;
}

static void reset(struct fake *f)
{
    sl_free(f->rep.body);
    memset(&f->rep, 0, sizeof(f->rep));
    cJSON_Delete(f->json);
    f->json = NULL;
}

static int teardown(void **state)
{
    struct fake *f = *state;
    reset(f);
    sl_free(f->later_rep.body);
    sl_buf_fini(&f->got);
    free(f);
    return 0;
}

/* Calls the API; the reply is parsed into f->json. */
static void call(struct fake *f, const char *target, const char *body)
{
    reset(f);
    assert_int_equal(
        sl_firehose_api_handle(&f->host, target, body, strlen(body), false, &f->rep, later_cb, f),
        0);
    assert_non_null(f->rep.body);
    f->json = cJSON_ParseWithLength(f->rep.body, f->rep.len);
    assert_non_null(f->json);
}

static void expect_error(struct fake *f, unsigned status, const char *type, const char *message)
{
    if (f->rep.status != status || strcmp(f->rep.error_type ? f->rep.error_type : "", type) != 0) {
        print_error("got %u %s\n", f->rep.status, f->rep.body);
        fail();
    }
    assert_string_equal(cJSON_GetObjectItem(f->json, "__type")->valuestring, type);
    const char *m = cJSON_GetObjectItem(f->json, "message")->valuestring;
    if (message && strcmp(m, message) != 0) {
        print_error("message: %s\nwanted:  %s\n", m, message);
        fail();
    }
    assert_int_equal(f->puts, 0);
}

static void test_firehose_api_put_record_batch(void **state)
{
    struct fake *f = *state;
    /* "a\n", "bc", "" */
    call(f, T_BATCH,
         "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQo=\"},"
         "{\"Data\":\"YmM=\"},{\"Data\":\"\"}]}");
    assert_int_equal(f->rep.status, 200);
    assert_null(f->rep.error_type);
    assert_int_equal(f->puts, 1);
    assert_int_equal(f->recs, 3);
    assert_int_equal(f->got.len, 4);
    assert_memory_equal(f->got.data, "a\nbc", 4);
    assert_int_equal(cJSON_GetObjectItem(f->json, "FailedPutCount")->valueint, 0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(f->json, "Encrypted")));
    const cJSON *rr = cJSON_GetObjectItem(f->json, "RequestResponses");
    assert_int_equal(cJSON_GetArraySize(rr), 3);
    const char *id0 = cJSON_GetObjectItem(cJSON_GetArrayItem(rr, 0), "RecordId")->valuestring;
    const char *id1 = cJSON_GetObjectItem(cJSON_GetArrayItem(rr, 1), "RecordId")->valuestring;
    assert_true(strlen(id0) > 0);
    assert_string_not_equal(id0, id1);
    assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(rr, 0), "ErrorCode"));
}

static void test_firehose_api_put_record(void **state)
{
    struct fake *f = *state;
    call(f, T_PUT, "{\"DeliveryStreamName\":\"audit\",\"Record\":{\"Data\":\"eyJhIjoxfQo=\"}}");
    assert_int_equal(f->rep.status, 200);
    assert_int_equal(f->recs, 1);
    assert_memory_equal(f->got.data, "{\"a\":1}\n", 8);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(f->json, "RecordId")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(f->json, "Encrypted")));
    assert_int_equal(cJSON_GetArraySize(f->json), 2);
}

static void test_firehose_api_partial_put(void **state)
{
    struct fake *f = *state;
    f->take = 1;
    call(f, T_BATCH,
         "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"},{\"Data\":\"Yg==\"}]"
         "}");
    assert_int_equal(f->rep.status, 200);
    assert_int_equal(cJSON_GetObjectItem(f->json, "FailedPutCount")->valueint, 1);
    const cJSON *rr = cJSON_GetObjectItem(f->json, "RequestResponses");
    assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(rr, 0), "RecordId"));
    const cJSON *bad = cJSON_GetArrayItem(rr, 1);
    assert_null(cJSON_GetObjectItem(bad, "RecordId"));
    assert_string_equal(cJSON_GetObjectItem(bad, "ErrorCode")->valuestring,
                        "ServiceUnavailableException");
    assert_string_equal(cJSON_GetObjectItem(bad, "ErrorMessage")->valuestring, "Slow down.");
    /* a PutRecord that is not taken fails as a whole, as a 503 the SDKs retry */
    f->take = 0;
    f->puts = 0;
    call(f, T_PUT, "{\"DeliveryStreamName\":\"clicks\",\"Record\":{\"Data\":\"YQ==\"}}");
    assert_int_equal(f->rep.status, 503);
    assert_string_equal(f->rep.error_type, "ServiceUnavailableException");
}

/* A host shutting down takes nothing: the whole call is a 503 ServiceUnavailableException, which
 * the SDKs retry on their own (a per-record failure in a 200 they would not). */
static void test_firehose_api_put_while_closing(void **state)
{
    struct fake *f = *state;
    f->closing = true;
    call(f, T_BATCH,
         "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"},{\"Data\":\"Yg==\"}]"
         "}");
    assert_int_equal(f->rep.status, 503);
    assert_string_equal(f->rep.error_type, "ServiceUnavailableException");
    assert_string_equal(cJSON_GetObjectItem(f->json, "__type")->valuestring,
                        "ServiceUnavailableException");
    assert_null(cJSON_GetObjectItem(f->json, "RequestResponses"));
    call(f, T_PUT, "{\"DeliveryStreamName\":\"clicks\",\"Record\":{\"Data\":\"YQ==\"}}");
    assert_int_equal(f->rep.status, 503);
    assert_string_equal(f->rep.error_type, "ServiceUnavailableException");
    assert_int_equal(f->recs, 0);
    assert_int_equal(f->later, 0);
}

static void test_firehose_api_unknown_stream(void **state)
{
    struct fake *f = *state;
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"nope\",\"Records\":[{\"Data\":\"YQ==\"}]}");
    expect_error(f, 400, "ResourceNotFoundException",
                 "Firehose nope under account 000000000000 not found.");
    call(f, T_DESC, "{\"DeliveryStreamName\":\"nope\"}");
    expect_error(f, 400, "ResourceNotFoundException",
                 "Firehose nope under account 000000000000 not found.");
}

static void test_firehose_api_record_counts(void **state)
{
    struct fake *f = *state;
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "{\"DeliveryStreamName\":\"clicks\",\"Records\":["), 0);
    for (int i = 0; i < SL_FIREHOSE_BATCH_MAX + 1; i++) {
        assert_int_equal(sl_buf_printf(&b, "%s{\"Data\":\"YQ==\"}", i ? "," : ""), 0);
    }
    assert_int_equal(sl_buf_puts(&b, "]}"), 0);
    call(f, T_BATCH, b.data);
    sl_buf_fini(&b);
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value '[...]' at 'records' failed to satisfy "
                 "constraint: Member must have length less than or equal to 500");
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"clicks\",\"Records\":[]}");
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value '[...]' at 'records' failed to satisfy "
                 "constraint: Member must have length greater than or equal to 1");
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"clicks\"}");
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value null at 'records' failed to satisfy "
                 "constraint: Member must not be null");
    call(f, T_BATCH, "{\"Records\":[{\"Data\":\"YQ==\"}]}");
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value null at 'deliveryStreamName' failed to "
                 "satisfy constraint: Member must not be null");
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"},{}]}");
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value null at 'records.2.member.data' failed to "
                 "satisfy constraint: Member must not be null");
}

/* A batch of n records of size bytes each, as base64. */
static char *big_batch(size_t n, size_t size)
{
    char *raw = calloc(1, size);
    struct sl_buf b;
    sl_buf_init(&b);
    assert_non_null(raw);
    memset(raw, 'x', size);
    assert_int_equal(sl_buf_puts(&b, "{\"DeliveryStreamName\":\"clicks\",\"Records\":["), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sl_buf_puts(&b, i ? ",{\"Data\":\"" : "{\"Data\":\""), 0);
        assert_int_equal(sl_enc_base64(&b, raw, size), 0);
        assert_int_equal(sl_buf_puts(&b, "\"}"), 0);
    }
    assert_int_equal(sl_buf_puts(&b, "]}"), 0);
    free(raw);
    return sl_buf_steal(&b);
}

static void test_firehose_api_sizes(void **state)
{
    struct fake *f = *state;
    char *body = big_batch(1, SL_FIREHOSE_RECORD_MAX + 1);
    call(f, T_BATCH, body);
    sl_free(body);
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value at 'records.1.member.data' failed to "
                 "satisfy constraint: Member must have length less than or equal to 1024000");
    /* 5 records of 1,000,000 bytes: each within its limit, 4.77 MiB together */
    body = big_batch(5, 1000000);
    call(f, T_BATCH, body);
    sl_free(body);
    expect_error(f, 400, "InvalidArgumentException", NULL);
    /* exactly at the limits is fine */
    body = big_batch(1, SL_FIREHOSE_RECORD_MAX);
    call(f, T_BATCH, body);
    sl_free(body);
    assert_int_equal(f->rep.status, 200);
    assert_int_equal(f->recs, 1);
}

static void test_firehose_api_malformed(void **state)
{
    struct fake *f = *state;
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"Y!==\"}]}");
    expect_error(f, 400, "SerializationException", NULL);
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"}");
    expect_error(f, 400, "SerializationException", NULL);
    call(f, T_BATCH, "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":42}]}");
    expect_error(f, 400, "SerializationException", NULL);
    call(f, T_PUT, "{\"DeliveryStreamName\":\"bad name\",\"Record\":{\"Data\":\"YQ==\"}}");
    expect_error(f, 400, "ValidationException",
                 "1 validation error detected: Value 'bad name' at 'deliveryStreamName' failed "
                 "to satisfy constraint: Member must satisfy regular expression pattern: "
                 "[a-zA-Z0-9_.-]+");
    call(f, "Firehose_20150804.CreateDeliveryStream", "{}");
    expect_error(f, 400, "UnknownOperationException", NULL);
    call(f, NULL, "{}");
    expect_error(f, 400, "UnknownOperationException", NULL);
    reset(f);
    assert_int_equal(sl_firehose_api_handle(&f->host, T_BATCH, "", 0, true, &f->rep, later_cb, f),
                     0);
    assert_int_equal(f->rep.status, 413);
    assert_int_equal(f->puts, 0);
}

/* A put is answered only once the host says its records are durable. */
static void test_firehose_api_answer_when_durable(void **state)
{
    struct fake *f = *state;
    f->defer = true;
    static const char body[] =
        "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"},{\"Data\":\"Yg==\"}]}";
    assert_int_equal(
        sl_firehose_api_handle(&f->host, T_BATCH, body, strlen(body), false, &f->rep, later_cb, f),
        SL_EINPROGRESS);
    assert_int_equal(f->recs, 2);
    assert_int_equal(f->later, 0); /* not durable yet: no answer */
    assert_non_null(f->put_cb);
    f->put_cb(f->put_arg, 0);
    assert_int_equal(f->later, 1);
    assert_int_equal(f->later_rep.status, 200);
    cJSON *j = cJSON_ParseWithLength(f->later_rep.body, f->later_rep.len);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItem(j, "FailedPutCount")->valueint, 0);
    const cJSON *rr = cJSON_GetObjectItem(j, "RequestResponses");
    assert_int_equal(cJSON_GetArraySize(rr), 2);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetArrayItem(rr, 1), "RecordId"));
    cJSON_Delete(j);
    /* PutRecord the same way */
    static const char one[] = "{\"DeliveryStreamName\":\"clicks\",\"Record\":{\"Data\":\"YQ==\"}}";
    assert_int_equal(
        sl_firehose_api_handle(&f->host, T_PUT, one, strlen(one), false, &f->rep, later_cb, f),
        SL_EINPROGRESS);
    assert_int_equal(f->later, 1);
    f->put_cb(f->put_arg, 0);
    assert_int_equal(f->later, 2);
    assert_int_equal(f->later_rep.status, 200);
    assert_non_null(strstr(f->later_rep.body, "\"RecordId\""));
}

/* Records that could not be made durable are not acknowledged: InternalFailure. */
static void test_firehose_api_not_durable(void **state)
{
    struct fake *f = *state;
    f->status = SL_EIO;
    call(f, T_BATCH,
         "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"},{\"Data\":\"Yg==\"}]"
         "}");
    assert_int_equal(f->rep.status, 200);
    assert_int_equal(cJSON_GetObjectItem(f->json, "FailedPutCount")->valueint, 2);
    const cJSON *rr = cJSON_GetObjectItem(f->json, "RequestResponses");
    for (int i = 0; i < 2; i++) {
        const cJSON *it = cJSON_GetArrayItem(rr, i);
        assert_null(cJSON_GetObjectItem(it, "RecordId"));
        assert_string_equal(cJSON_GetObjectItem(it, "ErrorCode")->valuestring, "InternalFailure");
    }
    call(f, T_PUT, "{\"DeliveryStreamName\":\"clicks\",\"Record\":{\"Data\":\"YQ==\"}}");
    assert_int_equal(f->rep.status, 500);
    assert_string_equal(f->rep.error_type, "InternalFailure");
    /* a whole batch refused for the quota: 200, every record ServiceUnavailableException */
    f->status = 0;
    f->take = 0;
    call(f, T_BATCH,
         "{\"DeliveryStreamName\":\"clicks\",\"Records\":[{\"Data\":\"YQ==\"},{\"Data\":\"Yg==\"}]"
         "}");
    assert_int_equal(f->rep.status, 200);
    assert_int_equal(cJSON_GetObjectItem(f->json, "FailedPutCount")->valueint, 2);
    rr = cJSON_GetObjectItem(f->json, "RequestResponses");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rr, 1), "ErrorCode")->valuestring,
                        "ServiceUnavailableException");
}

static void test_firehose_api_describe(void **state)
{
    struct fake *f = *state;
    call(f, T_DESC, "{\"DeliveryStreamName\":\"clicks\"}");
    assert_int_equal(f->rep.status, 200);
    const cJSON *d = cJSON_GetObjectItem(f->json, "DeliveryStreamDescription");
    assert_string_equal(cJSON_GetObjectItem(d, "DeliveryStreamName")->valuestring, "clicks");
    assert_string_equal(cJSON_GetObjectItem(d, "DeliveryStreamARN")->valuestring,
                        "arn:aws:firehose:eu-west-1:000000000000:deliverystream/clicks");
    assert_string_equal(cJSON_GetObjectItem(d, "DeliveryStreamStatus")->valuestring, "ACTIVE");
    assert_string_equal(cJSON_GetObjectItem(d, "DeliveryStreamType")->valuestring, "DirectPut");
    assert_string_equal(cJSON_GetObjectItem(d, "VersionId")->valuestring, "1");
    assert_true(cJSON_GetObjectItem(d, "CreateTimestamp")->valuedouble == 1700000000.5);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(d, "HasMoreDestinations")));
    const cJSON *dest = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "Destinations"), 0);
    const cJSON *s3 = cJSON_GetObjectItem(dest, "ExtendedS3DestinationDescription");
    assert_string_equal(cJSON_GetObjectItem(s3, "BucketARN")->valuestring, "file:///tmp/out");
    assert_string_equal(cJSON_GetObjectItem(s3, "Prefix")->valuestring, "raw/");
    const cJSON *hints = cJSON_GetObjectItem(s3, "BufferingHints");
    assert_int_equal(cJSON_GetObjectItem(hints, "SizeInMBs")->valueint, 1);
    assert_int_equal(cJSON_GetObjectItem(hints, "IntervalInSeconds")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(s3, "CompressionFormat")->valuestring, "UNCOMPRESSED");
}

/* An HTTP endpoint stream: HttpEndpointDestinationDescription as AWS answers it, without the
 * access key; its S3Configuration as S3DestinationDescription with its own hints. */
static void test_firehose_api_describe_http(void **state)
{
    struct fake *f = *state;
    struct sl_fh_http_conf hc = {
        .url = "https://example.test/in",
        .name = "collector",
        .access_key = "secret-key-1",
        .gzip = true,
        .common_attributes = "{\"commonAttributes\":{\"env\":\"prod\",\"team\":\"\"}}",
        .n_attrs = 2,
        .size_bytes = 3 * 1024 * 1024,
        .interval_ms = 60000,
        .retry_duration_ms = 120000,
        .backup_all = false,
    };
    f->confs[1].http = &hc;
    f->confs[1].size_mb = 3;
    f->confs[1].interval_s = 60;
    f->confs[1].backup_size_mb = 7;
    f->confs[1].backup_interval_s = 400;
    f->confs[1].error_prefix = "failed/";
    call(f, T_DESC, "{\"DeliveryStreamName\":\"audit\"}");
    f->confs[1].http = NULL;
    assert_int_equal(f->rep.status, 200);
    assert_null(strstr(f->rep.body, "secret-key-1"));
    const cJSON *d = cJSON_GetObjectItem(f->json, "DeliveryStreamDescription");
    const cJSON *dest = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "Destinations"), 0);
    assert_null(cJSON_GetObjectItem(dest, "ExtendedS3DestinationDescription"));
    assert_null(cJSON_GetObjectItem(dest, "S3DestinationDescription"));
    const cJSON *h = cJSON_GetObjectItem(dest, "HttpEndpointDestinationDescription");
    const cJSON *ep = cJSON_GetObjectItem(h, "EndpointConfiguration");
    assert_string_equal(cJSON_GetObjectItem(ep, "Url")->valuestring, "https://example.test/in");
    assert_string_equal(cJSON_GetObjectItem(ep, "Name")->valuestring, "collector");
    assert_null(cJSON_GetObjectItem(ep, "AccessKey"));
    const cJSON *hints = cJSON_GetObjectItem(h, "BufferingHints");
    assert_int_equal(cJSON_GetObjectItem(hints, "SizeInMBs")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItem(hints, "IntervalInSeconds")->valueint, 60);
    const cJSON *rc = cJSON_GetObjectItem(h, "RequestConfiguration");
    assert_string_equal(cJSON_GetObjectItem(rc, "ContentEncoding")->valuestring, "GZIP");
    const cJSON *attrs = cJSON_GetObjectItem(rc, "CommonAttributes");
    assert_int_equal(cJSON_GetArraySize(attrs), 2);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(attrs, 0), "AttributeName")->valuestring, "env");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(attrs, 0), "AttributeValue")->valuestring, "prod");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(attrs, 1), "AttributeValue")->valuestring, "");
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(h, "RetryOptions"), "DurationInSeconds")->valueint,
        120);
    assert_string_equal(cJSON_GetObjectItem(h, "S3BackupMode")->valuestring, "FailedDataOnly");
    const cJSON *s3 = cJSON_GetObjectItem(h, "S3DestinationDescription");
    assert_string_equal(cJSON_GetObjectItem(s3, "BucketARN")->valuestring, "file:///tmp/a");
    assert_string_equal(cJSON_GetObjectItem(s3, "ErrorOutputPrefix")->valuestring, "failed/");
    assert_null(cJSON_GetObjectItem(s3, "S3BackupMode"));
    hints = cJSON_GetObjectItem(s3, "BufferingHints");
    assert_int_equal(cJSON_GetObjectItem(hints, "SizeInMBs")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(hints, "IntervalInSeconds")->valueint, 400);
}

static void test_firehose_api_list(void **state)
{
    struct fake *f = *state;
    call(f, T_LIST, "{}");
    assert_int_equal(f->rep.status, 200);
    const cJSON *names = cJSON_GetObjectItem(f->json, "DeliveryStreamNames");
    assert_int_equal(cJSON_GetArraySize(names), 2);
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "audit");
    assert_string_equal(cJSON_GetArrayItem(names, 1)->valuestring, "clicks");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(f->json, "HasMoreDeliveryStreams")));
    call(f, T_LIST, "{\"Limit\":1}");
    names = cJSON_GetObjectItem(f->json, "DeliveryStreamNames");
    assert_int_equal(cJSON_GetArraySize(names), 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(f->json, "HasMoreDeliveryStreams")));
    call(f, T_LIST, "{\"ExclusiveStartDeliveryStreamName\":\"audit\"}");
    names = cJSON_GetObjectItem(f->json, "DeliveryStreamNames");
    assert_int_equal(cJSON_GetArraySize(names), 1);
    assert_string_equal(cJSON_GetArrayItem(names, 0)->valuestring, "clicks");
    call(f, T_LIST, "{\"Limit\":0}");
    expect_error(f, 400, "ValidationException", NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_firehose_api_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(put_record_batch),
        T(put_record),
        T(partial_put),
        T(unknown_stream),
        T(record_counts),
        T(sizes),
        T(malformed),
        T(describe),
        T(list),
        T(describe_http),
        T(answer_when_durable),
        T(not_durable),
        T(put_while_closing),
    };
#undef T
    return cmocka_run_group_tests_name("firehose_api", tests, NULL, NULL);
}

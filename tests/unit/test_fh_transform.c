/* SPDX-License-Identifier: Apache-2.0 */
/* test_fh_transform.c: Firehose's Lambda data transformation (fh_transform.h) through real
 * function types: an exec function running tests/unit/data/fh_transform.py, which logs every
 * event it gets and answers as FH_MODE says, and an http function answered by a loopback
 * server (http_peer.c). So the event travels through the function interface as a stream's
 * would. Checked: the event's exact shape (and Powertools' KinesisFirehoseSchema accepts it
 * when tests/services' node has the parser), Ok/Dropped/ProcessingFailed, missing, unknown and
 * duplicated recordIds, bad base64 and bad JSON answers, retries then failure, the cut into
 * invocations within BufferSizeInMBs and 6 MB, partition keys from the answer's metadata, the
 * processing-failed error line, and a stop. The loop runs to a condition with a deadline; no
 * sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "config.h"
#include "encoder.h"
#include "fh_transform.h"
#include "fh_transform_int.h"
#include "helpers.h"
#include "http_peer.h"
#include "httpc.h"
#include "s3_keys.h"

#define DEADLINE_MS 20000
#define STREAM_ARN  "arn:aws:firehose:eu-west-3:123456789012:deliverystream/clicks"
#define LAMBDA_ARN  "arn:aws:lambda:eu-west-3:123456789012:function:shape"

struct fx {
    uv_loop_t loop;
    struct sl_httpc *httpc;
    struct sl_clock_fake clock;
    char *tmp;
    char log[512];
    struct sl_function *fn;
    struct sl_fh_transform *t;
    struct sl_fh_batch *b;
    int err;
    bool done;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->httpc), 0);
    sl_clock_fake_init(&f->clock, 1000, 1709251200000);
    f->tmp = test_tmpdir();
    (void)snprintf(f->log, sizeof(f->log), "%s/events.log", f->tmp);
    *state = f;
    return 0;
}

static bool fx_done(void *arg)
{
    return ((struct fx *)arg)->done;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->t) {
        sl_fh_transform_stop(f->t);
        if (f->b && !f->done) {
            sl_function_stop(f->fn);
            assert_true(test_run_until(&f->loop, fx_done, f, DEADLINE_MS));
        }
    }
    sl_fh_batch_free(f->b);
    sl_fh_transform_free(f->t);
    sl_function_free(f->fn);
    sl_httpc_free(f->httpc);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_rmtree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

static void fx_function(struct fx *f, const char *json)
{
    struct sl_function_conf conf = {.name = "shape", .path = "$.functions.shape"};
    conf.json = cJSON_Parse(json);
    assert_non_null(conf.json);
    conf.ops = sl_function_type(cJSON_GetObjectItem(conf.json, "type")->valuestring);
    struct sl_function_env env = {.loop = &f->loop,
                                  .httpc = f->httpc,
                                  .clock = &f->clock.clock,
                                  .name = "shape",
                                  .region = "eu-west-3"};
    char errbuf[512] = "";
    int r = sl_function_new(&conf, &env, &f->fn, errbuf, sizeof(errbuf));
    cJSON_Delete(conf.json);
    if (r != 0) {
        fail_msg("sl_function_new: %s", errbuf);
    }
}

/* The exec function running the script in mode, with its timeout. */
static void fx_exec_timeout(struct fx *f, const char *mode, const char *timeout)
{
    const char *root = getenv("SLUICE_SOURCE_ROOT");
    assert_non_null(root);
    char json[2048];
    (void)snprintf(json, sizeof(json),
                   "{\"type\":\"exec\",\"command\":[\"/usr/bin/python3\","
                   "\"%s/tests/unit/data/fh_transform.py\"],\"timeout\":\"%s\","
                   "\"env\":{\"FH_LOG\":\"%s\",\"FH_MODE\":\"%s\"}}",
                   root, timeout, f->log, mode);
    fx_function(f, json);
}

static void fx_exec(struct fx *f, const char *mode)
{
    fx_exec_timeout(f, mode, "20s");
}

static void fx_transform(struct fx *f, int64_t retries, int64_t buffer_bytes)
{
    struct sl_fh_transform_conf conf = {
        .enabled = true,
        .lambda_arn = LAMBDA_ARN,
        .number_of_retries = retries,
        .buffer_bytes = buffer_bytes,
        .buffer_interval_ms = 60000,
    };
    static const struct sl_retry_policy fast = {.base_ms = 5, .max_ms = 20, .min_ms = 1};
    struct sl_fh_transform_env env = {.loop = &f->loop,
                                      .clock = &f->clock.clock,
                                      .fn = f->fn,
                                      .stream_arn = STREAM_ARN,
                                      .region = "eu-west-3",
                                      .inst = "clicks",
                                      .retry = &fast};
    assert_int_equal(sl_fh_transform_new(&conf, &env, &f->t), 0);
}

static void fx_cb(void *arg, struct sl_fh_batch *b, int err)
{
    struct fx *f = arg;
    assert_ptr_equal(b, f->b);
    assert_false(f->done);
    f->err = err;
    f->done = true;
}

/* Transforms recs and waits for the batch's callback. */
static void fx_run(struct fx *f, const struct sl_fh_rec *recs, size_t n)
{
    assert_int_equal(sl_fh_transform_start(f->t, recs, n, fx_cb, f, &f->b), 0);
    assert_false(f->done); /* never from inside start */
    assert_true(test_run_until(&f->loop, fx_done, f, test_deadline_ms(DEADLINE_MS)));
}

/* The events the script logged, parsed (owned array). */
static cJSON *fx_events(struct fx *f)
{
    cJSON *all = cJSON_CreateArray();
    FILE *fp = fopen(f->log, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (fp && (len = getline(&line, &cap, fp)) > 0) {
        cJSON *ev = cJSON_Parse(line);
        assert_non_null(ev);
        cJSON_AddItemToArray(all, ev);
    }
    free(line);
    if (fp) {
        fclose(fp);
    }
    return all;
}

static const struct sl_fh_out *out(struct fx *f, size_t i)
{
    return sl_fh_batch_out(f->b, i);
}

static void assert_failed(const struct sl_fh_out *o, const char *code, unsigned attempts)
{
    assert_int_equal(o->result, SL_FH_FAILED);
    assert_string_equal(o->error_code, code);
    assert_non_null(o->error_message);
    assert_int_equal(o->attempts, attempts);
}

/* Powertools' parser, as real handlers use it, when tests/services' node has it. */
static void powertools_accepts(cJSON *events)
{
    const char *root = getenv("SLUICE_SOURCE_ROOT");
    char dir[1024];
    (void)snprintf(dir, sizeof(dir),
                   "%s/tests/services/node/node_modules/@aws-lambda-powertools/parser", root);
    if (access(dir, F_OK) != 0 || access("/usr/bin/node", X_OK) != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fail_msg("no @aws-lambda-powertools/parser in tests/services/node (npm ci there)");
        }
        print_message("skipped: no @aws-lambda-powertools/parser in tests/services/node\n");
        return;
    }
    char cmd[1200];
    (void)snprintf(cmd, sizeof(cmd),
                   "cd %s/tests/services/node && node powertools-parse.mjs KinesisFirehoseSchema",
                   root);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    char *text = cJSON_PrintUnformatted(events);
    fputs(text, p);
    cJSON_free(text);
    assert_int_equal(pclose(p), 0);
}

/* ---- the event ---- */

static void test_fh_transform_event_shape(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "mix");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    static const char bin[] = {'\0', '\x01', '\xff', '"', '\n'};
    struct sl_fh_rec recs[] = {
        {"{\"a\":1}\n", 8, 1709251200123, 7, NULL},
        {bin, sizeof(bin), 1709251200456, 8, NULL},
        {"", 0, 1709251200789, 9, NULL},
    };
    fx_run(f, recs, 3);
    assert_int_equal(f->err, 0);
    cJSON *evs = fx_events(f);
    assert_int_equal(cJSON_GetArraySize(evs), 1);
    /* exact bytes: keys in Firehose's order, nothing else */
    FILE *fp = fopen(f->log, "r");
    char line[4096];
    assert_non_null(fgets(line, sizeof(line), fp));
    fclose(fp);
    const cJSON *ev = cJSON_GetArrayItem(evs, 0);
    const char *id = cJSON_GetObjectItem(ev, "invocationId")->valuestring;
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    assert_true(strchr("89ab", id[19]) != NULL);
    const cJSON *list = cJSON_GetObjectItem(ev, "records");
    char rid[3][SL_FH_RECORD_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        const cJSON *r = cJSON_GetArrayItem(list, i);
        (void)snprintf(rid[i], sizeof(rid[i]), "%s",
                       cJSON_GetObjectItem(r, "recordId")->valuestring);
        assert_int_equal(strlen(rid[i]), SL_FH_RECORD_ID_LEN);
        assert_int_equal(strspn(rid[i], "0123456789"), SL_FH_RECORD_ID_LEN);
        assert_int_equal(cJSON_GetArraySize((cJSON *)r), 3);
    }
    assert_string_not_equal(rid[0], rid[1]);
    char want[4096];
    (void)snprintf(want, sizeof(want),
                   "{\"invocationId\":\"%s\",\"deliveryStreamArn\":\"" STREAM_ARN
                   "\",\"region\":\"eu-west-3\",\"records\":["
                   "{\"recordId\":\"%s\",\"approximateArrivalTimestamp\":1709251200123,"
                   "\"data\":\"eyJhIjoxfQo=\"},"
                   "{\"recordId\":\"%s\",\"approximateArrivalTimestamp\":1709251200456,"
                   "\"data\":\"AAH/Igo=\"},"
                   "{\"recordId\":\"%s\",\"approximateArrivalTimestamp\":1709251200789,"
                   "\"data\":\"\"}]}\n",
                   id, rid[0], rid[1], rid[2]);
    assert_string_equal(line, want);
    powertools_accepts(evs);
    cJSON_Delete(evs);
}

/* With a Kinesis stream as source: sourceKinesisStreamArn and each record's
 * kinesisRecordMetadata, sized exactly as built (escapes included). */
static void test_fh_transform_event_kinesis_source(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "mix");
    struct sl_fh_transform_conf conf = {.enabled = true,
                                        .lambda_arn = LAMBDA_ARN,
                                        .number_of_retries = 0,
                                        .buffer_bytes = SL_FH_BUFFER_BYTES_DEFAULT};
    struct sl_fh_transform_env env = {.loop = &f->loop,
                                      .clock = &f->clock.clock,
                                      .fn = f->fn,
                                      .stream_arn = STREAM_ARN,
                                      .region = "eu-west-3",
                                      .source_kinesis_arn =
                                          "arn:aws:kinesis:eu-west-3:123456789012:stream/src",
                                      .inst = "clicks"};
    assert_int_equal(sl_fh_transform_new(&conf, &env, &f->t), 0);
    struct sl_fh_kinesis_meta k0 = {"shardId-000000000000", "key \"1\"\t",
                                    "49546986683135544286507457936321625675700192471156785154", 0,
                                    1709251200100};
    struct sl_fh_kinesis_meta k1 = {"shardId-000000000001", "k",
                                    "49546986683135544286507457936321625675700192471156785155", 3,
                                    1709251200200};
    struct sl_fh_rec recs[] = {{"one", 3, 1709251200123, 1, &k0},
                               {"two", 3, 1709251200456, 2, &k1}};
    fx_run(f, recs, 2);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_int_equal(out(f, 1)->result, SL_FH_OK);
    FILE *fp = fopen(f->log, "r");
    char line[4096];
    assert_non_null(fgets(line, sizeof(line), fp));
    fclose(fp);
    cJSON *evs = fx_events(f);
    const cJSON *ev = cJSON_GetArrayItem(evs, 0);
    const char *id = cJSON_GetObjectItem(ev, "invocationId")->valuestring;
    const cJSON *list = cJSON_GetObjectItem(ev, "records");
    char want[4096];
    (void)snprintf(
        want, sizeof(want),
        "{\"invocationId\":\"%s\",\"sourceKinesisStreamArn\":\"arn:aws:kinesis:eu-west-3:"
        "123456789012:stream/src\",\"deliveryStreamArn\":\"" STREAM_ARN
        "\",\"region\":\"eu-west-3\","
        "\"records\":[{\"recordId\":\"%s\",\"approximateArrivalTimestamp\":1709251200123,"
        "\"data\":\"b25l\",\"kinesisRecordMetadata\":{\"shardId\":\"shardId-000000000000\","
        "\"partitionKey\":\"key \\\"1\\\"\\t\",\"approximateArrivalTimestamp\":1709251200100,"
        "\"sequenceNumber\":\"49546986683135544286507457936321625675700192471156785154\","
        "\"subsequenceNumber\":0}},{\"recordId\":\"%s\",\"approximateArrivalTimestamp\":"
        "1709251200456,\"data\":\"dHdv\",\"kinesisRecordMetadata\":{\"shardId\":"
        "\"shardId-000000000001\",\"partitionKey\":\"k\",\"approximateArrivalTimestamp\":"
        "1709251200200,\"sequenceNumber\":"
        "\"49546986683135544286507457936321625675700192471156785155\","
        "\"subsequenceNumber\":3}}]}\n",
        id, cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "recordId")->valuestring,
        cJSON_GetObjectItem(cJSON_GetArrayItem(list, 1), "recordId")->valuestring);
    assert_string_equal(line, want);
    /* the size the cut reckons is the size built */
    struct sl_fh_wire_ctx ctx = {STREAM_ARN, "eu-west-3",
                                 "arn:aws:kinesis:eu-west-3:123456789012:stream/src"};
    assert_int_equal(sl_fh_wire_head_len(&ctx) + sl_fh_wire_rec_len(&recs[0]) +
                         sl_fh_wire_rec_len(&recs[1]) - 1,
                     strlen(line) - 1);
    powertools_accepts(evs);
    cJSON_Delete(evs);
}

/* ---- answers ---- */

static void test_fh_transform_ok_dropped_failed(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "mix");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {
        {"{\"customer\":42}", 15, 1709251200001, 1, NULL},
        {"drop me", 7, 1709251200002, 2, NULL},
        {"fail me", 7, 1709251200003, 3, NULL},
        {"plain", 5, 1709251200004, 4, NULL},
    };
    fx_run(f, recs, 4);
    assert_int_equal(f->err, 0);
    assert_int_equal(sl_fh_batch_count(f->b), 4);
    assert_int_equal(sl_fh_batch_invocations(f->b), 1);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_string_equal(out(f, 0)->data, "{\"CUSTOMER\":42}");
    assert_string_equal(sl_strmap_get(&out(f, 0)->lambda_keys, "customer_id"), "42");
    assert_int_equal(out(f, 1)->result, SL_FH_DROPPED);
    assert_failed(out(f, 2), SL_FH_ERR_STATUS, 1);
    assert_int_equal(out(f, 3)->result, SL_FH_OK);
    assert_int_equal(out(f, 3)->len, 5);
    assert_memory_equal(out(f, 3)->data, "PLAIN", 5);
    assert_int_equal(out(f, 3)->lambda_keys.n, 0);

    /* the keys are what the S3 layout asks for by name */
    struct sl_s3_layout_conf lc = {.prefix = "customer=!{partitionKeyFromLambda:customer_id}/",
                                   .error_prefix = "errors/!{firehose:error-output-type}/",
                                   .dynamic_partitioning = true};
    struct sl_s3_layout *l = NULL;
    char errbuf[256] = "";
    assert_int_equal(sl_s3_layout_new(&lc, &l, errbuf, sizeof(errbuf)), 0);
    struct sl_s3_vars vars = {.time_ms = 1709251200000, .lambda = &out(f, 0)->lambda_keys};
    struct sl_buf prefix;
    sl_buf_init(&prefix);
    assert_int_equal(sl_s3_layout_prefix(l, &vars, false, &prefix, errbuf, sizeof(errbuf)), 0);
    assert_string_equal(prefix.data, "customer=42/");
    sl_buf_fini(&prefix);
    sl_s3_layout_free(l);

    /* the processing-failed line carries the original bytes */
    struct sl_buf line;
    sl_buf_init(&line);
    assert_int_equal(sl_fh_transform_error_line(&line, &recs[2], out(f, 2), LAMBDA_ARN), 0);
    cJSON *doc = cJSON_Parse(line.data);
    assert_non_null(doc);
    assert_int_equal(line.data[line.len - 1], '\n');
    assert_int_equal(cJSON_GetObjectItem(doc, "attemptsMade")->valueint, 1);
    assert_true(cJSON_GetObjectItem(doc, "arrivalTimestamp")->valuedouble == 1709251200003.0);
    assert_string_equal(cJSON_GetObjectItem(doc, "errorCode")->valuestring,
                        "Lambda.ProcessingFailedStatus");
    assert_true(cJSON_GetObjectItem(doc, "attemptEndingTimestamp")->valuedouble == 1709251200000.0);
    assert_string_equal(cJSON_GetObjectItem(doc, "rawData")->valuestring, "ZmFpbCBtZQ==");
    assert_string_equal(cJSON_GetObjectItem(doc, "lambdaArn")->valuestring, LAMBDA_ARN);
    cJSON_Delete(doc);
    sl_buf_fini(&line);
}

static void test_fh_transform_missing_record_id(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "missing");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}, {"b", 1, 2, 2, NULL}, {"c", 1, 3, 3, NULL}};
    fx_run(f, recs, 3);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_int_equal(out(f, 1)->result, SL_FH_OK);
    assert_failed(out(f, 2), SL_FH_ERR_MISSING, 1); /* not retried */
    assert_int_equal(sl_fh_batch_invocations(f->b), 1);
}

static void test_fh_transform_unknown_record_id(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "unknown");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}, {"b", 1, 2, 2, NULL}};
    fx_run(f, recs, 2);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_memory_equal(out(f, 0)->data, "A", 1);
    assert_failed(out(f, 1), SL_FH_ERR_MISSING, 1);
}

/* An answer that cannot be read as a whole fails every record after the retries. */
static void whole_failure(void **state, const char *mode, const char *code)
{
    struct fx *f = *state;
    fx_exec(f, mode);
    fx_transform(f, 1, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}, {"b", 1, 2, 2, NULL}};
    fx_run(f, recs, 2);
    assert_int_equal(f->err, 0);
    assert_int_equal(sl_fh_batch_invocations(f->b), 2);
    assert_failed(out(f, 0), code, 2);
    assert_failed(out(f, 1), code, 2);
}

static void test_fh_transform_duplicated_record_id(void **state)
{
    whole_failure(state, "duplicated", SL_FH_ERR_DUPLICATED);
}

static void test_fh_transform_bad_base64(void **state)
{
    whole_failure(state, "badbase64", SL_FH_ERR_FUNCTION_ERROR);
}

static void test_fh_transform_bad_result(void **state)
{
    whole_failure(state, "badresult", SL_FH_ERR_FUNCTION_ERROR);
}

static void test_fh_transform_not_json(void **state)
{
    whole_failure(state, "notjson", SL_FH_ERR_JSON);
}

/* A function error is retried NumberOfRetries times, with a new invocationId and the same
 * recordIds, then every record fails. */
static void test_fh_transform_function_error_retried(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "error");
    fx_transform(f, 2, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}, {"b", 1, 2, 2, NULL}};
    fx_run(f, recs, 2);
    assert_int_equal(sl_fh_batch_invocations(f->b), 3);
    assert_failed(out(f, 0), SL_FH_ERR_FUNCTION_ERROR, 3);
    assert_failed(out(f, 1), SL_FH_ERR_FUNCTION_ERROR, 3);
    cJSON *evs = fx_events(f);
    assert_int_equal(cJSON_GetArraySize(evs), 3);
    const char *id0 = cJSON_GetObjectItem(cJSON_GetArrayItem(evs, 0), "invocationId")->valuestring;
    const char *id1 = cJSON_GetObjectItem(cJSON_GetArrayItem(evs, 1), "invocationId")->valuestring;
    assert_string_not_equal(id0, id1);
    char *r0 = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(evs, 0), "records"));
    char *r2 = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(evs, 2), "records"));
    assert_string_equal(r0, r2);
    cJSON_free(r0);
    cJSON_free(r2);
    cJSON_Delete(evs);
}

/* A function that runs past its timeout is retried the same way (Lambda.FunctionError, as
 * Firehose reports a Lambda timeout). */
static void test_fh_transform_timeout_retried(void **state)
{
    struct fx *f = *state;
    fx_exec_timeout(f, "sleep", "300ms");
    fx_transform(f, 1, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}};
    fx_run(f, recs, 1);
    assert_int_equal(sl_fh_batch_invocations(f->b), 2);
    assert_failed(out(f, 0), SL_FH_ERR_FUNCTION_ERROR, 2);
}

static void test_fh_transform_retry_then_ok(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "fail:2");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}};
    fx_run(f, recs, 1);
    assert_int_equal(sl_fh_batch_invocations(f->b), 3);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_int_equal(out(f, 0)->attempts, 3);
}

/* ---- cutting into invocations ---- */

/* BufferSizeInMBs 0.2: five records of 100 KB go two by two, in order, all transformed. */
static void test_fh_transform_split_buffer_size(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "mix");
    fx_transform(f, 0, SL_FH_BUFFER_BYTES_MIN);
    enum { N = 5, LEN = 100 * 1000 };
    char *data = malloc(N * LEN);
    struct sl_fh_rec recs[N];
    for (int i = 0; i < N; i++) {
        memset(data + i * LEN, 'a' + i, LEN);
        recs[i] = (struct sl_fh_rec){data + i * LEN, LEN, 1000 + i, (uint64_t)i, NULL};
    }
    fx_run(f, recs, N);
    assert_int_equal(sl_fh_batch_invocations(f->b), 3);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out(f, i)->result, SL_FH_OK);
        assert_int_equal(out(f, i)->len, LEN);
        assert_int_equal(out(f, i)->data[0], 'A' + i);
    }
    cJSON *evs = fx_events(f);
    int sizes[3] = {0};
    for (int e = 0; e < 3; e++) {
        sizes[e] = cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(evs, e), "records"));
    }
    /* they ran at once: whatever order, 2 + 2 + 1 */
    assert_int_equal(sizes[0] + sizes[1] + sizes[2], N);
    assert_true(sizes[0] <= 2 && sizes[1] <= 2 && sizes[2] <= 2);
    cJSON_Delete(evs);
    free(data);
}

/* Tiny records: the 6 MB of the event binds before 3 MB of input; the size computed for the
 * cut is the size built, byte for byte. */
static void test_fh_transform_split_event_size(void **state)
{
    (void)state;
    enum { N = 60000 };
    struct sl_fh_rec *recs = calloc(N, sizeof(*recs));
    for (size_t i = 0; i < N; i++) {
        recs[i] = (struct sl_fh_rec){"xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz", 48,
                                     1709251200000 + (int64_t)i, i, NULL};
    }
    struct sl_fh_wire_ctx ctx = {STREAM_ARN, "eu-west-3", NULL};
    size_t head = sl_fh_wire_head_len(&ctx);
    size_t lo = 0, calls = 0;
    while (lo < N) {
        bool too_large;
        size_t hi = sl_fh_wire_cut(recs, N, lo, head, SL_FH_BUFFER_BYTES_MAX, &too_large);
        assert_false(too_large);
        assert_true(hi > lo);
        struct sl_buf ev;
        sl_buf_init(&ev);
        assert_int_equal(sl_fh_wire_build(&ev, "00000000-0000-4000-8000-000000000000", &ctx, 12345,
                                          recs, lo, hi),
                         0);
        assert_true(ev.len <= SL_FH_EVENT_MAX_BYTES);
        size_t want = head;
        for (size_t i = lo; i < hi; i++) {
            want += sl_fh_wire_rec_len(&recs[i]);
        }
        assert_int_equal(ev.len, want - 1); /* the last record has no comma */
        if (hi < N) {
            /* one more would not have fit */
            assert_true(ev.len + sl_fh_wire_rec_len(&recs[hi]) > SL_FH_EVENT_MAX_BYTES);
        }
        sl_buf_fini(&ev);
        lo = hi;
        calls++;
    }
    assert_int_equal(calls, 2);
    free(recs);
}

/* A record whose event alone passes 6 MB fails without an invocation; the others go. */
static void test_fh_transform_record_too_large(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "mix");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_MAX);
    size_t big = 4800 * 1000; /* 6.4 MB of base64 */
    char *data = calloc(1, big);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}, {data, big, 2, 2, NULL}, {"c", 1, 3, 3, NULL}};
    fx_run(f, recs, 3);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_failed(out(f, 1), SL_FH_ERR_REQUEST_TOO_LARGE, 0);
    assert_int_equal(out(f, 2)->result, SL_FH_OK);
    assert_int_equal(sl_fh_batch_invocations(f->b), 2);
    free(data);
}

/* ---- stop ---- */

static bool fx_logged(void *arg)
{
    return access(((struct fx *)arg)->log, F_OK) == 0;
}

/* A stop while the function runs: the batch calls back canceled once the invocation ends (here
 * cut short by the caller's sl_function_stop), never from inside stop, no record failed. */
static void test_fh_transform_stop_in_flight(void **state)
{
    struct fx *f = *state;
    fx_exec(f, "sleep");
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"a", 1, 1, 1, NULL}};
    assert_int_equal(sl_fh_transform_start(f->t, recs, 1, fx_cb, f, &f->b), 0);
    assert_true(test_run_until(&f->loop, fx_logged, f, test_deadline_ms(DEADLINE_MS)));
    sl_fh_transform_stop(f->t);
    sl_function_stop(f->fn);
    assert_false(f->done);
    assert_true(test_run_until(&f->loop, fx_done, f, test_deadline_ms(DEADLINE_MS)));
    assert_int_equal(f->err, SL_ECANCELED);
    assert_int_equal(sl_fh_batch_invocations(f->b), 1);
}

/* ---- an http function ---- */

/* Answers a transformation event with every record Ok, its data as is, keyed by its length. */
static void http_answer(void *arg, int fd, const char *head, size_t hl, const char *body, size_t bl)
{
    (void)arg;
    (void)head;
    (void)hl;
    cJSON *ev = cJSON_ParseWithLength(body, bl);
    cJSON *resp = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(resp, "records");
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(ev, "records"))
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "recordId", cJSON_GetObjectItem(r, "recordId")->valuestring);
        cJSON_AddStringToObject(o, "result", "Ok");
        const char *data = cJSON_GetObjectItem(r, "data")->valuestring;
        cJSON_AddStringToObject(o, "data", data);
        cJSON *keys =
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(o, "metadata"), "partitionKeys");
        cJSON_AddNumberToObject(keys, "b64len", (double)strlen(data));
        cJSON_AddItemToArray(list, o);
    }
    char *text = cJSON_PrintUnformatted(resp);
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n",
                     strlen(text));
    http_peer_send_all(fd, hdr, (size_t)n);
    http_peer_send_all(fd, text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(resp);
    cJSON_Delete(ev);
}

static void test_fh_transform_http_function(void **state)
{
    struct fx *f = *state;
    struct http_peer peer;
    http_peer_start(&peer, http_answer, NULL);
    char json[256];
    (void)snprintf(json, sizeof(json), "{\"type\":\"http\",\"url\":\"http://127.0.0.1:%d/\"}",
                   peer.port);
    fx_function(f, json);
    fx_transform(f, 3, SL_FH_BUFFER_BYTES_DEFAULT);
    struct sl_fh_rec recs[] = {{"hello", 5, 1, 1, NULL}, {"world!", 6, 2, 2, NULL}};
    fx_run(f, recs, 2);
    http_peer_stop(&peer);
    assert_int_equal(out(f, 0)->result, SL_FH_OK);
    assert_string_equal(out(f, 0)->data, "hello");
    assert_string_equal(sl_strmap_get(&out(f, 0)->lambda_keys, "b64len"), "8");
    assert_string_equal(out(f, 1)->data, "world!");
    assert_string_equal(sl_strmap_get(&out(f, 1)->lambda_keys, "b64len"), "8");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fh_transform_event_shape),       T(test_fh_transform_event_kinesis_source),
        T(test_fh_transform_ok_dropped_failed), T(test_fh_transform_missing_record_id),
        T(test_fh_transform_unknown_record_id), T(test_fh_transform_duplicated_record_id),
        T(test_fh_transform_bad_base64),        T(test_fh_transform_bad_result),
        T(test_fh_transform_not_json),          T(test_fh_transform_function_error_retried),
        T(test_fh_transform_timeout_retried),   T(test_fh_transform_retry_then_ok),
        T(test_fh_transform_split_buffer_size), T(test_fh_transform_split_event_size),
        T(test_fh_transform_record_too_large),  T(test_fh_transform_stop_in_flight),
        T(test_fh_transform_http_function),
    };
    return cmocka_run_group_tests_name("fh_transform", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_fh_http.c: Firehose's HTTP endpoint delivery (sinks/fh_http.h) against a scripted
 * endpoint of our own (fh_endpoint.c): the configuration's defaults and errors, the exact
 * request (body and headers, GZIP round trip), the requestId kept across retries, each failure
 * retried until the retry duration is used up and then reported with Firehose's error code,
 * DurationInSeconds 0, 413, cancel, the access key kept out of the log, and the backup lines.
 * The retry duration runs on a fake clock the test advances at each retry; the real waits are
 * 1 ms (the policy), so nothing sleeps. */
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

#include "encoder.h"
#include "fh_endpoint.h"
#include "fh_http.h"
#include "helpers.h"
#include "log.h"

#define WALL0      1700000000123LL
#define SOURCE_ARN "arn:aws:firehose:us-east-1:123456789012:deliverystream/clicks"
#define SECRET     "sEcReT-kEy-42"

struct fx {
    uv_loop_t loop;
    struct sl_httpc *h;
    struct sl_clock_fake clock;
    struct fh_endpoint ep;
    bool ep_started;
    uv_async_t wake; /* the endpoint wakes the loop when a request arrives */
    struct sl_fh_http_conf conf;
    struct sl_retry_policy policy;
    struct sl_fh_http_delivery *d;
    int64_t advance_ms; /* the fake time each retry's wait takes */
    bool cancel_on_retry;
    /* done */
    int calls;
    struct sl_fh_http_result res;
    char code[128];
    char message[16384];
    char request_id[80];
    size_t want_reqs;
    /* retrying */
    int retries;
    int64_t last_delay;
};

static const struct sl_fh_http_rec recs3[] = {
    {"{\"a\":1}\n", 8, WALL0 - 3000, NULL},
    {"", 0, WALL0 - 2000, NULL},
    {"\x00\xff\xfe caf\xc3\xa9", 10, WALL0 - 1000, "my-data-id"},
};

/* Request ids from a fixed byte pattern. */
static void fixed_rand(void *arg, unsigned char *buf, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (unsigned char)(0x11 * (i + 1));
    }
}
#define FIXED_ID "11223344-5566-4788-99aa-bbccddeeff10"

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->h), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    sl_clock_fake_init(&f->clock, 1000, WALL0);
    f->policy = (struct sl_retry_policy){1, 1, 0};
    f->advance_ms = 4000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->ep_started) {
        fh_ep_stop(&f->ep);
    }
    uv_close((uv_handle_t *)&f->wake, NULL);
    sl_httpc_free(f->h);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_fh_http_conf_fini(&f->conf);
    free(f);
    return 0;
}

/* Parses conf_json (with %s for the endpoint's URL) into f->conf. */
static void load_conf(struct fx *f, const char *conf_json)
{
    char text[4096];
    const char *url = f->ep_started ? f->ep.url : "http://127.0.0.1:1/";
    const char *at = strstr(conf_json, "%s");
    if (at) {
        (void)snprintf(text, sizeof text, "%.*s%s%s", (int)(at - conf_json), conf_json, url,
                       at + 2);
    } else {
        (void)snprintf(text, sizeof text, "%s", conf_json);
    }
    cJSON *obj = cJSON_Parse(text);
    assert_non_null(obj);
    char err[512];
    int r = sl_fh_http_conf_parse(obj, "$.d", &f->conf, err, sizeof err);
    cJSON_Delete(obj);
    if (r != 0) {
        fail_msg("conf: %s", err);
    }
}

static void start_ep(struct fx *f, const enum fh_ep_step *steps, size_t n)
{
    fh_ep_start(&f->ep, steps, n, &f->wake);
    f->ep_started = true;
}

static void on_done(void *arg, struct sl_fh_http_delivery *d, const struct sl_fh_http_result *res)
{
    struct fx *f = arg;
    assert_ptr_equal(d, f->d);
    f->calls++;
    f->res = *res;
    (void)snprintf(f->code, sizeof f->code, "%s", res->error_code ? res->error_code : "");
    (void)snprintf(f->message, sizeof f->message, "%s", res->error_message);
    (void)snprintf(f->request_id, sizeof f->request_id, "%s", res->request_id);
    f->res.error_code = f->code;
    f->res.error_message = f->message;
    f->res.request_id = f->request_id;
}

static void on_retrying(void *arg, const struct sl_fh_http_result *last, int64_t delay_ms)
{
    struct fx *f = arg;
    f->retries++;
    f->last_delay = delay_ms;
    assert_int_equal(last->attempts, (unsigned)f->retries);
    assert_true(last->err < 0);
    sl_clock_fake_advance(&f->clock, f->advance_ms);
    if (f->cancel_on_retry) {
        sl_fh_http_cancel(f->d);
    }
}

static bool done(void *arg)
{
    return ((struct fx *)arg)->calls > 0;
}

static bool reqs_seen(void *arg)
{
    struct fx *f = arg;
    return fh_ep_count(&f->ep) >= f->want_reqs;
}

static void deliver(struct fx *f, const struct sl_fh_http_rec *recs, size_t n)
{
    struct sl_fh_http_env env = {
        .loop = &f->loop,
        .httpc = f->h,
        .clock = &f->clock.clock,
        .inst = "clicks",
        .source_arn = SOURCE_ARN,
        .policy = &f->policy,
        .seed = 42,
        .rand = fixed_rand,
    };
    static const struct sl_fh_http_ops ops = {on_done, on_retrying};
    assert_int_equal(sl_fh_http_deliver(&f->conf, &env, recs, n, &ops, f, &f->d), 0);
    assert_int_equal(f->calls, 0); /* never from inside deliver */
    assert_true(test_run_until(&f->loop, done, f, test_deadline_ms(20000)));
    assert_int_equal(f->calls, 1);
}

static void test_fh_http_conf_defaults(void **state)
{
    struct fx *f = *state;
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"https://example.com/x\"}}");
    assert_string_equal(f->conf.url, "https://example.com/x");
    assert_null(f->conf.name);
    assert_null(f->conf.access_key);
    assert_false(f->conf.gzip);
    assert_null(f->conf.common_attributes);
    assert_int_equal(f->conf.size_bytes, 5 * 1024 * 1024);
    assert_int_equal(f->conf.interval_ms, 300000);
    assert_int_equal(f->conf.retry_duration_ms, 300000);
    assert_int_equal(f->conf.response_timeout_ms, 180000);
    assert_false(f->conf.backup_all);
}

static void test_fh_http_conf_full(void **state)
{
    struct fx *f = *state;
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"http://127.0.0.1:9/in\",\"Name\":\"ep\","
                 "\"AccessKey\":\"k\"},\"RequestConfiguration\":{\"ContentEncoding\":\"GZIP\","
                 "\"CommonAttributes\":[{\"AttributeName\":\"env\",\"AttributeValue\":\"prod\"},"
                 "{\"AttributeName\":\"q\\\"\",\"AttributeValue\":\"\"}]},"
                 "\"BufferingHints\":{\"SizeInMBs\":1,\"IntervalInSeconds\":0},"
                 "\"RetryOptions\":{\"DurationInSeconds\":0},\"S3BackupMode\":\"AllData\","
                 "\"response_timeout\":\"500ms\",\"RoleARN\":\"arn:aws:iam::1:role/r\","
                 "\"S3Configuration\":{\"BucketARN\":\"arn:aws:s3:::b\"}}");
    assert_string_equal(f->conf.name, "ep");
    assert_string_equal(f->conf.access_key, "k");
    assert_true(f->conf.gzip);
    assert_string_equal(f->conf.common_attributes,
                        "{\"commonAttributes\":{\"env\":\"prod\",\"q\\\"\":\"\"}}");
    assert_int_equal(f->conf.n_attrs, 2);
    assert_int_equal(f->conf.size_bytes, 1024 * 1024);
    assert_int_equal(f->conf.interval_ms, 0);
    assert_int_equal(f->conf.retry_duration_ms, 0);
    assert_int_equal(f->conf.response_timeout_ms, 500);
    assert_true(f->conf.backup_all);
}

static void test_fh_http_conf_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[]", "$.d: must be an object"},
        {"{}", "$.d.EndpointConfiguration: is required"},
        {"{\"EndpointConfiguration\":{\"Url\":\"ftp://x/\"}}", "$.d.EndpointConfiguration.Url: "},
        {"{\"EndpointConfiguration\":{}}", "$.d.EndpointConfiguration.Url: is required"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\",\"Nme\":\"a\"}}",
         "$.d.EndpointConfiguration.Nme: unknown key; allowed: Url Name AccessKey"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\",\"AccessKey\":\"a\\nb\"}}",
         "$.d.EndpointConfiguration.AccessKey: must not hold control characters"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"Bogus\":1}",
         "$.d.Bogus: unknown key; allowed: EndpointConfiguration"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"RequestConfiguration\":"
         "{\"ContentEncoding\":\"ZIP\"}}",
         "$.d.RequestConfiguration.ContentEncoding: must be \"NONE\" or \"GZIP\""},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"RequestConfiguration\":"
         "{\"CommonAttributes\":[{\"AttributeName\":\"a\",\"AttributeValue\":\"1\"},"
         "{\"AttributeName\":\"a\",\"AttributeValue\":\"2\"}]}}",
         "$.d.RequestConfiguration.CommonAttributes[1].AttributeName: names an attribute already "
         "given"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"RequestConfiguration\":"
         "{\"CommonAttributes\":[{\"AttributeName\":\"\",\"AttributeValue\":\"1\"}]}}",
         "$.d.RequestConfiguration.CommonAttributes[0].AttributeName: must be 1 to 256"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"BufferingHints\":"
         "{\"SizeInMBs\":65}}",
         "$.d.BufferingHints.SizeInMBs: must be a whole number from 1 to 64"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"BufferingHints\":"
         "{\"IntervalInSeconds\":1.5}}",
         "$.d.BufferingHints.IntervalInSeconds: must be a whole number from 0 to 900"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"RetryOptions\":"
         "{\"DurationInSeconds\":7201}}",
         "$.d.RetryOptions.DurationInSeconds: must be a whole number from 0 to 7200"},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"response_timeout\":\"3 days\"}",
         "$.d.response_timeout: must be a duration from \"100ms\" to \"1h\""},
        {"{\"EndpointConfiguration\":{\"Url\":\"https://x/\"},\"S3BackupMode\":\"Enabled\"}",
         "$.d.S3BackupMode: must be \"FailedDataOnly\" (default) or \"AllData\""},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        cJSON *obj = cJSON_Parse(cases[i].json);
        assert_non_null(obj);
        struct sl_fh_http_conf c;
        char err[512];
        int r = sl_fh_http_conf_parse(obj, "$.d", &c, err, sizeof err);
        sl_fh_http_conf_fini(&c);
        cJSON_Delete(obj);
        assert_int_equal(r, SL_ECONFIG);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, cases[i].want);
        }
    }
}

/* The body Firehose sends for recs3 with FIXED_ID at WALL0. */
static void want_body(struct sl_buf *b)
{
    sl_buf_init(b);
    assert_int_equal(sl_buf_printf(b, "{\"requestId\":\"%s\",\"timestamp\":%lld,\"records\":[",
                                   FIXED_ID, (long long)WALL0),
                     0);
    for (size_t i = 0; i < SL_ARRAY_LEN(recs3); i++) {
        assert_int_equal(sl_buf_puts(b, i ? ",{\"data\":\"" : "{\"data\":\""), 0);
        assert_int_equal(sl_enc_base64(b, recs3[i].data, recs3[i].len), 0);
        assert_int_equal(sl_buf_puts(b, "\"}"), 0);
    }
    assert_int_equal(sl_buf_puts(b, "]}"), 0);
}

static void assert_header(struct fx *f, size_t i, const char *name, const char *want)
{
    char *v = fh_ep_header(&f->ep, i, name);
    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static void check_request(struct fx *f, bool gzip)
{
    static const enum fh_ep_step ok[] = {FH_EP_OK};
    start_ep(f, ok, 1);
    load_conf(f,
              gzip ? "{\"EndpointConfiguration\":{\"Url\":\"%s\",\"AccessKey\":\"" SECRET "\"},"
                     "\"RequestConfiguration\":{\"ContentEncoding\":\"GZIP\",\"CommonAttributes\":"
                     "[{\"AttributeName\":\"env\",\"AttributeValue\":\"prod\"}]}}"
                   : "{\"EndpointConfiguration\":{\"Url\":\"%s\",\"AccessKey\":\"" SECRET "\"},"
                     "\"RequestConfiguration\":{\"CommonAttributes\":"
                     "[{\"AttributeName\":\"env\",\"AttributeValue\":\"prod\"}]}}");
    deliver(f, recs3, SL_ARRAY_LEN(recs3));
    assert_int_equal(f->res.err, 0);
    assert_int_equal(f->res.attempts, 1);
    assert_int_equal(f->res.status, 200);
    assert_string_equal(f->request_id, FIXED_ID);
    assert_int_equal(f->retries, 0);
    assert_int_equal(fh_ep_count(&f->ep), 1);

    struct fh_ep_req *rq = &f->ep.reqs[0];
    assert_true(strncmp(rq->head, "POST /ingest?k=v HTTP/1.1\r\n", 27) == 0);
    assert_header(f, 0, "Content-Type", "application/json");
    assert_header(f, 0, "Content-Encoding", gzip ? "gzip" : NULL);
    assert_header(f, 0, "X-Amz-Firehose-Protocol-Version", "1.0");
    assert_header(f, 0, "X-Amz-Firehose-Request-Id", FIXED_ID);
    assert_header(f, 0, "X-Amz-Firehose-Source-Arn", SOURCE_ARN);
    assert_header(f, 0, "X-Amz-Firehose-Access-Key", SECRET);
    assert_header(f, 0, "X-Amz-Firehose-Common-Attributes",
                  "{\"commonAttributes\":{\"env\":\"prod\"}}");
    assert_header(f, 0, "Expect", NULL);
    char len[32];
    (void)snprintf(len, sizeof len, "%zu", rq->raw.len);
    assert_header(f, 0, "Content-Length", len);

    struct sl_buf want;
    want_body(&want);
    assert_int_equal(rq->body.len, want.len);
    assert_memory_equal(rq->body.data, want.data, want.len);
    if (gzip) {
        assert_true(rq->raw.len >= 2 && (unsigned char)rq->raw.data[0] == 0x1f &&
                    (unsigned char)rq->raw.data[1] == 0x8b);
    }
    sl_buf_fini(&want);

    /* and each record decodes back to its bytes */
    cJSON *doc = cJSON_ParseWithLength(rq->body.data, rq->body.len);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "records");
    assert_int_equal(cJSON_GetArraySize(arr), 3);
    for (int i = 0; i < 3; i++) {
        const char *b64 = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i), "data"));
        struct sl_buf raw;
        sl_buf_init(&raw);
        assert_int_equal(sl_enc_base64_decode(&raw, b64, strlen(b64)), 0);
        assert_int_equal(raw.len, recs3[i].len);
        if (raw.len) {
            assert_memory_equal(raw.data, recs3[i].data, raw.len);
        }
        sl_buf_fini(&raw);
    }
    cJSON_Delete(doc);
}

static void test_fh_http_request_exact(void **state)
{
    check_request(*state, false);
}

static void test_fh_http_gzip_round_trip(void **state)
{
    check_request(*state, true);
}

static void test_fh_http_request_id_stable(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_500, FH_EP_CLOSE, FH_EP_OK};
    start_ep(f, steps, 3);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"},\"RequestConfiguration\":"
                 "{\"ContentEncoding\":\"GZIP\"}}");
    f->advance_ms = 1000;
    deliver(f, recs3, SL_ARRAY_LEN(recs3));
    assert_int_equal(f->res.err, 0);
    assert_int_equal(f->res.attempts, 3);
    assert_int_equal(f->retries, 2);
    assert_int_equal(fh_ep_count(&f->ep), 3);
    for (size_t i = 0; i < 3; i++) {
        assert_header(f, i, "X-Amz-Firehose-Request-Id", f->request_id);
        assert_int_equal(f->ep.reqs[i].raw.len, f->ep.reqs[0].raw.len);
        assert_memory_equal(f->ep.reqs[i].raw.data, f->ep.reqs[0].raw.data, f->ep.reqs[0].raw.len);
    }
}

/* Each failure is retried until the retry duration (10 s, each wait taking 4 s of the fake
 * clock: 0, 4, 8, 12) is used up, then reported with its code: four attempts. */
static void check_failure(struct fx *f, enum fh_ep_step step, const char *code, int err)
{
    static const char conf[] = "{\"EndpointConfiguration\":{\"Url\":\"%s\"},"
                               "\"RetryOptions\":{\"DurationInSeconds\":10},"
                               "\"response_timeout\":\"200ms\"}";
    if (step == FH_EP_STEP_COUNT) {
        load_conf(f, conf); /* a closed port */
    } else {
        start_ep(f, &step, 1);
        load_conf(f, conf);
    }
    deliver(f, recs3, 1);
    assert_int_equal(f->res.err, err);
    assert_string_equal(f->code, code);
    assert_int_equal(f->res.attempts, 4);
    assert_int_equal(f->retries, 3);
    assert_false(f->res.permanent);
    assert_int_equal(f->res.attempt_ending_ms, WALL0 + 12000);
    assert_true(f->message[0] != '\0');
    if (f->ep_started) {
        assert_int_equal(fh_ep_count(&f->ep), 4);
    }
}

static void test_fh_http_fail_500(void **state)
{
    struct fx *f = *state;
    check_failure(f, FH_EP_500, SL_FH_HTTP_DESTINATION_EXCEPTION, SL_EREMOTE);
    assert_int_equal(f->res.status, 500);
    const char *want = "The following response was received from the endpoint destination. 500: "
                       "{\"requestId\":\"" FIXED_ID "\",\"timestamp\":1700000000456,"
                       "\"errorMessage\":\"boom\"}";
    assert_string_equal(f->message, want);
}

static void test_fh_http_fail_wrong_id(void **state)
{
    struct fx *f = *state;
    check_failure(f, FH_EP_WRONG_ID, SL_FH_HTTP_INVALID_RESPONSE, SL_EPROTO);
    assert_non_null(strstr(f->message, "requestId is not the request's"));
}

static void test_fh_http_fail_no_id(void **state)
{
    check_failure(*state, FH_EP_NO_ID, SL_FH_HTTP_INVALID_RESPONSE, SL_EPROTO);
}

static void test_fh_http_fail_content_type(void **state)
{
    check_failure(*state, FH_EP_TEXT, SL_FH_HTTP_INVALID_RESPONSE, SL_EPROTO);
}

static void test_fh_http_fail_timeout(void **state)
{
    check_failure(*state, FH_EP_SILENT, SL_FH_HTTP_REQUEST_TIMEOUT, SL_ETIMEDOUT);
}

static void test_fh_http_fail_no_answer(void **state)
{
    check_failure(*state, FH_EP_CLOSE, SL_FH_HTTP_CONNECTION_RESET, SL_EIO);
}

static void test_fh_http_fail_unreachable(void **state)
{
    check_failure(*state, FH_EP_STEP_COUNT, SL_FH_HTTP_CONNECTION_FAILED, SL_EIO);
}

static void test_fh_http_slow_answer_ok(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step slow[] = {FH_EP_SLOW};
    start_ep(f, slow, 1);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"}}");
    deliver(f, recs3, 1);
    assert_int_equal(f->res.err, 0);
    assert_int_equal(f->res.attempts, 1);
}

/* An AccessKey of "" is sent as an empty header, not dropped. */
static void test_fh_http_empty_access_key(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step ok[] = {FH_EP_OK};
    start_ep(f, ok, 1);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\",\"AccessKey\":\"\"}}");
    deliver(f, recs3, 1);
    assert_int_equal(f->res.err, 0);
    assert_header(f, 0, "X-Amz-Firehose-Access-Key", "");
    assert_header(f, 0, "X-Amz-Firehose-Common-Attributes", NULL);
}

static void test_fh_http_duration_zero(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_500, FH_EP_OK};
    start_ep(f, steps, 2);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"},"
                 "\"RetryOptions\":{\"DurationInSeconds\":0}}");
    deliver(f, recs3, 1);
    assert_int_equal(f->res.err, SL_EREMOTE);
    assert_string_equal(f->code, SL_FH_HTTP_DESTINATION_EXCEPTION);
    assert_int_equal(f->res.attempts, 1);
    assert_int_equal(f->retries, 0);
    assert_int_equal(fh_ep_count(&f->ep), 1);
}

static void test_fh_http_413_permanent(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_413, FH_EP_OK};
    start_ep(f, steps, 2);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"}}");
    deliver(f, recs3, 1);
    assert_int_equal(f->res.err, SL_EREJECTED);
    assert_true(f->res.permanent);
    assert_int_equal(f->res.status, 413);
    assert_int_equal(f->res.attempts, 1);
    assert_int_equal(fh_ep_count(&f->ep), 1);
}

/* The last wait is cut to what is left of the duration. */
static void test_fh_http_last_wait_cut(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_500};
    start_ep(f, steps, 1);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"},"
                 "\"RetryOptions\":{\"DurationInSeconds\":1}}");
    f->policy = (struct sl_retry_policy){5000, 5000, 0};
    f->advance_ms = 1000;
    f->cancel_on_retry = true; /* real waits of 1 s are not for unit tests */
    deliver(f, recs3, 1);
    assert_int_equal(f->last_delay, 1000);
    assert_int_equal(f->res.err, SL_ECANCELED);
    assert_string_equal(f->code, "");
}

/* The retry duration counts the waits between attempts, never the time spent waiting for an
 * answer: 100 s pass during each attempt (the gate holds the answer meanwhile), 1 s in each wait,
 * and a 10 s duration still allows the third attempt. */
static void test_fh_http_answer_time_not_counted(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_GATED_500, FH_EP_GATED_500, FH_EP_OK};
    start_ep(f, steps, 3);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"},"
                 "\"RetryOptions\":{\"DurationInSeconds\":10}}");
    f->advance_ms = 1000;
    struct sl_fh_http_env env = {.loop = &f->loop,
                                 .httpc = f->h,
                                 .clock = &f->clock.clock,
                                 .policy = &f->policy,
                                 .rand = fixed_rand};
    static const struct sl_fh_http_ops ops = {on_done, on_retrying};
    assert_int_equal(sl_fh_http_deliver(&f->conf, &env, recs3, 1, &ops, f, &f->d), 0);
    for (size_t k = 1; k <= 2; k++) {
        f->want_reqs = k;
        assert_true(test_run_until(&f->loop, reqs_seen, f, test_deadline_ms(10000)));
        sl_clock_fake_advance(&f->clock, 100000); /* the attempt in flight takes 100 s */
        fh_ep_open_gate(&f->ep);
    }
    assert_true(test_run_until(&f->loop, done, f, test_deadline_ms(20000)));
    assert_int_equal(f->res.err, 0);
    assert_int_equal(f->res.attempts, 3);
    assert_int_equal(f->retries, 2);
}

static void test_fh_http_cancel_in_flight(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_SILENT};
    start_ep(f, steps, 1);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"}}");
    struct sl_fh_http_env env = {.loop = &f->loop,
                                 .httpc = f->h,
                                 .clock = &f->clock.clock,
                                 .policy = &f->policy,
                                 .request_id = "given-id-1"};
    static const struct sl_fh_http_ops ops = {on_done, NULL};
    assert_int_equal(sl_fh_http_deliver(&f->conf, &env, recs3, 1, &ops, f, &f->d), 0);
    assert_string_equal(sl_fh_http_request_id(f->d), "given-id-1");
    f->want_reqs = 1;
    assert_true(test_run_until(&f->loop, reqs_seen, f, test_deadline_ms(10000)));
    sl_fh_http_cancel(f->d);
    assert_int_equal(f->calls, 0);
    assert_true(test_run_until(&f->loop, done, f, test_deadline_ms(10000)));
    assert_int_equal(f->res.err, SL_ECANCELED);
    assert_int_equal(f->res.attempts, 1);
    assert_string_equal(f->request_id, "given-id-1");
}

static void test_fh_http_bad_args(void **state)
{
    struct fx *f = *state;
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"}}");
    struct sl_fh_http_env env = {
        .loop = &f->loop, .httpc = f->h, .clock = &f->clock.clock, .request_id = "bad id"};
    static const struct sl_fh_http_ops ops = {on_done, NULL};
    assert_int_equal(sl_fh_http_deliver(&f->conf, &env, recs3, 1, &ops, f, &f->d), SL_EINVAL);
    env.request_id = NULL;
    assert_int_equal(sl_fh_http_deliver(&f->conf, &env, recs3, 0, &ops, f, &f->d), SL_EINVAL);
}

static void test_fh_http_key_not_logged(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_500, FH_EP_CLOSE, FH_EP_WRONG_ID, FH_EP_OK};
    start_ep(f, steps, 4);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\",\"AccessKey\":\"" SECRET "\"}}");
    FILE *lf = tmpfile();
    assert_non_null(lf);
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_HUMAN, fileno(lf));
    deliver(f, recs3, 1);
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    assert_int_equal(f->res.err, 0);
    assert_int_equal(f->res.attempts, 4);
    char text[16384];
    rewind(lf);
    size_t n = fread(text, 1, sizeof text - 1, lf);
    text[n] = '\0';
    (void)fclose(lf);
    assert_non_null(strstr(text, FIXED_ID)); /* the lines are there */
    assert_non_null(strstr(text, "retrying"));
    assert_null(strstr(text, SECRET));
    assert_null(strstr(text, "k=v")); /* the URL's query is redacted */
}

static void test_fh_http_error_lines(void **state)
{
    struct fx *f = *state;
    static const enum fh_ep_step steps[] = {FH_EP_500};
    start_ep(f, steps, 1);
    load_conf(f, "{\"EndpointConfiguration\":{\"Url\":\"%s\"},"
                 "\"RetryOptions\":{\"DurationInSeconds\":0}}");
    deliver(f, recs3, SL_ARRAY_LEN(recs3));
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_fh_http_error_lines(recs3, SL_ARRAY_LEN(recs3), &f->res, &out), 0);
    static const char *const keys[] = {
        "attemptsMade",           "arrivalTimestamp", "errorCode",         "errorMessage",
        "attemptEndingTimestamp", "rawData",          "subsequenceNumber", "dataId"};
    const char *line = out.data;
    for (size_t i = 0; i < SL_ARRAY_LEN(recs3); i++) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        cJSON *doc = cJSON_ParseWithLength(line, (size_t)(nl - line));
        assert_non_null(doc);
        const cJSON *it = doc->child;
        for (size_t k = 0; k < SL_ARRAY_LEN(keys); k++, it = it->next) {
            assert_non_null(it);
            assert_string_equal(it->string, keys[k]);
        }
        assert_null(it);
        assert_int_equal(cJSON_GetObjectItem(doc, "attemptsMade")->valuedouble, 1);
        assert_int_equal((int64_t)cJSON_GetObjectItem(doc, "arrivalTimestamp")->valuedouble,
                         recs3[i].arrival_ms);
        assert_string_equal(cJSON_GetObjectItem(doc, "errorCode")->valuestring,
                            SL_FH_HTTP_DESTINATION_EXCEPTION);
        assert_string_equal(cJSON_GetObjectItem(doc, "errorMessage")->valuestring, f->message);
        assert_int_equal((int64_t)cJSON_GetObjectItem(doc, "attemptEndingTimestamp")->valuedouble,
                         WALL0);
        const char *b64 = cJSON_GetObjectItem(doc, "rawData")->valuestring;
        struct sl_buf raw;
        sl_buf_init(&raw);
        assert_int_equal(sl_enc_base64_decode(&raw, b64, strlen(b64)), 0);
        assert_int_equal(raw.len, recs3[i].len);
        if (raw.len) {
            assert_memory_equal(raw.data, recs3[i].data, raw.len);
        }
        sl_buf_fini(&raw);
        assert_int_equal(cJSON_GetObjectItem(doc, "subsequenceNumber")->valuedouble, 0);
        char want_id[80];
        (void)snprintf(want_id, sizeof want_id, "%s.%zu", FIXED_ID, i);
        assert_string_equal(cJSON_GetObjectItem(doc, "dataId")->valuestring,
                            recs3[i].data_id ? recs3[i].data_id : want_id);
        cJSON_Delete(doc);
        line = nl + 1;
    }
    assert_int_equal(*line, '\0');
    sl_buf_fini(&out);
}

static void test_fh_http_backoff(void **state)
{
    (void)state;
    unsetenv("SLUICE_RETRY_BASE_MS");
    unsetenv("SLUICE_RETRY_MAX_MS");
    struct sl_retry_policy p;
    sl_fh_http_policy(&p);
    assert_int_equal(p.base_ms, 1000);
    assert_int_equal(p.max_ms, 120000);
    uint64_t rng = 7;
    static const int64_t ceilings[] = {1000, 2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000};
    for (unsigned a = 1; a <= SL_ARRAY_LEN(ceilings); a++) {
        for (int k = 0; k < 50; k++) {
            int64_t d = sl_fh_http_backoff_ms(&p, a, &rng);
            assert_true(d >= ceilings[a - 1] * 85 / 100 && d <= ceilings[a - 1] * 115 / 100);
        }
    }
    setenv("SLUICE_RETRY_BASE_MS", "20", 1);
    setenv("SLUICE_RETRY_MAX_MS", "200", 1);
    sl_fh_http_policy(&p);
    assert_int_equal(p.base_ms, 20);
    assert_int_equal(p.max_ms, 200);
    unsetenv("SLUICE_RETRY_BASE_MS");
    unsetenv("SLUICE_RETRY_MAX_MS");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    const struct CMUnitTest tests[] = {
        T(test_fh_http_conf_defaults),
        T(test_fh_http_conf_full),
        T(test_fh_http_conf_errors),
        T(test_fh_http_request_exact),
        T(test_fh_http_gzip_round_trip),
        T(test_fh_http_request_id_stable),
        T(test_fh_http_fail_500),
        T(test_fh_http_fail_wrong_id),
        T(test_fh_http_fail_no_id),
        T(test_fh_http_fail_content_type),
        T(test_fh_http_fail_timeout),
        T(test_fh_http_fail_no_answer),
        T(test_fh_http_fail_unreachable),
        T(test_fh_http_slow_answer_ok),
        T(test_fh_http_empty_access_key),
        T(test_fh_http_duration_zero),
        T(test_fh_http_413_permanent),
        T(test_fh_http_last_wait_cut),
        T(test_fh_http_answer_time_not_counted),
        T(test_fh_http_cancel_in_flight),
        T(test_fh_http_bad_args),
        T(test_fh_http_key_not_logged),
        T(test_fh_http_error_lines),
        T(test_fh_http_backoff),
    };
    return cmocka_run_group_tests_name("fh_http", tests, NULL, NULL);
}

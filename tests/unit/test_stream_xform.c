/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream_xform.c: a delivery stream's transform stage (stream_xform.c) on a real loop with
 * a fake function the test answers by hand: records gather until BufferSizeInMBs (a batch of
 * all of them, none before), each outcome reaches the stream (Ok with the new bytes and the
 * function's partition keys, Dropped, Failed with its processing-failed line holding the
 * ORIGINAL bytes), the buffer refuses room while full, and a cancel while the function holds
 * the batch reports no outcome at all (the records stay in the spool) and stops the function.
 * No sleeps: test_run_until with deadlines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "clock.h"
#include "function.h"
#include "helpers.h"
#include "spool.h"
#include "stream_xform.h"

struct fx {
    uv_loop_t loop;
    struct sl_clock_fake clock;
    struct sl_function fn;
    struct sl_fh_transform_conf conf;
    struct sl_stream_xform *x;
    /* the fake function */
    char *event;
    sl_invoke_cb cb;
    void *cb_arg;
    unsigned invokes;
    unsigned stops;
    /* outcomes */
    char ok[256];
    char keys[64];
    uint64_t dropped_id;
    char failed[512];
    unsigned done;
};

static int fake_invoke(void *ctx, const char *body, size_t len, sl_invoke_cb cb, void *arg)
{
    struct fx *f = ctx;
    free(f->event);
    f->event = strndup(body, len);
    f->cb = cb;
    f->cb_arg = arg;
    f->invokes++;
    return 0;
}

static void fake_stop(void *ctx)
{
    struct fx *f = ctx;
    f->stops++;
    if (f->cb) {
        struct sl_invoke_result res = {.outcome = SL_OUTCOME_TRANSPORT_ERROR, .detail = "canceled"};
        sl_invoke_cb cb = f->cb;
        f->cb = NULL;
        cb(f->cb_arg, &res);
    }
}

static const struct sl_function_ops fake_ops = {
    .abi = SL_FUNCTION_ABI, .name = "fake", .invoke = fake_invoke, .stop = fake_stop};

static void on_ok(void *arg, const struct sl_fh_rec *in, const struct sl_fh_out *out)
{
    struct fx *f = arg;
    size_t n = strlen(f->ok);
    (void)snprintf(f->ok + n, sizeof(f->ok) - n, "%llu:%.*s;", (unsigned long long)in->tag,
                   (int)out->len, out->data);
    const char *k = sl_strmap_get(&out->lambda_keys, "k");
    if (k) {
        (void)snprintf(f->keys, sizeof(f->keys), "%s", k);
    }
}

static void on_dropped(void *arg, const struct sl_fh_rec *in)
{
    ((struct fx *)arg)->dropped_id = in->tag;
}

static void on_failed(void *arg, const struct sl_fh_rec *in, const char *line, size_t len)
{
    struct fx *f = arg;
    (void)in;
    (void)snprintf(f->failed, sizeof(f->failed), "%.*s", (int)len, line);
}

static void on_done(void *arg)
{
    ((struct fx *)arg)->done++;
}

static const struct sl_stream_xform_ops ops = {
    .ok = on_ok, .dropped = on_dropped, .failed = on_failed, .done = on_done};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    sl_clock_fake_init(&f->clock, 0, 1714568862000);
    f->fn = (struct sl_function){.ops = &fake_ops, .ctx = f, .name = "xf"};
    f->conf = (struct sl_fh_transform_conf){.enabled = true,
                                            .lambda_arn = "xf",
                                            .number_of_retries = 0,
                                            .buffer_bytes = 10,
                                            .buffer_interval_ms = 900000};
    struct sl_stream_xform_env env = {.loop = &f->loop,
                                      .clock = &f->clock.clock,
                                      .conf = &f->conf,
                                      .fn = &f->fn,
                                      .stream_arn = "arn:aws:firehose:us-east-1:1:deliverystream/s",
                                      .inst = "s",
                                      .ops = &ops,
                                      .arg = f};
    assert_int_equal(sl_stream_xform_new(&env, &f->x), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_stream_xform_free(f->x);
    test_close_all(&f->loop);
    (void)uv_loop_close(&f->loop);
    free(f->event);
    free(f);
    return 0;
}

static void add(struct fx *f, uint64_t id, const char *data)
{
    struct sl_spool_rec rec = {
        .id = id, .data = data, .len = (uint32_t)strlen(data), .arrival_ms = 1714568862000};
    assert_int_equal(sl_stream_xform_add(f->x, &rec), 0);
}

static bool invoked(void *arg)
{
    return ((struct fx *)arg)->cb != NULL;
}

static bool done(void *arg)
{
    return ((struct fx *)arg)->done > 0;
}

/* Answers the event: "a.." Ok upper-cased with key k=a, "d.." Dropped, else ProcessingFailed. */
static void answer(struct fx *f)
{
    cJSON *ev = cJSON_Parse(f->event);
    cJSON *out = cJSON_CreateArray();
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(ev, "records"))
    {
        const char *b64 = cJSON_GetObjectItem(r, "data")->valuestring;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "recordId", cJSON_GetObjectItem(r, "recordId")->valuestring);
        if (strcmp(b64, "YTE=") == 0) { /* "a1" */
            cJSON_AddStringToObject(e, "result", "Ok");
            cJSON_AddStringToObject(e, "data", "QTE="); /* "A1" */
            cJSON *md = cJSON_AddObjectToObject(e, "metadata");
            cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "partitionKeys"), "k", "a");
        } else if (strcmp(b64, "ZDI=") == 0) { /* "d2" */
            cJSON_AddStringToObject(e, "result", "Dropped");
        } else {
            cJSON_AddStringToObject(e, "result", "ProcessingFailed");
        }
        cJSON_AddItemToArray(out, e);
    }
    cJSON *ans = cJSON_CreateObject();
    cJSON_AddItemToObject(ans, "records", out);
    char *body = cJSON_PrintUnformatted(ans);
    struct sl_invoke_result res = {
        .outcome = SL_OUTCOME_SUCCESS, .status = 200, .body = body, .body_len = strlen(body)};
    sl_invoke_cb cb = f->cb;
    f->cb = NULL;
    cb(f->cb_arg, &res);
    cJSON_free(body);
    cJSON_Delete(ans);
    cJSON_Delete(ev);
}

static void test_stream_xform_batch_outcomes(void **state)
{
    struct fx *f = *state;
    add(f, 7, "a1");
    add(f, 8, "d2");
    assert_int_equal(sl_stream_xform_room(f->x), 6);
    assert_false(test_run_until(&f->loop, invoked, f, 50)); /* 4 of 10 bytes: not yet */
    add(f, 9, "fail-3"); /* 10 bytes: the buffer goes, all three together */
    assert_int_equal(sl_stream_xform_room(f->x), 10);
    assert_true(sl_stream_xform_busy(f->x));
    assert_int_equal(sl_stream_xform_records(f->x), 3);
    assert_true(test_run_until(&f->loop, invoked, f, 5000));
    cJSON *ev = cJSON_Parse(f->event);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ev, "records")), 3);
    cJSON_Delete(ev);
    answer(f);
    assert_true(test_run_until(&f->loop, done, f, 5000));
    assert_string_equal(f->ok, "7:A1;");
    assert_string_equal(f->keys, "a");
    assert_int_equal(f->dropped_id, 8);
    cJSON *e = cJSON_Parse(f->failed);
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItem(e, "errorCode")->valuestring,
                        "Lambda.ProcessingFailedStatus");
    assert_string_equal(cJSON_GetObjectItem(e, "rawData")->valuestring, "ZmFpbC0z"); /* fail-3 */
    assert_string_equal(cJSON_GetObjectItem(e, "lambdaArn")->valuestring, "xf");
    assert_int_equal(cJSON_GetObjectItem(e, "attemptsMade")->valueint, 1);
    cJSON_Delete(e);
    assert_false(sl_stream_xform_busy(f->x));
    assert_int_equal(sl_stream_xform_records(f->x), 0);
    assert_int_equal(sl_stream_xform_invocations(f->x), 1);
}

static void test_stream_xform_cancel_reports_nothing(void **state)
{
    struct fx *f = *state;
    add(f, 1, "a1");
    sl_stream_xform_flush(f->x, true); /* drain: what is buffered goes now */
    assert_true(test_run_until(&f->loop, invoked, f, 5000));
    sl_stream_xform_cancel(f->x);
    assert_int_equal(f->stops, 1);
    assert_true(test_run_until(&f->loop, done, f, 5000));
    assert_string_equal(f->ok, "");
    assert_string_equal(f->failed, "");
    assert_int_equal(f->dropped_id, 0);
    assert_false(sl_stream_xform_busy(f->x));
    struct sl_spool_rec rec = {.id = 2, .data = "x", .len = 1};
    assert_int_equal(sl_stream_xform_add(f->x, &rec), SL_ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_xform_batch_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_xform_cancel_reports_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name("stream_xform", tests, NULL, NULL);
}

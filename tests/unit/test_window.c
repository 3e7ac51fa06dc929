/* SPDX-License-Identifier: Apache-2.0 */
/* test_window.c: tumbling window pieces: alignment of window starts, the event fields AWS adds
 * (byte for byte), the rule that a window function must answer with an object "state", and
 * when a window's final invocation is due. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "recq.h"
#include "window.h"

static void test_window_start_aligns_to_multiples(void **state)
{
    (void)state;
    /* 2020-12-09T07:05:12.345Z in a 120 s window starts at 07:04:00. */
    assert_int_equal(sl_window_start_ms(1607497512345LL, 120000), 1607497440000LL);
    assert_int_equal(sl_window_start_ms(1607497440000LL, 120000), 1607497440000LL);
    assert_int_equal(sl_window_start_ms(1607497559999LL, 120000), 1607497440000LL);
    assert_int_equal(sl_window_start_ms(1607497560000LL, 120000), 1607497560000LL);
    assert_int_equal(sl_window_start_ms(-1, 1000), -1000);
}

static void test_window_wrap_adds_aws_fields(void **state)
{
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "{\"Records\":[]}"), 0);
    struct sl_window_fields w = {
        .start_ms = 1607497440000LL,
        .window_ms = 120000,
        .state = "{\"n\":1}",
        .state_len = 7,
        .shard_id = "/var/log/a.log",
        .arn = "file:///var/log/a.log",
        .final = true,
        .terminated_early = false,
    };
    assert_int_equal(sl_window_wrap(&b, &w), 0);
    assert_string_equal(b.data,
                        "{\"Records\":[],\"window\":{\"start\":\"2020-12-09T07:04:00Z\",\"end\":"
                        "\"2020-12-09T07:06:00Z\"},\"state\":{\"n\":1},\"shardId\":"
                        "\"/var/log/a.log\",\"eventSourceARN\":\"file:///var/log/a.log\","
                        "\"isFinalInvokeForWindow\":true,\"isWindowTerminatedEarly\":false}");
    sl_buf_truncate(&b, 0);
    assert_int_equal(sl_window_wrap(&b, &w), SL_EINVAL);
    sl_buf_fini(&b);
}

/* A shard's window names the shard as shardId and the stream (not the shard) as
 * eventSourceARN, as AWS's Kinesis window event does. */
static void test_window_fields_name_shard_and_stream(void **state)
{
    (void)state;
    struct sl_window *w = sl_window_new(60000);
    assert_non_null(w);
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "{\"Records\":[]}"), 0);
    assert_int_equal(sl_window_add_fields(w, &b, "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                                          "shardId-000000000001", false),
                     0);
    assert_non_null(strstr(b.data, ",\"state\":{},\"shardId\":\"shardId-000000000001\","
                                   "\"eventSourceARN\":\"arn:aws:kinesis:us-east-1:123456789012:"
                                   "stream/s\",\"isFinalInvokeForWindow\":false,"));
    sl_buf_fini(&b);
    sl_window_free(w);
}

/* The window's records delivered, nothing more waiting, its end a minute away: it waits for
 * the end, unless the partition ended (a closed shard), which closes it at once. */
static void test_window_final_when_partition_ends(void **state)
{
    (void)state;
    const int64_t start = 1607497440000LL;
    struct sl_recq q;
    sl_recq_init(&q);
    assert_int_equal(sl_recq_push(&q, "a", 1, NULL, 0, "1", 1, start + 1000, 0), 0);
    struct sl_window *w = sl_window_new(60000);
    assert_non_null(w);
    size_t waiting = 1;
    int64_t wait_ms = -1;
    assert_int_equal(sl_window_dispatch(w, &q, 0, &waiting, false, false, start + 2000, &wait_ms),
                     SL_WINDOW_BATCH);
    assert_int_equal(waiting, 1);
    /* the lane sends it and marks it; it was delivered */
    sl_recq_at_mut(&q, 0)->flags |= SL_REC_TAKEN | SL_REC_WINDOWED;
    sl_window_delivered(w, 1);
    waiting = 0;
    assert_int_equal(sl_window_dispatch(w, &q, 0, &waiting, false, false, start + 3000, &wait_ms),
                     SL_WINDOW_WAIT);
    assert_int_equal(wait_ms, 57000);
    waiting = 0;
    assert_int_equal(sl_window_dispatch(w, &q, 0, &waiting, false, true, start + 3000, &wait_ms),
                     SL_WINDOW_FINAL);
    /* closing makes its records done */
    sl_window_close(w, &q);
    assert_true(sl_recq_at(&q, 0)->flags & SL_REC_DONE);
    sl_window_free(w);
    sl_recq_fini(&q);
}

static void test_window_state_is_required(void **state)
{
    (void)state;
    char *s = NULL;
    size_t n = 0;
    const char *ok = "{\"state\":{\"sum\": 3},\"batchItemFailures\":[]}";
    assert_int_equal(sl_window_read_state(ok, strlen(ok), &s, &n), 0);
    assert_string_equal(s, "{\"sum\":3}");
    assert_int_equal(n, 9);
    sl_free(s);
    const char *bad[] = {
        "", "{}", "{\"state\":null}", "{\"state\":[1]}", "{\"state\":\"x\"}", "not json", "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sl_window_read_state(bad[i], strlen(bad[i]), &s, &n), SL_EPROTO);
    }
    assert_int_equal(sl_window_read_state(NULL, 0, &s, &n), SL_EPROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_start_aligns_to_multiples),
        cmocka_unit_test(test_window_wrap_adds_aws_fields),
        cmocka_unit_test(test_window_fields_name_shard_and_stream),
        cmocka_unit_test(test_window_final_when_partition_ends),
        cmocka_unit_test(test_window_state_is_required),
    };
    return cmocka_run_group_tests_name("window", tests, NULL, NULL);
}

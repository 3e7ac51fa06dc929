/* SPDX-License-Identifier: Apache-2.0 */
/* test_batcher.c: batch limits. A batch is due at BatchSize records, at the payload limit, or
 * when the window closes; it holds the longest run of records whose encoded event fits, counted
 * in the bytes actually produced; it never includes a record that cannot be sent. Time is
 * passed in, so nothing sleeps. The source here is a fake with a trivial record encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "batcher.h"
#include "partition.h"
#include "source.h"

/* Fake source: a record encodes as "<data>" in quotes. */
static int
fake_encode(void *ctx, struct sl_part *part, const struct sl_record *rec, struct sl_buf *out)
{
    (void)ctx;
    if (sl_buf_append(out, "\"", 1) < 0 ||
        sl_buf_append(out, sl_recq_data(&part->q, rec), rec->len) < 0 ||
        sl_buf_append(out, "\"", 1) < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

static const struct sl_source_ops fake_ops = {
    .abi = SL_SOURCE_ABI,
    .name = "fake",
    .event_open = "{\"Records\":[",
    .event_sep = ",",
    .event_close = "]}",
    .encode_record = fake_encode,
};

static struct sl_part *make_part(int n, const char *data)
{
    struct sl_part *part = sl_part_new("p", "p");
    assert_non_null(part);
    for (int i = 0; i < n; i++) {
        assert_int_equal(sl_recq_push(&part->q, data, (uint32_t)strlen(data), NULL, 0,
                                      (uint64_t)i * 10, (uint64_t)i * 10 + 10, 0, 0),
                         0);
    }
    return part;
}

/* Encodes the first min(limit, count) records of the queue, as the mapping does for a batch. */
static int
build(const struct sl_batch_limits *lim, struct sl_part *part, struct sl_buf *body, size_t *ret_n)
{
    size_t n = sl_recq_count(&part->q);
    if (n > lim->max_records) {
        n = lim->max_records;
    }
    static struct sl_batch_ref refs[20000];
    for (size_t i = 0; i < n; i++) {
        refs[i] = (struct sl_batch_ref){part, sl_recq_at(&part->q, i)};
    }
    return sl_batcher_encode(lim, &fake_ops, NULL, refs, n, body, ret_n);
}

/* A source whose batches span partitions: the next partition's records follow "|<id>|". */
static int fake_next_part(void *ctx, struct sl_part *part, struct sl_buf *out)
{
    (void)ctx;
    return sl_buf_printf(out, "|%s|", part->id);
}

static const struct sl_source_ops spanning_ops = {
    .abi = SL_SOURCE_ABI,
    .name = "spanning",
    .event_open = "{\"Records\":[",
    .event_sep = ",",
    .event_close = "]}",
    .encode_record = fake_encode,
    .caps = &(const struct sl_source_caps){.batch_spans_partitions = true},
    .encode_next_part = fake_next_part,
};

static void test_batcher_due_on_count_window_and_bytes(void **state)
{
    (void)state;
    struct sl_batch_limits lim = {.max_records = 100, .max_bytes = 6291456, .window_ms = 1000};
    assert_int_equal(sl_batcher_due_ms(&lim, 0, 0, 5000), INT64_MAX);
    assert_int_equal(sl_batcher_due_ms(&lim, 99, 990, 5000), 6000);
    assert_int_equal(sl_batcher_due_ms(&lim, 100, 1000, 5000), INT64_MIN);
    assert_int_equal(sl_batcher_due_ms(&lim, 150, 1500, 5000), INT64_MIN);
    /* Raw bytes whose base64 alone fills the payload make the batch due. */
    assert_int_equal(sl_batcher_due_ms(&lim, 5, 4800000, 5000), INT64_MIN);
    assert_int_equal(sl_batcher_due_ms(&lim, 5, 4000000, 5000), 6000);
    lim.window_ms = 0;
    assert_int_equal(sl_batcher_due_ms(&lim, 1, 10, 5000), INT64_MIN);
}

static void test_batcher_build_stops_at_batch_size(void **state)
{
    (void)state;
    struct sl_batch_limits lim = {.max_records = 3, .max_bytes = 6291456, .window_ms = 0};
    struct sl_part *part = make_part(5, "ab");
    struct sl_buf body;
    sl_buf_init(&body);
    size_t n = 0;
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(body.data, "{\"Records\":[\"ab\",\"ab\",\"ab\"]}");
    /* Building again starts from scratch (a retry re-encodes the same records). */
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_string_equal(body.data, "{\"Records\":[\"ab\",\"ab\",\"ab\"]}");
    sl_buf_fini(&body);
    sl_part_free(part);
}

static void test_batcher_build_counts_bytes_actually_sent(void **state)
{
    (void)state;
    /* {"Records":[ is 12 bytes, ]} 2, each record 6 ("abcd"), separators 1. Three records:
     * 12 + 6 + 1 + 6 + 1 + 6 + 2 = 34. */
    struct sl_batch_limits lim = {.max_records = 100, .max_bytes = 34, .window_ms = 0};
    struct sl_part *part = make_part(10, "abcd");
    struct sl_buf body;
    sl_buf_init(&body);
    size_t n = 0;
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(body.len, 34);
    lim.max_bytes = 33;
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(body.len, 27);
    assert_true(body.len <= lim.max_bytes);
    sl_buf_fini(&body);
    sl_part_free(part);
}

static void test_batcher_single_record_over_payload_is_refused(void **state)
{
    (void)state;
    struct sl_batch_limits lim = {.max_records = 100, .max_bytes = 20, .window_ms = 0};
    struct sl_part *part = make_part(2, "0123456789");
    struct sl_buf body;
    sl_buf_init(&body);
    size_t n = 99;
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_int_equal(n, 0);
    sl_buf_fini(&body);
    sl_part_free(part);
}

static void test_batcher_stops_before_oversize_record(void **state)
{
    (void)state;
    struct sl_batch_limits lim = {.max_records = 100, .max_bytes = 6291456, .window_ms = 0};
    struct sl_part *part = make_part(2, "ok");
    assert_int_equal(sl_recq_push(&part->q, NULL, 0, NULL, 0, 20, 5000020, 0, SL_REC_OVERSIZE), 0);
    assert_int_equal(sl_recq_push(&part->q, "after", 5, NULL, 0, 5000020, 5000026, 0, 0), 0);
    struct sl_buf body;
    sl_buf_init(&body);
    size_t n = 0;
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(body.data, "{\"Records\":[\"ok\",\"ok\"]}");
    sl_recq_drop(&part->q, 2);
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_int_equal(n, 0);
    sl_buf_fini(&body);
    sl_part_free(part);
}

static void test_batcher_full_payload_batch_at_real_limit(void **state)
{
    (void)state;
    /* 1000-byte records at the real 6 MB limit: 6291456 / 1003 ≈ 6272 fit, fewer than 10000. */
    struct sl_batch_limits lim = {
        .max_records = 10000, .max_bytes = SL_BATCH_MAX_PAYLOAD_BYTES, .window_ms = 0};
    static char rec[1001];
    memset(rec, 'r', 1000);
    rec[1000] = '\0';
    struct sl_part *part = make_part(10000, rec);
    struct sl_buf body;
    sl_buf_init(&body);
    size_t n = 0;
    assert_int_equal(build(&lim, part, &body, &n), 0);
    assert_true(body.len <= SL_BATCH_MAX_PAYLOAD_BYTES);
    assert_true(body.len + 1003 > SL_BATCH_MAX_PAYLOAD_BYTES);
    assert_int_equal(n, (SL_BATCH_MAX_PAYLOAD_BYTES - 14 + 1) / 1003);
    sl_buf_fini(&body);
    sl_part_free(part);
}

static void test_batcher_spans_partitions(void **state)
{
    (void)state;
    struct sl_batch_limits lim = {.max_records = 100, .max_bytes = 6291456, .window_ms = 0};
    struct sl_part *a = make_part(2, "a");
    struct sl_part *b = sl_part_new("q", "q");
    assert_non_null(b);
    assert_int_equal(sl_recq_push(&b->q, "b", 1, NULL, 0, 0, 1, 0, 0), 0);
    struct sl_batch_ref refs[] = {
        {a, sl_recq_at(&a->q, 0)},
        {a, sl_recq_at(&a->q, 1)},
        {b, sl_recq_at(&b->q, 0)},
    };
    struct sl_buf body;
    sl_buf_init(&body);
    size_t n = 0;
    assert_int_equal(sl_batcher_encode(&lim, &spanning_ops, NULL, refs, 3, &body, &n), 0);
    assert_int_equal(n, 3);
    /* The change of partition replaces the separator. */
    assert_string_equal(body.data, "{\"Records\":[\"a\",\"a\"|q|\"b\"]}");
    /* The bytes of the change count against the payload: 12 + 3 + 1 + 3 + 2 = 21 fits the
     * first two; the third needs 3 + 3 more. */
    lim.max_bytes = 25;
    assert_int_equal(sl_batcher_encode(&lim, &spanning_ops, NULL, refs, 3, &body, &n), 0);
    assert_int_equal(n, 2);
    assert_true(body.len <= lim.max_bytes);
    /* A source that cannot express a change of partition ends the batch before it. */
    lim.max_bytes = 6291456;
    assert_int_equal(sl_batcher_encode(&lim, &fake_ops, NULL, refs, 3, &body, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(body.data, "{\"Records\":[\"a\",\"a\"]}");
    sl_buf_fini(&body);
    sl_part_free(a);
    sl_part_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batcher_due_on_count_window_and_bytes),
        cmocka_unit_test(test_batcher_build_stops_at_batch_size),
        cmocka_unit_test(test_batcher_build_counts_bytes_actually_sent),
        cmocka_unit_test(test_batcher_single_record_over_payload_is_refused),
        cmocka_unit_test(test_batcher_stops_before_oversize_record),
        cmocka_unit_test(test_batcher_full_payload_batch_at_real_limit),
        cmocka_unit_test(test_batcher_spans_partitions),
    };
    return cmocka_run_group_tests_name("batcher", tests, NULL, NULL);
}

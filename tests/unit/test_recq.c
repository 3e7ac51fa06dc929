/* SPDX-License-Identifier: Apache-2.0 */
/* test_recq.c: the partition record queue: order, bytes, positions, dropping from the front and
 * compaction that never moves a live record's bytes out from under it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "recq.h"

static void push_line(struct sl_recq *q, uint64_t i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "line-%llu", (unsigned long long)i);
    assert_int_equal(
        sl_recq_push(q, line, (uint32_t)n, "m", 1, i * 100, i * 100 + 100, (int64_t)i, 0), 0);
}

static void check_line(const struct sl_recq *q, size_t idx, uint64_t i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "line-%llu", (unsigned long long)i);
    const struct sl_record *rec = sl_recq_at(q, idx);
    assert_int_equal(rec->len, n);
    assert_memory_equal(sl_recq_data(q, rec), line, (size_t)n);
    assert_memory_equal(sl_recq_meta(q, rec), "m", 1);
    assert_int_equal(rec->pos, i * 100);
    assert_int_equal(rec->next_pos, i * 100 + 100);
}

static void test_recq_push_drop_keeps_order(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    uint64_t next_in = 0;
    uint64_t next_out = 0;
    /* Interleave pushes and drops across many compactions. */
    for (int round = 0; round < 200; round++) {
        for (int k = 0; k < 997; k++) {
            push_line(&q, next_in++);
        }
        size_t count = sl_recq_count(&q);
        for (size_t i = 0; i < count; i += 97) {
            check_line(&q, i, next_out + i);
        }
        size_t drop = count > 700 ? count - 300 : count / 2;
        sl_recq_drop(&q, drop);
        next_out += drop;
        assert_int_equal(sl_recq_count(&q), next_in - next_out);
    }
    check_line(&q, 0, next_out);
    sl_recq_drop(&q, sl_recq_count(&q));
    assert_int_equal(sl_recq_count(&q), 0);
    assert_int_equal(sl_recq_bytes(&q), 0);
    sl_recq_fini(&q);
}

static void test_recq_bytes_track_live_records(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    assert_int_equal(sl_recq_push(&q, "abc", 3, NULL, 0, 0, 4, 0, 0), 0);
    assert_int_equal(sl_recq_push(&q, "defgh", 5, "kk", 2, 4, 10, 0, 0), 0);
    assert_int_equal(sl_recq_bytes(&q), 10);
    sl_recq_drop(&q, 1);
    assert_int_equal(sl_recq_bytes(&q), 7);
    assert_memory_equal(sl_recq_data(&q, sl_recq_at(&q, 0)), "defgh", 5);
    sl_recq_clear(&q);
    assert_int_equal(sl_recq_bytes(&q), 0);
    assert_int_equal(sl_recq_push(&q, "x", 1, NULL, 0, 10, 12, 0, 0), 0);
    assert_memory_equal(sl_recq_data(&q, sl_recq_at(&q, 0)), "x", 1);
    sl_recq_fini(&q);
}

static void test_recq_oversize_record_keeps_span(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    assert_int_equal(sl_recq_push(&q, NULL, 0, NULL, 0, 10, 2000010, 0, SL_REC_OVERSIZE), 0);
    const struct sl_record *rec = sl_recq_at(&q, 0);
    assert_int_equal(rec->len, 0);
    assert_true(rec->flags & SL_REC_OVERSIZE);
    assert_int_equal(rec->next_pos - rec->pos, 2000000);
    sl_recq_fini(&q);
}

static void test_recq_large_records_grow_arena(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    static char big[1 << 20];
    memset(big, 'z', sizeof(big));
    for (int i = 0; i < 8; i++) {
        big[0] = (char)('a' + i);
        assert_int_equal(
            sl_recq_push(&q, big, sizeof(big), NULL, 0, (uint64_t)i, (uint64_t)i + 1, 0, 0), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(sl_recq_data(&q, sl_recq_at(&q, (size_t)i))[0], 'a' + i);
    }
    sl_recq_drop(&q, 7);
    assert_int_equal(sl_recq_data(&q, sl_recq_at(&q, 0))[0], 'h');
    sl_recq_fini(&q);
}

/* A queue emptied after holding many records frees its grown buffers (a mapping of hundreds of
 * partitions would otherwise keep each one's peak), and works on as before. */
static void test_recq_empty_queue_frees_grown_buffers(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    static char rec[1024];
    memset(rec, 'r', sizeof(rec));
    for (uint64_t i = 0; i < 2000; i++) {
        assert_int_equal(sl_recq_push(&q, rec, sizeof(rec), NULL, 0, i, i + 1, 0, 0), 0);
    }
    assert_true(q.cap > SL_RECQ_KEEP_RECS);
    assert_true(q.arena_cap > SL_RECQ_KEEP_BYTES);
    sl_recq_drop(&q, 1000);
    assert_non_null(q.recs); /* not empty: kept */
    sl_recq_drop(&q, 1000);
    assert_int_equal(sl_recq_count(&q), 0);
    assert_int_equal(sl_recq_bytes(&q), 0);
    assert_true(q.cap <= SL_RECQ_KEEP_RECS);
    assert_true(q.arena_cap <= SL_RECQ_KEEP_BYTES);
    /* a small queue keeps its first allocation */
    push_line(&q, 7);
    sl_recq_drop(&q, 1);
    assert_non_null(q.recs);
    assert_non_null(q.arena);
    push_line(&q, 8);
    push_line(&q, 9);
    check_line(&q, 0, 8);
    check_line(&q, 1, 9);
    sl_recq_clear(&q);
    assert_int_equal(sl_recq_count(&q), 0);
    sl_recq_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recq_push_drop_keeps_order),
        cmocka_unit_test(test_recq_bytes_track_live_records),
        cmocka_unit_test(test_recq_oversize_record_keeps_span),
        cmocka_unit_test(test_recq_large_records_grow_arena),
        cmocka_unit_test(test_recq_empty_queue_frees_grown_buffers),
    };
    return cmocka_run_group_tests_name("recq", tests, NULL, NULL);
}

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

#include "helpers.h"
#include "recq.h"

static void push_line(struct sl_recq *q, uint64_t i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "line-%llu", (unsigned long long)i);
    assert_int_equal(test_push(q, line, (uint32_t)n, "m", 1, i * 100, i * 100 + 100, (int64_t)i, 0),
                     0);
}

static void check_line(const struct sl_recq *q, size_t idx, uint64_t i)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "line-%llu", (unsigned long long)i);
    const struct sl_record *rec = sl_recq_at(q, idx);
    assert_int_equal(rec->len, n);
    assert_memory_equal(sl_recq_data(q, rec), line, (size_t)n);
    assert_memory_equal(sl_recq_meta(q, rec), "m", 1);
    assert_int_equal(sl_recq_pos_u64(q, rec, 0), i * 100);
    assert_int_equal(sl_recq_pos_u64(q, rec, 1), i * 100 + 100);
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
    assert_int_equal(test_push(&q, "abc", 3, NULL, 0, 0, 4, 0, 0), 0);
    assert_int_equal(test_push(&q, "defgh", 5, "kk", 2, 4, 10, 0, 0), 0);
    assert_int_equal(sl_recq_bytes(&q), 10);
    sl_recq_drop(&q, 1);
    assert_int_equal(sl_recq_bytes(&q), 7);
    assert_memory_equal(sl_recq_data(&q, sl_recq_at(&q, 0)), "defgh", 5);
    sl_recq_clear(&q);
    assert_int_equal(sl_recq_bytes(&q), 0);
    assert_int_equal(test_push(&q, "x", 1, NULL, 0, 10, 12, 0, 0), 0);
    assert_memory_equal(sl_recq_data(&q, sl_recq_at(&q, 0)), "x", 1);
    sl_recq_fini(&q);
}

static void test_recq_oversize_record_keeps_span(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    assert_int_equal(test_push(&q, NULL, 0, NULL, 0, 10, 2000010, 0, SL_REC_OVERSIZE), 0);
    const struct sl_record *rec = sl_recq_at(&q, 0);
    assert_int_equal(rec->len, 0);
    assert_true(rec->flags & SL_REC_OVERSIZE);
    assert_int_equal(sl_recq_pos_u64(&q, rec, 1) - sl_recq_pos_u64(&q, rec, 0), 2000000);
    sl_recq_fini(&q);
}

/* A record kept as base64 (SL_REC_BASE64) gives its payload decoded and counts its decoded
 * size; any other record gives its own bytes, not copied. */
static void test_recq_base64_payload(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    const uint64_t pos = 1;
    const char *texts[] = {"SGVsbG8=", "SGk=", "YWJj", "", "QR=="};
    const char *want[] = {"Hello", "Hi", "abc", "", "A"};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(sl_recq_push(&q, texts[i], (uint32_t)strlen(texts[i]), "k", 1, &pos,
                                      sizeof(pos), 0, SL_REC_BASE64),
                         0);
    }
    assert_int_equal(sl_recq_push(&q, "SGk=", 4, NULL, 0, &pos, sizeof(pos), 0, 0), 0);
    struct sl_buf scratch;
    sl_buf_init(&scratch);
    const char *data;
    size_t len;
    for (size_t i = 0; i < 5; i++) {
        const struct sl_record *rec = sl_recq_at(&q, i);
        assert_int_equal(rec->len, strlen(texts[i]));
        assert_int_equal(sl_recq_payload_len(&q, rec), strlen(want[i]));
        assert_int_equal(sl_recq_payload(&q, rec, &scratch, &data, &len), 0);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(data, want[i], len);
    }
    const struct sl_record *plain = sl_recq_at(&q, 5);
    assert_int_equal(sl_recq_payload_len(&q, plain), 4);
    assert_int_equal(sl_recq_payload(&q, plain, &scratch, &data, &len), 0);
    assert_ptr_equal(data, sl_recq_data(&q, plain));
    assert_int_equal(len, 4);
    sl_buf_fini(&scratch);
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
            test_push(&q, big, sizeof(big), NULL, 0, (uint64_t)i, (uint64_t)i + 1, 0, 0), 0);
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
        assert_int_equal(test_push(&q, rec, sizeof(rec), NULL, 0, i, i + 1, 0, 0), 0);
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

/* --- positions the core cannot read as a number: the adapter's bytes, its compare and text --- */

/* A Kinesis-style position: the sequence number's decimal text (up to ~56 digits, no leading
 * zeros), ordered by length and then digit by digit, written as it is. */
static int kin_compare(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)ctx;
    if (a_len != b_len) {
        return a_len < b_len ? -1 : 1;
    }
    return memcmp(a, b, a_len);
}

static int kin_format(const struct sl_recq *q, const struct sl_record *rec, char *buf, size_t len)
{
    if (rec->pos_len >= len) {
        return -1;
    }
    memcpy(buf, sl_recq_pos(q, rec), rec->pos_len);
    buf[rec->pos_len] = '\0';
    return 0;
}

/* A Redis-style stream id "<ms>-<seq>": two 64-bit numbers, ordered as a pair. */
struct redis_id {
    uint64_t ms, seq;
};

static int redis_compare(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)ctx;
    assert_int_equal(a_len, sizeof(struct redis_id));
    assert_int_equal(b_len, sizeof(struct redis_id));
    struct redis_id x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    if (x.ms != y.ms) {
        return x.ms < y.ms ? -1 : 1;
    }
    return x.seq < y.seq ? -1 : x.seq > y.seq;
}

static void
redis_format(const struct sl_recq *q, const struct sl_record *rec, char *buf, size_t len)
{
    struct redis_id id;
    memcpy(&id, sl_recq_pos(q, rec), sizeof(id));
    snprintf(buf, len, "%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
}

/* The i-th of a run of 56-digit sequence numbers, a Kinesis shard's: beyond any 64-bit number,
 * and differing only in the digits past the 20th. */
static void kin_seq(char out[57], unsigned i)
{
    snprintf(out, 57, "4959033827149025660855969253836157109592157598913658%04u", i);
}

static void test_recq_big_decimal_positions(void **state)
{
    (void)state;
    struct sl_recq q;
    sl_recq_init(&q);
    char seq[57];
    /* Enough records, with data and meta beside their positions, to compact the arena while
     * positions live in it. */
    const unsigned n = 3000;
    size_t bytes = 0;
    for (unsigned i = 0; i < n; i++) {
        kin_seq(seq, i);
        assert_int_equal(strlen(seq), 56);
        assert_int_equal(sl_recq_push(&q, "payload", 7, "key", 3, seq, 56, (int64_t)i, 0), 0);
        bytes += 7 + 3 + 56;
        if (i % 1000 == 999) {
            sl_recq_drop(&q, 700);
            bytes -= 700 * (7 + 3 + 56);
        }
    }
    assert_int_equal(sl_recq_bytes(&q), bytes); /* the long positions count against memory */
    size_t count = sl_recq_count(&q);
    assert_int_equal(count, n - 3 * 700);
    unsigned first = 3 * 700;
    char text[128];
    for (size_t i = 0; i < count; i++) {
        const struct sl_record *rec = sl_recq_at(&q, i);
        assert_int_equal(rec->pos_len, 56);
        assert_memory_equal(sl_recq_data(&q, rec), "payload", 7);
        assert_memory_equal(sl_recq_meta(&q, rec), "key", 3);
        assert_int_equal(kin_format(&q, rec, text, sizeof(text)), 0);
        kin_seq(seq, first + (unsigned)i);
        assert_string_equal(text, seq);
        if (i > 0) {
            const struct sl_record *prev = sl_recq_at(&q, i - 1);
            assert_true(kin_compare(NULL, sl_recq_pos(&q, prev), prev->pos_len,
                                    sl_recq_pos(&q, rec), rec->pos_len) < 0);
            assert_true(kin_compare(NULL, sl_recq_pos(&q, rec), rec->pos_len, sl_recq_pos(&q, prev),
                                    prev->pos_len) > 0);
        }
    }
    /* a shorter number is an earlier one, whatever its digits */
    assert_true(kin_compare(NULL, "99", 2, "100", 3) < 0);
    sl_recq_fini(&q);

    /* Redis stream ids: two numbers, both past 32 bits, ordered as a pair. */
    sl_recq_init(&q);
    const struct redis_id ids[] = {
        {1526919030474ULL, 55},
        {1526919030474ULL, 18446744073709551615ULL},
        {1526919030475ULL, 0},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(ids); i++) {
        assert_int_equal(sl_recq_push(&q, "v", 1, NULL, 0, &ids[i], sizeof(ids[i]), 0, 0), 0);
    }
    assert_int_equal(sl_recq_bytes(&q), 3); /* short positions live in the record */
    redis_format(&q, sl_recq_at(&q, 0), text, sizeof(text));
    assert_string_equal(text, "1526919030474-55");
    redis_format(&q, sl_recq_at(&q, 1), text, sizeof(text));
    assert_string_equal(text, "1526919030474-18446744073709551615");
    redis_format(&q, sl_recq_at(&q, 2), text, sizeof(text));
    assert_string_equal(text, "1526919030475-0");
    for (size_t i = 1; i < SL_ARRAY_LEN(ids); i++) {
        const struct sl_record *a = sl_recq_at(&q, i - 1), *b = sl_recq_at(&q, i);
        assert_true(redis_compare(NULL, sl_recq_pos(&q, a), a->pos_len, sl_recq_pos(&q, b),
                                  b->pos_len) < 0);
    }
    sl_recq_fini(&q);
}

/* sl_recq_pos_compare_u64, the files' and Kafka's compare: the first native 64-bit number. */
static void test_recq_pos_compare_u64(void **state)
{
    (void)state;
    const uint64_t a[2] = {7, 100}, b[2] = {8, 9}, big[1] = {UINT64_MAX};
    assert_true(sl_recq_pos_compare_u64(NULL, a, sizeof(a), b, sizeof(b)) < 0);
    assert_true(sl_recq_pos_compare_u64(NULL, b, sizeof(b), a, sizeof(a)) > 0);
    assert_int_equal(sl_recq_pos_compare_u64(NULL, a, sizeof(a), a, sizeof(a)), 0);
    assert_true(sl_recq_pos_compare_u64(NULL, b, sizeof(b), big, sizeof(big)) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recq_push_drop_keeps_order),
        cmocka_unit_test(test_recq_bytes_track_live_records),
        cmocka_unit_test(test_recq_oversize_record_keeps_span),
        cmocka_unit_test(test_recq_base64_payload),
        cmocka_unit_test(test_recq_large_records_grow_arena),
        cmocka_unit_test(test_recq_empty_queue_frees_grown_buffers),
        cmocka_unit_test(test_recq_big_decimal_positions),
        cmocka_unit_test(test_recq_pos_compare_u64),
    };
    return cmocka_run_group_tests_name("recq", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_lanebatch.c: the batch a lane carries: the parts left by the payload limit and by
 * bisection are tried in order, and the reorderings verdicts need (expired records, records a
 * partial batch response says were done) move records to the front of the part being tried
 * while every partition's records keep their position order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lanebatch.h"
#include "source.h"

/* itemIdentifier "<partition id>:<pos>". */
static int
fake_item_id(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    int n = snprintf(buf, len, "%s:%llu", part->id,
                     (unsigned long long)sl_recq_pos_u64(&part->q, rec, 0));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static const struct sl_source_ops fake_ops = {.name = "fake", .format_item_id = fake_item_id};

/* itemIdentifier "<partition id>-<pos>", the text Kafka's object form reads as; only strings
 * identify its records. */
static int
dash_item_id(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    int n = snprintf(buf, len, "%s-%llu", part->id,
                     (unsigned long long)sl_recq_pos_u64(&part->q, rec, 0));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static const char *strings_only(const cJSON *id, char *buf, size_t len)
{
    (void)id;
    (void)buf;
    (void)len;
    return NULL;
}

static const struct sl_source_ops dash_ops = {
    .name = "dash", .format_item_id = dash_item_id, .read_item_id = strings_only};

struct fixture {
    struct sl_part *a;
    struct sl_part *b;
    struct sl_lanebatch *lb;
};

static void push(struct sl_part *part, uint64_t pos, int64_t arrival_ms)
{
    uint64_t at = pos;
    assert_int_equal(sl_recq_push(&part->q, "x", 1, NULL, 0, &at, sizeof(at), arrival_ms, 0), 0);
}

static int setup(void **state)
{
    static struct fixture f;
    f.a = sl_part_new("a", "a");
    f.b = sl_part_new("b", "b");
    f.lb = sl_lanebatch_new(&fake_ops, NULL);
    assert_non_null(f.a);
    assert_non_null(f.b);
    assert_non_null(f.lb);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_lanebatch_free(f->lb);
    sl_part_free(f->a);
    sl_part_free(f->b);
    return 0;
}

/* Adds a's records 0..na-1 then b's 0..nb-1 (each record's arrival is its pos * 1000). */
static void fill(struct fixture *f, size_t na, size_t nb)
{
    for (size_t i = 0; i < na; i++) {
        push(f->a, i, (int64_t)i * 1000);
    }
    for (size_t i = 0; i < nb; i++) {
        push(f->b, i, (int64_t)i * 1000);
    }
    assert_true(sl_lanebatch_reserve(f->lb, na + nb));
    for (size_t i = 0; i < na; i++) {
        sl_lanebatch_add(f->lb, f->a, f->a, NULL, i);
    }
    for (size_t i = 0; i < nb; i++) {
        sl_lanebatch_add(f->lb, f->b, f->b, NULL, i);
    }
    sl_lanebatch_begin(f->lb);
}

static void assert_cur(const struct sl_lanebatch *lb, size_t lo, size_t hi)
{
    struct sl_lanebatch_range cur = sl_lanebatch_cur(lb);
    assert_int_equal(cur.lo, lo);
    assert_int_equal(cur.hi, hi);
}

static void test_lanebatch_parts_are_tried_in_order(void **state)
{
    struct fixture *f = *state;
    fill(f, 6, 0);
    assert_cur(f->lb, 0, 6);
    assert_true(sl_lanebatch_cut(f->lb, 3)); /* the payload limit */
    assert_true(sl_lanebatch_cut(f->lb, 1)); /* then bisection of the first part */
    assert_cur(f->lb, 0, 1);
    assert_true(sl_lanebatch_next(f->lb));
    assert_cur(f->lb, 1, 3);
    assert_true(sl_lanebatch_next(f->lb));
    assert_cur(f->lb, 3, 6);
    assert_false(sl_lanebatch_next(f->lb));
    sl_lanebatch_clear(f->lb);
    assert_int_equal(sl_lanebatch_count(f->lb), 0);
}

/* a0 a1 a2 b0 b1 b2 arriving at 0, 1000, 2000 s: before 1500 only the leading records of each
 * partition expire (a2 is not judged before a1, which is young). */
static void test_lanebatch_expired_front_keeps_partition_order(void **state)
{
    struct fixture *f = *state;
    fill(f, 3, 3);
    assert_int_equal(sl_lanebatch_expired_front(f->lb, 1500), 4);
    const struct sl_part *want_part[] = {f->a, f->a, f->b, f->b, f->a, f->b};
    const uint64_t want_pos[] = {0, 1, 0, 1, 2, 2};
    for (size_t i = 0; i < 6; i++) {
        assert_ptr_equal(sl_lanebatch_part(f->lb, i), want_part[i]);
        assert_int_equal(sl_recq_pos_u64(&want_part[i]->q, sl_lanebatch_rec(f->lb, i), 0),
                         want_pos[i]);
    }
    assert_int_equal(sl_lanebatch_expired_front(f->lb, 0), 0);
}

/* A partial response naming b:1 resumes b at b1 and a after its last record: a0 a1 b0 were
 * done and lead cur. */
static void test_lanebatch_partial_resumes_each_partition(void **state)
{
    struct fixture *f = *state;
    fill(f, 2, 3);
    const char *body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"b:1\"}]}";
    struct sl_invoke_result res = {
        .outcome = SL_OUTCOME_SUCCESS, .body = body, .body_len = strlen(body)};
    struct sl_partial partial;
    sl_lanebatch_read_partial(f->lb, &res, &partial);
    assert_int_equal(partial.kind, SL_PARTIAL_SOME_FAILED);
    assert_int_equal(partial.lowest, 3);
    char buf[SL_LANEBATCH_ID_MAX];
    assert_string_equal(sl_lanebatch_item_id(f->lb, 3, buf), "b:1");
    char what[128];
    struct sl_lanebatch_range all = {0, 5};
    assert_string_equal(sl_lanebatch_describe(f->lb, all, what, sizeof(what)),
                        "5 records of a from a:0 to a:1, b from b:0 to b:2");
}

/* An itemIdentifier in a form another adapter reads (Kafka's {"partition":..,"offset":N}, which
 * would read as "b-1", an identifier of this batch) is unknown to the batch's own source, which
 * identifies records by strings only: AWS fails the whole batch on an unknown identifier. */
static void test_lanebatch_partial_reads_only_its_source_forms(void **state)
{
    struct fixture *f = *state;
    struct sl_lanebatch *lb = sl_lanebatch_new(&dash_ops, NULL);
    assert_non_null(lb);
    for (uint64_t i = 0; i < 3; i++) {
        push(f->b, i, 0);
    }
    assert_true(sl_lanebatch_reserve(lb, 3));
    for (size_t i = 0; i < 3; i++) {
        sl_lanebatch_add(lb, f->b, f->b, NULL, i);
    }
    sl_lanebatch_begin(lb);
    char buf[SL_LANEBATCH_ID_MAX];
    assert_string_equal(sl_lanebatch_item_id(lb, 1, buf), "b-1");
    const char *body =
        "{\"batchItemFailures\":[{\"itemIdentifier\":{\"partition\":\"b\",\"offset\":1}}]}";
    struct sl_invoke_result res = {
        .outcome = SL_OUTCOME_SUCCESS, .body = body, .body_len = strlen(body)};
    struct sl_partial partial;
    sl_lanebatch_read_partial(lb, &res, &partial);
    assert_int_equal(partial.kind, SL_PARTIAL_INVALID);
    /* the same record named as the source names it is read */
    body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"b-1\"}]}";
    res.body = body;
    res.body_len = strlen(body);
    sl_lanebatch_read_partial(lb, &res, &partial);
    assert_int_equal(partial.kind, SL_PARTIAL_SOME_FAILED);
    assert_int_equal(partial.lowest, 1);
    sl_lanebatch_free(lb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lanebatch_parts_are_tried_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lanebatch_expired_front_keeps_partition_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lanebatch_partial_resumes_each_partition, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lanebatch_partial_reads_only_its_source_forms, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("lanebatch", tests, NULL, NULL);
}

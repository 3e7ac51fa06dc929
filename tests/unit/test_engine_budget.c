/* SPDX-License-Identifier: Apache-2.0 */
/* test_engine_budget.c: how a paced source's partitions (Kinesis shards: few fetches a second,
 * each a large page) share the mapping's max_records_buffered (mapping_budget.c, "About the
 * paced rule"). A mapping from JSON text over the fake stream (fake_stream.c) with a paced
 * source's caps (a page of up to 100 records), max_records_buffered 120 and BatchSize 10, the
 * test function holding every invocation until the test answers it, the injected clock.
 *
 * What a partition claims: the records it holds (fetched, not yet acknowledged) plus the
 * max_records of its fetch in flight. The rules, one test each:
 *   busy_part_borrows_beside_quiet_ones: one busy partition of four, the others with nothing
 *     to read, claims more than its share (120 / 4 = 30): 75 (the quiet ones keep a reserve of
 *     half their shares, at least one share). Fails on main: 30.
 *   two_busy_parts_split_evenly: two busy partitions beside two quiet ones claim 45 each (the
 *     room less one share kept for the quiet ones, split in two), at every step, never one more
 *     than the other. Fails on main: 30 each.
 *   claims_never_exceed_bound: eight busy partitions (a share of 15, below two batches) whose
 *     fetches answer when the test says: the records held plus the max_records of the fetches
 *     in flight never exceed 120. Fails on main (each asks for two batches, 20, and what is in
 *     flight is not counted: 160).
 *   quiet_part_wakes_gets_share_at_once: beside a busy partition holding 75, a quiet one that
 *     gets records asks for its whole share (30) at once, and while it reads the busy one
 *     fetches only up to the even split (45); once it is quiet again the busy one borrows
 *     again. Fails on main at the first step (the busy one holds 30).
 * Loop thread; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine_harness.h"
#include "fake_stream.h"
#include "helpers.h"
#include "log.h"
#include "source.h"

#define BE_TOTAL  120 /* max_records_buffered */
#define BE_ROUNDS 1000

struct be {
    struct eh h;
    struct fake_stream fs;
};

/* A paced source: a fetch may read a page of up to 100 records (two batches: 20). */
static const struct sl_source_caps be_paced_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .lag_unit = SL_LAG_RECORDS,
    .fetch_records_min = 100,
};

static void be_invoked(void *arg, size_t idx, const cJSON *doc, struct eh_reply *rep)
{
    (void)arg;
    (void)idx;
    (void)doc;
    (void)rep;
}

static int be_setup(void **state)
{
    struct be *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    eh_init(&e->h, &(struct eh_hooks){be_invoked, NULL, e});
    fake_stream_init(&e->fs);
    struct sl_source_ops ops = fake_stream_ops;
    ops.caps = &be_paced_caps;
    sl_source_register_extra(&ops);
    e->h.hold_all = true;
    *state = e;
    return 0;
}

static int be_teardown(void **state)
{
    struct be *e = *state;
    eh_close(&e->h, true);
    eh_fini(&e->h);
    fake_stream_fini(&e->fs);
    fake_stream_register();
    free(e);
    return 0;
}

static void be_open(struct be *e)
{
    char extra[128];
    (void)snprintf(extra, sizeof(extra), "\"BatchSize\":10,\"max_records_buffered\":%d", BE_TOTAL);
    eh_open(&e->h,
            "\"UUID\":\"budget-test\",\"EventSourceArn\":\"fake://stream\",\"FunctionName\":"
            "\"f\",\"StartingPosition\":\"TRIM_HORIZON\",\"max_unsaved_batches\":1000",
            extra);
    eh_settle(&e->h);
}

static size_t be_add(struct be *e, size_t n_recs)
{
    char id[8];
    (void)snprintf(id, sizeof(id), "p%zu", e->fs.n_parts);
    size_t p = fake_stream_add_part(&e->fs, id);
    for (size_t i = 0; i < n_recs; i++) {
        fake_stream_push_str(&e->fs, p, "k", "{}");
    }
    return p;
}

/* What partition p holds (fetched, not acknowledged) and what its fetch in flight may bring. */
static size_t be_claim(const struct be *e, size_t p)
{
    const struct fake_part *fp = &e->fs.parts[p];
    return fp->next - fp->acked + (fp->fetch_pending ? fp->pending_max_records : 0);
}

/* The last fetch of partition p. */
static const struct fake_fetch *be_last_fetch(const struct be *e, size_t p)
{
    for (size_t i = e->fs.n_fetches; i-- > 0;) {
        if (e->fs.fetches[i].part == p) {
            return &e->fs.fetches[i];
        }
    }
    fail_msg("partition %zu never fetched", p);
    return NULL;
}

/* At every fetch: what was held, what was in flight and what it asked for fit in the bound. */
static void be_check_bound(const struct be *e)
{
    for (size_t i = 0; i < e->fs.n_fetches; i++) {
        const struct fake_fetch *f = &e->fs.fetches[i];
        if (f->held_records + f->pending_records + f->max_records > BE_TOTAL) {
            fail_msg("fetch %zu of p%zu asked for %zu while %zu were held and %zu in flight "
                     "(bound %d)",
                     i, f->part, f->max_records, f->held_records, f->pending_records, BE_TOTAL);
        }
    }
}

/* Answers every invocation held now, then lets the engine run what follows. */
static void be_answer_held(struct be *e)
{
    for (size_t i = 0; i < e->h.n_calls; i++) {
        if (e->h.calls[i].held) {
            eh_answer(&e->h, i, SL_OUTCOME_SUCCESS, NULL);
        }
    }
    eh_settle(&e->h);
}

static bool be_all_acked(const struct be *e)
{
    for (size_t p = 0; p < e->fs.n_parts; p++) {
        if (fake_stream_acked(&e->fs, p) < e->fs.parts[p].n_recs) {
            return false;
        }
    }
    return true;
}

/* Runs to the end: every record delivered, checking the bound and each claim's cap. */
static void be_finish(struct be *e, size_t cap)
{
    for (int round = 0; round < BE_ROUNDS && !be_all_acked(e); round++) {
        (void)fake_stream_complete(&e->fs);
        eh_settle(&e->h);
        be_answer_held(e);
        for (size_t p = 0; p < e->fs.n_parts; p++) {
            assert_true(be_claim(e, p) <= cap);
        }
    }
    assert_true(be_all_acked(e));
    assert_true(e->fs.max_held_records <= BE_TOTAL);
    be_check_bound(e);
}

static void test_budget_busy_part_borrows_beside_quiet_ones(void **state)
{
    struct be *e = *state;
    size_t busy = be_add(e, 300);
    for (int i = 0; i < 3; i++) {
        (void)be_add(e, 0);
    }
    be_open(e);
    /* its share (30) while all four wanted to fetch, then what the quiet ones leave: 120 less
     * a reserve of half their three shares (45) */
    assert_int_equal(be_claim(e, busy), 75);
    assert_true(be_claim(e, busy) > BE_TOTAL / 4);
    be_finish(e, 75);
}

static void test_budget_two_busy_parts_split_evenly(void **state)
{
    struct be *e = *state;
    size_t a = be_add(e, 300);
    size_t b = be_add(e, 300);
    (void)be_add(e, 0);
    (void)be_add(e, 0);
    be_open(e);
    /* each up to 120 less one share kept for the two quiet ones, split in two, and neither
     * ever claims more than the other */
    size_t max_a = 0;
    size_t max_b = 0;
    for (int round = 0; round < BE_ROUNDS && !be_all_acked(e); round++) {
        assert_true(be_claim(e, a) <= 45);
        assert_true(be_claim(e, b) <= 45);
        if (fake_stream_acked(&e->fs, a) < 300 && fake_stream_acked(&e->fs, b) < 300) {
            assert_int_equal(be_claim(e, a), be_claim(e, b));
        }
        max_a = be_claim(e, a) > max_a ? be_claim(e, a) : max_a;
        max_b = be_claim(e, b) > max_b ? be_claim(e, b) : max_b;
        be_answer_held(e);
    }
    assert_int_equal(max_a, 45);
    assert_int_equal(max_b, 45);
    assert_true(be_all_acked(e));
    be_check_bound(e);
}

static void test_budget_claims_never_exceed_bound(void **state)
{
    struct be *e = *state;
    for (int i = 0; i < 8; i++) {
        (void)be_add(e, 60);
    }
    e->fs.async = true; /* fetches answer when the test says, one partition at a time */
    be_open(e);
    be_check_bound(e);
    for (int round = 0; round < BE_ROUNDS && !be_all_acked(e); round++) {
        (void)fake_stream_complete_part(&e->fs, (size_t)round % e->fs.n_parts);
        eh_settle(&e->h);
        be_check_bound(e);
        if (round % 3 == 2) {
            be_answer_held(e);
        }
    }
    assert_true(be_all_acked(e));
    assert_true(e->fs.max_held_records <= BE_TOTAL);
    be_check_bound(e);
}

static void test_budget_quiet_part_wakes_gets_share_at_once(void **state)
{
    struct be *e = *state;
    size_t busy = be_add(e, 300);
    size_t waker = be_add(e, 0);
    (void)be_add(e, 0);
    (void)be_add(e, 0);
    be_open(e);
    assert_int_equal(be_claim(e, busy), 75); /* borrowing */
    for (int i = 0; i < 40; i++) {
        fake_stream_push_str(&e->fs, waker, "k", "{}");
    }
    eh_settle(&e->h);
    /* its whole share at once, from the room the borrower left */
    assert_int_equal(be_last_fetch(e, waker)->max_records, 30);
    assert_int_equal(be_claim(e, waker), 30);
    /* while it reads, the borrower fetches no more than 120 less a share for the two quiet
     * ones, in two: what it holds beyond that is only delivered */
    size_t before = be_claim(e, busy);
    for (int round = 0; round < BE_ROUNDS && fake_stream_acked(&e->fs, waker) < 40; round++) {
        be_answer_held(e);
        if (fake_stream_acked(&e->fs, waker) < 40) {
            assert_true(be_claim(e, busy) <= (before > 45 ? before : 45));
        }
        before = be_claim(e, busy);
        assert_true(be_claim(e, waker) <= 45);
    }
    assert_int_equal(fake_stream_acked(&e->fs, waker), 40);
    be_finish(e, 75);
}

int main(void)
{
    (void)setenv("SLUICE_RETRY_BASE_MS", "60000", 1); /* no backoff fires while a test runs */
    (void)setenv("SLUICE_RETRY_MAX_MS", "60000", 1);
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    fake_stream_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_budget_busy_part_borrows_beside_quiet_ones, be_setup,
                                        be_teardown),
        cmocka_unit_test_setup_teardown(test_budget_two_busy_parts_split_evenly, be_setup,
                                        be_teardown),
        cmocka_unit_test_setup_teardown(test_budget_claims_never_exceed_bound, be_setup,
                                        be_teardown),
        cmocka_unit_test_setup_teardown(test_budget_quiet_part_wakes_gets_share_at_once, be_setup,
                                        be_teardown),
    };
    return cmocka_run_group_tests_name("engine_budget", tests, NULL, NULL);
}

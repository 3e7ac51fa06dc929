/* SPDX-License-Identifier: Apache-2.0 */
/* test_progress.c: progress.c alone, over a real file checkpoint store in a temporary
 * directory and a host that records what it is told. The delivery rules it owns: the
 * checkpoint is the contiguous low-watermark of done records (one lane and several: a record
 * still being retried holds it back whatever is done after it); the source is acknowledged
 * only after the checkpoint is in the store, and only up to the low-watermark; a revoked
 * partition is neither checkpointed nor acknowledged; a partition runs at most
 * max_unsaved_batches checkpoints ahead of the disk and not at all before its recorded start
 * is on disk; what reached the disk is what a restart loads. progress.c reads no clock; waits
 * for the disk use test_run_until deadlines, never sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "helpers.h"
#include "partition.h"
#include "progress.h"

#define ID   "8d1e4f0a-5b2c-4e7d-9a3f-6c0b1d2e3f4a"
#define PART "part-0"

struct fx {
    uv_loop_t loop;
    char *dir;
    struct sl_ckpt *ck;
    struct sl_progress *pg;
    struct sl_part *part;
    struct sl_progress_part *pp;
    /* what the host was told */
    size_t n_acks;
    uint64_t acked_pos;      /* pos of the last record acknowledged */
    bool ack_saw_checkpoint; /* at every ack, the store already held a checkpoint past it */
    size_t dropped;
    size_t proceeds;
    size_t max_unsaved;
    bool keeps_positions;
};

static int host_format_pos(
    void *arg, struct sl_part *part, const struct sl_record *last, char *buf, size_t len)
{
    (void)arg;
    snprintf(buf, len, "%" PRIu64, sl_recq_pos_u64(&part->q, last, 1));
    return 0;
}

static void host_ack(void *arg, struct sl_part *part, const struct sl_record *last)
{
    struct fx *f = arg;
    f->n_acks++;
    f->acked_pos = sl_recq_pos_u64(&part->q, last, 0);
    struct sl_ckpt_entry e;
    bool stored = sl_ckpt_get(f->ck, part->id, &e) &&
                  strtoull(e.pos, NULL, 10) == sl_recq_pos_u64(&part->q, last, 1);
    if (!f->keeps_positions && !stored) {
        f->ack_saw_checkpoint = false;
    }
}

static void host_dropped(void *arg, struct sl_part *part, size_t n)
{
    (void)part;
    struct fx *f = arg;
    f->dropped += n;
}

static void host_may_proceed(void *arg)
{
    struct fx *f = arg;
    f->proceeds++;
}

static void fx_open(struct fx *f)
{
    char err[512] = "";
    int r = sl_ckpt_open(&f->loop, f->dir, ID, &f->ck, err, sizeof(err));
    if (r != 0) {
        fail_msg("open: %d %s", r, err);
    }
    struct sl_progress_conf conf = {
        .inst = "test",
        .keeps_positions = f->keeps_positions,
        .max_unsaved_batches = f->max_unsaved,
    };
    struct sl_progress_host host = {
        .arg = f,
        .format_pos = host_format_pos,
        .ack = host_ack,
        .dropped = host_dropped,
        .may_proceed = host_may_proceed,
    };
    assert_int_equal(sl_progress_new(f->ck, &conf, &host, &f->pg), 0);
    f->part = sl_part_new(PART, "the partition");
    assert_non_null(f->part);
    assert_int_equal(sl_progress_part_new(f->pg, f->part, &f->pp), 0);
}

static bool is_clean_ck(void *arg)
{
    return sl_ckpt_is_clean(arg);
}

static void fx_close(struct fx *f)
{
    if (!f->ck) {
        return;
    }
    assert_true(test_run_until(&f->loop, is_clean_ck, f->ck, 5000));
    sl_progress_part_free(f->pp);
    sl_part_free(f->part);
    sl_progress_free(f->pg);
    sl_ckpt_close(f->ck);
    f->ck = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->dir = test_tmpdir();
    f->max_unsaved = 16;
    f->ack_saw_checkpoint = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Appends n records at positions 10*i (a record spans 10), the i-th going to lane i % lanes. */
static void push_records(struct fx *f, size_t n, uint32_t lanes)
{
    size_t base = sl_recq_count(&f->part->q) + (size_t)f->part->q.dropped;
    for (size_t i = base; i < base + n; i++) {
        char data[16];
        int len = snprintf(data, sizeof(data), "r%zu", i);
        assert_int_equal(
            test_push(&f->part->q, data, (uint32_t)len, NULL, 0, 10 * i, 10 * i + 10, 0, 0), 0);
        sl_recq_at_mut(&f->part->q, sl_recq_count(&f->part->q) - 1)->lane = (uint32_t)(i % lanes);
    }
}

/* Marks the live record at index i done, as a lane does when it is delivered or written to
 * the on-failure destination, or as the mapping does when it is filtered out. */
static void mark_done(struct fx *f, size_t i, bool filtered)
{
    sl_recq_at_mut(&f->part->q, i)->flags |= SL_REC_DONE | (filtered ? SL_REC_FILTERED : 0);
}

/* The position the store holds for the partition, or -1 when it holds none. */
static int64_t stored_pos(const struct fx *f)
{
    struct sl_ckpt_entry e;
    if (!sl_ckpt_get(f->ck, PART, &e)) {
        return -1;
    }
    return (int64_t)strtoll(e.pos, NULL, 10);
}

static void settle(struct fx *f)
{
    assert_true(test_run_until(&f->loop, is_clean_ck, f->ck, 5000));
}

/* One lane: record 0 is being retried while the records after it were filtered out or
 * delivered. The checkpoint must not pass record 0, nor the source be acknowledged, however
 * many are done behind it. */
static void test_progress_one_lane_retry_holds_checkpoint(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    push_records(f, 6, 1);
    mark_done(f, 1, true);
    mark_done(f, 2, true);
    mark_done(f, 3, false);
    mark_done(f, 5, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 0);
    assert_int_equal(stored_pos(f), -1);
    assert_int_equal(f->n_acks, 0);
    assert_int_equal(sl_recq_count(&f->part->q), 6);
    settle(f);
    assert_int_equal(stored_pos(f), -1);

    /* record 0 is delivered at last: the watermark moves to the first record not done (4) */
    mark_done(f, 0, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 4);
    assert_int_equal(stored_pos(f), 40);
    assert_int_equal(f->n_acks, 1);
    assert_int_equal(f->acked_pos, 30);
    assert_int_equal(f->dropped, 4);
    assert_int_equal(sl_recq_count(&f->part->q), 2);
    assert_true(f->ack_saw_checkpoint);

    /* nothing new done: nothing moves */
    assert_int_equal(sl_progress_part_advance(f->pp), 0);
    assert_int_equal(f->n_acks, 1);
    mark_done(f, 0, false); /* was record 4 */
    assert_int_equal(sl_progress_part_advance(f->pp), 2);
    assert_int_equal(stored_pos(f), 60);
    assert_int_equal(f->acked_pos, 50);
    assert_true(f->ack_saw_checkpoint);
}

/* Several lanes share a partition's queue: lane 1 finished everything it had while lane 0's
 * first record is still being retried. The checkpoint stays before lane 0's record; once that
 * is done it moves up to the first record of either lane that is not. */
static void test_progress_lanes_low_watermark(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    push_records(f, 8, 2); /* lane 0: 0 2 4 6, lane 1: 1 3 5 7 */
    mark_done(f, 1, false);
    mark_done(f, 3, false);
    mark_done(f, 5, true);
    mark_done(f, 7, false);
    mark_done(f, 2, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 0);
    assert_int_equal(stored_pos(f), -1);
    assert_int_equal(f->n_acks, 0);

    mark_done(f, 0, false); /* 0..3 done, 4 (lane 0) is not */
    assert_int_equal(sl_progress_part_advance(f->pp), 4);
    assert_int_equal(stored_pos(f), 40);
    assert_int_equal(f->acked_pos, 30);
    assert_true(f->ack_saw_checkpoint);

    mark_done(f, 0, false); /* record 4; record 6 (lane 0) still is not done */
    assert_int_equal(sl_progress_part_advance(f->pp), 2);
    assert_int_equal(stored_pos(f), 60);
    assert_int_equal(f->acked_pos, 50);
    assert_int_equal(sl_recq_count(&f->part->q), 2);
}

/* A revoked partition belongs to another consumer now: nothing of it is checkpointed or
 * acknowledged, and its records stay where they are. */
static void test_progress_revoked_moves_nothing(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    push_records(f, 3, 1);
    mark_done(f, 0, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 1);
    assert_int_equal(stored_pos(f), 10);
    sl_progress_part_revoke(f->pp);
    mark_done(f, 0, false);
    mark_done(f, 1, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 0);
    assert_int_equal(stored_pos(f), 10);
    assert_int_equal(f->n_acks, 1);
    assert_int_equal(sl_recq_count(&f->part->q), 2);
}

/* A source that keeps its own positions (Kafka's committed offsets) is acknowledged up to the
 * low-watermark, and the store is neither written nor read. */
static void test_progress_keeps_positions_acks_only(void **state)
{
    struct fx *f = *state;
    f->keeps_positions = true;
    fx_open(f);
    push_records(f, 3, 1);
    mark_done(f, 1, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 0);
    assert_int_equal(f->n_acks, 0);
    mark_done(f, 0, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 2);
    assert_int_equal(f->n_acks, 1);
    assert_int_equal(f->acked_pos, 10);
    assert_int_equal(stored_pos(f), -1);
    assert_int_equal(sl_progress_part_set_start(f->pp, "123"), 0);
    assert_int_equal(stored_pos(f), -1);
    assert_false(sl_progress_part_waits_for_disk(f->pp));
}

/* With max_unsaved_batches 2, a partition may advance twice before the disk has the first
 * checkpoint; then it waits until a write lands, is told it may proceed, and goes on. */
static void test_progress_unsaved_bound(void **state)
{
    struct fx *f = *state;
    f->max_unsaved = 2;
    fx_open(f);
    push_records(f, 3, 1);
    assert_false(sl_progress_part_waits_for_disk(f->pp));
    mark_done(f, 0, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 1);
    assert_false(sl_progress_part_waits_for_disk(f->pp));
    mark_done(f, 0, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 1);
    assert_true(sl_progress_part_waits_for_disk(f->pp));
    assert_int_equal(f->proceeds, 0);

    settle(f); /* the loop writes the store: both checkpoints are durable */
    assert_true(f->proceeds >= 1);
    assert_false(sl_progress_part_waits_for_disk(f->pp));
    mark_done(f, 0, false);
    assert_int_equal(sl_progress_part_advance(f->pp), 1);
    assert_false(sl_progress_part_waits_for_disk(f->pp));
}

/* The start a source records for an empty partition (a file read from its end) holds the
 * partition back until it is on disk, so a crash cannot restart from elsewhere after records
 * were delivered. */
static void test_progress_start_waits_for_disk(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    assert_int_equal(sl_progress_part_set_start(f->pp, "500"), 0);
    assert_true(sl_progress_part_waits_for_disk(f->pp));
    assert_int_equal(stored_pos(f), 500);
    settle(f);
    assert_false(sl_progress_part_waits_for_disk(f->pp));
    assert_true(f->proceeds >= 1);
}

/* What reached the disk is what a restart loads into the partition (part->ckpt_pos), and the
 * restart's checkpoint is the low-watermark, not a later done record. */
static void test_progress_restart_loads_low_watermark(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    push_records(f, 4, 2);
    mark_done(f, 0, false);
    mark_done(f, 2, false);
    mark_done(f, 3, false); /* record 1 (lane 1) is not done */
    assert_int_equal(sl_progress_part_advance(f->pp), 1);
    settle(f);
    fx_close(f);

    f->n_acks = 0;
    fx_open(f);
    assert_non_null(f->part->ckpt_pos);
    assert_string_equal(f->part->ckpt_pos, "10");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_progress_one_lane_retry_holds_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_progress_lanes_low_watermark, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_revoked_moves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_keeps_positions_acks_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_unsaved_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_start_waits_for_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress_restart_loads_low_watermark, setup, teardown),
    };
    return cmocka_run_group_tests_name("progress", tests, NULL, NULL);
}

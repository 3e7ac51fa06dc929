/* SPDX-License-Identifier: Apache-2.0 */
/* test_fake_queue.c: the fake queue source's own behaviour, beyond the queue contract that
 * test_conformance.c checks: what it logs (every call of the mapping, every request entry it
 * sends), deletes in requests of at most 10, retries with the latest receipt handle, gives up on
 * a refused handle at once and on a failing one after max_delete_attempts, extends by at most
 * the visibility timeout and never past the hold, and counts receives in its event. The engine's
 * queue tests rely on each. A small stand-in for the mapping drives it; the clock is fake and
 * moved by hand; waits run the loop to a condition under a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_queue.h"
#include "helpers.h"
#include "log.h"
#include "partition.h"

#define T_DEADLINE_MS 5000
#define T_MAX_REPORTS 64

struct t_report {
    uint64_t lease;
    enum sl_queue_report report;
    int err;
};

/* The mapping's stand-in. */
struct t_h {
    struct fake_queue fq;
    const struct sl_source_ops *ops;
    uv_loop_t loop;
    struct sl_clock_fake clock;
    struct sl_source_env env;
    void *ctx;
    struct sl_part *part;
    struct t_report reports[T_MAX_REPORTS];
    size_t n_reports;
    size_t want_reports; /* what t_wait_reports waits for */
};

static int t_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct t_h *h = owner;
    h->part = sl_part_new(id, name);
    assert_non_null(h->part);
    *ret_part = h->part;
    return 0;
}

static void t_part_wake(void *owner, struct sl_part *part)
{
    (void)owner;
    (void)part;
}

static void t_queue_report(
    void *owner, struct sl_part *part, uint64_t lease, enum sl_queue_report report, int err)
{
    struct t_h *h = owner;
    assert_ptr_equal(part, h->part);
    assert_true(h->n_reports < T_MAX_REPORTS);
    h->reports[h->n_reports++] = (struct t_report){lease, report, err};
}

static void t_start(struct t_h *h, int64_t visibility_ms)
{
    memset(h, 0, sizeof(*h));
    fake_queue_init(&h->fq);
    h->fq.visibility_ms = visibility_ms;
    h->ops = sl_source_for_arn(FAKE_QUEUE_SCHEME "t");
    assert_non_null(h->ops);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    sl_clock_fake_init(&h->clock, 1000000, INT64_C(1700000000000));
    h->env = (struct sl_source_env){.loop = &h->loop,
                                    .clock = &h->clock.clock,
                                    .inst = "t",
                                    .owner = h,
                                    .part_add = t_part_add,
                                    .part_wake = t_part_wake,
                                    .queue_report = t_queue_report};
    h->ctx = calloc(1, h->ops->ctx_size);
    assert_non_null(h->ctx);
    char err[128];
    assert_int_equal(h->ops->init(h->ctx, &h->env, err, sizeof(err)), 0);
}

static void t_run(struct t_h *h)
{
    assert_int_equal(h->ops->start(h->ctx), 0);
    assert_non_null(h->part);
}

static void t_stop(struct t_h *h)
{
    h->ops->stop(h->ctx);
    h->ops->part_release(h->ctx, h->part);
    sl_part_free(h->part);
    h->ops->fini(h->ctx);
    free(h->ctx);
    for (int i = 0; i < 100 && uv_loop_alive(&h->loop); i++) {
        (void)uv_run(&h->loop, UV_RUN_ONCE);
    }
    assert_int_equal(uv_loop_close(&h->loop), 0);
    fake_queue_fini(&h->fq);
}

/* Fetches up to max records (appended to part->q); returns how many, their leases in leases. */
static size_t t_fetch(struct t_h *h, uint64_t *leases, size_t max)
{
    size_t before = sl_recq_count(&h->part->q);
    int n = h->ops->fetch(h->ctx, h->part, max, 1 << 20);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        leases[i] = sl_queue_rec_lease(sl_recq_at(&h->part->q, before + (size_t)i));
    }
    return (size_t)n;
}

static bool t_reported(void *arg)
{
    const struct t_h *h = arg;
    return h->n_reports >= h->want_reports && h->ops->queue_idle(h->ctx);
}

/* Runs the loop until n reports came and the fake is idle, moving the clock step_ms at a time
 * (0: standing still). */
static void t_wait_reports(struct t_h *h, size_t n, int64_t step_ms)
{
    h->want_reports = n;
    for (int i = 0; i < 1000 && !t_reported(h); i++) {
        (void)test_run_until(&h->loop, t_reported, h, step_ms ? 2 : T_DEADLINE_MS);
        sl_clock_fake_advance(&h->clock, step_ms);
    }
    assert_true(t_reported(h));
}

static const struct fake_queue_call *
t_call(const struct t_h *h, enum fake_queue_call_kind kind, size_t k)
{
    for (size_t i = 0; i < h->fq.n_calls; i++) {
        if (h->fq.calls[i].kind == kind && k-- == 0) {
            return &h->fq.calls[i];
        }
    }
    fail_msg("no call %zu of kind %d", k, (int)kind);
    return NULL;
}

static void test_fake_queue_deletes_in_requests_of_ten(void **state)
{
    (void)state;
    struct t_h h;
    t_start(&h, 30000);
    char body[16];
    for (int i = 0; i < 25; i++) {
        (void)snprintf(body, sizeof(body), "m%d", i);
        (void)fake_queue_send(&h.fq, NULL, body);
    }
    t_run(&h);
    uint64_t leases[25];
    assert_int_equal(t_fetch(&h, leases, 25), 25);
    assert_int_equal(h.ops->queue_ack(h.ctx, h.part, leases, 25), 0);
    assert_int_equal(fake_queue_count(&h.fq, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 25);
    t_wait_reports(&h, 25, 0);
    /* 25 entries in three requests: 10, 10, 5 */
    size_t per_request[4] = {0};
    for (size_t k = 0; k < 25; k++) {
        const struct fake_queue_call *c = t_call(&h, FAKE_QUEUE_REQ_DELETE, k);
        assert_true(c->request >= 1 && c->request <= 3);
        per_request[c->request]++;
    }
    assert_int_equal(per_request[1], 10);
    assert_int_equal(per_request[2], 10);
    assert_int_equal(per_request[3], 5);
    for (size_t i = 0; i < 25; i++) {
        assert_int_equal(h.reports[i].report, SL_QUEUE_ACKED);
        assert_true(h.fq.msgs[i].deleted);
    }
    t_stop(&h);
}

/* A mapping whose lease ran out acks the old record after the message was received again: the
 * delete carries the latest receipt handle, and succeeds. */
static void test_fake_queue_delete_uses_latest_handle(void **state)
{
    (void)state;
    struct t_h h;
    t_start(&h, 30000);
    (void)fake_queue_send(&h.fq, NULL, "a");
    t_run(&h);
    uint64_t first;
    assert_int_equal(t_fetch(&h, &first, 1), 1);
    sl_clock_fake_advance(&h.clock, 30000);
    t_wait_reports(&h, 1, 0);
    assert_int_equal(h.reports[0].report, SL_QUEUE_LEASE_LOST);
    uint64_t second;
    assert_int_equal(t_fetch(&h, &second, 1), 1);
    assert_true(second != first);
    assert_int_equal(h.fq.msgs[0].receives, 2);
    /* the event says so too */
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(h.ops->encode_record(h.ctx, h.part, sl_recq_at(&h.part->q, 1), &out), 0);
    assert_non_null(strstr(out.data, "\"receiptHandle\":\"rh-0-2\""));
    assert_non_null(strstr(out.data, "\"ApproximateReceiveCount\":\"2\""));
    sl_buf_fini(&out);
    assert_int_equal(h.ops->queue_ack(h.ctx, h.part, &first, 1), 0);
    t_wait_reports(&h, 2, 0);
    assert_int_equal(h.reports[1].lease, first);
    assert_int_equal(h.reports[1].report, SL_QUEUE_ACKED);
    assert_int_equal(t_call(&h, FAKE_QUEUE_REQ_DELETE, 0)->handle, 2);
    assert_true(h.fq.msgs[0].deleted);
    t_stop(&h);
}

/* A refused handle ends at once (one attempt); a retriable failure is retried with backoff on
 * the clock, up to max_delete_attempts, then reported failed. */
static void test_fake_queue_delete_failures(void **state)
{
    (void)state;
    struct t_h h;
    t_start(&h, 30000);
    size_t fatal = fake_queue_send(&h.fq, NULL, "fatal");
    size_t flaky = fake_queue_send(&h.fq, NULL, "flaky");
    fake_queue_fail_deletes(&h.fq, fatal, 1, true);
    fake_queue_fail_deletes(&h.fq, flaky, 100, false);
    t_run(&h);
    uint64_t leases[2];
    assert_int_equal(t_fetch(&h, leases, 2), 2);
    assert_int_equal(h.ops->queue_ack(h.ctx, h.part, leases, 2), 0);
    t_wait_reports(&h, 2, 100);
    assert_int_equal(h.reports[0].lease, leases[0]);
    assert_int_equal(h.reports[0].report, SL_QUEUE_ACK_FAILED);
    assert_int_equal(h.reports[0].err, SL_ENOTFOUND);
    assert_int_equal(h.reports[1].lease, leases[1]);
    assert_int_equal(h.reports[1].report, SL_QUEUE_ACK_FAILED);
    assert_int_equal(h.reports[1].err, SL_ETIMEDOUT);
    assert_int_equal(fake_queue_count(&h.fq, FAKE_QUEUE_REQ_DELETE, fatal), 1);
    assert_int_equal(fake_queue_count(&h.fq, FAKE_QUEUE_REQ_DELETE, flaky),
                     h.fq.max_delete_attempts);
    assert_int_equal(fake_queue_count_failed(&h.fq, FAKE_QUEUE_REQ_DELETE, SIZE_MAX),
                     1 + h.fq.max_delete_attempts);
    /* each retry waited longer than the one before */
    int64_t prev_gap = 0;
    for (size_t k = 1; k < h.fq.max_delete_attempts; k++) {
        int64_t gap = t_call(&h, FAKE_QUEUE_REQ_DELETE, k + 1)->at_ms -
                      t_call(&h, FAKE_QUEUE_REQ_DELETE, k)->at_ms;
        assert_true(gap > prev_gap);
        prev_gap = gap;
    }
    assert_false(h.fq.msgs[fatal].deleted);
    assert_false(h.fq.msgs[flaky].deleted);
    t_stop(&h);
}

/* Extensions: when half the visibility is left, by at most the visibility, never past the hold
 * (rounded up to a second); none after the hold. A release with visibility 0 is one visibility
 * change of 0; one that keeps the visibility sends nothing. */
static void test_fake_queue_extensions_and_releases(void **state)
{
    (void)state;
    struct t_h h;
    t_start(&h, 10000);
    (void)fake_queue_send(&h.fq, NULL, "held");
    (void)fake_queue_send(&h.fq, NULL, "now");
    (void)fake_queue_send(&h.fq, NULL, "kept");
    t_run(&h);
    int64_t t0 = sl_clock_now_ms(&h.clock.clock);
    uint64_t leases[3];
    assert_int_equal(t_fetch(&h, leases, 3), 3);
    assert_int_equal(h.ops->queue_hold(h.ctx, h.part, &leases[0], 1, t0 + 25500), 0);
    assert_int_equal(h.ops->queue_release(h.ctx, h.part, &leases[1], 1, 0), 0);
    assert_int_equal(h.ops->queue_release(h.ctx, h.part, &leases[2], 1, SL_QUEUE_KEEP_VISIBILITY),
                     0);
    assert_int_equal(t_call(&h, FAKE_QUEUE_CALL_HOLD, 0)->value, t0 + 25500);
    assert_int_equal(t_call(&h, FAKE_QUEUE_CALL_RELEASE, 1)->value, SL_QUEUE_KEEP_VISIBILITY);
    /* the held one is lost only once its hold and the last extension ran out */
    t_wait_reports(&h, 1, 500);
    assert_int_equal(h.reports[0].lease, leases[0]);
    assert_int_equal(h.reports[0].report, SL_QUEUE_LEASE_LOST);
    assert_true(sl_clock_now_ms(&h.clock.clock) >= t0 + 25500);
    size_t ext = fake_queue_count(&h.fq, FAKE_QUEUE_REQ_VISIBILITY, 0);
    assert_true(ext >= 2);
    int64_t covered = 0;
    for (size_t k = 0; k < h.fq.n_calls; k++) {
        const struct fake_queue_call *c = &h.fq.calls[k];
        if (c->kind != FAKE_QUEUE_REQ_VISIBILITY || c->msg != 0) {
            continue;
        }
        assert_int_equal(c->result, 0);
        assert_true(c->value > 0 && c->value <= 10000);
        assert_int_equal(c->value % 1000, 0);
        covered = c->at_ms + c->value;
        assert_true(covered <= t0 + 26000);
    }
    assert_true(covered >= t0 + 25500);
    /* the releases: one change to 0 for "now", nothing for "kept" */
    assert_int_equal(fake_queue_count(&h.fq, FAKE_QUEUE_REQ_VISIBILITY, 1), 1);
    assert_int_equal(fake_queue_count(&h.fq, FAKE_QUEUE_REQ_VISIBILITY, 2), 0);
    for (size_t k = 0; k < h.fq.n_calls; k++) {
        if (h.fq.calls[k].kind == FAKE_QUEUE_REQ_VISIBILITY && h.fq.calls[k].msg == 1) {
            assert_int_equal(h.fq.calls[k].value, 0);
        }
    }
    assert_int_equal(h.n_reports, 1); /* released leases are never reported */
    t_stop(&h);
}

int main(void)
{
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    fake_queue_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_queue_deletes_in_requests_of_ten),
        cmocka_unit_test(test_fake_queue_delete_uses_latest_handle),
        cmocka_unit_test(test_fake_queue_delete_failures),
        cmocka_unit_test(test_fake_queue_extensions_and_releases),
    };
    return cmocka_run_group_tests_name("fake_queue", tests, NULL, NULL);
}

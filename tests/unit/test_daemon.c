/* SPDX-License-Identifier: Apache-2.0 */
/* test_daemon.c: --until-idle's clock (sl_daemon_idle_*), driven by the fake clock. The idle
 * time counts only from the first quiet sample (every mapping's source ready, each partition
 * fetched once, nothing in flight), never from start-up: a slow start such as a 3 s group
 * join must not end a run with --until-idle=2 before anything was read. A record fetched or a
 * busy sample starts the count again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "daemon.h"

#define IDLE_MS 2000
#define TICK_MS 100 /* the daemon samples every 100 ms */

struct fixture {
    struct sl_clock_fake clock;
    struct sl_daemon_idle idle;
};

static int setup(void **state)
{
    static struct fixture f;
    sl_clock_fake_init(&f.clock, 1000000, 1700000000000);
    sl_daemon_idle_init(&f.idle, &f.clock.clock, IDLE_MS);
    *state = &f;
    return 0;
}

/* Samples every TICK_MS for ms; returns the time (from the first sample) at which the clock
 * first said idle, or -1. */
static int64_t run_for(struct fixture *f, int64_t ms, bool quiet, uint64_t fetched)
{
    for (int64_t t = 0; t < ms; t += TICK_MS) {
        if (sl_daemon_idle_sample(&f->idle, quiet, fetched)) {
            return t;
        }
        sl_clock_fake_advance(&f->clock, TICK_MS);
    }
    return -1;
}

/* The report: the source settles (joins its group) for 3 s, longer than the idle time. The
 * idle time counts from the first quiet sample after it, not from start-up. */
static void test_daemon_idle_counts_from_ready_not_start(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(run_for(f, 3000, false, 0), -1); /* settling */
    assert_int_equal(run_for(f, 5000, true, 0), IDLE_MS);
}

/* A record fetched starts the count again even if the sample around it is quiet (it was
 * fetched and delivered between two samples). */
static void test_daemon_idle_record_restarts_the_count(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(run_for(f, 1500, true, 0), -1);
    assert_int_equal(f->idle.record_ms, -1);
    assert_false(sl_daemon_idle_sample(&f->idle, true, 1)); /* a record, quiet again */
    assert_int_equal(f->idle.record_ms, f->clock.now);      /* for "last record read" */
    sl_clock_fake_advance(&f->clock, TICK_MS);
    /* counts from the next quiet sample with no new record */
    assert_int_equal(run_for(f, 5000, true, 1), IDLE_MS);
}

/* A busy sample (an invocation in flight, a partition not fetched yet) starts it again. */
static void test_daemon_idle_busy_restarts_the_count(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(run_for(f, 1900, true, 0), -1);
    assert_int_equal(run_for(f, 300, false, 0), -1);
    assert_int_equal(run_for(f, 5000, true, 0), IDLE_MS);
}

/* Quiet from the first sample (an empty directory): idle after idle_ms, not before. */
static void test_daemon_idle_exactly_idle_ms(void **state)
{
    struct fixture *f = *state;
    assert_false(sl_daemon_idle_sample(&f->idle, true, 0));
    sl_clock_fake_advance(&f->clock, IDLE_MS - 1);
    assert_false(sl_daemon_idle_sample(&f->idle, true, 0));
    sl_clock_fake_advance(&f->clock, 1);
    assert_true(sl_daemon_idle_sample(&f->idle, true, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_daemon_idle_counts_from_ready_not_start, setup),
        cmocka_unit_test_setup(test_daemon_idle_record_restarts_the_count, setup),
        cmocka_unit_test_setup(test_daemon_idle_busy_restarts_the_count, setup),
        cmocka_unit_test_setup(test_daemon_idle_exactly_idle_ms, setup),
    };
    return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}

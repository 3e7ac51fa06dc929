/* SPDX-License-Identifier: Apache-2.0 */
/* test_retry.c: the backoff schedule: exponential ceilings, the cap, the floor (never a tight
 * loop), full jitter (delays spread over the whole range) and the environment overrides. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "retry.h"

static void test_retry_delays_stay_within_exponential_ceiling(void **state)
{
    (void)state;
    struct sl_retry_policy p = {.base_ms = 100, .max_ms = 10000, .min_ms = 10};
    uint64_t rng = 42;
    for (unsigned attempt = 1; attempt <= 12; attempt++) {
        int64_t ceiling = 100;
        for (unsigned i = 1; i < attempt; i++) {
            ceiling *= 2;
        }
        if (ceiling > 10000) {
            ceiling = 10000;
        }
        for (int k = 0; k < 1000; k++) {
            int64_t d = sl_retry_delay_ms(&p, attempt, &rng);
            assert_true(d >= 10);
            assert_true(d <= ceiling);
        }
    }
}

static void test_retry_cap_holds_for_huge_attempts(void **state)
{
    (void)state;
    struct sl_retry_policy p = {.base_ms = 200, .max_ms = 30000, .min_ms = 20};
    uint64_t rng = 7;
    int64_t max_seen = 0;
    for (int k = 0; k < 5000; k++) {
        int64_t d = sl_retry_delay_ms(&p, 4000000000u, &rng);
        assert_true(d >= 20 && d <= 30000);
        if (d > max_seen) {
            max_seen = d;
        }
    }
    /* Full jitter reaches the top of the range. */
    assert_true(max_seen > 27000);
}

static void test_retry_jitter_spreads_delays(void **state)
{
    (void)state;
    struct sl_retry_policy p = {.base_ms = 1000, .max_ms = 1000, .min_ms = 1};
    uint64_t rng = 99;
    int buckets[10] = {0};
    for (int k = 0; k < 10000; k++) {
        int64_t d = sl_retry_delay_ms(&p, 1, &rng);
        buckets[(d - 1) * 10 / 1000]++;
    }
    for (int b = 0; b < 10; b++) {
        assert_in_range(buckets[b], 800, 1200);
    }
}

static void test_retry_same_seed_same_schedule(void **state)
{
    (void)state;
    struct sl_retry_policy p = {.base_ms = 100, .max_ms = 5000, .min_ms = 10};
    uint64_t a = 1234;
    uint64_t b = 1234;
    for (unsigned i = 1; i < 50; i++) {
        assert_int_equal(sl_retry_delay_ms(&p, i, &a), sl_retry_delay_ms(&p, i, &b));
    }
}

static void test_retry_floor_when_ceiling_below_it(void **state)
{
    (void)state;
    struct sl_retry_policy p = {.base_ms = 5, .max_ms = 5, .min_ms = 10};
    uint64_t rng = 3;
    assert_int_equal(sl_retry_delay_ms(&p, 1, &rng), 10);
}

static void test_retry_default_policy_and_env_override(void **state)
{
    (void)state;
    struct sl_retry_policy p;
    unsetenv("SLUICE_RETRY_BASE_MS");
    unsetenv("SLUICE_RETRY_MAX_MS");
    sl_retry_policy_default(&p);
    assert_int_equal(p.base_ms, 200);
    assert_int_equal(p.max_ms, 30000);
    assert_int_equal(p.min_ms, 20);
    setenv("SLUICE_RETRY_BASE_MS", "20", 1);
    setenv("SLUICE_RETRY_MAX_MS", "200", 1);
    sl_retry_policy_default(&p);
    assert_int_equal(p.base_ms, 20);
    assert_int_equal(p.max_ms, 200);
    assert_int_equal(p.min_ms, 2);
    setenv("SLUICE_RETRY_BASE_MS", "junk", 1);
    sl_retry_policy_default(&p);
    assert_int_equal(p.base_ms, 200);
    unsetenv("SLUICE_RETRY_BASE_MS");
    unsetenv("SLUICE_RETRY_MAX_MS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delays_stay_within_exponential_ceiling),
        cmocka_unit_test(test_retry_cap_holds_for_huge_attempts),
        cmocka_unit_test(test_retry_jitter_spreads_delays),
        cmocka_unit_test(test_retry_same_seed_same_schedule),
        cmocka_unit_test(test_retry_floor_when_ceiling_below_it),
        cmocka_unit_test(test_retry_default_policy_and_env_override),
    };
    return cmocka_run_group_tests_name("retry", tests, NULL, NULL);
}

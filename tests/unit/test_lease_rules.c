/* SPDX-License-Identifier: Apache-2.0 */
/* test_lease_rules.c: KCL's lease-taking rules (lease_rules.c) on tables built by hand, at a
 * time given to them (the table's clock), no Redis and no sleeping: the fair share from the live
 * workers, expired and free leases taken first and only up to the share, at most one steal and
 * only from the most loaded worker when it holds more than the share (or the share, while the
 * taker needs two or more), nothing taken at or above the share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "lease_rules.h"

#define NOW     100000
#define LIVE    (NOW + 5000)
#define EXPIRED (NOW - 1)
#define MAXN    32

struct table {
    struct sl_lease_view v[MAXN];
    char names[MAXN][16];
    size_t n;
    size_t take[MAXN];
    struct sl_lease_plan plan;
};

/* Adds count leases owned by owner ("" free) expiring at exp. */
static void add(struct table *t, size_t count, const char *owner, int64_t exp)
{
    for (size_t i = 0; i < count; i++) {
        assert_true(t->n < MAXN);
        (void)snprintf(t->names[t->n], sizeof(t->names[t->n]), "shard-%02zu", t->n);
        t->v[t->n] = (struct sl_lease_view){t->names[t->n], owner, 1, exp};
        t->n++;
    }
}

static size_t plan(struct table *t, const char *me, size_t live)
{
    t->plan = (struct sl_lease_plan){.take = t->take};
    return sl_lease_rules_plan(t->v, t->n, me, live, NOW, &t->plan);
}

static void test_lease_rules_fresh_table_takes_the_share(void **state)
{
    (void)state;
    struct table t = {0};
    add(&t, 12, "", 0);
    assert_int_equal(plan(&t, "w1", 3), 0);
    assert_int_equal(t.plan.n_take, 4);
    assert_false(t.plan.steal);
    for (size_t i = 0; i < t.plan.n_take; i++) {
        assert_string_equal(t.v[t.take[i]].owner, "");
    }
}

static void test_lease_rules_at_the_share_takes_nothing(void **state)
{
    (void)state;
    struct table t = {0};
    add(&t, 4, "w1", LIVE);
    add(&t, 4, "w2", LIVE);
    add(&t, 4, "", 0);
    assert_int_equal(plan(&t, "w1", 3), 4);
    assert_int_equal(t.plan.n_take, 0);
    /* above the share: nothing given back, nothing taken */
    struct table u = {0};
    add(&u, 12, "w1", LIVE);
    assert_int_equal(plan(&u, "w1", 2), 12);
    assert_int_equal(u.plan.n_take, 0);
}

static void test_lease_rules_expired_first_then_at_most_the_share(void **state)
{
    (void)state;
    struct table t = {0};
    add(&t, 6, "w2", LIVE);
    add(&t, 6, "dead", EXPIRED); /* ran out: free, and "dead" is not a worker */
    assert_int_equal(plan(&t, "w1", 2), 0);
    assert_int_equal(t.plan.n_take, 6);
    assert_false(t.plan.steal);
    for (size_t i = 0; i < t.plan.n_take; i++) {
        assert_string_equal(t.v[t.take[i]].owner, "dead");
    }
    /* three workers alive by their heartbeats: the share is 4, expired ones still first */
    assert_int_equal(plan(&t, "w1", 3), 0);
    assert_int_equal(t.plan.n_take, 4);
    assert_false(t.plan.steal);
}

static void test_lease_rules_steals_one_from_the_most_loaded(void **state)
{
    (void)state;
    struct table t = {0};
    add(&t, 8, "w2", LIVE);
    add(&t, 4, "w3", LIVE);
    assert_int_equal(plan(&t, "w1", 3), 0);
    assert_int_equal(t.plan.n_take, 1);
    assert_true(t.plan.steal);
    assert_string_equal(t.v[t.take[0]].owner, "w2");
}

static void test_lease_rules_no_steal_from_a_worker_at_the_share(void **state)
{
    (void)state;
    /* 10 leases, 3 workers: share 4. w1 has 3 and needs one: w2 and w3 at or below the share
     * keep theirs. */
    struct table t = {0};
    add(&t, 3, "w1", LIVE);
    add(&t, 4, "w2", LIVE);
    add(&t, 3, "w3", LIVE);
    assert_int_equal(plan(&t, "w1", 3), 3);
    assert_int_equal(t.plan.n_take, 0);
    /* needing two, it steals one from a worker at the share */
    struct table u = {0};
    add(&u, 2, "w1", LIVE);
    add(&u, 4, "w2", LIVE);
    add(&u, 4, "w3", LIVE);
    assert_int_equal(plan(&u, "w1", 3), 2);
    assert_int_equal(u.plan.n_take, 1);
    assert_true(u.plan.steal);
}

static void test_lease_rules_workers_counted_from_owners_too(void **state)
{
    (void)state;
    /* the heartbeats say 1 (w1's only), but w2 and w3 hold live leases: 3 workers, share 4 */
    struct table t = {0};
    add(&t, 4, "w2", LIVE);
    add(&t, 4, "w3", LIVE);
    add(&t, 4, "", 0);
    assert_int_equal(plan(&t, "w1", 1), 0);
    assert_int_equal(t.plan.n_take, 4);
    /* more workers than leases: one each */
    struct table u = {0};
    add(&u, 2, "", 0);
    assert_int_equal(plan(&u, "w1", 5), 0);
    assert_int_equal(u.plan.n_take, 1);
    /* an empty table: nothing */
    struct table e = {0};
    assert_int_equal(plan(&e, "w1", 1), 0);
    assert_int_equal(e.plan.n_take, 0);
}

static void test_lease_rules_workers_start_at_different_places(void **state)
{
    (void)state;
    struct table t = {0};
    add(&t, 12, "", 0);
    size_t first[8];
    const char *names[] = {"host:1:a", "host:2:b", "host:3:c", "host:4:d",
                           "host:5:e", "host:6:f", "host:7:g", "host:8:h"};
    size_t distinct = 0;
    for (size_t i = 0; i < 8; i++) {
        (void)plan(&t, names[i], 3);
        first[i] = t.take[0];
        bool seen = false;
        for (size_t j = 0; j < i; j++) {
            seen = seen || first[j] == first[i];
        }
        distinct += seen ? 0 : 1;
    }
    assert_true(distinct >= 3);
}

static void test_lease_rules_is_free(void **state)
{
    (void)state;
    struct sl_lease_view v = {"p", "w1", 3, NOW};
    assert_true(sl_lease_rules_is_free(&v, NOW));
    v.expires_ms = NOW + 1;
    assert_false(sl_lease_rules_is_free(&v, NOW));
    v.owner = "";
    assert_true(sl_lease_rules_is_free(&v, NOW));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_rules_fresh_table_takes_the_share),
        cmocka_unit_test(test_lease_rules_at_the_share_takes_nothing),
        cmocka_unit_test(test_lease_rules_expired_first_then_at_most_the_share),
        cmocka_unit_test(test_lease_rules_steals_one_from_the_most_loaded),
        cmocka_unit_test(test_lease_rules_no_steal_from_a_worker_at_the_share),
        cmocka_unit_test(test_lease_rules_workers_counted_from_owners_too),
        cmocka_unit_test(test_lease_rules_workers_start_at_different_places),
        cmocka_unit_test(test_lease_rules_is_free),
    };
    return cmocka_run_group_tests_name("lease_rules", tests, NULL, NULL);
}

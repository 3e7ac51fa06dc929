/* SPDX-License-Identifier: Apache-2.0 */
/* test_ckpt_redis.c: the Redis checkpoint store (checkpoint.c over ckpt_redis.c) against a
 * redis-server of the test's own: rows read at open; the compare in Redis that moves a position
 * only forward (a later position kept against an earlier write; Kinesis sub-record numbers, a
 * whole record after its user records; a file's new content generation); the fencing script's
 * outcomes (the lease's owner and counter match: written; another worker's counter: refused,
 * nothing written; not held here: not even sent); Redis stopped: nothing becomes durable, and
 * once it is back empty every row is written again. Loop-driven with deadlines, no sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "helpers.h"
#include "redis_server.h"

#define ID "m1"

struct fx {
    uv_loop_t loop;
    struct test_redis redis;
    struct sl_ckpt *ck;
    char url[128];
    uint64_t counter; /* what holds() says this worker's lease counter is; 0: not held */
};

static bool fx_holds(void *arg, const char *part, uint64_t *ret_counter)
{
    struct fx *f = arg;
    (void)part;
    *ret_counter = f->counter;
    return f->counter != 0;
}

static int setup(void **state)
{
    if (!test_redis_available()) {
        test_redis_need();
    }
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    test_redis_start(&f->redis, 0, NULL);
    (void)snprintf(f->url, sizeof(f->url), "redis://127.0.0.1:%d/0", f->redis.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->ck) {
        sl_ckpt_close(f->ck);
    }
    test_close_all(&f->loop);
    (void)uv_loop_close(&f->loop);
    test_redis_stop(&f->redis);
    free(f);
    return 0;
}

static void fx_open(struct fx *f)
{
    char err[512] = "";
    int r = sl_ckpt_open_redis(&f->loop, f->url, ID, &f->ck, err, sizeof(err));
    if (r != 0) {
        fail_msg("open: %d %s", r, err);
    }
}

static bool fx_clean(void *arg)
{
    struct fx *f = arg;
    return sl_ckpt_is_clean(f->ck);
}

static void fx_set(struct fx *f, const char *part, const char *pos, const char *meta)
{
    assert_int_equal(sl_ckpt_set(f->ck, part, pos, meta), 0);
    assert_true(test_run_until(&f->loop, fx_clean, f, 5000));
}

/* The stored position of part ("" when absent). Owned. */
static char *fx_stored(struct fx *f, const char *part)
{
    char *v = test_redis_cmd(&f->redis, "HGET sluice:ckpt:" ID " %s", part);
    assert_non_null(v);
    return v;
}

static void expect_stored(struct fx *f, const char *part, const char *want_json)
{
    char *v = fx_stored(f, part);
    if (strcmp(v, want_json) != 0) {
        fail_msg("%s: stored %s, wanted %s", part, v, want_json);
    }
    free(v);
}

static void test_ckpt_redis_loads_and_moves_only_forward(void **state)
{
    struct fx *f = *state;
    free(test_redis_cmd(&f->redis, "HSET sluice:ckpt:" ID " old {\"pos\":\"7\",\"meta\":\"m\"}"));
    fx_open(f);
    struct sl_ckpt_entry e;
    assert_true(sl_ckpt_get(f->ck, "old", &e));
    assert_string_equal(e.pos, "7");
    assert_string_equal(e.meta, "m");

    fx_set(f, "p1", "100", NULL);
    expect_stored(f, "p1", "{\"pos\":\"100\"}");
    /* another writer is ahead: this one's earlier position is kept out */
    free(test_redis_cmd(&f->redis, "HSET sluice:ckpt:" ID " p1 {\"pos\":\"500\"}"));
    fx_set(f, "p1", "200", NULL);
    expect_stored(f, "p1", "{\"pos\":\"500\"}");
    fx_set(f, "p1", "1000", NULL); /* longer is later, whatever the text order */
    expect_stored(f, "p1", "{\"pos\":\"1000\"}");

    /* Kinesis: sub-record numbers in order, the whole record after them */
    fx_set(f, "k", "4960:2", NULL);
    fx_set(f, "k", "4960", NULL);
    expect_stored(f, "k", "{\"pos\":\"4960\"}");
    fx_set(f, "k", "4960:7", NULL);
    expect_stored(f, "k", "{\"pos\":\"4960\"}");
    fx_set(f, "k", "4961:0", "end=");
    expect_stored(f, "k", "{\"meta\":\"end=\",\"pos\":\"4961:0\"}");

    /* a file's new content starts again at 0 under a later generation */
    fx_set(f, "file", "300", "head=1:00 gen=5");
    fx_set(f, "file", "10", "head=1:01 gen=6");
    expect_stored(f, "file", "{\"meta\":\"head=1:01 gen=6\",\"pos\":\"10\"}");
    fx_set(f, "file", "20", "head=1:01 gen=5");
    expect_stored(f, "file", "{\"meta\":\"head=1:01 gen=6\",\"pos\":\"10\"}");
}

static void test_ckpt_redis_fencing_outcomes(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    sl_ckpt_fence(f->ck, "sluice:lease:" ID, "w1", fx_holds, f);
    free(test_redis_cmd(&f->redis, "HSET sluice:lease:" ID " p1 %s", "w1 3 99999999999999"));
    /* owner and counter match: written */
    f->counter = 3;
    fx_set(f, "p1", "100", NULL);
    expect_stored(f, "p1", "{\"pos\":\"100\"}");
    assert_int_equal(sl_ckpt_fenced_writes(f->ck), 0);
    /* another worker took it (counter 4): refused in Redis, nothing written */
    free(test_redis_cmd(&f->redis, "HSET sluice:lease:" ID " p1 %s", "w2 4 99999999999999"));
    fx_set(f, "p1", "200", NULL);
    expect_stored(f, "p1", "{\"pos\":\"100\"}");
    assert_int_equal(sl_ckpt_fenced_writes(f->ck), 1);
    /* the same owner with a stale counter: refused too */
    free(test_redis_cmd(&f->redis, "HSET sluice:lease:" ID " p1 %s", "w1 5 99999999999999"));
    fx_set(f, "p1", "300", NULL);
    expect_stored(f, "p1", "{\"pos\":\"100\"}");
    assert_int_equal(sl_ckpt_fenced_writes(f->ck), 2);
    /* no lease entry at all: refused */
    free(test_redis_cmd(&f->redis, "DEL sluice:lease:" ID));
    fx_set(f, "p1", "400", NULL);
    expect_stored(f, "p1", "{\"pos\":\"100\"}");
    assert_int_equal(sl_ckpt_fenced_writes(f->ck), 3);
    /* not held here: never sent */
    f->counter = 0;
    fx_set(f, "p1", "500", NULL);
    expect_stored(f, "p1", "{\"pos\":\"100\"}");
    assert_int_equal(sl_ckpt_fenced_writes(f->ck), 4);
    /* held again with the lease's counter: written */
    free(test_redis_cmd(&f->redis, "HSET sluice:lease:" ID " p1 %s", "w1 6 99999999999999"));
    f->counter = 6;
    fx_set(f, "p1", "600", NULL);
    expect_stored(f, "p1", "{\"pos\":\"600\"}");
}

static void test_ckpt_redis_down_then_back_empty(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    fx_set(f, "a", "10", NULL);
    fx_set(f, "b", "20", NULL);
    test_redis_stop(&f->redis);
    uint64_t durable = sl_ckpt_durable_generation(f->ck);
    assert_int_equal(sl_ckpt_set(f->ck, "a", "11", NULL), 0);
    (void)test_run_until(&f->loop, fx_clean, f, 700); /* Redis is down: it cannot be clean */
    assert_false(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_durable_generation(f->ck), durable);
    test_redis_restart(&f->redis); /* in memory: it lost both rows */
    assert_true(test_run_until(&f->loop, fx_clean, f, 10000));
    expect_stored(f, "a", "{\"pos\":\"11\"}");
    expect_stored(f, "b", "{\"pos\":\"20\"}"); /* untouched since, written again */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ckpt_redis_loads_and_moves_only_forward, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ckpt_redis_fencing_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ckpt_redis_down_then_back_empty, setup, teardown),
    };
    return cmocka_run_group_tests_name("ckpt_redis", tests, NULL, NULL);
}

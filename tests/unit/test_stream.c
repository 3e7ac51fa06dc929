/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream.c: a delivery stream (stream.c) writing to a file:///dir destination
 * (stream_dest.c) on a real loop with a fake wall clock: objects under the key layout leaving no
 * temporary file, IntervalInSeconds 0 delivering each put at once, SizeInMBs sealing an object as
 * soon as it is reached (not before), drain delivering what the interval would still hold, and the
 * memory cap refusing puts. Waits are test_run_until deadlines on conditions, never sleeps; no test
 * waits for an interval to pass. */
#include <dirent.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "firehose_api.h"
#include "helpers.h"
#include "s3_keys.h"
#include "stream.h"
#include "stream_dest.h"

#define WALL_MS INT64_C(1714568862000) /* 2024-05-01T13:07:42Z */
#define OBJ_DIR "/raw/2024/05/01/13"

struct fixture {
    char *dir;
    uv_loop_t loop;
    struct sl_clock_fake clock;
    struct sl_stream_conf sc;
    char arn[4200];
    struct sl_stream *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    f->dir = test_tmpdir();
    uv_loop_init(&f->loop);
    sl_clock_fake_init(&f->clock, 0, WALL_MS);
    (void)snprintf(f->arn, sizeof(f->arn), "file://%s", f->dir);
    f->sc = (struct sl_stream_conf){.name = "clicks",
                                    .bucket_arn = f->arn,
                                    .dir = f->dir,
                                    .prefix = "raw/",
                                    .size_mb = 1,
                                    .interval_s = 300};
    struct sl_s3_layout_conf lc = {.prefix = "raw/"};
    char err[256];
    if (sl_s3_layout_new(&lc, &f->sc.layout, err, sizeof(err)) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_stream_free(f->s);
    test_close_all(&f->loop);
    sl_s3_layout_free(f->sc.layout);
    (void)uv_loop_close(&f->loop);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void start(struct fixture *f)
{
    struct sl_stream_dest_env denv = {.loop = &f->loop, .clock = &f->clock.clock};
    struct sl_stream_env env = {.loop = &f->loop, .clock = &f->clock.clock};
    char err[256];
    assert_int_equal(sl_stream_dest_new(&f->sc, &denv, &env.dest, err, sizeof(err)), 0);
    assert_int_equal(sl_stream_new(&f->sc, &env, &f->s), 0);
}

static bool nothing_held(void *arg)
{
    struct fixture *f = arg;
    return sl_stream_held(f->s) == 0;
}

/* The files in dir + sub, read: returns how many; *ret_all gets their contents in name order,
 * and no name may start with '.' (a temporary file left behind). */
static size_t read_objects(const char *dir, const char *sub, struct sl_buf *ret_all)
{
    char path[4300];
    (void)snprintf(path, sizeof(path), "%s%s", dir, sub);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    size_t files = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0) {
            assert_true(names[i]->d_name[0] != '.');
            char file[4600];
            (void)snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
            FILE *fp = fopen(file, "rb");
            assert_non_null(fp);
            char chunk[65536];
            size_t k;
            while ((k = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
                assert_int_equal(sl_buf_append(ret_all, chunk, k), 0);
            }
            fclose(fp);
            files++;
        }
        free(names[i]);
    }
    free(names);
    return files;
}

static void test_stream_interval_zero(void **state)
{
    struct fixture *f = *state;
    f->sc.interval_s = 0;
    start(f);
    struct sl_firehose_rec recs[] = {{"one\n", 4}, {"two\n", 4}};
    assert_int_equal(sl_stream_put(f->s, recs, 2), 2);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    struct sl_firehose_rec more[] = {{"three\n", 6}};
    assert_int_equal(sl_stream_put(f->s, more, 1), 1);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    struct sl_buf all;
    sl_buf_init(&all);
    assert_int_equal(read_objects(f->dir, OBJ_DIR, &all), 2);
    assert_int_equal(all.len, 14);
    const struct sl_stream_stats *st = sl_stream_stats(f->s);
    assert_int_equal(st->incoming_records, 3);
    assert_int_equal(st->incoming_bytes, 14);
    assert_int_equal(st->delivered, 3);
    assert_int_equal(st->objects, 2);
    sl_buf_fini(&all);
}

static void test_stream_size_flush(void **state)
{
    struct fixture *f = *state;
    start(f);
    size_t half = 600 * 1024;
    char *data = calloc(1, half);
    assert_non_null(data);
    memset(data, 'x', half);
    struct sl_firehose_rec rec = {data, half};
    assert_int_equal(sl_stream_put(f->s, &rec, 1), 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(sl_stream_held(f->s), 1); /* under SizeInMBs: kept for the interval */
    assert_int_equal(sl_stream_put(f->s, &rec, 1), 1);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    struct sl_buf all;
    sl_buf_init(&all);
    assert_int_equal(read_objects(f->dir, OBJ_DIR, &all), 1);
    assert_int_equal(all.len, 2 * half);
    sl_buf_fini(&all);
    free(data);
}

static void test_stream_drain_delivers(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct sl_firehose_rec recs[] = {{"a", 1}, {"b", 1}};
    assert_int_equal(sl_stream_put(f->s, recs, 2), 2);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(sl_stream_held(f->s), 2);
    sl_stream_drain(f->s);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    struct sl_buf all;
    sl_buf_init(&all);
    assert_int_equal(read_objects(f->dir, OBJ_DIR, &all), 1);
    assert_string_equal(all.data, "ab");
    sl_buf_fini(&all);
}

static void test_stream_cap_refuses(void **state)
{
    struct fixture *f = *state;
    start(f); /* SizeInMBs 1: the cap is 2 MiB + one full call */
    size_t big = SL_FIREHOSE_RECORD_MAX;
    char *data = calloc(1, big);
    assert_non_null(data);
    struct sl_firehose_rec rec = {data, big};
    size_t took = 0;
    /* the loop does not run between the puts, so sealed objects are not written meanwhile */
    for (int i = 0; i < 100 && sl_stream_put(f->s, &rec, 1) == 1; i++) {
        took++;
    }
    assert_true(took >= 5);
    assert_true(took * big <= 2u * 1024 * 1024 + SL_FIREHOSE_CALL_MAX);
    assert_int_equal(sl_stream_stats(f->s)->throttled, 1);
    free(data);
    sl_stream_drain(f->s);
    assert_true(test_run_until(&f->loop, nothing_held, f, 30000));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_stream_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(interval_zero),
        T(size_flush),
        T(drain_delivers),
        T(cap_refuses),
    };
#undef T
    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}

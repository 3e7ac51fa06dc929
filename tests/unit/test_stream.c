/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream.c: a delivery stream (stream.c) writing to a file:///dir destination
 * (stream_dest.c) on a real loop with a fake wall clock: objects under the key layout leaving no
 * temporary file, IntervalInSeconds 0 delivering each put at once, SizeInMBs sealing an object as
 * soon as it is reached (not before), drain delivering what the interval would still hold; and the
 * spool: a put acknowledged only once durable, the quota refusing puts (and delivering what is
 * buffered so room comes back), records left undelivered by one stream delivered by the next on
 * the same directory with their arrival time in the key, and nothing delivered twice after a
 * clean restart. Waits are test_run_until deadlines on conditions, never sleeps; no test
 * waits for an interval to pass. */
#include <dirent.h>
#include <fcntl.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "firehose_api.h"
#include "helpers.h"
#include "log.h"
#include "s3_keys.h"
#include "stream.h"
#include "stream_dest.h"

#define WALL_MS INT64_C(1714568862000) /* 2024-05-01T13:07:42Z */
#define OBJ_DIR "/raw/2024/05/01/13"

struct fixture {
    char *dir;
    char spool[4200];
    uint64_t quota;
    size_t puts;   /* puts taken (their callback is due) */
    size_t acked;  /* put callbacks that said durable */
    size_t failed; /* put callbacks with an error */
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
    (void)snprintf(f->spool, sizeof(f->spool), "%s/state/streams/clicks", f->dir);
    f->quota = 64u * 1024 * 1024;
    struct sl_s3_layout_conf lc = {.prefix = "raw/"};
    char err[256];
    if (sl_s3_layout_new(&lc, &f->sc.layout, err, sizeof(err)) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}

static bool all_closed(void *arg)
{
    (void)arg;
    return sl_stream_closing() == 0;
}

/* Frees the stream and runs the loop until its spool is closed. */
static void stop(struct fixture *f)
{
    sl_stream_free(f->s);
    f->s = NULL;
    assert_true(test_run_until(&f->loop, all_closed, f, 10000));
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    stop(f);
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
    struct sl_stream_env env = {.loop = &f->loop,
                                .clock = &f->clock.clock,
                                .spool_dir = f->spool,
                                .spool_max_bytes = f->quota};
    char err[512] = "";
    assert_int_equal(sl_stream_dest_new(&f->sc, &denv, &env.dest, err, sizeof(err)), 0);
    int r = sl_stream_new(&f->sc, &env, &f->s, err, sizeof(err));
    if (r != 0) {
        print_error("sl_stream_new: %s\n", err);
    }
    assert_int_equal(r, 0);
}

static void put_cb(void *arg, int status)
{
    struct fixture *f = arg;
    if (status == 0) {
        f->acked++;
    } else {
        f->failed++;
    }
}

/* Puts recs; returns how many were taken (0 when refused). */
static size_t put(struct fixture *f, const struct sl_firehose_rec *recs, size_t n)
{
    size_t took = 0;
    int r = sl_stream_put(f->s, recs, n, &took, put_cb, f);
    f->puts += r == 0;
    return r == 0 ? took : 0;
}

static bool acked_all(void *arg)
{
    struct fixture *f = arg;
    return f->acked + f->failed == f->puts;
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
    assert_int_equal(put(f, recs, 2), 2);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    struct sl_firehose_rec more[] = {{"three\n", 6}};
    assert_int_equal(put(f, more, 1), 1);
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
    assert_int_equal(put(f, &rec, 1), 1);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(sl_stream_held(f->s), 1); /* under SizeInMBs: kept for the interval */
    assert_int_equal(put(f, &rec, 1), 1);
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
    assert_int_equal(put(f, recs, 2), 2);
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

/* A put is acknowledged only once its records are durable: its callback runs later, on the
 * loop, and the records are then in the spool's segment file. */
static void test_stream_put_acknowledged_when_durable(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct sl_firehose_rec recs[] = {{"a", 1}, {"b", 1}};
    assert_int_equal(put(f, recs, 2), 2);
    assert_int_equal(f->acked, 0); /* not before the sync */
    assert_true(test_run_until(&f->loop, acked_all, f, 5000));
    assert_int_equal(f->failed, 0);
    assert_int_equal(sl_stream_stats(f->s)->incoming_records, 2);
    assert_int_equal(sl_stream_held(f->s), 2); /* buffered for the interval, in the spool */
}

/* Past the quota a put is refused with nothing stored, what is buffered is delivered at once,
 * and once it is written the room comes back. */
static void test_stream_quota_refuses(void **state)
{
    struct fixture *f = *state;
    f->quota = 64 * 1024;
    start(f);
    char data[1000];
    memset(data, 'q', sizeof(data));
    struct sl_firehose_rec recs[20];
    for (size_t i = 0; i < 20; i++) {
        recs[i] = (struct sl_firehose_rec){data, sizeof(data)};
    }
    size_t took = 0;
    size_t calls = 0;
    int r = 0;
    while (calls < 10 && (r = sl_stream_put(f->s, recs, 20, &took, put_cb, f)) == 0 && took == 20) {
        calls++;
        f->puts++;
    }
    f->puts++; /* the 4th, taken in part */
    /* 3 calls of 20 records fit in 64 KiB; the 4th takes the ones that fit */
    assert_int_equal(calls, 3);
    assert_int_equal(r, 0);
    assert_true(took > 0 && took < 20);
    size_t total = 60 + took;
    assert_int_equal(sl_stream_stats(f->s)->throttled, 20 - took);
    /* the refusal delivers what the spool holds without waiting for the interval */
    assert_true(test_run_until(&f->loop, nothing_held, f, 10000));
    assert_int_equal(f->acked, 4);
    assert_int_equal(sl_stream_stats(f->s)->incoming_records, total);
    /* filled again until a call is refused whole: nothing stored, and delivered again */
    calls = 0;
    while (calls < 10 && sl_stream_put(f->s, recs, 20, &took, put_cb, f) == 0) {
        calls++;
        f->puts++;
        total += took;
    }
    assert_true(calls >= 3 && calls < 10);
    assert_int_equal(took, 0);
    assert_true(test_run_until(&f->loop, nothing_held, f, 10000));
    assert_int_equal(sl_stream_stats(f->s)->incoming_records, total);
    assert_int_equal(put(f, recs, 20), 20);
    sl_stream_drain(f->s);
    assert_true(test_run_until(&f->loop, nothing_held, f, 10000));
    struct sl_buf all;
    sl_buf_init(&all);
    (void)read_objects(f->dir, OBJ_DIR, &all);
    assert_int_equal(all.len, (total + 20) * sizeof(data));
    sl_buf_fini(&all);
}

/* What one stream did not deliver, the next on the same spool delivers, with the records'
 * arrival time in the object key (not the restart's). */
static void test_stream_replay_keeps_arrival(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct sl_firehose_rec recs[] = {{"x", 1}, {"y", 1}};
    assert_int_equal(put(f, recs, 2), 2);
    assert_true(test_run_until(&f->loop, acked_all, f, 5000));
    stop(f); /* the interval (300 s) never came */
    struct sl_buf all;
    sl_buf_init(&all);
    assert_int_equal(read_objects(f->dir, OBJ_DIR, &all), 0);
    f->clock.wall += 3 * 3600 * 1000; /* restarted three hours later */
    start(f);
    assert_int_equal(sl_stream_held(f->s), 2);
    /* the interval counts from the arrival: long past, so delivered without drain */
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    assert_int_equal(read_objects(f->dir, OBJ_DIR, &all), 1);
    assert_string_equal(all.data, "xy");
    sl_buf_fini(&all);
}

/* After a clean restart, what was delivered is not delivered again. */
static void test_stream_restart_delivers_once(void **state)
{
    struct fixture *f = *state;
    f->sc.interval_s = 0;
    start(f);
    struct sl_firehose_rec recs[] = {{"1", 1}, {"2", 1}};
    assert_int_equal(put(f, recs, 2), 2);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    stop(f);
    start(f);
    assert_int_equal(sl_stream_held(f->s), 0);
    struct sl_firehose_rec more[] = {{"3", 1}};
    assert_int_equal(put(f, more, 1), 1);
    assert_true(test_run_until(&f->loop, nothing_held, f, 5000));
    struct sl_buf all;
    sl_buf_init(&all);
    assert_int_equal(read_objects(f->dir, OBJ_DIR, &all), 2);
    assert_int_equal(all.len, 3);
    sl_buf_fini(&all);
}

/* The daemon's stats timer fired while the streams were being freed (their spools closing on
 * the loop) and logged a stream whose destination was gone: a stream being freed logs nothing,
 * and the line is written again by a live stream. */
struct late_stats {
    struct sl_stream *s;
    int calls;
};

static void late_stats_cb(uv_timer_t *t)
{
    struct late_stats *ls = t->data;
    sl_stream_log_stats(ls->s, "progress");
    ls->calls++;
}

static size_t log_lines_with(int fd, const char *what)
{
    char text[8192];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    assert_true(n >= 0);
    text[n] = '\0';
    size_t count = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++) {
        count++;
    }
    return count;
}

static void test_stream_freed_logs_nothing(void **state)
{
    struct fixture *f = *state;
    char path[4300];
    (void)snprintf(path, sizeof(path), "%s/log", f->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, fd);
    start(f);
    sl_stream_log_stats(f->s, "progress");
    assert_int_equal(log_lines_with(fd, "IncomingRecords"), 1);
    struct sl_firehose_rec recs[] = {{"a", 1}};
    assert_int_equal(put(f, recs, 1), 1);
    /* due at once: it fires on the loop's next turn, before the stream's handles finish closing */
    uv_timer_t timer;
    struct late_stats ls = {.s = f->s};
    uv_timer_init(&f->loop, &timer);
    timer.data = &ls;
    uv_timer_start(&timer, late_stats_cb, 0, 0);
    stop(f);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    assert_int_equal(ls.calls, 1);
    assert_int_equal(log_lines_with(fd, "IncomingRecords"), 1);
    uv_close((uv_handle_t *)&timer, NULL);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    close(fd);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(test_stream_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(interval_zero),         T(size_flush),
        T(drain_delivers),        T(put_acknowledged_when_durable),
        T(quota_refuses),         T(replay_keeps_arrival),
        T(restart_delivers_once), T(freed_logs_nothing),
    };
#undef T
    return cmocka_run_group_tests_name("stream", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream_dest_sink.c: a delivery stream's SinkDestinationConfiguration (stream_dest_sink.c
 * behind stream_dest.h) on a real loop, with a scripted sink of this file's own in place of
 * Kafka or Redis: each record of an object is one document; the documents a delivery did not
 * write (RETRY or REJECTED) are delivered again, alone and in order, after a backoff, until
 * every one is written, and only then does the object's callback come (0), never from inside
 * the call; the counters count each record once; stop while waiting to retry ends the object
 * with SL_ECANCELED. Waits are test_run_until deadlines on conditions, never sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "helpers.h"
#include "sink.h"
#include "stream_dest.h"

#define MAX_SEEN 64

/* The scripted sink: a document whose body starts with "flaky" fails (RETRY) its first
 * `fails` deliveries, one starting with "bad" is REJECTED its first time; the rest land. It
 * answers on a later loop turn (a zero timer), as a real sink does. */
struct fake_sink {
    uv_timer_t timer;
    int fails;
    int calls;
    int seen_n;
    char seen[MAX_SEEN][16]; /* every document it was given, in order */
    int landed_n;
    char landed[MAX_SEEN][16];
    int tries[MAX_SEEN]; /* per distinct document: how many times it was given */
    struct sl_sink_result res[MAX_SEEN];
    size_t n;
    sl_sink_deliver_cb cb;
    void *arg;
    bool stopped;
};

static struct fake_sink *fake_sink_of(void *ctx)
{
    return *(struct fake_sink **)ctx;
}

static struct fake_sink *the_fake;

static int fake_init(
    void *ctx, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    (void)env;
    (void)destination;
    (void)errbuf;
    (void)errlen;
    *(struct fake_sink **)ctx = the_fake;
    return 0;
}

static void fake_answer(uv_timer_t *t)
{
    struct fake_sink *fs = t->data;
    fs->cb(fs->arg, fs->res, fs->n);
}

static int
fake_deliver(void *ctx, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg)
{
    struct fake_sink *fs = fake_sink_of(ctx);
    fs->calls++;
    for (size_t i = 0; i < n; i++) {
        char body[16];
        (void)snprintf(body, sizeof(body), "%.*s", (int)docs[i].len, docs[i].body);
        int idx = (int)strtol(strchr(body, '-') + 1, NULL, 10);
        assert_true(fs->seen_n < MAX_SEEN && idx < MAX_SEEN);
        (void)snprintf(fs->seen[fs->seen_n++], sizeof(fs->seen[0]), "%s", body);
        int tries = ++fs->tries[idx];
        bool fail = fs->stopped || (strncmp(body, "flaky", 5) == 0 && tries <= fs->fails) ||
                    (strncmp(body, "bad", 3) == 0 && tries == 1);
        if (fail) {
            bool bad = body[0] == 'b' && !fs->stopped;
            fs->res[i] = (struct sl_sink_result){bad ? SL_SINK_REJECTED : SL_SINK_RETRY,
                                                 fs->stopped ? SL_ECANCELED
                                                 : bad       ? SL_EREJECTED
                                                             : SL_EIO,
                                                 "scripted"};
        } else {
            fs->res[i] = (struct sl_sink_result){SL_SINK_DELIVERED, 0, NULL};
            (void)snprintf(fs->landed[fs->landed_n++], sizeof(fs->landed[0]), "%s", body);
        }
    }
    fs->n = n;
    fs->cb = cb;
    fs->arg = arg;
    (void)uv_timer_start(&fs->timer, fake_answer, 0, 0);
    return 0;
}

static int fake_write(void *ctx, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    (void)ctx;
    (void)doc;
    (void)cb;
    (void)arg;
    return SL_EINVAL; /* deliver is used */
}

static void fake_stop(void *ctx)
{
    fake_sink_of(ctx)->stopped = true;
}

static void fake_fini(void *ctx)
{
    (void)ctx;
}

static const struct sl_sink_ops fake_ops = {
    .abi = SL_SINK_ABI,
    .name = "fake",
    .ctx_size = sizeof(struct fake_sink *),
    .max_docs = 1000,
    .keeps_payload = true,
    .init = fake_init,
    .write = fake_write,
    .deliver = fake_deliver,
    .stop = fake_stop,
    .fini = fake_fini,
};

struct fixture {
    uv_loop_t loop;
    struct fake_sink fs;
    struct sl_stream_sink_conf sink;
    struct sl_stream_conf sc;
    struct sl_stream_dest *d;
    int calls;
    int err;
};

static int setup(void **state)
{
    (void)setenv("SLUICE_RETRY_BASE_MS", "5", 1);
    (void)setenv("SLUICE_RETRY_MAX_MS", "20", 1);
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_timer_init(&f->loop, &f->fs.timer), 0);
    f->fs.timer.data = &f->fs;
    the_fake = &f->fs;
    f->sink = (struct sl_stream_sink_conf){.destination = "fake://x", .ops = &fake_ops};
    f->sc = (struct sl_stream_conf){.name = "s", .sink = &f->sink, .size_mb = 1};
    struct sl_stream_dest_env env = {
        .loop = &f->loop, .clock = &sl_clock_system, .source_arn = "arn:aws:firehose:x"};
    char err[256] = "";
    int r = sl_stream_dest_new(&f->sc, &env, &f->d, err, sizeof(err));
    if (r < 0) {
        fail_msg("open: %s", err);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_stream_dest_free(f->d);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void on_done(void *arg, int err)
{
    struct fixture *f = arg;
    f->calls++;
    f->err = err;
}

static bool done(void *arg)
{
    return ((struct fixture *)arg)->calls > 0;
}

static void deliver(struct fixture *f, const char *const *bodies, size_t n)
{
    static struct sl_stream_dest_rec recs[MAX_SEEN];
    for (size_t i = 0; i < n; i++) {
        recs[i] = (struct sl_stream_dest_rec){bodies[i], strlen(bodies[i]), 1000 + (int64_t)i};
    }
    assert_int_equal(sl_stream_dest_deliver(f->d, recs, n, 1000, on_done, f), 0);
    assert_int_equal(f->calls, 0); /* never from inside the call */
}

/* Two documents fail twice, one is refused once: the object is done only when every record is
 * written; each retry carries only what did not land, in order; each record counted once. */
static void test_stream_dest_sink_partial_failures_retried(void **state)
{
    struct fixture *f = *state;
    f->fs.fails = 2;
    static const char *const bodies[] = {"ok-0", "flaky-1", "ok-2", "bad-3", "flaky-4", "ok-5"};
    deliver(f, bodies, 6);
    assert_true(test_run_until(&f->loop, done, f, test_deadline_ms(10000)));
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->err, 0);
    assert_int_equal(f->fs.calls, 3);
    static const char *const seen[] = {"ok-0",    "flaky-1", "ok-2",    "bad-3",
                                       "flaky-4", "ok-5",    "flaky-1", "bad-3",
                                       "flaky-4", "flaky-1", "flaky-4"};
    assert_int_equal(f->fs.seen_n, 11);
    for (int i = 0; i < 11; i++) {
        assert_string_equal(f->fs.seen[i], seen[i]);
    }
    assert_int_equal(f->fs.landed_n, 6); /* each once */
    const struct sl_stream_dest_stats *st = sl_stream_dest_stats(f->d);
    assert_int_equal(st->sink_records, 6);
    assert_int_equal(st->sink_bytes, 4 + 7 + 4 + 5 + 7 + 4);
    assert_int_equal(st->sink_success, 1);
    assert_int_equal(st->failed_attempts, 2);
    assert_int_equal(st->s3_records, 0);
}

/* stop while a retry waits: the object ends with SL_ECANCELED (its records stay with the
 * stream), and no further delivery starts. */
static void test_stream_dest_sink_stop_while_retrying(void **state)
{
    struct fixture *f = *state;
    (void)setenv("SLUICE_RETRY_BASE_MS", "60000", 1); /* the retry would wait a minute */
    (void)setenv("SLUICE_RETRY_MAX_MS", "60000", 1);
    sl_stream_dest_free(f->d);
    struct sl_stream_dest_env env = {
        .loop = &f->loop, .clock = &sl_clock_system, .source_arn = "arn:aws:firehose:x"};
    char err[256] = "";
    assert_int_equal(sl_stream_dest_new(&f->sc, &env, &f->d, err, sizeof(err)), 0);
    f->fs.fails = 100;
    static const char *const bodies[] = {"ok-0", "flaky-1"};
    deliver(f, bodies, 2);
    while (f->fs.calls < 1) {
        (void)uv_run(&f->loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < 3; i++) { /* its answer in, the retry waiting */
        (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(f->calls, 0);
    sl_stream_dest_stop(f->d);
    assert_int_equal(f->calls, 0); /* not from inside stop either */
    assert_true(test_run_until(&f->loop, done, f, test_deadline_ms(10000)));
    assert_int_equal(f->err, SL_ECANCELED);
    assert_int_equal(f->fs.calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_dest_sink_partial_failures_retried, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stream_dest_sink_stop_while_retrying, setup, teardown),
    };
    return cmocka_run_group_tests_name("stream_dest_sink", tests, NULL, NULL);
}

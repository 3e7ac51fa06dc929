/* SPDX-License-Identifier: Apache-2.0 */
/* test_sinks.c: the sink registry and the file, http and sqs sinks. The file sink runs against
 * a temporary directory; the http sink against a small blocking HTTP/1.1 server thread in this
 * file, whose status each test sets; the sqs sink against a real fauxqs (tests/services, which
 * tests/run-all.sh starts) found through SQS_ENDPOINT: without it those tests are skipped, or
 * fail under CI=true. Queues are created and read with small blocking libcurl calls (AWS JSON
 * 1.0). The loop is driven with test_run_until to a condition with a deadline; nothing
 * sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "alloc.h"
#include "buf.h"
#include "helpers.h"
#include "http_peer.h"
#include "httpc.h"
#include "sink.h"

#define DEADLINE_MS 10000
#define MAX_DONE    64

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;
    struct sl_httpc *httpc;
    struct sl_clock_fake clock;
    struct sl_sink_env env;
    char *tmp;
    const struct sl_sink_ops *ops;
    void *ctx;
    /* callbacks */
    int n_started; /* writes that returned 0 */
    int n_done;
    int err[MAX_DONE];
    char detail[MAX_DONE][600];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->httpc), 0);
    sl_clock_fake_init(&f->clock, 1000, 1709251200000); /* 2024-03-01T00:00:00Z */
    f->env.loop = &f->loop;
    f->env.httpc = f->httpc;
    f->env.clock = &f->clock.clock;
    f->env.inst = "test";
    f->env.region = "us-east-1";
    f->tmp = test_tmpdir();
    *state = f;
    return 0;
}

static bool all_done(void *arg)
{
    const struct fx *f = arg;
    return f->n_done >= f->n_started;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->ctx) {
        /* A failed test may leave writes in flight: cancel them and let them finish. */
        if (f->ops->stop) {
            f->ops->stop(f->ctx);
        }
        if (!test_run_until(&f->loop, all_done, f, DEADLINE_MS)) {
            fail_msg("writes still in flight at teardown");
        }
        sl_sink_close(f->ops, f->ctx);
    }
    sl_httpc_free(f->httpc);
    for (int i = 0; i < 100 && uv_run(&f->loop, UV_RUN_NOWAIT); i++) {
    }
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_rmtree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* Makes f's sink for destination; fails the test if init fails. */
static void fx_open(struct fx *f, const char *destination)
{
    f->ops = sl_sink_for(destination);
    assert_non_null(f->ops);
    char errbuf[512] = "";
    assert_int_equal(f->ops->check(destination, errbuf, sizeof(errbuf)), 0);
    int r = sl_sink_open(f->ops, &f->env, destination, NULL, NULL, NULL, &f->ctx, errbuf,
                         sizeof(errbuf));
    if (r != 0) {
        fail_msg("init %s: %d %s", destination, r, errbuf);
    }
}

static void on_done(void *arg, int err, const char *detail)
{
    struct fx *f = arg;
    assert_true(f->n_done < MAX_DONE);
    f->err[f->n_done] = err;
    (void)snprintf(f->detail[f->n_done], sizeof(f->detail[0]), "%s", detail ? detail : "");
    if (err) {
        assert_non_null(detail);
    }
    f->n_done++;
}

/* Starts writing doc; counts it when started. Returns write's result. */
static int fx_start(struct fx *f, const struct sl_sink_doc *doc)
{
    int r = f->ops->write(f->ctx, doc, on_done, f);
    if (r == 0) {
        f->n_started++;
    }
    return r;
}

struct wait_n {
    struct fx *f;
    int n;
};

static bool done_n(void *arg)
{
    const struct wait_n *w = arg;
    return w->f->n_done >= w->n;
}

static void fx_wait(struct fx *f, int n)
{
    struct wait_n w = {f, n};
    assert_true(test_run_until(&f->loop, done_n, &w, DEADLINE_MS));
}

/* Writes one document and waits for its callback; returns its error. */
static int fx_write1(struct fx *f, const char *body, const char *key, int64_t time_ms)
{
    struct sl_sink_doc doc = {.body = body, .len = strlen(body), .key = key, .time_ms = time_ms};
    int before = f->n_done;
    assert_int_equal(fx_start(f, &doc), 0);
    assert_int_equal(f->n_done, before); /* never from inside write */
    fx_wait(f, before + 1);
    return f->err[before];
}

static char *read_all(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return NULL;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        assert_int_equal(sl_buf_append(&b, chunk, n), 0);
    }
    fclose(fp);
    if (ret_len) {
        *ret_len = b.len;
    }
    if (!b.data) {
        return sl_strdup("");
    }
    return sl_buf_steal(&b);
}

static char *path_join(const char *a, const char *b)
{
    struct sl_buf buf;
    sl_buf_init(&buf);
    assert_int_equal(sl_buf_printf(&buf, "%s/%s", a, b), 0);
    return sl_buf_steal(&buf);
}

static char *file_dest(const char *dir)
{
    struct sl_buf buf;
    sl_buf_init(&buf);
    assert_int_equal(sl_buf_printf(&buf, "file://%s", dir), 0);
    return sl_buf_steal(&buf);
}

/* ---- registry ---- */

/* The kafka:// sink exists in a build with Kafka only (meson -Dkafka). */
#if SL_HAVE_KAFKA
#define KAFKA_SINK "kafka"
#else
#define KAFKA_SINK NULL
#endif
#if SL_HAVE_REDIS
#define REDIS_SINK "redis"
#else
#define REDIS_SINK NULL
#endif

static void test_sinks_registry(void **state)
{
    (void)state;
    size_t n = 0;
    const struct sl_sink_ops *const *all = sl_sink_all(&n);
    /* file, sqs, http; kafka and redis when built in */
    assert_int_equal(n, 3 + SL_HAVE_KAFKA + SL_HAVE_REDIS);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(all[i]->abi, SL_SINK_ABI);
        assert_non_null(all[i]->handles);
        assert_non_null(all[i]->check);
        assert_non_null(all[i]->init);
        assert_non_null(all[i]->write);
        assert_non_null(all[i]->fini);
        assert_true(all[i]->ctx_size > 0);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(all[i]->name, all[j]->name);
        }
    }
    static const struct {
        const char *dest;
        const char *sink;
    } cases[] = {
        {"file:///var/lib/sluice/failures", "file"},
        {"FILE:///x", "file"},
        {"http://127.0.0.1:8080/hook", "http"},
        {"https://example.com/a/b?x=1", "http"},
        {"https://hooks.example.com/123/abc", "http"},
        {"kafka://failures", KAFKA_SINK},
        {"kafka://orders.dlq-1_x", KAFKA_SINK},
        {"arn:aws:sqs:us-east-1:123456789012:failures", "sqs"},
        {"arn:aws:sqs:eu-west-1:123456789012:failures.fifo", "sqs"},
        {"https://sqs.us-east-1.amazonaws.com/123456789012/failures", "sqs"},
        {"http://127.0.0.1:9325/000000000000/q1", "sqs"},
        {"kafka://topic", KAFKA_SINK},
        {"redis://127.0.0.1:6379/0/failures", REDIS_SINK},
        {"redis://127.0.0.1:6379/0/list/failures", REDIS_SINK},
        {"rediss://127.0.0.1:6379/0/failures", REDIS_SINK}, /* refused by its check, by name */
        {"s3://bucket/prefix", NULL},
        {"arn:aws:sns:us-east-1:123456789012:topic", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const struct sl_sink_ops *ops = sl_sink_for(cases[i].dest);
        int handlers = 0;
        for (size_t j = 0; j < n; j++) {
            handlers += all[j]->handles(cases[i].dest) ? 1 : 0;
        }
        if (!cases[i].sink) {
            assert_null(ops);
            assert_int_equal(handlers, 0);
        } else {
            assert_non_null(ops);
            assert_string_equal(ops->name, cases[i].sink);
            assert_int_equal(handlers, 1);
        }
    }
    assert_null(sl_sink_for(NULL));
}

/* ---- capabilities: the on-failure plan (sl_sink_plan_for) ---- */

/* Fake sinks, one per capability: the plan depends on what a sink declares, never its name
 * (each fake is named like a real sink that declares otherwise, to prove it). */
static const struct sl_sink_ops fake_sink_per_batch = {
    .abi = SL_SINK_ABI,
    .name = "sqs", /* a fake: keeps the payload although a real sqs sink does not */
    .keeps_payload = true,
};
static const struct sl_sink_ops fake_sink_no_payload = {
    .abi = SL_SINK_ABI,
    .name = "file", /* a fake: drops the payload although a real file sink keeps it */
    .keeps_payload = false,
};
static const struct sl_sink_ops fake_sink_per_record = {
    .abi = SL_SINK_ABI,
    .name = "http", /* a fake: one document per record, which no real http sink declares */
    .one_doc_per_record = true,
    .keeps_payload = true,
};

static void test_sinks_plan_per_batch(void **state)
{
    (void)state;
    struct sl_sink_plan plan = sl_sink_plan_for(&fake_sink_per_batch, 7);
    assert_int_equal(plan.n_records, 7); /* one document for the whole batch */
    assert_false(plan.per_record);
    assert_true(plan.with_payload);
    plan = sl_sink_plan_for(&fake_sink_per_batch, 1);
    assert_int_equal(plan.n_records, 1);
    assert_false(plan.per_record);
}

static void test_sinks_plan_no_payload(void **state)
{
    (void)state;
    struct sl_sink_plan plan = sl_sink_plan_for(&fake_sink_no_payload, 5);
    assert_int_equal(plan.n_records, 5);
    assert_false(plan.per_record);
    assert_false(plan.with_payload);
}

static void test_sinks_plan_per_record(void **state)
{
    (void)state;
    struct sl_sink_plan plan = sl_sink_plan_for(&fake_sink_per_record, 5);
    assert_int_equal(plan.n_records, 1); /* one now, the others one by one */
    assert_true(plan.per_record);
    assert_true(plan.with_payload);
    plan = sl_sink_plan_for(&fake_sink_per_record, 1);
    assert_int_equal(plan.n_records, 1);
    assert_true(plan.per_record);
}

/* The real sinks declare what the core used to decide from their names: SQS drops the payload,
 * kafka:// writes one document per record on the source's cluster, file and http keep it all. */
static void test_sinks_plan_real_sinks(void **state)
{
    (void)state;
    static const struct {
        const char *dest;
        size_t n_records; /* of 4 */
        bool per_record;
        bool with_payload;
        bool uses_source_cluster;
    } cases[] = {
        {"file:///var/lib/sluice/failures", 4, false, true, false},
        {"http://127.0.0.1:8080/hook", 4, false, true, false},
        {"arn:aws:sqs:us-east-1:123456789012:failures", 4, false, false, false},
        {"kafka://failures", 1, true, true, true},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const struct sl_sink_ops *ops = sl_sink_for(cases[i].dest);
        if (!ops) {
            assert_string_equal(cases[i].dest, "kafka://failures"); /* left out of this build */
            assert_int_equal(SL_HAVE_KAFKA, 0);
            continue;
        }
        struct sl_sink_plan plan = sl_sink_plan_for(ops, 4);
        assert_int_equal(plan.n_records, cases[i].n_records);
        assert_int_equal(plan.per_record, cases[i].per_record);
        assert_int_equal(plan.with_payload, cases[i].with_payload);
        assert_int_equal(ops->uses_source_cluster, cases[i].uses_source_cluster);
    }
}

/* ---- delivering a batch of documents (sl_sink_deliver) ---- */

/* A fake sink that writes one document at a time: it keeps each write's callback for the test
 * to answer, and refuses to start the writes whose body is "refuse". */
#define FAKE_WRITES_MAX 8
struct fake_writes {
    int n;
    sl_sink_cb cb[FAKE_WRITES_MAX];
    void *arg[FAKE_WRITES_MAX];
    int delivers; /* calls of fake_sink_own's deliver */
};

static int fake_write(void *ctx, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct fake_writes *w = ctx;
    if (strcmp(doc->body, "refuse") == 0) {
        return SL_EIO;
    }
    assert_true(w->n < FAKE_WRITES_MAX);
    w->cb[w->n] = cb;
    w->arg[w->n] = arg;
    w->n++;
    return 0;
}

static int
fake_deliver(void *ctx, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg)
{
    (void)docs;
    (void)n;
    (void)cb;
    (void)arg;
    struct fake_writes *w = ctx;
    w->delivers++;
    return SL_EAGAIN;
}

static const struct sl_sink_ops fake_sink_one_by_one = {
    .abi = SL_SINK_ABI,
    .name = "fake_one_by_one",
    .write = fake_write,
};
static const struct sl_sink_ops fake_sink_own = {
    .abi = SL_SINK_ABI,
    .name = "fake_own",
    .write = fake_write,
    .deliver = fake_deliver,
};

struct delivered {
    int calls;
    size_t n;
    struct sl_sink_result results[FAKE_WRITES_MAX];
    char detail[FAKE_WRITES_MAX][256];
};

static void on_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct delivered *d = arg;
    d->calls++;
    d->n = n;
    for (size_t i = 0; i < n; i++) {
        d->results[i] = results[i];
        (void)snprintf(d->detail[i], sizeof(d->detail[i]), "%s",
                       results[i].detail ? results[i].detail : "");
    }
}

/* A delivery of up to 32 documents: struct delivered, larger. */
struct delivered_big {
    int calls;
    size_t n;
    struct sl_sink_result results[32];
    char detail[32][256];
};

static void on_delivered_big(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct delivered_big *d = arg;
    assert_true(n <= 32);
    d->calls++;
    d->n = n;
    for (size_t i = 0; i < n; i++) {
        d->results[i] = results[i];
        (void)snprintf(d->detail[i], sizeof(d->detail[i]), "%s",
                       results[i].detail ? results[i].detail : "");
    }
}

static bool delivered_once(void *arg)
{
    return *(const int *)arg > 0; /* calls, the first member */
}

static void fake_docs(struct sl_sink_doc *docs, const char *const *bodies, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        docs[i] = (struct sl_sink_doc){.body = bodies[i], .len = strlen(bodies[i])};
    }
}

/* One result per document, in the documents' order, once every write has answered. */
static void test_sinks_deliver_outcomes(void **state)
{
    (void)state;
    struct fake_writes w = {0};
    struct delivered d = {0};
    static const char *const bodies[] = {"a", "b", "c"};
    struct sl_sink_doc docs[3];
    fake_docs(docs, bodies, 3);
    assert_int_equal(sl_sink_deliver(&fake_sink_one_by_one, &w, docs, 3, on_delivered, &d), 0);
    assert_int_equal(w.n, 3); /* all in flight at once */
    assert_int_equal(d.calls, 0);
    w.cb[1](w.arg[1], 0, NULL);
    w.cb[2](w.arg[2], SL_EREJECTED, "413 too large");
    assert_int_equal(d.calls, 0);
    w.cb[0](w.arg[0], SL_EREMOTE, "503");
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.results[0].outcome, SL_SINK_RETRY);
    assert_int_equal(d.results[0].err, SL_EREMOTE);
    assert_string_equal(d.detail[0], "503");
    assert_int_equal(d.results[1].outcome, SL_SINK_DELIVERED);
    assert_int_equal(d.results[1].err, 0);
    assert_null(d.results[1].detail);
    assert_int_equal(d.results[2].outcome, SL_SINK_REJECTED);
    assert_string_equal(d.detail[2], "413 too large");
}

/* A write that cannot start is a document not delivered; when none starts, deliver fails and
 * the callback never runs. */
static void test_sinks_deliver_start_fails(void **state)
{
    (void)state;
    struct fake_writes w = {0};
    struct delivered d = {0};
    static const char *const bodies[] = {"a", "refuse", "c"};
    struct sl_sink_doc docs[3];
    fake_docs(docs, bodies, 3);
    assert_int_equal(sl_sink_deliver(&fake_sink_one_by_one, &w, docs, 3, on_delivered, &d), 0);
    assert_int_equal(w.n, 2);
    w.cb[0](w.arg[0], 0, NULL);
    w.cb[1](w.arg[1], 0, NULL);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.results[0].outcome, SL_SINK_DELIVERED);
    assert_int_equal(d.results[1].outcome, SL_SINK_RETRY);
    assert_int_equal(d.results[1].err, SL_EIO);
    assert_string_equal(d.detail[1], "cannot start the write");
    assert_int_equal(d.results[2].outcome, SL_SINK_DELIVERED);

    static const char *const refused[] = {"refuse", "refuse"};
    fake_docs(docs, refused, 2);
    struct delivered d2 = {0};
    assert_int_equal(sl_sink_deliver(&fake_sink_one_by_one, &w, docs, 2, on_delivered, &d2),
                     SL_EIO);
    assert_int_equal(d2.calls, 0);
}

/* A sink with its own deliver gets the whole batch; write is not used. */
static void test_sinks_deliver_own(void **state)
{
    (void)state;
    struct fake_writes w = {0};
    struct delivered d = {0};
    static const char *const bodies[] = {"a", "b"};
    struct sl_sink_doc docs[2];
    fake_docs(docs, bodies, 2);
    assert_int_equal(sl_sink_deliver(&fake_sink_own, &w, docs, 2, on_delivered, &d), SL_EAGAIN);
    assert_int_equal(w.delivers, 1);
    assert_int_equal(w.n, 0);
    assert_int_equal(d.calls, 0);
}

/* ---- capabilities: deliveries cut to max_docs and max_bytes ---- */

/* A fake sink with its own deliver and small limits: it keeps each call for the test to
 * answer. */
#define FAKE_CALLS_MAX 8
struct fake_calls {
    int n;
    size_t lo[FAKE_CALLS_MAX]; /* the call's first document, as an index into the batch */
    size_t count[FAKE_CALLS_MAX];
    sl_sink_deliver_cb cb[FAKE_CALLS_MAX];
    void *arg[FAKE_CALLS_MAX];
    const struct sl_sink_doc *base;
};

static int fake_deliver_keep(
    void *ctx, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg)
{
    struct fake_calls *c = ctx;
    if (strcmp(docs[0].body, "refuse") == 0) {
        return SL_EREJECTED;
    }
    assert_true(c->n < FAKE_CALLS_MAX);
    c->lo[c->n] = (size_t)(docs - c->base);
    c->count[c->n] = n;
    c->cb[c->n] = cb;
    c->arg[c->n] = arg;
    c->n++;
    return 0;
}

static const struct sl_sink_ops fake_sink_limited = {
    .abi = SL_SINK_ABI,
    .name = "fake_limited",
    .write = fake_write,
    .deliver = fake_deliver_keep,
    .max_docs = 3,
    .max_bytes = 10,
};

/* How many documents the next call takes: max_docs, then max_bytes; a document over max_bytes
 * alone. */
static void test_sinks_chunk(void **state)
{
    (void)state;
    static const char *const bodies[] = {"aaaa", "bbbb", "cc", "d", "0123456789abc", "e"};
    struct sl_sink_doc docs[6];
    fake_docs(docs, bodies, 6);
    assert_int_equal(sl_sink_chunk(&fake_sink_limited, docs, 6), 3);     /* 4+4+2 = 10 */
    assert_int_equal(sl_sink_chunk(&fake_sink_limited, docs + 1, 5), 3); /* 4+2+1, +13 > 10 */
    assert_int_equal(sl_sink_chunk(&fake_sink_limited, docs + 3, 3), 1); /* 1, +13 > 10 */
    assert_int_equal(sl_sink_chunk(&fake_sink_limited, docs + 4, 2), 1); /* 13 alone */
    assert_int_equal(sl_sink_chunk(&fake_sink_limited, docs + 5, 1), 1);
    static const char *const small[] = {"a", "b", "c", "d", "e"};
    fake_docs(docs, small, 5);
    assert_int_equal(sl_sink_chunk(&fake_sink_limited, docs, 5), 3); /* max_docs */
    assert_int_equal(sl_sink_chunk(&fake_sink_own, docs, 5), 5);     /* no limits */
}

/* A delivery larger than the sink's capabilities goes out as several calls, all in flight at
 * once and in order; the caller gets one callback with one result per document in its own
 * order, whatever order the calls answer in. A call that cannot start gives its documents its
 * error; the others go on. */
static void test_sinks_deliver_chunks(void **state)
{
    (void)state;
    struct fake_calls c = {0};
    struct delivered d = {0};
    static const char *const bodies[] = {"a", "b", "c", "d", "e", "f", "g"};
    struct sl_sink_doc docs[7];
    fake_docs(docs, bodies, 7);
    c.base = docs;
    assert_int_equal(sl_sink_deliver(&fake_sink_limited, &c, docs, 7, on_delivered, &d), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(c.lo[0], 0);
    assert_int_equal(c.count[0], 3);
    assert_int_equal(c.lo[1], 3);
    assert_int_equal(c.count[1], 3);
    assert_int_equal(c.lo[2], 6);
    assert_int_equal(c.count[2], 1);
    const struct sl_sink_result ok = {SL_SINK_DELIVERED, 0, NULL};
    const struct sl_sink_result rej = {SL_SINK_REJECTED, SL_EREJECTED, "too big"};
    const struct sl_sink_result re = {SL_SINK_RETRY, SL_ETHROTTLED, "slow down"};
    struct sl_sink_result second[3] = {ok, rej, ok};
    c.cb[1](c.arg[1], second, 3);
    struct sl_sink_result third[1] = {re};
    c.cb[2](c.arg[2], third, 1);
    assert_int_equal(d.calls, 0);
    struct sl_sink_result first[3] = {ok, ok, ok};
    c.cb[0](c.arg[0], first, 3);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.n, 7);
    for (size_t i = 0; i < 7; i++) {
        enum sl_sink_outcome want = i == 4   ? SL_SINK_REJECTED
                                    : i == 6 ? SL_SINK_RETRY
                                             : SL_SINK_DELIVERED;
        assert_int_equal(d.results[i].outcome, want);
    }
    assert_string_equal(d.detail[4], "too big");
    assert_int_equal(d.results[6].err, SL_ETHROTTLED);
    assert_string_equal(d.detail[6], "slow down");

    /* The second call cannot start: its documents are not delivered, with its error. */
    static const char *const refused[] = {"a", "b", "c", "refuse", "e"};
    fake_docs(docs, refused, 5);
    struct fake_calls c2 = {.base = docs};
    struct delivered d2 = {0};
    assert_int_equal(sl_sink_deliver(&fake_sink_limited, &c2, docs, 5, on_delivered, &d2), 0);
    assert_int_equal(c2.n, 1);
    struct sl_sink_result three[3] = {ok, ok, ok};
    c2.cb[0](c2.arg[0], three, 3);
    assert_int_equal(d2.calls, 1);
    assert_int_equal(d2.results[2].outcome, SL_SINK_DELIVERED);
    assert_int_equal(d2.results[3].outcome, SL_SINK_REJECTED);
    assert_int_equal(d2.results[4].outcome, SL_SINK_REJECTED);
    assert_string_equal(d2.detail[3], "cannot start the delivery");

    /* No call starts: an error, and no callback. */
    static const char *const none[] = {"refuse", "x", "y", "refuse"};
    fake_docs(docs, none, 4);
    struct fake_calls c3 = {.base = docs};
    struct delivered d3 = {0};
    assert_int_equal(sl_sink_deliver(&fake_sink_limited, &c3, docs, 4, on_delivered, &d3),
                     SL_EREJECTED);
    assert_int_equal(d3.calls, 0);
}

/* The core opens a sink with its option table applied: defaults without options, the value
 * given, and an error naming the key for a value out of range or an unknown key. */
static void test_sinks_open_options(void **state)
{
    struct fx *f = *state;
    const struct sl_sink_ops *ops = &sl_sink_http;
    const struct sl_opt *timeout = NULL;
    for (const struct sl_opt *o = ops->opts; o && o->name; o++) {
        if (strcmp(o->name, "timeout") == 0) {
            timeout = o;
        }
    }
    assert_non_null(timeout);
    char errbuf[512] = "";
    void *ctx = NULL;
    assert_int_equal(
        sl_sink_open(ops, &f->env, "http://127.0.0.1:9/x", NULL, NULL, NULL, &ctx, errbuf, 512), 0);
    assert_int_equal(*(int64_t *)((char *)ctx + timeout->off), 30000);
    sl_sink_close(ops, ctx);
    cJSON *o = cJSON_Parse("{\"timeout\":\"2500ms\"}");
    ctx = NULL;
    assert_int_equal(sl_sink_open(ops, &f->env, "http://127.0.0.1:9/x", o, "f.json", "$.sink", &ctx,
                                  errbuf, 512),
                     0);
    assert_int_equal(*(int64_t *)((char *)ctx + timeout->off), 2500);
    sl_sink_close(ops, ctx);
    cJSON_Delete(o);
    static const char *const bad[][2] = {
        {"{\"timeout\":\"1ms\"}", "$.sink.timeout"},
        {"{\"nope\":1}", "$.sink.nope"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        o = cJSON_Parse(bad[i][0]);
        ctx = NULL;
        errbuf[0] = '\0';
        assert_int_equal(sl_sink_open(ops, &f->env, "http://127.0.0.1:9/x", o, "f.json", "$.sink",
                                      &ctx, errbuf, 512),
                         SL_ECONFIG);
        assert_null(ctx);
        if (!strstr(errbuf, bad[i][1]) || !strstr(errbuf, "f.json")) {
            fail_msg("error '%s' does not name f.json and %s", errbuf, bad[i][1]);
        }
        cJSON_Delete(o);
    }
    /* Every sink's table: terminated, no key twice. */
    size_t n = 0;
    const struct sl_sink_ops *const *all = sl_sink_all(&n);
    for (size_t i = 0; i < n; i++) {
        for (const struct sl_opt *a = all[i]->opts; a && a->name; a++) {
            for (const struct sl_opt *b = all[i]->opts; b != a; b++) {
                assert_string_not_equal(a->name, b->name);
            }
        }
    }
}

static void test_sinks_check_errors(void **state)
{
    (void)state;
    char errbuf[512];
    static const char *const bad_file[] = {
        "file://relative/dir", "file:relative", "file://host/dir",
        "http://x/y",          "file:///a%zz",  "file:///a?x=1",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad_file); i++) {
        errbuf[0] = '\0';
        assert_int_equal(sl_sink_file.check(bad_file[i], errbuf, sizeof(errbuf)), SL_ECONFIG);
        /* The value is shown, its query redacted (it may hold a token). */
        const char *q = strchr(bad_file[i], '?');
        assert_non_null(q ? strstr(errbuf, "file:///a?***") : strstr(errbuf, bad_file[i]));
        assert_true(!q || !strstr(errbuf, q));
    }
    assert_int_equal(sl_sink_file.check("file:///tmp/x%20y/", errbuf, sizeof(errbuf)), 0);
    assert_int_equal(sl_sink_http.check("http://", errbuf, sizeof(errbuf)), SL_ECONFIG);
    assert_int_equal(sl_sink_http.check("ftp://x/y", errbuf, sizeof(errbuf)), SL_ECONFIG);
    assert_int_equal(sl_sink_http.check("https://example.com:8443/x", errbuf, sizeof(errbuf)), 0);
    static const char *const bad_sqs[] = {
        "arn:aws:sqs:us-east-1:12345:q",           /* account */
        "arn:aws:sqs:us-east-1:123456789012:",     /* no name */
        "arn:aws:sqs:us-east-1:123456789012:a b",  /* bad name */
        "arn:aws:sqs::123456789012:q",             /* no region */
        "arn:aws:sqs:us-east-1:123456789012:q:x",  /* extra field */
        "https://sqs.us-east-1.amazonaws.com/1/q", /* account */
        "file:///x",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad_sqs); i++) {
        errbuf[0] = '\0';
        assert_int_equal(sl_sink_sqs.check(bad_sqs[i], errbuf, sizeof(errbuf)), SL_ECONFIG);
        assert_non_null(strstr(errbuf, "arn:aws:sqs:REGION:ACCOUNT:NAME"));
    }
}

/* ---- file sink ---- */

static void test_sinks_file_lines(void **state)
{
    struct fx *f = *state;
    char *dir = path_join(f->tmp, "out/nested");
    char *dest = file_dest(dir);
    fx_open(f, dest);
    const char *d1 = "{\"a\":1}";
    const char *d2 = "{\"b\":\"two\"}";
    struct sl_sink_doc doc1 = {
        .body = d1, .len = strlen(d1), .key = NULL, .time_ms = 1709251200123};
    struct sl_sink_doc doc2 = {
        .body = d2, .len = strlen(d2), .key = NULL, .time_ms = 1709251300000};
    assert_int_equal(fx_start(f, &doc1), 0);
    assert_int_equal(fx_start(f, &doc2), 0);
    assert_int_equal(f->n_done, 0);
    char *path = path_join(dir, "2024-03-01.ndjson");
    /* Right after the first callback its line is in the file. */
    fx_wait(f, 1);
    assert_int_equal(f->err[0], 0);
    char *got = read_all(path, NULL);
    assert_non_null(got);
    assert_true(strncmp(got, "{\"a\":1}\n", 8) == 0);
    sl_free(got);
    fx_wait(f, 2);
    assert_int_equal(f->err[1], 0);
    got = read_all(path, NULL);
    assert_string_equal(got, "{\"a\":1}\n{\"b\":\"two\"}\n");
    sl_free(got);
    /* The directory was created private. */
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A document that is not one line is refused; so is an empty one. */
    struct sl_sink_doc bad = {.body = "{\n}", .len = 3, .key = NULL, .time_ms = 0};
    assert_int_equal(fx_start(f, &bad), SL_EINVAL);
    struct sl_sink_doc empty = {.body = "", .len = 0, .key = NULL, .time_ms = 0};
    assert_int_equal(fx_start(f, &empty), SL_EINVAL);
    /* time_ms 0: the sink's wall clock picks the day. */
    assert_int_equal(fx_write1(f, "{\"c\":3}", NULL, 0), 0);
    got = read_all(path, NULL);
    assert_string_equal(got, "{\"a\":1}\n{\"b\":\"two\"}\n{\"c\":3}\n");
    sl_free(got);
    sl_free(path);
    sl_free(dest);
    sl_free(dir);
}

#define N_CONC   40
#define CONC_LEN (100 * 1024)

static void test_sinks_file_concurrent(void **state)
{
    struct fx *f = *state;
    char *dest = file_dest(f->tmp);
    fx_open(f, dest);
    char *bodies[N_CONC];
    for (int i = 0; i < N_CONC; i++) {
        bodies[i] = sl_malloc(CONC_LEN);
        assert_non_null(bodies[i]);
        memset(bodies[i], 'A' + i % 26, CONC_LEN);
        struct sl_sink_doc doc = {
            .body = bodies[i], .len = CONC_LEN, .key = NULL, .time_ms = 1709251200000 + i};
        assert_int_equal(fx_start(f, &doc), 0);
    }
    fx_wait(f, N_CONC);
    for (int i = 0; i < N_CONC; i++) {
        assert_int_equal(f->err[i], 0);
    }
    char *path = path_join(f->tmp, "2024-03-01.ndjson");
    size_t len = 0;
    char *got = read_all(path, &len);
    assert_int_equal(len, (size_t)N_CONC * (CONC_LEN + 1));
    /* Every line whole and in the order written. */
    for (int i = 0; i < N_CONC; i++) {
        const char *line = got + (size_t)i * (CONC_LEN + 1);
        for (size_t k = 0; k < CONC_LEN; k++) {
            if (line[k] != 'A' + i % 26) {
                fail_msg("line %d byte %zu is %c", i, k, line[k]);
            }
        }
        assert_int_equal(line[CONC_LEN], '\n');
    }
    sl_free(got);
    sl_free(path);
    for (int i = 0; i < N_CONC; i++) {
        sl_free(bodies[i]);
    }
    sl_free(dest);
}

static void test_sinks_file_torn_line(void **state)
{
    struct fx *f = *state;
    char *dest = file_dest(f->tmp);
    fx_open(f, dest);
    char *path = path_join(f->tmp, "2024-03-01.ndjson");
    test_write_file(path, "w", "{\"ok\":0}\n{\"torn\":", 17);
    assert_int_equal(fx_write1(f, "{\"next\":1}", NULL, 1709251200000), 0);
    assert_int_equal(fx_write1(f, "{\"next\":2}", NULL, 1709251200000), 0);
    char *got = read_all(path, NULL);
    assert_string_equal(got, "{\"ok\":0}\n{\"torn\":\n{\"next\":1}\n{\"next\":2}\n");
    sl_free(got);
    sl_free(path);
    sl_free(dest);
}

static void test_sinks_file_day_rollover(void **state)
{
    struct fx *f = *state;
    char *dest = file_dest(f->tmp);
    fx_open(f, dest);
    /* 2024-02-29T23:59:59.999Z and 2024-03-01T00:00:00.000Z, in flight together. */
    struct sl_sink_doc d1 = {.body = "{\"d\":1}", .len = 7, .key = NULL, .time_ms = 1709251199999};
    struct sl_sink_doc d2 = {.body = "{\"d\":2}", .len = 7, .key = NULL, .time_ms = 1709251200000};
    assert_int_equal(fx_start(f, &d1), 0);
    assert_int_equal(fx_start(f, &d2), 0);
    fx_wait(f, 2);
    assert_int_equal(f->err[0], 0);
    assert_int_equal(f->err[1], 0);
    char *p1 = path_join(f->tmp, "2024-02-29.ndjson");
    char *p2 = path_join(f->tmp, "2024-03-01.ndjson");
    char *g1 = read_all(p1, NULL);
    char *g2 = read_all(p2, NULL);
    assert_string_equal(g1, "{\"d\":1}\n");
    assert_string_equal(g2, "{\"d\":2}\n");
    sl_free(g1);
    sl_free(g2);
    sl_free(p1);
    sl_free(p2);
    sl_free(dest);
}

static void test_sinks_file_unwritable(void **state)
{
    struct fx *f = *state;
    char *plain = path_join(f->tmp, "plain");
    test_write_file(plain, "w", "x", 1);
    char *dir = path_join(plain, "sub");
    char *dest = file_dest(dir);
    fx_open(f, dest);
    assert_int_equal(fx_write1(f, "{\"x\":1}", NULL, 1709251200000), SL_EIO);
    assert_non_null(strstr(f->detail[0], plain));
    /* Still failing on a retry, never dropping: the caller keeps the document. */
    assert_int_equal(fx_write1(f, "{\"x\":1}", NULL, 1709251200000), SL_EIO);
    sl_free(dest);
    sl_free(dir);
    sl_free(plain);
}

static void test_sinks_file_stop(void **state)
{
    struct fx *f = *state;
    char *dest = file_dest(f->tmp);
    fx_open(f, dest);
    struct sl_sink_doc doc = {.body = "{\"s\":1}", .len = 7, .key = NULL, .time_ms = 1709251200000};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fx_start(f, &doc), 0);
    }
    f->ops->stop(f->ctx);
    assert_int_equal(fx_start(f, &doc), SL_ECANCELED);
    fx_wait(f, 5);
    for (int i = 0; i < 5; i++) {
        assert_true(f->err[i] == 0 || f->err[i] == SL_ECANCELED);
    }
    assert_int_equal(f->err[4], SL_ECANCELED); /* never reached the thread pool */
    sl_free(dest);
}

/* ---- http sink ---- */

struct srv {
    struct http_peer http;
    pthread_mutex_t mu;
    int status;               /* answer to every request */
    const char *resp_body;    /* or NULL: "{}" */
    const char *resp_headers; /* extra "Name: value\r\n" lines, or NULL */
    int n_reqs;
    char head[8192]; /* the last request's header block */
    char content_type[128];
    struct sl_buf body; /* the last request's body */
};

/* Records the request and answers it with the status, body and headers set. */
static void
srv_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct srv *s = arg;
    pthread_mutex_lock(&s->mu);
    s->n_reqs++;
    s->content_type[0] = '\0';
    const char *ct = http_peer_header(head, head_len, "Content-Type");
    if (ct) {
        size_t n = strcspn(ct, "\r");
        (void)snprintf(s->content_type, sizeof(s->content_type), "%.*s", (int)n, ct);
    }
    (void)snprintf(s->head, sizeof(s->head), "%.*s", (int)head_len, head);
    sl_buf_truncate(&s->body, 0);
    if (sl_buf_append(&s->body, body, body_len) < 0) {
        sl_buf_truncate(&s->body, 0); /* SL_ALLOC_FAIL_AT hit the server: the test will say */
    }
    int status = s->status;
    const char *rb = s->resp_body ? s->resp_body : "{}";
    const char *rh = s->resp_headers ? s->resp_headers : "";
    pthread_mutex_unlock(&s->mu);
    char resp[2048];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n%s",
                     status, strlen(rb), rh, rb);
    (void)http_peer_send_all(fd, resp, (size_t)n);
}

/* Returns a running server (owned: srv_stop). On the heap, so a test that fails while the
 * server thread runs leaves it valid memory. */
static struct srv *srv_start(void)
{
    struct srv *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    sl_buf_init(&s->body);
    s->status = 200;
    http_peer_start(&s->http, srv_answer, s);
    return s;
}

static void srv_stop(struct srv *s)
{
    http_peer_stop(&s->http);
    pthread_mutex_destroy(&s->mu);
    sl_buf_fini(&s->body);
    free(s);
}

static void srv_set_status(struct srv *s, int status)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    pthread_mutex_unlock(&s->mu);
}

static void test_sinks_http(void **state)
{
    struct fx *f = *state;
    struct srv *s = srv_start();
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/failures", s->http.port);
    fx_open(f, url);
    assert_string_equal(f->ops->name, "http");
    const char *doc = "{\"requestContext\":{\"condition\":\"RetryAttemptsExhausted\"}}";
    assert_int_equal(fx_write1(f, doc, NULL, 0), 0);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->n_reqs, 1);
    assert_string_equal(s->content_type, "application/json");
    assert_string_equal(s->body.data, doc);
    pthread_mutex_unlock(&s->mu);

    static const struct {
        int status;
        int err;
    } cases[] = {
        {204, 0},
        {500, SL_EREMOTE},
        {502, SL_EREMOTE},
        {503, SL_ETHROTTLED},
        {429, SL_ETHROTTLED},
        {400, SL_EREJECTED},
        {413, SL_EREJECTED},
        {302, SL_EPROTO},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        srv_set_status(s, cases[i].status);
        int before = f->n_done;
        assert_int_equal(fx_write1(f, doc, NULL, 0), cases[i].err);
        if (cases[i].err) {
            char want[32];
            (void)snprintf(want, sizeof(want), "status %d", cases[i].status);
            assert_string_equal(f->detail[before], want);
        }
    }
    srv_stop(s);
}

static void test_sinks_http_refused(void **state)
{
    struct fx *f = *state;
    int port = 0;
    int fd = http_peer_listen(&port);
    close(fd); /* nothing listens there now */
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    fx_open(f, url);
    assert_int_equal(fx_write1(f, "{}", NULL, 0), SL_EIO);
    assert_true(strlen(f->detail[0]) > 0);
}

static void test_sinks_http_stop(void **state)
{
    struct fx *f = *state;
    struct srv *s = srv_start();
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->http.port);
    fx_open(f, url);
    struct sl_sink_doc doc = {.body = "{}", .len = 2, .key = NULL, .time_ms = 0};
    assert_int_equal(fx_start(f, &doc), 0);
    f->ops->stop(f->ctx);
    fx_wait(f, 1);
    assert_int_equal(f->err[0], SL_ECANCELED);
    assert_int_equal(fx_start(f, &doc), SL_ECANCELED);
    srv_stop(s);
}

/* ---- sqs sink ---- */

/* A suffix that makes queue names unique to this run (fauxqs keeps queues while it runs, and
 * PIDs are reused). */
static const char *sqs_run_id(void)
{
    static char id[64];
    if (!id[0]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        (void)snprintf(id, sizeof(id), "%ld-%lx%lx", (long)getpid(), (unsigned long)ts.tv_sec,
                       (unsigned long)ts.tv_nsec);
    }
    return id;
}

static void sqs_delete(const char *queue_url)
{
    char body[512];
    (void)snprintf(body, sizeof(body), "{\"QueueUrl\":\"%s\"}", queue_url);
    cJSON_Delete(sqs_peer_call("DeleteQueue", body, 200));
}

/* Creates a queue named after the test and this run; returns its URL (owned). */
static char *sqs_create(const char *base, bool fifo)
{
    char body[512];
    (void)snprintf(body, sizeof(body), "{\"QueueName\":\"sluice-%s-%s%s\"%s}", base, sqs_run_id(),
                   fifo ? ".fifo" : "", fifo ? ",\"Attributes\":{\"FifoQueue\":\"true\"}" : "");
    cJSON *j = sqs_peer_call("CreateQueue", body, 200);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "QueueUrl");
    assert_true(cJSON_IsString(u));
    char *url = sl_strdup(u->valuestring);
    cJSON_Delete(j);
    assert_non_null(url);
    return url;
}

/* Receives and deletes every message of queue_url, in order; returns how many, bodies into
 * ret_bodies (owned). */
static int sqs_drain(const char *queue_url, char **ret_bodies, int max)
{
    int n = 0;
    for (;;) {
        char body[512];
        (void)snprintf(body, sizeof(body),
                       "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":10,\"WaitTimeSeconds\":0,"
                       "\"VisibilityTimeout\":30}",
                       queue_url);
        cJSON *j = sqs_peer_call("ReceiveMessage", body, 200);
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "Messages");
        int got = cJSON_GetArraySize(msgs);
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(m, "Body");
            const cJSON *rh = cJSON_GetObjectItemCaseSensitive(m, "ReceiptHandle");
            assert_true(cJSON_IsString(b) && cJSON_IsString(rh));
            assert_true(n < max);
            ret_bodies[n] = sl_strdup(b->valuestring);
            assert_non_null(ret_bodies[n++]);
            struct sl_buf del;
            sl_buf_init(&del);
            assert_int_equal(sl_buf_printf(&del, "{\"QueueUrl\":\"%s\",\"ReceiptHandle\":\"%s\"}",
                                           queue_url, rh->valuestring),
                             0);
            cJSON_Delete(sqs_peer_call("DeleteMessage", del.data, 200));
            sl_buf_fini(&del);
        }
        cJSON_Delete(j);
        if (got == 0) {
            return n;
        }
    }
}

static void sqs_free_bodies(char **bodies, int n)
{
    for (int i = 0; i < n; i++) {
        sl_free(bodies[i]);
    }
}

/* The ARN of a fauxqs queue URL http://HOST/000000000000/NAME. */
static void sqs_arn(const char *queue_url, char *out, size_t len)
{
    const char *name = strrchr(queue_url, '/') + 1;
    (void)snprintf(out, len, "arn:aws:sqs:us-east-1:000000000000:%s", name);
}

static void sqs_env_unsigned(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static void sqs_env_signed(void)
{
    sqs_env_unsigned();
    setenv("AWS_ACCESS_KEY_ID", "test", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
    setenv("AWS_SESSION_TOKEN", "token", 1);
}

/* Standard queue named by URL, unsigned requests. */
static void test_sinks_sqs_url(void **state)
{
    struct fx *f = *state;
    (void)sqs_peer_endpoint();
    sqs_env_unsigned();
    char *url = sqs_create("url", false);
    fx_open(f, url);
    assert_string_equal(f->ops->name, "sqs");
    const char *d1 = "{\"requestContext\":{\"condition\":\"RetryAttemptsExhausted\"},\"n\":1}";
    const char *d2 = "{\"s\":\"quote \\\" backslash \\\\ tab \\t \xc3\xa9\",\"n\":2}";
    struct sl_sink_doc doc1 = {.body = d1, .len = strlen(d1), .key = NULL, .time_ms = 0};
    struct sl_sink_doc doc2 = {.body = d2, .len = strlen(d2), .key = NULL, .time_ms = 0};
    assert_int_equal(fx_start(f, &doc1), 0);
    assert_int_equal(fx_start(f, &doc2), 0);
    fx_wait(f, 2);
    assert_int_equal(f->err[0], 0);
    assert_int_equal(f->err[1], 0);
    char *bodies[8];
    int n = sqs_drain(url, bodies, 8);
    assert_int_equal(n, 2);
    bool seen1 = false, seen2 = false;
    for (int i = 0; i < n; i++) {
        seen1 |= strcmp(bodies[i], d1) == 0;
        seen2 |= strcmp(bodies[i], d2) == 0;
    }
    assert_true(seen1 && seen2);
    sqs_free_bodies(bodies, n);
    sqs_delete(url);
    sl_free(url);
}

/* Standard queue named by ARN: signed, endpoint from AWS_ENDPOINT_URL_SQS, QueueUrl resolved
 * once while both writes wait for it. */
static void test_sinks_sqs_arn(void **state)
{
    struct fx *f = *state;
    setenv("AWS_ENDPOINT_URL_SQS", sqs_peer_endpoint(), 1);
    sqs_env_signed();
    char *url = sqs_create("arn", false);
    char arn[256];
    sqs_arn(url, arn, sizeof(arn));
    fx_open(f, arn);
    struct sl_sink_doc doc1 = {.body = "{\"n\":1}", .len = 7, .key = NULL, .time_ms = 0};
    struct sl_sink_doc doc2 = {.body = "{\"n\":2}", .len = 7, .key = NULL, .time_ms = 0};
    assert_int_equal(fx_start(f, &doc1), 0);
    assert_int_equal(fx_start(f, &doc2), 0);
    fx_wait(f, 2);
    assert_int_equal(f->err[0], 0);
    assert_int_equal(f->err[1], 0);
    assert_int_equal(fx_write1(f, "{\"n\":3}", NULL, 0), 0); /* cached URL */
    char *bodies[8];
    int n = sqs_drain(url, bodies, 8);
    assert_int_equal(n, 3);
    sqs_free_bodies(bodies, n);
    sqs_delete(url);
    sl_free(url);
    sqs_env_unsigned();
    unsetenv("AWS_ENDPOINT_URL_SQS");
}

/* FIFO: one group, so order holds; a repeated key is deduplicated, a missing key falls back
 * to a hash of the body (the same body again is deduplicated too). */
static void test_sinks_sqs_fifo(void **state)
{
    struct fx *f = *state;
    setenv("AWS_ENDPOINT_URL_SQS", sqs_peer_endpoint(), 1);
    sqs_env_signed();
    char *url = sqs_create("fifo", true);
    char arn[256];
    sqs_arn(url, arn, sizeof(arn));
    fx_open(f, arn);
    assert_int_equal(fx_write1(f, "{\"n\":1}", "req-1", 0), 0);
    assert_int_equal(fx_write1(f, "{\"n\":1,\"again\":true}", "req-1", 0), 0); /* deduped */
    assert_int_equal(fx_write1(f, "{\"n\":2}", NULL, 0), 0);
    assert_int_equal(fx_write1(f, "{\"n\":2}", NULL, 0), 0); /* same hash: deduped */
    assert_int_equal(fx_write1(f, "{\"n\":3}", "not a valid id: spaces", 0), 0);
    char *bodies[8];
    int n = sqs_drain(url, bodies, 8);
    assert_int_equal(n, 3);
    assert_string_equal(bodies[0], "{\"n\":1}");
    assert_string_equal(bodies[1], "{\"n\":2}");
    assert_string_equal(bodies[2], "{\"n\":3}");
    sqs_free_bodies(bodies, n);
    sqs_delete(url);
    sl_free(url);
    sqs_env_unsigned();
    unsetenv("AWS_ENDPOINT_URL_SQS");
}

static void test_sinks_sqs_not_found(void **state)
{
    struct fx *f = *state;
    const char *ep = sqs_peer_endpoint();
    sqs_env_unsigned();
    char url[512];
    (void)snprintf(url, sizeof(url), "%s%s000000000000/sluice-missing-%s", ep,
                   ep[strlen(ep) - 1] == '/' ? "" : "/", sqs_run_id());
    fx_open(f, url);
    assert_int_equal(fx_write1(f, "{}", NULL, 0), SL_ENOTFOUND);
    assert_non_null(strstr(f->detail[0], "QueueDoesNotExist"));
    sl_sink_close(f->ops, f->ctx);
    f->ctx = NULL;

    /* By ARN: GetQueueUrl fails; once the queue exists, a retry finds it. */
    setenv("AWS_ENDPOINT_URL_SQS", ep, 1);
    char arn[256];
    (void)snprintf(arn, sizeof(arn), "arn:aws:sqs:us-east-1:000000000000:sluice-later-%s",
                   sqs_run_id());
    fx_open(f, arn);
    assert_int_equal(fx_write1(f, "{\"n\":1}", NULL, 0), SL_ENOTFOUND);
    assert_non_null(strstr(f->detail[1], "GetQueueUrl"));
    char *qurl = sqs_create("later", false);
    assert_int_equal(fx_write1(f, "{\"n\":1}", NULL, 0), 0);
    char *bodies[4];
    int n = sqs_drain(qurl, bodies, 4);
    assert_int_equal(n, 1);
    sqs_free_bodies(bodies, n);
    sqs_delete(qurl);
    sl_free(qurl);
    unsetenv("AWS_ENDPOINT_URL_SQS");
}

/* What the SQS sink sends and how it reads AWS's errors, against the test server: no fauxqs
 * needed. */
static void test_sinks_sqs_wire(void **state)
{
    struct fx *f = *state;
    sqs_env_signed();
    unsetenv("AWS_ENDPOINT_URL_SQS");
    struct srv *s = srv_start();
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/123456789012/q.fifo", s->http.port);
    fx_open(f, url);
    assert_int_equal(fx_write1(f, "{\"a\":\"x\\\"y\"}", "req-9", 0), 0);
    pthread_mutex_lock(&s->mu);
    assert_non_null(strstr(s->head, "POST / HTTP/1.1\r\n"));
    assert_non_null(strstr(s->head, "X-Amz-Target: AmazonSQS.SendMessage\r\n"));
    assert_non_null(strstr(s->head, "Content-Type: application/x-amz-json-1.0\r\n"));
    assert_non_null(strstr(s->head, "X-Amz-Security-Token: token\r\n"));
    assert_non_null(strstr(s->head, "Credential=test/"));
    assert_non_null(strstr(s->head, "/us-east-1/sqs/aws4_request"));
    cJSON *j = cJSON_Parse(s->body.data);
    pthread_mutex_unlock(&s->mu);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "QueueUrl")->valuestring, url);
    assert_string_equal(cJSON_GetObjectItem(j, "MessageBody")->valuestring, "{\"a\":\"x\\\"y\"}");
    assert_string_equal(cJSON_GetObjectItem(j, "MessageGroupId")->valuestring, "sluice");
    assert_string_equal(cJSON_GetObjectItem(j, "MessageDeduplicationId")->valuestring, "req-9");
    cJSON_Delete(j);

    static const struct {
        int status;
        const char *headers;
        const char *body;
        int err;
        const char *detail;
    } cases[] = {
        {400, NULL, "{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"gone\"}",
         SL_ENOTFOUND, "status 400 QueueDoesNotExist: gone"},
        {400, "x-amzn-query-error: AWS.SimpleQueueService.NonExistentQueue;Sender\r\n", "{}",
         SL_ENOTFOUND, "AWS.SimpleQueueService.NonExistentQueue"},
        {400, NULL, "{\"__type\":\"com.amazonaws.sqs#RequestThrottled\"}", SL_ETHROTTLED,
         "RequestThrottled"},
        {403, NULL, "{\"__type\":\"InvalidClientTokenId\",\"Message\":\"bad key\"}", SL_EAUTH,
         "InvalidClientTokenId: bad key"},
        {400, NULL, "{\"__type\":\"com.amazonaws.sqs#InvalidParameterValue\"}", SL_EREJECTED,
         "InvalidParameterValue"},
        {500, NULL, "not json", SL_EREMOTE, "status 500"},
        {503, NULL, "{}", SL_ETHROTTLED, "status 503"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        pthread_mutex_lock(&s->mu);
        s->status = cases[i].status;
        s->resp_headers = cases[i].headers;
        s->resp_body = cases[i].body;
        pthread_mutex_unlock(&s->mu);
        int before = f->n_done;
        assert_int_equal(fx_write1(f, "{}", NULL, 0), cases[i].err);
        if (!strstr(f->detail[before], cases[i].detail)) {
            fail_msg("case %zu: detail '%s' lacks '%s'", i, f->detail[before], cases[i].detail);
        }
    }
    sl_sink_close(f->ops, f->ctx);
    f->ctx = NULL;
    srv_stop(s);
    sqs_env_unsigned();
}

/* Over SQS's 1 MiB limit: rejected through the callback, with a detail, without a request. */
static void test_sinks_sqs_too_large(void **state)
{
    struct fx *f = *state;
    sqs_env_unsigned();
    fx_open(f, "http://127.0.0.1:9/123456789012/q");
    size_t len = 1024 * 1024 + 1;
    char *big = sl_malloc(len);
    assert_non_null(big);
    memset(big, 'x', len);
    struct sl_sink_doc doc = {.body = big, .len = len, .key = NULL, .time_ms = 0};
    assert_int_equal(fx_start(f, &doc), 0);
    assert_int_equal(f->n_done, 0);
    fx_wait(f, 1);
    assert_int_equal(f->err[0], SL_EREJECTED);
    assert_non_null(strstr(f->detail[0], "1048577 bytes"));
    assert_int_equal(sl_httpc_in_flight(f->httpc), 0);
    sl_free(big);
}

/* Several documents in one delivery: one SendMessageBatch, each document an entry with its own
 * Id, and each entry's answer its document's result: Successful → DELIVERED, Failed with
 * SenderFault → REJECTED with the code, an entry the answer leaves out → RETRY (never
 * DELIVERED). Against the test server: no fauxqs needed. */
static void test_sinks_sqs_batch_wire(void **state)
{
    struct fx *f = *state;
    sqs_env_unsigned();
    unsetenv("AWS_ENDPOINT_URL_SQS");
    struct srv *s = srv_start();
    s->resp_body = "{\"Successful\":[{\"Id\":\"0\",\"MessageId\":\"m0\"},{\"Id\":\"3\","
                   "\"MessageId\":\"m3\"}],\"Failed\":[{\"Id\":\"1\",\"SenderFault\":true,"
                   "\"Code\":\"InvalidMessageContents\",\"Message\":\"bad char\"}]}";
    char url[128];
    (void)snprintf(url, sizeof(url), "http://127.0.0.1:%d/123456789012/q.fifo", s->http.port);
    fx_open(f, url);
    static const char *const bodies[] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"};
    struct sl_sink_doc docs[4];
    fake_docs(docs, bodies, 4);
    docs[2].key = "req-2";
    docs[2].key_len = 5;
    struct delivered d = {0};
    assert_int_equal(sl_sink_deliver(f->ops, f->ctx, docs, 4, on_delivered, &d), 0);
    assert_int_equal(d.calls, 0);
    assert_true(test_run_until(&f->loop, delivered_once, &d, DEADLINE_MS));
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->n_reqs, 1);
    assert_non_null(strstr(s->head, "X-Amz-Target: AmazonSQS.SendMessageBatch\r\n"));
    cJSON *j = cJSON_Parse(s->body.data);
    pthread_mutex_unlock(&s->mu);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "QueueUrl")->valuestring, url);
    const cJSON *entries = cJSON_GetObjectItem(j, "Entries");
    assert_int_equal(cJSON_GetArraySize(entries), 4);
    for (int i = 0; i < 4; i++) {
        const cJSON *e = cJSON_GetArrayItem(entries, i);
        char id[4];
        (void)snprintf(id, sizeof(id), "%d", i);
        assert_string_equal(cJSON_GetObjectItem(e, "Id")->valuestring, id);
        assert_string_equal(cJSON_GetObjectItem(e, "MessageBody")->valuestring, bodies[i]);
        assert_string_equal(cJSON_GetObjectItem(e, "MessageGroupId")->valuestring, "sluice");
        assert_true(cJSON_IsString(cJSON_GetObjectItem(e, "MessageDeduplicationId")));
    }
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(entries, 2), "MessageDeduplicationId")->valuestring,
        "req-2");
    cJSON_Delete(j);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.results[0].outcome, SL_SINK_DELIVERED);
    assert_int_equal(d.results[1].outcome, SL_SINK_REJECTED);
    assert_int_equal(d.results[1].err, SL_EREJECTED);
    assert_non_null(strstr(d.detail[1], "InvalidMessageContents"));
    assert_int_equal(d.results[2].outcome, SL_SINK_RETRY);
    assert_non_null(strstr(d.detail[2], "missing"));
    assert_int_equal(d.results[3].outcome, SL_SINK_DELIVERED);

    /* A whole-call failure is every document's. */
    pthread_mutex_lock(&s->mu);
    s->status = 500;
    s->resp_body = "{}";
    pthread_mutex_unlock(&s->mu);
    struct delivered d2 = {0};
    assert_int_equal(sl_sink_deliver(f->ops, f->ctx, docs, 3, on_delivered, &d2), 0);
    assert_true(test_run_until(&f->loop, delivered_once, &d2, DEADLINE_MS));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(d2.results[i].outcome, SL_SINK_RETRY);
        assert_int_equal(d2.results[i].err, SL_EREMOTE);
    }
    sl_sink_close(f->ops, f->ctx);
    f->ctx = NULL;
    srv_stop(s);
}

/* Against fauxqs: 23 documents in one delivery reach the queue in three SendMessageBatch
 * calls (10, 10, 3); the one with a character SQS refuses is REJECTED on its own while the
 * others land intact. */
static void test_sinks_sqs_batch(void **state)
{
    struct fx *f = *state;
    (void)sqs_peer_endpoint(); /* skips the test without fauxqs */
    sqs_env_unsigned();
    char *q = sqs_create("batch", false);
    fx_open(f, q);
    enum { N = 23 };
    static char bodies[N][32];
    struct sl_sink_doc docs[N];
    for (int i = 0; i < N; i++) {
        int n = snprintf(bodies[i], sizeof(bodies[i]), "{\"doc\":%d}", i);
        if (i == 7) {
            bodies[i][1] = '\x01'; /* not a character SQS accepts */
        }
        docs[i] = (struct sl_sink_doc){.body = bodies[i], .len = (size_t)n};
    }
    static struct delivered_big d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(sl_sink_deliver(f->ops, f->ctx, docs, N, on_delivered_big, &d), 0);
    assert_true(test_run_until(&f->loop, delivered_once, &d, DEADLINE_MS));
    assert_int_equal(d.n, N);
    for (int i = 0; i < N; i++) {
        if (i == 7) {
            assert_int_equal(d.results[i].outcome, SL_SINK_REJECTED);
            assert_non_null(strstr(d.detail[i], "InvalidMessageContents"));
        } else if (d.results[i].outcome != SL_SINK_DELIVERED) {
            fail_msg("document %d: %d %s", i, d.results[i].outcome, d.detail[i]);
        }
    }
    char *got[N + 1];
    int n = sqs_drain(q, got, N + 1);
    assert_int_equal(n, N - 1);
    for (int i = 0; i < N; i++) {
        int seen = 0;
        for (int k = 0; k < n; k++) {
            seen += strcmp(got[k], bodies[i]) == 0;
        }
        assert_int_equal(seen, i == 7 ? 0 : 1);
    }
    sqs_free_bodies(got, n);
    sl_sink_close(f->ops, f->ctx);
    f->ctx = NULL;
    sqs_delete(q);
    sl_free(q);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sinks_registry),
        cmocka_unit_test(test_sinks_check_errors),
        cmocka_unit_test(test_sinks_plan_per_batch),
        cmocka_unit_test(test_sinks_plan_no_payload),
        cmocka_unit_test(test_sinks_plan_per_record),
        cmocka_unit_test(test_sinks_plan_real_sinks),
        cmocka_unit_test(test_sinks_deliver_outcomes),
        cmocka_unit_test(test_sinks_deliver_start_fails),
        cmocka_unit_test(test_sinks_deliver_own),
        cmocka_unit_test(test_sinks_chunk),
        cmocka_unit_test(test_sinks_deliver_chunks),
        cmocka_unit_test_setup_teardown(test_sinks_open_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_file_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_file_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_file_torn_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_file_day_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_file_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_file_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_http_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_http_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_arn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_batch_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sinks_sqs_batch, setup, teardown),
    };
    int r = cmocka_run_group_tests_name("sinks", tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}

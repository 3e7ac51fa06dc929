/* SPDX-License-Identifier: Apache-2.0 */
/* test_sink_redis.c: the redis:// sink's batching and answers, against a redis-server of the
 * test's own (redis_server.h), through the core's entry points (sl_sink_open, sl_sink_deliver).
 * A list destination takes a call's documents in one RPUSH, in order; a stream destination one
 * XADD per document, pipelined, a delivery larger than max_docs cut into calls whose entries
 * keep the documents' order; the key goes in field key; ?maxlen= trims; a document over
 * max_document_bytes is refused in its place without being sent; an error reply is REJECTED
 * when the command cannot succeed later (WRONGTYPE) and RETRY when it can (OOM). Redis' own
 * counters (INFO commandstats) say how many commands went. The loop runs to a condition with a
 * deadline; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "helpers.h"
#include "redis_server.h"
#include "sink.h"

#define DEADLINE_MS 20000
#define N_BIG       2500 /* more than the sink's max_docs (1000) */

struct fx {
    uv_loop_t loop;
    struct test_redis srv;
    struct sl_sink_env env;
    const struct sl_sink_ops *ops;
    void *ctx;
    char dest[256];
};

struct outcome {
    int calls;
    size_t n;
    struct sl_sink_result res[N_BIG];
    char detail[4][256];
};

static int setup(void **state)
{
    test_redis_need();
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    test_redis_start(&f->srv, 0, NULL);
    f->env.loop = &f->loop;
    f->env.clock = &sl_clock_system;
    f->env.inst = "test";
    f->env.region = "us-east-1";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->ops) {
        sl_sink_close(f->ops, f->ctx);
    }
    for (int i = 0; i < 10 && uv_run(&f->loop, UV_RUN_NOWAIT); i++) {
    }
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_redis_stop(&f->srv);
    free(f);
    return 0;
}

static void open_sink(struct fx *f, const char *tail, const char *opts)
{
    (void)snprintf(f->dest, sizeof(f->dest), "redis://127.0.0.1:%d/0/%s", f->srv.port, tail);
    f->ops = sl_sink_for(f->dest);
    assert_non_null(f->ops);
    char err[512] = "";
    cJSON *o = opts ? cJSON_Parse(opts) : NULL;
    int r = sl_sink_open(f->ops, &f->env, f->dest, o, "test", "$.sink", &f->ctx, err, sizeof(err));
    cJSON_Delete(o);
    if (r < 0) {
        fail_msg("open %s: %s", f->dest, err);
    }
}

static void on_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct outcome *o = arg;
    o->calls++;
    o->n = n;
    for (size_t i = 0; i < n && i < N_BIG; i++) {
        o->res[i] = results[i];
        if (i < 4) {
            (void)snprintf(o->detail[i], sizeof(o->detail[i]), "%s",
                           results[i].detail ? results[i].detail : "");
        }
    }
}

static bool answered(void *arg)
{
    return ((struct outcome *)arg)->calls > 0;
}

static void deliver(struct fx *f, const struct sl_sink_doc *docs, size_t n, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    assert_int_equal(sl_sink_deliver(f->ops, f->ctx, docs, n, on_delivered, o), 0);
    assert_int_equal(o->calls, 0);
    assert_true(test_run_until(&f->loop, answered, o, test_deadline_ms(DEADLINE_MS)));
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(o->calls, 1);
    assert_int_equal(o->n, n);
}

/* How many times Redis ran cmd (INFO commandstats' calls=). */
static long cmd_calls(struct fx *f, const char *cmd)
{
    char *info = test_redis_cmd(&f->srv, "INFO commandstats");
    assert_non_null(info);
    char key[64];
    (void)snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(info, key);
    long n = p ? strtol(p + strlen(key), NULL, 10) : 0;
    free(info);
    return n;
}

static char bodies[N_BIG][32];

static void make_docs(struct sl_sink_doc *docs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        (void)snprintf(bodies[i], sizeof(bodies[i]), "doc-%05zu", i);
        docs[i] = (struct sl_sink_doc){.body = bodies[i], .len = strlen(bodies[i])};
    }
}

/* A list: the call's documents in one RPUSH, in order. */
static void test_sink_redis_list_one_rpush_per_call(void **state)
{
    struct fx *f = *state;
    open_sink(f, "list/dlq", NULL);
    struct sl_sink_doc docs[12];
    make_docs(docs, 12);
    static struct outcome o;
    deliver(f, docs, 12, &o);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(o.res[i].outcome, SL_SINK_DELIVERED);
    }
    assert_int_equal(cmd_calls(f, "rpush"), 1);
    char *got = test_redis_cmd(&f->srv, "LRANGE dlq 0 -1");
    char want[12 * 16] = "";
    for (int i = 0; i < 12; i++) {
        (void)snprintf(want + strlen(want), sizeof(want) - strlen(want), "%sdoc-%05d",
                       i ? "\n" : "", i);
    }
    assert_string_equal(got, want);
    free(got);
}

/* A stream: one XADD per document, a delivery over max_docs cut into calls, every entry in the
 * documents' order; the key in field key. */
static void test_sink_redis_stream_batches_keep_order(void **state)
{
    struct fx *f = *state;
    open_sink(f, "events", NULL);
    static struct sl_sink_doc docs[N_BIG];
    make_docs(docs, N_BIG);
    docs[1].key = "k-1 and more";
    docs[1].key_len = 3; /* key_len bytes of it */
    static struct outcome o;
    deliver(f, docs, N_BIG, &o);
    for (int i = 0; i < N_BIG; i++) {
        assert_int_equal(o.res[i].outcome, SL_SINK_DELIVERED);
    }
    assert_int_equal(cmd_calls(f, "xadd"), N_BIG);
    char *got = test_redis_cmd(&f->srv, "XRANGE events - + COUNT 3");
    /* id, data, doc-00000 | id, data, doc-00001, key, k-1 | ... */
    assert_non_null(strstr(got, "\ndata\ndoc-00000\n"));
    assert_non_null(strstr(got, "\ndata\ndoc-00001\nkey\nk-1\n"));
    free(got);
    char *all = test_redis_cmd(&f->srv, "XRANGE events - +");
    const char *p = all;
    for (int i = 0; i < N_BIG; i++) {
        char want[32];
        (void)snprintf(want, sizeof(want), "\ndoc-%05d", i);
        const char *q = strstr(p, want);
        if (!q) {
            fail_msg("entry %d missing or out of order", i);
        }
        p = q + 1;
    }
    free(all);
}

/* ?maxlen= trims the stream as entries are added (MAXLEN ~: about that many, in whole nodes). */
static void test_sink_redis_maxlen_trims(void **state)
{
    struct fx *f = *state;
    open_sink(f, "trimmed?maxlen=200", NULL);
    static struct sl_sink_doc docs[N_BIG];
    make_docs(docs, 2000);
    static struct outcome o;
    deliver(f, docs, 2000, &o);
    char *len = test_redis_cmd(&f->srv, "XLEN trimmed");
    long n = strtol(len, NULL, 10);
    free(len);
    if (n < 200 || n > 400) {
        fail_msg("XLEN %ld after 2000 entries with maxlen 200", n);
    }
}

/* A document over max_document_bytes is REJECTED in its place and never sent; the others
 * land. */
static void test_sink_redis_oversize_refused_in_place(void **state)
{
    struct fx *f = *state;
    open_sink(f, "sized", "{\"max_document_bytes\":\"1KB\"}");
    static char big[2000];
    memset(big, 'x', sizeof(big));
    struct sl_sink_doc docs[3];
    make_docs(docs, 3);
    docs[1] = (struct sl_sink_doc){.body = big, .len = sizeof(big)};
    static struct outcome o;
    deliver(f, docs, 3, &o);
    assert_int_equal(o.res[0].outcome, SL_SINK_DELIVERED);
    assert_int_equal(o.res[1].outcome, SL_SINK_REJECTED);
    assert_int_equal(o.res[1].err, SL_EREJECTED);
    assert_non_null(strstr(o.detail[1], "max_document_bytes"));
    assert_int_equal(o.res[2].outcome, SL_SINK_DELIVERED);
    assert_int_equal(cmd_calls(f, "xadd"), 2);
}

/* Redis' error replies: WRONGTYPE cannot succeed later (REJECTED), OOM can (RETRY). */
static void test_sink_redis_error_replies(void **state)
{
    struct fx *f = *state;
    free(test_redis_cmd(&f->srv, "SET notastream x"));
    open_sink(f, "notastream", NULL);
    struct sl_sink_doc docs[2];
    make_docs(docs, 2);
    static struct outcome o;
    deliver(f, docs, 2, &o);
    assert_int_equal(o.res[0].outcome, SL_SINK_REJECTED);
    assert_non_null(strstr(o.detail[0], "WRONGTYPE"));
    sl_sink_close(f->ops, f->ctx);
    f->ops = NULL;
    free(test_redis_cmd(&f->srv, "CONFIG SET maxmemory 1"));
    open_sink(f, "fresh", NULL);
    deliver(f, docs, 2, &o);
    free(test_redis_cmd(&f->srv, "CONFIG SET maxmemory 0"));
    assert_int_equal(o.res[0].outcome, SL_SINK_RETRY);
    assert_int_equal(o.res[0].err, SL_EREMOTE);
    assert_non_null(strstr(o.detail[0], "OOM"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sink_redis_list_one_rpush_per_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_redis_stream_batches_keep_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_redis_maxlen_trims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_redis_oversize_refused_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_redis_error_replies, setup, teardown),
    };
    return cmocka_run_group_tests_name("sink_redis", tests, NULL, NULL);
}

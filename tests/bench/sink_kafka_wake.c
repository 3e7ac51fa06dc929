/* SPDX-License-Identifier: Apache-2.0 */
/* sink_kafka_wake.c: how often the kafka:// sink wakes the loop while a write waits (run by
 * tests/bench/bench_sink_kafka_wake.sh, not part of the test suite). A write to librdkafka's
 * in-process mock cluster whose one broker is down stays in flight; the loop runs for SECONDS
 * of real time and every iteration is counted (a prepare handle); then stop() cancels the
 * write. A sink that polls librdkafka on a timer wakes the loop at the timer's rate; one woken
 * by librdkafka's queue wakes only when librdkafka has something to say. Uses only the sink
 * operations every version of the interface has, so it builds against older libsluice.a too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "alloc.h"
#include "opt.h"
#include "sink.h"

static long iters;
static int done;

static void on_prepare(uv_prepare_t *p)
{
    (void)p;
    iters++;
}

static void on_timer(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void on_written(void *arg, int err, const char *detail)
{
    (void)arg;
    (void)err;
    (void)detail;
    done = 1;
}

int main(int argc, char **argv)
{
    long secs = argc > 1 ? strtol(argv[1], NULL, 10) : 2;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    rd_kafka_mock_cluster_t *mc = mock_rk ? rd_kafka_handle_mock_cluster(mock_rk) : NULL;
    if (!mc || rd_kafka_mock_topic_create(mc, "dlq", 1, 1)) {
        fprintf(stderr, "no mock cluster\n");
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct sl_strmap cluster = {0};
    if (sl_strmap_put(&cluster, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc)) < 0) {
        return 1;
    }
    struct sl_sink_env env = {
        .loop = &loop, .clock = &sl_clock_system, .inst = "bench", .cluster = &cluster};
    void *ctx = sl_calloc(1, sl_sink_kafka.ctx_size);
    if (!ctx || sl_sink_kafka.init(ctx, &env, "kafka://dlq", err, sizeof(err)) < 0) {
        fprintf(stderr, "init: %s\n", err);
        return 1;
    }
    (void)rd_kafka_mock_broker_set_down(mc, 1);
    struct sl_sink_doc doc = {.body = "{}", .len = 2};
    if (sl_sink_kafka.write(ctx, &doc, on_written, NULL) < 0) {
        fprintf(stderr, "write failed\n");
        return 1;
    }
    uv_prepare_t p;
    uv_prepare_init(&loop, &p);
    uv_prepare_start(&p, on_prepare);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, on_timer, (uint64_t)secs * 1000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    printf("loop iterations in %ld s with one kafka:// write in flight: %ld\n", secs, iters);
    sl_sink_kafka.stop(ctx);
    while (!done) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_prepare_stop(&p);
    sl_sink_kafka.fini(ctx);
    sl_free(ctx);
    sl_strmap_clear(&cluster, false);
    rd_kafka_destroy(mock_rk);
    return 0;
}

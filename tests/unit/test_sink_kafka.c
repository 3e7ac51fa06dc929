/* SPDX-License-Identifier: Apache-2.0 */
/* test_sink_kafka.c: the kafka:// sink's producer on the loop, against librdkafka's in-process
 * mock cluster (a Kafka protocol broker, test.mock.num.brokers). Writes land on the topic with
 * their keys and bodies (read back with a consumer), and while they are in flight the loop has
 * no active timer: delivery reports wake the loop through the producer's queue, not a polling
 * timer. stop() with the broker down answers every write in flight with SL_ECANCELED, again
 * without a timer. deliver answers per document (one too large is REJECTED, the others land).
 * A producer whose broker refuses connections answers every delivery (the wake-up is not lost
 * to an error queued before it was enabled). The producer is idempotent: it asks for a producer
 * id before its first message (a refused InitProducerId leaves the message unwritten). The loop
 * is driven with test_run_until to a condition with a deadline; nothing sleeps (librdkafka's own
 * timers are real time). A cluster of the destination's own (the options bootstrap_servers and
 * rdkafka) is used whatever the source gives, and the options' rules name the key, never a
 * secret value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "alloc.h"
#include "helpers.h"
#include "kafka_mock.h"
#include "opt.h"
#include "sink.h"

#define DEADLINE_MS 20000
#define N_DOCS      64

struct fx {
    uv_loop_t loop;
    struct sl_clock_fake clock;
    rd_kafka_t *mock_rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    void *ctx;
    int n_done;
    int err[N_DOCS];
    int timers_seen; /* active timers found while writes were in flight */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    sl_clock_fake_init(&f->clock, 1000, 1709251200000);
    f->mock_rk = kafka_mock_cluster("dlq", true, &f->mc);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_sink_close(&sl_sink_kafka, f->ctx);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    rd_kafka_destroy(f->mock_rk);
    free(f);
    return 0;
}

static void open_sink(struct fx *f)
{
    struct sl_strmap cluster = {0};
    assert_int_equal(
        sl_strmap_put(&cluster, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc)), 0);
    struct sl_sink_env env = {
        .loop = &f->loop, .clock = &f->clock.clock, .inst = "test", .cluster = &cluster};
    char err[512];
    int r = sl_sink_open(&sl_sink_kafka, &env, "kafka://dlq", NULL, NULL, NULL, &f->ctx, err,
                         sizeof(err));
    if (r < 0) {
        fail_msg("init: %s", err);
    }
    sl_strmap_clear(&cluster, false);
}

struct slot {
    struct fx *f;
    int i;
};

/* Counts the active timers but test_run_until's own deadline (one shot, due in seconds). */
static void count_timer(uv_handle_t *h, void *arg)
{
    struct fx *f = arg;
    if (h->type != UV_TIMER || !uv_is_active(h)) {
        return;
    }
    uv_timer_t *t = (uv_timer_t *)h;
    if (uv_timer_get_repeat(t) > 0 || uv_timer_get_due_in(t) < DEADLINE_MS / 2) {
        f->timers_seen++;
    }
}

static void written(void *arg, int err, const char *detail)
{
    (void)detail;
    struct slot *s = arg;
    s->f->err[s->i] = err;
    s->f->n_done++;
}

/* A check run on every loop turn while writes are in flight: a prepare handle, not a timer. */
static void check_no_timer(uv_prepare_t *p)
{
    struct fx *f = p->data;
    uv_walk(&f->loop, count_timer, f);
}

static bool done_n(void *arg)
{
    struct fx *f = arg;
    return f->n_done >= N_DOCS;
}

/* Reads n messages of topic dlq from the start; checks keys and bodies. */
static void read_back(struct fx *f, int n)
{
    rd_kafka_t *c = kafka_mock_reader(f->mc, "dlq");
    int got = 0;
    for (int tries = 0; got < n && tries < 200; tries++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 100);
        if (!msg) {
            continue;
        }
        if (!msg->err) {
            char want[64];
            int wn = snprintf(want, sizeof(want), "{\"doc\":%d}", got);
            char key[16];
            int kn = snprintf(key, sizeof(key), "k%d", got);
            assert_int_equal(msg->len, (size_t)wn);
            assert_memory_equal(msg->payload, want, (size_t)wn);
            assert_int_equal(msg->key_len, (size_t)kn);
            assert_memory_equal(msg->key, key, (size_t)kn);
            got++;
        }
        rd_kafka_message_destroy(msg);
    }
    assert_int_equal(got, n);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

/* N_DOCS writes land on the topic in order with their keys, and no timer is active on the loop
 * while they are in flight (the 5 ms polling timer this replaced was). */
static void test_sink_kafka_wakes_without_timer(void **state)
{
    struct fx *f = *state;
    open_sink(f);
    uv_prepare_t check;
    assert_int_equal(uv_prepare_init(&f->loop, &check), 0);
    check.data = f;
    static char bodies[N_DOCS][32];
    static char keys[N_DOCS][16];
    struct slot slots[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) {
        int bn = snprintf(bodies[i], sizeof(bodies[i]), "{\"doc\":%d}", i);
        int kn = snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        struct sl_sink_doc doc = {
            .body = bodies[i], .len = (size_t)bn, .key = keys[i], .key_len = (size_t)kn};
        slots[i] = (struct slot){f, i};
        assert_int_equal(sl_sink_kafka.write(f->ctx, &doc, written, &slots[i]), 0);
    }
    assert_int_equal(f->n_done, 0); /* never from inside write */
    uv_walk(&f->loop, count_timer, f);
    assert_int_equal(uv_prepare_start(&check, check_no_timer), 0);
    assert_true(test_run_until(&f->loop, done_n, f, DEADLINE_MS));
    uv_prepare_stop(&check);
    uv_close((uv_handle_t *)&check, NULL);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->timers_seen, 0);
    for (int i = 0; i < N_DOCS; i++) {
        assert_int_equal(f->err[i], 0);
    }
    /* Idle: nothing of the sink's keeps the loop alive. */
    assert_false(uv_loop_alive(&f->loop));
    read_back(f, N_DOCS);
}

/* With the broker down, writes wait; stop() purges them and every one is answered with
 * SL_ECANCELED through the same wake-up, with no timer on the loop. */
static void test_sink_kafka_stop_cancels(void **state)
{
    struct fx *f = *state;
    open_sink(f);
    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 1), 0);
    struct slot slots[N_DOCS];
    for (int i = 0; i < N_DOCS; i++) {
        struct sl_sink_doc doc = {.body = "{}", .len = 2};
        slots[i] = (struct slot){f, i};
        assert_int_equal(sl_sink_kafka.write(f->ctx, &doc, written, &slots[i]), 0);
    }
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->n_done, 0);
    uv_walk(&f->loop, count_timer, f);
    assert_int_equal(f->timers_seen, 0);
    sl_sink_kafka.stop(f->ctx);
    assert_true(test_run_until(&f->loop, done_n, f, DEADLINE_MS));
    for (int i = 0; i < N_DOCS; i++) {
        assert_int_equal(f->err[i], SL_ECANCELED);
    }
}

struct results {
    int calls;
    size_t n;
    struct sl_sink_result res[4];
};

static void on_results(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct results *r = arg;
    r->calls++;
    r->n = n;
    for (size_t i = 0; i < n && i < 4; i++) {
        r->res[i] = results[i];
    }
}

static bool results_in(void *arg)
{
    return ((struct results *)arg)->calls > 0;
}

/* deliver gives each document its own outcome: one over the producer's message.max.bytes is
 * REJECTED while the ones around it land; when every document is refused at once, deliver
 * fails and never calls back. */
static void test_sink_kafka_deliver_per_document(void **state)
{
    struct fx *f = *state;
    open_sink(f);
    size_t big_len = 1100000; /* over librdkafka's default message.max.bytes (1000000) */
    char *big = sl_malloc(big_len);
    assert_non_null(big);
    memset(big, 'x', big_len);
    struct sl_sink_doc docs[3] = {
        {.body = "{\"doc\":0}", .len = 9, .key = "k0", .key_len = 2},
        {.body = big, .len = big_len},
        {.body = "{\"doc\":1}", .len = 9, .key = "k1", .key_len = 2},
    };
    struct results r = {0};
    assert_int_equal(sl_sink_deliver(&sl_sink_kafka, f->ctx, docs, 3, on_results, &r), 0);
    assert_int_equal(r.calls, 0); /* never from inside deliver */
    assert_true(test_run_until(&f->loop, results_in, &r, DEADLINE_MS));
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.res[0].outcome, SL_SINK_DELIVERED);
    assert_int_equal(r.res[1].outcome, SL_SINK_REJECTED);
    assert_int_equal(r.res[1].err, SL_EREJECTED);
    assert_non_null(r.res[1].detail);
    assert_int_equal(r.res[2].outcome, SL_SINK_DELIVERED);
    read_back(f, 2);

    struct results none = {0};
    assert_int_equal(sl_sink_deliver(&sl_sink_kafka, f->ctx, &docs[1], 1, on_results, &none),
                     SL_EREJECTED);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(none.calls, 0);
    sl_free(big);
}

/* A loopback port nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A producer whose broker refuses connections: librdkafka queues an error right after
 * rd_kafka_new, often before the sink has enabled its wake-up, and from then on it writes to the
 * pipe only when the queue goes from empty to not. The sink must still be woken for its
 * delivery reports: each of several fresh producers answers its delivery (RETRY, after
 * delivery_timeout) well within the deadline. Several, because the error's timing varies: with
 * the first wake-up left to librdkafka, about one producer in four was never answered. */
static void test_sink_kafka_unreachable_answers(void **state)
{
    struct fx *f = *state;
    for (int round = 0; round < 6; round++) {
        struct sl_strmap cluster = {0};
        char servers[64];
        (void)snprintf(servers, sizeof(servers), "127.0.0.1:%d", closed_port());
        assert_int_equal(sl_strmap_put(&cluster, "bootstrap.servers", servers), 0);
        struct sl_sink_env env = {
            .loop = &f->loop, .clock = &f->clock.clock, .inst = "test", .cluster = &cluster};
        cJSON *o = cJSON_Parse("{\"delivery_timeout\":\"1s\"}");
        char err[512];
        void *ctx = NULL;
        assert_int_equal(sl_sink_open(&sl_sink_kafka, &env, "kafka://dlq", o, NULL, NULL, &ctx, err,
                                      sizeof(err)),
                         0);
        cJSON_Delete(o);
        sl_strmap_clear(&cluster, false);
        struct sl_sink_doc docs[2] = {{.body = "{}", .len = 2}, {.body = "[]", .len = 2}};
        struct results r = {0};
        assert_int_equal(sl_sink_deliver(&sl_sink_kafka, ctx, docs, 2, on_results, &r), 0);
        if (!test_run_until(&f->loop, results_in, &r, 5000)) {
            fail_msg("round %d: no answer 5 s after a 1 s delivery timeout", round);
        }
        assert_int_equal(r.n, 2);
        assert_int_equal(r.res[0].outcome, SL_SINK_RETRY);
        assert_int_equal(r.res[1].outcome, SL_SINK_RETRY);
        sl_sink_close(&sl_sink_kafka, ctx);
    }
}

static bool done_one(void *arg)
{
    return ((struct fx *)arg)->n_done >= 1;
}

/* The producer is idempotent (enable.idempotence): before its first message it asks the broker
 * for a producer id (InitProducerId), with which the broker drops a retried produce it already
 * wrote. Seen from the broker: an InitProducerId that is refused leaves the message unwritten,
 * where a producer without idempotence would not have asked and would have written it. */
static void test_sink_kafka_producer_is_idempotent(void **state)
{
    struct fx *f = *state;
    /* InitProducerId is ApiKey 22; the first one is refused for good */
    rd_kafka_mock_push_request_errors(f->mc, 22, 1, RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    struct sl_strmap cluster = {0};
    assert_int_equal(
        sl_strmap_put(&cluster, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc)), 0);
    struct sl_sink_env env = {
        .loop = &f->loop, .clock = &f->clock.clock, .inst = "test", .cluster = &cluster};
    char err[512];
    cJSON *opts = cJSON_Parse("{\"delivery_timeout\":\"2s\"}");
    int r = sl_sink_open(&sl_sink_kafka, &env, "kafka://dlq", opts, NULL, NULL, &f->ctx, err,
                         sizeof(err));
    cJSON_Delete(opts);
    sl_strmap_clear(&cluster, false);
    if (r < 0) {
        fail_msg("init: %s", err);
    }
    static char body[] = "{\"doc\":0}";
    struct sl_sink_doc doc = {.body = body, .len = strlen(body)};
    static struct slot slot;
    slot = (struct slot){f, 0};
    assert_int_equal(sl_sink_kafka.write(f->ctx, &doc, written, &slot), 0);
    assert_true(test_run_until(&f->loop, done_one, f, test_deadline_ms(DEADLINE_MS)));
    assert_true(f->err[0] < 0); /* not written: the producer needed its producer id */
}

/* A destination with a cluster of its own (the options bootstrap_servers and rdkafka, as a
 * file, Kinesis, SQS or Redis mapping gives): with no source cluster, or with one where nothing
 * listens, the writes land on the cluster the options name. Without either, init says what is
 * needed. */
static void test_sink_kafka_own_cluster(void **state)
{
    struct fx *f = *state;
    char text[512];
    (void)snprintf(text, sizeof(text),
                   "{\"bootstrap_servers\":[\"%s\"],\"rdkafka\":{\"security.protocol\":"
                   "\"PLAINTEXT\"}}",
                   rd_kafka_mock_cluster_bootstraps(f->mc));
    cJSON *opts = cJSON_Parse(text);
    assert_non_null(opts);
    struct sl_strmap elsewhere = {0};
    char servers[64];
    (void)snprintf(servers, sizeof(servers), "127.0.0.1:%d", closed_port());
    assert_int_equal(sl_strmap_put(&elsewhere, "bootstrap.servers", servers), 0);
    char err[512] = "";
    for (int with_source = 0; with_source < 2; with_source++) {
        struct sl_sink_env env = {.loop = &f->loop,
                                  .clock = &f->clock.clock,
                                  .inst = "test",
                                  .cluster = with_source ? &elsewhere : NULL};
        void *ctx = NULL;
        if (sl_sink_open(&sl_sink_kafka, &env, "kafka://dlq", opts, NULL, NULL, &ctx, err,
                         sizeof(err)) < 0) {
            fail_msg("init: %s", err);
        }
        static char body[] = "{\"doc\":0}";
        struct sl_sink_doc doc = {.body = body, .len = strlen(body), .key = "k0", .key_len = 2};
        static struct slot slot;
        slot = (struct slot){f, 0};
        f->n_done = 0;
        assert_int_equal(sl_sink_kafka.write(ctx, &doc, written, &slot), 0);
        assert_true(test_run_until(&f->loop, done_one, f, test_deadline_ms(DEADLINE_MS)));
        assert_int_equal(f->err[0], 0);
        sl_sink_close(&sl_sink_kafka, ctx);
    }
    read_back(f, 1); /* the first message: both landed on the options' cluster */
    cJSON_Delete(opts);
    sl_strmap_clear(&elsewhere, false);
    /* neither a source cluster nor bootstrap_servers */
    struct sl_sink_env bare = {.loop = &f->loop, .clock = &f->clock.clock, .inst = "test"};
    void *ctx = NULL;
    assert_int_equal(sl_sink_open(&sl_sink_kafka, &bare, "kafka://dlq", NULL, NULL, NULL, &ctx, err,
                                  sizeof(err)),
                     SL_ECONFIG);
    assert_non_null(strstr(err, "destination_options.bootstrap_servers"));
}

/* The options' rules beyond their table (check_opts, run by sl_sink_open and by the
 * configuration's check): rdkafka only with bootstrap_servers, servers as host:port, none of the
 * producer's own settings, and what librdkafka refuses named by its key, never its value (any
 * rdkafka value may be a secret). */
static void test_sink_kafka_options_checked(void **state)
{
    (void)state;
    static const struct {
        const char *opts, *want;
    } cases[] = {
        {"{\"rdkafka\":{\"sasl.username\":\"u\"}}",
         "cfg: $.destination_options.rdkafka: settings of a cluster of the destination's own; "
         "allowed: only with bootstrap_servers (without it a Kafka mapping's destination "
         "connects as its source does)"},
        {"{\"bootstrap_servers\":[\"127.0.0.1:9092\",\"b2\"]}",
         "cfg: $.destination_options.bootstrap_servers[1]: \"b2\" is not host:port; allowed: a "
         "host name or address and a port 1 to 65535, such as \"broker1:9092\""},
        {"{\"bootstrap_servers\":[\"h:1\"],\"rdkafka\":{\"enable.idempotence\":\"false\"}}",
         "cfg: $.destination_options.rdkafka.enable.idempotence: set by sluice; allowed: nothing: "
         "the producer is idempotent, with acks=all and linger.ms=0"},
        {"{\"bootstrap_servers\":[\"h:1\"],\"rdkafka\":{\"bootstrap.servers\":\"h:2\"}}",
         "cfg: $.destination_options.rdkafka.bootstrap.servers: set by sluice; allowed: "
         "bootstrap_servers"},
        {"{\"bootstrap_servers\":[\"h:1\"],\"rdkafka\":{\"message.timeout.ms\":\"5\"}}",
         "cfg: $.destination_options.rdkafka.message.timeout.ms: set by sluice; allowed: "
         "delivery_timeout"},
        {"{\"bootstrap_servers\":[\"h:1\"],\"rdkafka\":{\"security.protocol\":\"pw-S3CRET\"}}",
         "cfg: $.destination_options.rdkafka: librdkafka rejects the value of security.protocol; "
         "allowed: librdkafka's producer properties with values it takes"},
    };
    uv_loop_t *loop = uv_default_loop();
    struct sl_sink_env env = {.loop = loop, .inst = "test"};
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        cJSON *o = cJSON_Parse(cases[i].opts);
        assert_non_null(o);
        char err[512] = "";
        void *ctx = NULL;
        int r = sl_sink_open(&sl_sink_kafka, &env, "kafka://dlq", o, "cfg", "$.destination_options",
                             &ctx, err, sizeof(err));
        cJSON_Delete(o);
        if (r != SL_ECONFIG || strcmp(err, cases[i].want) != 0) {
            fail_msg("case %zu: r=%d\n got: %s\nwant: %s", i, r, err, cases[i].want);
        }
        assert_null(strstr(err, "S3CRET"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sink_kafka_wakes_without_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_kafka_stop_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_kafka_deliver_per_document, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_kafka_unreachable_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_kafka_producer_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_kafka_own_cluster, setup, teardown),
        cmocka_unit_test(test_sink_kafka_options_checked),
    };
    return cmocka_run_group_tests_name("sink_kafka", tests, NULL, NULL);
}

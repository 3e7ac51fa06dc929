/* SPDX-License-Identifier: Apache-2.0 */
/* test_sink_conformance.c: the contract every sink keeps, checked the same way for each one
 * against a real destination (file, http, sqs, kafka; kafka only in a build with it). Each
 * sink joins with one row of conf_sinks: how to bring its destination up, a destination that
 * cannot be reached, a document the destination refuses, and how to read back what arrived.
 * The contract, through the core's own entry points (sl_sink_open, sl_sink_deliver,
 * sl_sink_close):
 *   - a batch of documents (more than one call's worth for a sink with max_docs) gives exactly
 *     one callback, never from inside deliver, with one result per document, all DELIVERED;
 *   - every document arrives intact and exactly once (read back from the destination itself);
 *   - a document the destination refuses is reported (REJECTED or RETRY, with an error and a
 *     detail), never DELIVERED and never dropped silently, while the others around it land;
 *   - a destination that cannot be reached gives RETRY for every document (never DELIVERED,
 *     never REJECTED: the documents are fine);
 *   - stop() while a delivery is in flight still gives its one callback, with one result per
 *     document (DELIVERED only for a write that had finished; never REJECTED);
 *   - an option the sink does not have is refused by sl_sink_open with SL_ECONFIG naming it.
 * Destinations: file, a temporary directory; http, a small HTTP/1.1 server thread here that
 * records each body and answers 400 to a body holding "refuse" (nginx cannot say what it
 * received); sqs, fauxqs from tests/services, found through SQS_ENDPOINT (without it the sqs
 * rows are skipped, or fail under CI=true), a fresh queue per test, read back with
 * ReceiveMessage; kafka, librdkafka's mock cluster in this process (the broker tests/services
 * runs as a process), a fresh cluster per test, read back with a consumer. The loop is driven
 * with test_run_until to a condition with a deadline; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "sl_adapters.h"

#if SL_HAVE_KAFKA
#include "kafka_mock.h"
#endif
#if SL_HAVE_REDIS
#include "redis_server.h"
#endif

#include "alloc.h"
#include "buf.h"
#include "helpers.h"
#include "http_peer.h"
#include "httpc.h"
#include "opt.h"
#include "sink.h"

#define DEADLINE_MS 20000
#define N_BATCH     12 /* more than one SendMessageBatch */
#define MAX_BACK    64

struct cfx;

/* One sink's part in the suite. */
struct conf_sink {
    const char *name; /* the sink's name: sl_sink_all() must have it */
    /* Brings a fresh destination up; fills f->dest (and f->opts when the sink needs some). */
    void (*up)(struct cfx *f);
    /* Fills f->dest (and f->opts) with a destination of this kind that cannot be reached. */
    void (*unreachable)(struct cfx *f);
    /* Reads back every document that arrived at f->dest (want: how many are expected, so a
     * destination that delivers asynchronously can be waited for, with a deadline). Returns
     * how many, bodies into ret (owned: free()). */
    int (*read_back)(struct cfx *f, int want, char **ret, size_t *ret_len, int max);
    /* Makes a document the destination refuses into b. */
    void (*refused)(struct cfx *f, struct sl_buf *b);
    /* Fills f->dest with a destination that takes documents and never answers (NULL: the
     * sink's writes finish on their own, as the file sink's do; then up is used). */
    void (*hanging)(struct cfx *f);
    void (*down)(struct cfx *f);
};

struct cfx {
    const struct conf_sink *cs;
    uv_loop_t loop;
    struct sl_httpc *httpc;
    struct sl_clock_fake clock;
    struct sl_sink_env env;
    const struct sl_sink_ops *ops;
    void *ctx;
    char dest[600];
    const char *opts; /* JSON of the sink's options, or NULL */
    char *tmp;
    struct srv *srv;
    char *queue_url; /* sqs */
    int hang_fd;     /* a listening socket nothing accepts from, or -1 */
#if SL_HAVE_KAFKA
    rd_kafka_t *mock_rk; /* kafka: owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    struct sl_strmap cluster;
#endif
#if SL_HAVE_REDIS
    struct test_redis redis; /* redis: a server of this test's own */
#endif
};

/* ---- file ---- */

static void file_up(struct cfx *f)
{
    (void)snprintf(f->dest, sizeof(f->dest), "file://%s/out", f->tmp);
}

static void file_unreachable(struct cfx *f)
{
    char plain[512];
    (void)snprintf(plain, sizeof(plain), "%s/plain", f->tmp);
    test_write_file(plain, "w", "x", 1); /* a file where the directory would have to be */
    (void)snprintf(f->dest, sizeof(f->dest), "file://%s/sub", plain);
}

static int file_read_back(struct cfx *f, int want, char **ret, size_t *ret_len, int max)
{
    (void)want;
    char dir[512];
    (void)snprintf(dir, sizeof(dir), "%s/out", f->tmp);
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[1024];
        (void)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        assert_non_null(fp);
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, fp)) > 0) {
            assert_true(n < max);
            assert_int_equal(line[len - 1], '\n');
            ret[n] = strndup(line, (size_t)len - 1);
            ret_len[n++] = (size_t)len - 1;
        }
        free(line);
        fclose(fp);
    }
    closedir(d);
    return n;
}

static void file_refused(struct cfx *f, struct sl_buf *b)
{
    (void)f;
    /* A document is one line: the file sink refuses a newline. */
    assert_int_equal(sl_buf_puts(b, "{\"refuse\":\n1}"), 0);
}

static void no_down(struct cfx *f)
{
    (void)f;
}

/* ---- http: a small server that records bodies ---- */

struct srv {
    struct http_peer http;
    pthread_mutex_t mu;
    int n;
    char *bodies[MAX_BACK];
    size_t lens[MAX_BACK];
};

/* Records the body and answers 200, or 400 to a body that says "refuse". */
static void
srv_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t len)
{
    (void)head;
    (void)head_len;
    struct srv *s = arg;
    bool refuse = false;
    for (size_t i = 0; i + 6 <= len && !refuse; i++) {
        refuse = memcmp(body + i, "refuse", 6) == 0;
    }
    if (!refuse) {
        pthread_mutex_lock(&s->mu);
        if (s->n < MAX_BACK) {
            s->bodies[s->n] = strndup(body, len);
            s->lens[s->n++] = len;
        }
        pthread_mutex_unlock(&s->mu);
    }
    char resp[256];
    int rn = snprintf(resp, sizeof(resp),
                      "HTTP/1.1 %s\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                      refuse ? "400 Bad Request" : "200 OK");
    (void)send(fd, resp, (size_t)rn, MSG_NOSIGNAL);
}

/* A loopback port nothing listens on: listened on, then closed. */
static int closed_port(void)
{
    int port;
    close(http_peer_listen(&port));
    return port;
}

static void http_up(struct cfx *f)
{
    struct srv *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    http_peer_start(&s->http, srv_answer, s);
    f->srv = s;
    (void)snprintf(f->dest, sizeof(f->dest), "http://127.0.0.1:%d/hook", s->http.port);
}

static void http_unreachable(struct cfx *f)
{
    (void)snprintf(f->dest, sizeof(f->dest), "http://127.0.0.1:%d/hook", closed_port());
}

static int http_read_back(struct cfx *f, int want, char **ret, size_t *ret_len, int max)
{
    (void)want; /* every POST was answered before its document's result came */
    struct srv *s = f->srv;
    pthread_mutex_lock(&s->mu);
    int n = s->n < max ? s->n : max;
    for (int i = 0; i < n; i++) {
        ret[i] = s->bodies[i];
        ret_len[i] = s->lens[i];
        s->bodies[i] = NULL;
    }
    s->n = 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void http_refused(struct cfx *f, struct sl_buf *b)
{
    (void)f;
    assert_int_equal(sl_buf_puts(b, "{\"refuse\":1}"), 0); /* the server answers 400 */
}

static void http_down(struct cfx *f)
{
    struct srv *s = f->srv;
    if (!s) {
        return;
    }
    http_peer_stop(&s->http);
    pthread_mutex_destroy(&s->mu);
    for (int i = 0; i < s->n; i++) {
        free(s->bodies[i]);
    }
    free(s);
    f->srv = NULL;
}

/* A loopback port that completes connections (the kernel's backlog) and never answers. */
static int hanging_port(struct cfx *f)
{
    int port;
    f->hang_fd = http_peer_listen(&port);
    return port;
}

static void http_hanging(struct cfx *f)
{
    (void)snprintf(f->dest, sizeof(f->dest), "http://127.0.0.1:%d/hook", hanging_port(f));
}

/* ---- sqs: fauxqs ---- */

static void sqs_up(struct cfx *f)
{
    (void)sqs_peer_endpoint(); /* skips without fauxqs */
    static int seq;
    char body[256];
    (void)snprintf(body, sizeof(body), "{\"QueueName\":\"conformance-%ld-%d\"}", (long)getpid(),
                   ++seq);
    cJSON *j = sqs_peer_call("CreateQueue", body, 200);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "QueueUrl");
    assert_true(cJSON_IsString(u));
    f->queue_url = strdup(u->valuestring);
    cJSON_Delete(j);
    (void)snprintf(f->dest, sizeof(f->dest), "%s", f->queue_url);
}

static void sqs_unreachable(struct cfx *f)
{
    (void)snprintf(f->dest, sizeof(f->dest), "http://127.0.0.1:%d/000000000000/nowhere",
                   closed_port());
}

static int sqs_read_back(struct cfx *f, int want, char **ret, size_t *ret_len, int max)
{
    (void)want; /* every message was accepted before its document's result came */
    int n = 0;
    for (;;) {
        struct sl_buf req;
        sl_buf_init(&req);
        assert_int_equal(sl_buf_printf(&req,
                                       "{\"QueueUrl\":\"%s\",\"MaxNumberOfMessages\":10,"
                                       "\"WaitTimeSeconds\":0,\"VisibilityTimeout\":60}",
                                       f->queue_url),
                         0);
        cJSON *j = sqs_peer_call("ReceiveMessage", req.data, 200);
        sl_buf_fini(&req);
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "Messages");
        int got = cJSON_GetArraySize(msgs);
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(m, "Body");
            assert_true(cJSON_IsString(b));
            assert_true(n < max);
            ret[n] = strdup(b->valuestring);
            ret_len[n++] = strlen(b->valuestring);
        }
        cJSON_Delete(j);
        if (got == 0) {
            return n;
        }
    }
}

static void sqs_hanging(struct cfx *f)
{
    (void)snprintf(f->dest, sizeof(f->dest), "http://127.0.0.1:%d/000000000000/q", hanging_port(f));
}

static void sqs_refused(struct cfx *f, struct sl_buf *b)
{
    (void)f;
    /* U+0001 is not a character SQS accepts in a message. */
    assert_int_equal(sl_buf_puts(b, "{\"x\":\"\x01\"}"), 0);
}

static void sqs_down(struct cfx *f)
{
    if (f->queue_url) {
        char body[700];
        (void)snprintf(body, sizeof(body), "{\"QueueUrl\":\"%s\"}", f->queue_url);
        cJSON_Delete(sqs_peer_call("DeleteQueue", body, 200));
        free(f->queue_url);
        f->queue_url = NULL;
    }
}

/* ---- kafka: librdkafka's mock cluster ---- */

#if SL_HAVE_KAFKA
static void kafka_up(struct cfx *f)
{
    f->mock_rk = kafka_mock_cluster("conformance", true, &f->mc);
    assert_int_equal(
        sl_strmap_put(&f->cluster, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(f->mc)),
        0);
    f->env.cluster = &f->cluster;
    (void)snprintf(f->dest, sizeof(f->dest), "kafka://conformance");
}

static void kafka_unreachable(struct cfx *f)
{
    char servers[64];
    (void)snprintf(servers, sizeof(servers), "127.0.0.1:%d", closed_port());
    assert_int_equal(sl_strmap_put(&f->cluster, "bootstrap.servers", servers), 0);
    f->env.cluster = &f->cluster;
    f->opts = "{\"delivery_timeout\":\"1s\"}"; /* not the 30 s default */
    (void)snprintf(f->dest, sizeof(f->dest), "kafka://conformance");
}

static int kafka_read_back(struct cfx *f, int want, char **ret, size_t *ret_len, int max)
{
    rd_kafka_t *c = kafka_mock_reader(f->mc, "conformance");
    int n = 0;
    /* Until want arrived, then until the topic ends (a message more would be a repeat). */
    for (int idle = 0; idle < (n < want ? 100 : 5);) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(c, 100);
        if (!msg) {
            idle++;
            continue;
        }
        if (!msg->err) {
            assert_true(n < max);
            ret[n] = strndup(msg->payload, msg->len);
            ret_len[n++] = msg->len;
            idle = 0;
        }
        rd_kafka_message_destroy(msg);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

static void kafka_refused(struct cfx *f, struct sl_buf *b)
{
    (void)f;
    /* Over the producer's message.max.bytes (1000000 by default). */
    assert_int_equal(sl_buf_reserve(b, 1100000), 0);
    assert_int_equal(sl_buf_puts(b, "{\"big\":\""), 0);
    while (b->len < 1100000) {
        assert_int_equal(sl_buf_puts(b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), 0);
    }
    assert_int_equal(sl_buf_puts(b, "\"}"), 0);
}

static void kafka_hanging(struct cfx *f)
{
    kafka_up(f);
    assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 1), 0);
}

static void kafka_down(struct cfx *f)
{
    sl_strmap_clear(&f->cluster, false);
    if (f->mock_rk) {
        rd_kafka_destroy(f->mock_rk);
        f->mock_rk = NULL;
    }
}
#endif

/* ---- redis: a redis-server of the test's own, a stream read back with XRANGE ---- */

#if SL_HAVE_REDIS
static void redis_up(struct cfx *f)
{
    test_redis_need();
    test_redis_start(&f->redis, 0, NULL);
    (void)snprintf(f->dest, sizeof(f->dest), "redis://127.0.0.1:%d/0/conformance", f->redis.port);
    f->opts = "{\"max_document_bytes\":\"64KB\"}";
}

static void redis_unreachable(struct cfx *f)
{
    (void)snprintf(f->dest, sizeof(f->dest), "redis://127.0.0.1:%d/0/conformance", closed_port());
}

/* The data field of every entry, in order (XRANGE's flat answer: id, field, value, ...). */
static int redis_read_back(struct cfx *f, int want, char **ret, size_t *ret_len, int max)
{
    (void)want; /* every XADD was answered before its document's result came */
    char *all = test_redis_cmd(&f->redis, "XRANGE conformance - +");
    assert_non_null(all);
    int n = 0;
    int field = 0;
    for (char *save = NULL, *line = strtok_r(all, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save), field++) {
        if (field % 3 == 2 && n < max) {
            ret[n] = strdup(line);
            ret_len[n] = strlen(line);
            n++;
        }
    }
    free(all);
    return n;
}

static void redis_refused(struct cfx *f, struct sl_buf *b)
{
    (void)f;
    /* Over the sink's max_document_bytes (64KB in redis_up). */
    while (b->len < 70000) {
        assert_int_equal(sl_buf_puts(b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), 0);
    }
}

static void redis_hanging(struct cfx *f)
{
    redis_up(f);
    test_redis_pause(&f->redis);
}

static void redis_down(struct cfx *f)
{
    test_redis_stop(&f->redis);
}
#endif

static const struct conf_sink conf_sinks[] = {
    {"file", file_up, file_unreachable, file_read_back, file_refused, NULL, no_down},
    {"http", http_up, http_unreachable, http_read_back, http_refused, http_hanging, http_down},
    {"sqs", sqs_up, sqs_unreachable, sqs_read_back, sqs_refused, sqs_hanging, sqs_down},
#if SL_HAVE_KAFKA
    {"kafka", kafka_up, kafka_unreachable, kafka_read_back, kafka_refused, kafka_hanging,
     kafka_down},
#endif
#if SL_HAVE_REDIS
    {"redis", redis_up, redis_unreachable, redis_read_back, redis_refused, redis_hanging,
     redis_down},
#endif
};

/* ---- the fixture ---- */

static int setup(void **state)
{
    struct cfx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->cs = *state;
    f->hang_fd = -1;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->httpc), 0);
    sl_clock_fake_init(&f->clock, 1000, 1709251200000);
    f->env.loop = &f->loop;
    f->env.httpc = f->httpc;
    f->env.clock = &f->clock.clock;
    f->env.inst = "conformance";
    f->env.region = "us-east-1";
    f->tmp = test_tmpdir();
    /* Requests unsigned, wherever the machine's credentials are. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    f->ops = NULL;
    size_t n = 0;
    const struct sl_sink_ops *const *all = sl_sink_all(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i]->name, f->cs->name) == 0) {
            f->ops = all[i];
        }
    }
    assert_non_null(f->ops);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct cfx *f = *state;
    sl_sink_close(f->ops, f->ctx);
    f->cs->down(f);
    if (f->hang_fd >= 0) {
        close(f->hang_fd);
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

static void open_sink(struct cfx *f)
{
    char errbuf[512] = "";
    cJSON *o = f->opts ? cJSON_Parse(f->opts) : NULL;
    int r = sl_sink_open(f->ops, &f->env, f->dest, o, "conformance", "$.sink", &f->ctx, errbuf,
                         sizeof(errbuf));
    cJSON_Delete(o);
    if (r < 0) {
        fail_msg("%s: open %s: %s", f->cs->name, f->dest, errbuf);
    }
}

struct outcome {
    int calls;
    size_t n;
    struct sl_sink_result res[N_BATCH];
    char detail[N_BATCH][256];
};

static void on_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct outcome *o = arg;
    o->calls++;
    o->n = n;
    for (size_t i = 0; i < n && i < N_BATCH; i++) {
        o->res[i] = results[i];
        (void)snprintf(o->detail[i], sizeof(o->detail[i]), "%s",
                       results[i].detail ? results[i].detail : "");
    }
}

static bool answered(void *arg)
{
    return ((struct outcome *)arg)->calls > 0;
}

/* Delivers docs[0..n) and waits for the one callback. */
static void deliver(struct cfx *f, const struct sl_sink_doc *docs, size_t n, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    assert_int_equal(sl_sink_deliver(f->ops, f->ctx, docs, n, on_delivered, o), 0);
    assert_int_equal(o->calls, 0); /* never from inside deliver */
    assert_true(test_run_until(&f->loop, answered, o, DEADLINE_MS));
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(o->calls, 1);
    assert_int_equal(o->n, n);
}

static void make_body(char *out, size_t cap, const struct cfx *f, int i)
{
    (void)snprintf(out, cap,
                   "{\"sink\":\"%s\",\"pid\":%ld,\"doc\":%d,\"text\":\"caf\xc3\xa9 \\\"q\\\"\"}",
                   f->cs->name, (long)getpid(), i);
}

/* Each of want[0..n) arrived exactly once, byte for byte, and nothing else did. */
static void arrived_once(struct cfx *f, char **want, size_t n)
{
    char *got[MAX_BACK];
    size_t got_len[MAX_BACK];
    int k = f->cs->read_back(f, (int)n, got, got_len, MAX_BACK);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k; j++) {
            seen += got_len[j] == strlen(want[i]) && memcmp(got[j], want[i], got_len[j]) == 0;
        }
        if (seen != 1) {
            fail_msg("%s: document %zu arrived %d times: %s", f->cs->name, i, seen, want[i]);
        }
    }
    assert_int_equal(k, (int)n);
    for (int j = 0; j < k; j++) {
        free(got[j]);
    }
}

/* ---- the contract ---- */

/* A batch: one callback with one result per document, all DELIVERED, and every document at the
 * destination intact, exactly once. */
static void test_conformance_batch_delivered_intact(void **state)
{
    struct cfx *f = *state;
    f->cs->up(f);
    open_sink(f);
    static char bodies[N_BATCH][160];
    char *want[N_BATCH];
    struct sl_sink_doc docs[N_BATCH];
    for (int i = 0; i < N_BATCH; i++) {
        make_body(bodies[i], sizeof(bodies[i]), f, i);
        want[i] = bodies[i];
        docs[i] = (struct sl_sink_doc){
            .body = bodies[i], .len = strlen(bodies[i]), .time_ms = 1709251200000 + i};
    }
    struct outcome o;
    deliver(f, docs, N_BATCH, &o);
    for (int i = 0; i < N_BATCH; i++) {
        if (o.res[i].outcome != SL_SINK_DELIVERED || o.res[i].err != 0) {
            fail_msg("%s: document %d: outcome %d err %d %s", f->cs->name, i, o.res[i].outcome,
                     o.res[i].err, o.detail[i]);
        }
    }
    arrived_once(f, want, N_BATCH);
}

/* A document the destination refuses is reported (not DELIVERED, with an error and a detail)
 * in its own place, and the documents around it land. */
static void test_conformance_refused_reported(void **state)
{
    struct cfx *f = *state;
    f->cs->up(f);
    open_sink(f);
    char ok0[160];
    char ok1[160];
    make_body(ok0, sizeof(ok0), f, 0);
    make_body(ok1, sizeof(ok1), f, 1);
    struct sl_buf bad;
    sl_buf_init(&bad);
    f->cs->refused(f, &bad);
    struct sl_sink_doc docs[3] = {
        {.body = ok0, .len = strlen(ok0), .time_ms = 1709251200000},
        {.body = bad.data, .len = bad.len, .time_ms = 1709251200000},
        {.body = ok1, .len = strlen(ok1), .time_ms = 1709251200000},
    };
    struct outcome o;
    deliver(f, docs, 3, &o);
    assert_int_equal(o.res[0].outcome, SL_SINK_DELIVERED);
    assert_int_equal(o.res[2].outcome, SL_SINK_DELIVERED);
    if (o.res[1].outcome != SL_SINK_REJECTED && o.res[1].outcome != SL_SINK_RETRY) {
        fail_msg("%s: the refused document's outcome is %d", f->cs->name, o.res[1].outcome);
    }
    assert_true(o.res[1].err < 0);
    assert_true(o.detail[1][0] != '\0');
    char *want[2] = {ok0, ok1};
    arrived_once(f, want, 2);
    sl_buf_fini(&bad);
}

/* A destination that cannot be reached: every document RETRY, with an error and a detail. */
static void test_conformance_unreachable_retry(void **state)
{
    struct cfx *f = *state;
    f->cs->unreachable(f);
    open_sink(f);
    char b0[160];
    char b1[160];
    make_body(b0, sizeof(b0), f, 0);
    make_body(b1, sizeof(b1), f, 1);
    struct sl_sink_doc docs[2] = {
        {.body = b0, .len = strlen(b0), .time_ms = 1709251200000},
        {.body = b1, .len = strlen(b1), .time_ms = 1709251200000},
    };
    struct outcome o;
    deliver(f, docs, 2, &o);
    for (int i = 0; i < 2; i++) {
        if (o.res[i].outcome != SL_SINK_RETRY || o.res[i].err >= 0 || !o.detail[i][0]) {
            fail_msg("%s: document %d: outcome %d err %d '%s', want RETRY", f->cs->name, i,
                     o.res[i].outcome, o.res[i].err, o.detail[i]);
        }
    }
}

/* stop() while a delivery is in flight: the callback still comes, once, with one result per
 * document, each either DELIVERED (a write that had finished) or not with an error: nothing is
 * lost and nothing is reported twice. Against a destination that never answers, none is
 * DELIVERED. */
static void test_conformance_stop_answers(void **state)
{
    struct cfx *f = *state;
    if (f->cs->hanging) {
        f->cs->hanging(f);
    } else {
        f->cs->up(f);
    }
    open_sink(f);
    char b0[160];
    char b1[160];
    char b2[160];
    make_body(b0, sizeof(b0), f, 0);
    make_body(b1, sizeof(b1), f, 1);
    make_body(b2, sizeof(b2), f, 2);
    struct sl_sink_doc docs[3] = {
        {.body = b0, .len = strlen(b0), .time_ms = 1709251200000},
        {.body = b1, .len = strlen(b1), .time_ms = 1709251200000},
        {.body = b2, .len = strlen(b2), .time_ms = 1709251200000},
    };
    struct outcome o = {0};
    assert_int_equal(sl_sink_deliver(f->ops, f->ctx, docs, 3, on_delivered, &o), 0);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT); /* the requests on their way */
    assert_int_equal(o.calls, 0);
    f->ops->stop(f->ctx);
    assert_true(test_run_until(&f->loop, answered, &o, DEADLINE_MS));
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.n, 3);
    for (int i = 0; i < 3; i++) {
        bool ok = o.res[i].outcome == SL_SINK_DELIVERED
                      ? o.res[i].err == 0
                      : o.res[i].err < 0 && o.res[i].outcome != SL_SINK_REJECTED;
        if (!ok || (f->cs->hanging && o.res[i].outcome == SL_SINK_DELIVERED)) {
            fail_msg("%s: document %d after stop: outcome %d err %d '%s'", f->cs->name, i,
                     o.res[i].outcome, o.res[i].err, o.detail[i]);
        }
    }
}

/* An option the sink does not have: SL_ECONFIG naming it, nothing opened. */
static void test_conformance_unknown_option(void **state)
{
    struct cfx *f = *state;
    f->cs->unreachable(f); /* no I/O is needed to refuse it */
    cJSON *o = cJSON_Parse("{\"no_such_option\":1}");
    char errbuf[512] = "";
    void *ctx = NULL;
    assert_int_equal(sl_sink_open(f->ops, &f->env, f->dest, o, "conformance", "$.sink", &ctx,
                                  errbuf, sizeof(errbuf)),
                     SL_ECONFIG);
    assert_null(ctx);
    assert_non_null(strstr(errbuf, "no_such_option"));
    cJSON_Delete(o);
}

#define CONFORMANCE_TEST(t, i) \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, (void *)&conf_sinks[i])
#define CONFORMANCE_TESTS(i)                                      \
    CONFORMANCE_TEST(test_conformance_batch_delivered_intact, i), \
        CONFORMANCE_TEST(test_conformance_refused_reported, i),   \
        CONFORMANCE_TEST(test_conformance_unreachable_retry, i),  \
        CONFORMANCE_TEST(test_conformance_stop_answers, i),       \
        CONFORMANCE_TEST(test_conformance_unknown_option, i)

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Every sink of this build has a row: a new sink cannot skip the suite. */
    size_t n = 0;
    const struct sl_sink_ops *const *all = sl_sink_all(&n);
    int missing = 0;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < SL_ARRAY_LEN(conf_sinks); k++) {
            found = found || strcmp(conf_sinks[k].name, all[i]->name) == 0;
        }
        if (!found) {
            fprintf(stderr,
                    "sink %s has no row in conf_sinks (tests/unit/test_sink_conformance.c)\n",
                    all[i]->name);
            missing++;
        }
    }
    if (missing) {
        return 1;
    }
    int failed = 0;
    const struct CMUnitTest file[] = {CONFORMANCE_TESTS(0)};
    const struct CMUnitTest http[] = {CONFORMANCE_TESTS(1)};
    const struct CMUnitTest sqs[] = {CONFORMANCE_TESTS(2)};
    failed += cmocka_run_group_tests_name("conformance: file", file, NULL, NULL);
    failed += cmocka_run_group_tests_name("conformance: http", http, NULL, NULL);
    failed += cmocka_run_group_tests_name("conformance: sqs", sqs, NULL, NULL);
#if SL_HAVE_KAFKA
    const struct CMUnitTest kafka[] = {CONFORMANCE_TESTS(3)};
    failed += cmocka_run_group_tests_name("conformance: kafka", kafka, NULL, NULL);
#endif
    curl_global_cleanup();
    return failed ? 1 : 0;
}

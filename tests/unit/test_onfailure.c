/* SPDX-License-Identifier: Apache-2.0 */
/* test_onfailure.c: the on-failure path (onfailure.c) as the carry drives it, against the real
 * SQS sink and a loopback SQS endpoint (http_peer.c) that records every entry it is sent and
 * answers each as the test says. It checks that the sink's capabilities choose the shape of a
 * write (one invocation record for all the records, or one per record with the record's key),
 * that a write is one delivery however many documents it has, and that a document the
 * destination did not take is delivered again on its own, never the ones it took, while the
 * write reports done only once every document landed (the carry marks the records done, and the
 * checkpoint passes them, only then). The loop runs to a condition with a deadline; no
 * sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "batcher.h"
#include "helpers.h"
#include "http_peer.h"
#include "httpc.h"
#include "onfailure.h"
#include "partition.h"
#include "sink.h"
#include "source.h"

#define DEADLINE_MS 10000
#define N_RECS      5
#define MAX_ENTRIES 64

/* ---- the source: N_RECS records of one partition, record i keyed "k<i>" ---- */

static int
src_encode_record(void *ctx, struct sl_part *part, const struct sl_record *rec, struct sl_buf *out)
{
    (void)ctx;
    return sl_buf_printf(out, "{\"seq\":%llu,\"data\":\"%.*s\"}",
                         (unsigned long long)sl_recq_pos_u64(&part->q, rec, 0), (int)rec->len,
                         sl_recq_data(&part->q, rec));
}

static int
src_format_pos(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    int n = snprintf(buf, len, "%llu", (unsigned long long)sl_recq_pos_u64(&part->q, rec, 0));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static size_t
src_record_key(void *ctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key)
{
    static const char *const keys[N_RECS] = {"k0", "k1", "k2", "k3", "k4"};
    (void)ctx;
    *ret_key = keys[sl_recq_pos_u64(&part->q, rec, 0)];
    return strlen(*ret_key);
}

static const struct sl_event_format src_event = {
    .name = "test",
    .open = "{\"Records\":[",
    .sep = ",",
    .close = "]}",
};

/* ---- the SQS endpoint ---- */

struct entry {
    int request; /* which request carried it, from 1 */
    char body[2048];
    char dedup[32];
};

struct peer {
    struct http_peer http;
    pthread_mutex_t mu;
    int n_reqs;
    char target[64]; /* the last request's X-Amz-Target */
    struct entry entries[MAX_ENTRIES];
    int n_entries;
    int fail_entry; /* SendMessageBatch: the Id answered Failed in the first request, or -1 */
};

static void peer_keep(struct peer *p, const cJSON *body, const cJSON *dedup)
{
    if (p->n_entries == MAX_ENTRIES) {
        return;
    }
    struct entry *e = &p->entries[p->n_entries++];
    e->request = p->n_reqs;
    (void)snprintf(e->body, sizeof(e->body), "%s", cJSON_IsString(body) ? body->valuestring : "");
    (void)snprintf(e->dedup, sizeof(e->dedup), "%s",
                   cJSON_IsString(dedup) ? dedup->valuestring : "");
}

/* Keeps every message of the request and answers SendMessage with success, SendMessageBatch
 * with each entry Successful except fail_entry in the first request (a RETRY: not the sender's
 * fault). */
static void
peer_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct peer *p = arg;
    cJSON *j = cJSON_ParseWithLength(body, body_len);
    const char *t = http_peer_header(head, head_len, "X-Amz-Target");
    struct sl_buf out;
    sl_buf_init(&out);
    int r = 0;
    pthread_mutex_lock(&p->mu);
    p->n_reqs++;
    (void)snprintf(p->target, sizeof(p->target), "%.*s", t ? (int)strcspn(t, "\r") : 0, t ? t : "");
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(j, "Entries");
    if (!entries) {
        peer_keep(p, cJSON_GetObjectItemCaseSensitive(j, "MessageBody"),
                  cJSON_GetObjectItemCaseSensitive(j, "MessageDeduplicationId"));
        r |= sl_buf_puts(&out, "{\"MessageId\":\"m\"}");
    } else {
        r |= sl_buf_puts(&out, "{\"Successful\":[");
        const char *sep = "";
        const cJSON *failed = NULL;
        for (const cJSON *e = entries->child; e; e = e->next) {
            const char *id = cJSON_GetObjectItemCaseSensitive(e, "Id")->valuestring;
            if (p->n_reqs == 1 && strtol(id, NULL, 10) == p->fail_entry) {
                failed = e;
                continue;
            }
            peer_keep(p, cJSON_GetObjectItemCaseSensitive(e, "MessageBody"),
                      cJSON_GetObjectItemCaseSensitive(e, "MessageDeduplicationId"));
            r |= sl_buf_printf(&out, "%s{\"Id\":\"%s\",\"MessageId\":\"m%s\"}", sep, id, id);
            sep = ",";
        }
        r |= sl_buf_puts(&out, "],\"Failed\":[");
        if (failed) {
            r |= sl_buf_printf(&out,
                               "{\"Id\":\"%s\",\"SenderFault\":false,\"Code\":\"InternalError\","
                               "\"Message\":\"try again\"}",
                               cJSON_GetObjectItemCaseSensitive(failed, "Id")->valuestring);
        }
        r |= sl_buf_puts(&out, "]}");
    }
    pthread_mutex_unlock(&p->mu);
    cJSON_Delete(j);
    assert_int_equal(r, 0);
    char hdr[256];
    int n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     out.len);
    (void)http_peer_send_all(fd, hdr, (size_t)n);
    (void)http_peer_send_all(fd, out.data, out.len);
    sl_buf_fini(&out);
}

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;
    struct sl_httpc *httpc;
    struct sl_clock_fake clock;
    struct sl_source_ops ops;
    struct sl_event_format event;
    struct sl_part *part;
    struct sl_batch_ref refs[N_RECS];
    struct peer peer;
    char url[128];
    struct sl_onfail *of;
    struct sl_onfail_write *w;
    struct sl_buf scratch;
    /* the write's answers */
    int n_answers;
    int err;
    char detail[256];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_ENDPOINT_URL_SQS");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->httpc), 0);
    sl_clock_fake_init(&f->clock, 1000, 1709251200000); /* 2024-03-01T00:00:00Z */
    f->ops = (struct sl_source_ops){
        .abi = SL_SOURCE_ABI,
        .name = "test",
        .scheme = "test://",
        .event = &src_event,
        .encode_record = src_encode_record,
        .compare_pos = sl_recq_pos_compare_u64,
        .format_pos = src_format_pos,
        .format_item_id = src_format_pos,
        .record_key = src_record_key,
    };
    sl_source_ops_complete(&f->ops, &f->event);
    f->part = sl_part_new("shard-0", "shard-0");
    assert_non_null(f->part);
    for (uint64_t i = 0; i < N_RECS; i++) {
        char data[8];
        int n = snprintf(data, sizeof(data), "r%llu", (unsigned long long)i);
        assert_int_equal(
            sl_recq_push(&f->part->q, data, (uint32_t)n, NULL, 0, &i, sizeof(i), 1000, 0), 0);
    }
    for (size_t i = 0; i < N_RECS; i++) {
        f->refs[i] = (struct sl_batch_ref){f->part, sl_recq_at(&f->part->q, i)};
    }
    pthread_mutex_init(&f->peer.mu, NULL);
    f->peer.fail_entry = -1;
    http_peer_start(&f->peer.http, peer_answer, &f->peer);
    (void)snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/123456789012/dlq.fifo",
                   f->peer.http.port);
    sl_buf_init(&f->scratch);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_onfail_write_free(f->w);
    sl_onfail_free(f->of);
    sl_httpc_free(f->httpc);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    http_peer_stop(&f->peer.http);
    pthread_mutex_destroy(&f->peer.mu);
    sl_part_free(f->part);
    sl_buf_fini(&f->scratch);
    free(f);
    return 0;
}

static void on_written(void *arg, int err, const char *detail)
{
    struct fx *f = arg;
    f->n_answers++;
    f->err = err;
    (void)snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "");
}

static bool answered(void *arg)
{
    const struct fx *f = arg;
    return f->n_answers > 0;
}

/* Opens the path on f->url through sink (NULL: the sink that serves it). */
static void fx_open(struct fx *f, const struct sl_sink_ops *sink)
{
    struct sl_onfail_conf conf = {
        .url = f->url,
        .inst = "test",
        .loop = &f->loop,
        .httpc = f->httpc,
        .clock = &f->clock.clock,
        .region = "us-east-1",
        .ops = &f->ops,
        .function_name = "fn",
        .lim = {100, SL_BATCH_MAX_PAYLOAD_BYTES, 0},
        .seed = 7,
        .sink = sink,
    };
    char errbuf[512] = "";
    int r = sl_onfail_new(&conf, &f->of, errbuf, sizeof(errbuf));
    if (r != 0) {
        fail_msg("sl_onfail_new: %d %s", r, errbuf);
    }
    f->w = sl_onfail_write_new(f->of, on_written, f);
    assert_non_null(f->w);
}

/* Starts writing every record, as the carry does once the retries are used up, and waits for
 * the answer. */
static void fx_give_up(struct fx *f)
{
    struct sl_onfail_why why = {
        .condition = SL_FAILREC_RETRIES_EXHAUSTED,
        .response = SL_FAILREC_RESPONSE_OBJECT,
        .invoke_count = 3,
        .function_error = true,
    };
    f->n_answers = 0;
    assert_int_equal(sl_onfail_write_start(f->w, f->refs, N_RECS, &why,
                                           "5 records of shard-0 from 0 to 4", &f->scratch),
                     0);
    assert_true(test_run_until(&f->loop, answered, f, DEADLINE_MS));
    assert_int_equal(f->n_answers, 1);
    assert_int_equal(sl_onfail_in_flight(f->of), 0);
}

/* The entries the peer kept, as a copy. */
static int peer_entries(struct fx *f, struct entry *out, int *ret_reqs)
{
    pthread_mutex_lock(&f->peer.mu);
    int n = f->peer.n_entries;
    memcpy(out, f->peer.entries, (size_t)n * sizeof(*out));
    *ret_reqs = f->peer.n_reqs;
    pthread_mutex_unlock(&f->peer.mu);
    return n;
}

/* A destination that takes one document per record: the five records' documents go in one
 * SendMessageBatch, each its own record's invocation record with the record's key. The
 * destination fails one of them: the write is not done (the carry would keep the records from
 * the checkpoint), and the write delivered again carries that one document alone; in the end
 * each record's document arrived exactly once. */
static void test_onfailure_per_record_batch_retries_only_failed(void **state)
{
    struct fx *f = *state;
    /* The SQS sink (SendMessageBatch, up to 10 documents a call) as a per-record destination. */
    static struct sl_sink_ops per_record;
    per_record = sl_sink_sqs;
    per_record.one_doc_per_record = true;
    f->peer.fail_entry = 2;
    fx_open(f, &per_record);
    fx_give_up(f);
    assert_true(f->err < 0);
    assert_non_null(strstr(f->detail, "InternalError"));
    static struct entry got[MAX_ENTRIES];
    int reqs = 0;
    int n = peer_entries(f, got, &reqs);
    assert_int_equal(reqs, 1); /* one call carried the five documents */
    assert_string_equal(f->peer.target, "AmazonSQS.SendMessageBatch");
    assert_int_equal(n, N_RECS - 1);

    /* The carry backs off and writes again: only the document that failed goes. */
    assert_true(sl_onfail_write_failed(f->w, f->err, f->detail) >= 0);
    f->n_answers = 0;
    sl_onfail_write_again(f->w);
    assert_true(test_run_until(&f->loop, answered, f, DEADLINE_MS));
    assert_int_equal(f->err, 0);
    n = peer_entries(f, got, &reqs);
    assert_int_equal(reqs, 2);
    assert_int_equal(n, N_RECS);
    assert_int_equal(got[N_RECS - 1].request, 2);
    assert_string_equal(got[N_RECS - 1].dedup, "k2");

    /* Each record's document, exactly once: its key, its record's batch info and payload. */
    bool seen[N_RECS] = {false};
    for (int i = 0; i < n; i++) {
        int k = got[i].dedup[1] - '0';
        assert_true(got[i].dedup[0] == 'k' && k >= 0 && k < N_RECS);
        assert_false(seen[k]);
        seen[k] = true;
        cJSON *doc = cJSON_Parse(got[i].body);
        assert_non_null(doc);
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(doc, "requestContext");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(rc, "condition")->valuestring,
                            SL_FAILREC_RETRIES_EXHAUSTED);
        /* the SQS sink keeps no payload: the batch info alone, of that one record */
        assert_null(cJSON_GetObjectItemCaseSensitive(doc, "payload"));
        char *info = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "BatchInfo"));
        assert_non_null(strstr(info, "\"batchSize\":1"));
        cJSON_free(info);
        cJSON_Delete(doc);
    }
}

/* A destination that takes one document per batch (the SQS sink as it is): the five records
 * make one invocation record, sent in one call. */
static void test_onfailure_per_batch_one_document(void **state)
{
    struct fx *f = *state;
    fx_open(f, NULL);
    fx_give_up(f);
    assert_int_equal(f->err, 0);
    static struct entry got[MAX_ENTRIES];
    int reqs = 0;
    int n = peer_entries(f, got, &reqs);
    assert_int_equal(reqs, 1);
    assert_string_equal(f->peer.target, "AmazonSQS.SendMessage");
    assert_int_equal(n, 1);
    cJSON *doc = cJSON_Parse(got[0].body);
    assert_non_null(doc);
    char *info = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(doc, "BatchInfo"));
    assert_non_null(strstr(info, "\"batchSize\":5"));
    cJSON_free(info);
    cJSON_Delete(doc);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_onfailure_per_record_batch_retries_only_failed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_onfailure_per_batch_one_document, setup, teardown),
    };
    int r = cmocka_run_group_tests_name("onfailure", tests, NULL, NULL);
    curl_global_cleanup();
    return r;
}

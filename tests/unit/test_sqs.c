/* SPDX-License-Identifier: Apache-2.0 */
/* test_sqs.c: the SQS source's delete and visibility paths against a scripted SQS (http_peer): a
 * fake for what fauxqs cannot do, since fauxqs reports every DeleteMessageBatch entry, even a
 * bogus receipt handle, as deleted. The test stands in for the mapping (env callbacks that
 * record what the source reports) and checks the queue contract of source.h: each entry's
 * outcome read from the 200 answer, retriable ones retried with backoff, one report per lease
 * and never from inside queue_ack, batches of at most 10, and a release's visibility change.
 * Waits are test_run_until deadlines on the loop; nothing sleeps. */
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

#include "errlist.h"
#include "helpers.h"
#include "http_peer.h"
#include "opt.h"
#include "partition.h"
#include "source.h"

#define MSGS 16

/* The scripted server. */
struct srv {
    struct http_peer http;
    pthread_mutex_t mu;
    size_t n_msgs;        /* messages m0..m<n-1>, handed out by the receives in turn */
    size_t next_receive;  /* the next message a receive hands out */
    int attempts[MSGS];   /* delete entries seen per message */
    size_t del_sizes[16]; /* entries per DeleteMessageBatch */
    size_t n_del;
    char vis_handles[16][32];
    long vis_secs[16];
    size_t n_vis;
};

static void srv_reply(int fd, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     strlen(body));
    (void)http_peer_send_all(fd, head, (size_t)n);
    (void)http_peer_send_all(fd, body, strlen(body));
}

static int srv_msg_of(const char *handle)
{
    return strncmp(handle, "rh-", 3) == 0 ? (int)strtol(handle + 3, NULL, 10) : -1;
}

/* DeleteMessageBatch: m1 fails twice (SenderFault false) then succeeds, m2's handle is refused
 * (SenderFault true), m3 is never named in the answer, the others succeed. */
static char *srv_delete(struct srv *s, cJSON *req)
{
    cJSON *ans = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(ans, "Successful");
    cJSON *failed = cJSON_AddArrayToObject(ans, "Failed");
    const cJSON *e;
    size_t n = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(req, "Entries"))
    {
        n++;
        const char *id = cJSON_GetObjectItem(e, "Id")->valuestring;
        int m = srv_msg_of(cJSON_GetObjectItem(e, "ReceiptHandle")->valuestring);
        assert_true(m >= 0 && m < MSGS);
        int attempt = ++s->attempts[m];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "Id", id);
        if ((m == 1 && attempt <= 2) || m == 2) {
            cJSON_AddBoolToObject(r, "SenderFault", m == 2);
            cJSON_AddStringToObject(r, "Code", m == 2 ? "ReceiptHandleIsInvalid" : "InternalError");
            cJSON_AddItemToArray(failed, r);
        } else if (m == 3) {
            cJSON_Delete(r);
        } else {
            cJSON_AddItemToArray(ok, r);
        }
    }
    if (s->n_del < 16) {
        s->del_sizes[s->n_del++] = n;
    }
    char *out = cJSON_PrintUnformatted(ans);
    cJSON_Delete(ans);
    return out;
}

static char *srv_receive(struct srv *s, cJSON *req)
{
    int max = cJSON_GetObjectItem(req, "MaxNumberOfMessages")->valueint;
    cJSON *ans = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(ans, "Messages");
    for (int k = 0; k < max && s->next_receive < s->n_msgs; k++, s->next_receive++) {
        char b[64];
        cJSON *m = cJSON_CreateObject();
        (void)snprintf(b, sizeof(b), "m%zu", s->next_receive);
        cJSON_AddStringToObject(m, "MessageId", b);
        (void)snprintf(b, sizeof(b), "rh-%zu", s->next_receive);
        cJSON_AddStringToObject(m, "ReceiptHandle", b);
        cJSON_AddStringToObject(m, "Body", "hello");
        cJSON_AddStringToObject(m, "MD5OfBody", "5d41402abc4b2a76b9719d911017c592");
        cJSON *a = cJSON_AddObjectToObject(m, "Attributes");
        cJSON_AddStringToObject(a, "ApproximateReceiveCount", "1");
        cJSON_AddStringToObject(a, "SentTimestamp", "1700000000000");
        cJSON_AddItemToArray(msgs, m);
    }
    char *out = cJSON_PrintUnformatted(ans);
    cJSON_Delete(ans);
    return out;
}

static char *srv_visibility(struct srv *s, cJSON *req)
{
    cJSON *ans = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(ans, "Successful");
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(req, "Entries"))
    {
        if (s->n_vis < 16) {
            (void)snprintf(s->vis_handles[s->n_vis], sizeof(s->vis_handles[0]), "%s",
                           cJSON_GetObjectItem(e, "ReceiptHandle")->valuestring);
            s->vis_secs[s->n_vis++] = (long)cJSON_GetObjectItem(e, "VisibilityTimeout")->valueint;
        }
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "Id", cJSON_GetObjectItem(e, "Id")->valuestring);
        cJSON_AddItemToArray(ok, r);
    }
    char *out = cJSON_PrintUnformatted(ans);
    cJSON_Delete(ans);
    return out;
}

static void
srv_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct srv *s = arg;
    const char *target = http_peer_header(head, head_len, "X-Amz-Target");
    assert_non_null(target);
    cJSON *req = cJSON_ParseWithLength(body, body_len);
    assert_non_null(req);
    char *out = NULL;
    pthread_mutex_lock(&s->mu);
    if (strncmp(target, "AmazonSQS.GetQueueAttributes", 28) == 0) {
        out = strdup("{\"Attributes\":{\"FifoQueue\":\"false\",\"VisibilityTimeout\":\"30\"}}");
    } else if (strncmp(target, "AmazonSQS.ReceiveMessage", 24) == 0) {
        out = srv_receive(s, req);
    } else if (strncmp(target, "AmazonSQS.DeleteMessageBatch", 28) == 0) {
        out = srv_delete(s, req);
    } else if (strncmp(target, "AmazonSQS.ChangeMessageVisibilityBatch", 38) == 0) {
        out = srv_visibility(s, req);
    } else {
        fail_msg("unexpected %.40s", target);
    }
    pthread_mutex_unlock(&s->mu);
    cJSON_Delete(req);
    srv_reply(fd, out);
    free(out);
}

/* The mapping's side. */
struct report {
    uint64_t lease;
    enum sl_queue_report what;
    int err;
};

struct h {
    struct srv srv;
    uv_loop_t loop;
    const struct sl_source_ops *ops;
    void *ctx;
    char arn[128];
    struct sl_source_env env;
    struct sl_part *part;
    bool woken;
    struct report reports[64];
    size_t n_reports;
};

static int h_part_add(void *owner, const char *id, const char *name, struct sl_part **ret)
{
    struct h *h = owner;
    assert_null(h->part);
    h->part = sl_part_new(id, name);
    assert_non_null(h->part);
    *ret = h->part;
    return 0;
}

static void h_part_wake(void *owner, struct sl_part *part)
{
    struct h *h = owner;
    assert_ptr_equal(part, h->part);
    h->woken = true;
}

static void h_queue_report(
    void *owner, struct sl_part *part, uint64_t lease, enum sl_queue_report what, int err)
{
    struct h *h = owner;
    assert_ptr_equal(part, h->part);
    assert_true(h->n_reports < 64);
    h->reports[h->n_reports++] = (struct report){lease, what, err};
}

static bool h_has_part(void *arg)
{
    return ((struct h *)arg)->part != NULL;
}

static bool h_was_woken(void *arg)
{
    return ((struct h *)arg)->woken;
}

static size_t h_want_reports;

static bool h_reported_and_idle(void *arg)
{
    struct h *h = arg;
    return h->n_reports >= h_want_reports && h->ops->queue_idle(h->ctx);
}

static bool h_idle(void *arg)
{
    struct h *h = arg;
    return h->ops->queue_idle(h->ctx);
}

static struct h *h_start(size_t n_msgs)
{
    struct h *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->srv.mu, NULL);
    h->srv.n_msgs = n_msgs;
    http_peer_start_keep_alive(&h->srv.http, srv_answer, &h->srv);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    (void)snprintf(h->arn, sizeof(h->arn), "http://127.0.0.1:%d/000000000000/q", h->srv.http.port);
    h->ops = sl_source_for_arn(h->arn);
    assert_non_null(h->ops);
    assert_string_equal(h->ops->name, "sqs");
    h->ctx = calloc(1, h->ops->ctx_size);
    assert_non_null(h->ctx);
    cJSON *opts = cJSON_Parse("{\"wait_time\":0,\"delete_attempts\":3}");
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_opt_target t = {.table = h->ops->opts, .base = h->ctx};
    assert_int_equal(sl_opt_apply(&t, 1, opts, "test", "$", &errs), 0);
    sl_errlist_fini(&errs);
    cJSON_Delete(opts);
    char err[256] = "";
    assert_int_equal(h->ops->check(h->ctx, h->arn, err, sizeof(err)), 0);
    h->env = (struct sl_source_env){
        .loop = &h->loop,
        .clock = &sl_clock_system,
        .inst = "test",
        .region = "us-east-1",
        .arn = h->arn,
        .max_records_buffered = 1000,
        .max_bytes_buffered = 1 << 20,
        .owner = h,
        .part_add = h_part_add,
        .part_wake = h_part_wake,
        .queue_report = h_queue_report,
    };
    assert_int_equal(h->ops->init(h->ctx, &h->env, err, sizeof(err)), 0);
    assert_int_equal(h->ops->start(h->ctx), 0);
    assert_true(test_run_until(&h->loop, h_has_part, h, 5000));
    return h;
}

/* Receives want messages; returns their leases by message number (m<i> → leases[i]). */
static void h_receive(struct h *h, size_t want, uint64_t *leases)
{
    size_t got = 0;
    for (int turn = 0; turn < 20 && got < want; turn++) {
        h->woken = false;
        int r = h->ops->fetch(h->ctx, h->part, want - got, 1 << 20);
        assert_true(r >= 0);
        if (r == 0) { /* the poll runs: part_wake when messages came */
            assert_true(test_run_until(&h->loop, h_was_woken, h, 5000));
        }
        got += (size_t)r;
    }
    assert_int_equal(got, want);
    for (size_t i = 0; i < sl_recq_count(&h->part->q); i++) {
        const struct sl_record *rec = sl_recq_at(&h->part->q, i);
        char id[32];
        assert_int_equal(h->ops->format_item_id(h->ctx, h->part, rec, id, sizeof(id)), 0);
        leases[strtol(id + 1, NULL, 10)] = sl_queue_rec_lease(rec);
    }
    sl_recq_clear(&h->part->q);
}

static void h_stop(struct h *h)
{
    h->ops->stop(h->ctx);
    h->ops->part_release(h->ctx, h->part);
    h->ops->fini(h->ctx);
    sl_opt_free(h->ops->opts, h->ctx);
    free(h->ctx);
    sl_part_free(h->part);
    test_close_all(&h->loop);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    http_peer_stop(&h->srv.http);
    pthread_mutex_destroy(&h->srv.mu);
    free(h);
}

static const struct report *h_report_of(const struct h *h, uint64_t lease, size_t *ret_count)
{
    const struct report *r = NULL;
    *ret_count = 0;
    for (size_t i = 0; i < h->n_reports; i++) {
        if (h->reports[i].lease == lease) {
            r = &h->reports[i];
            (*ret_count)++;
        }
    }
    return r;
}

static void test_sqs_delete_reads_each_entry(void **state)
{
    (void)state;
    struct h *h = h_start(5);
    uint64_t leases[5] = {0};
    h_receive(h, 5, leases);
    assert_int_equal(h->ops->queue_ack(h->ctx, h->part, leases, 5), 0);
    assert_int_equal(h->n_reports, 0); /* never from inside the call */
    h_want_reports = 5;
    assert_true(test_run_until(&h->loop, h_reported_and_idle, h, 10000));
    assert_int_equal(h->n_reports, 5);
    struct {
        enum sl_queue_report what;
        int err;
        int attempts;
    } want[5] = {
        {SL_QUEUE_ACKED, 0, 1},
        {SL_QUEUE_ACKED, 0, 3},                 /* failed twice, SenderFault false: retried */
        {SL_QUEUE_ACK_FAILED, SL_ENOTFOUND, 1}, /* refused handle: never retried */
        {SL_QUEUE_ACK_FAILED, SL_ETIMEDOUT, 3}, /* never answered: retried delete_attempts times */
        {SL_QUEUE_ACKED, 0, 1},
    };
    for (size_t i = 0; i < 5; i++) {
        size_t n = 0;
        const struct report *r = h_report_of(h, leases[i], &n);
        assert_int_equal(n, 1);
        assert_int_equal(r->what, want[i].what);
        assert_int_equal(r->err, want[i].err);
        assert_int_equal(h->srv.attempts[i], want[i].attempts);
    }
    assert_int_equal(h->srv.del_sizes[0], 5); /* the first request carried every entry */
    h_stop(h);
}

static void test_sqs_delete_batches_of_ten(void **state)
{
    (void)state;
    struct h *h = h_start(16);
    uint64_t leases[16] = {0};
    h_receive(h, 16, leases);
    /* m4..m15: twelve leases, all deleted at once */
    assert_int_equal(h->ops->queue_ack(h->ctx, h->part, leases + 4, 12), 0);
    h_want_reports = 12;
    assert_true(test_run_until(&h->loop, h_reported_and_idle, h, 10000));
    assert_int_equal(h->srv.n_del, 2);
    assert_int_equal(h->srv.del_sizes[0], 10);
    assert_int_equal(h->srv.del_sizes[1], 2);
    for (size_t i = 4; i < 16; i++) {
        size_t n = 0;
        const struct report *r = h_report_of(h, leases[i], &n);
        assert_int_equal(n, 1);
        assert_int_equal(r->what, SL_QUEUE_ACKED);
    }
    h_stop(h);
}

static void test_sqs_release_returns_visibility(void **state)
{
    (void)state;
    struct h *h = h_start(3);
    uint64_t leases[3] = {0};
    h_receive(h, 3, leases);
    assert_int_equal(h->ops->queue_release(h->ctx, h->part, &leases[0], 1, 0), 0);
    assert_int_equal(h->ops->queue_release(h->ctx, h->part, &leases[1], 1, 1500), 0);
    assert_int_equal(
        h->ops->queue_release(h->ctx, h->part, &leases[2], 1, SL_QUEUE_KEEP_VISIBILITY), 0);
    assert_false(h->ops->queue_idle(h->ctx));
    assert_true(test_run_until(&h->loop, h_idle, h, 5000));
    assert_int_equal(h->srv.n_vis, 2); /* the kept one is left to its timeout */
    assert_string_equal(h->srv.vis_handles[0], "rh-0");
    assert_int_equal(h->srv.vis_secs[0], 0);
    assert_string_equal(h->srv.vis_handles[1], "rh-1");
    assert_int_equal(h->srv.vis_secs[1], 2); /* rounded up to whole seconds */
    /* a released lease is forgotten: acking it now does nothing, and nothing is reported */
    assert_int_equal(h->ops->queue_ack(h->ctx, h->part, leases, 3), 0);
    assert_true(test_run_until(&h->loop, h_idle, h, 5000));
    assert_int_equal(h->n_reports, 0);
    assert_int_equal(h->srv.n_del, 0);
    h_stop(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqs_delete_reads_each_entry),
        cmocka_unit_test(test_sqs_delete_batches_of_ten),
        cmocka_unit_test(test_sqs_release_returns_visibility),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

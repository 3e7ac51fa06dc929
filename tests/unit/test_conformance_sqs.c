/* SPDX-License-Identifier: Apache-2.0 */
/* test_conformance_sqs.c: the queue conformance checks (conformance_source.h) against the SQS
 * source and fauxqs (SQS_ENDPOINT, tests/services/start.sh with SERVICES=sqs; skipped without
 * it, failed under CI=true). fauxqs's visibility runs on real time, so the checks get the system
 * clock and a 2 s visibility timeout. The source reaches fauxqs through a loopback proxy
 * (http_peer) that passes every request on and answers back what fauxqs said, except for the
 * one fault fauxqs cannot produce: a DeleteMessageBatch entry that fails on the server's side
 * (SenderFault false), which the proxy answers itself for the messages the check asks to fail.
 * The proxy also remembers which receipt handle belongs to which body and which deletes fauxqs
 * accepted, which is how the driver says whether a message is still in the queue. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "buf.h"
#include "conformance_source.h"
#include "http_peer.h"

#define DRV_MAX 64

struct drv {
    struct http_peer proxy;
    pthread_mutex_t mu;
    char upstream[256];
    char handles[512][160]; /* receipt handle i belongs to body handle_body[i] */
    int handle_body[512];
    size_t n_handles;
    char bodies[DRV_MAX][128];
    size_t n_bodies;
    int fail[DRV_MAX]; /* delete entries still to fail, per body */
    bool deleted[DRV_MAX];
};

static struct drv drv;

static size_t drv_collect(char *p, size_t size, size_t n, void *arg)
{
    return sl_buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

/* POSTs body as AmazonSQS.<action> to fauxqs; returns the status (0: no answer), out the body. */
static long drv_forward(const char *action, const char *body, size_t len, struct sl_buf *out)
{
    CURL *h = curl_easy_init();
    char target[128];
    (void)snprintf(target, sizeof(target), "X-Amz-Target: AmazonSQS.%s", action);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
    hs = curl_slist_append(hs, target);
    curl_easy_setopt(h, CURLOPT_URL, drv.upstream);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, drv_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    return status;
}

static int drv_body_index(const char *body)
{
    for (size_t i = 0; i < drv.n_bodies; i++) {
        if (strcmp(drv.bodies[i], body) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static int drv_body_of_handle(const char *handle)
{
    for (size_t i = drv.n_handles; i-- > 0;) {
        if (strcmp(drv.handles[i], handle) == 0) {
            return drv.handle_body[i];
        }
    }
    return -1;
}

static void drv_note_received(const struct sl_buf *ans)
{
    cJSON *j = cJSON_ParseWithLength(ans->data, ans->len);
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(j, "Messages"))
    {
        int b = drv_body_index(cJSON_GetObjectItem(m, "Body")->valuestring);
        if (b >= 0 && drv.n_handles < 512) {
            (void)snprintf(drv.handles[drv.n_handles], sizeof(drv.handles[0]), "%s",
                           cJSON_GetObjectItem(m, "ReceiptHandle")->valuestring);
            drv.handle_body[drv.n_handles++] = b;
        }
    }
    cJSON_Delete(j);
}

/* A DeleteMessageBatch: the entries of bodies set to fail are answered Failed here, the rest go
 * to fauxqs; one answer of both. */
static char *drv_delete(const char *body, size_t len)
{
    cJSON *req = cJSON_ParseWithLength(body, len);
    cJSON *pass = cJSON_CreateArray();
    cJSON *failed = cJSON_CreateArray();
    cJSON *entries = cJSON_GetObjectItem(req, "Entries");
    cJSON *e = entries ? entries->child : NULL;
    while (e) {
        cJSON *next = e->next;
        int b = drv_body_of_handle(cJSON_GetObjectItem(e, "ReceiptHandle")->valuestring);
        cJSON *item = cJSON_DetachItemViaPointer(entries, e);
        if (b >= 0 && drv.fail[b] > 0) {
            drv.fail[b]--;
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "Id", cJSON_GetObjectItem(item, "Id")->valuestring);
            cJSON_AddBoolToObject(f, "SenderFault", false);
            cJSON_AddStringToObject(f, "Code", "InternalError");
            cJSON_AddItemToArray(failed, f);
            cJSON_Delete(item);
        } else {
            cJSON_AddItemToArray(pass, item);
        }
        e = next;
    }
    cJSON *ans = cJSON_CreateObject();
    cJSON *ok = cJSON_AddArrayToObject(ans, "Successful");
    if (cJSON_GetArraySize(pass) > 0) {
        cJSON *fwd = cJSON_CreateObject();
        cJSON_AddStringToObject(fwd, "QueueUrl", cJSON_GetObjectItem(req, "QueueUrl")->valuestring);
        cJSON_AddItemToObject(fwd, "Entries", cJSON_Duplicate(pass, true));
        char *text = cJSON_PrintUnformatted(fwd);
        struct sl_buf out;
        sl_buf_init(&out);
        long st = drv_forward("DeleteMessageBatch", text, strlen(text), &out);
        cJSON *up = st == 200 ? cJSON_ParseWithLength(out.data, out.len) : NULL;
        const cJSON *s;
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(up, "Successful"))
        {
            const char *id = cJSON_GetObjectItem(s, "Id")->valuestring;
            const cJSON *pe;
            cJSON_ArrayForEach(pe, pass)
            {
                if (strcmp(cJSON_GetObjectItem(pe, "Id")->valuestring, id) == 0) {
                    int b =
                        drv_body_of_handle(cJSON_GetObjectItem(pe, "ReceiptHandle")->valuestring);
                    if (b >= 0) {
                        drv.deleted[b] = true;
                    }
                }
            }
            cJSON_AddItemToArray(ok, cJSON_Duplicate(s, true));
        }
        cJSON_ArrayForEach(s, cJSON_GetObjectItem(up, "Failed"))
        {
            cJSON_AddItemToArray(failed, cJSON_Duplicate(s, true));
        }
        cJSON_Delete(up);
        sl_buf_fini(&out);
        cJSON_free(text);
        cJSON_Delete(fwd);
    }
    cJSON_AddItemToObject(ans, "Failed", failed);
    char *text = cJSON_PrintUnformatted(ans);
    cJSON_Delete(ans);
    cJSON_Delete(pass);
    cJSON_Delete(req);
    return text;
}

static void
drv_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    (void)arg;
    const char *target = http_peer_header(head, head_len, "X-Amz-Target");
    char action[64] = "";
    if (target && strncmp(target, "AmazonSQS.", 10) == 0) {
        (void)snprintf(action, sizeof(action), "%.*s", (int)strcspn(target + 10, "\r\n"),
                       target + 10);
    }
    long status = 200;
    char *text = NULL;
    struct sl_buf out;
    sl_buf_init(&out);
    if (strcmp(action, "DeleteMessageBatch") == 0) {
        pthread_mutex_lock(&drv.mu);
        text = drv_delete(body, body_len);
        pthread_mutex_unlock(&drv.mu);
    } else {
        status = drv_forward(action, body, body_len, &out);
        if (status == 200 && strcmp(action, "ReceiveMessage") == 0) {
            pthread_mutex_lock(&drv.mu);
            drv_note_received(&out);
            pthread_mutex_unlock(&drv.mu);
        }
    }
    const char *b = text ? text : out.data ? out.data : "";
    size_t n = text ? strlen(text) : out.len;
    char h[256];
    int hn = snprintf(h, sizeof(h),
                      "HTTP/1.1 %ld X\r\nContent-Type: application/x-amz-json-1.0\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      status ? status : 502, n);
    (void)http_peer_send_all(fd, h, (size_t)hn);
    (void)http_peer_send_all(fd, b, n);
    cJSON_free(text);
    sl_buf_fini(&out);
}

static cJSON *drv_prepare(void *arg,
                          const char *const *data,
                          const char *const *groups,
                          size_t n,
                          int64_t visibility_ms,
                          char *arn,
                          size_t len)
{
    (void)arg;
    pthread_mutex_lock(&drv.mu);
    memset(drv.fail, 0, sizeof(drv.fail));
    memset(drv.deleted, 0, sizeof(drv.deleted));
    drv.n_handles = 0;
    drv.n_bodies = 0;
    for (size_t i = 0; i < n && i < DRV_MAX; i++) {
        (void)snprintf(drv.bodies[drv.n_bodies++], sizeof(drv.bodies[0]), "%s", data[i]);
    }
    pthread_mutex_unlock(&drv.mu);
    static unsigned seq;
    char name[80];
    (void)snprintf(name, sizeof(name), "conf-%ld-%u%s", (long)getpid(), ++seq,
                   groups ? ".fifo" : "");
    char req[512];
    (void)snprintf(req, sizeof(req),
                   "{\"QueueName\":\"%s\",\"Attributes\":{\"VisibilityTimeout\":\"%ld\"%s}}", name,
                   (long)(visibility_ms / 1000),
                   groups ? ",\"FifoQueue\":\"true\",\"ContentBasedDeduplication\":\"true\"" : "");
    cJSON *r = sqs_peer_call("CreateQueue", req, 200);
    const char *url = cJSON_GetObjectItem(r, "QueueUrl")->valuestring;
    for (size_t i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "QueueUrl", url);
        cJSON_AddStringToObject(m, "MessageBody", data[i]);
        if (groups) {
            cJSON_AddStringToObject(m, "MessageGroupId", groups[i]);
        }
        char *t = cJSON_PrintUnformatted(m);
        cJSON_Delete(sqs_peer_call("SendMessage", t, 200));
        cJSON_free(t);
        cJSON_Delete(m);
    }
    cJSON_Delete(r);
    /* an ARN, so requests go to the endpoint (the proxy) with fauxqs's QueueUrl in the body */
    (void)snprintf(arn, len, "arn:aws:sqs:us-east-1:000000000000:%s", name);
    return cJSON_Parse("{\"wait_time\":1,\"delete_attempts\":5}");
}

static void drv_fail_deletes(void *arg, const char *data, size_t n)
{
    (void)arg;
    pthread_mutex_lock(&drv.mu);
    int b = drv_body_index(data);
    assert_true(b >= 0);
    drv.fail[b] += (int)n;
    pthread_mutex_unlock(&drv.mu);
}

static bool drv_exists(void *arg, const char *data)
{
    (void)arg;
    pthread_mutex_lock(&drv.mu);
    int b = drv_body_index(data);
    bool gone = b >= 0 && drv.deleted[b];
    pthread_mutex_unlock(&drv.mu);
    return !gone;
}

static const struct conf_queue sqs_queue = {
    .name = "sqs (fauxqs)",
    .prepare = drv_prepare,
    .fail_deletes = drv_fail_deletes,
    .exists = drv_exists,
    .real_clock = true,
    .visibility_ms = 2000,
    .deadline_ms = 20000,
};

static int drv_setup(void **state)
{
    const char *ep = sqs_peer_endpoint(); /* skips without fauxqs */
    (void)snprintf(drv.upstream, sizeof(drv.upstream), "%s/", ep);
    pthread_mutex_init(&drv.mu, NULL);
    http_peer_start_keep_alive(&drv.proxy, drv_answer, NULL);
    char proxy[64];
    (void)snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", drv.proxy.port);
    setenv("AWS_ENDPOINT_URL_SQS", proxy, 1);
    *state = (void *)&sqs_queue;
    return 0;
}

static int drv_teardown(void **state)
{
    (void)state;
    conf_source_cleanup();
    http_peer_stop(&drv.proxy);
    pthread_mutex_destroy(&drv.mu);
    unsetenv("AWS_ENDPOINT_URL_SQS");
    return 0;
}

CONF_QUEUE_TESTS_DEFINE

int main(void)
{
    const char *endpoint = getenv("SQS_ENDPOINT");
    const char *ci = getenv("CI");
    if ((!endpoint || !*endpoint) && !(ci && strcmp(ci, "true") == 0)) {
        /* every check needs the server; meson counts exit 77 as skipped (under CI=true the
         * setup fails instead, through sqs_peer_endpoint) */
        fprintf(stderr, "SQS_ENDPOINT not set (SERVICES=sqs tests/services/start.sh): skipping\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {CONF_QUEUE_TESTS(drv_setup, drv_teardown)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

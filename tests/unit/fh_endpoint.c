/* SPDX-License-Identifier: Apache-2.0 */
/* fh_endpoint.c: the Firehose HTTP endpoint of the unit tests (fh_endpoint.h). It owns the
 * script of answers and the record of what arrived; the socket work is http_peer's. Answers run
 * on the peer's thread, so the record is guarded by a mutex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "fh_endpoint.h"

static void fh_ep_gunzip(const struct sl_buf *in, struct sl_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (unsigned char *)in->data;
    z.avail_in = (uInt)in->len;
    int zr = Z_OK;
    while (zr == Z_OK) {
        assert_int_equal(sl_buf_reserve(out, 65536), 0);
        z.next_out = (unsigned char *)out->data + out->len;
        z.avail_out = 65536;
        zr = inflate(&z, Z_NO_FLUSH);
        out->len = (size_t)((char *)z.next_out - out->data);
        out->data[out->len] = '\0';
    }
    assert_int_equal(zr, Z_STREAM_END);
    (void)inflateEnd(&z);
}

/* The requestId of a request's body ("" when it cannot be read). */
static void fh_ep_request_id(const struct sl_buf *body, char *id, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength(body->data ? body->data : "", body->len);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "requestId"));
    (void)snprintf(id, len, "%s", s ? s : "");
    cJSON_Delete(doc);
}

static void fh_ep_send(int fd, int status, const char *type, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, type, strlen(body));
    (void)http_peer_send_all(fd, head, (size_t)n);
    (void)http_peer_send_all(fd, body, strlen(body));
}

static void fh_ep_answer(
    void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct fh_endpoint *e = arg;
    struct fh_ep_req rq = {0};
    rq.head = strndup(head, head_len);
    sl_buf_init(&rq.raw);
    sl_buf_init(&rq.body);
    assert_non_null(rq.head);
    assert_int_equal(sl_buf_append(&rq.raw, body, body_len), 0);
    const char *ce = http_peer_header(head, head_len, "Content-Encoding");
    if (ce && strncasecmp(ce, "gzip", 4) == 0) {
        fh_ep_gunzip(&rq.raw, &rq.body);
    } else {
        assert_int_equal(sl_buf_append(&rq.body, body, body_len), 0);
    }
    char id[128];
    fh_ep_request_id(&rq.body, id, sizeof id);

    pthread_mutex_lock(&e->mu);
    size_t i = e->n_reqs;
    if (i < FH_EP_MAX_REQS) {
        e->reqs[e->n_reqs++] = rq;
    } else {
        free(rq.head);
        sl_buf_fini(&rq.raw);
        sl_buf_fini(&rq.body);
    }
    enum fh_ep_step step = e->steps[i < e->n_steps ? i : e->n_steps - 1];
    pthread_mutex_unlock(&e->mu);
    if (e->wake) {
        (void)uv_async_send(e->wake);
    }
    if (step == FH_EP_GATED_500) {
        pthread_mutex_lock(&e->mu);
        while (e->gate_opens == e->gate_used) {
            pthread_cond_wait(&e->gate_cv, &e->mu);
        }
        e->gate_used++;
        pthread_mutex_unlock(&e->mu);
        step = FH_EP_500;
    }

    char out[512];
    switch (step) {
    case FH_EP_SLOW: {
        struct pollfd p = {fd, POLLIN, 0};
        (void)poll(&p, 1, e->slow_ms); /* wakes early when the client closes */
    }
        /* fall through */
    case FH_EP_OK:
        (void)snprintf(out, sizeof out, "{\"requestId\":\"%s\",\"timestamp\":1700000000456}", id);
        fh_ep_send(fd, 200, "application/json", out);
        break;
    case FH_EP_500:
    case FH_EP_413:
        (void)snprintf(
            out, sizeof out,
            "{\"requestId\":\"%s\",\"timestamp\":1700000000456,\"errorMessage\":\"boom\"}", id);
        fh_ep_send(fd, step == FH_EP_500 ? 500 : 413, "application/json", out);
        break;
    case FH_EP_WRONG_ID:
        fh_ep_send(fd, 200, "application/json",
                   "{\"requestId\":\"00000000-0000-4000-8000-000000000000\",\"timestamp\":1}");
        break;
    case FH_EP_NO_ID:
        fh_ep_send(fd, 200, "application/json", "{\"timestamp\":1700000000456}");
        break;
    case FH_EP_TEXT:
        (void)snprintf(out, sizeof out, "{\"requestId\":\"%s\",\"timestamp\":1700000000456}", id);
        fh_ep_send(fd, 200, "text/plain", out);
        break;
    case FH_EP_SILENT:
        http_peer_hang(&e->peer, fd);
        break;
    case FH_EP_CLOSE:
    case FH_EP_GATED_500:
    case FH_EP_STEP_COUNT:
        (void)shutdown(fd, SHUT_RDWR);
        break;
    }
}

void fh_ep_open_gate(struct fh_endpoint *e)
{
    pthread_mutex_lock(&e->mu);
    e->gate_opens++;
    pthread_cond_signal(&e->gate_cv);
    pthread_mutex_unlock(&e->mu);
}

void fh_ep_start(struct fh_endpoint *e, const enum fh_ep_step *steps, size_t n, uv_async_t *wake)
{
    assert_true(n >= 1 && n <= FH_EP_MAX_STEPS);
    memset(e, 0, sizeof(*e));
    memcpy(e->steps, steps, n * sizeof(*steps));
    e->n_steps = n;
    e->slow_ms = 300;
    e->wake = wake;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->gate_cv, NULL);
    http_peer_start(&e->peer, fh_ep_answer, e);
    (void)snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d/ingest?k=v", e->peer.port);
}

void fh_ep_stop(struct fh_endpoint *e)
{
    http_peer_stop(&e->peer);
    for (size_t i = 0; i < e->n_reqs; i++) {
        free(e->reqs[i].head);
        sl_buf_fini(&e->reqs[i].raw);
        sl_buf_fini(&e->reqs[i].body);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->gate_cv);
}

size_t fh_ep_count(struct fh_endpoint *e)
{
    pthread_mutex_lock(&e->mu);
    size_t n = e->n_reqs;
    pthread_mutex_unlock(&e->mu);
    return n;
}

char *fh_ep_header(struct fh_endpoint *e, size_t i, const char *name)
{
    pthread_mutex_lock(&e->mu);
    assert_true(i < e->n_reqs);
    const char *head = e->reqs[i].head;
    const char *v = http_peer_header(head, strlen(head), name);
    char *copy = v ? strndup(v, strcspn(v, "\r\n")) : NULL;
    pthread_mutex_unlock(&e->mu);
    return copy;
}

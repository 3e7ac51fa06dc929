/* SPDX-License-Identifier: Apache-2.0 */
/* http_peer.c: the loopback HTTP server and the fauxqs calls of the tests that speak HTTP
 * (http_peer.h), in one place for test_sinks, test_sink_conformance, test_onfailure and
 * test_httpc. The server owns its listening socket, its stop pipe and its threads (the accept
 * thread, and with keep-alive one per connection); what a request is answered with and what is
 * recorded of it is the test's (the answer callback). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "buf.h"
#include "http_peer.h"

bool http_peer_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

const char *http_peer_header(const char *head, size_t head_len, const char *name)
{
    size_t n = strlen(name);
    const char *p = strstr(head, "\r\n"); /* after the request line */
    while (p && p + 2 < head + head_len) {
        p += 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            while (*p == ' ') {
                p++;
            }
            return p;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Waits for fd to be readable or the server to stop (wait_ms, -1: no limit). Returns true when
 * readable. */
static bool http_peer_wait(struct http_peer *s, int fd, int wait_ms)
{
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        int r = poll(p, 2, wait_ms);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        return r > 0 && !(p[1].revents & POLLIN);
    }
}

void http_peer_hang(struct http_peer *p, int fd)
{
    char tmp[512];
    while (http_peer_wait(p, fd, -1) && recv(fd, tmp, sizeof(tmp), 0) > 0) {
    }
}

/* Reads the requests on fd (one, or keep-alive every one until the client closes it) and has
 * each answered, then closes fd. */
static void http_peer_serve(struct http_peer *s, int fd)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct sl_buf in;
    sl_buf_init(&in);
    char chunk[16384];
    int wait_ms = s->keep_alive ? -1 : 5000;
    do {
        size_t head_len = 0, need = 0;
        bool expect = false;
        for (;;) {
            if (!head_len && in.len) {
                char *end = strstr(in.data, "\r\n\r\n");
                if (end) {
                    head_len = (size_t)(end - in.data) + 4;
                    const char *cl = http_peer_header(in.data, head_len, "Content-Length");
                    const char *ex = http_peer_header(in.data, head_len, "Expect");
                    need = head_len + (cl ? strtoul(cl, NULL, 10) : 0);
                    expect = ex && strncasecmp(ex, "100-continue", 12) == 0;
                }
            }
            if (head_len && in.len >= need) {
                break;
            }
            if (expect) {
                /* the client waits for this before it sends the body */
                expect = false;
                if (!http_peer_send_all(fd, cont, sizeof(cont) - 1)) {
                    goto out;
                }
            }
            if (!http_peer_wait(s, fd, wait_ms)) {
                goto out;
            }
            ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
            if (got <= 0 || sl_buf_append(&in, chunk, (size_t)got) < 0) {
                goto out;
            }
        }
        s->answer(s->arg, fd, in.data, head_len, in.data + head_len, need - head_len);
        /* what follows the request is the next one's */
        memmove(in.data, in.data + need, in.len - need);
        sl_buf_truncate(&in, in.len - need);
    } while (s->keep_alive);
out:
    sl_buf_fini(&in);
    close(fd);
}

struct http_peer_conn {
    struct http_peer *s;
    int fd;
};

static void *http_peer_conn_main(void *arg)
{
    struct http_peer_conn c = *(struct http_peer_conn *)arg;
    free(arg);
    http_peer_serve(c.s, c.fd);
    return NULL;
}

/* Keep-alive: serves fd on a thread of its own (closes it when there is no room for one). */
static void http_peer_spawn(struct http_peer *s, int fd)
{
    struct http_peer_conn *c = malloc(sizeof(*c));
    pthread_mutex_lock(&s->mu);
    int slot = c && s->n_conn_thr < HTTP_PEER_MAX_CONNS ? s->n_conn_thr++ : -1;
    pthread_mutex_unlock(&s->mu);
    if (slot >= 0) {
        *c = (struct http_peer_conn){s, fd};
        if (pthread_create(&s->conn_thr[slot], NULL, http_peer_conn_main, c) == 0) {
            return;
        }
        pthread_mutex_lock(&s->mu);
        s->n_conn_thr--;
        pthread_mutex_unlock(&s->mu);
    }
    free(c);
    close(fd);
}

static void *http_peer_main(void *arg)
{
    struct http_peer *s = arg;
    while (http_peer_wait(s, s->lfd, -1)) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        pthread_mutex_lock(&s->mu);
        s->n_conns++;
        pthread_mutex_unlock(&s->mu);
        if (s->keep_alive) {
            http_peer_spawn(s, fd);
        } else {
            http_peer_serve(s, fd);
        }
    }
    return NULL;
}

int http_peer_conns(struct http_peer *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_conns;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int http_peer_listen(int *ret_port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *ret_port = ntohs(a.sin_port);
    return fd;
}

static void
http_peer_start_mode(struct http_peer *p, http_peer_answer_fn answer, void *arg, bool keep_alive)
{
    p->answer = answer;
    p->arg = arg;
    p->keep_alive = keep_alive;
    p->n_conns = 0;
    p->n_conn_thr = 0;
    assert_int_equal(pthread_mutex_init(&p->mu, NULL), 0);
    p->lfd = http_peer_listen(&p->port);
    assert_int_equal(pipe(p->stop_pipe), 0);
    assert_int_equal(pthread_create(&p->thr, NULL, http_peer_main, p), 0);
}

void http_peer_start(struct http_peer *p, http_peer_answer_fn answer, void *arg)
{
    http_peer_start_mode(p, answer, arg, false);
}

void http_peer_start_keep_alive(struct http_peer *p, http_peer_answer_fn answer, void *arg)
{
    http_peer_start_mode(p, answer, arg, true);
}

void http_peer_stop(struct http_peer *p)
{
    assert_int_equal(write(p->stop_pipe[1], "x", 1), 1);
    pthread_join(p->thr, NULL);
    /* the accept thread is gone: no thread is added any more */
    for (int i = 0; i < p->n_conn_thr; i++) {
        pthread_join(p->conn_thr[i], NULL);
    }
    close(p->lfd);
    close(p->stop_pipe[0]);
    close(p->stop_pipe[1]);
    pthread_mutex_destroy(&p->mu);
}

const char *sqs_peer_endpoint(void)
{
    const char *e = getenv("SQS_ENDPOINT");
    if (e && *e) {
        return e;
    }
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fail_msg("SQS_ENDPOINT is not set under CI=true: start tests/services (SERVICES=sqs)");
    }
    print_message("SQS_ENDPOINT not set (SERVICES=sqs tests/services/start.sh): skipping\n");
    skip();
    return NULL;
}

static size_t sqs_peer_collect(char *p, size_t size, size_t n, void *arg)
{
    return sl_buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

cJSON *sqs_peer_call(const char *action, const char *body, long want_status)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    struct sl_buf out;
    sl_buf_init(&out);
    char target[128];
    (void)snprintf(target, sizeof(target), "X-Amz-Target: AmazonSQS.%s", action);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
    hs = curl_slist_append(hs, target);
    curl_easy_setopt(h, CURLOPT_URL, sqs_peer_endpoint());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sqs_peer_collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    CURLcode c = curl_easy_perform(h);
    if (c != CURLE_OK) {
        fail_msg("%s: %s", action, curl_easy_strerror(c));
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    if (status != want_status) {
        fail_msg("%s %s: status %ld: %.*s", action, body, status, (int)out.len,
                 out.data ? out.data : "");
    }
    cJSON *j = out.len ? cJSON_ParseWithLength(out.data, out.len) : cJSON_CreateObject();
    sl_buf_fini(&out);
    assert_non_null(j);
    return j;
}

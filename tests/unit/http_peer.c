/* SPDX-License-Identifier: Apache-2.0 */
/* http_peer.c: the loopback HTTP server and the fauxqs calls of the sink tests (http_peer.h), in
 * one place for test_sinks and test_sink_conformance. The server owns its listening socket, its
 * stop pipe and its thread; what a request is answered with and what is recorded of it is the
 * test's (the answer callback). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

/* Reads one request on fd and has it answered, then closes fd. */
static void http_peer_serve(struct http_peer *s, int fd)
{
    struct sl_buf in;
    sl_buf_init(&in);
    char chunk[16384];
    size_t head_len = 0, need = 0;
    for (;;) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, 5000) <= 0 || (p[1].revents & POLLIN)) {
            goto out;
        }
        ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
        if (got <= 0 || sl_buf_append(&in, chunk, (size_t)got) < 0) {
            goto out;
        }
        if (!head_len) {
            char *end = strstr(in.data, "\r\n\r\n");
            if (!end) {
                continue;
            }
            head_len = (size_t)(end - in.data) + 4;
            const char *cl = http_peer_header(in.data, head_len, "Content-Length");
            need = head_len + (cl ? strtoul(cl, NULL, 10) : 0);
        }
        if (in.len >= need) {
            break;
        }
    }
    s->answer(s->arg, fd, in.data, head_len, in.data + head_len, need - head_len);
out:
    sl_buf_fini(&in);
    close(fd);
}

static void *http_peer_main(void *arg)
{
    struct http_peer *s = arg;
    for (;;) {
        struct pollfd p[2] = {{s->lfd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
        int r = poll(p, 2, -1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 || (p[1].revents & POLLIN)) {
            return NULL;
        }
        int fd = accept(s->lfd, NULL, NULL);
        if (fd >= 0) {
            http_peer_serve(s, fd);
        }
    }
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

void http_peer_start(struct http_peer *p, http_peer_answer_fn answer, void *arg)
{
    p->answer = answer;
    p->arg = arg;
    p->lfd = http_peer_listen(&p->port);
    assert_int_equal(pipe(p->stop_pipe), 0);
    assert_int_equal(pthread_create(&p->thr, NULL, http_peer_main, p), 0);
}

void http_peer_stop(struct http_peer *p)
{
    assert_int_equal(write(p->stop_pipe[1], "x", 1), 1);
    pthread_join(p->thr, NULL);
    close(p->lfd);
    close(p->stop_pipe[0]);
    close(p->stop_pipe[1]);
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

/* SPDX-License-Identifier: Apache-2.0 */
/* test_httpc.c: the HTTP client on the loop, the http and lambda function types, and the AWS
 * settings they use, against a real HTTP/1.1 server on loopback: http_peer.c's, keep-alive (a
 * thread per connection), whose answers each test scripts here (status, headers, body, hang,
 * close without a length) and which records every request (method, path, header block, body)
 * and counts the connections it accepted. The loop is driven with test_run_until to a condition
 * with a deadline; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "aws.h"
#include "function.h"
#include "helpers.h"
#include "http_peer.h"
#include "httpc.h"
#include "sigv4.h"

/* ---- the server ---- */

#define SRV_MAX_REQS 16

struct srv_req {
    char method[16];
    char path[512];
    char *head; /* the header block, NUL-terminated */
    char *body;
    size_t body_len;
};

struct srv {
    struct http_peer http;
    int port;
    pthread_mutex_t mu;
    struct srv_req reqs[SRV_MAX_REQS];
    int n_reqs;
    /* behaviour, set by the test before requests */
    int status;
    const char *extra_headers; /* "Name: value\r\n" lines */
    const char *resp_body;     /* or NULL: resp_len bytes of 'x' */
    size_t resp_len;
    bool hang;
    bool no_length;   /* answer without Content-Length and close */
    bool close_after; /* answer with a Content-Length, then close the connection anyway */
};

/* Records the request, then answers as the test set: hangs, or the status, headers and body,
 * with a Content-Length or (no_length) ended by closing the connection. */
static void
srv_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct srv *s = arg;
    struct srv_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.head = malloc(head_len + 1);
    memcpy(rq.head, head, head_len);
    rq.head[head_len] = '\0';
    sscanf(rq.head, "%15s %511s", rq.method, rq.path);
    rq.body = malloc(body_len + 1);
    memcpy(rq.body, body, body_len);
    rq.body[body_len] = '\0';
    rq.body_len = body_len;

    pthread_mutex_lock(&s->mu);
    bool hang = s->hang;
    bool no_length = s->no_length;
    bool close_after = s->close_after;
    int status = s->status;
    const char *extra = s->extra_headers ? s->extra_headers : "";
    const char *rbody = s->resp_body;
    size_t rlen = rbody ? strlen(rbody) : s->resp_len;
    if (s->n_reqs < SRV_MAX_REQS) {
        s->reqs[s->n_reqs++] = rq;
    } else {
        free(rq.head);
        free(rq.body);
    }
    pthread_mutex_unlock(&s->mu);

    if (hang) {
        http_peer_hang(&s->http, fd);
        return;
    }
    char hdr[1024];
    int n;
    if (no_length) {
        n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d Test\r\nConnection: close\r\n%s\r\n", status,
                     extra);
    } else {
        n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 %d Test\r\nContent-Length: %zu\r\n%s\r\n", status,
                     rlen, extra);
    }
    bool ok = http_peer_send_all(fd, hdr, (size_t)n);
    if (ok && rbody) {
        ok = http_peer_send_all(fd, rbody, rlen);
    } else if (ok && rlen) {
        char *fill = malloc(rlen);
        memset(fill, 'x', rlen);
        ok = http_peer_send_all(fd, fill, rlen);
        free(fill);
    }
    if (no_length || close_after) {
        (void)shutdown(fd, SHUT_WR); /* the end of the body, or of a kept-alive connection */
    }
}

static void srv_start(struct srv *s)
{
    memset(s, 0, sizeof(*s));
    s->status = 200;
    pthread_mutex_init(&s->mu, NULL);
    http_peer_start_keep_alive(&s->http, srv_answer, s);
    s->port = s->http.port;
}

static void srv_stop(struct srv *s)
{
    http_peer_stop(&s->http);
    for (int i = 0; i < s->n_reqs; i++) {
        free(s->reqs[i].head);
        free(s->reqs[i].body);
    }
    pthread_mutex_destroy(&s->mu);
}

static void srv_set(struct srv *s, int status, const char *extra, const char *body)
{
    pthread_mutex_lock(&s->mu);
    s->status = status;
    s->extra_headers = extra;
    s->resp_body = body;
    pthread_mutex_unlock(&s->mu);
}

/* Returns a copy of request i (the strings stay owned by the server). */
static struct srv_req srv_req_get(struct srv *s, int i)
{
    pthread_mutex_lock(&s->mu);
    assert_true(i < s->n_reqs);
    struct srv_req r = s->reqs[i];
    pthread_mutex_unlock(&s->mu);
    return r;
}

static int srv_conns(struct srv *s)
{
    return http_peer_conns(&s->http);
}

/* The value of header name in a recorded header block, copied into out ("" if absent). */
static bool head_get(const char *head, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, name, nl) == 0 && line[2 + nl] == ':') {
            const char *v = line + 3 + nl;
            while (*v == ' ') {
                v++;
            }
            size_t vl = strcspn(v, "\r");
            snprintf(out, len, "%.*s", (int)vl, v);
            return true;
        }
    }
    out[0] = '\0';
    return false;
}

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;
    struct sl_httpc *h;
    struct srv srv;
    char url[128];
    /* the last HTTP response */
    int n_done;
    bool in_request;
    bool cb_inside;
    CURLcode code;
    long status;
    bool too_large;
    char body_head[128];
    size_t body_len;
    char hdr_test[128];
    char hdr_other[128];
    bool has_hdr_test;
    /* the last invocation result */
    int n_results;
    struct sl_invoke_result res;
    char res_detail[512];
    char res_error_type[128];
    char res_body[128];
};

static void unset_aws_env(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_LAMBDA");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    unset_aws_env();
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->h), 0);
    srv_start(&f->srv);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/hook", f->srv.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_httpc_free(f->h);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    srv_stop(&f->srv);
    free(f);
    unset_aws_env();
    return 0;
}

static void on_resp(void *arg, const struct sl_http_resp *resp)
{
    struct fx *f = arg;
    if (f->in_request) {
        f->cb_inside = true;
    }
    f->n_done++;
    f->code = resp->curl_code;
    f->status = resp->status;
    f->too_large = resp->too_large;
    f->body_len = resp->body_len;
    snprintf(f->body_head, sizeof(f->body_head), "%s", resp->body);
    const char *v = sl_http_resp_header(resp, "x-test");
    f->has_hdr_test = v != NULL;
    snprintf(f->hdr_test, sizeof(f->hdr_test), "%s", v ? v : "");
    v = sl_http_resp_header(resp, "X-OTHER");
    snprintf(f->hdr_other, sizeof(f->hdr_other), "%s", v ? v : "");
}

static bool done_n(void *arg)
{
    struct fx *f = arg;
    return f->n_done >= 1;
}

static bool results_n(void *arg)
{
    struct fx *f = arg;
    return f->n_results >= 1;
}

static void request(struct fx *f, const struct sl_http_req *req)
{
    f->n_done = 0;
    f->in_request = true;
    assert_int_equal(sl_httpc_request(f->h, req, on_resp, f), 0);
    f->in_request = false;
    assert_true(test_run_until(&f->loop, done_n, f, 10000));
    assert_false(f->cb_inside);
}

/* ---- httpc ---- */

static void check_body(struct fx *f, size_t n)
{
    char *body = malloc(n);
    for (size_t i = 0; i < n; i++) {
        body[i] = (char)((i * 7919u + (i >> 8)) & 0xff); /* binary, with NULs */
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/octet-stream");
    struct sl_http_req req = {
        .method = "POST",
        .url = f->url,
        .headers = hdrs,
        .body = body,
        .body_len = n,
        .timeout_ms = 20000,
        .max_response_bytes = 1024,
    };
    srv_set(&f->srv, 200, NULL, "ok");
    uint64_t t0 = uv_hrtime();
    request(f, &req);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(f->code, CURLE_OK);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->body_head, "ok");
    struct srv_req r = srv_req_get(&f->srv, f->srv.n_reqs - 1);
    assert_string_equal(r.method, "POST");
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, body, n);
    char v[128];
    /* Large unsigned bodies go out without waiting for "100 Continue". */
    assert_false(head_get(r.head, "Expect", v, sizeof(v)));
    assert_true(ms < 5000);
    curl_slist_free_all(hdrs);
    free(body);
}

static void test_httpc_body_intact(void **state)
{
    struct fx *f = *state;
    check_body(f, 1000);
    check_body(f, 1024 * 1024);
    check_body(f, 7 * 1024 * 1024);
}

static void test_httpc_keepalive(void **state)
{
    struct fx *f = *state;
    struct sl_http_req req = {.method = "POST", .url = f->url, .body = "{}", .body_len = 2};
    srv_set(&f->srv, 200, NULL, "one");
    request(f, &req);
    assert_string_equal(f->body_head, "one");
    srv_set(&f->srv, 200, NULL, "two");
    request(f, &req);
    assert_string_equal(f->body_head, "two");
    request(f, &req);
    assert_int_equal(srv_conns(&f->srv), 1);
    assert_int_equal(sl_httpc_in_flight(f->h), 0);
}

static void count_turn(uv_check_t *c)
{
    (*(int *)c->data)++;
}

static void stop_loop(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* A kept-alive connection the peer closes while it waits in curl's cache is not watched any
 * more: its end of file does not wake the loop turn after turn (the loop, kept running 100 ms
 * by a timer, turns a few times, not thousands), nothing of it keeps the loop alive, and the
 * next request goes out on a new connection. */
static void test_httpc_idle_connection_closed_by_peer(void **state)
{
    struct fx *f = *state;
    struct sl_http_req req = {.method = "POST", .url = f->url, .body = "{}", .body_len = 2};
    srv_set(&f->srv, 200, NULL, "one");
    f->srv.close_after = true;
    request(f, &req);
    assert_string_equal(f->body_head, "one");
    f->srv.close_after = false;

    int turns = 0;
    uv_check_t check;
    uv_timer_t timer;
    assert_int_equal(uv_check_init(&f->loop, &check), 0);
    check.data = &turns;
    assert_int_equal(uv_check_start(&check, count_turn), 0);
    assert_int_equal(uv_timer_init(&f->loop, &timer), 0);
    assert_int_equal(uv_timer_start(&timer, stop_loop, 100, 0), 0);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(turns < 20);
    uv_close((uv_handle_t *)&check, NULL);
    uv_close((uv_handle_t *)&timer, NULL);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT); /* returns: nothing else keeps it alive */

    srv_set(&f->srv, 200, NULL, "two");
    request(f, &req);
    assert_string_equal(f->body_head, "two");
    assert_int_equal(srv_conns(&f->srv), 2);
}

static void test_httpc_headers_status(void **state)
{
    struct fx *f = *state;
    srv_set(&f->srv, 201, "X-Test:   hello world  \r\nX-Other: a: b\r\n", "created");
    struct sl_http_req req = {.method = "POST", .url = f->url, .body = "x", .body_len = 1};
    request(f, &req);
    assert_int_equal(f->code, CURLE_OK);
    assert_int_equal(f->status, 201);
    assert_true(f->has_hdr_test);
    assert_string_equal(f->hdr_test, "hello world");
    assert_string_equal(f->hdr_other, "a: b");
    assert_string_equal(f->body_head, "created");
    /* A GET works too, and a 404 is an answer, not a curl error. */
    srv_set(&f->srv, 404, NULL, "");
    struct sl_http_req get = {.method = "GET", .url = f->url};
    request(f, &get);
    assert_int_equal(f->code, CURLE_OK);
    assert_int_equal(f->status, 404);
    assert_int_equal(f->body_len, 0);
    assert_false(f->has_hdr_test);
    struct srv_req r = srv_req_get(&f->srv, 1);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.path, "/hook");
}

static void test_httpc_timeout(void **state)
{
    struct fx *f = *state;
    f->srv.hang = true;
    struct sl_http_req req = {
        .method = "POST", .url = f->url, .body = "{}", .body_len = 2, .timeout_ms = 200};
    uint64_t t0 = uv_hrtime();
    request(f, &req);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(f->code, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(f->status, 0);
    assert_true(ms >= 150 && ms < 3000);
}

static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_httpc_refused(void **state)
{
    struct fx *f = *state;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    struct sl_http_req req = {.method = "POST", .url = url, .body = "{}", .body_len = 2};
    request(f, &req);
    assert_int_equal(f->code, CURLE_COULDNT_CONNECT);
    assert_int_equal(f->status, 0);
}

static void test_httpc_too_large(void **state)
{
    struct fx *f = *state;
    f->srv.resp_len = 5000;
    struct sl_http_req req = {
        .method = "POST", .url = f->url, .body = "{}", .body_len = 2, .max_response_bytes = 1000};
    srv_set(&f->srv, 200, NULL, NULL);
    request(f, &req); /* Content-Length says too much */
    assert_true(f->too_large);
    assert_int_equal(f->status, 200);
    f->srv.no_length = true;
    request(f, &req); /* no length: stopped while reading */
    assert_true(f->too_large);
    f->srv.resp_len = 1000;
    request(f, &req); /* exactly the limit is fine */
    assert_false(f->too_large);
    assert_int_equal(f->code, CURLE_OK);
    assert_int_equal(f->body_len, 1000);
}

static void test_httpc_cancel(void **state)
{
    struct fx *f = *state;
    f->srv.hang = true;
    struct sl_http_req req = {.method = "POST", .url = f->url, .body = "{}", .body_len = 2};
    f->n_done = 0;
    assert_int_equal(sl_httpc_request(f->h, &req, on_resp, f), 0);
    assert_int_equal(sl_httpc_in_flight(f->h), 1);
    f->in_request = true;
    assert_int_equal(sl_httpc_cancel(f->h, f), 1);
    f->in_request = false;
    assert_true(test_run_until(&f->loop, done_n, f, 5000));
    assert_false(f->cb_inside);
    assert_int_equal(f->code, CURLE_ABORTED_BY_CALLBACK);
    assert_int_equal(sl_httpc_in_flight(f->h), 0);
}

/* ---- function types ---- */

static int64_t dur_ms(const char *s)
{
    char *end;
    int64_t v = strtoll(s, &end, 10);
    return strcmp(end, "s") == 0 ? v * 1000 : v;
}

/* Makes a function ctx of type ops with options given as name/value pairs (DURATION values
 * in milliseconds), defaults from the table, and headers for "headers". */
static void *fn_new(struct fx *f,
                    const struct sl_function_ops *ops,
                    const char *const *kv,
                    const struct sl_strmap *headers,
                    int *ret_init)
{
    void *ctx = sl_calloc(1, ops->ctx_size);
    for (const struct sl_opt *o = ops->opts; o->name; o++) {
        char *field = (char *)ctx + o->off;
        const char *val = o->def;
        for (const char *const *p = kv; p && *p; p += 2) {
            if (strcmp(p[0], o->name) == 0) {
                val = p[1];
            }
        }
        if (o->type == SL_OPT_STR && val) {
            *(char **)(void *)field = sl_strdup(val);
        } else if (o->type == SL_OPT_DURATION && val) {
            *(int64_t *)(void *)field = dur_ms(val);
        } else if (o->type == SL_OPT_STRMAP && headers) {
            struct sl_strmap *m = (struct sl_strmap *)(void *)field;
            m->n = headers->n;
            m->keys = sl_calloc(headers->n, sizeof(char *));
            m->values = sl_calloc(headers->n, sizeof(char *));
            for (size_t i = 0; i < headers->n; i++) {
                m->keys[i] = sl_strdup(headers->keys[i]);
                m->values[i] = sl_strdup(headers->values[i]);
            }
        }
    }
    struct sl_function_env env = {
        .loop = &f->loop, .httpc = f->h, .clock = &sl_clock_system, .name = "t", .region = NULL};
    char err[256] = "";
    *ret_init = ops->check(ctx, err, sizeof(err));
    if (*ret_init == 0) {
        *ret_init = ops->init(ctx, &env, err, sizeof(err));
    }
    if (*ret_init) {
        print_message("init: %s\n", err);
    }
    return ctx;
}

static void fn_free(const struct sl_function_ops *ops, void *ctx)
{
    ops->fini(ctx);
    for (const struct sl_opt *o = ops->opts; o->name; o++) {
        char *field = (char *)ctx + o->off;
        if (o->type == SL_OPT_STR) {
            sl_free(*(char **)(void *)field);
        } else if (o->type == SL_OPT_STRMAP) {
            struct sl_strmap *m = (struct sl_strmap *)(void *)field;
            for (size_t i = 0; i < m->n; i++) {
                sl_free(m->keys[i]);
                sl_free(m->values[i]);
            }
            sl_free(m->keys);
            sl_free(m->values);
        }
    }
    sl_free(ctx);
}

static void on_result(void *arg, const struct sl_invoke_result *res)
{
    struct fx *f = arg;
    if (f->in_request) {
        f->cb_inside = true;
    }
    f->n_results++;
    f->res = *res;
    snprintf(f->res_detail, sizeof(f->res_detail), "%s", res->detail ? res->detail : "");
    snprintf(f->res_error_type, sizeof(f->res_error_type), "%s",
             res->error_type ? res->error_type : "");
    snprintf(f->res_body, sizeof(f->res_body), "%s", res->body ? res->body : "");
    f->res.detail = f->res_detail;
    f->res.error_type = f->res_error_type;
    f->res.body = f->res_body;
}

static void invoke(struct fx *f, const struct sl_function_ops *ops, void *ctx, const char *body)
{
    f->n_results = 0;
    f->in_request = true;
    assert_int_equal(ops->invoke(ctx, body, strlen(body), on_result, f), 0);
    f->in_request = false;
    assert_true(test_run_until(&f->loop, results_n, f, 10000));
    assert_false(f->cb_inside);
}

static void test_httpc_fn_http(void **state)
{
    struct fx *f = *state;
    char *keys[] = {"X-Token", "X-Empty"};
    char *values[] = {"s3cret-value", ""};
    struct sl_strmap hm = {keys, values, 2};
    const char *kv[] = {"url", f->url, "timeout", "300", NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_http, kv, &hm, &r);
    assert_int_equal(r, 0);

    srv_set(&f->srv, 200, NULL, "{\"ok\":true}");
    invoke(f, &sl_function_http, ctx, "{\"Records\":[]}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_SUCCESS);
    assert_int_equal(f->res.status, 200);
    assert_string_equal(f->res_body, "{\"ok\":true}");
    struct srv_req rq = srv_req_get(&f->srv, 0);
    char v[128];
    assert_true(head_get(rq.head, "X-Token", v, sizeof(v)));
    assert_string_equal(v, "s3cret-value");
    assert_true(head_get(rq.head, "X-Empty", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_true(head_get(rq.head, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_string_equal(rq.path, "/hook");
    assert_memory_equal(rq.body, "{\"Records\":[]}", rq.body_len);

    srv_set(&f->srv, 503, "Retry-After: 3\r\n", "busy");
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_THROTTLE);
    assert_int_equal(f->res.retry_after_ms, 3000);

    srv_set(&f->srv, 429, NULL, "");
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_THROTTLE);
    assert_int_equal(f->res.retry_after_ms, -1);

    srv_set(&f->srv, 500, NULL, "boom");
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_int_equal(f->res.status, 500);

    /* Over 6 MB: a function error. */
    pthread_mutex_lock(&f->srv.mu);
    f->srv.resp_body = NULL;
    f->srv.status = 200;
    f->srv.resp_len = SL_FUNCTION_MAX_RESPONSE_BYTES + 1;
    pthread_mutex_unlock(&f->srv.mu);
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_string_equal(f->res_error_type, "Function.ResponseSizeTooLarge");

    /* A hang: the timeout outcome, within a bound. */
    f->srv.hang = true;
    uint64_t t0 = uv_hrtime();
    invoke(f, &sl_function_http, ctx, "{}");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(f->res.outcome, SL_OUTCOME_TIMEOUT);
    assert_true(ms >= 250 && ms < 3000);

    /* stop() cancels: the callback still comes, later, as a canceled transport error. */
    f->n_results = 0;
    assert_int_equal(sl_function_http.invoke(ctx, "{}", 2, on_result, f), 0);
    f->in_request = true;
    sl_function_http.stop(ctx);
    f->in_request = false;
    assert_int_equal(f->n_results, 0);
    assert_true(test_run_until(&f->loop, results_n, f, 5000));
    assert_false(f->cb_inside);
    assert_int_equal(f->res.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    assert_string_equal(f->res_detail, "canceled");
    fn_free(&sl_function_http, ctx);

    /* Connection refused: a transport error with curl's text. */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    const char *kv2[] = {"url", url, NULL};
    ctx = fn_new(f, &sl_function_http, kv2, NULL, &r);
    assert_int_equal(r, 0);
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    assert_true(strlen(f->res_detail) > 0);
    fn_free(&sl_function_http, ctx);
}

/* A listener whose accept queue is full: a connect to it hangs in SYN_SENT. Returns the
 * listening descriptor; the queued connections go to fill[0..1]. */
static int full_listener(int *ret_port, int fill[2])
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    *ret_port = ntohs(a.sin_port);
    return lfd;
}

/* Item 9: a function that got the event and did not answer within its timeout failed (a
 * counted "Unhandled" timeout); a connect that timed out never reached it (a transport
 * error, not counted). */
static void test_httpc_fn_http_timeout_vs_connect_timeout(void **state)
{
    struct fx *f = *state;
    const char *kv[] = {"url", f->url, "timeout", "200", NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_http, kv, NULL, &r);
    assert_int_equal(r, 0);
    f->srv.hang = true;
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_TIMEOUT);
    assert_string_equal(f->res_error_type, "Unhandled");
    fn_free(&sl_function_http, ctx);

    int port, fill[2];
    int lfd = full_listener(&port, fill);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    const char *kv2[] = {"url", url, "timeout", "5000", "connect_timeout", "200", NULL};
    ctx = fn_new(f, &sl_function_http, kv2, NULL, &r);
    assert_int_equal(r, 0);
    uint64_t t0 = uv_hrtime();
    invoke(f, &sl_function_http, ctx, "{}");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(f->res.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    assert_non_null(strstr(f->res_detail, "onnect")); /* "Connection timed out ..." */
    assert_true(ms >= 150 && ms < 4000);
    fn_free(&sl_function_http, ctx);
    close(fill[0]);
    close(fill[1]);
    close(lfd);
}

/* Item 4: the connections curl keeps alive are close-on-exec, so processes spawned by exec
 * functions do not inherit them. */
static void test_httpc_sockets_cloexec(void **state)
{
    struct fx *f = *state;
    srv_set(&f->srv, 200, NULL, "ok");
    struct sl_http_req req = {.method = "POST", .url = f->url, .body = "{}", .body_len = 2};
    request(f, &req);
    assert_int_equal(f->code, CURLE_OK);
    int found = 0;
    for (int fd = 3; fd < 1024; fd++) {
        struct sockaddr_in peer;
        socklen_t pl = sizeof(peer);
        if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0 || peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) != f->srv.port) {
            continue;
        }
        found++;
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0 || !(flags & FD_CLOEXEC)) {
            fail_msg("descriptor %d (a connection to the server) is not close-on-exec", fd);
        }
    }
    assert_true(found >= 1); /* the kept-alive connection */
}

/* Item 2: a connection that cannot be made because sluice is out of descriptors is not the
 * function's fault: socket(2)'s EMFILE reaches the result as SL_OUTCOME_RESOURCE_EXHAUSTED
 * (retried without counting), not as a refused connection. */
static void test_httpc_fn_http_emfile_is_resource_exhausted(void **state)
{
    struct fx *f = *state;
    const char *kv[] = {"url", f->url, NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_http, kv, NULL, &r);
    assert_int_equal(r, 0);
    srv_set(&f->srv, 200, NULL, "{}");
    struct test_fd_pressure fdp;
    assert_int_not_equal(test_fd_exhaust(&fdp), -1);
    invoke(f, &sl_function_http, ctx, "{}");
    assert_int_equal(test_fd_release(&fdp), 0);
    if (f->res.outcome != SL_OUTCOME_RESOURCE_EXHAUSTED) {
        fail_msg("outcome %s (%s), want resource_exhausted", sl_outcome_name(f->res.outcome),
                 f->res_detail);
    }
    assert_non_null(strstr(f->res_detail, "EMFILE"));
    invoke(f, &sl_function_http, ctx, "{}"); /* descriptors are back */
    assert_int_equal(f->res.outcome, SL_OUTCOME_SUCCESS);
    fn_free(&sl_function_http, ctx);
}

static void test_httpc_fn_http_check(void **state)
{
    struct fx *f = *state;
    static const char *const bad[] = {"ftp://x/", "127.0.0.1:80", "http://", "http:///x",
                                      "http://a b/"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *kv[] = {"url", bad[i], NULL};
        int r;
        void *ctx = fn_new(f, &sl_function_http, kv, NULL, &r);
        assert_int_equal(r, SL_ECONFIG);
        fn_free(&sl_function_http, ctx);
    }
    char *keys[] = {"Bad Name"};
    char *values[] = {"v"};
    struct sl_strmap hm = {keys, values, 1};
    const char *kv[] = {"url", "https://example.com/x", NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_http, kv, &hm, &r);
    assert_int_equal(r, SL_ECONFIG);
    fn_free(&sl_function_http, ctx);
    char *keys2[] = {"X-Ok"};
    char *values2[] = {"line\r\nInjected: 1"};
    struct sl_strmap hm2 = {keys2, values2, 1};
    ctx = fn_new(f, &sl_function_http, kv, &hm2, &r);
    assert_int_equal(r, SL_ECONFIG);
    fn_free(&sl_function_http, ctx);
}

static void test_httpc_fn_lambda_unsigned(void **state)
{
    struct fx *f = *state;
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d/", f->srv.port);
    const char *kv[] = {"endpoint", endpoint, "function_name", "function", NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_lambda, kv, NULL, &r);
    assert_int_equal(r, 0);

    srv_set(&f->srv, 200, NULL, "\"done\"");
    invoke(f, &sl_function_lambda, ctx, "{\"Records\":[]}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_SUCCESS);
    assert_string_equal(f->res_body, "\"done\"");
    struct srv_req rq = srv_req_get(&f->srv, 0);
    assert_string_equal(rq.method, "POST");
    assert_string_equal(rq.path, "/2015-03-31/functions/function/invocations");
    char v[512];
    assert_true(head_get(rq.head, "X-Amz-Invocation-Type", v, sizeof(v)));
    assert_string_equal(v, "RequestResponse");
    assert_true(head_get(rq.head, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_false(head_get(rq.head, "Authorization", v, sizeof(v)));

    srv_set(&f->srv, 200, "X-Amz-Function-Error: Unhandled\r\n",
            "{\"errorMessage\":\"bad\",\"errorType\":\"ValueError\"}");
    invoke(f, &sl_function_lambda, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_string_equal(f->res_error_type, "Unhandled");
    assert_non_null(strstr(f->res_detail, "ValueError: bad"));

    srv_set(&f->srv, 429,
            "Retry-After: 2\r\nx-amzn-ErrorType: TooManyRequestsException:http://x/\r\n",
            "{\"Reason\":\"ConcurrentInvocationLimitExceeded\",\"message\":\"Rate exceeded\"}");
    invoke(f, &sl_function_lambda, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_THROTTLE);
    assert_int_equal(f->res.retry_after_ms, 2000);
    assert_string_equal(f->res_error_type, "TooManyRequestsException");

    srv_set(&f->srv, 404, "x-amzn-ErrorType: ResourceNotFoundException:http://internal/\r\n",
            "{\"Type\":\"User\",\"message\":\"Function not found: x\"}");
    invoke(f, &sl_function_lambda, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_SERVICE_ERROR);
    assert_int_equal(f->res.status, 404);
    assert_non_null(strstr(f->res_detail, "ResourceNotFoundException: Function not found: x"));

    srv_set(&f->srv, 502, NULL, "");
    invoke(f, &sl_function_lambda, ctx, "{}");
    assert_int_equal(f->res.outcome, SL_OUTCOME_SERVICE_ERROR);
    fn_free(&sl_function_lambda, ctx);

    /* Unsigned, an ARN goes into the path escaped, with the qualifier option. */
    const char *kv2[] = {"endpoint",
                         endpoint,
                         "function_name",
                         "arn:aws:lambda:us-east-1:000000000000:function:fn-1",
                         "qualifier",
                         "$LATEST",
                         NULL};
    ctx = fn_new(f, &sl_function_lambda, kv2, NULL, &r);
    assert_int_equal(r, 0);
    srv_set(&f->srv, 200, NULL, "{}");
    invoke(f, &sl_function_lambda, ctx, "{}");
    rq = srv_req_get(&f->srv, 5);
    assert_string_equal(rq.path, "/2015-03-31/functions/"
                                 "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Afn-1/"
                                 "invocations?Qualifier=%24LATEST");
    fn_free(&sl_function_lambda, ctx);
}

static void peer_verify_raw(const char *head,
                            size_t head_len,
                            const char *body,
                            size_t body_len,
                            const char *token,
                            char *signed_out,
                            size_t len);

static void test_httpc_fn_lambda_signed(void **state)
{
    struct fx *f = *state;
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_SESSION_TOKEN", "SESSIONTOKEN123", 1);
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f->srv.port);
    const char *kv[] = {"endpoint", endpoint, "function_name",
                        "arn:aws:lambda:eu-west-1:123456789012:function:my-fn:prod", NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_lambda, kv, NULL, &r);
    assert_int_equal(r, 0);
    srv_set(&f->srv, 200, NULL, "{}");
    /* Over 1 MiB, so curl adds Expect: 100-continue and must not stall on it. */
    size_t n = 2 * 1024 * 1024;
    char *body = malloc(n + 1);
    memset(body, 'a', n);
    body[0] = '"';
    body[n - 1] = '"';
    body[n] = '\0';
    invoke(f, &sl_function_lambda, ctx, body);
    assert_int_equal(f->res.outcome, SL_OUTCOME_SUCCESS);
    struct srv_req rq = srv_req_get(&f->srv, 0);
    /* Signed, an ARN goes into the path escaped too, so another account's function is invoked
     * by its ARN (curl's signer could not sign an escaped path: main invoked "my-fn"). */
    assert_string_equal(rq.path,
                        "/2015-03-31/functions/"
                        "arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Amy-fn%3Aprod/"
                        "invocations");
    assert_int_equal(rq.body_len, n);
    char signed_names[512];
    peer_verify_raw(rq.head, strlen(rq.head), rq.body, rq.body_len, "SESSIONTOKEN123", signed_names,
                    sizeof(signed_names));
    assert_string_equal(signed_names, "content-type;host;x-amz-date;x-amz-invocation-type;"
                                      "x-amz-security-token");
    char v[1024];
    assert_true(head_get(rq.head, "Authorization", v, sizeof(v)));
    assert_true(strncmp(v, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/", 40) == 0);
    assert_non_null(strstr(v, "/eu-west-1/lambda/aws4_request"));
    assert_non_null(strstr(v, "x-amz-security-token"));
    assert_true(head_get(rq.head, "X-Amz-Date", v, sizeof(v)));
    assert_true(head_get(rq.head, "X-Amz-Security-Token", v, sizeof(v)));
    assert_string_equal(v, "SESSIONTOKEN123");
    assert_null(strstr(rq.head, "wJalrXUtnFEMI"));
    fn_free(&sl_function_lambda, ctx);
    free(body);

    /* Without a session token there is no token header; the region option wins. */
    unsetenv("AWS_SESSION_TOKEN");
    const char *kv2[] = {"endpoint", endpoint, "function_name", "fn", "region", "ap-south-1", NULL};
    ctx = fn_new(f, &sl_function_lambda, kv2, NULL, &r);
    assert_int_equal(r, 0);
    invoke(f, &sl_function_lambda, ctx, "{}");
    rq = srv_req_get(&f->srv, 1);
    assert_false(head_get(rq.head, "X-Amz-Security-Token", v, sizeof(v)));
    assert_true(head_get(rq.head, "Authorization", v, sizeof(v)));
    assert_non_null(strstr(v, "/ap-south-1/lambda/aws4_request"));
    fn_free(&sl_function_lambda, ctx);

    /* Half-set credentials are a configuration error. */
    unsetenv("AWS_SECRET_ACCESS_KEY");
    ctx = fn_new(f, &sl_function_lambda, kv2, NULL, &r);
    assert_int_equal(r, SL_ECONFIG);
    fn_free(&sl_function_lambda, ctx);
}

static void test_httpc_fn_lambda_timeout(void **state)
{
    struct fx *f = *state;
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f->srv.port);
    const char *kv[] = {"endpoint", endpoint, "function_name", "function", "timeout", "200", NULL};
    int r;
    void *ctx = fn_new(f, &sl_function_lambda, kv, NULL, &r);
    assert_int_equal(r, 0);
    f->srv.hang = true;
    uint64_t t0 = uv_hrtime();
    invoke(f, &sl_function_lambda, ctx, "{}");
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(f->res.outcome, SL_OUTCOME_TIMEOUT);
    assert_string_equal(f->res_error_type, "Unhandled"); /* the function's: counted */
    assert_true(ms >= 350 && ms < 3000);                 /* timeout plus margin */
    fn_free(&sl_function_lambda, ctx);

    const char *bad[][2] = {{"endpoint", "localhost:9000"},
                            {"function_name", "arn:aws:s3:::bucket"},
                            {"function_name", "a/b"},
                            {"qualifier", "x:y"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *kvb[] = {"endpoint", endpoint, "function_name", "fn", bad[i][0],
                             bad[i][1],  NULL};
        ctx = fn_new(f, &sl_function_lambda, kvb, NULL, &r);
        assert_int_equal(r, SL_ECONFIG);
        fn_free(&sl_function_lambda, ctx);
    }
}

/* ---- signed requests, checked by a verifier at the other end ---- */

#define PEER_KEY_ID "AKIDEXAMPLE"
#define PEER_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define PEER_TOKEN  "SESSION/TOKEN+1=="

/* What the peer received of the last request (written on its thread before it answers, read
 * after the answer arrived). */
struct peer_seen {
    char head[8192];
    size_t head_len;
    char *body;
    size_t body_len;
};

static void
peer_answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct peer_seen *seen = arg;
    size_t n = head_len < sizeof(seen->head) - 1 ? head_len : sizeof(seen->head) - 1;
    memcpy(seen->head, head, n);
    seen->head[n] = '\0';
    seen->head_len = n;
    free(seen->body);
    seen->body = malloc(body_len + 1);
    memcpy(seen->body, body, body_len);
    seen->body_len = body_len;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    (void)http_peer_send_all(fd, ok, sizeof(ok) - 1);
}

/* Verifies the request in seen the way AWS does, from what arrived only: every header named in
 * SignedHeaders is there, every header AWS requires signed (host, content-type, x-amz-*) is
 * signed, and signing the received method, target, signed headers and body again at the
 * received X-Amz-Date gives the received Authorization. Fails the test otherwise. Returns the
 * SignedHeaders list in signed_out. */
static void peer_verify_raw(const char *head,
                            size_t head_len,
                            const char *body,
                            size_t body_len,
                            const char *token,
                            char *signed_out,
                            size_t len)
{
    char method[16], target[1024];
    assert_int_equal(sscanf(head, "%15s %1023s", method, target), 2);
    char *q = strchr(target, '?');
    if (q) {
        *q++ = '\0';
    }
    const char *auth = http_peer_header(head, head_len, "Authorization");
    assert_non_null(auth);
    const char *sh = strstr(auth, "SignedHeaders=");
    assert_non_null(sh);
    sh += 14;
    size_t shl = strcspn(sh, ",");
    snprintf(signed_out, len, "%.*s", (int)shl, sh);
    /* Each header line received: is it signed? */
    struct sl_sigv4_header hs[32];
    size_t n = 0;
    const char *host = NULL, *date = NULL, *tok = NULL;
    const char *p = strstr(head, "\r\n") + 2;
    while (p < head + head_len && strncmp(p, "\r\n", 2) != 0) {
        const char *eol = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        assert_non_null(colon);
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(colon - p), p);
        for (char *c = name; *c; c++) {
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        }
        const char *v = colon + 1;
        while (*v == ' ') {
            v++;
        }
        char semi[80];
        snprintf(semi, sizeof(semi), ";%s;", name);
        char list[512];
        snprintf(list, sizeof(list), ";%s;", signed_out);
        bool is_signed = strstr(list, semi) != NULL;
        bool must = strcmp(name, "host") == 0 || strcmp(name, "content-type") == 0 ||
                    strncmp(name, "x-amz-", 6) == 0;
        if (must && !is_signed) {
            fail_msg("header %s arrived unsigned (SignedHeaders=%s)", name, signed_out);
        }
        if (strcmp(name, "host") == 0) {
            host = v;
        } else if (strcmp(name, "x-amz-date") == 0) {
            date = v;
        } else if (strcmp(name, "x-amz-security-token") == 0) {
            tok = v;
        } else if (is_signed) {
            assert_true(n < 32);
            hs[n++] = (struct sl_sigv4_header){p, (size_t)(colon - p), v, (size_t)(eol - v)};
        }
        p = eol + 2;
    }
    /* Every signed name arrived. */
    char list[512];
    snprintf(list, sizeof(list), "%s", signed_out);
    char *save = NULL;
    for (char *name = strtok_r(list, ";", &save); name; name = strtok_r(NULL, ";", &save)) {
        if (!http_peer_header(head, head_len, name)) {
            fail_msg("signed header %s never arrived", name);
        }
    }
    assert_non_null(host);
    assert_non_null(date);
    if (token) {
        assert_non_null(tok);
        assert_true(strncmp(tok, token, strlen(token)) == 0);
    } else {
        assert_null(tok);
    }
    struct tm tm = {0};
    assert_int_equal(sscanf(date, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t wall_ms = (int64_t)timegm(&tm) * 1000;
    char hostv[128];
    snprintf(hostv, sizeof(hostv), "%.*s", (int)strcspn(host, "\r"), host);
    const char *cred = strstr(auth, "Credential=");
    assert_non_null(cred);
    char scope[128];
    snprintf(scope, sizeof(scope), "%.*s", (int)strcspn(cred + 11, ","), cred + 11);
    char *region = strchr(scope, '/') ? strchr(strchr(scope, '/') + 1, '/') + 1 : NULL;
    assert_non_null(region);
    char *service = strchr(region, '/');
    *service++ = '\0';
    *strchr(service, '/') = '\0';
    struct sl_sigv4 *again;
    assert_int_equal(sl_sigv4_new(PEER_KEY_ID, PEER_SECRET, token, &again), 0);
    struct sl_sigv4_req req = {.method = method,
                               .host = hostv,
                               .path = target,
                               .query = q,
                               .headers = hs,
                               .n_headers = n,
                               .payload = body,
                               .payload_len = body_len,
                               .region = region,
                               .service = service};
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    assert_int_equal(sl_sigv4_sign(again, &req, wall_ms, &out), 0);
    size_t alen = strcspn(auth, "\r");
    if (strlen(out.authorization) != alen || strncmp(out.authorization, auth, alen) != 0) {
        fail_msg("signature does not verify:\n%.*s\nwant\n%s\ncanonical request:\n%s", (int)alen,
                 auth, out.authorization, out.canonical.data);
    }
    sl_sigv4_out_fini(&out);
    sl_sigv4_free(again);
}

static void
peer_verify(const struct peer_seen *seen, const char *token, char *signed_out, size_t len)
{
    peer_verify_raw(seen->head, seen->head_len, seen->body, seen->body_len, token, signed_out, len);
}

/* The request curl sends carries exactly the headers signed: the Host with its port, an
 * explicit Content-Type (curl would add an unsigned form type to a POST), no "Expect:" removal
 * in SignedHeaders and no Expect sent for a large body, the session token signed, the escaped
 * path and unsorted query as AWS canonicalises them; and a verifier at the other end accepts
 * the signature. On main, curl's signer listed "expect" in SignedHeaders of a large body. */
static void test_httpc_signed_request_is_what_was_signed(void **state)
{
    struct fx *f = *state;
    struct peer_seen seen = {0};
    struct http_peer peer;
    http_peer_start(&peer, peer_answer, &seen);
    struct sl_sigv4 *signer;
    assert_int_equal(sl_sigv4_new(PEER_KEY_ID, PEER_SECRET, PEER_TOKEN, &signer), 0);
    struct sl_clock_fake clock;
    sl_clock_fake_init(&clock, 0, 1440938160LL * 1000); /* 2015-08-30T12:36:00Z */
    char url[256];
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/2015-03-31/functions/arn%%3Aaws%%3Alambda%%3Aus-east-1%%3A1%%3A"
             "function%%3Af/invocations?Qualifier=%%24LATEST&A=b%%20c",
             peer.port);
    size_t big = 2 * 1024 * 1024;
    char *body = malloc(big);
    memset(body, 'x', big);
    struct curl_slist *hdrs = curl_slist_append(NULL, "X-Amz-Target: Kinesis_20131202.ListShards");
    hdrs = curl_slist_append(hdrs, "Accept:");           /* a removal: not sent, not signed */
    hdrs = curl_slist_append(hdrs, "X-Empty;");          /* sent empty, signed empty */
    hdrs = curl_slist_append(hdrs, "X-Spaces:  a   b "); /* signed trimmed and collapsed */
    hdrs = curl_slist_append(hdrs, "X-Amz-Date: 19990101T000000Z"); /* the signer's: dropped */
    struct sl_http_req req = {.method = "POST",
                              .url = url,
                              .headers = hdrs,
                              .body = body,
                              .body_len = big,
                              .timeout_ms = 10000,
                              .aws_signer = signer,
                              .aws_region = "eu-west-1",
                              .aws_service = "lambda",
                              .aws_clock = &clock.clock};
    request(f, &req);
    assert_int_equal(f->status, 200);
    char signed_names[512];
    peer_verify(&seen, PEER_TOKEN, signed_names, sizeof(signed_names));
    assert_string_equal(signed_names, "content-type;host;x-amz-date;x-amz-security-token;"
                                      "x-amz-target;x-empty;x-spaces");
    char hostv[64];
    snprintf(hostv, sizeof(hostv), "127.0.0.1:%d", peer.port);
    const char *v = http_peer_header(seen.head, seen.head_len, "Host");
    assert_true(v && strncmp(v, hostv, strlen(hostv)) == 0 && v[strlen(hostv)] == '\r');
    v = http_peer_header(seen.head, seen.head_len, "Content-Type");
    assert_true(v && strncmp(v, "application/x-www-form-urlencoded\r", 34) == 0);
    assert_null(http_peer_header(seen.head, seen.head_len, "Expect"));
    assert_null(http_peer_header(seen.head, seen.head_len, "Accept"));
    v = http_peer_header(seen.head, seen.head_len, "X-Amz-Date");
    assert_true(v && strncmp(v, "20150830T123600Z\r", 17) == 0);
    assert_int_equal(seen.body_len, big);
    assert_null(strstr(seen.head, "wJalrXUtnFEMI"));
    curl_slist_free_all(hdrs);

    /* A caller's Content-Type is the one signed; a GET has none; no token, no token header. */
    sl_sigv4_free(signer);
    assert_int_equal(sl_sigv4_new(PEER_KEY_ID, PEER_SECRET, NULL, &signer), 0);
    hdrs = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.1");
    req.headers = hdrs;
    req.body = "{}";
    req.body_len = 2;
    req.aws_signer = signer;
    req.aws_service = "kinesis";
    request(f, &req);
    peer_verify(&seen, NULL, signed_names, sizeof(signed_names));
    assert_string_equal(signed_names, "content-type;host;x-amz-date");
    v = http_peer_header(seen.head, seen.head_len, "Content-Type");
    assert_true(v && strncmp(v, "application/x-amz-json-1.1\r", 27) == 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/?b=1&a=2", peer.port);
    req.method = "GET";
    req.headers = NULL;
    req.body = NULL;
    req.body_len = 0;
    request(f, &req);
    peer_verify(&seen, NULL, signed_names, sizeof(signed_names));
    assert_string_equal(signed_names, "host;x-amz-date");
    assert_int_equal(seen.body_len, 0);
    curl_slist_free_all(hdrs);

    /* A request that cannot be signed is refused before anything is sent. */
    req.aws_region = "";
    assert_int_equal(sl_httpc_request(f->h, &req, on_resp, f), SL_EINVAL);

    sl_sigv4_free(signer);
    http_peer_stop(&peer);
    free(seen.body);
    free(body);
}

/* ---- aws.c ---- */

static void test_httpc_aws_profiles(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char cred[512], conf[512];
    snprintf(cred, sizeof(cred), "%s/credentials", dir);
    snprintf(conf, sizeof(conf), "%s/config", dir);
    const char ctext[] = "# comment\n[default]\naws_access_key_id = DEFKEY\n"
                         "aws_secret_access_key = DEFSECRET\n\n[dev]\r\n"
                         "aws_access_key_id=DEVKEY\r\naws_secret_access_key = DEVSECRET \r\n"
                         "aws_session_token = DEVTOKEN\r\n[half]\naws_access_key_id = H\n";
    test_write_file(cred, "w", ctext, sizeof(ctext) - 1);
    const char ftext[] = "[default]\nregion = us-west-2\n"
                         "[profile dev]\nregion = eu-central-1\nservices = local\n"
                         "endpoint_url = http://all:1\n"
                         "[profile cfg]\naws_access_key_id = CFGKEY\n"
                         "aws_secret_access_key = CFGSECRET\n"
                         "[services local]\nsqs =\n  endpoint_url = http://sqs:9324\n"
                         "lambda =\n  endpoint_url = http://lambda:9001\n";
    test_write_file(conf, "w", ftext, sizeof(ftext) - 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);

    struct sl_aws_creds c;
    char err[256];
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "DEFKEY");
    assert_string_equal(c.secret_access_key, "DEFSECRET");
    assert_null(c.session_token);
    sl_aws_creds_fini(&c);
    char *region = sl_aws_region();
    assert_string_equal(region, "us-west-2");
    sl_free(region);
    assert_null(sl_aws_endpoint_url("lambda"));

    setenv("AWS_PROFILE", "dev", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "DEVKEY");
    assert_string_equal(c.secret_access_key, "DEVSECRET");
    assert_string_equal(c.session_token, "DEVTOKEN");
    assert_string_equal(c.source, "credentials file");
    sl_aws_creds_fini(&c);
    region = sl_aws_region();
    assert_string_equal(region, "eu-central-1");
    sl_free(region);
    char *url = sl_aws_endpoint_url("lambda");
    assert_string_equal(url, "http://lambda:9001");
    sl_free(url);
    url = sl_aws_endpoint_url("sqs");
    assert_string_equal(url, "http://sqs:9324");
    sl_free(url);
    url = sl_aws_endpoint_url("kinesis");
    assert_string_equal(url, "http://all:1");
    sl_free(url);
    setenv("AWS_ENDPOINT_URL", "http://env:2", 1);
    url = sl_aws_endpoint_url("kinesis");
    assert_string_equal(url, "http://env:2");
    sl_free(url);
    setenv("AWS_ENDPOINT_URL_LAMBDA", "http://env-lambda:3", 1);
    url = sl_aws_endpoint_url("lambda");
    assert_string_equal(url, "http://env-lambda:3");
    sl_free(url);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true", 1);
    assert_null(sl_aws_endpoint_url("lambda"));
    setenv("AWS_REGION", "sa-east-1", 1);
    region = sl_aws_region();
    assert_string_equal(region, "sa-east-1");
    sl_free(region);

    setenv("AWS_PROFILE", "cfg", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "CFGKEY");
    assert_string_equal(c.source, "config file");
    sl_aws_creds_fini(&c);

    setenv("AWS_PROFILE", "half", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), SL_ECONFIG);
    assert_null(strstr(err, "DEFSECRET"));
    setenv("AWS_PROFILE", "none", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), SL_ENOTFOUND);

    /* The environment wins over the files. */
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "ENVKEY");
    assert_string_equal(c.source, "environment");
    sl_aws_creds_fini(&c);

    unset_aws_env();
    test_rmtree(dir);
    free(dir);
}

static void test_httpc_aws_text(void **state)
{
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_aws_uri_encode(&b, "a b/c:$~_.-Z9", false), 0);
    assert_string_equal(b.data, "a%20b%2Fc%3A%24~_.-Z9");
    sl_buf_truncate(&b, 0);
    assert_int_equal(sl_aws_uri_encode(&b, "x/y", true), 0);
    assert_string_equal(b.data, "x/y");
    sl_buf_fini(&b);

    struct sl_aws_lambda_ref ref;
    assert_int_equal(
        sl_aws_lambda_ref_parse("arn:aws:lambda:us-east-1:123456789012:function:f-1:$LATEST", &ref),
        0);
    assert_string_equal(ref.region, "us-east-1");
    assert_string_equal(ref.account, "123456789012");
    assert_string_equal(ref.name, "f-1");
    assert_string_equal(ref.qualifier, "$LATEST");
    sl_aws_lambda_ref_fini(&ref);
    assert_int_equal(sl_aws_lambda_ref_parse("123456789012:function:f_2", &ref), 0);
    assert_string_equal(ref.name, "f_2");
    assert_null(ref.qualifier);
    assert_null(ref.region);
    sl_aws_lambda_ref_fini(&ref);
    assert_int_equal(sl_aws_lambda_ref_parse("my-fn:live", &ref), 0);
    assert_string_equal(ref.name, "my-fn");
    assert_string_equal(ref.qualifier, "live");
    sl_aws_lambda_ref_fini(&ref);
    static const char *const bad[] = {"",
                                      "a:b:c",
                                      "arn:aws:sqs:us-east-1:1:function:x",
                                      "arn:aws:lambda:us-east-1:1:layer:x",
                                      "x y",
                                      "f:",
                                      "a:b:c:d:e:f:g:h:i:j"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_aws_lambda_ref_parse(bad[i], &ref) != SL_EINVAL) {
            fail_msg("'%s' parsed", bad[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_httpc_body_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_idle_connection_closed_by_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_headers_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_http_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_http_timeout_vs_connect_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_httpc_sockets_cloexec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_http_emfile_is_resource_exhausted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_lambda_unsigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_lambda_signed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_fn_lambda_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_signed_request_is_what_was_signed, setup,
                                        teardown),
        cmocka_unit_test(test_httpc_aws_profiles),
        cmocka_unit_test(test_httpc_aws_text),
    };
    return cmocka_run_group_tests_name("httpc", tests, NULL, NULL);
}

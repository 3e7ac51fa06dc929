/* SPDX-License-Identifier: Apache-2.0 */
/* test_httpd.c: sluice's HTTP server (httpd.c) on a real loop, with the project's HTTP client
 * (httpc.c) on the same loop as its peer: an answer given inside the handler, an answer given
 * later (the connection suspended, then resumed), a body over the limit, the busy count (a
 * request counts until its answer is sent), a quiesced server refusing new connections and
 * closing the kept-alive ones with its answers, and the forms `listen` takes. Waits are
 * test_run_until deadlines on conditions, never sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "helpers.h"
#include "httpc.h"
#include "httpd.h"

struct fixture {
    uv_loop_t loop;
    struct sl_httpd *httpd;
    struct sl_httpc *httpc;
    char url[64];
    bool later;                /* the handler keeps the request instead of answering */
    struct sl_httpd_req *kept; /* the request kept */
    char resp_conn[32];        /* the answer's Connection header, "" without one */
    int handled;
    bool saw_too_large;
    char body_seen[64];
    bool answered;
    long status;
    long curl_code;
    char resp_body[256];
    char resp_header[64];
};

static void handler(void *arg, struct sl_httpd_req *req)
{
    struct fixture *f = arg;
    f->handled++;
    size_t len;
    const char *body = sl_httpd_req_body(req, &len);
    (void)snprintf(f->body_seen, sizeof(f->body_seen), "%.*s", (int)len, body);
    f->saw_too_large = sl_httpd_req_too_large(req);
    if (f->later) {
        f->kept = req;
        return;
    }
    assert_int_equal(sl_httpd_req_add_header(req, "X-Echo", sl_httpd_req_path(req)), 0);
    char *out = sl_strdup(f->saw_too_large ? "too large" : "now");
    sl_httpd_respond(req, f->saw_too_large ? 413 : 200, "text/plain", out, strlen(out));
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    setenv("NO_PROXY", "127.0.0.1", 1);
    uv_loop_init(&f->loop);
    struct sl_httpd_conf conf = {.listen = "127.0.0.1:0",
                                 .max_body_bytes = 64,
                                 .max_conns = 8,
                                 .idle_timeout_s = 10,
                                 .handler = handler,
                                 .arg = f};
    char err[256] = "";
    assert_int_equal(sl_httpd_new(&f->loop, &conf, &f->httpd, err, sizeof(err)), 0);
    assert_true(sl_httpd_port(f->httpd) > 0);
    (void)snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/path/x", sl_httpd_port(f->httpd));
    assert_int_equal(sl_httpc_new(&f->loop, &f->httpc), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_httpc_free(f->httpc);
    sl_httpd_free(f->httpd);
    test_close_all(&f->loop);
    (void)uv_loop_close(&f->loop);
    free(f);
    return 0;
}

static void client_cb(void *arg, const struct sl_http_resp *resp)
{
    struct fixture *f = arg;
    f->answered = true;
    f->status = resp->status;
    f->curl_code = (long)resp->curl_code;
    (void)snprintf(f->resp_body, sizeof(f->resp_body), "%.*s", (int)resp->body_len, resp->body);
    const char *h = sl_http_resp_header(resp, "X-Echo");
    (void)snprintf(f->resp_header, sizeof(f->resp_header), "%s", h ? h : "");
    h = sl_http_resp_header(resp, "Connection");
    (void)snprintf(f->resp_conn, sizeof(f->resp_conn), "%s", h ? h : "");
}

static void post(struct fixture *f, const char *body)
{
    f->answered = false;
    struct sl_http_req req = {.method = "POST",
                              .url = f->url,
                              .body = body,
                              .body_len = strlen(body),
                              .timeout_ms = 10000,
                              .max_response_bytes = 4096};
    assert_int_equal(sl_httpc_request(f->httpc, &req, client_cb, f), 0);
}

static bool is_answered(void *arg)
{
    return ((struct fixture *)arg)->answered;
}

static bool is_idle(void *arg)
{
    return sl_httpd_busy(((struct fixture *)arg)->httpd) == 0;
}

static bool is_handled(void *arg)
{
    return ((struct fixture *)arg)->handled > 0;
}

static void test_httpd_answers_now(void **state)
{
    struct fixture *f = *state;
    post(f, "hello");
    assert_true(test_run_until(&f->loop, is_answered, f, 5000));
    assert_int_equal(f->status, 200);
    assert_string_equal(f->resp_body, "now");
    assert_string_equal(f->resp_header, "/path/x");
    assert_string_equal(f->body_seen, "hello");
    assert_int_equal(sl_httpd_busy(f->httpd), 0);
}

static void test_httpd_answers_later(void **state)
{
    struct fixture *f = *state;
    f->later = true;
    post(f, "wait for me");
    assert_true(test_run_until(&f->loop, is_handled, f, 5000));
    assert_non_null(f->kept);
    assert_int_equal(sl_httpd_busy(f->httpd), 1);
    /* the connection waits, suspended: a few loop turns answer nothing */
    for (int i = 0; i < 5; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    assert_false(f->answered);
    char *out = sl_strdup("later");
    sl_httpd_respond(f->kept, 202, "text/plain", out, strlen(out));
    f->kept = NULL;
    /* answered, not yet sent: still busy (a drain waits for the answer to leave) */
    assert_int_equal(sl_httpd_busy(f->httpd), 1);
    assert_true(test_run_until(&f->loop, is_answered, f, 5000));
    assert_int_equal(f->status, 202);
    assert_string_equal(f->resp_body, "later");
    assert_string_equal(f->body_seen, "wait for me");
    assert_string_equal(f->resp_conn, "");
    assert_true(test_run_until(&f->loop, is_idle, f, 5000));
}

/* Quiesced with a request in hand: that request is still answered, and its answer closes the
 * connection so a keep-alive client does not stay. */
static void test_httpd_quiesce_answers_and_closes(void **state)
{
    struct fixture *f = *state;
    f->later = true;
    post(f, "in hand");
    assert_true(test_run_until(&f->loop, is_handled, f, 5000));
    sl_httpd_quiesce(f->httpd);
    sl_httpd_quiesce(f->httpd); /* twice is once */
    char *out = sl_strdup("bye");
    sl_httpd_respond(f->kept, 200, "text/plain", out, strlen(out));
    f->kept = NULL;
    assert_true(test_run_until(&f->loop, is_answered, f, 5000));
    assert_int_equal(f->status, 200);
    assert_string_equal(f->resp_body, "bye");
    assert_string_equal(f->resp_conn, "close");
    assert_true(test_run_until(&f->loop, is_idle, f, 5000));
}

static void test_httpd_body_too_large(void **state)
{
    struct fixture *f = *state;
    char big[200];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    post(f, big);
    assert_true(test_run_until(&f->loop, is_answered, f, 5000));
    assert_true(f->saw_too_large);
    assert_string_equal(f->body_seen, ""); /* not kept */
    assert_int_equal(f->status, 413);
    /* the next request on the server is read whole again */
    post(f, "small");
    assert_true(test_run_until(&f->loop, is_answered, f, 5000));
    assert_int_equal(f->status, 200);
    assert_string_equal(f->body_seen, "small");
}

static void test_httpd_quiesce_refuses_new_connections(void **state)
{
    struct fixture *f = *state;
    sl_httpd_quiesce(f->httpd);
    f->handled = 0;
    post(f, "x");
    assert_true(test_run_until(&f->loop, is_answered, f, 5000));
    assert_int_equal(f->status, 0);
    assert_int_equal(f->handled, 0);
}

static void test_httpd_parse_listen(void **state)
{
    (void)state;
    char *host = NULL;
    int port = -1;
    char err[128];
    assert_int_equal(sl_httpd_parse_listen("127.0.0.1:4573", &host, &port, err, sizeof(err)), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 4573);
    sl_free(host);
    assert_int_equal(sl_httpd_parse_listen("[::1]:0", &host, &port, err, sizeof(err)), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    sl_free(host);
    const char *bad[] = {"4573", ":4573", "host:", "::1:80", "h:65536", "h:12a", "[::1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        host = NULL;
        if (sl_httpd_parse_listen(bad[i], &host, &port, err, sizeof(err)) != SL_EINVAL) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
        assert_null(host);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_httpd_answers_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpd_answers_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpd_body_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpd_quiesce_refuses_new_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_httpd_quiesce_answers_and_closes, setup, teardown),
        cmocka_unit_test(test_httpd_parse_listen),
    };
    return cmocka_run_group_tests_name("httpd", tests, NULL, NULL);
}

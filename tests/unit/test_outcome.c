/* SPDX-License-Identifier: Apache-2.0 */
/* test_outcome.c: how HTTP and Lambda Invoke answers are classified into outcomes
 * (reference/esm.md §4.1), and how Retry-After is read. Pure functions; no loop, no I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "function.h"
#include "httpc.h"

struct http_case {
    long status;
    enum sl_outcome want;
};

static void test_outcome_http_status(void **state)
{
    (void)state;
    static const struct http_case cases[] = {
        {200, SL_OUTCOME_SUCCESS},        {201, SL_OUTCOME_SUCCESS},
        {204, SL_OUTCOME_SUCCESS},        {299, SL_OUTCOME_SUCCESS},
        {301, SL_OUTCOME_FUNCTION_ERROR}, {400, SL_OUTCOME_FUNCTION_ERROR},
        {404, SL_OUTCOME_FUNCTION_ERROR}, {413, SL_OUTCOME_FUNCTION_ERROR},
        {429, SL_OUTCOME_THROTTLE},       {500, SL_OUTCOME_FUNCTION_ERROR},
        {502, SL_OUTCOME_FUNCTION_ERROR}, {503, SL_OUTCOME_THROTTLE},
        {504, SL_OUTCOME_FUNCTION_ERROR}, {199, SL_OUTCOME_FUNCTION_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum sl_outcome got = sl_outcome_from_http_status(cases[i].status);
        if (got != cases[i].want) {
            fail_msg("status %ld: got %s, want %s", cases[i].status, sl_outcome_name(got),
                     sl_outcome_name(cases[i].want));
        }
    }
}

struct lambda_case {
    long status;
    const char *function_error;
    enum sl_outcome want;
};

static void test_outcome_lambda(void **state)
{
    (void)state;
    static const struct lambda_case cases[] = {
        {200, NULL, SL_OUTCOME_SUCCESS},
        {200, "Unhandled", SL_OUTCOME_FUNCTION_ERROR},
        {200, "Handled", SL_OUTCOME_FUNCTION_ERROR},
        {202, NULL, SL_OUTCOME_SUCCESS},
        {204, NULL, SL_OUTCOME_SUCCESS},
        {400, NULL, SL_OUTCOME_SERVICE_ERROR},
        {403, NULL, SL_OUTCOME_SERVICE_ERROR},
        {404, NULL, SL_OUTCOME_SERVICE_ERROR},
        {413, NULL, SL_OUTCOME_SERVICE_ERROR},
        {429, NULL, SL_OUTCOME_THROTTLE},
        {500, NULL, SL_OUTCOME_SERVICE_ERROR},
        {502, NULL, SL_OUTCOME_SERVICE_ERROR},
        {503, NULL, SL_OUTCOME_SERVICE_ERROR},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum sl_outcome got = sl_outcome_from_lambda(cases[i].status, cases[i].function_error);
        if (got != cases[i].want) {
            fail_msg("status %ld error %s: got %s, want %s", cases[i].status,
                     cases[i].function_error ? cases[i].function_error : "-", sl_outcome_name(got),
                     sl_outcome_name(cases[i].want));
        }
    }
}

static void test_outcome_names(void **state)
{
    (void)state;
    assert_string_equal(sl_outcome_name(SL_OUTCOME_SUCCESS), "success");
    assert_string_equal(sl_outcome_name(SL_OUTCOME_TIMEOUT), "timeout");
    assert_string_equal(sl_outcome_name(SL_OUTCOME_RESOURCE_EXHAUSTED), "resource_exhausted");
    for (int o = 0; o < SL_OUTCOME_COUNT; o++) {
        assert_string_not_equal(sl_outcome_name((enum sl_outcome)o), "unknown");
    }
    assert_string_equal(sl_outcome_name(SL_OUTCOME_COUNT), "unknown");
}

/* A spawn that fails for lack of sluice's own resources is not the function's fault; one that
 * cannot find or run the program is. */
static void test_outcome_spawn_error(void **state)
{
    (void)state;
    static const int resource[] = {UV_EMFILE, UV_ENFILE, UV_EAGAIN, UV_ENOMEM, UV_ENOBUFS};
    static const int function[] = {UV_ENOENT, UV_EACCES, UV_ENOTDIR, UV_ELOOP, UV_E2BIG,
                                   UV_EPERM,  UV_EINVAL, UV_EISDIR,  UV_EIO};
    for (size_t i = 0; i < sizeof(resource) / sizeof(resource[0]); i++) {
        if (sl_outcome_from_spawn_error(resource[i]) != SL_OUTCOME_RESOURCE_EXHAUSTED) {
            fail_msg("%s: want resource_exhausted", uv_err_name(resource[i]));
        }
    }
    for (size_t i = 0; i < sizeof(function) / sizeof(function[0]); i++) {
        if (sl_outcome_from_spawn_error(function[i]) != SL_OUTCOME_FUNCTION_ERROR) {
            fail_msg("%s: want function_error", uv_err_name(function[i]));
        }
    }
}

/* What curl's answer without an HTTP status means: a timeout after the request went out is
 * the function's (counted); one while connecting is a transport error; a socket that could
 * not be opened for lack of descriptors is sluice's. */
static void test_outcome_from_transport(void **state)
{
    (void)state;
    char detail[128];
    struct sl_invoke_result res;
    struct sl_http_resp resp = {.curl_code = CURLE_OPERATION_TIMEDOUT,
                                .curl_error = "Operation timed out after 1000 milliseconds",
                                .request_sent = true};
    assert_true(sl_invoke_result_from_transport(&resp, &res, detail, sizeof(detail)));
    assert_int_equal(res.outcome, SL_OUTCOME_TIMEOUT);
    assert_string_equal(res.error_type, "Unhandled");
    resp = (struct sl_http_resp){.curl_code = CURLE_OPERATION_TIMEDOUT,
                                 .curl_error = "Connection timed out after 1000 milliseconds"};
    assert_true(sl_invoke_result_from_transport(&resp, &res, detail, sizeof(detail)));
    assert_int_equal(res.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    assert_null(res.error_type);
    resp = (struct sl_http_resp){.curl_code = CURLE_COULDNT_CONNECT,
                                 .curl_error = "Could not connect",
                                 .socket_errno = EMFILE};
    assert_true(sl_invoke_result_from_transport(&resp, &res, detail, sizeof(detail)));
    assert_int_equal(res.outcome, SL_OUTCOME_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(res.detail, "EMFILE"));
    resp = (struct sl_http_resp){.curl_code = CURLE_COULDNT_CONNECT,
                                 .curl_error = "Connection refused"};
    assert_true(sl_invoke_result_from_transport(&resp, &res, detail, sizeof(detail)));
    assert_int_equal(res.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    resp = (struct sl_http_resp){.curl_code = CURLE_RECV_ERROR,
                                 .curl_error = "Connection reset by peer",
                                 .request_sent = true};
    assert_true(sl_invoke_result_from_transport(&resp, &res, detail, sizeof(detail)));
    assert_int_equal(res.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    resp = (struct sl_http_resp){.curl_code = CURLE_OK, .curl_error = "", .status = 500};
    assert_false(sl_invoke_result_from_transport(&resp, &res, detail, sizeof(detail)));
}

static int64_t retry_after(const char *value)
{
    struct sl_http_header h = {"retry-after", value};
    struct sl_http_resp resp = {.status = 429, .headers = &h, .n_headers = value ? 1 : 0};
    return sl_http_retry_after_ms(&resp);
}

static void test_outcome_retry_after(void **state)
{
    (void)state;
    assert_int_equal(retry_after(NULL), -1);
    assert_int_equal(retry_after(""), -1);
    assert_int_equal(retry_after("0"), 0);
    assert_int_equal(retry_after("7"), 7000);
    assert_int_equal(retry_after("junk"), -1);
    assert_int_equal(retry_after("12abc"), -1);
    assert_int_equal(retry_after("99999999999"), 24 * 3600 * 1000LL);
    /* An HTTP date in the past means "now". */
    assert_int_equal(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
    /* One in the future is a delay from now (allow a few seconds of slack). */
    char date[64];
    time_t t = time(NULL) + 120;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int64_t ms = retry_after(date);
    assert_true(ms >= 115000 && ms <= 120000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_http_status),    cmocka_unit_test(test_outcome_lambda),
        cmocka_unit_test(test_outcome_names),          cmocka_unit_test(test_outcome_spawn_error),
        cmocka_unit_test(test_outcome_from_transport), cmocka_unit_test(test_outcome_retry_after),
    };
    return cmocka_run_group_tests_name("outcome", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_outcome.c: how HTTP and Lambda Invoke answers are classified into outcomes
 * (reference/esm.md §4.1), and how Retry-After is read. Pure functions; no loop, no I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
    assert_string_equal(sl_outcome_name(SL_OUTCOME_COUNT), "unknown");
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
        cmocka_unit_test(test_outcome_http_status),
        cmocka_unit_test(test_outcome_lambda),
        cmocka_unit_test(test_outcome_names),
        cmocka_unit_test(test_outcome_retry_after),
    };
    return cmocka_run_group_tests_name("outcome", tests, NULL, NULL);
}

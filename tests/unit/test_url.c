/* SPDX-License-Identifier: Apache-2.0 */
/* test_url.c: url.c. The redacted form of a URL keeps what locates the service (scheme, host,
 * port, path) and hides what can be a secret (user-info, query, fragment), for URLs with and
 * without a scheme, IPv6 hosts, an '@' in the path and passwords with characters that end the
 * authority early; sl_url_check refuses schemes, hosts and ports a run could not use and shows
 * the URL redacted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "url.h"

static void expect_redacted(const char *url, const char *want)
{
    char buf[SL_URL_REDACTED_MAX];
    const char *got = sl_url_redact(url, buf, sizeof(buf));
    assert_ptr_equal(got, buf);
    if (strcmp(got, want) != 0) {
        print_error("url %s: got %s, want %s\n", url, got, want);
        fail();
    }
}

static void test_url_redact_user_info(void **state)
{
    (void)state;
    expect_redacted("http://carol:s3cret@host/path", "http://***@host/path");
    expect_redacted("https://token@host:8443/", "https://***@host:8443/");
    expect_redacted("http://a:b@c@host", "http://***@host");
    expect_redacted("http://host:8080/x", "http://host:8080/x");
    expect_redacted("file:///var/dlq", "file:///var/dlq");
    expect_redacted("file:///var/log/app-?.log", "file:///var/log/app-?.log");
    expect_redacted("kafka://orders-dlq", "kafka://orders-dlq");
}

static void test_url_redact_query_and_fragment(void **state)
{
    (void)state;
    expect_redacted("http://host/p?sig=abc&x=1", "http://host/p?***");
    expect_redacted("http://host/p#token=abc", "http://host/p");
    expect_redacted("http://u:p@host/p?sig=abc#frag", "http://***@host/p?***");
    expect_redacted("http://host?x", "http://host?***");
    expect_redacted("http://host#x", "http://host");
}

static void test_url_redact_no_scheme(void **state)
{
    (void)state;
    expect_redacted("user:pw@broker:9092", "***@broker:9092");
    expect_redacted("broker1:9092,broker2:9092", "broker1:9092,broker2:9092");
    expect_redacted("/var/log/a@b.log", "/var/log/a@b.log");
    expect_redacted("", "");
    expect_redacted("arn:aws:sqs:us-east-1:123456789012:q", "arn:aws:sqs:us-east-1:123456789012:q");
}

static void test_url_redact_ipv6(void **state)
{
    (void)state;
    expect_redacted("http://[::1]:8080/x", "http://[::1]:8080/x");
    expect_redacted("http://u:p@[::1]:8080/x?y", "http://***@[::1]:8080/x?***");
    expect_redacted("http://[fe80::1%25eth0]/", "http://[fe80::1%25eth0]/");
}

static void test_url_redact_at_in_path(void **state)
{
    (void)state;
    expect_redacted("http://host/users/a@b.com", "http://host/users/a@b.com");
    expect_redacted("http://host:80/a@b", "http://host:80/a@b");
}

static void test_url_redact_broken_password(void **state)
{
    (void)state;
    /* A raw '/' or '?' inside the password ends the authority early. */
    expect_redacted("http://carol:pa/ss@host/x", "http://***@host/x");
    expect_redacted("http://carol:pa?ss@host/x", "http://***@host/x");
    expect_redacted("http://carol:pa#ss", "http://carol:pa"); /* no '@': no user-info */
}

static void test_url_redact_truncates(void **state)
{
    (void)state;
    char buf[12];
    assert_string_equal(sl_url_redact("http://u:secret@hostname.example/", buf, sizeof(buf)),
                        "http://***@");
    char one[1];
    assert_string_equal(sl_url_redact("http://x", one, sizeof(one)), "");
}

static const char *const http_schemes[] = {"http", "https", NULL};

static void test_url_check(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(sl_url_check("http://127.0.0.1:8080/fn", http_schemes, false, err, 512), 0);
    assert_int_equal(sl_url_check("HTTPS://host/x?y=1", http_schemes, false, err, 512), 0);
    assert_int_equal(sl_url_check("http://[::1]:65535/", http_schemes, true, err, 512), 0);

    assert_int_equal(sl_url_check("http://127.0.0.1:99999/", http_schemes, false, err, 512),
                     SL_ECONFIG);
    assert_non_null(strstr(err, "\"http://127.0.0.1:99999/\""));
    assert_non_null(strstr(err, "port"));
    assert_non_null(strstr(err, "allowed: "));
    assert_int_equal(sl_url_check("http://host:0/", http_schemes, false, err, 512), SL_ECONFIG);
    assert_non_null(strstr(err, "port"));
    assert_int_equal(sl_url_check("http:///path", http_schemes, false, err, 512), SL_ECONFIG);
    assert_int_equal(sl_url_check("ftp://host/", http_schemes, false, err, 512), SL_ECONFIG);
    assert_non_null(strstr(err, "scheme"));
    assert_int_equal(sl_url_check("host/x", http_schemes, false, err, 512), SL_ECONFIG);
    assert_int_equal(sl_url_check("http://ho st/", http_schemes, false, err, 512), SL_ECONFIG);
    assert_int_equal(sl_url_check("http://host/?q", http_schemes, true, err, 512), SL_ECONFIG);
    assert_non_null(strstr(err, "query"));
}

static void test_url_check_error_is_redacted(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(
        sl_url_check("http://carol:s3cret@host:70000/x?sig=tok", http_schemes, false, err, 512),
        SL_ECONFIG);
    assert_null(strstr(err, "s3cret"));
    assert_null(strstr(err, "tok"));
    assert_non_null(strstr(err, "\"http://***@host:70000/x?***\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_redact_user_info),
        cmocka_unit_test(test_url_redact_query_and_fragment),
        cmocka_unit_test(test_url_redact_no_scheme),
        cmocka_unit_test(test_url_redact_ipv6),
        cmocka_unit_test(test_url_redact_at_in_path),
        cmocka_unit_test(test_url_redact_broken_password),
        cmocka_unit_test(test_url_redact_truncates),
        cmocka_unit_test(test_url_check),
        cmocka_unit_test(test_url_check_error_is_redacted),
    };
    return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}

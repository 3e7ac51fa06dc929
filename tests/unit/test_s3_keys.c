/* SPDX-License-Identifier: Apache-2.0 */
/* test_s3_keys.c: Firehose's S3 key layout (sinks/s3_keys.h): every expression, the default
 * time prefix and error prefix, the object name, the Java DateTimeFormatter subset, and each
 * validation rule with its message. Randomness comes from a counter, so keys are known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "s3_keys.h"

/* 2018-08-27T10:30:05.123Z, a Monday (AWS's examples' day) */
#define T_MS 1535365805123LL

static void counter_rand(void *arg, unsigned char *buf, size_t n)
{
    unsigned *c = arg;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (unsigned char)(*c)++;
    }
}

struct fx {
    struct sl_s3_layout *l;
    struct sl_buf out;
    struct sl_strmap query, lambda;
    unsigned counter;
    struct sl_s3_vars vars;
    char err[512];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    sl_buf_init(&f->out);
    f->vars = (struct sl_s3_vars){.time_ms = T_MS,
                                  .query = &f->query,
                                  .lambda = &f->lambda,
                                  .error_type = SL_S3_PROCESSING_FAILED,
                                  .rand = counter_rand,
                                  .rand_arg = &f->counter};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_s3_layout_free(f->l);
    sl_buf_fini(&f->out);
    sl_strmap_clear(&f->query, false);
    sl_strmap_clear(&f->lambda, false);
    free(f);
    return 0;
}

static void layout(struct fx *f, const char *prefix, const char *error_prefix, bool dp)
{
    struct sl_s3_layout_conf c = {.prefix = prefix,
                                  .error_prefix = error_prefix,
                                  .dynamic_partitioning = dp,
                                  .path = "$.d[0]"};
    int r = sl_s3_layout_new(&c, &f->l, f->err, sizeof f->err);
    if (r != 0) {
        fail_msg("layout refused: %s", f->err);
    }
}

static const char *render(struct fx *f, bool error)
{
    sl_buf_truncate(&f->out, 0);
    int r = sl_s3_layout_prefix(f->l, &f->vars, error, &f->out, f->err, sizeof f->err);
    if (r != 0) {
        fail_msg("render failed (%d): %s", r, f->err);
    }
    return f->out.data;
}

/* Expects the config refused with a message containing each of the strings. */
static void
refused(const char *prefix, const char *error_prefix, bool dp, const char *want1, const char *want2)
{
    struct sl_s3_layout_conf c = {.prefix = prefix,
                                  .error_prefix = error_prefix,
                                  .dynamic_partitioning = dp,
                                  .path = "$.d[0]"};
    struct sl_s3_layout *l = NULL;
    char err[512] = "";
    assert_int_equal(sl_s3_layout_new(&c, &l, err, sizeof err), SL_ECONFIG);
    assert_null(l);
    if (!strstr(err, want1) || (want2 && !strstr(err, want2))) {
        fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err, want1, want2 ? want2 : "");
    }
}

static void test_s3_keys_default_prefix(void **state)
{
    struct fx *f = *state;
    layout(f, NULL, NULL, false);
    assert_string_equal(render(f, false), "2018/08/27/10/");
    assert_string_equal(render(f, true), "processing-failed/2018/08/27/10/");
    assert_int_equal(sl_s3_layout_key_count(f->l), 0);
    sl_buf_truncate(&f->out, 0);
    assert_int_equal(sl_s3_layout_partition(f->l, &f->vars, &f->out, f->err, sizeof f->err), 0);
    assert_int_equal(f->out.len, 0);
    f->vars.error_type = SL_S3_HTTP_ENDPOINT_FAILED;
    assert_string_equal(render(f, true), "http-endpoint-failed/2018/08/27/10/");
}

static void test_s3_keys_plain_prefix(void **state)
{
    struct fx *f = *state;
    /* appended as is: no slash is added between the prefix and the time */
    layout(f, "myFirehosePrefix/", NULL, false);
    assert_string_equal(render(f, false), "myFirehosePrefix/2018/08/27/10/");
    assert_string_equal(render(f, true), "myFirehosePrefix/processing-failed/2018/08/27/10/");
    sl_s3_layout_free(f->l);
    layout(f, "logs-", "", false);
    assert_string_equal(render(f, false), "logs-2018/08/27/10/");
}

static void test_s3_keys_plain_error_prefix(void **state)
{
    struct fx *f = *state;
    layout(f, "data/", "errors/", false);
    assert_string_equal(render(f, true), "errors/processing-failed/2018/08/27/10/");
}

static void test_s3_keys_timestamp(void **state)
{
    struct fx *f = *state;
    layout(f,
           "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
           "hour=!{timestamp:HH}/",
           "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/"
           "!{firehose:error-output-type}",
           false);
    assert_string_equal(render(f, false), "myPrefix/year=2018/month=08/day=27/hour=10/");
    /* an ErrorOutputPrefix with expressions is used as written: nothing appended */
    assert_string_equal(render(f, true),
                        "myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed");
}

static void test_s3_keys_timestamp_no_default_when_present(void **state)
{
    struct fx *f = *state;
    layout(f, "dt=!{timestamp:yyyy-MM-dd}/", "e/!{firehose:error-output-type}/", false);
    assert_string_equal(render(f, false), "dt=2018-08-27/");
}

static void test_s3_keys_time_pattern_letters(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *pattern, *want;
    } cases[] = {
        {"yyyy", "2018"},
        {"yy", "18"},
        {"y", "2018"},
        {"uuuu", "2018"},
        {"M", "8"},
        {"MM", "08"},
        {"MMM", "Aug"},
        {"MMMM", "August"},
        {"d", "27"},
        {"D", "239"},
        {"DDD", "239"},
        {"H", "10"},
        {"h", "10"},
        {"k", "10"},
        {"K", "10"},
        {"a", "AM"},
        {"m", "30"},
        {"mm", "30"},
        {"s", "5"},
        {"ss", "05"},
        {"SSS", "123"},
        {"S", "1"},
        {"EEE", "Mon"},
        {"EEEE", "Monday"},
        {"X", "Z"},
        {"Z", "+0000"},
        {"''", "'"},
        {"'o''clock'", "o'clock"},
        {"yyyy-MM-dd'T'HH:mm:ss", "2018-08-27T10:30:05"},
        {"[HH]", "10"},
        {"'year='yyyy'/'", "year=2018/"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_buf_truncate(&f->out, 0);
        int r = sl_s3_keys_format_time(&f->out, cases[i].pattern, strlen(cases[i].pattern), T_MS,
                                       f->err, sizeof f->err);
        if (r != 0 || strcmp(f->out.data, cases[i].want) != 0) {
            fail_msg("'%s': got %d \"%s\", want \"%s\"", cases[i].pattern, r,
                     r == 0 ? f->out.data : f->err, cases[i].want);
        }
    }
    /* midnight: h is 12, k is 24, a is AM; afternoon PM */
    sl_buf_truncate(&f->out, 0);
    assert_int_equal(
        sl_s3_keys_format_time(&f->out, "h k K a", 7, 1535328000000LL, f->err, sizeof f->err), 0);
    assert_string_equal(f->out.data, "12 24 0 AM");
    sl_buf_truncate(&f->out, 0);
    assert_int_equal(sl_s3_keys_format_time(&f->out, "hh a", 4, 1535328000000LL + 13 * 3600000LL,
                                            f->err, sizeof f->err),
                     0);
    assert_string_equal(f->out.data, "01 PM");
}

static void test_s3_keys_time_pattern_refused(void **state)
{
    (void)state;
    refused("!{timestamp:yyyy-QQ}/", "e/!{firehose:error-output-type}", false,
            "$.d[0].Prefix: timestamp pattern 'yyyy-QQ': pattern letter 'Q' is not supported",
            "allowed: y u M L d D H h k K m s S a E X Z");
    refused("!{timestamp:'year=yyyy}", "e/!{firehose:error-output-type}", false,
            "a quote (') is not closed", NULL);
    refused("!{timestamp:ddd}", "e/!{firehose:error-output-type}", false,
            "too many pattern letters 'd' (at most 2)", NULL);
    refused("!{timestamp:yyyy#}", "e/!{firehose:error-output-type}", false, "reserved", NULL);
    refused("!{timestamp:}", "e/!{firehose:error-output-type}", false,
            "$.d[0].Prefix: !{timestamp:} has no value", NULL);
}

static void test_s3_keys_random_string(void **state)
{
    struct fx *f = *state;
    layout(f, "r=!{firehose:random-string}/!{firehose:random-string}/", "e/", false);
    /* first 11 characters of a v4 UUID from bytes 00 01 02 ..., then from 10 11 12 ... */
    assert_string_equal(render(f, false), "r=00010203-04/10111213-14/2018/08/27/10/");
    /* each evaluation draws anew */
    assert_string_equal(render(f, false), "r=20212223-24/30313233-34/2018/08/27/10/");
    /* allowed in the error prefix too */
    sl_s3_layout_free(f->l);
    layout(f, NULL, "e/!{firehose:random-string}/!{firehose:error-output-type}/", false);
    assert_int_equal(strlen(render(f, true)), strlen("e/") + SL_S3_RANDOM_LEN + 19);
}

static void test_s3_keys_error_output_type(void **state)
{
    struct fx *f = *state;
    layout(f, NULL, "myFirehoseFailures/!{firehose:error-output-type}/", false);
    assert_string_equal(render(f, true), "myFirehoseFailures/processing-failed/");
    f->vars.error_type = SL_S3_HTTP_ENDPOINT_FAILED;
    assert_string_equal(render(f, true), "myFirehoseFailures/http-endpoint-failed/");
    f->vars.error_type = NULL;
    sl_buf_truncate(&f->out, 0);
    assert_int_equal(sl_s3_layout_prefix(f->l, &f->vars, true, &f->out, f->err, sizeof f->err),
                     SL_EINVAL);
}

static void test_s3_keys_partition_keys(void **state)
{
    struct fx *f = *state;
    layout(f,
           "customer_id=!{partitionKeyFromQuery:customer_id}/"
           "device=!{partitionKeyFromLambda:device}/c2=!{partitionKeyFromQuery:customer_id}/",
           "errors/!{firehose:error-output-type}/", true);
    assert_int_equal(sl_s3_layout_key_count(f->l), 2);
    enum sl_s3_key_ns ns;
    assert_string_equal(sl_s3_layout_key(f->l, 0, &ns), "customer_id");
    assert_int_equal(ns, SL_S3_KEY_QUERY);
    assert_string_equal(sl_s3_layout_key(f->l, 1, &ns), "device");
    assert_int_equal(ns, SL_S3_KEY_LAMBDA);
    assert_int_equal(sl_strmap_put(&f->query, "customer_id", "1234567890"), 0);
    assert_int_equal(sl_strmap_put(&f->lambda, "device", "mobile"), 0);
    /* the partition: both keys' values, unambiguous */
    sl_buf_truncate(&f->out, 0);
    assert_int_equal(sl_s3_layout_partition(f->l, &f->vars, &f->out, f->err, sizeof f->err), 0);
    assert_string_equal(f->out.data, "10:12345678906:mobile");
    /* with dynamic partitioning no time is appended */
    assert_string_equal(render(f, false), "customer_id=1234567890/device=mobile/c2=1234567890/");
    /* a key missing from the record: SL_ENOTFOUND, out untouched */
    sl_strmap_clear(&f->lambda, false);
    sl_buf_truncate(&f->out, 0);
    assert_int_equal(sl_buf_puts(&f->out, "x"), 0);
    assert_int_equal(sl_s3_layout_prefix(f->l, &f->vars, false, &f->out, f->err, sizeof f->err),
                     SL_ENOTFOUND);
    assert_string_equal(f->out.data, "x");
    assert_non_null(strstr(f->err, "partitionKeyFromLambda:device"));
    assert_int_equal(sl_s3_layout_partition(f->l, &f->vars, &f->out, f->err, sizeof f->err),
                     SL_ENOTFOUND);
    assert_string_equal(f->out.data, "x");
    /* a key from the other namespace does not count */
    assert_int_equal(sl_strmap_put(&f->query, "device", "mobile"), 0);
    assert_int_equal(sl_s3_layout_prefix(f->l, &f->vars, false, &f->out, f->err, sizeof f->err),
                     SL_ENOTFOUND);
}

static void test_s3_keys_evaluated_too_long(void **state)
{
    struct fx *f = *state;
    layout(f, "k=!{partitionKeyFromQuery:k}/", "e/!{firehose:error-output-type}/", true);
    char big[600];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sl_strmap_put(&f->query, "k", big), 0);
    assert_int_equal(sl_s3_layout_prefix(f->l, &f->vars, false, &f->out, f->err, sizeof f->err),
                     SL_EINVAL);
    assert_non_null(strstr(f->err, "allowed: at most 512"));
    assert_int_equal(f->out.len, 0);
}

static void test_s3_keys_rules(void **state)
{
    (void)state;
    refused("!{timestamp:yyyy/MM/dd}", NULL, false,
            "$.d[0].ErrorOutputPrefix: required when Prefix has expressions", NULL);
    refused("a/!{firehose:random-string}/", "", false, "ErrorOutputPrefix: required", NULL);
    refused("a/!{firehose:error-output-type}/", "e/!{firehose:error-output-type}", false,
            "$.d[0].Prefix: !{firehose:error-output-type} is allowed only in ErrorOutputPrefix",
            NULL);
    refused("a/", "e/!{timestamp:yyyy}/", false,
            "$.d[0].ErrorOutputPrefix: an ErrorOutputPrefix with expressions must include "
            "!{firehose:error-output-type}",
            NULL);
    refused("a/!{foo:bar}/", "e/!{firehose:error-output-type}", false,
            "$.d[0].Prefix: unknown namespace \"foo\"", "allowed: !{timestamp:<pattern>}");
    refused("a/!{firehose:nope}/", "e/!{firehose:error-output-type}", false,
            "unknown !{firehose:nope}", "allowed: !{firehose:random-string}");
    refused("a/!{timestamp:yyyy/", "e/!{firehose:error-output-type}", false,
            "\"!{timestamp:yyyy/\" is not an expression", "may only start !{namespace:value}");
    refused("a/!{justtext}/", "e/!{firehose:error-output-type}", false,
            "\"!{justtext}\" is not an expression", NULL);
    refused("c=!{partitionKeyFromQuery:c}/", "e/!{firehose:error-output-type}", false,
            "$.d[0].Prefix: !{partitionKeyFromQuery:...} and !{partitionKeyFromLambda:...} need "
            "dynamic partitioning",
            NULL);
    refused("data/", "e/!{firehose:error-output-type}", true,
            "$.d[0].Prefix: dynamic partitioning needs at least one", NULL);
    refused(NULL, NULL, true, "$.d[0].Prefix: dynamic partitioning needs", NULL);
    refused("c=!{partitionKeyFromLambda:c}/", NULL, true,
            "$.d[0].ErrorOutputPrefix: required when Prefix has expressions or dynamic", NULL);
    refused("c=!{partitionKeyFromLambda:c}/",
            "e/!{firehose:error-output-type}/!{partitionKeyFromLambda:c}", true,
            "$.d[0].ErrorOutputPrefix: partition keys are not allowed here", NULL);
    char big[1100];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    refused(big, NULL, false, "$.d[0].Prefix: 1099 characters; allowed: at most 1024", NULL);
}

static void test_s3_keys_object_name(void **state)
{
    struct fx *f = *state;
    assert_int_equal(
        sl_s3_keys_object_name(&f->out, "clicks", 1, T_MS, ".gz", counter_rand, &f->counter), 0);
    /* bytes 00..0f as a v4 UUID: version nibble 4, variant bits 10 */
    assert_string_equal(f->out.data,
                        "clicks-1-2018-08-27-10-30-05-00010203-0405-4607-8809-0a0b0c0d0e0f.gz");
    /* the whole key: prefix and name at the oldest record's time */
    layout(f, NULL, NULL, false);
    sl_buf_truncate(&f->out, 0);
    f->counter = 0;
    assert_int_equal(
        sl_s3_layout_key_of(f->l, &f->vars, false, "clicks", 3, "", &f->out, f->err, sizeof f->err),
        0);
    assert_string_equal(f->out.data,
                        "2018/08/27/10/clicks-3-2018-08-27-10-30-05-00010203-0405-4607-8809-"
                        "0a0b0c0d0e0f");
    /* the system's randomness: two names differ */
    struct sl_buf a, b;
    sl_buf_init(&a);
    sl_buf_init(&b);
    assert_int_equal(sl_s3_keys_object_name(&a, "s", 1, T_MS, "", NULL, NULL), 0);
    assert_int_equal(sl_s3_keys_object_name(&b, "s", 1, T_MS, "", NULL, NULL), 0);
    assert_int_equal(a.len, strlen("s-1-2018-08-27-10-30-05-") + 36);
    assert_string_not_equal(a.data, b.data);
    assert_int_equal(a.data[24 + 14], '4');
    sl_buf_fini(&a);
    sl_buf_fini(&b);
}

static void test_s3_keys_extension(void **state)
{
    (void)state;
    assert_string_equal(sl_s3_keys_extension(NULL), "");
    assert_string_equal(sl_s3_keys_extension("UNCOMPRESSED"), "");
    assert_string_equal(sl_s3_keys_extension("GZIP"), ".gz");
    assert_string_equal(sl_s3_keys_extension("ZIP"), ".zip");
    assert_string_equal(sl_s3_keys_extension("Snappy"), ".snappy");
    assert_string_equal(sl_s3_keys_extension("HADOOP_SNAPPY"), ".snappy");
    assert_null(sl_s3_keys_extension("LZ4"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_s3_keys_default_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_plain_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_plain_error_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_timestamp_no_default_when_present, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_time_pattern_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_time_pattern_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_random_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_error_output_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_partition_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_evaluated_too_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_object_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_keys_extension, setup, teardown),
    };
    return cmocka_run_group_tests_name("s3_keys", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_opt.c: option tables (opt.c): size and duration parsing, every type's accepted and
 * rejected values, range errors in the option's own unit, unknown and missing keys, several
 * tables applied together, secrets never shown in errors, defaults, and printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "opt.h"

struct topts {
    char *name;
    bool on;
    int64_t count;
    int64_t size;
    int64_t wait_ms;
    int64_t window_ms;
    int kind;
    struct sl_strlist tags;
    struct sl_strmap env;
    cJSON *extra;
    char *token;
};

#define OFF(f) offsetof(struct topts, f)

static const struct sl_opt topts_table[] = {
    {"name", SL_OPT_STR, "anon", 0, -1, OFF(name), 0, NULL, "A name."},
    {"on", SL_OPT_BOOL, "true", 0, -1, OFF(on), 0, NULL, "Switch."},
    {"count", SL_OPT_INT, "100", 1, 10000, OFF(count), 0, NULL, "How many."},
    {"size", SL_OPT_SIZE, "16MiB", 64 * 1024, INT64_C(4) * 1024 * 1024 * 1024, OFF(size), 0, NULL,
     "How big."},
    {"wait", SL_OPT_DURATION, "10s", 100, INT64_MAX, OFF(wait_ms), 0, NULL, "How long."},
    {"Window", SL_OPT_SECONDS, "0", 0, 300 * 1000, OFF(window_ms), 0, NULL, "AWS seconds."},
    {"kind", SL_OPT_ENUM, "LATEST", 0, -1, OFF(kind), 0, "TRIM_HORIZON|LATEST|AT_TIMESTAMP",
     "Where."},
    {"tags", SL_OPT_STRLIST, "[\"a\",\"b\"]", 1, 3, OFF(tags), 0, NULL, "Tags."},
    {"env", SL_OPT_STRMAP, NULL, 0, -1, OFF(env), 0, NULL, "Environment."},
    {"extra", SL_OPT_JSON, NULL, 0, -1, OFF(extra), 0, NULL, "Anything."},
    {"token", SL_OPT_STR, NULL, 0, -1, OFF(token), SL_OPT_SECRET, NULL, "A secret."},
    {0},
};

struct topts2 {
    char *arn;
    int64_t lines;
};

static const struct sl_opt topts2_table[] = {
    {"arn", SL_OPT_STR, NULL, 0, -1, offsetof(struct topts2, arn), SL_OPT_REQUIRED, NULL, "ARN."},
    {"lines", SL_OPT_INT, "5", 0, -1, offsetof(struct topts2, lines), 0, NULL, "Unchecked."},
    {0},
};

/* Applies json to a fresh struct topts; returns the result, errors in *errs. */
static int apply(const char *json, struct topts *t, struct sl_errlist *errs)
{
    memset(t, 0, sizeof(*t));
    sl_errlist_init(errs);
    cJSON *obj = cJSON_Parse(json);
    assert_non_null(obj);
    struct sl_opt_target tg = {.table = topts_table, .base = t};
    int r = sl_opt_apply(&tg, 1, obj, "c.json", "$.x", errs);
    cJSON_Delete(obj);
    return r;
}

/* Applies json expecting exactly one error equal to want. */
static void expect_error(const char *json, const char *want)
{
    struct topts t;
    struct sl_errlist errs;
    int r = apply(json, &t, &errs);
    assert_int_equal(r, SL_ECONFIG);
    if (errs.n != 1 || strcmp(errs.items[0], want) != 0) {
        for (size_t i = 0; i < errs.n; i++) {
            print_error("got: %s\n", errs.items[i]);
        }
        print_error("want: %s\n", want);
        fail();
    }
    sl_errlist_fini(&errs);
    sl_opt_free(topts_table, &t);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t bytes; /* -1: rejected */
    } cases[] = {
        {"100", 100},         {"0", 0},
        {"100B", 100},        {"512KB", 512000},
        {"512KiB", 524288},   {"6MB", 6000000},
        {"6MiB", 6291456},    {"6mib", 6291456},
        {"1.5MiB", 1572864},  {"4GiB", INT64_C(4294967296)},
        {"1GB", 1000000000},  {"2TiB", INT64_C(2199023255552)},
        {"16 MiB", 16777216}, {"", -1},
        {"MB", -1},           {"-1", -1},
        {"6M", -1},           {"6 MBs", -1},
        {"1e3", -1},          {"0x10", -1},
        {" 5", -1},           {"99999999999999999999", -1},
        {"9999999TiB", -1},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        int64_t v = -7;
        int r = sl_opt_parse_size(cases[i].text, &v);
        if (cases[i].bytes < 0) {
            if (r != SL_EINVAL) {
                print_error("size \"%s\" accepted as %lld\n", cases[i].text, (long long)v);
                fail();
            }
            assert_int_equal(v, -7);
        } else {
            if (r != 0 || v != cases[i].bytes) {
                print_error("size \"%s\": r=%d v=%lld\n", cases[i].text, r, (long long)v);
                fail();
            }
        }
    }
}

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms; /* -1: rejected */
    } cases[] = {
        {"500ms", 500},   {"1.5s", 1500},
        {"10s", 10000},   {"2m", 120000},
        {"1h", 3600000},  {"1d", 86400000},
        {"1m30s", 90000}, {"10", 10000},
        {"0.25", 250},    {"0", 0},
        {"0s", 0},        {"1H", 3600000},
        {"", -1},         {"s", -1},
        {"10x", -1},      {"-1s", -1},
        {"1.5", 1500},    {"1 s", -1},
        {"10 5", -1},     {"5s10", -1},
        {"1e3s", -1},     {"99999999999999999d", -1},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        int64_t v = -7;
        int r = sl_opt_parse_duration(cases[i].text, &v);
        if (cases[i].ms < 0) {
            if (r != SL_EINVAL) {
                print_error("duration \"%s\" accepted as %lld\n", cases[i].text, (long long)v);
                fail();
            }
        } else if (r != 0 || v != cases[i].ms) {
            print_error("duration \"%s\": r=%d v=%lld\n", cases[i].text, r, (long long)v);
            fail();
        }
    }
}

static void test_defaults(void **state)
{
    (void)state;
    struct topts t;
    memset(&t, 0, sizeof(t));
    assert_int_equal(sl_opt_defaults(topts_table, &t), 0);
    assert_string_equal(t.name, "anon");
    assert_true(t.on);
    assert_int_equal(t.count, 100);
    assert_int_equal(t.size, 16 * 1024 * 1024);
    assert_int_equal(t.wait_ms, 10000);
    assert_int_equal(t.window_ms, 0);
    assert_int_equal(t.kind, 1);
    assert_int_equal(t.tags.n, 2);
    assert_string_equal(t.tags.items[1], "b");
    assert_int_equal(t.env.n, 0);
    assert_null(t.extra);
    assert_null(t.token);
    sl_opt_free(topts_table, &t);
    assert_null(t.name);
    assert_null(t.tags.items);
    sl_opt_free(topts_table, &t); /* twice is harmless */
}

static void test_apply_all_types(void **state)
{
    (void)state;
    struct topts t;
    struct sl_errlist errs;
    int r = apply("{\"name\":\"n1\",\"on\":false,\"count\":10000,\"size\":\"64KiB\","
                  "\"wait\":0.5,\"Window\":300,\"kind\":\"AT_TIMESTAMP\",\"tags\":[\"x\"],"
                  "\"env\":{\"A\":\"1\",\"B\":\"\"},\"extra\":{\"deep\":[1,2]},\"token\":\"s3\"}",
                  &t, &errs);
    assert_int_equal(r, 0);
    assert_int_equal(errs.n, 0);
    assert_string_equal(t.name, "n1");
    assert_false(t.on);
    assert_int_equal(t.count, 10000);
    assert_int_equal(t.size, 65536);
    assert_int_equal(t.wait_ms, 500);
    assert_int_equal(t.window_ms, 300000);
    assert_int_equal(t.kind, 2);
    assert_int_equal(t.tags.n, 1);
    assert_string_equal(t.tags.items[0], "x");
    assert_int_equal(t.env.n, 2);
    assert_string_equal(t.env.keys[1], "B");
    assert_string_equal(t.env.values[0], "1");
    assert_non_null(cJSON_GetObjectItem(t.extra, "deep"));
    assert_string_equal(t.token, "s3");
    sl_errlist_fini(&errs);
    sl_opt_free(topts_table, &t);

    /* Sizes as integers, durations as strings, a duration at its minimum. */
    r = apply("{\"size\":4294967296,\"wait\":\"100ms\",\"count\":1}", &t, &errs);
    assert_int_equal(r, 0);
    assert_int_equal(t.size, INT64_C(4294967296));
    assert_int_equal(t.wait_ms, 100);
    sl_errlist_fini(&errs);
    sl_opt_free(topts_table, &t);
}

static void test_type_errors(void **state)
{
    (void)state;
    expect_error("{\"count\":1.5}", "c.json: $.x.count: 1.5 is not an integer; allowed: an "
                                    "integer, 1 to 10000");
    expect_error("{\"count\":\"10\"}", "c.json: $.x.count: \"10\" is not an integer; allowed: an "
                                       "integer, 1 to 10000");
    expect_error("{\"count\":null}", "c.json: $.x.count: null is not an integer; allowed: an "
                                     "integer, 1 to 10000");
    expect_error("{\"name\":5}", "c.json: $.x.name: 5 is not a string; allowed: a string");
    expect_error("{\"on\":\"yes\"}",
                 "c.json: $.x.on: \"yes\" is not a boolean; allowed: true or false");
    expect_error("{\"size\":\"6M\"}", "c.json: $.x.size: \"6M\" is not a size; allowed: a byte "
                                      "count, or a string like \"512KiB\" or \"6MB\" (KB=1000, "
                                      "KiB=1024), 64KiB to 4GiB");
    expect_error("{\"size\":1.5}", "c.json: $.x.size: 1.5 is not a size; allowed: a byte "
                                   "count, or a string like \"512KiB\" or \"6MB\" (KB=1000, "
                                   "KiB=1024), 64KiB to 4GiB");
    expect_error("{\"wait\":\"soon\"}",
                 "c.json: $.x.wait: \"soon\" is not a duration; allowed: seconds as a number, or "
                 "a string like \"500ms\", \"1.5s\", \"2m\", \"1h\", at least 100ms");
    expect_error("{\"wait\":-1}",
                 "c.json: $.x.wait: -1 is not a duration; allowed: seconds as a number, or "
                 "a string like \"500ms\", \"1.5s\", \"2m\", \"1h\", at least 100ms");
    expect_error("{\"Window\":1.5}", "c.json: $.x.Window: 1.5 is not a whole number of seconds; "
                                     "allowed: a whole number of seconds, 0 to 300 seconds");
    expect_error("{\"Window\":\"1s\"}", "c.json: $.x.Window: \"1s\" is not a whole number of "
                                        "seconds; allowed: a whole number of seconds, 0 to 300 "
                                        "seconds");
    expect_error("{\"kind\":\"EARLIEST\"}", "c.json: $.x.kind: \"EARLIEST\" is not a valid "
                                            "choice; allowed: one of TRIM_HORIZON, LATEST, "
                                            "AT_TIMESTAMP");
    expect_error("{\"kind\":\"LATES\"}", "c.json: $.x.kind: \"LATES\" is not a valid choice; "
                                         "allowed: one of TRIM_HORIZON, LATEST, AT_TIMESTAMP");
    expect_error("{\"tags\":\"a\"}", "c.json: $.x.tags: \"a\" is not an array of strings; "
                                     "allowed: an array of strings of 1 to 3 items");
    expect_error("{\"tags\":[\"a\",2]}", "c.json: $.x.tags[1]: 2 is not a string; allowed: an "
                                         "array of strings of 1 to 3 items");
    expect_error("{\"tags\":[]}", "c.json: $.x.tags: 0 items is out of range; allowed: 1 to 3 "
                                  "items");
    expect_error("{\"env\":{\"A\":1}}", "c.json: $.x.env.A: 1 is not a string; allowed: an object "
                                        "whose values are strings");
    expect_error("{\"env\":[]}", "c.json: $.x.env: [] is not an object of strings; allowed: an "
                                 "object whose values are strings");
}

static void test_range_errors(void **state)
{
    (void)state;
    expect_error("{\"count\":0}", "c.json: $.x.count: 0 is out of range; allowed: 1 to 10000");
    expect_error("{\"count\":10001}",
                 "c.json: $.x.count: 10001 is out of range; allowed: 1 to 10000");
    expect_error("{\"Window\":301}",
                 "c.json: $.x.Window: 301 is out of range; allowed: 0 to 300 seconds");
    expect_error("{\"Window\":-1}",
                 "c.json: $.x.Window: -1 is out of range; allowed: 0 to 300 seconds");
    expect_error("{\"size\":\"1KB\"}",
                 "c.json: $.x.size: \"1KB\" (1KB) is out of range; allowed: 64KiB to 4GiB");
    expect_error("{\"size\":\"5GB\"}",
                 "c.json: $.x.size: \"5GB\" (5GB) is out of range; allowed: 64KiB to 4GiB");
    expect_error("{\"size\":1000}",
                 "c.json: $.x.size: 1000 is out of range; allowed: 64KiB to 4GiB");
    expect_error("{\"wait\":\"50ms\"}",
                 "c.json: $.x.wait: \"50ms\" (50ms) is out of range; allowed: at least 100ms");
    expect_error("{\"wait\":0.05}",
                 "c.json: $.x.wait: 0.05 is out of range; allowed: at least 100ms");
    expect_error("{\"tags\":[\"a\",\"b\",\"c\",\"d\"]}",
                 "c.json: $.x.tags: 4 items is out of range; allowed: 1 to 3 items");
}

static void test_unknown_and_duplicate(void **state)
{
    (void)state;
    expect_error("{\"Count\":5}", "c.json: $.x.Count: unknown key (did you mean count?); "
                                  "allowed: Window, count, env, extra, kind, name, on, size, "
                                  "tags, token, wait");
    expect_error("{\"zzzzzz\":5}", "c.json: $.x.zzzzzz: unknown key; allowed: Window, count, "
                                   "env, extra, kind, name, on, size, tags, token, wait");
    expect_error("{\"count\":5,\"count\":6}",
                 "c.json: $.x.count: duplicate key; allowed: each key once");
    expect_error("[1]", "c.json: $.x: [1] is not an object; allowed: an object");
}

static void test_secret_never_shown(void **state)
{
    (void)state;
    struct topts t;
    struct sl_errlist errs;
    int r = apply("{\"token\":[\"hunter2-secret\"]}", &t, &errs);
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(errs.n, 1);
    assert_null(strstr(errs.items[0], "hunter2"));
    assert_non_null(strstr(errs.items[0], "<hidden>"));
    assert_string_equal(errs.items[0],
                        "c.json: $.x.token: <hidden> is not a string; allowed: a string");
    sl_errlist_fini(&errs);
    sl_opt_free(topts_table, &t);
}

static void test_multiple_targets(void **state)
{
    (void)state;
    struct topts t;
    struct topts2 t2;
    memset(&t, 0, sizeof(t));
    memset(&t2, 0, sizeof(t2));
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_opt_target tg[] = {{.table = topts_table, .base = &t},
                                 {.table = topts2_table, .base = &t2}};

    cJSON *obj = cJSON_Parse("{\"count\":7,\"arn\":\"a:b\",\"lines\":-99}");
    assert_int_equal(sl_opt_apply(tg, 2, obj, "c.json", "$", &errs), 0);
    assert_int_equal(t.count, 7);
    assert_string_equal(t2.arn, "a:b");
    assert_int_equal(t2.lines, -99); /* min > max: unchecked */
    assert_string_equal(t.name, "anon");
    cJSON_Delete(obj);

    /* Re-applying replaces (and frees) what the first apply set. Every error is collected. */
    obj = cJSON_Parse("{\"count\":0,\"bogus\":1,\"on\":3}");
    assert_int_equal(sl_opt_apply(tg, 2, obj, "c.json", "$", &errs), SL_ECONFIG);
    assert_int_equal(errs.n, 4);
    assert_string_equal(errs.items[0], "c.json: $.count: 0 is out of range; allowed: 1 to 10000");
    assert_non_null(strstr(errs.items[1], "c.json: $.bogus: unknown key; allowed: Window, arn, "
                                          "count, env, extra, kind, lines, name, on, size"));
    assert_string_equal(errs.items[2], "c.json: $.on: 3 is not a boolean; allowed: true or false");
    assert_string_equal(errs.items[3], "c.json: $.arn: missing required key; allowed: a string");
    cJSON_Delete(obj);
    sl_errlist_fini(&errs);
    sl_opt_free(topts_table, &t);
    sl_opt_free(topts2_table, &t2);
}

static void test_long_value_cut(void **state)
{
    (void)state;
    struct topts t;
    struct sl_errlist errs;
    char json[400];
    char big[201];
    memset(big, 'x', 200);
    big[200] = '\0';
    (void)snprintf(json, sizeof(json), "{\"count\":\"%s\"}", big);
    assert_int_equal(apply(json, &t, &errs), SL_ECONFIG);
    assert_int_equal(errs.n, 1);
    assert_true(strlen(errs.items[0]) < 200);
    assert_non_null(strstr(errs.items[0], "xxx... is not an integer"));
    sl_errlist_fini(&errs);
    sl_opt_free(topts_table, &t);
}

static void test_print(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    sl_opt_print(f, "Test", "Intro.", topts_table, false);
    sl_opt_print(f, "Test", "Intro.", topts_table, true);
    assert_int_equal(fclose(f), 0);
    assert_non_null(strstr(text, "Test\n  Intro.\n"));
    assert_non_null(strstr(text, "  count (integer), default: 100, range: 1 to 10000\n"
                                 "      How many.\n"));
    assert_non_null(strstr(text, "  size (size), default: 16MiB, range: 64KiB to 4GiB\n"));
    assert_non_null(strstr(text, "  Window (seconds), default: 0, range: 0 to 300 seconds\n"));
    assert_non_null(strstr(text, "  kind (enum), default: LATEST, one of: TRIM_HORIZON, LATEST, "
                                 "AT_TIMESTAMP\n"));
    assert_non_null(strstr(text, "  token (string, secret), default: none\n"));
    assert_non_null(strstr(text, "## Test\n\nIntro.\n\n| Key | Type | Default | Allowed | "
                                 "Description |\n| --- | --- | --- | --- | --- |\n"));
    assert_non_null(strstr(text, "| `wait` | duration | `10s` | at least 100ms | How long. |\n"));
    assert_non_null(strstr(text, "| `token` | string, secret | none |  | A secret. |\n"));
    assert_non_null(strstr(text, "| `kind` | enum | `LATEST` | TRIM_HORIZON, LATEST, "
                                 "AT_TIMESTAMP | Where. |\n"));
    free(text); /* open_memstream uses the C library's malloc */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_apply_all_types),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_range_errors),
        cmocka_unit_test(test_unknown_and_duplicate),
        cmocka_unit_test(test_secret_never_shown),
        cmocka_unit_test(test_multiple_targets),
        cmocka_unit_test(test_long_value_cut),
        cmocka_unit_test(test_print),
    };
    return cmocka_run_group_tests_name("opt", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_json_scan.c: the in-place JSON scanner (json_scan.h): what it accepts and refuses, the
 * tokens it gives (members, elements, nesting), strings decoded as cJSON decodes them (escapes,
 * \u to UTF-8, surrogate pairs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <cjson/cJSON.h>

#include "json_scan.h"

static int scan(struct sl_json_scan *s, const char *text)
{
    return sl_json_scan_parse(s, text, strlen(text));
}

/* Texts cJSON takes are taken; malformed ones are refused (numbers by the grammar, so "01"
 * and "1.", which cJSON's strtod reads, are refused too). */
static void test_json_scan_accepts_what_cjson_accepts(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}",
        " [ ] ",
        "0",
        "-0.5e+10",
        "1E3",
        "\"\"",
        "true",
        "false",
        "null",
        "{\"a\":[1,{\"b\":null},\"x\\u00e9\\ud83d\\ude00\"],\"c\":{}}",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
    };
    static const char *const bad[] = {
        "",  "{",  "[1,]",  "{\"a\"}", "{\"a\":1,}", "[1 2]", "tru",   "01",          "1.",
        "-", "1e", "\"abc", "\"\\x\"", "\"\\u12\"",  "{} x",  "{a:1}", "\"\\ud800\"", "\"\\udc00\"",
    };
    struct sl_json_scan s;
    sl_json_scan_init(&s);
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cJSON *j = cJSON_Parse(good[i]);
        assert_non_null(j);
        cJSON_Delete(j);
        assert_int_equal(scan(&s, good[i]), 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(scan(&s, bad[i]), SL_EPROTO);
        assert_false(sl_json_scan_is(&s, SL_JSON_SCAN_ROOT, SL_JSON_OBJECT));
    }
    /* nesting is capped */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    assert_int_equal(sl_json_scan_parse(&s, deep, sizeof(deep)), SL_EPROTO);
    sl_json_scan_fini(&s);
}

static void test_json_scan_members_and_elements(void **state)
{
    (void)state;
    struct sl_json_scan s;
    sl_json_scan_init(&s);
    const char *text =
        "{\"Messages\":[{\"Id\":\"a\",\"N\":[1,2]},{\"Id\":\"b\"},7],\"Id\":\"top\"}";
    assert_int_equal(scan(&s, text), 0);
    size_t root = SL_JSON_SCAN_ROOT;
    assert_true(sl_json_scan_is(&s, root, SL_JSON_OBJECT));
    assert_false(sl_json_scan_is(&s, 0, SL_JSON_OBJECT));
    assert_int_equal(sl_json_scan_member(&s, root, "Nope"), 0);
    size_t top = sl_json_scan_member(&s, root, "Id");
    assert_true(sl_json_scan_str_is(&s, top, "top"));
    size_t msgs = sl_json_scan_member(&s, root, "Messages");
    assert_true(sl_json_scan_is(&s, msgs, SL_JSON_ARRAY));
    assert_int_equal(sl_json_scan_member(&s, msgs, "Id"), 0); /* not an object */
    const char *want[] = {"a", "b", NULL};
    size_t n = 0;
    for (size_t m = sl_json_scan_first(&s, msgs); m; m = sl_json_scan_next(&s, msgs, m), n++) {
        if (n < 2) {
            assert_true(sl_json_scan_str_is(&s, sl_json_scan_member(&s, m, "Id"), want[n]));
        } else {
            assert_true(sl_json_scan_is(&s, m, SL_JSON_PRIMITIVE));
            assert_int_equal(s.tok[m].len, 1);
            assert_memory_equal(s.text + s.tok[m].off, "7", 1);
        }
    }
    assert_int_equal(n, 3);
    /* an object's raw text runs from its brace to its brace */
    size_t first = sl_json_scan_first(&s, msgs);
    assert_int_equal(s.tok[first].len, strlen("{\"Id\":\"a\",\"N\":[1,2]}"));
    assert_int_equal(sl_json_scan_first(&s, sl_json_scan_first(&s, msgs) + 1), 0); /* a key */
    /* a new scan replaces the tokens */
    assert_int_equal(scan(&s, "[]"), 0);
    assert_int_equal(sl_json_scan_first(&s, SL_JSON_SCAN_ROOT), 0);
    sl_json_scan_fini(&s);
}

/* Every string decodes to the bytes cJSON gives for it. */
static void test_json_scan_strings_decode_as_cjson(void **state)
{
    (void)state;
    static const char *const strs[] = {
        "\"plain\"",
        "\"q\\\"b\\\\s\\/\"",
        "\"\\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u20ac\\u0041\"",
        "\"\\ud83d\\ude00 x\"",
        "\"raw \xc3\xa9\"",
        "\"\"",
    };
    struct sl_json_scan s;
    sl_json_scan_init(&s);
    struct sl_buf out;
    sl_buf_init(&out);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        assert_int_equal(scan(&s, strs[i]), 0);
        assert_true(sl_json_scan_is(&s, SL_JSON_SCAN_ROOT, SL_JSON_STRING));
        sl_buf_truncate(&out, 0);
        assert_int_equal(sl_json_scan_str(&s, SL_JSON_SCAN_ROOT, &out), 0);
        cJSON *j = cJSON_Parse(strs[i]);
        assert_non_null(j);
        assert_int_equal(out.len, strlen(j->valuestring));
        assert_memory_equal(out.len ? out.data : "", j->valuestring, out.len);
        assert_true(sl_json_scan_str_is(&s, SL_JSON_SCAN_ROOT, j->valuestring));
        cJSON_Delete(j);
    }
    /* \u0000 is kept as a NUL byte, with the rest after it */
    assert_int_equal(scan(&s, "\"a\\u0000b\""), 0);
    sl_buf_truncate(&out, 0);
    assert_int_equal(sl_json_scan_str(&s, SL_JSON_SCAN_ROOT, &out), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "a\0b", 3);
    sl_buf_fini(&out);
    sl_json_scan_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_scan_accepts_what_cjson_accepts),
        cmocka_unit_test(test_json_scan_members_and_elements),
        cmocka_unit_test(test_json_scan_strings_decode_as_cjson),
    };
    return cmocka_run_group_tests_name("json_scan", tests, NULL, NULL);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_secret.c: secret.c and hash.c, the helpers every module shares. A secret is read from
 * env://NAME or a file:///path (whole, up to 256 KiB); what cannot be read is an error naming
 * where it was looked for and never what it holds; wiping zeroes the bytes. The hash is 64-bit
 * FNV-1a (its published test vectors) and continues from a given base. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "hash.h"
#include "secret.h"

static void test_secret_read_env(void **state)
{
    (void)state;
    char err[256] = "";
    char *s = NULL;
    assert_int_equal(setenv("SLUICE_TEST_SECRET", "hunter2", 1), 0);
    assert_int_equal(sl_secret_read("env://SLUICE_TEST_SECRET", "SAC[0]", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "hunter2");
    sl_secret_free(s);
    assert_int_equal(unsetenv("SLUICE_TEST_SECRET"), 0);
    assert_int_equal(sl_secret_read("env://SLUICE_TEST_SECRET", "SAC[0]", &s, err, sizeof(err)),
                     SL_ECONFIG);
    assert_string_equal(err, "SAC[0]: environment variable SLUICE_TEST_SECRET is not set");
}

static void test_secret_read_file(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-secret-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"password\":\"pw\"}", 17), 17);
    char ref[64];
    (void)snprintf(ref, sizeof(ref), "file://%s", path);
    char err[256] = "";
    char *s = NULL;
    assert_int_equal(sl_secret_read(ref, "SAC[1]", &s, err, sizeof(err)), 0);
    assert_string_equal(s, "{\"password\":\"pw\"}");
    sl_secret_free(s);
    /* too large: refused, the file named, the content never shown */
    static char big[SL_SECRET_MAX + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(write(fd, big, sizeof(big)), (ssize_t)sizeof(big));
    assert_int_equal(sl_secret_read(ref, "SAC[1]", &s, err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "is larger than 256 KiB"));
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, "xxxx"));
    (void)close(fd);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sl_secret_read(ref, "SAC[1]", &s, err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "SAC[1]: cannot open"));
    assert_int_equal(sl_secret_read("vault://x", "SAC[2]", &s, err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "allowed: file:///path or env://NAME"));
}

static void test_secret_wipe(void **state)
{
    (void)state;
    char buf[8] = "secret!";
    sl_secret_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], 0);
    }
    sl_secret_wipe(NULL, 3);
    sl_secret_free(NULL);
    sl_secret_json_delete(NULL);
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "Authorization: Bearer t"), 0);
    sl_secret_buf_fini(&b);
    assert_null(b.data);
    cJSON *j = cJSON_Parse("{\"u\":\"a\",\"p\":{\"k\":[\"b\"]}}");
    sl_secret_json_delete(j);
}

static void test_hash_fnv1a(void **state)
{
    (void)state;
    /* FNV-1a 64 test vectors: "" and "a", "foobar" */
    assert_true(sl_hash_fnv1a("", 0, SL_HASH_FNV1A_BASIS) == UINT64_C(0xcbf29ce484222325));
    assert_true(sl_hash_fnv1a("a", 1, SL_HASH_FNV1A_BASIS) == UINT64_C(0xaf63dc4c8601ec8c));
    assert_true(sl_hash_fnv1a("foobar", 6, SL_HASH_FNV1A_BASIS) == UINT64_C(0x85944171f73967e8));
    /* continuing: "foo" then "bar" is "foobar" */
    uint64_t h = sl_hash_fnv1a("foo", 3, SL_HASH_FNV1A_BASIS);
    assert_true(sl_hash_fnv1a("bar", 3, h) == UINT64_C(0x85944171f73967e8));
    assert_true(sl_hash_mix(0) == 0);
    assert_true(sl_hash_mix(1) != 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_read_env),
        cmocka_unit_test(test_secret_read_file),
        cmocka_unit_test(test_secret_wipe),
        cmocka_unit_test(test_hash_fnv1a),
    };
    return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}

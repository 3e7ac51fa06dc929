/* SPDX-License-Identifier: Apache-2.0 */
/* test_uuid.c: random UUIDs carry version 4 and the RFC 4122 variant, in lowercase text, from
 * the bytes the injected source gives; the system source fills every byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uuid.h"

static void fixed_bytes(void *arg, unsigned char *buf, size_t n)
{
    memset(buf, *(const unsigned char *)arg, n);
}

static void test_uuid_from_injected_bytes(void **state)
{
    (void)state;
    unsigned char v = 0xff;
    char id[SL_UUID_LEN + 1];
    sl_uuid_v4(id, fixed_bytes, &v);
    assert_string_equal(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    v = 0x00;
    sl_uuid_v4(id, fixed_bytes, &v);
    assert_string_equal(id, "00000000-0000-4000-8000-000000000000");
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "x-"), 0);
    assert_int_equal(sl_uuid_v4_append(&b, fixed_bytes, &v), 0);
    assert_int_equal(b.len, 2 + SL_UUID_LEN);
    assert_memory_equal(b.data, "x-00000000-0000-4000-8000-000000000000", b.len);
    sl_buf_fini(&b);
}

static void test_uuid_system_source_differs(void **state)
{
    (void)state;
    char a[SL_UUID_LEN + 1], b[SL_UUID_LEN + 1];
    sl_uuid_v4(a, NULL, NULL);
    sl_uuid_v4(b, NULL, NULL);
    assert_int_equal(strlen(a), SL_UUID_LEN);
    assert_int_equal(a[14], '4');
    assert_true(strchr("89ab", a[19]) != NULL);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_from_injected_bytes),
        cmocka_unit_test(test_uuid_system_source_differs),
    };
    return cmocka_run_group_tests_name("uuid", tests, NULL, NULL);
}

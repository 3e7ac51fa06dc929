/* SPDX-License-Identifier: Apache-2.0 */
/* test_md5.c: md5.c against RFC 1321's test suite (appendix A.5), in one call and fed in
 * pieces of every size across the 64-byte block boundary; and the lengths around the padding
 * boundary (55, 56, 63, 64 bytes) against known digests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md5.h"

static void hex(const unsigned char d[SL_MD5_LEN], char out[2 * SL_MD5_LEN + 1])
{
    for (int i = 0; i < SL_MD5_LEN; i++) {
        (void)snprintf(out + 2 * i, 3, "%02x", d[i]);
    }
}

static void expect_md5(const char *in, size_t n, const char *want)
{
    unsigned char d[SL_MD5_LEN];
    char got[2 * SL_MD5_LEN + 1];
    sl_md5(in, n, d);
    hex(d, got);
    assert_string_equal(got, want);
    /* the same bytes in pieces of every size */
    for (size_t step = 1; step <= 65; step++) {
        struct sl_md5 c;
        sl_md5_init(&c);
        for (size_t off = 0; off < n; off += step) {
            sl_md5_update(&c, in + off, n - off < step ? n - off : step);
        }
        sl_md5_final(&c, d);
        hex(d, got);
        assert_string_equal(got, want);
    }
}

static void test_md5_rfc1321_suite(void **state)
{
    (void)state;
    static const struct {
        const char *in, *md5;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"a", "0cc175b9c0f1b6a831c399e269772661"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "d174ab98d277d9f5a5611c2c9f419d9f"},
        {"1234567890123456789012345678901234567890"
         "1234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        expect_md5(v[i].in, strlen(v[i].in), v[i].md5);
    }
}

static void test_md5_padding_boundaries(void **state)
{
    (void)state;
    char a[200];
    memset(a, 'a', sizeof(a));
    /* python3 -c "import hashlib; print(hashlib.md5(b'a'*N).hexdigest())" */
    expect_md5(a, 55, "ef1772b6dff9a122358552954ad0df65");
    expect_md5(a, 56, "3b0c8ac703f828b04c6c197006d17218");
    expect_md5(a, 63, "b06521f39153d618550606be297466d5");
    expect_md5(a, 64, "014842d480b571495a4a0363793f7367");
    expect_md5(a, 65, "c743a45e0d2e6a95cb859adae0248435");
    expect_md5(a, 200, "887f30b43b2867f4a9accceee7d16e6c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_md5_rfc1321_suite),
        cmocka_unit_test(test_md5_padding_boundaries),
    };
    return cmocka_run_group_tests_name("md5", tests, NULL, NULL);
}

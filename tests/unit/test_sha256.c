/* SPDX-License-Identifier: Apache-2.0 */
/* test_sha256.c: SHA-256 against the FIPS 180-2 / NIST examples (empty, "abc", the 448- and
 * 896-bit messages, one million 'a' fed in odd-sized pieces) and HMAC-SHA256 against RFC 4231's
 * test cases 1 to 7, each with the portable compression function and again with the processor's
 * SHA extensions where it has them; and both agree on messages of every length up to a few
 * blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "err.h"
#include "sha256.h"

static void expect_digest(const uint8_t *d, size_t n, const char *want_hex)
{
    char hex[2 * SL_SHA256_LEN + 1];
    sl_sha256_hex(d, n, hex);
    assert_string_equal(hex, want_hex);
}

static void expect_sha256(const char *msg, const char *want_hex)
{
    uint8_t d[SL_SHA256_LEN];
    sl_sha256(msg, strlen(msg), d);
    expect_digest(d, sizeof(d), want_hex);
}

static void test_sha256_nist_vectors(void **state)
{
    (void)state;
    expect_sha256("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect_sha256("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    expect_sha256("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                  "klmnopqrlmnopqrsmnopqrstnopqrstu",
                  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
    /* NULL with length 0 is allowed. */
    uint8_t d[SL_SHA256_LEN];
    sl_sha256(NULL, 0, d);
    expect_digest(d, sizeof(d), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* One million 'a', fed in pieces of 1, 7, 63, 64, 65, 127 and 1000 bytes in turn, so that every
 * way a piece can straddle a block boundary is taken. */
static void test_sha256_million_a_streamed(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 7, 63, 64, 65, 127, 1000, 0};
    char a[1000];
    memset(a, 'a', sizeof(a));
    struct sl_sha256 c;
    sl_sha256_init(&c);
    size_t left = 1000000;
    for (size_t i = 0; left; i = (i + 1) % SL_ARRAY_LEN(sizes)) {
        size_t n = sizes[i] < left ? sizes[i] : left;
        sl_sha256_update(&c, a, n);
        left -= n;
    }
    uint8_t d[SL_SHA256_LEN];
    sl_sha256_final(&c, d);
    expect_digest(d, sizeof(d), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Messages of every length around the padding boundary agree whether hashed at once or byte by
 * byte (55, 56 and 64 bytes need one more block for the length). */
static void test_sha256_split_matches_whole(void **state)
{
    (void)state;
    uint8_t msg[200];
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i * 31 + 7);
    }
    for (size_t len = 0; len <= sizeof(msg); len++) {
        uint8_t whole[SL_SHA256_LEN], split[SL_SHA256_LEN];
        sl_sha256(msg, len, whole);
        struct sl_sha256 c;
        sl_sha256_init(&c);
        for (size_t i = 0; i < len; i++) {
            sl_sha256_update(&c, msg + i, 1);
        }
        sl_sha256_final(&c, split);
        assert_memory_equal(whole, split, SL_SHA256_LEN);
    }
}

struct hmac_case {
    uint8_t key[131];
    size_t key_len;
    uint8_t data[160];
    size_t data_len;
    const char *want; /* hex; case 5 compares the first 128 bits only, as RFC 4231 does */
};

static void fill(uint8_t *p, uint8_t v, size_t n)
{
    memset(p, v, n);
}

static void test_sha256_hmac_rfc4231(void **state)
{
    (void)state;
    static struct hmac_case c[7];
    memset(c, 0, sizeof(c));
    /* 1 */
    fill(c[0].key, 0x0b, c[0].key_len = 20);
    memcpy(c[0].data, "Hi There", c[0].data_len = 8);
    c[0].want = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    /* 2: a key shorter than the output */
    memcpy(c[1].key, "Jefe", c[1].key_len = 4);
    memcpy(c[1].data, "what do ya want for nothing?", c[1].data_len = 28);
    c[1].want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    /* 3: combined length of key and data larger than 64 bytes */
    fill(c[2].key, 0xaa, c[2].key_len = 20);
    fill(c[2].data, 0xdd, c[2].data_len = 50);
    c[2].want = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
    /* 4 */
    for (size_t i = 0; i < 25; i++) {
        c[3].key[i] = (uint8_t)(i + 1);
    }
    c[3].key_len = 25;
    fill(c[3].data, 0xcd, c[3].data_len = 50);
    c[3].want = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
    /* 5: truncated output */
    fill(c[4].key, 0x0c, c[4].key_len = 20);
    memcpy(c[4].data, "Test With Truncation", c[4].data_len = 20);
    c[4].want = "a3b6167473100ee06e0c796c2955552b";
    /* 6: a key larger than the block */
    fill(c[5].key, 0xaa, c[5].key_len = 131);
    const char *d6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    memcpy(c[5].data, d6, c[5].data_len = strlen(d6));
    c[5].want = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    /* 7: key and data larger than the block */
    fill(c[6].key, 0xaa, c[6].key_len = 131);
    const char *d7 = "This is a test using a larger than block-size key and a larger than "
                     "block-size data. The key needs to be hashed before being used by the HMAC "
                     "algorithm.";
    memcpy(c[6].data, d7, c[6].data_len = strlen(d7));
    c[6].want = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
    for (size_t i = 0; i < SL_ARRAY_LEN(c); i++) {
        uint8_t mac[SL_SHA256_LEN];
        sl_hmac_sha256(c[i].key, c[i].key_len, c[i].data, c[i].data_len, mac);
        expect_digest(mac, strlen(c[i].want) / 2, c[i].want);
    }
}

/* Where the processor has SHA extensions, the digests they give match the portable code's for
 * every length from 0 to 300 bytes, hashed whole and in pieces of 1 to 130 bytes (so several
 * blocks are passed at once as well as one at a time). */
static void test_sha256_accel_matches_portable(void **state)
{
    (void)state;
    if (!sl_sha256_set_accel(true)) {
        skip();
    }
    uint8_t msg[300];
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i * 131 + 17);
    }
    for (size_t len = 0; len <= sizeof(msg); len++) {
        uint8_t portable[SL_SHA256_LEN], accel[SL_SHA256_LEN];
        (void)sl_sha256_set_accel(false);
        sl_sha256(msg, len, portable);
        (void)sl_sha256_set_accel(true);
        sl_sha256(msg, len, accel);
        assert_memory_equal(portable, accel, SL_SHA256_LEN);
        size_t piece = len % 130 + 1;
        struct sl_sha256 c;
        sl_sha256_init(&c);
        for (size_t off = 0; off < len; off += piece) {
            sl_sha256_update(&c, msg + off, len - off < piece ? len - off : piece);
        }
        sl_sha256_final(&c, accel);
        assert_memory_equal(portable, accel, SL_SHA256_LEN);
    }
}

static int setup_portable(void **state)
{
    (void)state;
    (void)sl_sha256_set_accel(false);
    return 0;
}

/* Skips where the processor has no SHA extensions (the tests above then ran portable only). */
static int setup_accel(void **state)
{
    (void)state;
    return sl_sha256_set_accel(true) ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_sha256_nist_vectors, setup_portable),
        cmocka_unit_test_setup(test_sha256_million_a_streamed, setup_portable),
        cmocka_unit_test_setup(test_sha256_split_matches_whole, setup_portable),
        cmocka_unit_test_setup(test_sha256_hmac_rfc4231, setup_portable),
        cmocka_unit_test(test_sha256_accel_matches_portable),
    };
    const struct CMUnitTest accel_tests[] = {
        cmocka_unit_test_setup(test_sha256_nist_vectors, setup_accel),
        cmocka_unit_test_setup(test_sha256_million_a_streamed, setup_accel),
        cmocka_unit_test_setup(test_sha256_split_matches_whole, setup_accel),
        cmocka_unit_test_setup(test_sha256_hmac_rfc4231, setup_accel),
    };
    int failed = cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
    if (!sl_sha256_set_accel(true)) {
        return failed; /* no SHA extensions here */
    }
    failed += cmocka_run_group_tests_name("sha256 (SHA extensions)", accel_tests, NULL, NULL);
    return failed;
}

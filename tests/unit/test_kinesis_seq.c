/* SPDX-License-Identifier: Apache-2.0 */
/* test_kinesis_seq.c: sources/kinesis/kinesis_seq.c. Sequence numbers are checked (empty,
 * non-digits, too long refused, each error naming what is wrong) and ordered as big integers:
 * more digits is larger, equal lengths compare by digits, leading zeros do not count, 56-digit
 * values that differ only in their last digit or that a 64-bit number could not hold. Positions
 * round-trip through encode, format and parse (odd and even digit counts, "0", 128 digits,
 * sub-sequence numbers up to UINT64_MAX), are compact (29 bytes for 56 digits), order exactly
 * as the numbers do, put a whole record after its user records, and refuse corrupt bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "kinesis/kinesis_scan.h"
#include "kinesis/kinesis_seq.h"

#define S56A "49590338271490256608559692538361571095921575989136588898"
#define S56B "49590338271490256608559692538361571095921575989136588899"
#define S56C "49680899805363695627633598281874347184029306920254832658"

static int cmp(const char *a, const char *b)
{
    return kinesis_seq_compare(a, strlen(a), b, strlen(b));
}

static void test_kinesis_seq_check(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(kinesis_seq_check(S56A, strlen(S56A), err, sizeof(err)), 0);
    assert_int_equal(kinesis_seq_check("0", 1, err, sizeof(err)), 0);
    assert_int_equal(kinesis_seq_check("", 0, err, sizeof(err)), SL_EINVAL);
    assert_string_equal(err, "sequence number is empty");
    assert_int_equal(kinesis_seq_check("12a4", 4, err, sizeof(err)), SL_EINVAL);
    assert_string_equal(err, "sequence number has a non-digit at offset 2 (only 0-9 allowed)");
    assert_int_equal(kinesis_seq_check("-1", 2, err, sizeof(err)), SL_EINVAL);
    assert_int_equal(kinesis_seq_check(" 1", 2, err, sizeof(err)), SL_EINVAL);
    char big[200];
    memset(big, '9', sizeof(big));
    assert_int_equal(kinesis_seq_check(big, 128, err, sizeof(err)), 0);
    assert_int_equal(kinesis_seq_check(big, 129, err, sizeof(err)), SL_EINVAL);
    assert_string_equal(err, "sequence number has 129 digits (at most 128 allowed)");
    /* leading zeros do not count against the limit */
    big[0] = '0';
    assert_int_equal(kinesis_seq_check(big, 129, err, sizeof(err)), 0);
}

static void test_kinesis_seq_compare(void **state)
{
    (void)state;
    assert_int_equal(cmp(S56A, S56A), 0);
    assert_int_equal(cmp(S56A, S56B), -1);
    assert_int_equal(cmp(S56B, S56A), 1);
    assert_int_equal(cmp(S56A, S56C), -1);
    /* length first: 9 < 10 even though '9' > '1' */
    assert_int_equal(cmp("9", "10"), -1);
    assert_int_equal(cmp("99999999999999999999", "100000000000000000000"), -1);
    /* beyond 64 bits: 2^64 and 2^64 + 1 */
    assert_int_equal(cmp("18446744073709551616", "18446744073709551617"), -1);
    assert_int_equal(cmp("18446744073709551615", "18446744073709551616"), -1);
    /* leading zeros */
    assert_int_equal(cmp("007", "7"), 0);
    assert_int_equal(cmp("0", "000"), 0);
    assert_int_equal(cmp("010", "9"), 1);
    /* a 55-digit number is smaller than any 56-digit one */
    assert_int_equal(cmp(S56A + 1, S56A), -1);
}

static size_t enc(const char *s, bool has_sub, uint64_t sub, unsigned char *out)
{
    char err[128];
    size_t len = 0;
    assert_int_equal(kinesis_pos_encode(s, strlen(s), has_sub, sub, out, &len, err, sizeof(err)),
                     0);
    assert_true(kinesis_pos_is_valid(out, len));
    return len;
}

static void expect_round_trip(const char *s, bool has_sub, uint64_t sub, const char *text)
{
    unsigned char pos[KINESIS_POS_MAX], back[KINESIS_POS_MAX];
    size_t len = enc(s, has_sub, sub, pos);
    char buf[KINESIS_POS_TEXT_MAX], err[128];
    assert_int_equal(kinesis_pos_format(pos, len, buf, sizeof(buf)), (int)strlen(text));
    assert_string_equal(buf, text);
    size_t back_len = 0;
    assert_int_equal(kinesis_pos_parse(buf, back, &back_len, err, sizeof(err)), 0);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, pos, len);
    uint64_t got_sub = 0;
    assert_int_equal(kinesis_pos_sub(pos, len, &got_sub), has_sub);
    if (has_sub) {
        assert_true(got_sub == sub);
    }
}

static void test_kinesis_pos_round_trip(void **state)
{
    (void)state;
    expect_round_trip(S56A, false, 0, S56A);
    expect_round_trip(S56A, true, 0, S56A ":0");
    expect_round_trip(S56A, true, UINT64_MAX, S56A ":18446744073709551615");
    expect_round_trip("0", false, 0, "0");
    expect_round_trip("7", false, 0, "7");
    expect_round_trip("0007", false, 0, "7");
    expect_round_trip("12345", true, 3, "12345:3");
    char big[KINESIS_SEQ_DIGITS_MAX + 1];
    memset(big, '9', KINESIS_SEQ_DIGITS_MAX);
    big[KINESIS_SEQ_DIGITS_MAX] = '\0';
    expect_round_trip(big, false, 0, big);
    unsigned char pos[KINESIS_POS_MAX];
    assert_int_equal(enc(big, true, 1, pos), KINESIS_POS_MAX);
    /* compact: 56 digits take 29 bytes, 37 with a sub-sequence number */
    assert_int_equal(enc(S56A, false, 0, pos), 29);
    assert_int_equal(enc(S56A, true, 5, pos), 37);
    assert_int_equal(enc("7", false, 0, pos), 2);
    /* the sequence number alone */
    char buf[KINESIS_SEQ_DIGITS_MAX + 1];
    size_t len = enc(S56C, true, 9, pos);
    assert_int_equal(kinesis_pos_seq(pos, len, buf, sizeof(buf)), 56);
    assert_string_equal(buf, S56C);
    /* too small a buffer is refused, never truncated */
    assert_int_equal(kinesis_pos_seq(pos, len, buf, 56), SL_EINVAL);
    assert_int_equal(kinesis_pos_format(pos, len, buf, 58), SL_EINVAL);
}

static int pcmp(const char *a, bool a_sub, uint64_t as, const char *b, bool b_sub, uint64_t bs)
{
    unsigned char pa[KINESIS_POS_MAX], pb[KINESIS_POS_MAX];
    size_t la = enc(a, a_sub, as, pa), lb = enc(b, b_sub, bs, pb);
    int r = kinesis_pos_compare(pa, la, pb, lb);
    /* antisymmetric */
    assert_int_equal(kinesis_pos_compare(pb, lb, pa, la), -r);
    return r;
}

static void test_kinesis_pos_compare(void **state)
{
    (void)state;
    assert_int_equal(pcmp(S56A, false, 0, S56A, false, 0), 0);
    assert_int_equal(pcmp(S56A, false, 0, S56B, false, 0), -1);
    assert_int_equal(pcmp(S56A, false, 0, S56C, false, 0), -1);
    assert_int_equal(pcmp("9", false, 0, "10", false, 0), -1);
    assert_int_equal(pcmp("99", false, 0, "100", false, 0), -1);
    assert_int_equal(pcmp("100", false, 0, "101", false, 0), -1);
    /* odd digit counts: the padding nibble never decides */
    assert_int_equal(pcmp("120", false, 0, "121", false, 0), -1);
    assert_int_equal(pcmp("18446744073709551616", false, 0, "18446744073709551617", false, 0), -1);
    assert_int_equal(pcmp("007", false, 0, "7", false, 0), 0);
    /* sub-sequence numbers order within one sequence number, and never across */
    assert_int_equal(pcmp(S56A, true, 0, S56A, true, 1), -1);
    assert_int_equal(pcmp(S56A, true, 255, S56A, true, 256), -1);
    assert_int_equal(pcmp(S56A, true, UINT64_MAX, S56B, true, 0), -1);
    assert_int_equal(pcmp(S56A, true, 3, S56A, true, 3), 0);
    /* the whole record comes after each of its user records, before the next record */
    assert_int_equal(pcmp(S56A, true, UINT64_MAX, S56A, false, 0), -1);
    assert_int_equal(pcmp(S56A, false, 0, S56B, true, 0), -1);
}

static void test_kinesis_pos_rejects_bad_input(void **state)
{
    (void)state;
    unsigned char pos[KINESIS_POS_MAX];
    size_t len = 0;
    char err[160];
    assert_int_equal(kinesis_pos_parse("", pos, &len, err, sizeof(err)), SL_EINVAL);
    assert_string_equal(err, "sequence number is empty");
    assert_int_equal(kinesis_pos_parse("12x", pos, &len, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "non-digit at offset 2"));
    assert_int_equal(kinesis_pos_parse("12:", pos, &len, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "bad sub-sequence number"));
    assert_int_equal(kinesis_pos_parse("12:-1", pos, &len, err, sizeof(err)), SL_EINVAL);
    assert_int_equal(kinesis_pos_parse("12:3x", pos, &len, err, sizeof(err)), SL_EINVAL);
    assert_int_equal(kinesis_pos_parse("12:18446744073709551616", pos, &len, err, sizeof(err)),
                     SL_EINVAL);
    assert_int_equal(kinesis_pos_parse(":3", pos, &len, err, sizeof(err)), SL_EINVAL);
    assert_string_equal(err, "sequence number is empty");
    assert_int_equal(len, 0); /* untouched on failure */

    /* corrupt bytes: wrong length, a nibble above 9, a leading zero, a set padding nibble */
    len = enc("123", false, 0, pos);
    assert_false(kinesis_pos_is_valid(pos, len - 1));
    assert_false(kinesis_pos_is_valid(pos, len + 1));
    assert_false(kinesis_pos_is_valid(pos, 0));
    pos[1] = 0x1a;
    assert_false(kinesis_pos_is_valid(pos, len));
    pos[1] = 0x02;
    assert_false(kinesis_pos_is_valid(pos, len));
    pos[1] = 0x12;
    pos[2] = 0x31;
    assert_false(kinesis_pos_is_valid(pos, len));
    pos[2] = 0x30;
    assert_true(kinesis_pos_is_valid(pos, len));
    pos[0] = 0;
    assert_false(kinesis_pos_is_valid(pos, len));
    pos[0] = KINESIS_SEQ_DIGITS_MAX + 1;
    assert_false(kinesis_pos_is_valid(pos, len));
    char buf[KINESIS_POS_TEXT_MAX];
    assert_int_equal(kinesis_pos_format(pos, len, buf, sizeof(buf)), SL_EINVAL);
}

/* The checks read eight bytes at a time: a bad byte at any offset, next to the digits' range
 * ('/', ':') or far from it, is still found and named; a bad nibble in any byte of a position
 * is refused; a quote, backslash or control character at any offset of a long string still
 * ends its plain run; a byte outside base64's alphabet anywhere is found. */
static void test_kinesis_checks_find_a_bad_byte_anywhere(void **state)
{
    (void)state;
    static const char bad[] = {'/', ':', 'a', ' ', '\x00', (char)0xff, (char)0x80};
    char err[128];
    for (size_t at = 0; at < 56; at++) {
        for (size_t b = 0; b < sizeof bad; b++) {
            char s[57];
            memcpy(s, S56A, 57);
            s[at] = bad[b];
            assert_int_equal(kinesis_seq_check(s, 56, err, sizeof err), SL_EINVAL);
            char want[64];
            (void)snprintf(want, sizeof want, "non-digit at offset %zu", at);
            assert_non_null(strstr(err, want));
        }
    }
    assert_int_equal(kinesis_seq_check(S56A, 56, err, sizeof err), 0);
    unsigned char pos[KINESIS_POS_MAX];
    size_t len;
    assert_int_equal(kinesis_pos_encode(S56A, 56, false, 0, pos, &len, err, sizeof err), 0);
    assert_true(kinesis_pos_is_valid(pos, len));
    for (size_t j = 1; j < len; j++) {
        for (unsigned shift = 0; shift <= 4; shift += 4) {
            unsigned char c[KINESIS_POS_MAX];
            memcpy(c, pos, len);
            c[j] = (unsigned char)((c[j] & ~(0xfu << shift)) | (0xau << shift));
            assert_false(kinesis_pos_is_valid(c, len));
        }
    }
    static const char stops[] = {'"', '\\', '\n', '\x01'};
    for (size_t at = 0; at < 40; at++) {
        for (size_t k = 0; k < sizeof stops; k++) {
            char text[64];
            memset(text, 'x', sizeof text);
            text[0] = '"';
            text[1 + at] = stops[k];
            if (stops[k] == '"') {
                text[2 + at] = ':'; /* a key: the quote, then its colon */
            }
            (void)snprintf(text + 42, sizeof text - 42, "\":");
            struct kjs s = {text, text + strlen(text), 0};
            char *str = NULL;
            size_t n = 0;
            bool ok = kjs_key(&s, &str, &n);
            if (stops[k] == '"') {
                assert_true(ok);
                assert_int_equal(n, at); /* the string ends at the quote */
            } else {
                assert_false(ok && n == 41); /* never read as one plain string of 41 */
            }
        }
    }
    char b64[65];
    memset(b64, 'A', 64);
    b64[64] = '\0';
    assert_true(kinesis_is_base64(b64, 64));
    for (size_t at = 0; at < 62; at++) {
        b64[at] = '-';
        assert_false(kinesis_is_base64(b64, 64));
        b64[at] = 'A';
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinesis_seq_check),
        cmocka_unit_test(test_kinesis_seq_compare),
        cmocka_unit_test(test_kinesis_pos_round_trip),
        cmocka_unit_test(test_kinesis_pos_compare),
        cmocka_unit_test(test_kinesis_pos_rejects_bad_input),
        cmocka_unit_test(test_kinesis_checks_find_a_bad_byte_anywhere),
    };
    return cmocka_run_group_tests_name("kinesis_seq", tests, NULL, NULL);
}

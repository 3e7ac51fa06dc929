/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_seq.c: Kinesis sequence numbers as big decimal integers (checked, compared by
 * length then digits, never converted to a machine integer, since they run to 56 digits today
 * and 128 by the API) and the compact position bytes the Kinesis source gives the queue: the
 * digit count, packed BCD digits and, for a KPL user record, its sub-sequence number. The
 * encoding is described in kinesis_seq.h. Pure: no state, no I/O, no logging. */
#include "kinesis_seq.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Skips leading zeros, keeping at least one digit. */
static size_t kinesis_seq_skip_zeros(const char *s, size_t n)
{
    size_t i = 0;
    while (i + 1 < n && s[i] == '0') {
        i++;
    }
    return i;
}

#define KSEQ_ONES UINT64_C(0x0101010101010101)

/* True when the eight bytes at s are all '0'..'9': each byte's high nibble is 3, and adding 6
 * keeps it 3 (no carry crosses a byte of a digit). */
static inline bool kinesis_eight_digits(const char *s)
{
    uint64_t v;
    memcpy(&v, s, sizeof v);
    uint64_t high = KSEQ_ONES * 0xF0;
    return ((v & high) | (((v + KSEQ_ONES * 0x06) & high) >> 4)) == KSEQ_ONES * 0x33;
}

/* True when each of the eight bytes at p holds two BCD digits (each nibble at most 9). */
static inline bool kinesis_eight_bcd(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    uint64_t lo = v & (KSEQ_ONES * 0x0F), hi = (v >> 4) & (KSEQ_ONES * 0x0F);
    return (((lo + KSEQ_ONES * 0x06) | (hi + KSEQ_ONES * 0x06)) & (KSEQ_ONES * 0x10)) == 0;
}

int kinesis_seq_check(const char *s, size_t n, char *errbuf, size_t errlen)
{
    if (n == 0) {
        (void)snprintf(errbuf, errlen, "sequence number is empty");
        return SL_EINVAL;
    }
    size_t i = 0;
    while (i + 8 <= n && kinesis_eight_digits(s + i)) {
        i += 8;
    }
    for (; i < n; i++) {
        if ((unsigned char)(s[i] - '0') > 9) {
            (void)snprintf(errbuf, errlen,
                           "sequence number has a non-digit at offset %zu (only 0-9 allowed)", i);
            return SL_EINVAL;
        }
    }
    size_t digits = n - kinesis_seq_skip_zeros(s, n);
    if (digits > KINESIS_SEQ_DIGITS_MAX) {
        (void)snprintf(errbuf, errlen, "sequence number has %zu digits (at most %d allowed)",
                       digits, KINESIS_SEQ_DIGITS_MAX);
        return SL_EINVAL;
    }
    return 0;
}

int kinesis_seq_compare(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t za = kinesis_seq_skip_zeros(a, a_len);
    size_t zb = kinesis_seq_skip_zeros(b, b_len);
    a += za;
    b += zb;
    a_len -= za;
    b_len -= zb;
    if (a_len != b_len) {
        return a_len < b_len ? -1 : 1;
    }
    int r = memcmp(a, b, a_len);
    return (r > 0) - (r < 0);
}

static void kinesis_put_u64be(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t kinesis_get_u64be(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

int kinesis_pos_encode(const char *seq,
                       size_t n,
                       bool has_sub,
                       uint64_t sub,
                       unsigned char *out,
                       size_t *ret_len,
                       char *errbuf,
                       size_t errlen)
{
    int r = kinesis_seq_check(seq, n, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    kinesis_pos_pack(seq, n, has_sub, sub, out, ret_len);
    return 0;
}

void kinesis_pos_pack(
    const char *seq, size_t n, bool has_sub, uint64_t sub, unsigned char *out, size_t *ret_len)
{
    size_t z = kinesis_seq_skip_zeros(seq, n);
    seq += z;
    n -= z;
    size_t bcd = (n + 1) / 2;
    out[0] = (unsigned char)n;
    /* two digits a byte, the high nibble first; an odd count leaves the last low nibble 0 */
    for (size_t j = 0; j < n / 2; j++) {
        out[1 + j] =
            (unsigned char)((unsigned)(seq[2 * j] - '0') << 4 | (unsigned)(seq[2 * j + 1] - '0'));
    }
    if (n % 2) {
        out[bcd] = (unsigned char)((unsigned)(seq[n - 1] - '0') << 4);
    }
    size_t len = 1 + bcd;
    if (has_sub) {
        kinesis_put_u64be(out + len, sub);
        len += 8;
    }
    *ret_len = len;
}

bool kinesis_pos_is_valid(const unsigned char *pos, size_t len)
{
    if (len < 2) {
        return false;
    }
    size_t n = pos[0];
    if (n < 1 || n > KINESIS_SEQ_DIGITS_MAX) {
        return false;
    }
    size_t bcd = (n + 1) / 2;
    if (len != 1 + bcd && len != 1 + bcd + 8) {
        return false;
    }
    if (n > 1 && pos[1] >> 4 == 0) {
        return false; /* a leading zero */
    }
    size_t j = 1;
    while (j + 7 <= n / 2 && kinesis_eight_bcd(pos + j)) {
        j += 8;
    }
    for (; j <= n / 2; j++) {
        if (pos[j] >> 4 > 9 || (pos[j] & 0xfu) > 9) {
            return false;
        }
    }
    return n % 2 == 0 || (pos[bcd] >> 4 <= 9 && (pos[bcd] & 0xfu) == 0);
}

int kinesis_pos_compare(const unsigned char *a, size_t a_len, const unsigned char *b, size_t b_len)
{
    assert(kinesis_pos_is_valid(a, a_len) && kinesis_pos_is_valid(b, b_len));
    if (a[0] != b[0]) {
        return a[0] < b[0] ? -1 : 1;
    }
    size_t seq_len = 1 + ((size_t)a[0] + 1) / 2;
    int r = memcmp(a + 1, b + 1, seq_len - 1);
    if (r != 0) {
        return r < 0 ? -1 : 1;
    }
    bool a_sub = a_len > seq_len, b_sub = b_len > seq_len;
    if (!a_sub || !b_sub) {
        /* the whole record comes after each of its user records */
        return (int)b_sub - (int)a_sub;
    }
    uint64_t sa = kinesis_get_u64be(a + seq_len), sb = kinesis_get_u64be(b + seq_len);
    return (sa > sb) - (sa < sb);
}

int kinesis_pos_seq(const unsigned char *pos, size_t pos_len, char *buf, size_t len)
{
    if (!kinesis_pos_is_valid(pos, pos_len) || len < (size_t)pos[0] + 1) {
        return SL_EINVAL;
    }
    size_t n = pos[0];
    for (size_t j = 0; j < n / 2; j++) {
        buf[2 * j] = (char)('0' + (pos[1 + j] >> 4));
        buf[2 * j + 1] = (char)('0' + (pos[1 + j] & 0xfu));
    }
    if (n % 2) {
        buf[n - 1] = (char)('0' + (pos[1 + n / 2] >> 4));
    }
    buf[n] = '\0';
    return (int)n;
}

bool kinesis_pos_sub(const unsigned char *pos, size_t pos_len, uint64_t *ret_sub)
{
    assert(kinesis_pos_is_valid(pos, pos_len));
    size_t seq_len = 1 + ((size_t)pos[0] + 1) / 2;
    if (pos_len == seq_len) {
        return false;
    }
    *ret_sub = kinesis_get_u64be(pos + seq_len);
    return true;
}

int kinesis_pos_format(const unsigned char *pos, size_t pos_len, char *buf, size_t len)
{
    int n = kinesis_pos_seq(pos, pos_len, buf, len);
    if (n < 0) {
        return n;
    }
    uint64_t sub;
    if (!kinesis_pos_sub(pos, pos_len, &sub)) {
        return n;
    }
    int w = snprintf(buf + n, len - (size_t)n, ":%llu", (unsigned long long)sub);
    if (w < 0 || (size_t)w >= len - (size_t)n) {
        return SL_EINVAL;
    }
    return n + w;
}

int kinesis_pos_parse(
    const char *s, unsigned char *out, size_t *ret_len, char *errbuf, size_t errlen)
{
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    uint64_t sub = 0;
    if (colon) {
        const char *p = colon + 1;
        char *end = NULL;
        errno = 0;
        unsigned long long v = *p >= '0' && *p <= '9' ? strtoull(p, &end, 10) : 0;
        if (!end || *end != '\0' || errno == ERANGE) {
            (void)snprintf(errbuf, errlen,
                           "position '%.40s' has a bad sub-sequence number after ':' (want "
                           "DIGITS or DIGITS:SUB, SUB a 64-bit decimal)",
                           s);
            return SL_EINVAL;
        }
        sub = v;
    }
    return kinesis_pos_encode(s, n, colon != NULL, sub, out, ret_len, errbuf, errlen);
}

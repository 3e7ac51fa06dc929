/* SPDX-License-Identifier: Apache-2.0 */
/* encoder.c: the byte-level pieces of the events functions receive (base64, JSON strings,
 * decimal integers, timestamps). They run once or more per record, about a million times a
 * second, so each one reserves its worst case in the output once and then writes straight into
 * the reserved space: no per-byte append, no printf, no cJSON. It owns no state beyond constant
 * tables, must not log and must not allocate except by growing the caller's sl_buf. Any
 * thread (it touches only the buffer it is given). */
#include "encoder.h"

#include <stdbool.h>
#include <string.h>

static const char enc_b64_alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The value of each base64 character, or 0xff for bytes that are not in the alphabet
 * (so every byte >= 0x80 too). Checked against the alphabet by test_encoder. */
static const unsigned char enc_b64_value[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
    0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

int sl_enc_base64(struct sl_buf *out, const void *data, size_t n)
{
    size_t need = sl_enc_base64_len(n);
    if (n > (SIZE_MAX / 4) * 3 - 3 || sl_buf_reserve(out, need) < 0) {
        return SL_ENOMEM;
    }
    const unsigned char *in = data;
    char *w = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        w[0] = enc_b64_alphabet[v >> 18];
        w[1] = enc_b64_alphabet[(v >> 12) & 63];
        w[2] = enc_b64_alphabet[(v >> 6) & 63];
        w[3] = enc_b64_alphabet[v & 63];
        w += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        w[0] = enc_b64_alphabet[v >> 18];
        w[1] = enc_b64_alphabet[(v >> 12) & 63];
        w[2] = '=';
        w[3] = '=';
        w += 4;
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        w[0] = enc_b64_alphabet[v >> 18];
        w[1] = enc_b64_alphabet[(v >> 12) & 63];
        w[2] = enc_b64_alphabet[(v >> 6) & 63];
        w[3] = '=';
        w += 4;
    }
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

/* About padding: "=" is accepted only at the end, at most two of them, and only where it
 * completes a group of four; without it, a trailing group of 2 or 3 characters is accepted.
 * Unused low bits of the last character are not checked (as most decoders do). */
int sl_enc_base64_decode(struct sl_buf *out, const char *s, size_t n)
{
    size_t pad = 0;
    if (n % 4 == 0) {
        while (pad < 2 && n > pad && s[n - 1 - pad] == '=') {
            pad++;
        }
    }
    size_t m = n - pad; /* significant characters */
    if (m % 4 == 1) {
        return SL_EINVAL;
    }
    size_t need = m / 4 * 3 + (m % 4 ? m % 4 - 1 : 0);
    if (sl_buf_reserve(out, need) < 0) {
        return SL_ENOMEM;
    }
    const unsigned char *in = (const unsigned char *)s;
    unsigned char *w = (unsigned char *)out->data + out->len;
    size_t i = 0;
    for (; i + 4 <= m; i += 4) {
        uint32_t a = enc_b64_value[in[i]], b = enc_b64_value[in[i + 1]];
        uint32_t c = enc_b64_value[in[i + 2]], d = enc_b64_value[in[i + 3]];
        if ((a | b | c | d) & 0x80) {
            return SL_EINVAL;
        }
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        w[0] = (unsigned char)(v >> 16);
        w[1] = (unsigned char)(v >> 8);
        w[2] = (unsigned char)v;
        w += 3;
    }
    if (m - i >= 2) {
        uint32_t a = enc_b64_value[in[i]], b = enc_b64_value[in[i + 1]];
        uint32_t c = m - i == 3 ? enc_b64_value[in[i + 2]] : 0;
        if ((a | b | c) & 0x80) {
            return SL_EINVAL;
        }
        uint32_t v = a << 18 | b << 12 | c << 6;
        *w++ = (unsigned char)(v >> 16);
        if (m - i == 3) {
            *w++ = (unsigned char)(v >> 8);
        }
    }
    out->len += need;
    out->data[out->len] = '\0';
    return 0;
}

/* For each byte: 0 when it is copied as it is, otherwise the character after the backslash
 * ('u' for the \u00XX form). */
static const char enc_json_escape[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f',  'r', 'u', 'u',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',  'u', 'u', 'u',
    0,   0,   '"', 0,   0,   0,   0,   0,   0,   0,   0,   0,   0,    0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,    0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,    0,   0,   0,
    0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   '\\', 0,   0,   0,
    /* 0x60 .. 0xff: nothing to escape (DEL and UTF-8 bytes pass through) */
};

static const char enc_hex[16] = "0123456789abcdef";

/* The end of the run of bytes from i that need no escape: eight at a time while a word holds
 * no control character, '"' or '\\' (the word tests can only err towards "maybe", which the
 * byte loop then settles), then byte by byte. */
static size_t enc_json_plain_run(const unsigned char *in, size_t i, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        uint64_t quote = w ^ (ones * '"');
        uint64_t bslash = w ^ (ones * '\\');
        uint64_t hit =
            ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((bslash - ones) & ~bslash);
        if (hit & highs) {
            break;
        }
        i += 8;
    }
    while (i < n && !enc_json_escape[in[i]]) {
        i++;
    }
    return i;
}

int sl_enc_json_str(struct sl_buf *out, const char *s, size_t n)
{
    /* The common case has nothing to escape: reserve for that, and grow only when an escape
     * shows up (each adds at most 5 bytes). */
    if (n > SIZE_MAX / 2 || sl_buf_reserve(out, n + 2) < 0) {
        return SL_ENOMEM;
    }
    const unsigned char *in = (const unsigned char *)s;
    out->data[out->len++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = enc_json_plain_run(in, i, n);
        memcpy(out->data + out->len, in + i, run - i);
        out->len += run - i;
        if (run == n) {
            break;
        }
        /* room for this escape (6), the rest of the input and the closing quote */
        if (sl_buf_reserve(out, 6 + (n - run - 1) + 1) < 0) {
            out->data[out->len] = '\0';
            return SL_ENOMEM;
        }
        char e = enc_json_escape[in[run]];
        char *w = out->data + out->len;
        w[0] = '\\';
        if (e == 'u') {
            w[1] = 'u';
            w[2] = '0';
            w[3] = '0';
            w[4] = enc_hex[in[run] >> 4];
            w[5] = enc_hex[in[run] & 15];
            out->len += 6;
        } else {
            w[1] = e;
            out->len += 2;
        }
        i = run + 1;
    }
    out->data[out->len++] = '"';
    out->data[out->len] = '\0';
    return 0;
}

size_t sl_enc_u64_digits(char *w, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(w, tmp + sizeof(tmp) - n, n);
    return n;
}

int sl_enc_u64(struct sl_buf *out, uint64_t v)
{
    if (sl_buf_reserve(out, 20) < 0) {
        return SL_ENOMEM;
    }
    out->len += sl_enc_u64_digits(out->data + out->len, v);
    out->data[out->len] = '\0';
    return 0;
}

int sl_enc_epoch_seconds(struct sl_buf *out, int64_t ms)
{
    if (sl_buf_reserve(out, 1 + 20 + 4) < 0) {
        return SL_ENOMEM;
    }
    char *w = out->data + out->len;
    size_t k = 0;
    uint64_t mag = (uint64_t)ms;
    if (ms < 0) {
        w[k++] = '-';
        mag = 0 - mag;
    }
    k += sl_enc_u64_digits(w + k, mag / 1000);
    unsigned frac = (unsigned)(mag % 1000);
    w[k++] = '.';
    w[k++] = (char)('0' + frac / 100);
    w[k++] = (char)('0' + frac / 10 % 10);
    w[k++] = (char)('0' + frac % 10);
    out->len += k;
    out->data[out->len] = '\0';
    return 0;
}

static void enc_2digits(char *w, unsigned v)
{
    w[0] = (char)('0' + v / 10 % 10);
    w[1] = (char)('0' + v % 10);
}

/* Converts days since 1970-01-01 to a proleptic Gregorian date. Works in 400-year eras of
 * 146097 days counted from 0000-03-01, so that the leap day is the last day of a year. */
static void enc_civil(int64_t days, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
    days += 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;                                   /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* March = 0 */
    *ret_d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *ret_m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *ret_y = yoe + era * 400 + (*ret_m <= 2);
}

int sl_enc_iso8601_ms(struct sl_buf *out, int64_t ms)
{
    int64_t days = ms / 86400000;
    int64_t rem = ms % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    enc_civil(days, &y, &mo, &d);
    if (y < 0 || y > 9999) {
        return SL_EINVAL; /* ISO 8601's basic four-digit years only */
    }
    if (sl_buf_reserve(out, 24) < 0) {
        return SL_ENOMEM;
    }
    unsigned msec = (unsigned)(rem % 1000);
    unsigned sec = (unsigned)(rem / 1000 % 60);
    unsigned min = (unsigned)(rem / 60000 % 60);
    unsigned hour = (unsigned)(rem / 3600000);
    char *w = out->data + out->len;
    enc_2digits(w, (unsigned)(y / 100));
    enc_2digits(w + 2, (unsigned)(y % 100));
    w[4] = '-';
    enc_2digits(w + 5, mo);
    w[7] = '-';
    enc_2digits(w + 8, d);
    w[10] = 'T';
    enc_2digits(w + 11, hour);
    w[13] = ':';
    enc_2digits(w + 14, min);
    w[16] = ':';
    enc_2digits(w + 17, sec);
    w[19] = '.';
    w[20] = (char)('0' + msec / 100);
    enc_2digits(w + 21, msec % 100);
    w[23] = 'Z';
    out->len += 24;
    out->data[out->len] = '\0';
    return 0;
}

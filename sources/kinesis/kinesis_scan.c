/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_scan.c: a small in-place JSON scanner for GetRecords' answers. kinesis_wire_read.c
 * reads a page of up to 10,000 records with it rather than as a cJSON tree (which would be tens
 * of thousands of allocations): it checks that the text is JSON, decodes the strings asked for
 * in place (NUL-terminated where they lie) and skips everything else. Its own file because it
 * knows JSON's syntax and nothing of Kinesis. No allocation, no logging. Any thread. */
#include "kinesis_scan.h"

#include <stdint.h>
#include <string.h>

#define KJS_DEPTH_MAX 1000 /* as cJSON's nesting limit */

/* What a byte may be: KJS_PLAIN inside a string with nothing to decode (not a control
 * character, quote or backslash), KJS_B64 in padded standard base64's alphabet. */
#define KJS_PLAIN 1
#define KJS_B64   2
static const unsigned char kjs_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1,
    1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 0, 1, 1, 1,
    1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Eight bytes at a time (SWAR): a byte of each lane of v that is zero shows as its high bit. */
#define KJS_ONES  UINT64_C(0x0101010101010101)
#define KJS_HIGHS UINT64_C(0x8080808080808080)

static inline uint64_t kjs_zero_bytes(uint64_t v)
{
    return (v - KJS_ONES) & ~v & KJS_HIGHS;
}

/* Nonzero when one of the eight bytes at p ends a plain run: a quote, a backslash or a control
 * character (below 0x20; bytes from 0x80 are plain, as in kjs_class). */
static inline uint64_t kjs_stops(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return kjs_zero_bytes(v ^ (KJS_ONES * '"')) | kjs_zero_bytes(v ^ (KJS_ONES * '\\')) |
           ((v - KJS_ONES * 0x20) & ~v & KJS_HIGHS);
}

static const char kjs_escapes[] = "\"\\/bfnrt"; /* after a backslash: \" \\ \/ \b \f \n \r \t */

void kjs_ws(struct kjs *s)
{
    while (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r') {
        s->p++;
    }
}

static int kjs_hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

/* Writes code point cp as UTF-8 at out; returns the bytes written. */
static size_t kjs_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string at s->p (its opening quote). With write, its escapes are decoded in place and it
 * is NUL-terminated there (*ret, *ret_len; \u0000 is a NUL byte inside, counted in *ret_len);
 * without, it is only checked. false: malformed as RFC 8259 says (a raw control character, a
 * bad escape, a lone surrogate, no closing quote). */
static bool kjs_string(struct kjs *s, bool write, char **ret, size_t *ret_len)
{
    char *p = s->p + 1;
    char *start = p;
    /* the common case: no escape; eight bytes at a time while all eight are plain */
    while (s->end - p >= 8 && !kjs_stops(p)) {
        p += 8;
    }
    while (kjs_class[(unsigned char)*p] & KJS_PLAIN) {
        p++;
    }
    char *out = p;
    while (*p != '"') {
        if (p >= s->end || (unsigned char)*p < 0x20) {
            return false;
        }
        if (*p != '\\') {
            if (write) {
                *out++ = *p;
            }
            p++;
            continue;
        }
        char e = p[1];
        const char *simple = e ? strchr(kjs_escapes, e) : NULL;
        if (simple) {
            if (write) {
                *out++ = "\"\\/\b\f\n\r\t"[simple - kjs_escapes];
            }
            p += 2;
            continue;
        }
        if (e != 'u') {
            return false;
        }
        int hi = kjs_hex4(p + 2);
        if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF)) {
            return false;
        }
        unsigned cp = (unsigned)hi;
        p += 6;
        if (hi >= 0xD800 && hi <= 0xDBFF) {
            int lo = p[0] == '\\' && p[1] == 'u' ? kjs_hex4(p + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF) {
                return false;
            }
            cp = 0x10000 + (((unsigned)hi - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
            p += 6;
        }
        if (write) {
            out += kjs_utf8(out, cp);
        }
    }
    if (write) {
        *out = '\0'; /* out <= p, the closing quote */
        *ret = start;
        *ret_len = (size_t)(out - start);
    }
    s->p = p + 1;
    return true;
}

/* A JSON number at s->p: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool kjs_number(struct kjs *s)
{
    char *p = s->p;
    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return false;
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!(*p >= '0' && *p <= '9')) {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    s->p = p;
    return true;
}

static bool kjs_word(struct kjs *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) {
        return false;
    }
    s->p += n;
    return true;
}

/* The members of an object or the elements of an array, s->p after its opening bracket. */
static bool kjs_skip_items(struct kjs *s, bool object)
{
    char close = object ? '}' : ']';
    kjs_ws(s);
    if (*s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        if (object) {
            if (*s->p != '"' || !kjs_string(s, false, NULL, NULL)) {
                return false;
            }
            kjs_ws(s);
            if (*s->p != ':') {
                return false;
            }
            s->p++;
            kjs_ws(s);
        }
        if (!kjs_skip(s)) {
            return false;
        }
        kjs_ws(s);
        if (*s->p == close) {
            s->p++;
            return true;
        }
        if (*s->p != ',') {
            return false;
        }
        s->p++;
        kjs_ws(s);
    }
}

/* Checks and passes over the value at s->p, writing nothing. */
bool kjs_skip(struct kjs *s)
{
    switch (*s->p) {
    case '"':
        return kjs_string(s, false, NULL, NULL);
    case '{':
    case '[': {
        if (++s->depth > KJS_DEPTH_MAX) {
            return false;
        }
        bool object = *s->p == '{';
        s->p++;
        bool ok = kjs_skip_items(s, object);
        s->depth--;
        return ok;
    }
    case 't':
        return kjs_word(s, "true", 4);
    case 'f':
        return kjs_word(s, "false", 5);
    case 'n':
        return kjs_word(s, "null", 4);
    default:
        return kjs_number(s);
    }
}

/* The value at s->p as a member the reader wants: a string is decoded in place (*ret_str), a
 * number's text kept (*ret_str, parsed by the caller), anything else checked and skipped. */
bool kjs_member(struct kjs *s, enum kjs_kind *ret_kind, char **ret_str, size_t *ret_len)
{
    char c = *s->p;
    if (c == '"') {
        *ret_kind = KJS_STRING;
        return kjs_string(s, true, ret_str, ret_len);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        *ret_kind = KJS_NUMBER;
        *ret_str = s->p;
        return kjs_number(s);
    }
    *ret_kind = c == 'n' ? KJS_NULL : KJS_OTHER;
    return kjs_skip(s);
}

/* A key at s->p, its ':' and the whitespace after it; *ret_key NUL-terminated in place. */
bool kjs_key(struct kjs *s, char **ret_key, size_t *ret_len)
{
    if (*s->p != '"' || !kjs_string(s, true, ret_key, ret_len)) {
        return false;
    }
    kjs_ws(s);
    if (*s->p != ':') {
        return false;
    }
    s->p++;
    kjs_ws(s);
    return true;
}

/* After a member: ',' (true, *ret_more) or the closing bracket. */
bool kjs_next(struct kjs *s, char close, bool *ret_more)
{
    kjs_ws(s);
    if (*s->p == ',') {
        s->p++;
        kjs_ws(s);
        *ret_more = true;
        return true;
    }
    *ret_more = false;
    if (*s->p != close) {
        return false;
    }
    s->p++;
    return true;
}

bool kinesis_is_base64(const char *s, size_t n)
{
    if (n % 4) {
        return false;
    }
    const unsigned char *u = (const unsigned char *)s;
    /* all of it but the last two from the alphabet; those two may be '=' (then to the end) */
    size_t body = n >= 2 ? n - 2 : 0;
    size_t i = 0;
    for (; i + 4 <= body; i += 4) {
        if (!(kjs_class[u[i]] & kjs_class[u[i + 1]] & kjs_class[u[i + 2]] & kjs_class[u[i + 3]] &
              KJS_B64)) {
            return false;
        }
    }
    for (; i < body; i++) {
        if (!(kjs_class[u[i]] & KJS_B64)) {
            return false;
        }
    }
    if (n < 2) {
        return true;
    }
    bool b0 = (kjs_class[u[n - 2]] & KJS_B64) != 0;
    bool b1 = (kjs_class[u[n - 1]] & KJS_B64) != 0;
    return (b0 && b1) || (b0 && u[n - 1] == '=') || (u[n - 2] == '=' && u[n - 1] == '=');
}

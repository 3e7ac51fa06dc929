/* SPDX-License-Identifier: Apache-2.0 */
/* fh_jscan.c: a small JSON scanner over raw bytes for dynamic partitioning's queries
 * (fh_query.c): JSON strings decoded to UTF-8, values validated and skipped without building a
 * tree, an object's member found by name. It keeps the text of a value as written (a number's
 * digits), which cJSON does not. Pure; any thread; nothing logs. */
#include "fh_jscan.h"

#include <string.h>

#define FHQ_MAX_DEPTH 256

/* JSON strings (the query's and the record's) */

static void fhq_utf8(struct sl_buf *b, unsigned long cp, int *r)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (b && sl_buf_append(b, u, n) < 0) {
        *r = SL_ENOMEM;
    }
}

static bool fhq_hex4(const char *p, const char *e, unsigned long *ret)
{
    unsigned long v = 0;
    if (e - p < 4) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) {
            return false;
        }
        v = v * 16 + (unsigned long)d;
    }
    *ret = v;
    return true;
}

/* Reads the JSON string at p (its opening quote) into out (NULL: only scans). Returns the
 * position after the closing quote, or NULL: malformed (*r untouched) or out of memory (*r). */
const char *sl_fh_jscan_string(const char *p, const char *e, struct sl_buf *out, int *r)
{
    p++;
    while (p < e && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) {
            return NULL;
        }
        if (c != '\\') {
            const char *run = p;
            while (p < e && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) {
                p++;
            }
            if (out && sl_buf_append(out, run, (size_t)(p - run)) < 0) {
                *r = SL_ENOMEM;
                return NULL;
            }
            continue;
        }
        if (++p >= e) {
            return NULL;
        }
        const char *esc = strchr("\"\\/bfnrt", *p);
        if (*p && esc) {
            static const char to[] = "\"\\/\b\f\n\r\t";
            if (out && sl_buf_append(out, &to[esc - "\"\\/bfnrt"], 1) < 0) {
                *r = SL_ENOMEM;
                return NULL;
            }
            p++;
            continue;
        }
        unsigned long cp;
        if (*p != 'u' || !fhq_hex4(p + 1, e, &cp)) {
            return NULL;
        }
        p += 5;
        if (cp >= 0xd800 && cp < 0xdc00) {
            unsigned long lo;
            if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || !fhq_hex4(p + 2, e, &lo) ||
                lo < 0xdc00 || lo >= 0xe000) {
                return NULL;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        } else if (cp >= 0xdc00 && cp < 0xe000) {
            return NULL;
        }
        fhq_utf8(out, cp, r);
        if (*r < 0) {
            return NULL;
        }
    }
    return p < e ? p + 1 : NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* The record scanner */

const char *sl_fh_jscan_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static const char *fhq_number(const char *p, const char *e)
{
    if (p < e && *p == '-') {
        p++;
    }
    if (p >= e || *p < '0' || *p > '9') {
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && *p == '.') {
        if (++p >= e || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    return p;
}

/* Skips the value at p (no leading space); returns its end or NULL (malformed). */
const char *sl_fh_jscan_value(const char *p, const char *e, int depth)
{
    int r = 0;
    if (p >= e || depth > FHQ_MAX_DEPTH) {
        return NULL;
    }
    switch (*p) {
    case '"':
        return sl_fh_jscan_string(p, e, NULL, &r);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        p = sl_fh_jscan_ws(p + 1, e);
        if (p < e && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (close == '}') {
                if (p >= e || *p != '"' || !(p = sl_fh_jscan_string(p, e, NULL, &r))) {
                    return NULL;
                }
                p = sl_fh_jscan_ws(p, e);
                if (p >= e || *p != ':') {
                    return NULL;
                }
                p = sl_fh_jscan_ws(p + 1, e);
            }
            if (!(p = sl_fh_jscan_value(p, e, depth + 1))) {
                return NULL;
            }
            p = sl_fh_jscan_ws(p, e);
            if (p < e && *p == close) {
                return p + 1;
            }
            if (p >= e || *p != ',') {
                return NULL;
            }
            p = sl_fh_jscan_ws(p + 1, e);
        }
    }
    case 't':
        return e - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return e - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return e - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return fhq_number(p, e);
    }
}

/* In the (valid) object at p, the value of the member named name, the last one if repeated;
 * NULL when absent. tmp is scratch for keys with escapes. */
const char *sl_fh_jscan_member(const char *p, const char *e, const char *name, struct sl_buf *tmp)
{
    const char *found = NULL;
    size_t nlen = strlen(name);
    int r = 0;
    p = sl_fh_jscan_ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *k = p + 1;
        const char *kend = sl_fh_jscan_string(p, e, NULL, &r);
        bool match;
        if (memchr(k, '\\', (size_t)(kend - 1 - k))) {
            sl_buf_truncate(tmp, 0);
            match = sl_fh_jscan_string(p, e, tmp, &r) && tmp->len == nlen &&
                    memcmp(tmp->data, name, nlen) == 0;
        } else {
            match = (size_t)(kend - 1 - k) == nlen && memcmp(k, name, nlen) == 0;
        }
        p = sl_fh_jscan_ws(sl_fh_jscan_ws(kend, e) + 1, e); /* past ':' */
        if (match) {
            found = p;
        }
        p = sl_fh_jscan_ws(sl_fh_jscan_value(p, e, 0), e);
        if (p < e && *p == ',') {
            p = sl_fh_jscan_ws(p + 1, e);
        }
    }
    return found;
}

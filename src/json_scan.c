/* SPDX-License-Identifier: Apache-2.0 */
/* json_scan.c: JSON checked and indexed in place (json_scan.h). A recursive descent over the
 * text (RFC 8259: objects, arrays, strings with their escapes, numbers by the grammar, true,
 * false, null), depth-limited, that appends one token per value and per key to a growable array
 * kept across scans, so a steady stream of answers allocates nothing. Strings are checked when
 * scanned (escapes well-formed, \u surrogates paired) so decoding them later cannot fail but for
 * memory. Raw control characters inside strings are let through, as cJSON lets them through.
 * No logging. Any thread. */
#include "json_scan.h"

#include <string.h>

#include "alloc.h"

#define JSON_SCAN_DEPTH_MAX 64

struct scan {
    struct sl_json_scan *s;
    const char *p;
    size_t len;
    size_t pos;
};

void sl_json_scan_init(struct sl_json_scan *s)
{
    memset(s, 0, sizeof(*s));
}

void sl_json_scan_fini(struct sl_json_scan *s)
{
    sl_free(s->tok);
    sl_json_scan_init(s);
}

static void scan_ws(struct scan *c)
{
    while (c->pos < c->len) {
        char ch = c->p[c->pos];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            break;
        }
        c->pos++;
    }
}

/* Appends a token; returns its index, or -1 when out of memory. */
static long scan_push(struct scan *c, enum sl_json_kind kind, size_t off)
{
    struct sl_json_scan *s = c->s;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        struct sl_json_tok *t = sl_realloc(s->tok, cap * sizeof(*t));
        if (!t) {
            return -1;
        }
        s->tok = t;
        s->cap = cap;
    }
    struct sl_json_tok *t = &s->tok[s->n];
    t->off = (uint32_t)off;
    t->len = 0;
    t->end = 0;
    t->kind = (uint8_t)kind;
    t->escaped = false;
    return (long)s->n++;
}

static int hex4(const char *p, unsigned *ret)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9') {
            v |= (unsigned)(ch - '0');
        } else if (ch >= 'a' && ch <= 'f') {
            v |= (unsigned)(ch - 'a' + 10);
        } else if (ch >= 'A' && ch <= 'F') {
            v |= (unsigned)(ch - 'A' + 10);
        } else {
            return -1;
        }
    }
    *ret = v;
    return 0;
}

/* A \u escape at p (the backslash) of which there are n bytes: its code point and length (6,
 * or 12 for a surrogate pair), or -1 when malformed. */
static int scan_u(const char *p, size_t n, unsigned *ret_cp)
{
    unsigned hi;
    if (n < 6 || hex4(p + 2, &hi) < 0) {
        return -1;
    }
    if (hi >= 0xDC00 && hi <= 0xDFFF) {
        return -1; /* a low surrogate first */
    }
    if (hi < 0xD800 || hi > 0xDBFF) {
        *ret_cp = hi;
        return 6;
    }
    unsigned lo;
    if (n < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, &lo) < 0 || lo < 0xDC00 ||
        lo > 0xDFFF) {
        return -1;
    }
    *ret_cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

static int scan_string(struct scan *c)
{
    size_t start = ++c->pos; /* after the quote */
    long i = scan_push(c, SL_JSON_STRING, start);
    if (i < 0) {
        return SL_ENOMEM;
    }
    bool escaped = false;
    for (;;) {
        /* to the next quote, and to the first backslash before it (both by memchr: most
         * strings have none) */
        const char *at = c->p + c->pos;
        const char *quote = memchr(at, '"', c->len - c->pos);
        if (!quote) {
            return SL_EPROTO;
        }
        const char *bs = memchr(at, '\\', (size_t)(quote - at));
        if (!bs) {
            c->pos = (size_t)(quote - c->p);
            struct sl_json_tok *t = &c->s->tok[i];
            t->len = (uint32_t)(c->pos - start);
            t->end = (uint32_t)c->s->n;
            t->escaped = escaped;
            c->pos++;
            return 0;
        }
        escaped = true;
        c->pos = (size_t)(bs - c->p);
        if (c->pos + 1 >= c->len) {
            return SL_EPROTO;
        }
        char e = c->p[c->pos + 1];
        if (e == 'u') {
            unsigned cp;
            int n = scan_u(c->p + c->pos, c->len - c->pos, &cp);
            if (n < 0) {
                return SL_EPROTO;
            }
            c->pos += (size_t)n;
        } else if (e && strchr("\"\\/bfnrt", e)) {
            c->pos += 2;
        } else {
            return SL_EPROTO;
        }
    }
}

static int scan_primitive(struct scan *c)
{
    size_t start = c->pos;
    const char *p = c->p;
    size_t n = c->len;
    static const char *const words[] = {"true", "false", "null"};
    for (size_t w = 0; w < 3; w++) {
        size_t wl = strlen(words[w]);
        if (n - start >= wl && memcmp(p + start, words[w], wl) == 0) {
            c->pos += wl;
            goto done;
        }
    }
    /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    size_t q = start;
    if (q < n && p[q] == '-') {
        q++;
    }
    if (q < n && p[q] == '0') {
        q++;
    } else if (q < n && p[q] >= '1' && p[q] <= '9') {
        while (q < n && p[q] >= '0' && p[q] <= '9') {
            q++;
        }
    } else {
        return SL_EPROTO;
    }
    if (q < n && p[q] == '.') {
        size_t d = ++q;
        while (q < n && p[q] >= '0' && p[q] <= '9') {
            q++;
        }
        if (q == d) {
            return SL_EPROTO;
        }
    }
    if (q < n && (p[q] == 'e' || p[q] == 'E')) {
        q++;
        if (q < n && (p[q] == '+' || p[q] == '-')) {
            q++;
        }
        size_t d = q;
        while (q < n && p[q] >= '0' && p[q] <= '9') {
            q++;
        }
        if (q == d) {
            return SL_EPROTO;
        }
    }
    c->pos = q;
done:;
    long i = scan_push(c, SL_JSON_PRIMITIVE, start);
    if (i < 0) {
        return SL_ENOMEM;
    }
    c->s->tok[i].len = (uint32_t)(c->pos - start);
    c->s->tok[i].end = (uint32_t)c->s->n;
    return 0;
}

static int scan_value(struct scan *c, int depth);

/* An object or an array, c->pos at its opening bracket. */
static int scan_container(struct scan *c, int depth)
{
    bool object = c->p[c->pos] == '{';
    char close = object ? '}' : ']';
    if (depth >= JSON_SCAN_DEPTH_MAX) {
        return SL_EPROTO;
    }
    long i = scan_push(c, object ? SL_JSON_OBJECT : SL_JSON_ARRAY, c->pos);
    if (i < 0) {
        return SL_ENOMEM;
    }
    c->pos++;
    scan_ws(c);
    if (c->pos < c->len && c->p[c->pos] == close) {
        goto closed;
    }
    for (;;) {
        int r;
        if (object) {
            if (c->pos >= c->len || c->p[c->pos] != '"') {
                return SL_EPROTO;
            }
            r = scan_string(c);
            if (r < 0) {
                return r;
            }
            scan_ws(c);
            if (c->pos >= c->len || c->p[c->pos] != ':') {
                return SL_EPROTO;
            }
            c->pos++;
        }
        r = scan_value(c, depth + 1);
        if (r < 0) {
            return r;
        }
        scan_ws(c);
        if (c->pos >= c->len) {
            return SL_EPROTO;
        }
        if (c->p[c->pos] == close) {
            break;
        }
        if (c->p[c->pos] != ',') {
            return SL_EPROTO;
        }
        c->pos++;
        scan_ws(c);
    }
closed:
    c->pos++;
    c->s->tok[i].len = (uint32_t)(c->pos - c->s->tok[i].off);
    c->s->tok[i].end = (uint32_t)c->s->n;
    return 0;
}

static int scan_value(struct scan *c, int depth)
{
    scan_ws(c);
    if (c->pos >= c->len) {
        return SL_EPROTO;
    }
    char ch = c->p[c->pos];
    if (ch == '{' || ch == '[') {
        return scan_container(c, depth);
    }
    if (ch == '"') {
        return scan_string(c);
    }
    return scan_primitive(c);
}

int sl_json_scan_parse(struct sl_json_scan *s, const char *text, size_t len)
{
    s->text = text;
    s->n = 0;
    if (len >= UINT32_MAX) {
        return SL_EPROTO;
    }
    struct scan c = {.s = s, .p = text, .len = len, .pos = 0};
    if (scan_push(&c, SL_JSON_KIND_COUNT, 0) < 0) { /* token 0: none */
        return SL_ENOMEM;
    }
    int r = scan_value(&c, 0);
    if (r == 0) {
        scan_ws(&c);
        if (c.pos != len) {
            r = SL_EPROTO;
        }
    }
    if (r < 0) {
        s->n = 0;
    }
    return r;
}

size_t sl_json_scan_first(const struct sl_json_scan *s, size_t i)
{
    return i && i < s->n && s->tok[i].kind <= SL_JSON_ARRAY && i + 1 < s->tok[i].end ? i + 1 : 0;
}

size_t sl_json_scan_next(const struct sl_json_scan *s, size_t i, size_t c)
{
    size_t next = s->tok[c].end;
    return next < s->tok[i].end ? next : 0;
}

size_t sl_json_scan_member(const struct sl_json_scan *s, size_t obj, const char *key)
{
    if (!sl_json_scan_is(s, obj, SL_JSON_OBJECT)) {
        return 0;
    }
    size_t key_len = strlen(key);
    for (size_t k = sl_json_scan_first(s, obj); k; k = sl_json_scan_next(s, obj, k + 1)) {
        const struct sl_json_tok *t = &s->tok[k];
        if (t->len == key_len && memcmp(s->text + t->off, key, key_len) == 0) {
            return k + 1;
        }
    }
    return 0;
}

/* Appends code point cp as UTF-8 at w; returns the bytes written. */
static size_t utf8_put(char *w, unsigned cp)
{
    if (cp < 0x80) {
        w[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        w[0] = (char)(0xC0 | (cp >> 6));
        w[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        w[0] = (char)(0xE0 | (cp >> 12));
        w[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        w[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | (cp >> 18));
    w[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    w[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    w[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int sl_json_scan_str(const struct sl_json_scan *s, size_t i, struct sl_buf *out)
{
    const struct sl_json_tok *t = &s->tok[i];
    const char *p = s->text + t->off;
    if (!t->escaped) {
        return sl_buf_append(out, p, t->len);
    }
    /* decoded is never longer than written: \uXXXX (6) is at most 3 bytes, a pair (12) 4 */
    if (sl_buf_reserve(out, t->len) < 0) {
        return SL_ENOMEM;
    }
    char *w = out->data + out->len;
    size_t k = 0;
    while (k < t->len) {
        if (p[k] != '\\') {
            *w++ = p[k++];
            continue;
        }
        char e = p[k + 1];
        if (e == 'u') {
            unsigned cp = 0;
            int n = scan_u(p + k, t->len - k, &cp); /* checked when scanned */
            w += utf8_put(w, cp);
            k += (size_t)n;
            continue;
        }
        static const char from[] = "\"\\/bfnrt";
        static const char to[] = "\"\\/\b\f\n\r\t";
        *w++ = to[strchr(from, e) - from];
        k += 2;
    }
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

bool sl_json_scan_str_is(const struct sl_json_scan *s, size_t i, const char *lit)
{
    const struct sl_json_tok *t = &s->tok[i];
    size_t n = strlen(lit);
    if (!t->escaped) {
        return t->len == n && memcmp(s->text + t->off, lit, n) == 0;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    bool same = sl_json_scan_str(s, i, &b) == 0 && b.len == n && memcmp(b.data, lit, n) == 0;
    sl_buf_fini(&b);
    return same;
}

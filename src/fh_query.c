/* SPDX-License-Identifier: Apache-2.0 */
/* fh_query.c: the MetadataExtractionQuery of dynamic partitioning (fh_partition.h): a jq object
 * of paths compiled at config time, and the extraction of its keys from each record. Records
 * are read in place with a small JSON scanner rather than cJSON, because Firehose renders a
 * number as it is written in the record and cJSON keeps only a double. The scanner validates
 * the whole record once, then walks each key's path; nothing is allocated per record but the
 * rendered values. Any thread; nothing logs. */
#include "fh_partition.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define FHQ_MAX_DEPTH 256
#define FHQ_SUPPORTED                                                                      \
    "supported: an object of paths, {key: .field, key: .a.b, \"key\": .\"odd-key\", key: " \
    ".a[\"b\"]} or {key}"

struct fhq_key {
    char *name;
    char **segs;
    size_t n_segs;
};

struct sl_fh_query {
    struct fhq_key *keys;
    size_t n;
};

/* ---------------------------------------------------------------------------------------- */
/* JSON strings (shared by the query's and the record's) */

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
static const char *fhq_string(const char *p, const char *e, struct sl_buf *out, int *r)
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

static const char *fhq_ws(const char *p, const char *e)
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
static const char *fhq_value(const char *p, const char *e, int depth)
{
    int r = 0;
    if (p >= e || depth > FHQ_MAX_DEPTH) {
        return NULL;
    }
    switch (*p) {
    case '"':
        return fhq_string(p, e, NULL, &r);
    case '{':
    case '[': {
        char close = *p == '{' ? '}' : ']';
        p = fhq_ws(p + 1, e);
        if (p < e && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (close == '}') {
                if (p >= e || *p != '"' || !(p = fhq_string(p, e, NULL, &r))) {
                    return NULL;
                }
                p = fhq_ws(p, e);
                if (p >= e || *p != ':') {
                    return NULL;
                }
                p = fhq_ws(p + 1, e);
            }
            if (!(p = fhq_value(p, e, depth + 1))) {
                return NULL;
            }
            p = fhq_ws(p, e);
            if (p < e && *p == close) {
                return p + 1;
            }
            if (p >= e || *p != ',') {
                return NULL;
            }
            p = fhq_ws(p + 1, e);
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
static const char *fhq_member(const char *p, const char *e, const char *name, struct sl_buf *tmp)
{
    const char *found = NULL;
    size_t nlen = strlen(name);
    int r = 0;
    p = fhq_ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *k = p + 1;
        const char *kend = fhq_string(p, e, NULL, &r);
        bool match;
        if (memchr(k, '\\', (size_t)(kend - 1 - k))) {
            sl_buf_truncate(tmp, 0);
            match =
                fhq_string(p, e, tmp, &r) && tmp->len == nlen && memcmp(tmp->data, name, nlen) == 0;
        } else {
            match = (size_t)(kend - 1 - k) == nlen && memcmp(k, name, nlen) == 0;
        }
        p = fhq_ws(fhq_ws(kend, e) + 1, e); /* past ':' */
        if (match) {
            found = p;
        }
        p = fhq_ws(fhq_value(p, e, 0), e);
        if (p < e && *p == ',') {
            p = fhq_ws(p + 1, e);
        }
    }
    return found;
}

int sl_fh_query_extract(const struct sl_fh_query *q,
                        const void *data,
                        size_t len,
                        struct sl_strmap *out,
                        char *errbuf,
                        size_t errlen)
{
    const char *s = data;
    const char *e = s + len;
    const char *v = fhq_ws(s, e);
    const char *end = fhq_value(v, e, 0);
    if (!end || fhq_ws(end, e) != e) {
        (void)snprintf(errbuf, errlen, "the record is not JSON");
        return SL_EINVAL;
    }
    struct sl_buf tmp, val;
    sl_buf_init(&tmp);
    sl_buf_init(&val);
    int r = 0;
    for (size_t k = 0; k < q->n && r == 0; k++) {
        const struct fhq_key *key = &q->keys[k];
        const char *p = v;
        for (size_t i = 0; p && i < key->n_segs; i++) {
            p = *p == '{' ? fhq_member(p, e, key->segs[i], &tmp) : NULL;
        }
        if (!p || *p == 'n' || *p == '{' || *p == '[') {
            (void)snprintf(errbuf, errlen, "partition key %s: %s in the record", key->name,
                           !p || *p == 'n' ? "missing (null)" : "an object or array, not a value");
            r = SL_ENOTFOUND;
            break;
        }
        sl_buf_truncate(&val, 0);
        if (*p == '"') {
            if (!fhq_string(p, e, &val, &r)) {
                r = SL_ENOMEM;
            }
        } else if (sl_buf_append(&val, p, (size_t)(fhq_value(p, e, 0) - p)) < 0) {
            r = SL_ENOMEM;
        }
        if (r == 0 && sl_buf_reserve(&val, 1) < 0) {
            r = SL_ENOMEM;
        }
        if (r == 0 && sl_strmap_put(out, key->name, val.data) < 0) {
            r = SL_ENOMEM;
        }
    }
    sl_buf_fini(&tmp);
    sl_buf_fini(&val);
    return r;
}

/* ---------------------------------------------------------------------------------------- */
/* The query */

struct fhq_parse {
    const char *text;
    const char *p;
    const char *e;
    int r; /* SL_ENOMEM */
};

static bool fhq_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool fhq_ident_char(char c)
{
    return fhq_ident_start(c) || (c >= '0' && c <= '9');
}

/* An identifier or a string at ps->p, decoded, owned; NULL (not one, or OOM in ps->r). */
static char *fhq_name(struct fhq_parse *ps)
{
    struct sl_buf b;
    sl_buf_init(&b);
    const char *p = ps->p;
    if (p < ps->e && *p == '"') {
        p = fhq_string(p, ps->e, &b, &ps->r);
    } else if (p < ps->e && fhq_ident_start(*p)) {
        const char *s = p;
        while (p < ps->e && fhq_ident_char(*p)) {
            p++;
        }
        if (sl_buf_append(&b, s, (size_t)(p - s)) < 0) {
            ps->r = SL_ENOMEM;
            p = NULL;
        }
    } else {
        p = NULL;
    }
    if (p && sl_buf_reserve(&b, 1) < 0) {
        ps->r = SL_ENOMEM;
        p = NULL;
    }
    if (!p) {
        sl_buf_fini(&b);
        return NULL;
    }
    ps->p = p;
    return sl_buf_steal(&b);
}

static bool fhq_add_seg(struct fhq_key *k, char *seg)
{
    char **segs = sl_realloc(k->segs, (k->n_segs + 1) * sizeof(*segs));
    if (!segs) {
        sl_free(seg);
        return false;
    }
    k->segs = segs;
    k->segs[k->n_segs++] = seg;
    return true;
}

/* A path .a.b, ."x", .a["b"] at ps->p into k. Returns false when it is not one. */
static bool fhq_path(struct fhq_parse *ps, struct fhq_key *k)
{
    if (ps->p >= ps->e || *ps->p != '.') {
        return false;
    }
    while (ps->p < ps->e && (*ps->p == '.' || *ps->p == '[')) {
        bool bracket = *ps->p == '[' || (ps->e - ps->p > 1 && ps->p[1] == '[');
        ps->p += *ps->p == '.' && bracket ? 2 : 1;
        if (bracket && (ps->p >= ps->e || *ps->p != '"')) {
            return false;
        }
        char *seg = fhq_name(ps);
        if (!seg || !fhq_add_seg(k, seg)) {
            ps->r = seg ? SL_ENOMEM : ps->r;
            return false;
        }
        if (bracket) {
            if (ps->p >= ps->e || *ps->p != ']') {
                return false;
            }
            ps->p++;
        }
    }
    return k->n_segs > 0;
}

void sl_fh_query_free(struct sl_fh_query *q)
{
    if (!q) {
        return;
    }
    for (size_t i = 0; i < q->n; i++) {
        for (size_t j = 0; j < q->keys[i].n_segs; j++) {
            sl_free(q->keys[i].segs[j]);
        }
        sl_free(q->keys[i].segs);
        sl_free(q->keys[i].name);
    }
    sl_free(q->keys);
    sl_free(q);
}

/* One entry "key: path" or "key" at ps->p into q. Returns 0, or a static reason. */
static const char *fhq_entry(struct fhq_parse *ps, struct sl_fh_query *q)
{
    bool ident = ps->p < ps->e && fhq_ident_start(*ps->p);
    char *name = fhq_name(ps);
    if (!name) {
        return "expected a key name";
    }
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->keys[i].name, name) == 0) {
            sl_free(name);
            return "a key defined twice";
        }
    }
    if (q->n == SL_FH_QUERY_MAX_KEYS) {
        sl_free(name);
        return "more than 50 keys";
    }
    struct fhq_key *keys = sl_realloc(q->keys, (q->n + 1) * sizeof(*keys));
    if (!keys) {
        sl_free(name);
        ps->r = SL_ENOMEM;
        return "out of memory";
    }
    q->keys = keys;
    struct fhq_key *k = &q->keys[q->n++];
    memset(k, 0, sizeof(*k));
    k->name = name;
    ps->p = fhq_ws(ps->p, ps->e);
    if (ident && ps->p < ps->e && (*ps->p == ',' || *ps->p == '}')) {
        char *seg = sl_strdup(name);
        if (!seg || !fhq_add_seg(k, seg)) {
            ps->r = SL_ENOMEM;
            return "out of memory";
        }
        return NULL;
    }
    if (ps->p >= ps->e || *ps->p != ':') {
        return "expected ':' after the key";
    }
    ps->p = fhq_ws(ps->p + 1, ps->e);
    if (!fhq_path(ps, k)) {
        return ps->r ? "out of memory" : "not a path";
    }
    ps->p = fhq_ws(ps->p, ps->e);
    return NULL;
}

int sl_fh_query_new(const char *text,
                    const char *file,
                    const char *path,
                    struct sl_fh_query **ret_q,
                    struct sl_errlist *errs)
{
    struct sl_fh_query *q = sl_calloc(1, sizeof(*q));
    if (!q) {
        return SL_ENOMEM;
    }
    struct fhq_parse ps = {.text = text, .p = text, .e = text + strlen(text)};
    const char *why = NULL;
    ps.p = fhq_ws(ps.p, ps.e);
    if (ps.p >= ps.e || *ps.p != '{') {
        why = "expected '{'";
    } else {
        ps.p = fhq_ws(ps.p + 1, ps.e);
        while (!why && ps.p < ps.e && *ps.p != '}') {
            why = fhq_entry(&ps, q);
            if (!why && ps.p < ps.e && *ps.p == ',') {
                ps.p = fhq_ws(ps.p + 1, ps.e);
            } else if (!why && (ps.p >= ps.e || *ps.p != '}')) {
                why = "expected ',' or '}' (pipes and functions are not supported)";
            }
        }
        if (!why && ps.p >= ps.e) {
            why = "expected '}'";
        } else if (!why && (ps.p = fhq_ws(ps.p + 1, ps.e)) != ps.e) {
            why = "text after the closing '}' (pipes and functions are not supported)";
        } else if (!why && q->n == 0) {
            why = "no keys";
        }
    }
    if (ps.r == SL_ENOMEM) {
        sl_fh_query_free(q);
        return SL_ENOMEM;
    }
    if (why) {
        sl_errlist_add(errs, "%s: %s: \"%s\": %s at offset %zu; %s", file, path, text, why,
                       (size_t)(ps.p - text), FHQ_SUPPORTED);
        sl_fh_query_free(q);
        return SL_ECONFIG;
    }
    *ret_q = q;
    return 0;
}

size_t sl_fh_query_key_count(const struct sl_fh_query *q)
{
    return q->n;
}

const char *sl_fh_query_key(const struct sl_fh_query *q, size_t i)
{
    return q->keys[i].name;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* fh_query.c: the MetadataExtractionQuery of dynamic partitioning (fh_partition.h): a jq object
 * of paths compiled at config time, and the extraction of its keys from each record. Records
 * are read in place with fh_jscan.c's scanner rather than cJSON, because Firehose renders a
 * number as it is written in the record and cJSON keeps only a double: the whole record is
 * validated once, then each key's path walked; nothing is allocated per record but the
 * rendered values. Any thread; nothing logs. */
#include "fh_partition.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "fh_jscan.h"

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

int sl_fh_query_extract(const struct sl_fh_query *q,
                        const void *data,
                        size_t len,
                        struct sl_strmap *out,
                        char *errbuf,
                        size_t errlen)
{
    const char *s = data;
    const char *e = s + len;
    const char *v = sl_fh_jscan_ws(s, e);
    const char *end = sl_fh_jscan_value(v, e, 0);
    if (!end || sl_fh_jscan_ws(end, e) != e) {
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
            p = *p == '{' ? sl_fh_jscan_member(p, e, key->segs[i], &tmp) : NULL;
        }
        if (!p || *p == 'n' || *p == '{' || *p == '[') {
            (void)snprintf(errbuf, errlen, "partition key %s: %s in the record", key->name,
                           !p || *p == 'n' ? "missing (null)" : "an object or array, not a value");
            r = SL_ENOTFOUND;
            break;
        }
        sl_buf_truncate(&val, 0);
        if (*p == '"') {
            if (!sl_fh_jscan_string(p, e, &val, &r)) {
                r = SL_ENOMEM;
            }
        } else if (sl_buf_append(&val, p, (size_t)(sl_fh_jscan_value(p, e, 0) - p)) < 0) {
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
        p = sl_fh_jscan_string(p, ps->e, &b, &ps->r);
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
    ps->p = sl_fh_jscan_ws(ps->p, ps->e);
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
    ps->p = sl_fh_jscan_ws(ps->p + 1, ps->e);
    if (!fhq_path(ps, k)) {
        return ps->r ? "out of memory" : "not a path";
    }
    ps->p = sl_fh_jscan_ws(ps->p, ps->e);
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
    ps.p = sl_fh_jscan_ws(ps.p, ps.e);
    if (ps.p >= ps.e || *ps.p != '{') {
        why = "expected '{'";
    } else {
        ps.p = sl_fh_jscan_ws(ps.p + 1, ps.e);
        while (!why && ps.p < ps.e && *ps.p != '}') {
            why = fhq_entry(&ps, q);
            if (!why && ps.p < ps.e && *ps.p == ',') {
                ps.p = sl_fh_jscan_ws(ps.p + 1, ps.e);
            } else if (!why && (ps.p >= ps.e || *ps.p != '}')) {
                why = "expected ',' or '}' (pipes and functions are not supported)";
            }
        }
        if (!why && ps.p >= ps.e) {
            why = "expected '}'";
        } else if (!why && (ps.p = sl_fh_jscan_ws(ps.p + 1, ps.e)) != ps.e) {
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

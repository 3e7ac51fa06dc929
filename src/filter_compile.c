/* SPDX-License-Identifier: Apache-2.0 */
/* filter_compile.c: turning one pattern's parsed JSON into the tree that filter_match.c walks,
 * and freeing that tree. It does all the allocation and all the validation of a pattern, so
 * every error names its place inside the pattern (through filter_error.c); wildcard parsing and
 * complexity are left to filter_wildcard.c. The JSON text itself is parsed by the public entry
 * in filter.c. */
#include "filter_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- freeing --------------------------------------------------------------------------------- */

static void fm_fini(struct fm *m)
{
    sl_free(m->s);
    sl_free(m->cp);
    sl_free(m->wild.bytes);
    sl_free(m->wild.seg_off);
    sl_free(m->wild.seg_len);
    for (size_t i = 0; i < m->nitems; i++) {
        fm_fini(&m->items[i]);
    }
    sl_free(m->items);
}

void filter_compile_node_free(struct fnode *n)
{
    if (!n) {
        return;
    }
    for (size_t i = 0; i < n->nfields; i++) {
        struct ffield *f = &n->fields[i];
        sl_free(f->key);
        for (size_t k = 0; k < f->nm; k++) {
            fm_fini(&f->m[k]);
        }
        sl_free(f->m);
        filter_compile_node_free(f->child);
    }
    sl_free(n->fields);
    for (size_t i = 0; i < n->nalts; i++) {
        filter_compile_node_free(n->alts[i]);
    }
    sl_free(n->alts);
    sl_free(n);
}

int filter_compile_count_items(const cJSON *v)
{
    int n = 0;
    for (const cJSON *e = v->child; e; e = e->next) {
        n++;
    }
    return n;
}

static int set_string(struct cctx *c, struct fm *m, enum fm_kind kind, const char *s)
{
    m->kind = kind;
    m->slen = strlen(s);
    m->s = sl_strndup(s, m->slen);
    return m->s ? 0 : filter_error_nomem(c);
}

static int set_folded(struct cctx *c, struct fm *m, enum fm_kind kind, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    m->kind = kind;
    m->ncp = filter_text_utf8_count(s, len);
    m->cp = sl_calloc(m->ncp, sizeof(*m->cp));
    if (!m->cp) {
        return filter_error_nomem(c);
    }
    size_t i = 0;
    for (size_t k = 0; k < m->ncp; k++) {
        m->cp[k] = filter_text_fold(filter_text_utf8_next(s, len, &i));
    }
    return 0;
}

static int compile_numeric(struct cctx *c, struct fm *m, const cJSON *arr)
{
    m->kind = FM_NUMERIC;
    if (!cJSON_IsArray(arr)) {
        return filter_error_fmt(c, "numeric: expected an array like [\">\", 0, \"<=\", 5], got %s",
                                filter_error_type_name(arr));
    }
    int n = filter_compile_count_items(arr);
    if (n == 0) {
        return filter_error_fmt(c,
                                "numeric: expected an operator and a number, got an empty array");
    }
    if (n > 4) {
        return filter_error_fmt(c, "numeric: at most one lower and one upper bound are allowed");
    }
    const cJSON *e = arr->child;
    while (e) {
        if (!cJSON_IsString(e) || !e->valuestring) {
            return filter_error_fmt(c, "numeric: expected an operator (= < <= > >=), got %s",
                                    filter_error_type_name(e));
        }
        const char *op = e->valuestring;
        const cJSON *num = e->next;
        if (strcmp(op, "=") && strcmp(op, "<") && strcmp(op, "<=") && strcmp(op, ">") &&
            strcmp(op, ">=")) {
            return filter_error_fmt(c, "numeric: expected an operator (= < <= > >=), got \"%s\"",
                                    op);
        }
        if (!num || !cJSON_IsNumber(num)) {
            return filter_error_fmt(c, "numeric: expected a number after \"%s\", got %s", op,
                                    num ? filter_error_type_name(num) : "nothing");
        }
        double d = num->valuedouble;
        if (!isfinite(d)) {
            return filter_error_fmt(c, "numeric: %s is not a finite number", "the value");
        }
        if (op[0] == '=') {
            if (n != 2) {
                return filter_error_fmt(c, "numeric: \"=\" must be the only operator");
            }
            m->has_lo = m->has_hi = m->lo_incl = m->hi_incl = true;
            m->lo = m->hi = d;
        } else if (op[0] == '>') {
            if (m->has_lo) {
                return filter_error_fmt(c, "numeric: more than one lower bound (> or >=)");
            }
            m->has_lo = true;
            m->lo = d;
            m->lo_incl = op[1] == '=';
        } else {
            if (m->has_hi) {
                return filter_error_fmt(c, "numeric: more than one upper bound (< or <=)");
            }
            m->has_hi = true;
            m->hi = d;
            m->hi_incl = op[1] == '=';
        }
        e = num->next;
    }
    if (m->has_lo && m->has_hi && !(m->lo == m->hi && m->lo_incl && m->hi_incl) && m->lo >= m->hi) {
        return filter_error_fmt(c, "numeric: the lower bound %g is not below the upper bound %g",
                                m->lo, m->hi);
    }
    return 0;
}

static int compile_cidr(struct cctx *c, struct fm *m, const cJSON *v)
{
    char buf[64];
    m->kind = FM_CIDR;
    if (!cJSON_IsString(v) || !v->valuestring) {
        return filter_error_fmt(c, "cidr: expected a string like \"10.0.0.0/24\", got %s",
                                filter_error_type_name(v));
    }
    const char *s = v->valuestring;
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf)) {
        return filter_error_fmt(c, "cidr: \"%s\" is not an IP address or prefix", s);
    }
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    unsigned maxbits;
    if (inet_pton(AF_INET, buf, m->net) == 1) {
        m->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, buf, m->net) == 1) {
        m->family = AF_INET6;
        maxbits = 128;
    } else {
        return filter_error_fmt(c, "cidr: \"%s\" is not an IP address or prefix", s);
    }
    m->bits = maxbits;
    if (slash) {
        const char *p = slash + 1;
        unsigned bits = 0;
        if (!*p || strlen(p) > 3) {
            return filter_error_fmt(c, "cidr: bad prefix length in \"%s\"", s);
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                return filter_error_fmt(c, "cidr: bad prefix length in \"%s\"", s);
            }
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > maxbits) {
            return filter_error_fmt(c, "cidr: prefix length %u is over %u in \"%s\"", bits, maxbits,
                                    s);
        }
        m->bits = bits;
    }
    unsigned full = m->bits / 8, rest = m->bits % 8;
    if (rest) {
        m->net[full] &= (unsigned char)(0xFFu << (8 - rest));
        full++;
    }
    memset(m->net + full, 0, 16 - full);
    return 0;
}

/* {"prefix": "x"} or {"prefix": {"equals-ignore-case": "x"}} (suffix likewise). */
static int compile_affix(struct cctx *c, struct fm *m, const char *op, const cJSON *v, bool prefix)
{
    if (cJSON_IsString(v) && v->valuestring) {
        return set_string(c, m, prefix ? FM_PREFIX : FM_SUFFIX, v->valuestring);
    }
    if (cJSON_IsObject(v) && filter_compile_count_items(v) == 1 && v->child->string &&
        strcmp(v->child->string, "equals-ignore-case") == 0 && cJSON_IsString(v->child) &&
        v->child->valuestring) {
        return set_folded(c, m, prefix ? FM_PREFIX_IC : FM_SUFFIX_IC, v->child->valuestring);
    }
    return filter_error_fmt(c, "%s: expected a string or {\"equals-ignore-case\": string}, got %s",
                            op, filter_error_type_name(v));
}

/* Writes a short form of v for an error: its type and, for a scalar, its value. */
static void describe(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsNumber(v)) {
        (void)snprintf(buf, len, "a number (%.15g)", v->valuedouble);
    } else if (cJSON_IsString(v) && v->valuestring) {
        size_t n = strlen(v->valuestring);
        (void)snprintf(buf, len, "a string (\"%.40s%s\")", v->valuestring, n > 40 ? "..." : "");
    } else if (cJSON_IsBool(v)) {
        (void)snprintf(buf, len, "a boolean (%s)", cJSON_IsTrue(v) ? "true" : "false");
    } else {
        (void)snprintf(buf, len, "%s", filter_error_type_name(v));
    }
}

/* An error about item i (the value e) of the list under operator ops (e.g.
 * "anything-but.prefix") in the matcher c->elem of the current field: the message names the item
 * and its value, and the path is the item's own, e.g. "state[0].anything-but.prefix[1]". */
static int cerr_item(
    struct cctx *c, const char *what, const char *ops, const char *reason, int i, const cJSON *e)
{
    char val[80];
    describe(e, val, sizeof(val));
    size_t old = filter_error_path_addf(c, "[%d].%s[%d]", c->elem, ops, i);
    int r = filter_error_fmt(c, "%s: %s, item %d is %s", what, reason, i, val);
    filter_error_path_pop(c, old);
    return r;
}

/* A string, or a non-empty list of strings, compiled into m->items as matchers of kind
 * (WILDCARD, EQ_IC, or PREFIX and SUFFIX, which take only non-empty strings). what names the
 * operator for errors ("anything-but: prefix"), ops the same as a path ("anything-but.prefix"). */
static int compile_string_items(struct cctx *c,
                                struct fm *m,
                                const char *what,
                                const char *ops,
                                const cJSON *v,
                                enum fm_kind kind)
{
    bool nonempty = kind == FM_PREFIX || kind == FM_SUFFIX;
    const char *one = nonempty ? "a non-empty string" : "a string";
    const char *list =
        nonempty ? "expected a list of non-empty strings" : "expected a list of strings";
    int n = 1;
    if (cJSON_IsArray(v)) {
        n = filter_compile_count_items(v);
        if (n == 0) {
            return filter_error_fmt(c, "%s: the list is empty", what);
        }
    } else if (!cJSON_IsString(v) || !v->valuestring) {
        return filter_error_fmt(c, "%s: expected %s or a list of them, got %s", what, one,
                                filter_error_type_name(v));
    } else if (nonempty && !v->valuestring[0]) {
        return filter_error_fmt(c, "%s: expected %s, got an empty string", what, one);
    }
    m->items = sl_calloc((size_t)n, sizeof(*m->items));
    if (!m->items) {
        return filter_error_nomem(c);
    }
    const cJSON *e = cJSON_IsArray(v) ? v->child : v;
    for (int i = 0; i < n; i++, e = e->next) {
        int r;
        if (!cJSON_IsString(e) || !e->valuestring || (nonempty && !e->valuestring[0])) {
            return cerr_item(c, what, ops, list, i, e);
        }
        m->nitems++;
        if (kind == FM_WILDCARD) {
            r = filter_wildcard_set(c, &m->items[i], what, e->valuestring);
        } else if (kind == FM_EQ_IC) {
            r = set_folded(c, &m->items[i], FM_EQ_IC, e->valuestring);
        } else {
            r = set_string(c, &m->items[i], kind, e->valuestring);
        }
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static int compile_anything_but(struct cctx *c, struct fm *m, const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        if (filter_compile_count_items(v) != 1) {
            return filter_error_fmt(
                c, "anything-but: the object must have exactly one key (prefix, suffix, "
                   "equals-ignore-case or wildcard)");
        }
        const cJSON *o = v->child;
        const char *k = o->string ? o->string : "";
        if (strcmp(k, "prefix") == 0) {
            m->kind = FM_NOT_PREFIX;
            return compile_string_items(c, m, "anything-but: prefix", "anything-but.prefix", o,
                                        FM_PREFIX);
        }
        if (strcmp(k, "suffix") == 0) {
            m->kind = FM_NOT_SUFFIX;
            return compile_string_items(c, m, "anything-but: suffix", "anything-but.suffix", o,
                                        FM_SUFFIX);
        }
        if (strcmp(k, "equals-ignore-case") == 0) {
            m->kind = FM_NOT_EQ_IC;
            return compile_string_items(c, m, "anything-but: equals-ignore-case",
                                        "anything-but.equals-ignore-case", o, FM_EQ_IC);
        }
        if (strcmp(k, "wildcard") == 0) {
            m->kind = FM_NOT_WILDCARD;
            return compile_string_items(c, m, "anything-but: wildcard", "anything-but.wildcard", o,
                                        FM_WILDCARD);
        }
        return filter_error_fmt(c,
                                "anything-but: unknown operator \"%s\" (allowed: prefix, suffix, "
                                "equals-ignore-case, wildcard)",
                                k);
    }
    m->kind = FM_NOT_VALUES;
    int n = 1;
    if (cJSON_IsArray(v)) {
        n = filter_compile_count_items(v);
        if (n == 0) {
            return filter_error_fmt(c, "anything-but: the list is empty");
        }
    } else if (!cJSON_IsString(v) && !cJSON_IsNumber(v)) {
        return filter_error_fmt(
            c,
            "anything-but: expected a string, a number, a list of them or an object, "
            "got %s",
            filter_error_type_name(v));
    }
    m->items = sl_calloc((size_t)n, sizeof(*m->items));
    if (!m->items) {
        return filter_error_nomem(c);
    }
    const cJSON *e = cJSON_IsArray(v) ? v->child : v;
    bool strings = cJSON_IsString(e);
    for (int i = 0; i < n; i++, e = e->next) {
        if (cJSON_IsString(e) && e->valuestring && strings) {
            m->nitems++;
            int r = set_string(c, &m->items[i], FM_STRING, e->valuestring);
            if (r < 0) {
                return r;
            }
        } else if (cJSON_IsNumber(e) && !strings && isfinite(e->valuedouble)) {
            m->nitems++;
            m->items[i].kind = FM_NUMBER;
            m->items[i].num = e->valuedouble;
        } else {
            return cerr_item(c, "anything-but", "anything-but",
                             "the list must hold only strings or only numbers", i, e);
        }
    }
    return 0;
}

/* One element of a leaf array: a value, or an object naming one operator. */
static int compile_matcher(struct cctx *c, struct fm *m, const cJSON *v)
{
    if (cJSON_IsString(v) && v->valuestring) {
        return set_string(c, m, FM_STRING, v->valuestring);
    }
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) {
            return filter_error_fmt(c, "the number is out of range");
        }
        m->kind = FM_NUMBER;
        m->num = v->valuedouble;
        return 0;
    }
    if (cJSON_IsTrue(v) || cJSON_IsFalse(v) || cJSON_IsNull(v)) {
        m->kind = cJSON_IsTrue(v) ? FM_TRUE : cJSON_IsFalse(v) ? FM_FALSE : FM_NULL;
        return 0;
    }
    if (cJSON_IsArray(v)) {
        return filter_error_fmt(c, "a list of values may not contain an array");
    }
    if (!cJSON_IsObject(v)) {
        return filter_error_fmt(c, "unexpected %s in a list of values", filter_error_type_name(v));
    }
    int n = filter_compile_count_items(v);
    if (n != 1) {
        return filter_error_fmt(c, "an operator object must have exactly one key, this one has %d",
                                n);
    }
    const cJSON *o = v->child;
    const char *op = o->string ? o->string : "";
    if (strcmp(op, "prefix") == 0) {
        return compile_affix(c, m, op, o, true);
    }
    if (strcmp(op, "suffix") == 0) {
        return compile_affix(c, m, op, o, false);
    }
    if (strcmp(op, "equals-ignore-case") == 0) {
        if (!cJSON_IsString(o) || !o->valuestring) {
            return filter_error_fmt(c, "equals-ignore-case: expected a string, got %s",
                                    filter_error_type_name(o));
        }
        return set_folded(c, m, FM_EQ_IC, o->valuestring);
    }
    if (strcmp(op, "wildcard") == 0) {
        if (!cJSON_IsString(o) || !o->valuestring) {
            return filter_error_fmt(c, "wildcard: expected a string, got %s",
                                    filter_error_type_name(o));
        }
        return filter_wildcard_set(c, m, "wildcard", o->valuestring);
    }
    if (strcmp(op, "anything-but") == 0) {
        return compile_anything_but(c, m, o);
    }
    if (strcmp(op, "numeric") == 0) {
        return compile_numeric(c, m, o);
    }
    if (strcmp(op, "exists") == 0) {
        if (!cJSON_IsBool(o)) {
            return filter_error_fmt(c, "exists: expected true or false, got %s",
                                    filter_error_type_name(o));
        }
        m->kind = FM_EXISTS;
        m->exists = cJSON_IsTrue(o);
        return 0;
    }
    if (strcmp(op, "cidr") == 0) {
        return compile_cidr(c, m, o);
    }
    return filter_error_fmt(c,
                            "unknown operator \"%s\" (allowed: prefix, suffix, equals-ignore-case, "
                            "wildcard, anything-but, numeric, exists, cidr)",
                            op);
}

static int compile_leaf(struct cctx *c, struct ffield *f, const cJSON *arr)
{
    int n = filter_compile_count_items(arr);
    if (n == 0) {
        return filter_error_fmt(c, "a list of values may not be empty");
    }
    f->m = sl_calloc((size_t)n, sizeof(*f->m));
    if (!f->m) {
        return filter_error_nomem(c);
    }
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        f->nm++;
        c->elem = i;
        int r = compile_matcher(c, &f->m[i], e);
        if (r < 0) {
            return r;
        }
    }
    return filter_wildcard_check_complexity(c, f);
}

/* The path ends in "$or" for the checks; the alternatives are named "$or[i]" from parent. */
static int compile_or(struct cctx *c, struct fnode *n, const cJSON *arr, size_t parent)
{
    if (!cJSON_IsArray(arr)) {
        return filter_error_fmt(c, "$or: expected a list of at least two objects, got %s",
                                filter_error_type_name(arr));
    }
    int k = filter_compile_count_items(arr);
    if (k < 2) {
        return filter_error_fmt(c, "$or: expected a list of at least two objects, got %d", k);
    }
    n->alts = sl_calloc((size_t)k, sizeof(*n->alts));
    if (!n->alts) {
        return filter_error_nomem(c);
    }
    filter_error_path_pop(c, parent);
    int i = 0;
    int r = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        size_t old = filter_error_path_push(c, "$or", i);
        if (!cJSON_IsObject(e)) {
            r = filter_error_fmt(c, "$or: expected an object, got %s", filter_error_type_name(e));
        } else {
            r = filter_compile_node(c, e, &n->alts[i]);
            if (r == 0) {
                n->nalts++;
            }
        }
        filter_error_path_pop(c, old);
        if (r < 0) {
            break;
        }
    }
    return r;
}

/* Adds the field key to n. A dotted key ("state.status") becomes a chain of single-part fields,
 * as if the pattern had nested objects, since AWS matches flattened paths (see view_find);
 * *ret_f is the last field of the chain. */
static int field_chain(struct cctx *c, struct fnode *n, const char *key, struct ffield **ret_f)
{
    const char *dot = strchr(key, '.');
    struct ffield *f = &n->fields[n->nfields++];
    f->klen = dot ? (size_t)(dot - key) : strlen(key);
    f->key = sl_strndup(key, f->klen);
    if (!f->key) {
        return filter_error_nomem(c);
    }
    if (!dot) {
        *ret_f = f;
        return 0;
    }
    f->child = sl_calloc(1, sizeof(*f->child));
    if (!f->child) {
        return filter_error_nomem(c);
    }
    f->child->fields = sl_calloc(1, sizeof(*f->child->fields));
    if (!f->child->fields) {
        return filter_error_nomem(c);
    }
    return field_chain(c, f->child, dot + 1, ret_f);
}

/* One field of a pattern object: a nested object or a list of values under key. */
static int compile_field(struct cctx *c, struct fnode *n, const char *key, const cJSON *e)
{
    unsigned dots = 0;
    for (const char *p = key; *p; p++) {
        dots += *p == '.';
    }
    if (c->depth + dots >= FILTER_MAX_DEPTH) {
        return filter_error_fmt(
            c, "the pattern nests deeper than %d levels (each part of a dotted key is one)",
            FILTER_MAX_DEPTH);
    }
    struct ffield *f = NULL;
    int r = field_chain(c, n, key, &f);
    if (r < 0) {
        return r;
    }
    c->depth += dots;
    r = cJSON_IsObject(e) ? filter_compile_node(c, e, &f->child) : compile_leaf(c, f, e);
    c->depth -= dots;
    return r;
}

/* Compiles one pattern object. Duplicate keys: the last one wins, as in AWS. */
int filter_compile_node(struct cctx *c, const cJSON *obj, struct fnode **ret_n)
{
    int r = 0;
    if (c->depth >= FILTER_MAX_DEPTH) {
        return filter_error_fmt(c, "the pattern nests deeper than %d objects", FILTER_MAX_DEPTH);
    }
    int count = filter_compile_count_items(obj);
    if (count == 0) {
        return filter_error_fmt(c, "an object in a pattern may not be empty");
    }
    struct fnode *n = sl_calloc(1, sizeof(*n));
    if (!n) {
        return filter_error_nomem(c);
    }
    n->fields = sl_calloc((size_t)count, sizeof(*n->fields));
    if (!n->fields) {
        r = filter_error_nomem(c);
        goto fail;
    }
    c->depth++;
    for (const cJSON *e = obj->child; e && r == 0; e = e->next) {
        const char *key = e->string ? e->string : "";
        bool later = false;
        for (const cJSON *l = e->next; l && !later; l = l->next) {
            later = l->string && strcmp(l->string, key) == 0;
        }
        if (later) {
            continue;
        }
        size_t old = filter_error_path_push(c, key, -1);
        if (strcmp(key, "$or") == 0) {
            r = compile_or(c, n, e, old);
        } else if (cJSON_IsObject(e) || cJSON_IsArray(e)) {
            r = compile_field(c, n, key, e);
        } else {
            r = filter_error_fmt(c, "expected a list of values or an object, got %s",
                                 filter_error_type_name(e));
        }
        filter_error_path_pop(c, old);
    }
    c->depth--;
    if (r < 0) {
        goto fail;
    }
    *ret_n = n;
    return 0;
fail:
    filter_compile_node_free(n);
    return r;
}

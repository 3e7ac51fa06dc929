/* SPDX-License-Identifier: Apache-2.0 */
/* filter.c: FilterCriteria, the EventBridge event-pattern language (reference/esm.md §5). It
 * owns two things: a compiler that validates a pattern's JSON text and turns it into a small
 * tree (objects of fields, each field either a nested object or a list of matchers, plus an
 * optional `$or` of alternative objects), and a matcher that walks that tree over a cJSON
 * document. Compilation does all the allocation and all the validation, so every error names
 * its place inside the pattern; matching allocates nothing, never fails, and recurses only as
 * deep as the pattern (bounded by FILTER_MAX_DEPTH) plus a capped number of nested document
 * arrays, so any document (deep, huge, not UTF-8) is safe. It must not log and must not know
 * where documents come from (decoding `data`/`body` is the mapping's job). Pure: a compiled
 * pattern is read-only and may be matched from any thread.
 *
 * Semantics follow AWS's event-ruler (the engine behind EventBridge and ESM filtering):
 * - a field matches when any of its leaf values matches any matcher; arrays in the document
 *   are flattened, and fields of one nested pattern object must be found in the same array
 *   element;
 * - a plain number in a pattern matches a document number of equal value (300 matches 300.0
 *   and 3.0e2), as event-ruler does; esm.md says numbers compare by text, but cJSON keeps no
 *   text and event-ruler adds a numeric-equality matcher beside the textual one;
 * - keys are flattened paths: a dotted key and nested objects name the same path, in the
 *   pattern and in the document (see "About dotted keys");
 * - `exists` looks at leaf values only: a field holding an object or an empty array does not
 *   "exist", `null` does;
 * - anything-but takes a value, a list of values, or {prefix|suffix|equals-ignore-case|
 *   wildcard: a string or a list of them}, and matches a value that matches none of them;
 * - wildcards that AWS would refuse as too complex are refused (see "About complexity");
 * - equals-ignore-case (also under prefix, suffix and anything-but) uses simple case folding
 *   for ASCII, Latin-1, Latin Extended-A and Additional, Greek, Cyrillic and fullwidth Latin;
 *   other scripts compare exactly. Bytes that are not UTF-8 compare as themselves. */
#include "filter.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Object levels a pattern may nest, each part of a dotted key counting as one (EventBridge
 * documents no limit; 4096 characters allow ~2000). */
#define FILTER_MAX_DEPTH 32
/* Document arrays nested inside one another that matching looks through; deeper ones are
 * treated as holding no values. */
#define FILTER_MAX_ARRAY_DEPTH 32
#define FILTER_PATH_MAX        256

enum fm_kind {
    FM_STRING,
    FM_NUMBER,
    FM_TRUE,
    FM_FALSE,
    FM_NULL,
    FM_PREFIX,
    FM_PREFIX_IC,
    FM_SUFFIX,
    FM_SUFFIX_IC,
    FM_EQ_IC,
    FM_WILDCARD,
    FM_NUMERIC,
    FM_EXISTS,
    FM_CIDR,
    FM_NOT_VALUES,   /* anything-but a value or a list of values (items: STRING/NUMBER) */
    FM_NOT_PREFIX,   /* anything-but {"prefix": s or [s...]} (items: PREFIX) */
    FM_NOT_SUFFIX,   /* anything-but {"suffix": s or [s...]} (items: SUFFIX) */
    FM_NOT_EQ_IC,    /* anything-but {"equals-ignore-case": s or [s...]} (items: EQ_IC) */
    FM_NOT_WILDCARD, /* anything-but {"wildcard": s or [s...]} (items: WILDCARD) */
    FM_COUNT
};

struct fm_wild {
    char *bytes;     /* the literal pieces, escapes removed, back to back */
    size_t *seg_off; /* nseg pieces: offset into bytes ... */
    size_t *seg_len; /* ... and length */
    size_t nseg;
    bool lead_star;  /* the pattern starts with '*' */
    bool trail_star; /* the pattern ends with '*' */
    bool any_star;
};

struct fm {
    enum fm_kind kind;
    char *s; /* STRING, PREFIX, SUFFIX */
    size_t slen;
    uint32_t *cp; /* folded code points: *_IC, EQ_IC */
    size_t ncp;
    double num; /* NUMBER */
    double lo, hi;
    bool has_lo, has_hi, lo_incl, hi_incl; /* NUMERIC */
    bool exists;                           /* EXISTS */
    struct fm_wild wild;                   /* WILDCARD */
    unsigned char net[16];                 /* CIDR: network, masked */
    int family;
    unsigned bits;
    struct fm *items; /* NOT_VALUES, NOT_PREFIX, NOT_SUFFIX, NOT_EQ_IC, NOT_WILDCARD */
    size_t nitems;
};

struct fnode;

struct ffield {
    char *key;
    size_t klen;
    struct fm *m; /* leaf: nm matchers, ORed */
    size_t nm;
    struct fnode *child; /* or a nested object */
};

struct fnode {
    struct ffield *fields; /* ANDed */
    size_t nfields;
    struct fnode **alts; /* "$or": n_alts alternatives, one must match (0: none) */
    size_t nalts;
};

struct sl_pattern {
    struct fnode *root;
};

struct sl_filter {
    struct sl_pattern *p[SL_FILTER_MAX_PATTERNS];
    size_t n;
};

/* ---- case folding and UTF-8 ---------------------------------------------------------------- */

/* Decodes one code point at s[*i] (len bytes in all) and advances *i. A byte that does not
 * start a well-formed sequence decodes as 0x110000 + byte, outside Unicode, so it only ever
 * equals the same byte. */
static uint32_t utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char b = s[*i];
    uint32_t cp;
    size_t n;
    uint32_t min;
    if (b < 0x80) {
        (*i)++;
        return b;
    } else if ((b & 0xE0) == 0xC0) {
        cp = b & 0x1Fu;
        n = 1;
        min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
        cp = b & 0x0Fu;
        n = 2;
        min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
        cp = b & 0x07u;
        n = 3;
        min = 0x10000;
    } else {
        goto invalid;
    }
    if (len - *i <= n) {
        goto invalid;
    }
    for (size_t k = 1; k <= n; k++) {
        unsigned char c = s[*i + k];
        if ((c & 0xC0) != 0x80) {
            goto invalid;
        }
        cp = (cp << 6) | (c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        goto invalid;
    }
    *i += n + 1;
    return cp;
invalid:
    (*i)++;
    return 0x110000u + b;
}

/* Simple case folding (one code point to one) for the scripts listed at the top. */
static uint32_t fold(uint32_t c)
{
    if (c < 0x80) {
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    }
    if (c == 0xB5) {
        return 0x3BC; /* micro sign -> mu */
    }
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) {
        return c + 32;
    }
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) {
        return c | 1u;
    }
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) {
        return (c & 1u) ? c + 1 : c;
    }
    if (c == 0x178) {
        return 0xFF;
    }
    if (c == 0x17F) {
        return 's'; /* long s */
    }
    if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) {
        return c + 32;
    }
    if (c == 0x3C2) {
        return 0x3C3; /* final sigma */
    }
    if (c >= 0x400 && c <= 0x40F) {
        return c + 80;
    }
    if (c >= 0x410 && c <= 0x42F) {
        return c + 32;
    }
    if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF)) {
        return c | 1u;
    }
    if (c == 0x1E9E) {
        return 0xDF; /* capital sharp s */
    }
    if (c == 0x2126) {
        return 0x3C9; /* ohm sign */
    }
    if (c == 0x212A) {
        return 'k'; /* kelvin sign */
    }
    if (c == 0x212B) {
        return 0xE5; /* angstrom sign */
    }
    if (c >= 0xFF21 && c <= 0xFF3A) {
        return c + 32;
    }
    return c;
}

static size_t utf8_count(const unsigned char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        (void)utf8_next(s, len, &i);
    }
    return n;
}

/* Compares the folded code points of s, from its skip-th code point on, with cp[0..ncp).
 * whole: s must end there too. */
static bool ic_compare(const char *str, size_t skip, const uint32_t *cp, size_t ncp, bool whole)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    size_t i = 0;
    for (size_t k = 0; k < skip && i < len; k++) {
        (void)utf8_next(s, len, &i);
    }
    for (size_t k = 0; k < ncp; k++) {
        if (i >= len || fold(utf8_next(s, len, &i)) != cp[k]) {
            return false;
        }
    }
    return !whole || i == len;
}

static bool ic_suffix(const char *str, const uint32_t *cp, size_t ncp)
{
    size_t n = utf8_count((const unsigned char *)str, strlen(str));
    return n >= ncp && ic_compare(str, n - ncp, cp, ncp, true);
}

/* ---- wildcard -------------------------------------------------------------------------------- */

static bool mem_find(const char *hay, size_t hlen, const char *needle, size_t nlen, size_t *ret_at)
{
    if (nlen == 0) {
        *ret_at = 0;
        return true;
    }
    for (size_t i = 0; i + nlen <= hlen; i++) {
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0) {
            *ret_at = i;
            return true;
        }
    }
    return false;
}

/* Glob with '*' only: anchored first and last pieces, the middle ones leftmost-first, which is
 * exact for this language and needs no backtracking. */
static bool wild_match(const struct fm_wild *w, const char *s)
{
    size_t len = strlen(s);
    size_t first = 0, last = w->nseg, pos = 0, end = len;
    if (!w->any_star) {
        size_t l = w->nseg ? w->seg_len[0] : 0;
        return len == l && (l == 0 || memcmp(s, w->bytes, l) == 0);
    }
    if (!w->lead_star) {
        size_t l = w->seg_len[0];
        if (len < l || memcmp(s, w->bytes + w->seg_off[0], l) != 0) {
            return false;
        }
        pos = l;
        first = 1;
    }
    if (!w->trail_star && last > first) {
        size_t l = w->seg_len[last - 1];
        if (len - pos < l || memcmp(s + len - l, w->bytes + w->seg_off[last - 1], l) != 0) {
            return false;
        }
        end = len - l;
        last--;
    }
    for (size_t k = first; k < last; k++) {
        size_t at;
        if (!mem_find(s + pos, end - pos, w->bytes + w->seg_off[k], w->seg_len[k], &at)) {
            return false;
        }
        pos += at + w->seg_len[k];
    }
    return true;
}

/* ---- matching -------------------------------------------------------------------------------- */

static bool number_equal(double a, double b)
{
    return a == b;
}

static bool cidr_match(const struct fm *m, const char *s)
{
    char buf[64];
    unsigned char addr[16];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    memcpy(buf, s, len + 1);
    if (inet_pton(m->family, buf, addr) != 1) {
        return false;
    }
    unsigned full = m->bits / 8, rest = m->bits % 8;
    if (memcmp(addr, m->net, full) != 0) {
        return false;
    }
    if (rest) {
        unsigned char mask = (unsigned char)(0xFFu << (8 - rest));
        if ((addr[full] & mask) != m->net[full]) {
            return false;
        }
    }
    return true;
}

static bool value_match(const struct fm *m, const cJSON *v);

/* True when one of the items matches v (anything-but lists). */
static bool any_item(const struct fm *m, const cJSON *v)
{
    for (size_t i = 0; i < m->nitems; i++) {
        if (value_match(&m->items[i], v)) {
            return true;
        }
    }
    return false;
}

/* Matches one leaf (scalar) value of the document. */
static bool value_match(const struct fm *m, const cJSON *v)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    if (cJSON_IsString(v) && !s) {
        return false;
    }
    switch (m->kind) {
    case FM_STRING:
        return s && strlen(s) == m->slen && memcmp(s, m->s, m->slen) == 0;
    case FM_NUMBER:
        return cJSON_IsNumber(v) && number_equal(v->valuedouble, m->num);
    case FM_TRUE:
        return cJSON_IsTrue(v);
    case FM_FALSE:
        return cJSON_IsFalse(v);
    case FM_NULL:
        return cJSON_IsNull(v);
    case FM_PREFIX:
        return s && strncmp(s, m->s, m->slen) == 0;
    case FM_SUFFIX: {
        size_t len = s ? strlen(s) : 0;
        return s && len >= m->slen && memcmp(s + len - m->slen, m->s, m->slen) == 0;
    }
    case FM_PREFIX_IC:
        return s && ic_compare(s, 0, m->cp, m->ncp, false);
    case FM_SUFFIX_IC:
        return s && ic_suffix(s, m->cp, m->ncp);
    case FM_EQ_IC:
        return s && ic_compare(s, 0, m->cp, m->ncp, true);
    case FM_WILDCARD:
        return s && wild_match(&m->wild, s);
    case FM_NUMERIC: {
        if (!cJSON_IsNumber(v)) {
            return false;
        }
        double d = v->valuedouble;
        if (m->has_lo && (m->lo_incl ? d < m->lo : d <= m->lo)) {
            return false;
        }
        if (m->has_hi && (m->hi_incl ? d > m->hi : d >= m->hi)) {
            return false;
        }
        return true;
    }
    case FM_CIDR:
        return s && cidr_match(m, s);
    case FM_NOT_VALUES:
        return !any_item(m, v);
    case FM_NOT_PREFIX:
    case FM_NOT_SUFFIX:
    case FM_NOT_EQ_IC:
    case FM_NOT_WILDCARD:
        return !s || !any_item(m, v);
    case FM_EXISTS:
    case FM_COUNT:
        break;
    }
    return false;
}

/* True when some leaf value inside v (v itself, or the scalars of v's arrays, flattened)
 * matches m; m NULL asks whether there is any leaf value at all. Objects are not leaves. */
static bool any_leaf(const struct fm *m, const cJSON *v, unsigned adepth)
{
    if (!v || cJSON_IsObject(v) || cJSON_IsInvalid(v) || cJSON_IsRaw(v)) {
        return false;
    }
    if (cJSON_IsArray(v)) {
        if (adepth >= FILTER_MAX_ARRAY_DEPTH) {
            return false;
        }
        for (const cJSON *e = v->child; e; e = e->next) {
            if (any_leaf(m, e, adepth + 1)) {
                return true;
            }
        }
        return false;
    }
    return m ? value_match(m, v) : true;
}

/* About dotted keys: AWS flattens an event into paths joined with dots before matching, so the
 * event keys {"state":{"status":..}} and {"state.status":..} name the same path,
 * detail.state.status. Pattern keys are split at dots when compiled (so a pattern is a tree of
 * single path parts), and the matcher looks an object up as a view: the real objects found at a
 * path plus "virtual" objects, the keys of a real object that spell the path with dots (obj's keys
 * that begin with "state." seen as the object at "state"). A view holds at most FILTER_MAX_VIEWS
 * such places; more spellings of one path in one document are not looked through. */
#define FILTER_MAX_VIEWS 8

/* One place of a view: obj itself (plen 0), or the keys of obj that begin with pre[0..plen),
 * with that prefix (ending in '.') taken off. pre points into one of those keys. */
struct fplace {
    const cJSON *obj;
    const char *pre;
    size_t plen;
};

/* An object as the pattern sees it: the union of its places; n == 0 is an absent object. */
struct fview {
    struct fplace at[FILTER_MAX_VIEWS];
    size_t n;
};

/* What a key names inside a view: the values stored under exactly that path, and the view of
 * the keys that continue it with dots. */
struct ffound {
    const cJSON *val[FILTER_MAX_VIEWS];
    size_t nval;
    struct fview sub;
};

static void view_add(struct fview *v, const cJSON *obj, const char *pre, size_t plen)
{
    for (size_t i = 0; i < v->n; i++) {
        if (v->at[i].obj == obj && v->at[i].plen == plen) {
            return; /* the same prefix of the same object's keys */
        }
    }
    if (v->n < FILTER_MAX_VIEWS) {
        v->at[v->n++] = (struct fplace){.obj = obj, .pre = pre, .plen = plen};
    }
}

/* Looks key (klen bytes) up in every place of v. */
static void view_find(const struct fview *v, const char *key, size_t klen, struct ffound *ret)
{
    ret->nval = 0;
    ret->sub.n = 0;
    for (size_t i = 0; i < v->n; i++) {
        const struct fplace *pl = &v->at[i];
        bool have_exact = false;
        for (const cJSON *c = pl->obj->child; c; c = c->next) {
            const char *s = c->string;
            if (!s || (pl->plen && strncmp(s, pl->pre, pl->plen) != 0)) {
                continue;
            }
            const char *rest = s + pl->plen;
            if ((klen && rest[0] != key[0]) || strncmp(rest, key, klen) != 0) {
                continue;
            }
            if (rest[klen] == '\0') {
                /* The first of duplicate keys counts, as cJSON_GetObjectItem finds it. */
                if (!have_exact && ret->nval < FILTER_MAX_VIEWS) {
                    ret->val[ret->nval++] = c;
                }
                have_exact = true;
            } else if (rest[klen] == '.') {
                view_add(&ret->sub, pl->obj, s, pl->plen + klen + 1);
            }
        }
    }
}

static bool node_match(const struct fnode *n, const struct fview *v);

/* Matches a nested pattern object against the document value val: an object directly, an
 * array through any object element (so fields combine only within one element), each seen
 * together with dotted, the keys that spell the same path with dots. */
static bool sub_match_rec(const struct fnode *n,
                          const cJSON *val,
                          const struct fview *dotted,
                          unsigned adepth,
                          bool *seen)
{
    if (cJSON_IsObject(val)) {
        struct fview v;
        *seen = true;
        /* The real object first, then as many dotted places as fit. */
        v.at[0] = (struct fplace){.obj = val, .pre = "", .plen = 0};
        v.n = 1 + (dotted->n < FILTER_MAX_VIEWS ? dotted->n : FILTER_MAX_VIEWS - 1);
        memcpy(&v.at[1], dotted->at, (v.n - 1) * sizeof(v.at[0]));
        return node_match(n, &v);
    }
    if (cJSON_IsArray(val) && adepth < FILTER_MAX_ARRAY_DEPTH) {
        for (const cJSON *e = val->child; e; e = e->next) {
            if (sub_match_rec(n, e, dotted, adepth + 1, seen)) {
                return true;
            }
        }
    }
    return false;
}

/* Anything that is not an object (or an array of them) is an absent object, where only
 * `exists:false` can succeed, unless dotted keys spell fields under it. */
static bool sub_match(const struct fnode *n, const struct ffound *found)
{
    bool seen = false;
    for (size_t i = 0; i < found->nval; i++) {
        if (sub_match_rec(n, found->val[i], &found->sub, 0, &seen)) {
            return true;
        }
    }
    return !seen && node_match(n, &found->sub);
}

/* True when some leaf value under found matches m (m NULL: when there is any leaf value). */
static bool found_leaf(const struct fm *m, const struct ffound *found)
{
    for (size_t k = 0; k < found->nval; k++) {
        if (any_leaf(m, found->val[k], 0)) {
            return true;
        }
    }
    return false;
}

static bool field_match(const struct ffield *f, const struct fview *v)
{
    struct ffound found;
    view_find(v, f->key, f->klen, &found);
    if (f->child) {
        return sub_match(f->child, &found);
    }
    for (size_t i = 0; i < f->nm; i++) {
        const struct fm *m = &f->m[i];
        if (m->kind == FM_EXISTS ? found_leaf(NULL, &found) == m->exists : found_leaf(m, &found)) {
            return true;
        }
    }
    return false;
}

/* v: the object the pattern object is matched against (no places: an absent one). Recursion
 * follows the pattern only. */
static bool node_match(const struct fnode *n, const struct fview *v)
{
    for (size_t i = 0; i < n->nfields; i++) {
        if (!field_match(&n->fields[i], v)) {
            return false;
        }
    }
    if (n->nalts) {
        for (size_t i = 0; i < n->nalts; i++) {
            if (node_match(n->alts[i], v)) {
                return true;
            }
        }
        return false;
    }
    return true;
}

/* Matches a pattern's root against a whole document. */
static bool root_match(const struct fnode *n, const cJSON *doc)
{
    struct ffound found = {.nval = doc ? 1 : 0};
    found.val[0] = doc;
    return sub_match(n, &found);
}

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

static void node_free(struct fnode *n)
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
        node_free(f->child);
    }
    sl_free(n->fields);
    for (size_t i = 0; i < n->nalts; i++) {
        node_free(n->alts[i]);
    }
    sl_free(n->alts);
    sl_free(n);
}

/* ---- compiling ------------------------------------------------------------------------------- */

struct cctx {
    char *errbuf;
    size_t errlen;
    char path[FILTER_PATH_MAX];
    size_t pathlen;
    unsigned depth;
    int elem; /* the position of the matcher being compiled in its field's list */
};

/* Formats the reason into errbuf and appends where it happened. Returns SL_EINVAL. */
SL_PRINTF(2, 3) static int cerr(struct cctx *c, const char *fmt, ...)
{
    if (c->errbuf && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->errbuf, c->errlen, fmt, ap);
        va_end(ap);
        size_t used = n < 0 ? 0 : (size_t)n;
        if (used < c->errlen) {
            if (c->pathlen) {
                (void)snprintf(c->errbuf + used, c->errlen - used, " at %s", c->path);
            } else {
                (void)snprintf(c->errbuf + used, c->errlen - used, " at the top level");
            }
        }
    }
    return SL_EINVAL;
}

static int cnomem(struct cctx *c)
{
    if (c->errbuf && c->errlen) {
        (void)snprintf(c->errbuf, c->errlen, "out of memory compiling the pattern");
    }
    return SL_ENOMEM;
}

/* Appends ".key" (or "key" first, or "$or[i]") to the path; returns the old length. A path
 * that would not fit ends in "...". */
static size_t path_push(struct cctx *c, const char *key, long index)
{
    size_t old = c->pathlen;
    size_t room = sizeof(c->path) - old;
    int n;
    if (index >= 0) {
        n = snprintf(c->path + old, room, "%s%s[%ld]", old ? "." : "", key, index);
    } else {
        n = snprintf(c->path + old, room, "%s%s", old ? "." : "", key);
    }
    if (n < 0 || (size_t)n >= room) {
        memcpy(c->path + sizeof(c->path) - 4, "...", 4);
        c->pathlen = sizeof(c->path) - 1;
    } else {
        c->pathlen = old + (size_t)n;
    }
    return old;
}

static void path_pop(struct cctx *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = '\0';
}

/* Appends the formatted text to the path as it is (no dot); returns the old length. A path that
 * would not fit is left as it was. */
SL_PRINTF(2, 3) static size_t path_addf(struct cctx *c, const char *fmt, ...)
{
    size_t old = c->pathlen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + old, sizeof(c->path) - old, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(c->path) - old) {
        c->pathlen = old + (size_t)n;
    } else {
        c->path[old] = '\0';
    }
    return old;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return "a string";
    }
    if (cJSON_IsNumber(v)) {
        return "a number";
    }
    if (cJSON_IsBool(v)) {
        return "a boolean";
    }
    if (cJSON_IsNull(v)) {
        return "null";
    }
    if (cJSON_IsArray(v)) {
        return "an array";
    }
    if (cJSON_IsObject(v)) {
        return "an object";
    }
    return "an invalid value";
}

static int count_items(const cJSON *v)
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
    return m->s ? 0 : cnomem(c);
}

static int set_folded(struct cctx *c, struct fm *m, enum fm_kind kind, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    m->kind = kind;
    m->ncp = utf8_count(s, len);
    m->cp = sl_calloc(m->ncp, sizeof(*m->cp));
    if (!m->cp) {
        return cnomem(c);
    }
    size_t i = 0;
    for (size_t k = 0; k < m->ncp; k++) {
        m->cp[k] = fold(utf8_next(s, len, &i));
    }
    return 0;
}

static int set_wildcard(struct cctx *c, struct fm *m, const char *what, const char *s)
{
    size_t len = strlen(s);
    struct fm_wild *w = &m->wild;
    m->kind = FM_WILDCARD;
    w->bytes = sl_malloc(len + 1);
    w->seg_off = sl_calloc(len + 1, sizeof(size_t));
    w->seg_len = sl_calloc(len + 1, sizeof(size_t));
    if (!w->bytes || !w->seg_off || !w->seg_len) {
        return cnomem(c);
    }
    size_t out = 0;
    bool in_seg = false, prev_star = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '*') {
            if (prev_star) {
                return cerr(c, "%s: consecutive '*' characters are not allowed in \"%s\"", what, s);
            }
            if (i == 0) {
                w->lead_star = true;
            }
            w->any_star = true;
            prev_star = true;
            in_seg = false;
            continue;
        }
        if (ch == '\\') {
            if (i + 1 >= len || (s[i + 1] != '*' && s[i + 1] != '\\')) {
                return cerr(c, "%s: '\\' must be followed by '*' or '\\' in \"%s\"", what, s);
            }
            ch = s[++i];
        }
        if (!in_seg) {
            w->seg_off[w->nseg] = out;
            w->seg_len[w->nseg] = 0;
            w->nseg++;
            in_seg = true;
        }
        w->bytes[out++] = ch;
        w->seg_len[w->nseg - 1]++;
        prev_star = false;
    }
    w->trail_star = prev_star;
    w->bytes[out] = '\0';
    return 0;
}

/* ---- wildcard complexity --------------------------------------------------------------------- */

/* About complexity: AWS refuses a pattern whose wildcards are too complex, with
 * InvalidEventPatternException ("Rule is too complex - try using fewer wildcard characters or
 * fewer repeating character sequences after a wildcard character"). EventBridge's pattern pages
 * state that rule and show patterns to rework ("*:*:*:*:*:event-bus/ *" and
 * "/Users/ * /dir/dir/dir/dir/dir/doc.txt"; the spaces keep this comment open), but give no
 * number. The measure is event-ruler's MachineComplexityEvaluator: how many prefixes of one
 * field's wildcard patterns (its wildcard matchers and anything-but wildcards together) a single
 * worst-case value can match at once; "*a*a*a*" is 7, since "aaa" matches all of "*", "*a",
 * "*a*", ... "*a*a*a*". Read as an NFA with a state per prefix, that is the largest set of
 * states alive after some input, found here by walking the reachable sets of states. Each
 * field is measured on its own, as each field has its own machine in event-ruler. The limit is
 * inferred, not documented: AWS refused "*:*:*:*:*:event-bus/ *" (11 here) in the recorded
 * cases, and in a public report EventBridge accepted a field of 3 patterns "*:stack/NAME/ *"
 * and refused 4, about 9 and 12 here. A walk that meets more than FILTER_COMPLEXITY_SETS sets
 * stops and counts as too complex. */
#define FILTER_MAX_WILDCARD_COMPLEXITY 10
#define FILTER_COMPLEXITY_SETS         65536
#define CX_WIDTH                       (FILTER_MAX_WILDCARD_COMPLEXITY + 1)
#define WTOK_STAR                      (-1)
#define WTOK_END                       (-2)

struct cx {
    int16_t *next; /* per state: the token after it, a byte, WTOK_STAR or WTOK_END */
    bool *loops;   /* per state: it follows a '*', so any byte keeps it alive */
    size_t nstates;
    uint32_t *sets; /* the sets met, CX_WIDTH wide each: count, then the sorted states */
    size_t nsets, cap;
    uint32_t *hash; /* open addressing over sets: index + 1, 0 for empty; 2 * cap slots */
};

/* Appends one wildcard's states to x: its start, then one per token. */
static void cx_add(struct cx *x, const struct fm_wild *w)
{
    size_t s = x->nstates;
    if (w->lead_star) {
        x->next[s++] = WTOK_STAR;
    }
    for (size_t k = 0; k < w->nseg; k++) {
        if (k > 0) {
            x->next[s++] = WTOK_STAR;
        }
        for (size_t b = 0; b < w->seg_len[k]; b++) {
            x->next[s++] = (int16_t)(unsigned char)w->bytes[w->seg_off[k] + b];
        }
    }
    if (w->trail_star && w->nseg > 0) {
        x->next[s++] = WTOK_STAR;
    }
    x->next[s] = WTOK_END;
    for (size_t i = x->nstates; i <= s; i++) {
        x->loops[i] = i > x->nstates && x->next[i - 1] == WTOK_STAR;
    }
    x->nstates = s + 1;
}

/* Adds state s to set, and the state a '*' after it reaches without input. */
static void cx_push(const struct cx *x, uint32_t *set, size_t *n, uint32_t s)
{
    set[(*n)++] = s;
    if (x->next[s] == WTOK_STAR) {
        set[(*n)++] = s + 1;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The states alive after byte c from the states from[0..n), sorted and unique, into out.
 * Returns their count. */
static size_t cx_step(const struct cx *x, const uint32_t *from, size_t n, int c, uint32_t *out)
{
    size_t m = 0, u = 0;
    for (size_t i = 0; i < n; i++) {
        if (x->loops[from[i]]) {
            cx_push(x, out, &m, from[i]);
        }
        if (x->next[from[i]] == c) {
            cx_push(x, out, &m, from[i] + 1);
        }
    }
    qsort(out, m, sizeof(*out), cmp_u32);
    for (size_t i = 0; i < m; i++) {
        if (u == 0 || out[i] != out[u - 1]) {
            out[u++] = out[i];
        }
    }
    return u;
}

static uint32_t cx_hash(const uint32_t *set)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i <= set[0]; i++) {
        h = (h ^ set[i]) * 16777619u;
    }
    return h;
}

static void cx_slot(struct cx *x, size_t index)
{
    size_t mask = 2 * x->cap - 1;
    size_t at = cx_hash(x->sets + index * CX_WIDTH) & mask;
    while (x->hash[at]) {
        at = (at + 1) & mask;
    }
    x->hash[at] = (uint32_t)index + 1;
}

/* Adds set (count first) unless met before. Returns 0, SL_ENOMEM, or SL_EAGAIN past the
 * budget. */
static int cx_intern(struct cx *x, const uint32_t *set)
{
    size_t mask = 2 * x->cap - 1;
    for (size_t at = cx_hash(set) & mask; x->hash[at]; at = (at + 1) & mask) {
        if (memcmp(x->sets + (x->hash[at] - 1) * CX_WIDTH, set, (set[0] + 1) * sizeof(*set)) == 0) {
            return 0;
        }
    }
    if (x->nsets == FILTER_COMPLEXITY_SETS) {
        return SL_EAGAIN;
    }
    if (x->nsets == x->cap) {
        size_t cap = x->cap * 2;
        uint32_t *sets = sl_realloc(x->sets, cap * CX_WIDTH * sizeof(*sets));
        if (!sets) {
            return SL_ENOMEM;
        }
        x->sets = sets;
        uint32_t *hash = sl_calloc(2 * cap, sizeof(*hash));
        if (!hash) {
            return SL_ENOMEM;
        }
        sl_free(x->hash);
        x->hash = hash;
        x->cap = cap;
        for (size_t i = 0; i < x->nsets; i++) {
            cx_slot(x, i);
        }
    }
    memcpy(x->sets + x->nsets * CX_WIDTH, set, (set[0] + 1) * sizeof(*set));
    cx_slot(x, x->nsets++);
    return 0;
}

/* The complexity of the wildcards w[0..nw) of one field, capped at
 * FILTER_MAX_WILDCARD_COMPLEXITY + 1 (also when the walk meets too many sets), in *ret.
 * Returns 0 or SL_ENOMEM. */
static int cx_measure(const struct fm_wild *const *w, size_t nw, unsigned *ret)
{
    const unsigned over = FILTER_MAX_WILDCARD_COMPLEXITY + 1;
    struct cx x = {.cap = 64};
    bool used[256] = {false};
    int alpha[256];
    size_t nalpha = 0, total = 0;
    unsigned best = 0;
    int r = 0;
    for (size_t k = 0; k < nw; k++) {
        total += w[k]->nseg + 3;
        for (size_t b = 0; b < w[k]->nseg; b++) {
            total += w[k]->seg_len[b];
            for (size_t i = 0; i < w[k]->seg_len[b]; i++) {
                used[(unsigned char)w[k]->bytes[w[k]->seg_off[b] + i]] = true;
            }
        }
    }
    for (int b = 0; b < 256; b++) {
        if (used[b]) {
            alpha[nalpha++] = b;
        }
    }
    for (int b = 1; b < 256; b++) {
        if (!used[b]) {
            alpha[nalpha++] = b; /* stands for every byte no pattern names */
            break;
        }
    }
    x.next = sl_calloc(total, sizeof(*x.next));
    x.loops = sl_calloc(total, sizeof(*x.loops));
    x.sets = sl_calloc(x.cap, CX_WIDTH * sizeof(*x.sets));
    x.hash = sl_calloc(2 * x.cap, sizeof(*x.hash));
    uint32_t *from = sl_calloc(2 * total, sizeof(*from));
    uint32_t *out = sl_calloc(4 * total + 1, sizeof(*out));
    if (!x.next || !x.loops || !x.sets || !x.hash || !from || !out) {
        r = SL_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < nw; k++) {
        cx_add(&x, w[k]);
    }
    /* The start (every pattern's first state) has read nothing, so it is walked but not
     * counted; every later set is. */
    size_t nfrom = 0;
    for (size_t s = 0; s < x.nstates; s++) {
        if (s == 0 || x.next[s - 1] == WTOK_END) {
            cx_push(&x, from, &nfrom, (uint32_t)s);
        }
    }
    for (size_t done_sets = 0;;) {
        for (size_t a = 0; a < nalpha && best < over; a++) {
            size_t u = cx_step(&x, from, nfrom, alpha[a], out + 1);
            best = u > best ? (u > over ? over : (unsigned)u) : best;
            if (u == 0 || u > FILTER_MAX_WILDCARD_COMPLEXITY) {
                continue;
            }
            out[0] = (uint32_t)u;
            r = cx_intern(&x, out);
            if (r == SL_EAGAIN) {
                best = over;
                r = 0;
            } else if (r < 0) {
                goto done;
            }
        }
        if (best >= over || done_sets == x.nsets) {
            break;
        }
        nfrom = x.sets[done_sets * CX_WIDTH];
        memcpy(from, x.sets + done_sets * CX_WIDTH + 1, nfrom * sizeof(*from));
        done_sets++;
    }
    *ret = best;
done:
    sl_free(x.next);
    sl_free(x.loops);
    sl_free(x.sets);
    sl_free(x.hash);
    sl_free(from);
    sl_free(out);
    return r;
}

/* Writes the wildcard back as pattern text ('*' and '\\' escaped), ending in "..." when it
 * does not fit in len (at least 4). */
static void wild_text(const struct fm_wild *w, char *buf, size_t len)
{
    size_t o = 0;
    bool cut = false;
    for (size_t k = 0; k <= w->nseg && !cut; k++) {
        if ((k == 0 && w->lead_star) || (k > 0 && k < w->nseg) ||
            (k == w->nseg && k > 0 && w->trail_star)) {
            cut = o + 4 >= len;
            buf[cut ? o : o++] = '*';
        }
        for (size_t b = 0; k < w->nseg && b < w->seg_len[k] && !cut; b++) {
            char ch = w->bytes[w->seg_off[k] + b];
            bool esc = ch == '*' || ch == '\\';
            cut = o + 4 + esc >= len;
            if (!cut && esc) {
                buf[o++] = '\\';
            }
            if (!cut) {
                buf[o++] = ch;
            }
        }
    }
    memcpy(buf + o, cut ? "..." : "", cut ? 4 : 1);
}

/* One wildcard of a field, with where it sits for errors. */
struct cx_site {
    const struct fm_wild *w;
    int elem; /* its matcher's position in the field's list */
    int item; /* its position in an anything-but list, or -1 */
};

/* Refuses the field's wildcards when they are too complex, alone or together (see "About
 * complexity"). */
static int check_complexity(struct cctx *c, const struct ffield *f)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < f->nm; i++) {
        n += f->m[i].kind == FM_WILDCARD ? 1 : f->m[i].kind == FM_NOT_WILDCARD ? f->m[i].nitems : 0;
    }
    if (n == 0) {
        return 0;
    }
    struct cx_site *site = sl_calloc(n, sizeof(*site));
    const struct fm_wild **w = sl_calloc(n, sizeof(*w));
    int r = 0;
    if (!site || !w) {
        r = cnomem(c);
        goto done;
    }
    for (size_t i = 0; i < f->nm; i++) {
        const struct fm *m = &f->m[i];
        if (m->kind == FM_WILDCARD) {
            site[k] = (struct cx_site){.w = &m->wild, .elem = (int)i, .item = -1};
            w[k++] = &m->wild;
        }
        for (size_t j = 0; m->kind == FM_NOT_WILDCARD && j < m->nitems; j++) {
            site[k] = (struct cx_site){.w = &m->items[j].wild, .elem = (int)i, .item = (int)j};
            w[k++] = &m->items[j].wild;
        }
    }
    for (size_t i = 0; i <= n && r == 0; i++) {
        unsigned cxv = 0;
        if (i == n && n == 1) {
            break;
        }
        /* Each wildcard alone first, so the error can name it; then all of them together. */
        r = i < n ? cx_measure(&w[i], 1, &cxv) : cx_measure(w, n, &cxv);
        if (r < 0) {
            r = cnomem(c);
            break;
        }
        if (cxv <= FILTER_MAX_WILDCARD_COMPLEXITY) {
            continue;
        }
        if (i == n) {
            r = cerr(c,
                     "wildcard: the field's %zu wildcard patterns are too complex together: one "
                     "value can match more than %d of their prefixes at once (AWS refuses such "
                     "a pattern); use fewer '*' characters or fewer repeated sequences after a "
                     "'*'",
                     n, FILTER_MAX_WILDCARD_COMPLEXITY);
            break;
        }
        char text[120];
        size_t old = site[i].item < 0 ? path_addf(c, "[%d].wildcard", site[i].elem)
                                      : path_addf(c, "[%d].anything-but.wildcard[%d]", site[i].elem,
                                                  site[i].item);
        wild_text(site[i].w, text, sizeof(text));
        r = cerr(c,
                 "wildcard: \"%s\" is too complex: one value can match more than %d of its "
                 "prefixes at once (AWS refuses such a pattern); use fewer '*' characters or "
                 "fewer repeated sequences after a '*'",
                 text, FILTER_MAX_WILDCARD_COMPLEXITY);
        path_pop(c, old);
    }
done:
    sl_free(site);
    sl_free(w);
    return r;
}

static int compile_numeric(struct cctx *c, struct fm *m, const cJSON *arr)
{
    m->kind = FM_NUMERIC;
    if (!cJSON_IsArray(arr)) {
        return cerr(c, "numeric: expected an array like [\">\", 0, \"<=\", 5], got %s",
                    type_name(arr));
    }
    int n = count_items(arr);
    if (n == 0) {
        return cerr(c, "numeric: expected an operator and a number, got an empty array");
    }
    if (n > 4) {
        return cerr(c, "numeric: at most one lower and one upper bound are allowed");
    }
    const cJSON *e = arr->child;
    while (e) {
        if (!cJSON_IsString(e) || !e->valuestring) {
            return cerr(c, "numeric: expected an operator (= < <= > >=), got %s", type_name(e));
        }
        const char *op = e->valuestring;
        const cJSON *num = e->next;
        if (strcmp(op, "=") && strcmp(op, "<") && strcmp(op, "<=") && strcmp(op, ">") &&
            strcmp(op, ">=")) {
            return cerr(c, "numeric: expected an operator (= < <= > >=), got \"%s\"", op);
        }
        if (!num || !cJSON_IsNumber(num)) {
            return cerr(c, "numeric: expected a number after \"%s\", got %s", op,
                        num ? type_name(num) : "nothing");
        }
        double d = num->valuedouble;
        if (!isfinite(d)) {
            return cerr(c, "numeric: %s is not a finite number", "the value");
        }
        if (op[0] == '=') {
            if (n != 2) {
                return cerr(c, "numeric: \"=\" must be the only operator");
            }
            m->has_lo = m->has_hi = m->lo_incl = m->hi_incl = true;
            m->lo = m->hi = d;
        } else if (op[0] == '>') {
            if (m->has_lo) {
                return cerr(c, "numeric: more than one lower bound (> or >=)");
            }
            m->has_lo = true;
            m->lo = d;
            m->lo_incl = op[1] == '=';
        } else {
            if (m->has_hi) {
                return cerr(c, "numeric: more than one upper bound (< or <=)");
            }
            m->has_hi = true;
            m->hi = d;
            m->hi_incl = op[1] == '=';
        }
        e = num->next;
    }
    if (m->has_lo && m->has_hi && !(m->lo == m->hi && m->lo_incl && m->hi_incl) && m->lo >= m->hi) {
        return cerr(c, "numeric: the lower bound %g is not below the upper bound %g", m->lo, m->hi);
    }
    return 0;
}

static int compile_cidr(struct cctx *c, struct fm *m, const cJSON *v)
{
    char buf[64];
    m->kind = FM_CIDR;
    if (!cJSON_IsString(v) || !v->valuestring) {
        return cerr(c, "cidr: expected a string like \"10.0.0.0/24\", got %s", type_name(v));
    }
    const char *s = v->valuestring;
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf)) {
        return cerr(c, "cidr: \"%s\" is not an IP address or prefix", s);
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
        return cerr(c, "cidr: \"%s\" is not an IP address or prefix", s);
    }
    m->bits = maxbits;
    if (slash) {
        const char *p = slash + 1;
        unsigned bits = 0;
        if (!*p || strlen(p) > 3) {
            return cerr(c, "cidr: bad prefix length in \"%s\"", s);
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9') {
                return cerr(c, "cidr: bad prefix length in \"%s\"", s);
            }
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > maxbits) {
            return cerr(c, "cidr: prefix length %u is over %u in \"%s\"", bits, maxbits, s);
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
    if (cJSON_IsObject(v) && count_items(v) == 1 && v->child->string &&
        strcmp(v->child->string, "equals-ignore-case") == 0 && cJSON_IsString(v->child) &&
        v->child->valuestring) {
        return set_folded(c, m, prefix ? FM_PREFIX_IC : FM_SUFFIX_IC, v->child->valuestring);
    }
    return cerr(c, "%s: expected a string or {\"equals-ignore-case\": string}, got %s", op,
                type_name(v));
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
        (void)snprintf(buf, len, "%s", type_name(v));
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
    size_t old = path_addf(c, "[%d].%s[%d]", c->elem, ops, i);
    int r = cerr(c, "%s: %s, item %d is %s", what, reason, i, val);
    path_pop(c, old);
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
        n = count_items(v);
        if (n == 0) {
            return cerr(c, "%s: the list is empty", what);
        }
    } else if (!cJSON_IsString(v) || !v->valuestring) {
        return cerr(c, "%s: expected %s or a list of them, got %s", what, one, type_name(v));
    } else if (nonempty && !v->valuestring[0]) {
        return cerr(c, "%s: expected %s, got an empty string", what, one);
    }
    m->items = sl_calloc((size_t)n, sizeof(*m->items));
    if (!m->items) {
        return cnomem(c);
    }
    const cJSON *e = cJSON_IsArray(v) ? v->child : v;
    for (int i = 0; i < n; i++, e = e->next) {
        int r;
        if (!cJSON_IsString(e) || !e->valuestring || (nonempty && !e->valuestring[0])) {
            return cerr_item(c, what, ops, list, i, e);
        }
        m->nitems++;
        if (kind == FM_WILDCARD) {
            r = set_wildcard(c, &m->items[i], what, e->valuestring);
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
        if (count_items(v) != 1) {
            return cerr(c, "anything-but: the object must have exactly one key (prefix, suffix, "
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
        return cerr(c,
                    "anything-but: unknown operator \"%s\" (allowed: prefix, suffix, "
                    "equals-ignore-case, wildcard)",
                    k);
    }
    m->kind = FM_NOT_VALUES;
    int n = 1;
    if (cJSON_IsArray(v)) {
        n = count_items(v);
        if (n == 0) {
            return cerr(c, "anything-but: the list is empty");
        }
    } else if (!cJSON_IsString(v) && !cJSON_IsNumber(v)) {
        return cerr(c,
                    "anything-but: expected a string, a number, a list of them or an object, "
                    "got %s",
                    type_name(v));
    }
    m->items = sl_calloc((size_t)n, sizeof(*m->items));
    if (!m->items) {
        return cnomem(c);
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
            return cerr(c, "the number is out of range");
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
        return cerr(c, "a list of values may not contain an array");
    }
    if (!cJSON_IsObject(v)) {
        return cerr(c, "unexpected %s in a list of values", type_name(v));
    }
    int n = count_items(v);
    if (n != 1) {
        return cerr(c, "an operator object must have exactly one key, this one has %d", n);
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
            return cerr(c, "equals-ignore-case: expected a string, got %s", type_name(o));
        }
        return set_folded(c, m, FM_EQ_IC, o->valuestring);
    }
    if (strcmp(op, "wildcard") == 0) {
        if (!cJSON_IsString(o) || !o->valuestring) {
            return cerr(c, "wildcard: expected a string, got %s", type_name(o));
        }
        return set_wildcard(c, m, "wildcard", o->valuestring);
    }
    if (strcmp(op, "anything-but") == 0) {
        return compile_anything_but(c, m, o);
    }
    if (strcmp(op, "numeric") == 0) {
        return compile_numeric(c, m, o);
    }
    if (strcmp(op, "exists") == 0) {
        if (!cJSON_IsBool(o)) {
            return cerr(c, "exists: expected true or false, got %s", type_name(o));
        }
        m->kind = FM_EXISTS;
        m->exists = cJSON_IsTrue(o);
        return 0;
    }
    if (strcmp(op, "cidr") == 0) {
        return compile_cidr(c, m, o);
    }
    return cerr(c,
                "unknown operator \"%s\" (allowed: prefix, suffix, equals-ignore-case, "
                "wildcard, anything-but, numeric, exists, cidr)",
                op);
}

static int compile_leaf(struct cctx *c, struct ffield *f, const cJSON *arr)
{
    int n = count_items(arr);
    if (n == 0) {
        return cerr(c, "a list of values may not be empty");
    }
    f->m = sl_calloc((size_t)n, sizeof(*f->m));
    if (!f->m) {
        return cnomem(c);
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
    return check_complexity(c, f);
}

static int compile_node(struct cctx *c, const cJSON *obj, struct fnode **ret_n);

/* The path ends in "$or" for the checks; the alternatives are named "$or[i]" from parent. */
static int compile_or(struct cctx *c, struct fnode *n, const cJSON *arr, size_t parent)
{
    if (!cJSON_IsArray(arr)) {
        return cerr(c, "$or: expected a list of at least two objects, got %s", type_name(arr));
    }
    int k = count_items(arr);
    if (k < 2) {
        return cerr(c, "$or: expected a list of at least two objects, got %d", k);
    }
    n->alts = sl_calloc((size_t)k, sizeof(*n->alts));
    if (!n->alts) {
        return cnomem(c);
    }
    path_pop(c, parent);
    int i = 0;
    int r = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        size_t old = path_push(c, "$or", i);
        if (!cJSON_IsObject(e)) {
            r = cerr(c, "$or: expected an object, got %s", type_name(e));
        } else {
            r = compile_node(c, e, &n->alts[i]);
            if (r == 0) {
                n->nalts++;
            }
        }
        path_pop(c, old);
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
        return cnomem(c);
    }
    if (!dot) {
        *ret_f = f;
        return 0;
    }
    f->child = sl_calloc(1, sizeof(*f->child));
    if (!f->child) {
        return cnomem(c);
    }
    f->child->fields = sl_calloc(1, sizeof(*f->child->fields));
    if (!f->child->fields) {
        return cnomem(c);
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
        return cerr(c, "the pattern nests deeper than %d levels (each part of a dotted key is one)",
                    FILTER_MAX_DEPTH);
    }
    struct ffield *f = NULL;
    int r = field_chain(c, n, key, &f);
    if (r < 0) {
        return r;
    }
    c->depth += dots;
    r = cJSON_IsObject(e) ? compile_node(c, e, &f->child) : compile_leaf(c, f, e);
    c->depth -= dots;
    return r;
}

/* Compiles one pattern object. Duplicate keys: the last one wins, as in AWS. */
static int compile_node(struct cctx *c, const cJSON *obj, struct fnode **ret_n)
{
    int r = 0;
    if (c->depth >= FILTER_MAX_DEPTH) {
        return cerr(c, "the pattern nests deeper than %d objects", FILTER_MAX_DEPTH);
    }
    int count = count_items(obj);
    if (count == 0) {
        return cerr(c, "an object in a pattern may not be empty");
    }
    struct fnode *n = sl_calloc(1, sizeof(*n));
    if (!n) {
        return cnomem(c);
    }
    n->fields = sl_calloc((size_t)count, sizeof(*n->fields));
    if (!n->fields) {
        r = cnomem(c);
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
        size_t old = path_push(c, key, -1);
        if (strcmp(key, "$or") == 0) {
            r = compile_or(c, n, e, old);
        } else if (cJSON_IsObject(e) || cJSON_IsArray(e)) {
            r = compile_field(c, n, key, e);
        } else {
            r = cerr(c, "expected a list of values or an object, got %s", type_name(e));
        }
        path_pop(c, old);
    }
    c->depth--;
    if (r < 0) {
        goto fail;
    }
    *ret_n = n;
    return 0;
fail:
    node_free(n);
    return r;
}

static bool only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

int sl_pattern_compile(
    const char *text, size_t len, struct sl_pattern **ret_p, char *errbuf, size_t errlen)
{
    struct cctx c = {.errbuf = errbuf, .errlen = errlen};
    if (errbuf && errlen) {
        errbuf[0] = '\0';
    }
    size_t chars = utf8_count((const unsigned char *)text, len);
    if (chars > SL_FILTER_MAX_PATTERN_LEN) {
        return cerr(&c, "the pattern is %zu characters long, over the limit of %d", chars,
                    SL_FILTER_MAX_PATTERN_LEN);
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!doc) {
        size_t off = (end && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
        return cerr(&c, "the pattern is not valid JSON (near character %zu)", off);
    }
    if (end && end >= text && end <= text + len && !only_space(end, len - (size_t)(end - text))) {
        cJSON_Delete(doc);
        return cerr(&c, "the pattern has text after its JSON value (at character %zu)",
                    (size_t)(end - text));
    }
    if (!cJSON_IsObject(doc)) {
        int r = cerr(&c, "a pattern must be a JSON object, got %s", type_name(doc));
        cJSON_Delete(doc);
        return r;
    }
    struct sl_pattern *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        cJSON_Delete(doc);
        return cnomem(&c);
    }
    int r = compile_node(&c, doc, &p->root);
    cJSON_Delete(doc);
    if (r < 0) {
        sl_free(p);
        return r;
    }
    *ret_p = p;
    return 0;
}

bool sl_pattern_match(const struct sl_pattern *p, const cJSON *doc)
{
    return root_match(p->root, doc);
}

void sl_pattern_free(struct sl_pattern *p)
{
    if (!p) {
        return;
    }
    node_free(p->root);
    sl_free(p);
}

/* ---- FilterCriteria -------------------------------------------------------------------------- */

SL_PRINTF(3, 4) static int ferr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

int sl_filter_compile(const cJSON *criteria, struct sl_filter **ret_f, char *errbuf, size_t errlen)
{
    char perr[512];
    int r = 0;
    if (errbuf && errlen) {
        errbuf[0] = '\0';
    }
    if (!cJSON_IsObject(criteria)) {
        return ferr(errbuf, errlen,
                    "FilterCriteria: expected an object like {\"Filters\": "
                    "[{\"Pattern\": \"...\"}]}, got %s",
                    type_name(criteria));
    }
    const cJSON *filters = NULL;
    for (const cJSON *e = criteria->child; e; e = e->next) {
        if (!e->string || strcmp(e->string, "Filters") != 0) {
            return ferr(errbuf, errlen, "FilterCriteria: unknown key \"%s\" (allowed: Filters)",
                        e->string ? e->string : "");
        }
        filters = e;
    }
    size_t n = 0;
    if (filters && !cJSON_IsNull(filters)) {
        if (!cJSON_IsArray(filters)) {
            return ferr(errbuf, errlen, "Filters: expected a list of {\"Pattern\": string}, got %s",
                        type_name(filters));
        }
        n = (size_t)count_items(filters);
        if (n > SL_FILTER_MAX_PATTERNS) {
            return ferr(errbuf, errlen, "Filters: %zu filters, at most %d are allowed", n,
                        SL_FILTER_MAX_PATTERNS);
        }
    }
    struct sl_filter *f = sl_calloc(1, sizeof(*f));
    if (!f) {
        (void)ferr(errbuf, errlen, "out of memory compiling FilterCriteria");
        return SL_ENOMEM;
    }
    size_t i = 0;
    for (const cJSON *e = n ? filters->child : NULL; e; e = e->next, i++) {
        const cJSON *pat = cJSON_IsObject(e) ? e->child : NULL;
        if (!cJSON_IsObject(e) || !pat || pat->next || !pat->string ||
            strcmp(pat->string, "Pattern") != 0) {
            r = ferr(errbuf, errlen,
                     "Filters[%zu]: expected an object with exactly one key, "
                     "\"Pattern\"",
                     i);
            goto fail;
        }
        if (!cJSON_IsString(pat) || !pat->valuestring) {
            r = ferr(errbuf, errlen, "Filters[%zu].Pattern: expected a string holding JSON, got %s",
                     i, type_name(pat));
            goto fail;
        }
        r = sl_pattern_compile(pat->valuestring, strlen(pat->valuestring), &f->p[f->n], perr,
                               sizeof(perr));
        if (r < 0) {
            (void)ferr(errbuf, errlen, "Filters[%zu].Pattern: %s", i, perr);
            goto fail;
        }
        f->n++;
    }
    *ret_f = f;
    return 0;
fail:
    sl_filter_free(f);
    return r;
}

bool sl_filter_match(const struct sl_filter *f, const cJSON *doc)
{
    if (f->n == 0) {
        return true;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (sl_pattern_match(f->p[i], doc)) {
            return true;
        }
    }
    return false;
}

static bool node_uses_field(const struct fnode *n, const char *key)
{
    for (size_t i = 0; i < n->nfields; i++) {
        if (strcmp(n->fields[i].key, key) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < n->nalts; i++) {
        if (node_uses_field(n->alts[i], key)) {
            return true;
        }
    }
    return false;
}

/* Whether the pattern looks inside key (a nested object under it, here or in a $or). */
static bool node_descends_into(const struct fnode *n, const char *key)
{
    for (size_t i = 0; i < n->nfields; i++) {
        if (n->fields[i].child && strcmp(n->fields[i].key, key) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < n->nalts; i++) {
        if (node_descends_into(n->alts[i], key)) {
            return true;
        }
    }
    return false;
}

/* node_match, with the top-level fields named in skip (a bit per entry of names) treated as
 * matching: for Kafka's rule that a payload in another format only gets metadata filters. */
static bool node_match_skipping(const struct fnode *n,
                                const struct fview *v,
                                const char *const *names,
                                unsigned skip)
{
    for (size_t i = 0; i < n->nfields; i++) {
        bool skipped = false;
        for (unsigned b = 0; names[b]; b++) {
            skipped = skipped || ((skip >> b) & 1u && strcmp(n->fields[i].key, names[b]) == 0);
        }
        if (!skipped && !field_match(&n->fields[i], v)) {
            return false;
        }
    }
    if (n->nalts) {
        for (size_t i = 0; i < n->nalts; i++) {
            if (node_match_skipping(n->alts[i], v, names, skip)) {
                return true;
            }
        }
        return false;
    }
    return true;
}

bool sl_filter_match_fields(const struct sl_filter *f,
                            const cJSON *doc,
                            const char *const *payload_fields,
                            bool mismatch_ignored)
{
    if (f->n == 0) {
        return true;
    }
    unsigned unstructured = 0;
    for (unsigned b = 0; payload_fields[b] && b < 8; b++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, payload_fields[b]);
        if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
            unstructured |= 1u << b;
        }
    }
    struct fview top = {.n = cJSON_IsObject(doc) ? 1 : 0};
    top.at[0] = (struct fplace){.obj = doc, .pre = "", .plen = 0};
    for (size_t i = 0; i < f->n; i++) {
        unsigned skip = 0;
        for (unsigned b = 0; payload_fields[b] && b < 8; b++) {
            if ((unstructured >> b) & 1u && node_descends_into(f->p[i]->root, payload_fields[b])) {
                skip |= 1u << b;
            }
        }
        if (skip && !mismatch_ignored) {
            continue;
        }
        if (skip ? node_match_skipping(f->p[i]->root, &top, payload_fields, skip)
                 : sl_pattern_match(f->p[i], doc)) {
            return true;
        }
    }
    return false;
}

bool sl_filter_match_payload(const struct sl_filter *f, const cJSON *doc, const char *key)
{
    const char *const fields[] = {key, NULL};
    return sl_filter_match_fields(f, doc, fields, false);
}

bool sl_filter_uses_field(const struct sl_filter *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++) {
        if (node_uses_field(f->p[i]->root, key)) {
            return true;
        }
    }
    return false;
}

size_t sl_filter_count(const struct sl_filter *f)
{
    return f->n;
}

void sl_filter_free(struct sl_filter *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        sl_pattern_free(f->p[i]);
    }
    sl_free(f);
}

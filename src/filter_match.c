/* SPDX-License-Identifier: Apache-2.0 */
/* filter_match.c: matching a compiled pattern tree against a cJSON document: leaf values
 * against matchers, document arrays flattened, dotted keys looked up as views (see "About dotted
 * keys"). Matching allocates nothing, never fails and recurses only as deep as the pattern plus
 * FILTER_MAX_ARRAY_DEPTH document arrays. It reads the tree the compiler builds and knows
 * nothing of how it was built. */
#include "filter_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

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
        return s && filter_text_ic_compare(s, 0, m->cp, m->ncp, false);
    case FM_SUFFIX_IC:
        return s && filter_text_ic_suffix(s, m->cp, m->ncp);
    case FM_EQ_IC:
        return s && filter_text_ic_compare(s, 0, m->cp, m->ncp, true);
    case FM_WILDCARD:
        return s && filter_wildcard_match(&m->wild, s);
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

bool filter_match_field(const struct ffield *f, const struct fview *v)
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
        if (!filter_match_field(&n->fields[i], v)) {
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
bool filter_match_root(const struct fnode *n, const cJSON *doc)
{
    struct ffound found = {.nval = doc ? 1 : 0};
    found.val[0] = doc;
    return sub_match(n, &found);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* filter_wildcard.c: wildcard patterns of FilterCriteria: parsing "wildcard" text into literal
 * pieces, matching a string against them, and refusing patterns that AWS would call too complex
 * (see "About complexity"). Wildcards get their own file because the complexity measure is a
 * small automaton walk of its own; the compiler and the matcher call down into it. */
#include "filter_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

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
bool filter_wildcard_match(const struct fm_wild *w, const char *s)
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

int filter_wildcard_set(struct cctx *c, struct fm *m, const char *what, const char *s)
{
    size_t len = strlen(s);
    struct fm_wild *w = &m->wild;
    m->kind = FM_WILDCARD;
    w->bytes = sl_malloc(len + 1);
    w->seg_off = sl_calloc(len + 1, sizeof(size_t));
    w->seg_len = sl_calloc(len + 1, sizeof(size_t));
    if (!w->bytes || !w->seg_off || !w->seg_len) {
        return filter_error_nomem(c);
    }
    size_t out = 0;
    bool in_seg = false, prev_star = false;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '*') {
            if (prev_star) {
                return filter_error_fmt(
                    c, "%s: consecutive '*' characters are not allowed in \"%s\"", what, s);
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
                return filter_error_fmt(c, "%s: '\\' must be followed by '*' or '\\' in \"%s\"",
                                        what, s);
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
int filter_wildcard_check_complexity(struct cctx *c, const struct ffield *f)
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
        r = filter_error_nomem(c);
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
            r = filter_error_nomem(c);
            break;
        }
        if (cxv <= FILTER_MAX_WILDCARD_COMPLEXITY) {
            continue;
        }
        if (i == n) {
            r = filter_error_fmt(
                c,
                "wildcard: the field's %zu wildcard patterns are too complex together: one "
                "value can match more than %d of their prefixes at once (AWS refuses such "
                "a pattern); use fewer '*' characters or fewer repeated sequences after a "
                "'*'",
                n, FILTER_MAX_WILDCARD_COMPLEXITY);
            break;
        }
        char text[120];
        size_t old = site[i].item < 0 ? filter_error_path_addf(c, "[%d].wildcard", site[i].elem)
                                      : filter_error_path_addf(c, "[%d].anything-but.wildcard[%d]",
                                                               site[i].elem, site[i].item);
        wild_text(site[i].w, text, sizeof(text));
        r = filter_error_fmt(
            c,
            "wildcard: \"%s\" is too complex: one value can match more than %d of its "
            "prefixes at once (AWS refuses such a pattern); use fewer '*' characters or "
            "fewer repeated sequences after a '*'",
            text, FILTER_MAX_WILDCARD_COMPLEXITY);
        filter_error_path_pop(c, old);
    }
done:
    sl_free(site);
    sl_free(w);
    return r;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* lanebatch.c: the batch a lane carries, as data: which records it holds (by partition and absolute
 * index, read through the partition's queue), which part of it is being tried and which parts wait
 * after it, and the reorderings the verdicts need, each keeping every partition's records in
 * position order (DESIGN.md rule 2). It decides nothing: the carry (carry.c) asks. Loop thread. */
#include "lanebatch.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "source.h"

struct sl_lanebatch_item {
    void *part_tag;
    struct sl_part *part;
    struct sl_progress_part *prog;
    uint64_t abs;
};

struct sl_lanebatch {
    const struct sl_source_ops *ops;
    void *src_ctx;
    struct sl_lanebatch_item *items;
    size_t n;
    size_t cap;
    struct sl_batch_ref *refs; /* scratch for encoding, cap of them */
    struct sl_lanebatch_range cur;
    struct sl_lanebatch_range *todo;
    size_t n_todo;
    size_t cap_todo;
};

struct sl_lanebatch *sl_lanebatch_new(const struct sl_source_ops *ops, void *src_ctx)
{
    struct sl_lanebatch *b = sl_calloc(1, sizeof(*b));
    if (b) {
        b->ops = ops;
        b->src_ctx = src_ctx;
    }
    return b;
}

void sl_lanebatch_free(struct sl_lanebatch *b)
{
    if (!b) {
        return;
    }
    sl_free(b->items);
    sl_free(b->refs);
    sl_free(b->todo);
    sl_free(b);
}

bool sl_lanebatch_reserve(struct sl_lanebatch *b, size_t n)
{
    if (n > b->cap) {
        struct sl_lanebatch_item *items = sl_realloc(b->items, n * sizeof(*items));
        if (items) {
            b->items = items;
        }
        struct sl_batch_ref *refs = sl_realloc(b->refs, n * sizeof(*refs));
        if (refs) {
            b->refs = refs;
        }
        if (!items || !refs) {
            return false;
        }
        b->cap = n;
    }
    b->n = 0;
    return true;
}

void sl_lanebatch_add(struct sl_lanebatch *b,
                      void *part_tag,
                      struct sl_part *part,
                      struct sl_progress_part *prog,
                      uint64_t abs)
{
    assert(b->n < b->cap);
    b->items[b->n++] = (struct sl_lanebatch_item){part_tag, part, prog, abs};
}

void sl_lanebatch_clear(struct sl_lanebatch *b)
{
    b->n = 0;
    b->n_todo = 0;
    b->cur = (struct sl_lanebatch_range){0, 0};
}

size_t sl_lanebatch_count(const struct sl_lanebatch *b)
{
    return b->n;
}

void sl_lanebatch_begin(struct sl_lanebatch *b)
{
    b->cur = (struct sl_lanebatch_range){0, b->n};
    b->n_todo = 0;
}

struct sl_lanebatch_range sl_lanebatch_cur(const struct sl_lanebatch *b)
{
    return b->cur;
}

void sl_lanebatch_set_cur_lo(struct sl_lanebatch *b, size_t lo)
{
    b->cur.lo = lo;
}

bool sl_lanebatch_cut(struct sl_lanebatch *b, size_t at)
{
    if (b->n_todo == b->cap_todo) {
        size_t cap = b->cap_todo ? b->cap_todo * 2 : 8;
        struct sl_lanebatch_range *t = sl_realloc(b->todo, cap * sizeof(*t));
        if (!t) {
            return false;
        }
        b->todo = t;
        b->cap_todo = cap;
    }
    b->todo[b->n_todo++] = (struct sl_lanebatch_range){at, b->cur.hi};
    b->cur.hi = at;
    return true;
}

bool sl_lanebatch_next(struct sl_lanebatch *b)
{
    if (b->n_todo == 0) {
        return false;
    }
    b->cur = b->todo[--b->n_todo];
    return true;
}

void *sl_lanebatch_tag(const struct sl_lanebatch *b, size_t i)
{
    return b->items[i].part_tag;
}

struct sl_part *sl_lanebatch_part(const struct sl_lanebatch *b, size_t i)
{
    return b->items[i].part;
}

struct sl_record *sl_lanebatch_rec(const struct sl_lanebatch *b, size_t i)
{
    struct sl_recq *q = &b->items[i].part->q;
    return sl_recq_at_mut(q, (size_t)(b->items[i].abs - q->dropped));
}

uint64_t sl_lanebatch_abs(const struct sl_lanebatch *b, size_t i)
{
    return b->items[i].abs;
}

bool sl_lanebatch_starts_group(const struct sl_lanebatch *b, size_t i, size_t lo)
{
    return i == lo || b->items[i].part_tag != b->items[i - 1].part_tag;
}

void sl_lanebatch_finish(struct sl_lanebatch *b, struct sl_lanebatch_range r)
{
    for (size_t i = r.lo; i < r.hi; i++) {
        sl_lanebatch_rec(b, i)->flags |= SL_REC_DONE;
    }
    for (size_t i = r.lo; i < r.hi; i++) {
        if (sl_lanebatch_starts_group(b, i, r.lo)) {
            (void)sl_progress_part_advance(b->items[i].prog);
        }
    }
}

const struct sl_batch_ref *sl_lanebatch_refs(struct sl_lanebatch *b, struct sl_lanebatch_range r)
{
    for (size_t i = r.lo; i < r.hi; i++) {
        b->refs[i - r.lo] = (struct sl_batch_ref){b->items[i].part, sl_lanebatch_rec(b, i)};
    }
    return b->refs;
}

const char *sl_lanebatch_item_id(const struct sl_lanebatch *b, size_t i, char *buf)
{
    if (b->ops->format_item_id(b->src_ctx, b->items[i].part, sl_lanebatch_rec(b, i), buf,
                               SL_LANEBATCH_ID_MAX) < 0) {
        buf[0] = '\0';
    }
    return buf;
}

const char *sl_lanebatch_describe(const struct sl_lanebatch *b,
                                  struct sl_lanebatch_range r,
                                  char *buf,
                                  size_t len)
{
    char first[SL_LANEBATCH_ID_MAX];
    char last[SL_LANEBATCH_ID_MAX];
    size_t used = (size_t)snprintf(buf, len, "%zu records of ", r.hi - r.lo);
    for (size_t i = r.lo; i < r.hi && used < len; i++) {
        if (!sl_lanebatch_starts_group(b, i, r.lo)) {
            continue;
        }
        size_t j = i;
        while (j + 1 < r.hi && b->items[j + 1].part_tag == b->items[i].part_tag) {
            j++;
        }
        used += (size_t)snprintf(buf + used, len - used, "%s%s from %s to %s", i > r.lo ? ", " : "",
                                 b->items[i].part->name, sl_lanebatch_item_id(b, i, first),
                                 sl_lanebatch_item_id(b, j, last));
    }
    return buf;
}

/* Moves the items of cur for which keep_first[i - cur.lo] is set to the front of cur, both groups
 * keeping their order (so each stays grouped by partition). Returns how many moved, or SIZE_MAX
 * when out of memory. */
static size_t lanebatch_stable_split(struct sl_lanebatch *b, const bool *keep_first)
{
    size_t n = b->cur.hi - b->cur.lo;
    struct sl_lanebatch_item *tmp = sl_malloc(n * sizeof(*tmp));
    if (!tmp) {
        return SIZE_MAX;
    }
    size_t front = 0;
    for (size_t i = 0; i < n; i++) {
        front += keep_first[i];
    }
    size_t x = 0;
    size_t y = front;
    for (size_t i = 0; i < n; i++) {
        tmp[keep_first[i] ? x++ : y++] = b->items[b->cur.lo + i];
    }
    memcpy(&b->items[b->cur.lo], tmp, n * sizeof(*tmp));
    sl_free(tmp);
    return front;
}

size_t sl_lanebatch_expired_front(struct sl_lanebatch *b, int64_t oldest_ms)
{
    size_t n = b->cur.hi - b->cur.lo;
    size_t count = 0;
    bool *expired = sl_calloc(n, sizeof(*expired));
    if (!expired) {
        return SIZE_MAX;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = b->cur.lo + i;
        bool same = !sl_lanebatch_starts_group(b, at, b->cur.lo);
        expired[i] = sl_lanebatch_rec(b, at)->arrival_ms < oldest_ms && (!same || expired[i - 1]);
        count += expired[i];
    }
    if (count > 0) {
        count = lanebatch_stable_split(b, expired);
    }
    sl_free(expired);
    return count;
}

void sl_lanebatch_read_partial(struct sl_lanebatch *b,
                               const struct sl_invoke_result *res,
                               struct sl_partial *ret)
{
    size_t n = b->cur.hi - b->cur.lo;
    char *ids_buf = sl_malloc(n * SL_LANEBATCH_ID_MAX);
    const char **ids = sl_calloc(n, sizeof(*ids));
    bool *failed = sl_calloc(2 * n, sizeof(*failed)); /* and done, after it */
    if (!ids_buf || !ids || !failed) {
        sl_free(ids_buf);
        sl_free(ids);
        sl_free(failed);
        memset(ret, 0, sizeof(*ret));
        ret->kind = SL_PARTIAL_INVALID;
        (void)snprintf(ret->detail, sizeof(ret->detail), "out of memory reading the response");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = sl_lanebatch_item_id(b, b->cur.lo + i, ids_buf + i * SL_LANEBATCH_ID_MAX);
    }
    sl_invoker_parse_partial(b->ops, res->body, res->body_len, ids, n, failed, ret);
    if (ret->kind == SL_PARTIAL_SOME_FAILED) {
        /* done[i]: no record of the same partition at or before i failed. */
        bool *done = failed + n;
        for (size_t i = 0; i < n; i++) {
            bool same = !sl_lanebatch_starts_group(b, b->cur.lo + i, b->cur.lo);
            done[i] = !failed[i] && (!same || done[i - 1]);
        }
        size_t front = lanebatch_stable_split(b, done);
        if (front == SIZE_MAX) {
            ret->kind = SL_PARTIAL_INVALID;
            (void)snprintf(ret->detail, sizeof(ret->detail), "out of memory reading the response");
        } else {
            ret->lowest = front;
        }
    }
    sl_free(failed);
    sl_free(ids);
    sl_free(ids_buf);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_table.c: the checkpoint store's memory model: one entry per partition id (position and the
 * source's meta), in an open-addressing hash table with linear probing and backward-shift
 * deletion, so that a set per batch is a lookup and, when the values fit, a copy into the
 * entry's own buffers. It knows nothing of files, generations or the loop: checkpoint.c owns
 * when a change is written, ckpt_json.c how the table reads and writes as JSON. Loop thread. */
#include "ckpt_table.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"

#define CKPT_TABLE_MIN_SLOTS 16

struct ckpt_ent {
    uint32_t hash;
    char *part;
    char *pos;  /* owned; pos_cap bytes */
    char *meta; /* owned or NULL; meta_cap bytes */
    size_t pos_cap;
    size_t meta_cap;
};

struct ckpt_table {
    struct ckpt_ent **slots; /* power-of-two table, NULL = empty */
    size_t nslots;
    size_t count;
    struct ckpt_row *rows; /* scratch for ckpt_table_sorted */
    size_t rows_cap;
};

struct ckpt_table *ckpt_table_new(void)
{
    return sl_calloc(1, sizeof(struct ckpt_table));
}

static uint32_t ckpt_table_hash(const char *s)
{
    return (uint32_t)sl_hash_fnv1a(s, strlen(s), SL_HASH_FNV1A_BASIS);
}

static size_t ckpt_table_find_slot(const struct ckpt_table *ck, const char *part, uint32_t h)
{
    size_t mask = ck->nslots - 1;
    size_t i = h & mask;
    while (ck->slots[i]) {
        if (ck->slots[i]->hash == h && strcmp(ck->slots[i]->part, part) == 0) {
            return i;
        }
        i = (i + 1) & mask;
    }
    return i;
}

static int ckpt_table_grow(struct ckpt_table *ck)
{
    size_t n = ck->nslots ? ck->nslots * 2 : CKPT_TABLE_MIN_SLOTS;
    struct ckpt_ent **slots = sl_calloc(n, sizeof(*slots));
    if (!slots) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < ck->nslots; i++) {
        struct ckpt_ent *e = ck->slots[i];
        if (e) {
            size_t j = e->hash & (n - 1);
            while (slots[j]) {
                j = (j + 1) & (n - 1);
            }
            slots[j] = e;
        }
    }
    sl_free(ck->slots);
    ck->slots = slots;
    ck->nslots = n;
    return 0;
}

static void ckpt_ent_free(struct ckpt_ent *e)
{
    if (e) {
        sl_free(e->part);
        sl_free(e->pos);
        sl_free(e->meta);
        sl_free(e);
    }
}

/* Copies s into *dst (capacity *cap), reusing the buffer when it fits: sets happen per batch. */
static int ckpt_str_assign(char **dst, size_t *cap, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > *cap) {
        size_t c = n < 32 ? 32 : n;
        char *d = sl_realloc(*dst, c);
        if (!d) {
            return SL_ENOMEM;
        }
        *dst = d;
        *cap = c;
    }
    memcpy(*dst, s, n);
    return 0;
}

static bool ckpt_meta_equal(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/* Inserts or updates without touching gen. Sets *ret_changed when the stored value differs. */
int ckpt_table_put(
    struct ckpt_table *ck, const char *part, const char *pos, const char *meta, bool *ret_changed)
{
    *ret_changed = false;
    if ((ck->count + 1) * 4 > ck->nslots * 3) {
        if (ckpt_table_grow(ck) < 0) {
            return SL_ENOMEM;
        }
    }
    uint32_t h = ckpt_table_hash(part);
    size_t i = ckpt_table_find_slot(ck, part, h);
    struct ckpt_ent *e = ck->slots[i];
    if (e) {
        if (strcmp(e->pos, pos) == 0 && ckpt_meta_equal(e->meta, meta)) {
            return 0;
        }
        if (ckpt_str_assign(&e->pos, &e->pos_cap, pos) < 0) {
            return SL_ENOMEM;
        }
        if (meta) {
            if (ckpt_str_assign(&e->meta, &e->meta_cap, meta) < 0) {
                return SL_ENOMEM;
            }
        } else {
            sl_free(e->meta);
            e->meta = NULL;
            e->meta_cap = 0;
        }
        *ret_changed = true;
        return 0;
    }
    e = sl_calloc(1, sizeof(*e));
    if (!e) {
        return SL_ENOMEM;
    }
    e->hash = h;
    e->part = sl_strdup(part);
    if (!e->part || ckpt_str_assign(&e->pos, &e->pos_cap, pos) < 0 ||
        (meta && ckpt_str_assign(&e->meta, &e->meta_cap, meta) < 0)) {
        ckpt_ent_free(e);
        return SL_ENOMEM;
    }
    ck->slots[i] = e;
    ck->count++;
    *ret_changed = true;
    return 0;
}

bool ckpt_table_get(const struct ckpt_table *ck, const char *part, struct ckpt_row *ret_row)
{
    const struct ckpt_ent *e =
        ck->nslots ? ck->slots[ckpt_table_find_slot(ck, part, ckpt_table_hash(part))] : NULL;
    if (!e) {
        return false;
    }
    *ret_row = (struct ckpt_row){e->part, e->pos, e->meta};
    return true;
}

bool ckpt_table_del(struct ckpt_table *ck, const char *part)
{
    if (ck->nslots == 0) {
        return false;
    }
    size_t mask = ck->nslots - 1;
    size_t i = ckpt_table_find_slot(ck, part, ckpt_table_hash(part));
    if (!ck->slots[i]) {
        return false;
    }
    ckpt_ent_free(ck->slots[i]);
    ck->slots[i] = NULL;
    ck->count--;
    /* Backward-shift deletion keeps linear probing free of tombstones: move each following
     * entry of the cluster back into the hole when its home slot allows it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; ck->slots[j]; j = (j + 1) & mask) {
        size_t home = ck->slots[j]->hash & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            ck->slots[hole] = ck->slots[j];
            ck->slots[j] = NULL;
            hole = j;
        }
    }
    return true;
}

static int ckpt_row_cmp(const void *a, const void *b)
{
    const struct ckpt_row *x = a;
    const struct ckpt_row *y = b;
    return strcmp(x->part, y->part);
}

int ckpt_table_sorted(struct ckpt_table *ck, const struct ckpt_row **ret_rows, size_t *ret_n)
{
    if (ck->count > ck->rows_cap) {
        size_t cap = ck->count * 2;
        struct ckpt_row *rows = sl_realloc(ck->rows, cap * sizeof(*rows));
        if (!rows) {
            return SL_ENOMEM;
        }
        ck->rows = rows;
        ck->rows_cap = cap;
    }
    size_t n = 0;
    for (size_t i = 0; i < ck->nslots; i++) {
        const struct ckpt_ent *e = ck->slots[i];
        if (e) {
            ck->rows[n++] = (struct ckpt_row){e->part, e->pos, e->meta};
        }
    }
    if (n > 1) {
        qsort(ck->rows, n, sizeof(*ck->rows), ckpt_row_cmp);
    }
    *ret_rows = ck->rows;
    *ret_n = n;
    return 0;
}

void ckpt_table_free(struct ckpt_table *ck)
{
    if (!ck) {
        return;
    }
    for (size_t i = 0; i < ck->nslots; i++) {
        ckpt_ent_free(ck->slots[i]);
    }
    sl_free(ck->slots);
    sl_free(ck->rows);
    sl_free(ck);
}

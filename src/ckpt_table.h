/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_table.h: the checkpoint store's table of partitions (ckpt_table.c), for the store
 * (checkpoint.c) and its JSON form (ckpt_json.c) only. Loop thread. */
#ifndef SL_CKPT_TABLE_H
#define SL_CKPT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* One partition's checkpoint. */
struct ckpt_ent {
    uint32_t hash;
    char *part;
    char *pos;  /* owned; pos_cap bytes */
    char *meta; /* owned or NULL; meta_cap bytes */
    size_t pos_cap;
    size_t meta_cap;
};

/* Zeroed is empty. */
struct ckpt_table {
    struct ckpt_ent **slots; /* power-of-two table, NULL = empty */
    size_t nslots;
    size_t count;
    const struct ckpt_ent **sorted; /* scratch for ckpt_table_sorted */
    size_t sorted_cap;
};

/* Inserts or updates part (copying every string). Sets *ret_changed when the stored value
 * differs from before. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int ckpt_table_put(
    struct ckpt_table *ck, const char *part, const char *pos, const char *meta, bool *ret_changed);
/* The entry of part (borrowed until the next put or del), or NULL. */
const struct ckpt_ent *ckpt_table_get(const struct ckpt_table *ck, const char *part);
/* Removes part; returns whether it was there. */
bool ckpt_table_del(struct ckpt_table *ck, const char *part);
/* Points *ret_ents at the ck->count entries sorted by partition id (borrowed until the next
 * call or change). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int ckpt_table_sorted(struct ckpt_table *ck, const struct ckpt_ent *const **ret_ents);
void ckpt_table_fini(struct ckpt_table *ck);

#endif

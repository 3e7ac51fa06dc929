/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_table.h: the checkpoint store's table of partitions (ckpt_table.c), for the store
 * (checkpoint.c) and its JSON form (ckpt_json.c) only. Loop thread. */
#ifndef SL_CKPT_TABLE_H
#define SL_CKPT_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* The table; opaque. */
struct ckpt_table;

/* One partition's checkpoint as the table shows it, borrowed until the table next changes. */
struct ckpt_row {
    const char *part;
    const char *pos;
    const char *meta; /* may be NULL */
};

/* An empty table, or NULL on OOM. */
struct ckpt_table *ckpt_table_new(void);
void ckpt_table_free(struct ckpt_table *ck);

/* Inserts or updates part (copying every string). Sets *ret_changed when the stored value
 * differs from before. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int ckpt_table_put(
    struct ckpt_table *ck, const char *part, const char *pos, const char *meta, bool *ret_changed);
/* Returns whether part is there, and fills *ret_row when it is. */
bool ckpt_table_get(const struct ckpt_table *ck, const char *part, struct ckpt_row *ret_row);
/* Removes part; returns whether it was there. */
bool ckpt_table_del(struct ckpt_table *ck, const char *part);
/* Points *ret_rows at every partition's row, sorted by partition id, *ret_n of them (borrowed
 * until the next call or change). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int
ckpt_table_sorted(struct ckpt_table *ck, const struct ckpt_row **ret_rows, size_t *ret_n);

#endif

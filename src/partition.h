/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_PARTITION_H
#define SL_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "recq.h"

/* One partition of a mapping: the unit of order and of checkpoint (a file, a shard, a
 * topic-partition). The mapping owns it; the source reads the fields marked "source reads"
 * and keeps its own per-partition state in src. Loop thread. */
struct sl_part {
    char *id;        /* source reads: stable checkpoint key ("2049:1234" for a file) */
    char *name;      /* source reads: shown in logs and events (a file's path) */
    char *ckpt_pos;  /* source reads: position loaded from the checkpoint store, or NULL */
    char *ckpt_meta; /* source reads: meta loaded with it, or NULL */
    char *meta;      /* source writes (owned, via sl_part_set_meta): stored beside the position */
    void *src;       /* source's per-partition state */
    /* source writes: its event shape's state for this partition (event.h; the Kinesis shape:
     * the partition's struct sl_event_kinesis_tmpl), or NULL when the shape needs none */
    const void *event;
    struct sl_recq q; /* fetched, not yet acknowledged, oldest first */
    void *owner;      /* the mapping's per-partition state */
};

/* Returns a new partition with owned copies of id and name, or NULL on OOM. */
struct sl_part *sl_part_new(const char *id, const char *name);
void sl_part_free(struct sl_part *part);

/* Replaces part->meta with a copy of meta (NULL clears). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_part_set_meta(struct sl_part *part, const char *meta);

/* Replaces the loaded checkpoint (used by the mapping when it loads the store). */
SL_NODISCARD int sl_part_set_checkpoint(struct sl_part *part, const char *pos, const char *meta);

#endif

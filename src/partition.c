/* SPDX-License-Identifier: Apache-2.0 */
/* partition.c: the life of struct sl_part, the object a mapping and its source share for one
 * partition. The mapping decides when it is created and freed; the source only reads its
 * identity and checkpoint and fills its record queue. Loop thread. */
#include "partition.h"

#include "alloc.h"

struct sl_part *sl_part_new(const char *id, const char *name)
{
    struct sl_part *part = sl_calloc(1, sizeof(*part));
    if (!part) {
        return NULL;
    }
    part->id = sl_strdup(id);
    part->name = sl_strdup(name);
    if (!part->id || !part->name) {
        sl_part_free(part);
        return NULL;
    }
    sl_recq_init(&part->q);
    return part;
}

void sl_part_free(struct sl_part *part)
{
    if (!part) {
        return;
    }
    sl_free(part->id);
    sl_free(part->name);
    sl_free(part->ckpt_pos);
    sl_free(part->ckpt_meta);
    sl_free(part->meta);
    sl_recq_fini(&part->q);
    sl_free(part);
}

static int part_replace(char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = sl_strdup(value))) {
        return SL_ENOMEM;
    }
    sl_free(*field);
    *field = copy;
    return 0;
}

int sl_part_set_meta(struct sl_part *part, const char *meta)
{
    return part_replace(&part->meta, meta);
}

int sl_part_set_checkpoint(struct sl_part *part, const char *pos, const char *meta)
{
    if (part_replace(&part->ckpt_pos, pos) < 0 || part_replace(&part->ckpt_meta, meta) < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

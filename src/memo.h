/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_MEMO_H
#define SL_MEMO_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* What a failing batch had used up when its partition was revoked, keyed by the partition's
 * id and the text form of the batch's first position: taken back if the partition comes back
 * and a batch starts at the same record, so that rebalances never reset retry counts into an
 * endless loop. A ring of SL_MEMO_SLOTS memos, the oldest overwritten. Loop thread. */
struct sl_memo;

#define SL_MEMO_SLOTS 64

/* Returns an empty ring, or NULL on OOM. */
struct sl_memo *sl_memo_new(void);
/* NULL is a no-op. */
void sl_memo_free(struct sl_memo *mm);

/* Remembers the retry state of the batch starting at pos (borrowed text) of partition part_id
 * (borrowed). Out of memory it forgets, which only gives that batch its attempts again. */
void sl_memo_put(
    struct sl_memo *mm, const char *part_id, const char *pos, unsigned attempts, unsigned invokes);

/* Takes back (and forgets) the memo of part_id at pos. Returns false when there is none. */
bool sl_memo_take(struct sl_memo *mm,
                  const char *part_id,
                  const char *pos,
                  unsigned *ret_attempts,
                  unsigned *ret_invokes);

#endif

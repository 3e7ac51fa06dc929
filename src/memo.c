/* SPDX-License-Identifier: Apache-2.0 */
/* memo.c: the retry memos of a mapping's lanes. When a partition is revoked (a rebalance)
 * while its batch was failing, the lane leaves the batch's counted failures and invocations
 * here; when a batch starts at the same record of the same partition again, it takes them
 * back, so that a partition that keeps moving between consumers still reaches
 * MaximumRetryAttempts. The ring is small and bounded: forgetting a memo only gives a batch its
 * attempts again. It knows nothing of lanes or mappings. Loop thread. */
#include "memo.h"

#include <string.h>

#include "alloc.h"

struct sl_memo_slot {
    char *part_id; /* NULL: free */
    char *pos;
    unsigned attempts; /* counted failures */
    unsigned invokes;
};

struct sl_memo {
    struct sl_memo_slot slots[SL_MEMO_SLOTS];
    size_t next; /* the slot written next (the oldest once the ring is full) */
};

struct sl_memo *sl_memo_new(void)
{
    return sl_calloc(1, sizeof(struct sl_memo));
}

static void memo_clear(struct sl_memo_slot *s)
{
    sl_free(s->part_id);
    sl_free(s->pos);
    s->part_id = NULL;
    s->pos = NULL;
}

void sl_memo_free(struct sl_memo *mm)
{
    if (!mm) {
        return;
    }
    for (size_t i = 0; i < SL_MEMO_SLOTS; i++) {
        memo_clear(&mm->slots[i]);
    }
    sl_free(mm);
}

void sl_memo_put(
    struct sl_memo *mm, const char *part_id, const char *pos, unsigned attempts, unsigned invokes)
{
    char *id = sl_strdup(part_id);
    char *p = sl_strdup(pos);
    if (!id || !p) {
        sl_free(id);
        sl_free(p);
        return; /* forgetting only gives the batch its attempts again */
    }
    struct sl_memo_slot *s = &mm->slots[mm->next];
    memo_clear(s);
    *s = (struct sl_memo_slot){id, p, attempts, invokes};
    mm->next = (mm->next + 1) % SL_MEMO_SLOTS;
}

bool sl_memo_take(struct sl_memo *mm,
                  const char *part_id,
                  const char *pos,
                  unsigned *ret_attempts,
                  unsigned *ret_invokes)
{
    for (size_t i = 0; i < SL_MEMO_SLOTS; i++) {
        struct sl_memo_slot *s = &mm->slots[i];
        if (s->part_id && strcmp(s->pos, pos) == 0 && strcmp(s->part_id, part_id) == 0) {
            *ret_attempts = s->attempts;
            *ret_invokes = s->invokes;
            memo_clear(s);
            return true;
        }
    }
    return false;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* recq.c: a partition's queue of fetched records. Records and their bytes are appended at the
 * back and dropped from the front once acknowledged. Offsets into the arena are virtual (a
 * count of bytes ever pushed), so compaction moves the bytes without touching any record.
 * Positions are the sources' bytes, copied and handed back, never read: short ones inline in
 * the record (the usual case, no arena bytes), long ones after the record's meta bytes.
 * Loop thread; no logging. */
#include "recq.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "encoder.h"

/* The hot path pushes millions of these a second: keep them as small as they were when
 * positions were two 64-bit numbers. */
_Static_assert(sizeof(struct sl_record) == 48, "struct sl_record grew");

void sl_recq_init(struct sl_recq *q)
{
    memset(q, 0, sizeof(*q));
}

void sl_recq_fini(struct sl_recq *q)
{
    sl_free(q->recs);
    sl_free(q->arena);
    sl_recq_init(q);
}

static int recq_make_room_recs(struct sl_recq *q)
{
    if (q->tail < q->cap) {
        return 0;
    }
    if (q->head > 0 && q->head >= q->cap / 2) {
        memmove(q->recs, q->recs + q->head, (q->tail - q->head) * sizeof(*q->recs));
        q->tail -= q->head;
        q->head = 0;
        return 0;
    }
    size_t cap = q->cap ? q->cap * 2 : SL_RECQ_KEEP_RECS;
    struct sl_record *r = sl_realloc(q->recs, cap * sizeof(*r));
    if (!r) {
        return SL_ENOMEM;
    }
    q->recs = r;
    q->cap = cap;
    return 0;
}

static int recq_make_room_bytes(struct sl_recq *q, size_t n)
{
    if (q->arena_cap - q->arena_len >= n) {
        return 0;
    }
    size_t live = q->arena_len - q->arena_head;
    if (q->arena_head > 0 && q->arena_head >= live && q->arena_cap - live >= n) {
        memmove(q->arena, q->arena + q->arena_head, live);
        q->arena_base += q->arena_head;
        q->arena_len = live;
        q->arena_head = 0;
        return 0;
    }
    size_t cap = q->arena_cap ? q->arena_cap : SL_RECQ_KEEP_BYTES;
    while (cap - q->arena_len < n) {
        if (cap > SIZE_MAX / 2) {
            return SL_ENOMEM;
        }
        cap *= 2;
    }
    char *a = sl_realloc(q->arena, cap);
    if (!a) {
        return SL_ENOMEM;
    }
    q->arena = a;
    q->arena_cap = cap;
    return 0;
}

int sl_recq_push(struct sl_recq *q,
                 const void *data,
                 uint32_t len,
                 const void *meta,
                 uint32_t meta_len,
                 const void *pos,
                 size_t pos_len,
                 int64_t arrival_ms,
                 uint32_t flags)
{
    assert(pos_len >= 1 && pos_len <= SL_REC_POS_MAX && flags <= UINT16_MAX);
    size_t pos_arena = pos_len > SL_REC_POS_INLINE ? pos_len : 0;
    size_t n = (size_t)len + meta_len + pos_arena;
    if (recq_make_room_recs(q) < 0 || recq_make_room_bytes(q, n) < 0) {
        return SL_ENOMEM;
    }
    struct sl_record *rec = &q->recs[q->tail++];
    rec->voff = q->arena_base + q->arena_len;
    rec->len = len;
    rec->meta_len = meta_len;
    rec->flags = (uint16_t)flags;
    rec->pos_len = (uint16_t)pos_len;
    rec->lane = 0;
    rec->arrival_ms = arrival_ms;
    if (pos_arena) {
        memcpy(q->arena + q->arena_len + len + meta_len, pos, pos_len);
    } else {
        memcpy(rec->pos_inline, pos, pos_len);
    }
    if (len) {
        memcpy(q->arena + q->arena_len, data, len);
    }
    if (meta_len) {
        memcpy(q->arena + q->arena_len + len, meta, meta_len);
    }
    q->arena_len += n;
    return 0;
}

void sl_recq_drop(struct sl_recq *q, size_t n)
{
    if (n == 0) {
        return;
    }
    q->dropped += n;
    q->head += n;
    if (q->head == q->tail) {
        sl_recq_clear(q);
        return;
    }
    const struct sl_record *first = &q->recs[q->head];
    q->arena_head = (size_t)(first->voff - q->arena_base);
}

void sl_recq_clear(struct sl_recq *q)
{
    q->dropped += q->tail - q->head;
    q->head = q->tail = 0;
    q->arena_base += q->arena_len;
    q->arena_head = q->arena_len = 0;
    /* An empty queue keeps at most its first allocation: what one partition held at its peak
     * is not kept for ever (a mapping of hundreds of partitions would hold each one's peak). */
    if (q->cap > SL_RECQ_KEEP_RECS) {
        sl_free(q->recs);
        q->recs = NULL;
        q->cap = 0;
    }
    if (q->arena_cap > SL_RECQ_KEEP_BYTES) {
        sl_free(q->arena);
        q->arena = NULL;
        q->arena_cap = 0;
    }
}

int sl_recq_pos_compare_u64(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)ctx;
    assert(a_len >= sizeof(uint64_t) && b_len >= sizeof(uint64_t));
    uint64_t x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    return x < y ? -1 : x > y;
}

int sl_recq_payload(const struct sl_recq *q,
                    const struct sl_record *rec,
                    struct sl_buf *scratch,
                    const char **ret_data,
                    size_t *ret_len)
{
    const char *data = rec->len ? sl_recq_data(q, rec) : "";
    if (!(rec->flags & SL_REC_BASE64)) {
        *ret_data = data;
        *ret_len = rec->len;
        return 0;
    }
    sl_buf_truncate(scratch, 0);
    int r = sl_enc_base64_decode(scratch, data, rec->len);
    if (r < 0) {
        return r;
    }
    *ret_data = scratch->len ? scratch->data : "";
    *ret_len = scratch->len;
    return 0;
}

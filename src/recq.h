/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_RECQ_H
#define SL_RECQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "err.h"

/* What an empty queue keeps allocated (records, arena bytes); beyond it, it frees its buffers. */
#define SL_RECQ_KEEP_RECS  256
#define SL_RECQ_KEEP_BYTES (64 * 1024)

/* A record's position is bytes its source chose (sources/README.md, "Positions"): the core
 * never reads them; the source's compare_pos, format_pos and format_item_id do. Up to
 * SL_REC_POS_INLINE bytes live in the record itself (two 64-bit offsets fit: files, Kafka,
 * Redis stream ids), longer ones (a Kinesis sequence number) in the arena after the meta
 * bytes. At most SL_REC_POS_MAX bytes. */
#define SL_REC_POS_INLINE 16
#define SL_REC_POS_MAX    255

/* Record flags. The source sets SL_REC_OVERSIZE and SL_REC_BASE64; the others are the
 * mapping's. */
/* The source could not keep the bytes (over its size limit): len is 0, its position still
 * says where it was (and the checkpoint passes over all of it). */
#define SL_REC_OVERSIZE 0x1u
#define SL_REC_FILTERED 0x2u /* matched no filter pattern: never delivered */
#define SL_REC_TAKEN    0x4u /* part of a batch */
#define SL_REC_DONE     0x8u /* delivered, filtered out, or handed to the on-failure path */
#define SL_REC_WINDOWED 0x10u
/* The bytes are the payload as standard padded base64 text (len counts that text), as the
 * source received it (Kinesis's Data): an event that carries base64 copies them as they are,
 * and whoever needs the payload itself reads it through sl_recq_payload(). */
#define SL_REC_BASE64 0x20u

/* A record's lane when any lane may take it (a queue's record without a group). */
#define SL_REC_LANE_ANY UINT32_MAX /* delivered in a tumbling window that has not closed yet */

/* One record of a partition. Its bytes live in the queue's arena; its position is the
 * source's, opaque here (file: the byte offsets of the line and of the line after it; Kafka:
 * the offset). 48 bytes: the queue holds millions of them at full speed. */
struct sl_record {
    uint64_t voff;      /* virtual arena offset of the data; see sl_recq_data() */
    uint32_t len;       /* data bytes */
    uint32_t meta_len;  /* source-specific bytes stored right after the data (key, headers) */
    uint16_t flags;     /* SL_REC_* */
    uint16_t pos_len;   /* position bytes; see sl_recq_pos() */
    uint32_t lane;      /* the mapping's: which of a partition's parallel lanes takes it */
    int64_t arrival_ms; /* wall clock, Unix epoch milliseconds */
    /* The position when pos_len <= SL_REC_POS_INLINE; else unused (it follows the meta bytes
     * in the arena). Read it through sl_recq_pos(), never here. */
    unsigned char pos_inline[SL_REC_POS_INLINE];
};

/* The records of one partition that were fetched and not yet acknowledged, oldest first. The
 * queue owns the bytes (sources copy into it), so a batch is just a run of records at the
 * front: nothing is copied again until the event is encoded. Dropping from the front is O(1)
 * amortised: the arena is compacted once at least half of it is dead. Loop thread. */
struct sl_recq {
    struct sl_record *recs;
    size_t head;      /* index of the oldest live record */
    uint64_t dropped; /* records ever dropped: the absolute index of the oldest live one */
    size_t tail;      /* one past the newest */
    size_t cap;
    char *arena;
    uint64_t arena_base; /* virtual offset of arena[0] */
    size_t arena_head;   /* arena bytes before this are dead */
    size_t arena_len;
    size_t arena_cap;
};

void sl_recq_init(struct sl_recq *q);
void sl_recq_fini(struct sl_recq *q);

/* Appends a record; copies data (len bytes), meta (meta_len bytes) and its position (pos_len
 * bytes, 1..SL_REC_POS_MAX, as the source's format_pos and compare_pos read them). Returns 0
 * or SL_ENOMEM (the queue is unchanged then). */
SL_NODISCARD int sl_recq_push(struct sl_recq *q,
                              const void *data,
                              uint32_t len,
                              const void *meta,
                              uint32_t meta_len,
                              const void *pos,
                              size_t pos_len,
                              int64_t arrival_ms,
                              uint32_t flags);

static inline size_t sl_recq_count(const struct sl_recq *q)
{
    return q->tail - q->head;
}

/* Bytes of data and meta held by live records. */
static inline size_t sl_recq_bytes(const struct sl_recq *q)
{
    return q->arena_len - q->arena_head;
}

/* The i-th live record (0 = oldest). Borrowed; valid until the next push or drop. */
static inline const struct sl_record *sl_recq_at(const struct sl_recq *q, size_t i)
{
    return &q->recs[q->head + i];
}

static inline const char *sl_recq_data(const struct sl_recq *q, const struct sl_record *rec)
{
    return q->arena + (size_t)(rec->voff - q->arena_base);
}

static inline const char *sl_recq_meta(const struct sl_recq *q, const struct sl_record *rec)
{
    return sl_recq_data(q, rec) + rec->len;
}

/* The payload's size in bytes: len, or what the base64 text decodes to (SL_REC_BASE64). */
static inline size_t sl_recq_payload_len(const struct sl_recq *q, const struct sl_record *rec)
{
    if (!(rec->flags & SL_REC_BASE64) || rec->len < 4) {
        return (rec->flags & SL_REC_BASE64) ? 0 : rec->len;
    }
    const char *end = sl_recq_data(q, rec) + rec->len;
    return (size_t)rec->len / 4 * 3 - (end[-1] == '=') - (end[-2] == '=');
}

/* The payload's bytes: the record's own (*ret_data borrowed from the queue), or for an
 * SL_REC_BASE64 record its text decoded into scratch (*ret_data = scratch->data; scratch is
 * emptied first). Returns 0, SL_EINVAL (not base64) or SL_ENOMEM. */
SL_NODISCARD int sl_recq_payload(const struct sl_recq *q,
                                 const struct sl_record *rec,
                                 struct sl_buf *scratch,
                                 const char **ret_data,
                                 size_t *ret_len);

/* The record's position: rec->pos_len bytes, borrowed like the data. q is read only for a
 * position longer than SL_REC_POS_INLINE (a record outside any queue may pass NULL for a short
 * one). */
static inline const unsigned char *sl_recq_pos(const struct sl_recq *q, const struct sl_record *rec)
{
    if (rec->pos_len <= SL_REC_POS_INLINE) {
        return rec->pos_inline;
    }
    return (const unsigned char *)sl_recq_meta(q, rec) + rec->meta_len;
}

/* The i-th native 64-bit number of a position made of them (file offsets, Kafka offsets). */
static inline uint64_t
sl_recq_pos_u64(const struct sl_recq *q, const struct sl_record *rec, size_t i)
{
    uint64_t v;
    memcpy(&v, sl_recq_pos(q, rec) + i * sizeof(v), sizeof(v));
    return v;
}

/* A compare_pos for positions that start with a native 64-bit number ordering them (files,
 * Kafka): compares those numbers. */
int sl_recq_pos_compare_u64(void *ctx, const void *a, size_t a_len, const void *b, size_t b_len);

static inline struct sl_record *sl_recq_at_mut(struct sl_recq *q, size_t i)
{
    return &q->recs[q->head + i];
}

/* Drops the n oldest records (n <= count). */
void sl_recq_drop(struct sl_recq *q, size_t n);

/* Drops every record; buffers grown beyond SL_RECQ_KEEP_RECS / SL_RECQ_KEEP_BYTES are freed. */
void sl_recq_clear(struct sl_recq *q);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_LANEBATCH_H
#define SL_LANEBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batcher.h"
#include "err.h"
#include "invoker.h"
#include "partition.h"
#include "progress.h"

struct sl_source_ops;

/* The batch a lane carries: its records (each a partition's queue entry, by absolute index; grouped
 * by partition, each group in position order), the part being tried (cur) and the parts still to
 * try after it (left by the payload limit and by bisection; the last pushed is next), and the
 * reorderings verdicts need: expired records and the records a partial batch response says were
 * done move to the front of cur, each group keeping its order. Records are read through the
 * partition's queue each time, so the batch stays valid while sources append. It calls nothing
 * above it. Loop thread. */
struct sl_lanebatch;

struct sl_lanebatch_range {
    size_t lo; /* indices into the batch */
    size_t hi;
};

/* An itemIdentifier fits this many bytes (a Kafka topic name is up to 249 characters). */
#define SL_LANEBATCH_ID_MAX 320

/* Returns an empty batch whose records are named by ops (borrowed), or NULL on OOM. */
struct sl_lanebatch *sl_lanebatch_new(const struct sl_source_ops *ops, void *src_ctx);
/* NULL is a no-op. */
void sl_lanebatch_free(struct sl_lanebatch *b);

/* Empties the batch, with room for n records. Returns false when out of memory. */
SL_NODISCARD bool sl_lanebatch_reserve(struct sl_lanebatch *b, size_t n);
/* Appends the record at absolute index abs of part's queue (part_tag: the caller's handle for the
 * partition; prog its progress), within the room reserved. */
void sl_lanebatch_add(struct sl_lanebatch *b,
                      void *part_tag,
                      struct sl_part *part,
                      struct sl_progress_part *prog,
                      uint64_t abs);
/* Empties the batch. */
void sl_lanebatch_clear(struct sl_lanebatch *b);
size_t sl_lanebatch_count(const struct sl_lanebatch *b);

/* cur becomes the whole batch, with nothing after it. */
void sl_lanebatch_begin(struct sl_lanebatch *b);
struct sl_lanebatch_range sl_lanebatch_cur(const struct sl_lanebatch *b);
/* cur starts at lo (records before it were handled, or are handled again). */
void sl_lanebatch_set_cur_lo(struct sl_lanebatch *b, size_t lo);
/* cur ends at at; [at, its end) is tried next. Returns false when out of memory. */
SL_NODISCARD bool sl_lanebatch_cut(struct sl_lanebatch *b, size_t at);
/* cur becomes the next part to try. Returns false when none is left. */
bool sl_lanebatch_next(struct sl_lanebatch *b);

void *sl_lanebatch_tag(const struct sl_lanebatch *b, size_t i);
struct sl_part *sl_lanebatch_part(const struct sl_lanebatch *b, size_t i);
struct sl_record *sl_lanebatch_rec(const struct sl_lanebatch *b, size_t i);
uint64_t sl_lanebatch_abs(const struct sl_lanebatch *b, size_t i);
/* True when record i is the first of its partition's group from lo on. */
bool sl_lanebatch_starts_group(const struct sl_lanebatch *b, size_t i, size_t lo);

/* Marks the records of r done and moves the checkpoint of each partition they belong to. */
void sl_lanebatch_finish(struct sl_lanebatch *b, struct sl_lanebatch_range r);
/* The records of r, for encoding (borrowed until the next call). */
const struct sl_batch_ref *sl_lanebatch_refs(struct sl_lanebatch *b, struct sl_lanebatch_range r);
/* The itemIdentifier of record i (the source's text form of its position) in buf
 * (SL_LANEBATCH_ID_MAX bytes); empty if it does not fit. Returns buf. */
const char *sl_lanebatch_item_id(const struct sl_lanebatch *b, size_t i, char *buf);
/* "12 records of orders-0 from 5 to 16", or for several partitions "30 records of orders-0 from 5
 * to 16, orders-1 from 0 to 17": for logs. Returns buf. */
const char *sl_lanebatch_describe(const struct sl_lanebatch *b,
                                  struct sl_lanebatch_range r,
                                  char *buf,
                                  size_t len);

/* The records of cur that arrived before oldest_ms (wall clock): the leading ones of each partition
 * (a record is judged only once every record before it in its partition is), moved to the front of
 * cur. Returns how many, or SIZE_MAX when out of memory. */
size_t sl_lanebatch_expired_front(struct sl_lanebatch *b, int64_t oldest_ms);

/* Reads a partial batch response against cur's item identifiers. When some records failed, each
 * partition of cur resumes at its own lowest failed record: the records before it move to the front
 * of cur, and ret->lowest counts them (for one partition that is the order already: the streams
 * rule). */
void sl_lanebatch_read_partial(struct sl_lanebatch *b,
                               const struct sl_invoke_result *res,
                               struct sl_partial *ret);

#endif

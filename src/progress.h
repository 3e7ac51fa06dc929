/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_PROGRESS_H
#define SL_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"
#include "err.h"
#include "partition.h"

/* A stream mapping's progress: which records are done, how far each partition's checkpoint
 * may move (the contiguous low-watermark of done records), the write of that checkpoint to the
 * store, the acknowledgement to the source after it, and how far a partition may run ahead of
 * the disk. It tells the layer above what it must know through the host interface it is given
 * and never calls that layer otherwise. Loop thread. */
struct sl_progress;
struct sl_progress_part;

/* What progress tells the layer above. Every member is set (the host supplies defaults);
 * callbacks are called on the loop thread, never from inside sl_progress_new. */
struct sl_progress_host {
    void *arg;
    /* Writes the text form of the checkpoint that follows last (the position after it) into
     * buf (len bytes). Returns 0 or a negative SL_E*; on error the checkpoint does not move. */
    int (*format_pos)(
        void *arg, struct sl_part *part, const struct sl_record *last, char *buf, size_t len);
    /* Acknowledges to the source every record of part up to and including last (Kafka: store
     * the offset). Called only after the checkpoint was recorded in the store. */
    void (*ack)(void *arg, struct sl_part *part, const struct sl_record *last);
    /* n done records left the front of part's queue (their memory is free now). */
    void (*dropped)(void *arg, struct sl_part *part, size_t n);
    /* A checkpoint write reached the disk: partitions that waited for it may proceed. */
    void (*may_proceed)(void *arg);
};

struct sl_progress_conf {
    const char *inst;           /* borrowed: the mapping's name, for logs */
    bool keeps_positions;       /* the source keeps its own positions: acknowledge only, the
                                   store is neither read nor written */
    size_t max_unsaved_batches; /* advances of a partition that may wait for the disk, >= 1 */
};

/* Returns a progress over ck (borrowed; it must outlive the progress) that reports to host
 * (copied). Registers itself as ck's durable callback. ck may be NULL when conf says
 * keeps_positions (a queue has no store at all). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_progress_new(struct sl_ckpt *ck,
                                 const struct sl_progress_conf *conf,
                                 const struct sl_progress_host *host,
                                 struct sl_progress **ret_pg);
/* Unregisters from the store and frees. Partitions must be freed separately (before or
 * after). NULL is a no-op. */
void sl_progress_free(struct sl_progress *pg);

/* Starts tracking part (borrowed: it must outlive the returned state, or at least every call
 * on it but _free). Unless the source keeps positions, loads part's checkpoint from the store
 * into part->ckpt_pos / ckpt_meta. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_progress_part_new(struct sl_progress *pg,
                                      struct sl_part *part,
                                      struct sl_progress_part **ret_pp);
void sl_progress_part_free(struct sl_progress_part *pp);

/* The source records where an empty partition starts (a file read from its end): written to
 * the store, and nothing of the partition may be invoked before it is on disk (see
 * sl_progress_part_waits_for_disk). A no-op where the source keeps positions. Returns 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_progress_part_set_start(struct sl_progress_part *pp, const char *pos);

/* Moves the checkpoint past the done records (SL_REC_DONE) at the front of the partition's
 * queue, acknowledges them to the source and drops them: the contiguous low-watermark, so a
 * record not done stops it whatever is done after it. Does nothing once revoked. Returns how
 * many records were dropped. */
size_t sl_progress_part_advance(struct sl_progress_part *pp);

/* The partition was taken away: nothing more of it is checkpointed or acknowledged. */
void sl_progress_part_revoke(struct sl_progress_part *pp);

/* True when the partition has max_unsaved_batches checkpoints waiting for the disk, or the
 * start its source recorded is not on disk yet: it must not start another batch. */
bool sl_progress_part_waits_for_disk(struct sl_progress_part *pp);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* progress.c: how far a stream mapping has got, per partition. It owns the rules of DESIGN.md
 * that concern acknowledgement:
 *   1. a record's position is checkpointed only once it and every record before it in its
 *      partition are done (delivered, filtered out, or handed to the on-failure path): the
 *      checkpoint is the contiguous low-watermark of done records, never the highest done one;
 *   2. the source is acknowledged only after the checkpoint was recorded in the store;
 *   3. a partition runs at most max_unsaved_batches checkpoints ahead of the disk, and not at
 *      all before the start its source recorded is on disk, so a crash repeats a bounded number
 *      of batches and never skips one.
 * It is given the checkpoint store and a host interface (format a position, acknowledge, "records
 * dropped", "partitions may proceed") and calls nothing of the layers above it: it does not
 * know lanes, batches or the mapping. Records are marked done by those layers (SL_REC_DONE in
 * the partition's queue); progress only reads the marks and drops what it passed. Loop thread.
 */
#include "progress.h"

#include <assert.h>

#include "alloc.h"
#include "log.h"

#define PROGRESS_COMP    "progress"
#define PROGRESS_POS_MAX 128

struct sl_progress {
    struct sl_ckpt *ck;
    struct sl_progress_host host;
    const char *inst;
    bool keeps_positions;
    size_t max_unsaved;
};

/* Per-partition state. REVOKED is final; WAITING and RUNNING are told apart by comparing the
 * store's durable generation with start_gen, which moves on its own thread's schedule, so the
 * state enum records only what progress decides itself. */
enum sl_progress_state {
    SL_PROGRESS_RUNNING, /* checkpoints move with the low-watermark */
    SL_PROGRESS_REVOKED, /* taken away: nothing more is checkpointed or acknowledged */
    SL_PROGRESS_STATE_COUNT
};

struct sl_progress_part {
    struct sl_progress *pg;
    struct sl_part *part;
    enum sl_progress_state state;
    uint64_t *undurable; /* store generations of checkpoints not on disk yet */
    size_t n_undurable;
    uint64_t start_gen; /* store generation of the start the source recorded: nothing is
                           invoked before it is on disk */
};

static void progress_durable_cb(void *arg)
{
    struct sl_progress *pg = arg;
    pg->host.may_proceed(pg->host.arg);
}

int sl_progress_new(struct sl_ckpt *ck,
                    const struct sl_progress_conf *conf,
                    const struct sl_progress_host *host,
                    struct sl_progress **ret_pg)
{
    assert(conf->max_unsaved_batches >= 1);
    assert(host->format_pos && host->ack && host->dropped && host->may_proceed);
    struct sl_progress *pg = sl_calloc(1, sizeof(*pg));
    if (!pg) {
        return SL_ENOMEM;
    }
    pg->ck = ck;
    pg->host = *host;
    pg->inst = conf->inst;
    pg->keeps_positions = conf->keeps_positions;
    pg->max_unsaved = conf->max_unsaved_batches;
    assert(ck || conf->keeps_positions);
    if (ck) {
        sl_ckpt_on_durable(ck, progress_durable_cb, pg);
    }
    *ret_pg = pg;
    return 0;
}

void sl_progress_free(struct sl_progress *pg)
{
    if (!pg) {
        return;
    }
    if (pg->ck) {
        sl_ckpt_on_durable(pg->ck, NULL, NULL);
    }
    sl_free(pg);
}

int sl_progress_part_new(struct sl_progress *pg,
                         struct sl_part *part,
                         struct sl_progress_part **ret_pp)
{
    struct sl_progress_part *pp = sl_calloc(1, sizeof(*pp));
    uint64_t *undurable = sl_calloc(pg->max_unsaved, sizeof(uint64_t));
    struct sl_ckpt_entry e;
    if (!pp || !undurable ||
        (!pg->keeps_positions && sl_ckpt_get(pg->ck, part->id, &e) &&
         sl_part_set_checkpoint(part, e.pos, e.meta) < 0)) {
        sl_free(undurable);
        sl_free(pp);
        return SL_ENOMEM;
    }
    pp->pg = pg;
    pp->part = part;
    pp->state = SL_PROGRESS_RUNNING;
    pp->undurable = undurable;
    *ret_pp = pp;
    return 0;
}

void sl_progress_part_free(struct sl_progress_part *pp)
{
    if (!pp) {
        return;
    }
    sl_free(pp->undurable);
    sl_free(pp);
}

int sl_progress_part_set_start(struct sl_progress_part *pp, const char *pos)
{
    struct sl_progress *pg = pp->pg;
    if (pg->keeps_positions) {
        return 0;
    }
    assert(sl_recq_count(&pp->part->q) == 0);
    int r = sl_ckpt_set(pg->ck, pp->part->id, pos, pp->part->meta);
    if (r < 0) {
        return r;
    }
    pp->start_gen = sl_ckpt_generation(pg->ck);
    return 0;
}

size_t sl_progress_part_advance(struct sl_progress_part *pp)
{
    struct sl_progress *pg = pp->pg;
    if (pp->state == SL_PROGRESS_REVOKED) {
        return 0;
    }
    struct sl_part *part = pp->part;
    size_t count = sl_recq_count(&part->q);
    size_t n = 0;
    while (n < count && (sl_recq_at(&part->q, n)->flags & SL_REC_DONE)) {
        n++;
    }
    if (n == 0) {
        return 0;
    }
    const struct sl_record *last = sl_recq_at(&part->q, n - 1);
    if (pg->keeps_positions) {
        pg->host.ack(pg->host.arg, part, last);
        sl_recq_drop(&part->q, n);
        pg->host.dropped(pg->host.arg, part, n);
        return n;
    }
    char pos[PROGRESS_POS_MAX];
    int r = pg->host.format_pos(pg->host.arg, part, last, pos, sizeof(pos));
    if (r == 0) {
        r = sl_ckpt_set(pg->ck, part->id, pos, part->meta);
    }
    if (r == 0 && pp->n_undurable < pg->max_unsaved) {
        pp->undurable[pp->n_undurable++] = sl_ckpt_generation(pg->ck);
    }
    if (r == 0) {
        pg->host.ack(pg->host.arg, part, last);
    }
    if (r < 0) {
        /* Only OOM gets here. Not moving the checkpoint repeats records after a crash; it
         * never skips one. */
        sl_log_error(PROGRESS_COMP, pg->inst, "cannot record the checkpoint of %s: %s", part->name,
                     sl_strerror(r));
    }
    sl_recq_drop(&part->q, n);
    pg->host.dropped(pg->host.arg, part, n);
    return n;
}

void sl_progress_part_revoke(struct sl_progress_part *pp)
{
    pp->state = SL_PROGRESS_REVOKED;
}

bool sl_progress_part_waits_for_disk(struct sl_progress_part *pp)
{
    if (pp->pg->keeps_positions) {
        return false; /* nothing is written */
    }
    uint64_t durable = sl_ckpt_durable_generation(pp->pg->ck);
    if (pp->start_gen > durable) {
        return true;
    }
    size_t n = 0;
    for (size_t i = 0; i < pp->n_undurable; i++) {
        if (pp->undurable[i] > durable) {
            pp->undurable[n++] = pp->undurable[i];
        }
    }
    pp->n_undurable = n;
    return n >= pp->pg->max_unsaved;
}

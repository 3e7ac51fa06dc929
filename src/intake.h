/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_INTAKE_H
#define SL_INTAKE_H

#include <stddef.h>

#include "filter.h"
#include "partition.h"

struct sl_source_ops;

/* What becomes of the records a source just appended to a partition's queue, before any lane
 * sees them: those no filter pattern matches are done at once (FilteredOutEventCount), and
 * each record goes to the lane its partition key hashes to. Loop thread. */
struct sl_intake {
    const struct sl_source_ops *ops; /* borrowed */
    void *src_ctx;
    const struct sl_filter *filter; /* NULL: every record passes */
    size_t n_lanes;                 /* ParallelizationFactor */
};

/* Sorts the records of part's queue from index from to its end. Returns how many were
 * filtered out (flagged SL_REC_FILTERED | SL_REC_DONE). */
size_t sl_intake_sort(const struct sl_intake *in, struct sl_part *part, size_t from);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_INTAKE_H
#define SL_INTAKE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "partition.h"

struct sl_source_ops;

/* What becomes of the records a source just appended to a partition's queue, before any lane
 * sees them: those no FilterCriteria pattern matches are done at once (FilteredOutEventCount),
 * and each record goes to the lane its partition key hashes to. Loop thread. */
struct sl_intake;

/* Compiles criteria (FilterCriteria, or NULL) for records of ops (borrowed, with src_ctx) that
 * go to n_lanes lanes per partition. Returns 0 and *ret_in, SL_ECONFIG with errbuf filled (a
 * bad pattern, or a source that cannot filter), or SL_ENOMEM. */
SL_NODISCARD int sl_intake_new(const cJSON *criteria,
                               const struct sl_source_ops *ops,
                               void *src_ctx,
                               size_t n_lanes,
                               struct sl_intake **ret_in,
                               char *errbuf,
                               size_t errlen);
/* NULL is a no-op. */
void sl_intake_free(struct sl_intake *in);

/* Sorts the records of part's queue from index from to its end. Returns how many were
 * filtered out (flagged SL_REC_FILTERED | SL_REC_DONE). */
size_t sl_intake_sort(const struct sl_intake *in, struct sl_part *part, size_t from);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* intake.c: the first look at records a source appended. It compiles FilterCriteria and
 * applies them to the
 * source's filter document of each record (a record too large to keep is never filtered: it
 * goes to the on-failure path), and with ParallelizationFactor > 1 each record is given the
 * lane its partition key hashes to, so that one key stays in order (DESIGN.md rule 2); a queue's
 * record without a group (an empty key) may go to any lane, as it has no order. It
 * only flags records; moving the checkpoint past filtered ones is the caller's. Loop thread. */
#include "intake.h"

#include <stdbool.h>
#include <stdint.h>

#include <stdio.h>

#include "alloc.h"
#include "filter.h"
#include "hash.h"
#include "source.h"

struct sl_intake {
    const struct sl_source_ops *ops;
    void *src_ctx;
    struct sl_filter *filter; /* NULL: every record passes */
    size_t n_lanes;           /* ParallelizationFactor (a queue: its lanes) */
    bool queue;               /* a queue source: a record without a group goes to any lane */
};

int sl_intake_new(const cJSON *criteria,
                  const struct sl_source_ops *ops,
                  void *src_ctx,
                  size_t n_lanes,
                  struct sl_intake **ret_in,
                  char *errbuf,
                  size_t errlen)
{
    struct sl_intake *in = sl_calloc(1, sizeof(*in));
    if (!in) {
        return SL_ENOMEM;
    }
    *in = (struct sl_intake){.ops = ops,
                             .src_ctx = src_ctx,
                             .n_lanes = n_lanes,
                             .queue = ops->caps->model == SL_DELIVERY_QUEUE};
    int r = criteria ? sl_filter_compile(criteria, &in->filter, errbuf, errlen) : 0;
    if (r == 0 && in->filter && sl_filter_count(in->filter) == 0) {
        sl_filter_free(in->filter);
        in->filter = NULL;
    }
    if (r == 0 && in->filter && !ops->filters) {
        (void)snprintf(errbuf, errlen, "%s sources cannot filter", ops->name);
        r = SL_ECONFIG;
    }
    if (r < 0) {
        sl_intake_free(in);
        return r;
    }
    *ret_in = in;
    return 0;
}

void sl_intake_free(struct sl_intake *in)
{
    if (!in) {
        return;
    }
    sl_filter_free(in->filter);
    sl_free(in);
}

size_t sl_intake_sort(const struct sl_intake *in, struct sl_part *part, size_t from)
{
    struct sl_recq *q = &part->q;
    size_t count = sl_recq_count(q);
    size_t filtered = 0;
    if (!in->filter && in->n_lanes <= 1 && !in->queue) {
        return 0;
    }
    for (size_t i = from; i < count; i++) {
        struct sl_record *rec = sl_recq_at_mut(q, i);
        if (in->filter && !(rec->flags & SL_REC_OVERSIZE)) {
            cJSON *doc = in->ops->filter_doc(in->src_ctx, part, rec);
            if (doc &&
                !sl_filter_match_fields(in->filter, doc, in->ops->event->filter_payload_fields,
                                        in->ops->event->filter_payload_mismatch_ignored)) {
                rec->flags |= SL_REC_FILTERED | SL_REC_DONE;
                filtered++;
            }
            cJSON_Delete(doc);
        }
        if (in->n_lanes > 1 || in->queue) {
            const char *key = NULL;
            size_t len = in->ops->record_key(in->src_ctx, part, rec, &key);
            rec->lane =
                in->queue && len == 0
                    ? SL_REC_LANE_ANY
                    : (uint32_t)(sl_hash_fnv1a(key, len, SL_HASH_FNV1A_BASIS) % in->n_lanes);
        }
    }
    return filtered;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* intake.c: the first look at records a source appended. FilterCriteria are applied to the
 * source's filter document of each record (a record too large to keep is never filtered: it
 * goes to the on-failure path), and with ParallelizationFactor > 1 each record is given the
 * lane its partition key hashes to, so that one key stays in order (DESIGN.md rule 2). It
 * only flags records; moving the checkpoint past filtered ones is the caller's. Loop thread. */
#include "intake.h"

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "source.h"

static uint64_t intake_key_hash(const char *key, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

size_t sl_intake_sort(const struct sl_intake *in, struct sl_part *part, size_t from)
{
    struct sl_recq *q = &part->q;
    size_t count = sl_recq_count(q);
    size_t filtered = 0;
    if (!in->filter && in->n_lanes <= 1) {
        return 0;
    }
    for (size_t i = from; i < count; i++) {
        struct sl_record *rec = sl_recq_at_mut(q, i);
        if (in->filter && !(rec->flags & SL_REC_OVERSIZE)) {
            cJSON *doc = in->ops->filter_doc(in->src_ctx, part, rec);
            if (doc && !sl_filter_match_fields(in->filter, doc, in->ops->filter_payload_fields,
                                               in->ops->filter_payload_mismatch_ignored)) {
                rec->flags |= SL_REC_FILTERED | SL_REC_DONE;
                filtered++;
            }
            cJSON_Delete(doc);
        }
        if (in->n_lanes > 1) {
            const char *key = NULL;
            size_t len = in->ops->record_key(in->src_ctx, part, rec, &key);
            rec->lane = (uint32_t)(intake_key_hash(key, len) % in->n_lanes);
        }
    }
    return filtered;
}

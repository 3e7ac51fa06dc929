/* SPDX-License-Identifier: Apache-2.0 */
/* sink.c: the registry of sink adapters. It owns the list of the kinds sluice can write to (the
 * generated sl_adapters.h's SL_SINKS: what this build has, in lookup order) and picks the one
 * that serves a destination by asking each, in order, whether it handles it. The SQS sink comes
 * before the HTTP one because a queue URL is also an http(s) URL (the HTTP sink declines those
 * anyway, so exactly one sink handles any destination). It also turns a sink's capabilities
 * into the on-failure path's plan (sl_sink_plan_for), so the core never asks a sink's name.
 * Pure; any thread. */
#include "sink.h"

#include <assert.h>
#include <stddef.h>

#define SINK_ENTRY(name) &sl_sink_##name,
static const struct sl_sink_ops *const sink_all[] = {SL_SINKS(SINK_ENTRY)};
#undef SINK_ENTRY

const struct sl_sink_ops *sl_sink_for(const char *destination)
{
    if (!destination) {
        return NULL;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(sink_all); i++) {
        if (sink_all[i]->handles(destination)) {
            return sink_all[i];
        }
    }
    return NULL;
}

const struct sl_sink_ops *const *sl_sink_all(size_t *ret_n)
{
    *ret_n = SL_ARRAY_LEN(sink_all);
    return sink_all;
}

struct sl_sink_plan sl_sink_plan_for(const struct sl_sink_ops *ops, size_t n_records)
{
    assert(n_records > 0);
    struct sl_sink_plan plan = {
        .n_records = ops->one_doc_per_record ? 1 : n_records,
        .per_record = ops->one_doc_per_record,
        .with_payload = ops->keeps_payload,
    };
    return plan;
}

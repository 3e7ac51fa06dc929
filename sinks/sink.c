/* SPDX-License-Identifier: Apache-2.0 */
/* sink.c: the registry of sink adapters. It owns the list of the kinds sluice can write to (the
 * generated sl_adapters.h's SL_SINKS: what this build has, in lookup order) and picks the one
 * that serves a destination by asking each, in order, whether it handles it. The SQS sink comes
 * before the HTTP one because a queue URL is also an http(s) URL (the HTTP sink declines those
 * anyway, so exactly one sink handles any destination). It also turns a sink's capabilities
 * into the on-failure path's plan (sl_sink_plan_for), so the core never asks a sink's name,
 * and delivers a batch of documents through a sink that writes one at a time
 * (sl_sink_deliver's default: the core calls one operation whatever the sink). The registry
 * and the plan are pure (any thread); delivering runs on the loop thread. */
#include "sink.h"

#include <assert.h>
#include <stddef.h>

#include "alloc.h"

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

/* One delivery by the default: the documents' writes in flight, and their results so far. */
struct sink_each {
    sl_sink_deliver_cb cb;
    void *arg;
    size_t pending; /* writes started and not answered */
    size_t n;
    struct sl_sink_result *results;
    char **details; /* owned copies of the failures' details */
};

/* The slot a write's callback fills: its delivery and its document's index. */
struct sink_each_slot {
    struct sink_each *each;
    size_t i;
};

static void sink_each_free(struct sink_each *each, struct sink_each_slot *slots)
{
    for (size_t i = 0; i < each->n; i++) {
        sl_free(each->details[i]);
    }
    sl_free(each->details);
    sl_free(each->results);
    sl_free(slots);
    sl_free(each);
}

static void sink_each_result(struct sink_each *each, size_t i, int err, const char *detail)
{
    struct sl_sink_result *res = &each->results[i];
    res->err = err;
    if (err == 0) {
        res->outcome = SL_SINK_DELIVERED;
        return;
    }
    res->outcome = err == SL_EREJECTED ? SL_SINK_REJECTED : SL_SINK_RETRY;
    each->details[i] = sl_strdup(detail ? detail : sl_strerror(err));
    /* Out of memory for the copy: the error's name still says what happened. */
    res->detail = each->details[i] ? each->details[i] : sl_strerror(err);
}

static void sink_each_written(void *arg, int err, const char *detail)
{
    struct sink_each_slot *slot = arg;
    struct sink_each *each = slot->each;
    sink_each_result(each, slot->i, err, detail);
    assert(each->pending > 0);
    if (--each->pending > 0) {
        return;
    }
    each->cb(each->arg, each->results, each->n);
    sink_each_free(each, slot - slot->i);
}

int sl_sink_deliver(const struct sl_sink_ops *ops,
                    void *ctx,
                    const struct sl_sink_doc *docs,
                    size_t n,
                    sl_sink_deliver_cb cb,
                    void *arg)
{
    assert(n > 0);
    if (ops->deliver) {
        return ops->deliver(ctx, docs, n, cb, arg);
    }
    struct sink_each *each = sl_calloc(1, sizeof(*each));
    struct sink_each_slot *slots = sl_calloc(n, sizeof(*slots));
    if (each) {
        each->results = sl_calloc(n, sizeof(*each->results));
        each->details = sl_calloc(n, sizeof(*each->details));
    }
    if (!each || !slots || !each->results || !each->details) {
        if (each) {
            sl_free(each->details);
            sl_free(each->results);
        }
        sl_free(slots);
        sl_free(each);
        return SL_ENOMEM;
    }
    each->cb = cb;
    each->arg = arg;
    each->n = n;
    /* Every write is counted as pending before the first starts: a write's callback never
     * runs from inside write, so none can finish the delivery while others are starting. */
    each->pending = n;
    int first_err = 0;
    size_t started = 0;
    for (size_t i = 0; i < n; i++) {
        slots[i] = (struct sink_each_slot){each, i};
        int r = ops->write(ctx, &docs[i], sink_each_written, &slots[i]);
        if (r < 0) {
            sink_each_result(each, i, r, "cannot start the write");
            each->pending--;
            first_err = first_err ? first_err : r;
        } else {
            started++;
        }
    }
    if (started == 0) {
        sink_each_free(each, slots); /* nothing in flight: the caller has the error, no cb */
        return first_err;
    }
    return 0;
}

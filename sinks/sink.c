/* SPDX-License-Identifier: Apache-2.0 */
/* sink.c: the registry of sink adapters. It owns the list of the kinds sluice can write to (the
 * generated sl_adapters.h's SL_SINKS: what this build has, in lookup order) and picks the one
 * that serves a destination by asking each, in order, whether it handles it. The SQS sink comes
 * before the HTTP one because a queue URL is also an http(s) URL (the HTTP sink declines those
 * anyway, so exactly one sink handles any destination). It also turns a sink's capabilities
 * into the on-failure path's plan (sl_sink_plan_for), so the core never asks a sink's name,
 * delivers a batch of documents through any sink (sl_sink_deliver: a sink's own deliver in
 * calls cut to its max_docs and max_bytes, or one write per document for a sink that writes one
 * at a time), gathering one result per document in order, so the core calls one operation
 * whatever the sink and keeps its buffering to itself. And it opens and closes a sink
 * (sl_sink_open/close): the sink's state of ctx_size with its option table applied, as sources
 * have. The registry, the plan and the chunking are pure (any thread); the rest runs on the
 * loop thread. */
#include "sink.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>

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

size_t sl_sink_chunk(const struct sl_sink_ops *ops, const struct sl_sink_doc *docs, size_t n)
{
    assert(n > 0);
    size_t take = ops->max_docs && ops->max_docs < n ? ops->max_docs : n;
    if (!ops->max_bytes) {
        return take;
    }
    size_t bytes = docs[0].len;
    size_t k = 1;
    while (k < take && bytes <= ops->max_bytes && docs[k].len <= ops->max_bytes - bytes) {
        bytes += docs[k].len;
        k++;
    }
    return k;
}

int sl_sink_open(const struct sl_sink_ops *ops,
                 const struct sl_sink_env *env,
                 const char *destination,
                 const cJSON *opts,
                 const char *file,
                 const char *path,
                 void **ret_ctx,
                 char *errbuf,
                 size_t errlen)
{
    void *ctx = sl_calloc(1, ops->ctx_size);
    if (!ctx) {
        return SL_ENOMEM;
    }
    static const struct sl_opt none[] = {{0}};
    const struct sl_opt *table = ops->opts ? ops->opts : none;
    int r;
    if (opts) {
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        struct sl_opt_target t = {.table = table, .base = ctx};
        r = sl_opt_apply(&t, 1, opts, file ? file : "config", path ? path : "$", &errs);
        if (r < 0 && errs.n > 0) {
            (void)snprintf(errbuf, errlen, "%s", errs.items[0]);
        }
        sl_errlist_fini(&errs);
    } else {
        r = sl_opt_defaults(table, ctx);
    }
    if (r == 0 && ops->check_opts) {
        char why[512] = "";
        r = ops->check_opts(ctx, why, sizeof(why));
        if (r < 0) {
            (void)snprintf(errbuf, errlen, "%s: %s.%s", file ? file : "config", path ? path : "$",
                           why);
        }
    }
    if (r == 0) {
        r = ops->init(ctx, env, destination, errbuf, errlen);
        if (r < 0) {
            ops->fini(ctx); /* fini copes with a half-done init */
        }
    }
    if (r < 0) {
        sl_opt_free(table, ctx);
        sl_free(ctx);
        return r;
    }
    *ret_ctx = ctx;
    return 0;
}

void sl_sink_close(const struct sl_sink_ops *ops, void *ctx)
{
    if (!ctx) {
        return;
    }
    ops->fini(ctx);
    if (ops->opts) {
        sl_opt_free(ops->opts, ctx);
    }
    sl_free(ctx);
}

/* One delivery: its parts in flight (calls of the sink's deliver, or writes), and the results
 * gathered so far. */
struct sink_call {
    sl_sink_deliver_cb cb;
    void *arg;
    size_t pending; /* parts started and not answered */
    size_t n;
    struct sl_sink_result *results;
    char **details; /* owned copies of the failures' details */
    struct sink_part *parts;
};

/* A part of a delivery: docs[lo .. lo + n) of it, in one deliver call or one write (n == 1). */
struct sink_part {
    struct sink_call *call;
    size_t lo;
    size_t n;
};

static void sink_call_free(struct sink_call *call)
{
    for (size_t i = 0; i < call->n; i++) {
        sl_free(call->details[i]);
    }
    sl_free(call->details);
    sl_free(call->results);
    sl_free(call->parts);
    sl_free(call);
}

static struct sink_call *sink_call_new(size_t n, sl_sink_deliver_cb cb, void *arg)
{
    struct sink_call *call = sl_calloc(1, sizeof(*call));
    if (!call) {
        return NULL;
    }
    call->n = n;
    call->results = sl_calloc(n, sizeof(*call->results));
    call->details = sl_calloc(n, sizeof(*call->details));
    call->parts = sl_calloc(n, sizeof(*call->parts)); /* at most one part per document */
    if (!call->results || !call->details || !call->parts) {
        sink_call_free(call);
        return NULL;
    }
    call->cb = cb;
    call->arg = arg;
    return call;
}

/* Sets the result of document i; outcome from err unless given (a sink's deliver result). */
static void sink_call_result(
    struct sink_call *call, size_t i, enum sl_sink_outcome outcome, int err, const char *detail)
{
    struct sl_sink_result *res = &call->results[i];
    res->outcome = outcome;
    res->err = err;
    if (outcome == SL_SINK_DELIVERED) {
        res->err = 0;
        return;
    }
    if (err == 0) {
        err = res->err = outcome == SL_SINK_REJECTED ? SL_EREJECTED : SL_EIO;
    }
    sl_free(call->details[i]);
    call->details[i] = sl_strdup(detail ? detail : sl_strerror(err));
    /* Out of memory for the copy: the error's name still says what happened. */
    res->detail = call->details[i] ? call->details[i] : sl_strerror(err);
}

static enum sl_sink_outcome sink_outcome_of(int err)
{
    return err == 0 ? SL_SINK_DELIVERED : err == SL_EREJECTED ? SL_SINK_REJECTED : SL_SINK_RETRY;
}

static void sink_part_done(struct sink_call *call)
{
    assert(call->pending > 0);
    if (--call->pending > 0) {
        return;
    }
    call->cb(call->arg, call->results, call->n);
    sink_call_free(call);
}

static void sink_part_written(void *arg, int err, const char *detail)
{
    struct sink_part *part = arg;
    sink_call_result(part->call, part->lo, sink_outcome_of(err), err, detail);
    sink_part_done(part->call);
}

static void sink_part_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct sink_part *part = arg;
    struct sink_call *call = part->call;
    for (size_t i = 0; i < part->n; i++) {
        if (i < n) {
            sink_call_result(call, part->lo + i, results[i].outcome, results[i].err,
                             results[i].detail);
        } else {
            /* A sink that answered for fewer documents than it was given: never delivered. */
            sink_call_result(call, part->lo + i, SL_SINK_RETRY, SL_EPROTO,
                             "the sink gave no result for this document");
        }
    }
    sink_part_done(call);
}

int sl_sink_deliver(const struct sl_sink_ops *ops,
                    void *ctx,
                    const struct sl_sink_doc *docs,
                    size_t n,
                    sl_sink_deliver_cb cb,
                    void *arg)
{
    assert(n > 0);
    if (ops->deliver && sl_sink_chunk(ops, docs, n) == n) {
        return ops->deliver(ctx, docs, n, cb, arg); /* one call: the sink answers directly */
    }
    struct sink_call *call = sink_call_new(n, cb, arg);
    if (!call) {
        return SL_ENOMEM;
    }
    size_t n_parts = 0;
    for (size_t lo = 0; lo < n; n_parts++) {
        size_t k = ops->deliver ? sl_sink_chunk(ops, docs + lo, n - lo) : 1;
        call->parts[n_parts] = (struct sink_part){call, lo, k};
        lo += k;
    }
    /* Every part is counted as pending before the first starts: a callback never runs from
     * inside deliver or write, so none can finish the delivery while others are starting. */
    call->pending = n_parts;
    int first_err = 0;
    size_t started = 0;
    for (size_t p = 0; p < n_parts; p++) {
        struct sink_part *part = &call->parts[p];
        int r = ops->deliver
                    ? ops->deliver(ctx, docs + part->lo, part->n, sink_part_delivered, part)
                    : ops->write(ctx, &docs[part->lo], sink_part_written, part);
        if (r < 0) {
            for (size_t i = 0; i < part->n; i++) {
                sink_call_result(call, part->lo + i, sink_outcome_of(r), r,
                                 ops->deliver ? "cannot start the delivery"
                                              : "cannot start the write");
            }
            call->pending--;
            first_err = first_err ? first_err : r;
        } else {
            started++;
        }
    }
    if (started == 0) {
        sink_call_free(call); /* nothing in flight: the caller has the error, no cb */
        return first_err;
    }
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_INVOKER_H
#define SL_INVOKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "function.h"

struct sl_source_ops;

/* The invoker's decisions, as pure functions: what a function's answer means for the batch it
 * got (AWS's rules, reference/esm.md §4). The mapping carries them out. */

/* How a partial batch response reads (FunctionResponseTypes: ReportBatchItemFailures). */
enum sl_partial_kind {
    SL_PARTIAL_ALL_OK,      /* empty body, null, {}, an empty or null list */
    SL_PARTIAL_SOME_FAILED, /* valid identifiers: the lowest one is where to resume */
    SL_PARTIAL_INVALID,     /* not JSON, a bad entry, an unknown identifier: all failed */
};

struct sl_partial {
    enum sl_partial_kind kind;
    size_t lowest;        /* SOME_FAILED: index in the batch of the earliest failed record */
    size_t n_failed;      /* SOME_FAILED: distinct records listed */
    char detail[192];     /* INVALID: why */
    char unknown_key[64]; /* ALL_OK from an object whose top-level key is not batchItemFailures
                             (a misspelling AWS would silently count as success): that key */
};

/* Reads a partial batch response. ids are the batch's item identifiers in batch order (its
 * source's format_item_id: the Kinesis sequence numbers; Kafka's "<topic>-<partition>-<offset>"),
 * n of them. An itemIdentifier that is not a string is read by ops, the batch's own source
 * (completed: its read_item_id, Kafka's {"partition":"<topic>-<p>","offset":N} as
 * "<topic>-<p>-<N>"), and by no other adapter: a form the source does not know is an unknown
 * identifier, which fails the whole batch (AWS). failed, when not NULL, has n entries: set for
 * each listed record (valid when the kind is SOME_FAILED). Never fails: every input has a
 * reading. */
void sl_invoker_parse_partial(const struct sl_source_ops *ops,
                              const char *body,
                              size_t len,
                              const char *const *ids,
                              size_t n,
                              bool *failed,
                              struct sl_partial *ret);

struct sl_invoker_policy {
    int64_t max_retry_attempts; /* -1: forever */
    bool bisect;
    bool report_item_failures;
};

enum sl_verdict_action {
    SL_VERDICT_DONE,      /* every record of the batch is delivered */
    SL_VERDICT_RETRY,     /* invoke the records from done_prefix on again, after a backoff */
    SL_VERDICT_BISECT,    /* split the batch in two halves, try them in order */
    SL_VERDICT_EXHAUSTED, /* records from done_prefix on go to the on-failure destination */
};

struct sl_verdict {
    enum sl_verdict_action action;
    size_t done_prefix;  /* records at the front of the batch that are delivered */
    bool counted;        /* this answer used up an attempt */
    bool function_error; /* for the invocation record: functionError "Unhandled" or null */
};

/* Judges one answer for a batch of n records that has already used attempts counted
 * attempts. partial is the parsed response when the outcome is a success and the policy reads
 * partial responses, else NULL. Rules: only function errors, timeouts (the function ran past
 * its timeout), invalid partial responses and partial failures count; with bisect a
 * multi-record batch is split instead (not counted); throttles, service and transport errors
 * and sluice's own exhausted resources are retried without counting; a count past
 * max_retry_attempts exhausts the batch. */
void sl_invoker_judge(const struct sl_invoker_policy *pol,
                      const struct sl_invoke_result *res,
                      const struct sl_partial *partial,
                      size_t n,
                      unsigned attempts,
                      struct sl_verdict *ret);

#endif

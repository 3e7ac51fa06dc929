/* SPDX-License-Identifier: Apache-2.0 */
/* invoker.c: what an answer means. It reads partial batch responses with AWS's strict rules
 * (an empty or null list, {} or an empty body is success; an empty, null or unknown
 * identifier, a bad entry or a body that is not JSON fails the whole batch) and turns each
 * outcome into a verdict: done, retry (counted or not), bisect, or exhausted. It decides;
 * it does nothing. An identifier that is not a string is read by the batch's own source adapter
 * (its read_item_id), never here and never by another adapter. Pure functions; any thread. */
#include "invoker.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "hash.h"
#include "source.h"

static bool partial_is_blank(const char *body, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = body[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
            return false;
        }
    }
    return true;
}

/* An open-addressing set of the batch's identifiers, mapping each to its index. */
struct id_index {
    size_t *slots; /* index + 1; 0 = empty */
    size_t mask;
};

static int id_index_build(struct id_index *ix, const char *const *ids, size_t n)
{
    size_t cap = 16;
    while (cap < n * 2) {
        cap *= 2;
    }
    ix->slots = sl_calloc(cap, sizeof(*ix->slots));
    if (!ix->slots) {
        return SL_ENOMEM;
    }
    ix->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        size_t s = (size_t)sl_hash_fnv1a(ids[i], strlen(ids[i]), SL_HASH_FNV1A_BASIS) & ix->mask;
        while (ix->slots[s]) {
            s = (s + 1) & ix->mask;
        }
        ix->slots[s] = i + 1;
    }
    return 0;
}

/* Returns the index of id in ids, or SIZE_MAX. */
static size_t id_index_find(const struct id_index *ix, const char *const *ids, const char *id)
{
    size_t s = (size_t)sl_hash_fnv1a(id, strlen(id), SL_HASH_FNV1A_BASIS) & ix->mask;
    while (ix->slots[s]) {
        size_t i = ix->slots[s] - 1;
        if (strcmp(ids[i], id) == 0) {
            return i;
        }
        s = (s + 1) & ix->mask;
    }
    return SIZE_MAX;
}

static void partial_invalid(struct sl_partial *ret, const char *why)
{
    ret->kind = SL_PARTIAL_INVALID;
    (void)snprintf(ret->detail, sizeof(ret->detail), "%s", why);
}

static void partial_read_list(const struct sl_source_ops *ops,
                              const cJSON *list,
                              const char *const *ids,
                              size_t n,
                              bool *failed,
                              struct sl_partial *ret)
{
    if (cJSON_IsNull(list) || (cJSON_IsArray(list) && !list->child)) {
        return;
    }
    if (!cJSON_IsArray(list)) {
        partial_invalid(ret, "batchItemFailures is not a list");
        return;
    }
    struct id_index ix;
    if (id_index_build(&ix, ids, n) < 0) {
        partial_invalid(ret, "out of memory reading the response");
        return;
    }
    size_t lowest = SIZE_MAX;
    size_t listed = 0;
    for (const cJSON *item = list->child; item; item = item->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "itemIdentifier");
        if (!cJSON_IsObject(item) || !id) {
            partial_invalid(ret, "a batchItemFailures entry has no itemIdentifier");
            break;
        }
        /* A form that is not a string is read by the batch's source when it writes such a form
         * (Kafka's {"partition":..,"offset":N}), as the text its format_item_id writes; a form
         * only another adapter knows is as unknown as any other bad identifier. */
        char object_id[320];
        const char *text =
            cJSON_IsString(id) ? NULL : ops->read_item_id(id, object_id, sizeof(object_id));
        if (!text && (!cJSON_IsString(id) || !id->valuestring[0])) {
            partial_invalid(ret, "an itemIdentifier is empty, null or not a string");
            break;
        }
        text = text ? text : id->valuestring;
        size_t i = id_index_find(&ix, ids, text);
        if (i == SIZE_MAX) {
            ret->kind = SL_PARTIAL_INVALID;
            (void)snprintf(ret->detail, sizeof(ret->detail),
                           "itemIdentifier \"%.100s\" is not in the batch", text);
            break;
        }
        listed++;
        if (failed) {
            failed[i] = true;
        }
        if (i < lowest) {
            lowest = i;
        }
    }
    sl_free(ix.slots);
    if (ret->kind == SL_PARTIAL_INVALID) {
        return;
    }
    ret->kind = SL_PARTIAL_SOME_FAILED;
    ret->lowest = lowest;
    ret->n_failed = listed;
}

void sl_invoker_parse_partial(const struct sl_source_ops *ops,
                              const char *body,
                              size_t len,
                              const char *const *ids,
                              size_t n,
                              bool *failed,
                              struct sl_partial *ret)
{
    memset(ret, 0, sizeof(*ret));
    if (failed) {
        memset(failed, 0, n * sizeof(*failed));
    }
    ret->kind = SL_PARTIAL_ALL_OK;
    if (!body || partial_is_blank(body, len)) {
        return;
    }
    cJSON *doc = cJSON_ParseWithLength(body, len);
    if (!doc) {
        partial_invalid(ret, "the response is not valid JSON");
        return;
    }
    if (cJSON_IsNull(doc) || (cJSON_IsString(doc) && !doc->valuestring[0])) {
        cJSON_Delete(doc);
        return;
    }
    if (!cJSON_IsObject(doc)) {
        partial_invalid(ret, "the response is not a JSON object");
        cJSON_Delete(doc);
        return;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "batchItemFailures");
    if (list) {
        partial_read_list(ops, list, ids, n, failed, ret);
    } else {
        for (const cJSON *c = doc->child; c; c = c->next) {
            /* "state" belongs to tumbling windows; anything else is likely a misspelling. */
            if (strcmp(c->string, "state") != 0) {
                (void)snprintf(ret->unknown_key, sizeof(ret->unknown_key), "%s", c->string);
                break;
            }
        }
    }
    cJSON_Delete(doc);
}

static void judge_failure(const struct sl_invoker_policy *pol,
                          size_t n,
                          unsigned attempts,
                          bool may_bisect,
                          struct sl_verdict *ret)
{
    if (may_bisect && pol->bisect && n > 1) {
        ret->action = SL_VERDICT_BISECT;
        return;
    }
    ret->counted = true;
    if (pol->max_retry_attempts >= 0 && (int64_t)attempts + 1 > pol->max_retry_attempts) {
        ret->action = SL_VERDICT_EXHAUSTED;
    } else {
        ret->action = SL_VERDICT_RETRY;
    }
}

void sl_invoker_judge(const struct sl_invoker_policy *pol,
                      const struct sl_invoke_result *res,
                      const struct sl_partial *partial,
                      size_t n,
                      unsigned attempts,
                      struct sl_verdict *ret)
{
    memset(ret, 0, sizeof(*ret));
    switch (res->outcome) {
    case SL_OUTCOME_SUCCESS:
        if (!pol->report_item_failures || !partial || partial->kind == SL_PARTIAL_ALL_OK) {
            ret->action = SL_VERDICT_DONE;
            ret->done_prefix = n;
            return;
        }
        if (partial->kind == SL_PARTIAL_INVALID) {
            ret->function_error = true;
            judge_failure(pol, n, attempts, true, ret);
            return;
        }
        /* Streams resume from the lowest failed record; what precedes it is done. A partial
         * failure counts as an attempt of the rest and is never bisected: it already says
         * where the batch broke. */
        ret->done_prefix = partial->lowest;
        judge_failure(pol, n - partial->lowest, attempts, false, ret);
        return;
    case SL_OUTCOME_FUNCTION_ERROR:
    case SL_OUTCOME_TIMEOUT:
        /* A function that ran past its timeout failed, as on AWS ("Task timed out", an
         * Unhandled function error): it counts, and may bisect. */
        ret->function_error = true;
        judge_failure(pol, n, attempts, true, ret);
        return;
    case SL_OUTCOME_THROTTLE:
    case SL_OUTCOME_SERVICE_ERROR:
    case SL_OUTCOME_TRANSPORT_ERROR:
    case SL_OUTCOME_RESOURCE_EXHAUSTED:
    case SL_OUTCOME_COUNT:
        break;
    }
    ret->action = SL_VERDICT_RETRY;
}

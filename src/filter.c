/* SPDX-License-Identifier: Apache-2.0 */
/* filter.c: FilterCriteria, the EventBridge event-pattern language (reference/esm.md §5). The
 * filter owns two things: a compiler that validates a pattern's JSON text and turns it into a small
 * tree (objects of fields, each field either a nested object or a list of matchers, plus an
 * optional `$or` of alternative objects), and a matcher that walks that tree over a cJSON
 * document. Compilation does all the allocation and all the validation, so every error names
 * its place inside the pattern; matching allocates nothing, never fails, and recurses only as
 * deep as the pattern (bounded by FILTER_MAX_DEPTH) plus a capped number of nested document
 * arrays, so any document (deep, huge, not UTF-8) is safe. It must not log and must not know
 * where documents come from (decoding `data`/`body` is the mapping's job). Pure: a compiled
 * pattern is read-only and may be matched from any thread.
 *
 * Semantics follow AWS's event-ruler (the engine behind EventBridge and ESM filtering):
 * - a field matches when any of its leaf values matches any matcher; arrays in the document
 *   are flattened, and fields of one nested pattern object must be found in the same array
 *   element;
 * - a plain number in a pattern matches a document number of equal value (300 matches 300.0
 *   and 3.0e2), as event-ruler does; esm.md says numbers compare by text, but cJSON keeps no
 *   text and event-ruler adds a numeric-equality matcher beside the textual one;
 * - keys are flattened paths: a dotted key and nested objects name the same path, in the
 *   pattern and in the document (see "About dotted keys" in filter_match.c);
 * - `exists` looks at leaf values only: a field holding an object or an empty array does not
 *   "exist", `null` does;
 * - anything-but takes a value, a list of values, or {prefix|suffix|equals-ignore-case|
 *   wildcard: a string or a list of them}, and matches a value that matches none of them;
 * - wildcards that AWS would refuse as too complex are refused (see "About complexity" in
 *   filter_wildcard.c);
 * - equals-ignore-case (also under prefix, suffix and anything-but) uses simple case folding
 *   for ASCII, Latin-1, Latin Extended-A and Additional, Greek, Cyrillic and fullwidth Latin;
 *   other scripts compare exactly. Bytes that are not UTF-8 compare as themselves.
 *
 * This file is the public entry (sl_pattern_* and sl_filter_*: parsing a pattern's text, the
 * FilterCriteria envelope, and the payload rules); the work sits in layers below it, each calling
 * only downward: filter_compile.c (pattern to tree), filter_match.c (tree against a document),
 * filter_wildcard.c (wildcards and their complexity), filter_error.c (compile errors and their
 * paths) and filter_text.c (UTF-8 and case folding). Their shared types are in filter_int.h. */
#include "filter.h"
#include "filter_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

static bool only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            return false;
        }
    }
    return true;
}

int sl_pattern_compile(
    const char *text, size_t len, struct sl_pattern **ret_p, char *errbuf, size_t errlen)
{
    struct cctx c = {.errbuf = errbuf, .errlen = errlen};
    if (errbuf && errlen) {
        errbuf[0] = '\0';
    }
    size_t chars = filter_text_utf8_count((const unsigned char *)text, len);
    if (chars > SL_FILTER_MAX_PATTERN_LEN) {
        return filter_error_fmt(&c, "the pattern is %zu characters long, over the limit of %d",
                                chars, SL_FILTER_MAX_PATTERN_LEN);
    }
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!doc) {
        size_t off = (end && end >= text && end <= text + len) ? (size_t)(end - text) : 0;
        return filter_error_fmt(&c, "the pattern is not valid JSON (near character %zu)", off);
    }
    if (end && end >= text && end <= text + len && !only_space(end, len - (size_t)(end - text))) {
        cJSON_Delete(doc);
        return filter_error_fmt(&c, "the pattern has text after its JSON value (at character %zu)",
                                (size_t)(end - text));
    }
    if (!cJSON_IsObject(doc)) {
        int r = filter_error_fmt(&c, "a pattern must be a JSON object, got %s",
                                 filter_error_type_name(doc));
        cJSON_Delete(doc);
        return r;
    }
    struct sl_pattern *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        cJSON_Delete(doc);
        return filter_error_nomem(&c);
    }
    int r = filter_compile_node(&c, doc, &p->root);
    cJSON_Delete(doc);
    if (r < 0) {
        sl_free(p);
        return r;
    }
    *ret_p = p;
    return 0;
}

bool sl_pattern_match(const struct sl_pattern *p, const cJSON *doc)
{
    return filter_match_root(p->root, doc);
}

void sl_pattern_free(struct sl_pattern *p)
{
    if (!p) {
        return;
    }
    filter_compile_node_free(p->root);
    sl_free(p);
}

/* ---- FilterCriteria -------------------------------------------------------------------------- */

SL_PRINTF(3, 4) static int ferr(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf && errlen) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return SL_EINVAL;
}

int sl_filter_compile(const cJSON *criteria, struct sl_filter **ret_f, char *errbuf, size_t errlen)
{
    char perr[512];
    int r = 0;
    if (errbuf && errlen) {
        errbuf[0] = '\0';
    }
    if (!cJSON_IsObject(criteria)) {
        return ferr(errbuf, errlen,
                    "FilterCriteria: expected an object like {\"Filters\": "
                    "[{\"Pattern\": \"...\"}]}, got %s",
                    filter_error_type_name(criteria));
    }
    const cJSON *filters = NULL;
    for (const cJSON *e = criteria->child; e; e = e->next) {
        if (!e->string || strcmp(e->string, "Filters") != 0) {
            return ferr(errbuf, errlen, "FilterCriteria: unknown key \"%s\" (allowed: Filters)",
                        e->string ? e->string : "");
        }
        filters = e;
    }
    size_t n = 0;
    if (filters && !cJSON_IsNull(filters)) {
        if (!cJSON_IsArray(filters)) {
            return ferr(errbuf, errlen, "Filters: expected a list of {\"Pattern\": string}, got %s",
                        filter_error_type_name(filters));
        }
        n = (size_t)filter_compile_count_items(filters);
        if (n > SL_FILTER_MAX_PATTERNS) {
            return ferr(errbuf, errlen, "Filters: %zu filters, at most %d are allowed", n,
                        SL_FILTER_MAX_PATTERNS);
        }
    }
    struct sl_filter *f = sl_calloc(1, sizeof(*f));
    if (!f) {
        (void)ferr(errbuf, errlen, "out of memory compiling FilterCriteria");
        return SL_ENOMEM;
    }
    size_t i = 0;
    for (const cJSON *e = n ? filters->child : NULL; e; e = e->next, i++) {
        const cJSON *pat = cJSON_IsObject(e) ? e->child : NULL;
        if (!cJSON_IsObject(e) || !pat || pat->next || !pat->string ||
            strcmp(pat->string, "Pattern") != 0) {
            r = ferr(errbuf, errlen,
                     "Filters[%zu]: expected an object with exactly one key, "
                     "\"Pattern\"",
                     i);
            goto fail;
        }
        if (!cJSON_IsString(pat) || !pat->valuestring) {
            r = ferr(errbuf, errlen, "Filters[%zu].Pattern: expected a string holding JSON, got %s",
                     i, filter_error_type_name(pat));
            goto fail;
        }
        r = sl_pattern_compile(pat->valuestring, strlen(pat->valuestring), &f->p[f->n], perr,
                               sizeof(perr));
        if (r < 0) {
            (void)ferr(errbuf, errlen, "Filters[%zu].Pattern: %s", i, perr);
            goto fail;
        }
        f->n++;
    }
    *ret_f = f;
    return 0;
fail:
    sl_filter_free(f);
    return r;
}

bool sl_filter_match(const struct sl_filter *f, const cJSON *doc)
{
    if (f->n == 0) {
        return true;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (sl_pattern_match(f->p[i], doc)) {
            return true;
        }
    }
    return false;
}

static bool node_uses_field(const struct fnode *n, const char *key)
{
    for (size_t i = 0; i < n->nfields; i++) {
        if (strcmp(n->fields[i].key, key) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < n->nalts; i++) {
        if (node_uses_field(n->alts[i], key)) {
            return true;
        }
    }
    return false;
}

/* Whether the pattern looks inside key (a nested object under it, here or in a $or). */
static bool node_descends_into(const struct fnode *n, const char *key)
{
    for (size_t i = 0; i < n->nfields; i++) {
        if (n->fields[i].child && strcmp(n->fields[i].key, key) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < n->nalts; i++) {
        if (node_descends_into(n->alts[i], key)) {
            return true;
        }
    }
    return false;
}

/* node_match, with the top-level fields named in skip (a bit per entry of names) treated as
 * matching: for Kafka's rule that a payload in another format only gets metadata filters. */
static bool node_match_skipping(const struct fnode *n,
                                const struct fview *v,
                                const char *const *names,
                                unsigned skip)
{
    for (size_t i = 0; i < n->nfields; i++) {
        bool skipped = false;
        for (unsigned b = 0; names[b]; b++) {
            skipped = skipped || ((skip >> b) & 1u && strcmp(n->fields[i].key, names[b]) == 0);
        }
        if (!skipped && !filter_match_field(&n->fields[i], v)) {
            return false;
        }
    }
    if (n->nalts) {
        for (size_t i = 0; i < n->nalts; i++) {
            if (node_match_skipping(n->alts[i], v, names, skip)) {
                return true;
            }
        }
        return false;
    }
    return true;
}

bool sl_filter_match_fields(const struct sl_filter *f,
                            const cJSON *doc,
                            const char *const *payload_fields,
                            bool mismatch_ignored)
{
    if (f->n == 0) {
        return true;
    }
    unsigned unstructured = 0;
    for (unsigned b = 0; payload_fields[b] && b < 8; b++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, payload_fields[b]);
        if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
            unstructured |= 1u << b;
        }
    }
    struct fview top = {.n = cJSON_IsObject(doc) ? 1 : 0};
    top.at[0] = (struct fplace){.obj = doc, .pre = "", .plen = 0};
    for (size_t i = 0; i < f->n; i++) {
        unsigned skip = 0;
        for (unsigned b = 0; payload_fields[b] && b < 8; b++) {
            if ((unstructured >> b) & 1u && node_descends_into(f->p[i]->root, payload_fields[b])) {
                skip |= 1u << b;
            }
        }
        if (skip && !mismatch_ignored) {
            continue;
        }
        if (skip ? node_match_skipping(f->p[i]->root, &top, payload_fields, skip)
                 : sl_pattern_match(f->p[i], doc)) {
            return true;
        }
    }
    return false;
}

bool sl_filter_match_payload(const struct sl_filter *f, const cJSON *doc, const char *key)
{
    const char *const fields[] = {key, NULL};
    return sl_filter_match_fields(f, doc, fields, false);
}

bool sl_filter_uses_field(const struct sl_filter *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++) {
        if (node_uses_field(f->p[i]->root, key)) {
            return true;
        }
    }
    return false;
}

size_t sl_filter_count(const struct sl_filter *f)
{
    return f->n;
}

void sl_filter_free(struct sl_filter *f)
{
    if (!f) {
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        sl_pattern_free(f->p[i]);
    }
    sl_free(f);
}

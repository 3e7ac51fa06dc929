/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FILTER_H
#define SL_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"

/* FilterCriteria: EventBridge event patterns (reference/esm.md §5), compiled once and matched
 * against each record's document. Up to SL_FILTER_MAX_PATTERNS patterns are ORed; the fields
 * inside one pattern are ANDed; a list of values for one field is an OR. Pure; any thread
 * once compiled. */
#define SL_FILTER_MAX_PATTERNS    5
#define SL_FILTER_MAX_PATTERN_LEN 4096

struct sl_pattern;
struct sl_filter;

/* Compiles one pattern given as JSON text. Returns 0 and *ret_p, SL_EINVAL with errbuf saying
 * what is wrong and where inside the pattern (e.g. "numeric: expected an operator, got \"=>\"
 * at data.amount"), or SL_ENOMEM. */
SL_NODISCARD int sl_pattern_compile(
    const char *text, size_t len, struct sl_pattern **ret_p, char *errbuf, size_t errlen);
/* True when doc matches the pattern. */
bool sl_pattern_match(const struct sl_pattern *p, const cJSON *doc);
void sl_pattern_free(struct sl_pattern *p);

/* Compiles FilterCriteria ({"Filters":[{"Pattern":"<JSON text>"}, ...]}). Errors name the
 * JSON path inside the criteria (Filters[1].Pattern) and the reason. An empty object or an
 * empty Filters list compiles to a filter that matches everything. */
SL_NODISCARD int
sl_filter_compile(const cJSON *criteria, struct sl_filter **ret_f, char *errbuf, size_t errlen);
/* True when any pattern matches doc (or the filter has no patterns). */
bool sl_filter_match(const struct sl_filter *f, const cJSON *doc);
/* As sl_filter_match, with Lambda's rule for payloads (esm.md §5): a pattern that looks inside
 * the payload field key ("data", "body") never matches a record whose payload is not a JSON
 * object or array (a line that is not JSON), not even through exists:false. */
bool sl_filter_match_payload(const struct sl_filter *f, const cJSON *doc, const char *key);
/* The general form: payload_fields (NULL-terminated, at most 8) are the fields that hold
 * payloads. A pattern that looks inside one whose value is not a JSON object or array either
 * fails (streams: mismatch_ignored false) or is matched on its other fields only (Kafka:
 * mismatch_ignored true, "metadata filters only"). */
bool sl_filter_match_fields(const struct sl_filter *f,
                            const cJSON *doc,
                            const char *const *payload_fields,
                            bool mismatch_ignored);
/* True when some pattern names the top-level field key (e.g. "data"): sources use it to skip
 * decoding payloads no pattern looks at. */
bool sl_filter_uses_field(const struct sl_filter *f, const char *key);
size_t sl_filter_count(const struct sl_filter *f);
void sl_filter_free(struct sl_filter *f);

#endif

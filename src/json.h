/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* JSON helpers every source and sink may use. Any thread; they never log. */

/* Parses data[0..len) as exactly one JSON value with nothing but whitespace after it (cJSON
 * alone would accept "12 apples" as 12, and stop at a NUL byte). Returns the value (owned;
 * cJSON_Delete it) or NULL when it is not JSON, or is empty (or on OOM, which callers cannot
 * tell apart and treat the same way). */
cJSON *sl_json_parse_exact(const char *data, size_t len);

/* The "payload parsed as JSON when it is JSON" rule of filter documents (esm.md §5): the value
 * sl_json_parse_exact gives, else the bytes as a JSON string (cJSON strings end at a NUL byte,
 * so a payload holding one is matched only up to it). Returns owned, or NULL on OOM. */
cJSON *sl_json_payload(const char *data, size_t len);

/* True if p[0..n) is well-formed UTF-8 without NUL bytes (no overlong forms, no surrogates, at
 * most U+10FFFF). Sources whose payloads may be binary (Kafka) leave a payload that is not such
 * text out of the filter document instead of calling sl_json_payload. */
bool sl_json_is_utf8(const unsigned char *p, size_t n);

#endif

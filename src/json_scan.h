/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_JSON_SCAN_H
#define SL_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* A JSON text checked and indexed in place: one flat array of tokens in document order (an
 * object's members are its key then its value), each pointing into the text, nothing copied
 * and strings decoded only when asked. For answers read once per request on the hot path
 * (SQS's ReceiveMessage), where building a cJSON tree cost an allocation per key and value.
 * Any thread; a scan is used by one thread at a time. */

enum sl_json_kind {
    SL_JSON_OBJECT = 0,
    SL_JSON_ARRAY,
    SL_JSON_STRING,
    SL_JSON_PRIMITIVE, /* a number, true, false or null */
    SL_JSON_KIND_COUNT
};

struct sl_json_tok {
    uint32_t off; /* first byte: the { or [, a string's first byte after its quote */
    uint32_t len; /* bytes from off: up to the closing } or ] with it; a string's without its
                   * closing quote, escapes as written */
    uint32_t end; /* index of the first token after this one and everything inside it */
    uint8_t kind; /* enum sl_json_kind */
    bool escaped; /* a string with a backslash in it */
};

struct sl_json_scan {
    const char *text; /* borrowed: must outlive the tokens' use */
    struct sl_json_tok *tok;
    size_t n;
    size_t cap;
};

void sl_json_scan_init(struct sl_json_scan *s);
void sl_json_scan_fini(struct sl_json_scan *s);

/* The token of the scanned value itself. Token 0 is none: every lookup below answers 0 for
 * "no such token", and sl_json_scan_is is false for it. */
#define SL_JSON_SCAN_ROOT 1

/* Scans text[0..len) (borrowed; not NUL-terminated necessarily), which must be exactly one JSON
 * value with nothing but whitespace around it, nested at most 64 deep, under 4 GB; tokens of an
 * earlier scan are replaced. Returns 0 (the value is token SL_JSON_SCAN_ROOT), SL_EPROTO when
 * it is not such JSON (s then holds no tokens) or SL_ENOMEM. */
SL_NODISCARD int sl_json_scan_parse(struct sl_json_scan *s, const char *text, size_t len);

/* True if token i exists (is not 0) and is of kind k. */
static inline bool sl_json_scan_is(const struct sl_json_scan *s, size_t i, enum sl_json_kind k)
{
    return i < s->n && s->tok[i].kind == k;
}

/* The index of the value of obj's member named key (compared with the key as written: a key
 * spelt with escapes does not match), or 0 when obj is not an object or has no such member. */
size_t sl_json_scan_member(const struct sl_json_scan *s, size_t obj, const char *key);

/* Children: the first of token i (0: none), and the one after child c of parent i (0: none).
 * An object's children alternate key, value. */
size_t sl_json_scan_first(const struct sl_json_scan *s, size_t i);
size_t sl_json_scan_next(const struct sl_json_scan *s, size_t i, size_t c);

/* Appends string token i decoded (escapes resolved, \u escapes as UTF-8) to out; NUL-terminated
 * as sl_buf always is, but may hold NUL bytes (\u0000). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_json_scan_str(const struct sl_json_scan *s, size_t i, struct sl_buf *out);

/* True if string token i, decoded, equals the NUL-terminated lit. */
bool sl_json_scan_str_is(const struct sl_json_scan *s, size_t i, const char *lit);

#endif

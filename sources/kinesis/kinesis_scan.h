/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KINESIS_SCAN_H
#define SL_KINESIS_SCAN_H

/* The in-place JSON scanner GetRecords' answers are read with (kinesis_scan.c). The text from
 * p to end is writable and NUL-terminated at end; strings are decoded in place. Every call
 * returns false on text that is not JSON. */

#include <stdbool.h>
#include <stddef.h>

struct kjs {
    char *p;
    char *end; /* *end is NUL */
    int depth;
};

enum kjs_kind { KJS_ABSENT, KJS_STRING, KJS_NUMBER, KJS_NULL, KJS_OTHER };

/* Skips white space. */
void kjs_ws(struct kjs *s);
/* Skips one value of any kind. */
bool kjs_skip(struct kjs *s);
/* After a member or item of an object or array closed by close: at a ',' *ret_more is true, at
 * close (consumed) it is false; false when it is neither. */
bool kjs_next(struct kjs *s, char close, bool *ret_more);
/* Reads a value: its kind; a string decoded in place, a number's text (*ret_str, for the caller
 * to parse); anything else checked and skipped. */
bool kjs_member(struct kjs *s, enum kjs_kind *ret_kind, char **ret_str, size_t *ret_len);
/* Reads a key (decoded in place), its ':' and the white space after it. */
bool kjs_key(struct kjs *s, char **ret_key, size_t *ret_len);
/* True when s[0..n) is standard padded base64. */
bool kinesis_is_base64(const char *s, size_t n);

#endif

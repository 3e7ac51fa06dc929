/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_JSCAN_H
#define SL_FH_JSCAN_H

#include <stddef.h>

#include "buf.h"

/* Reads the JSON string at p (its opening quote) decoded into out (NULL: only scans). Returns
 * the position after the closing quote, or NULL: malformed (*r untouched) or out of memory
 * (*r = SL_ENOMEM). */
const char *sl_fh_jscan_string(const char *p, const char *e, struct sl_buf *out, int *r);
/* Skips JSON whitespace. */
const char *sl_fh_jscan_ws(const char *p, const char *e);
/* Skips the value at p (no leading space; nesting at most 256 deep); returns its end or NULL
 * (malformed). */
const char *sl_fh_jscan_value(const char *p, const char *e, int depth);
/* In the valid object at p (its '{'), the value (its first byte) of the member named name, the
 * last one when repeated (jq's reading); NULL when absent. tmp is scratch for keys written
 * with escapes. */
const char *sl_fh_jscan_member(const char *p, const char *e, const char *name, struct sl_buf *tmp);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* opt_int.h: what the files of the option code share and nothing else includes: the
 * descriptions opt_text.c writes, which opt.c quotes in its errors and opt_print.c in the
 * documentation (opt.c > opt_text.c; opt_print.c > opt_text.c). Each appends to b and ORs a
 * failure (SL_ENOMEM) into *r, so a sequence of appends is checked once. */
#ifndef SL_OPT_INT_H
#define SL_OPT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "alloc.h"
#include "buf.h"
#include "opt.h"

/* "string", "integer", ... by enum sl_opt_type. */
extern const char *const opt_text_type_names[SL_OPT_TYPE_COUNT];

/* Whether o has a range to check and to show (numbers and lists with min <= max). */
bool opt_text_has_range(const struct sl_opt *o);
/* One bound of o's range, in o's own unit ("6MB", "500ms", "300"). */
void opt_text_bound(struct sl_buf *b, const struct sl_opt *o, int64_t v, int *r);
/* o's range: "1 to 10000", "0 to 300 seconds", "at least 100ms", "1 to 5 items". */
void opt_text_range(struct sl_buf *b, const struct sl_opt *o, int *r);
/* choices "A|B|C" as "A, B, C". */
void opt_text_choices(struct sl_buf *b, const char *choices, int *r);
/* What a value of o may be: "an integer, 1 to 10000", "one of A, B". */
void opt_text_allowed(struct sl_buf *b, const struct sl_opt *o, int *r);
/* v as compact JSON, cut short, or "<hidden>" when o (may be NULL) is a secret. */
void opt_text_value(struct sl_buf *b, const struct sl_opt *o, const cJSON *v, int *r);

#endif

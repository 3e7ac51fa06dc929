/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_ERRLIST_H
#define SL_ERRLIST_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

/* A list of configuration errors, each a full line: "FILE: $.json.path: problem". */
struct sl_errlist {
    char **items;
    size_t n;
    size_t cap;
};

void sl_errlist_init(struct sl_errlist *e);
void sl_errlist_fini(struct sl_errlist *e);
/* Adds one line. A line that cannot be stored (OOM) is dropped: the caller fails anyway. */
void sl_errlist_add(struct sl_errlist *e, const char *fmt, ...) SL_PRINTF(2, 3);
void sl_errlist_vadd(struct sl_errlist *e, const char *fmt, va_list ap) SL_PRINTF(2, 0);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* errlist.c: a list of configuration errors, each one full line ("FILE: $.json.path: problem;
 * allowed: ..."), so that `sluice validate` shows every mistake of a file at once. The option
 * code, the configuration loader and the adapters' checks add to it; the CLI prints it. It never
 * logs and holds nothing but the lines. Any thread, one at a time. */
#include "errlist.h"

#include <stdarg.h>
#include <stdio.h>

#include "alloc.h"

void sl_errlist_init(struct sl_errlist *e)
{
    e->items = NULL;
    e->n = 0;
    e->cap = 0;
}

void sl_errlist_fini(struct sl_errlist *e)
{
    for (size_t i = 0; i < e->n; i++) {
        sl_free(e->items[i]);
    }
    sl_free(e->items);
    sl_errlist_init(e);
}

/* About OOM: a message that cannot be stored is dropped; the caller still fails with
 * SL_ECONFIG, so nothing invalid is accepted, it is only described less. */
void sl_errlist_vadd(struct sl_errlist *e, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *s = NULL;
    if (n >= 0 && e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        char **items = sl_realloc(e->items, cap * sizeof(*items));
        if (items) {
            e->items = items;
            e->cap = cap;
        }
    }
    if (n >= 0 && e->n < e->cap) {
        s = sl_malloc((size_t)n + 1);
    }
    if (s) {
        (void)vsnprintf(s, (size_t)n + 1, fmt, again);
        e->items[e->n++] = s;
    }
    va_end(again);
}

void sl_errlist_add(struct sl_errlist *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_errlist_vadd(e, fmt, ap);
    va_end(ap);
}

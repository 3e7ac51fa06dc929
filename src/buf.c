/* SPDX-License-Identifier: Apache-2.0 */
/* buf.c: growth and formatting for struct sl_buf. Doubling growth keeps appends amortised O(1);
 * the inline fast paths live in buf.h because encoders append per record. Any thread; no
 * logging. */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"

void sl_buf_init(struct sl_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void sl_buf_fini(struct sl_buf *b)
{
    sl_free(b->data);
    sl_buf_init(b);
}

int sl_buf_grow(struct sl_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len) {
        return SL_ENOMEM;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    char *d = sl_realloc(b->data, cap);
    if (!d) {
        return SL_ENOMEM;
    }
    b->data = d;
    b->cap = cap;
    b->data[b->len] = '\0';
    return 0;
}

int sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
    /* Formatted straight into the room there is, and a second time only when it did not fit. */
    size_t room = b->cap - b->len; /* with the terminator's byte */
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (room) {
            b->data[b->len] = '\0';
        }
        return SL_EINVAL;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    if (sl_buf_reserve(b, (size_t)n) < 0) {
        if (room) {
            b->data[b->len] = '\0';
        }
        return SL_ENOMEM;
    }
    va_start(ap, fmt);
    (void)vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

char *sl_buf_steal(struct sl_buf *b)
{
    if (!b->data && sl_buf_grow(b, 0) < 0) {
        return NULL;
    }
    char *d = b->data;
    sl_buf_init(b);
    return d;
}

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <string.h>

#include "err.h"

/* A growable byte buffer. data is NUL-terminated whenever cap > 0, so text can be passed to
 * C string functions; len never counts the terminator. Owns data. */
struct sl_buf {
    char *data;
    size_t len;
    size_t cap;
};

void sl_buf_init(struct sl_buf *b);
void sl_buf_fini(struct sl_buf *b);

/* Makes room for extra more bytes (plus the terminator). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_buf_grow(struct sl_buf *b, size_t extra);

static inline SL_NODISCARD int sl_buf_reserve(struct sl_buf *b, size_t extra)
{
    if (b->cap - b->len > extra) {
        return 0;
    }
    return sl_buf_grow(b, extra);
}

static inline SL_NODISCARD int sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
    if (sl_buf_reserve(b, n) < 0) {
        return SL_ENOMEM;
    }
    if (n > 0) { /* p may be NULL for nothing */
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static inline SL_NODISCARD int sl_buf_puts(struct sl_buf *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s));
}

SL_NODISCARD int sl_buf_printf(struct sl_buf *b, const char *fmt, ...) SL_PRINTF(2, 3);

/* Shrinks to len bytes (len <= b->len). */
static inline void sl_buf_truncate(struct sl_buf *b, size_t len)
{
    b->len = len;
    if (b->cap) {
        b->data[len] = '\0';
    }
}

/* Returns the owned data (NUL-terminated, never NULL unless OOM) and leaves b empty. */
char *sl_buf_steal(struct sl_buf *b);

#endif

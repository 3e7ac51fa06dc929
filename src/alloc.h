/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_ALLOC_H
#define SL_ALLOC_H

#include <stddef.h>

/* All allocation goes through these. sl_calloc checks n * size for overflow. Setting the
 * environment variable SL_ALLOC_FAIL_AT=n makes the n-th allocation fail (torture tests).
 * Any thread. */
void *sl_malloc(size_t size);
void *sl_calloc(size_t n, size_t size);
void *sl_realloc(void *p, size_t size);
/* Returns an owned copy of s, or NULL when s is NULL or on OOM. */
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);
void sl_free(void *p);

#endif

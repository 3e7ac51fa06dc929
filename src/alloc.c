/* SPDX-License-Identifier: Apache-2.0 */
/* alloc.c: the only place that calls malloc. It adds overflow checks and a fault hook:
 * SL_ALLOC_FAIL_AT=n fails the n-th allocation, so tests can walk every OOM path. Any thread;
 * the counter is atomic. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long alloc_count;
static long alloc_fail_at = -1;
static atomic_int alloc_fail_loaded;

static int alloc_should_fail(void)
{
    if (!atomic_load(&alloc_fail_loaded)) {
        const char *v = getenv("SL_ALLOC_FAIL_AT");
        alloc_fail_at = v ? strtol(v, NULL, 10) : -1;
        atomic_store(&alloc_fail_loaded, 1);
    }
    if (alloc_fail_at < 0) {
        return 0;
    }
    return atomic_fetch_add(&alloc_count, 1) + 1 == alloc_fail_at;
}

void *sl_malloc(size_t size)
{
    if (alloc_should_fail()) {
        return NULL;
    }
    return malloc(size ? size : 1);
}

void *sl_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        return NULL;
    }
    if (alloc_should_fail()) {
        return NULL;
    }
    return calloc(n ? n : 1, size ? size : 1);
}

void *sl_realloc(void *p, size_t size)
{
    if (alloc_should_fail()) {
        return NULL;
    }
    return realloc(p, size ? size : 1);
}

char *sl_strndup(const char *s, size_t n)
{
    if (!s) {
        return NULL;
    }
    char *d = sl_malloc(n + 1);
    if (!d) {
        return NULL;
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *sl_strdup(const char *s)
{
    return s ? sl_strndup(s, strlen(s)) : NULL;
}

void sl_free(void *p)
{
    free(p);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* filter_error.c: the compile context of FilterCriteria and its errors: where inside the pattern
 * the compiler is (a path such as data.amount[0].numeric) and the one way an error is written
 * (the reason, then " at " that path). It sits below the compiler and the wildcard checks so both
 * report errors in the same words without calling each other. */
#include "filter_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- compiling ------------------------------------------------------------------------------- */

/* Formats the reason into errbuf and appends where it happened. Returns SL_EINVAL. */
SL_PRINTF(2, 3) int filter_error_fmt(struct cctx *c, const char *fmt, ...)
{
    if (c->errbuf && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(c->errbuf, c->errlen, fmt, ap);
        va_end(ap);
        size_t used = n < 0 ? 0 : (size_t)n;
        if (used < c->errlen) {
            if (c->pathlen) {
                (void)snprintf(c->errbuf + used, c->errlen - used, " at %s", c->path);
            } else {
                (void)snprintf(c->errbuf + used, c->errlen - used, " at the top level");
            }
        }
    }
    return SL_EINVAL;
}

int filter_error_nomem(struct cctx *c)
{
    if (c->errbuf && c->errlen) {
        (void)snprintf(c->errbuf, c->errlen, "out of memory compiling the pattern");
    }
    return SL_ENOMEM;
}

/* Appends ".key" (or "key" first, or "$or[i]") to the path; returns the old length. A path
 * that would not fit ends in "...". */
size_t filter_error_path_push(struct cctx *c, const char *key, long index)
{
    size_t old = c->pathlen;
    size_t room = sizeof(c->path) - old;
    int n;
    if (index >= 0) {
        n = snprintf(c->path + old, room, "%s%s[%ld]", old ? "." : "", key, index);
    } else {
        n = snprintf(c->path + old, room, "%s%s", old ? "." : "", key);
    }
    if (n < 0 || (size_t)n >= room) {
        memcpy(c->path + sizeof(c->path) - 4, "...", 4);
        c->pathlen = sizeof(c->path) - 1;
    } else {
        c->pathlen = old + (size_t)n;
    }
    return old;
}

void filter_error_path_pop(struct cctx *c, size_t old)
{
    c->pathlen = old;
    c->path[old] = '\0';
}

/* Appends the formatted text to the path as it is (no dot); returns the old length. A path that
 * would not fit is left as it was. */
SL_PRINTF(2, 3) size_t filter_error_path_addf(struct cctx *c, const char *fmt, ...)
{
    size_t old = c->pathlen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + old, sizeof(c->path) - old, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(c->path) - old) {
        c->pathlen = old + (size_t)n;
    } else {
        c->path[old] = '\0';
    }
    return old;
}

const char *filter_error_type_name(const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return "a string";
    }
    if (cJSON_IsNumber(v)) {
        return "a number";
    }
    if (cJSON_IsBool(v)) {
        return "a boolean";
    }
    if (cJSON_IsNull(v)) {
        return "null";
    }
    if (cJSON_IsArray(v)) {
        return "an array";
    }
    if (cJSON_IsObject(v)) {
        return "an object";
    }
    return "an invalid value";
}

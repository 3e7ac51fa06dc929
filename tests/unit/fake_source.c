/* SPDX-License-Identifier: Apache-2.0 */
/* fake_source.c: the plumbing both fake sources of the unit tests use (fake_source.h), so the
 * stream fake and the queue fake differ only in what they model. Keeps no state. */
#include "fake_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "opt.h"
#include "partition.h"

void *fake_source_grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return p;
    }
    *cap = *cap ? *cap * 2 : 16;
    void *q = realloc(p, *cap * size);
    if (!q) {
        abort();
    }
    return q;
}

int fake_source_check_scheme(const char *arn, const char *scheme, char *errbuf, size_t errlen)
{
    if (strncmp(arn, scheme, strlen(scheme)) != 0) {
        (void)snprintf(errbuf, errlen, "EventSourceArn: not %s", scheme);
        return SL_ECONFIG;
    }
    return 0;
}

size_t fake_source_record_key(void *ctx,
                              struct sl_part *part,
                              const struct sl_record *rec,
                              const char **ret_key)
{
    (void)ctx;
    *ret_key = sl_recq_meta(&part->q, rec);
    return rec->meta_len;
}

const struct sl_opt fake_source_no_opts[] = {
    {0},
};

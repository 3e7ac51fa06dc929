/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_FAKE_SOURCE_H
#define SL_TEST_FAKE_SOURCE_H

/* What the fake sources (fake_stream.c, fake_queue.c) share (fake_source.c): growing their
 * logs, the EventSourceArn check by scheme, the record key kept as the record's meta, no options
 * and the {"Records":[...]} event wrapping. */

#include <stddef.h>

#include "source.h"

/* p (an array of cap elements of size bytes, n used) with room for one more: doubled (16 at
 * first) when full; aborts when out of memory (a test's fake, not the code under test). */
void *fake_source_grow(void *p, size_t *cap, size_t n, size_t size);

/* 0 if arn starts with scheme, else SL_ECONFIG with "EventSourceArn: not <scheme>". */
int fake_source_check_scheme(const char *arn, const char *scheme, char *errbuf, size_t errlen);

/* record_key: the record's meta, where both fakes keep the key (a partition key or a group). */
size_t fake_source_record_key(void *ctx,
                              struct sl_part *part,
                              const struct sl_record *rec,
                              const char **ret_key);

/* A fake has no options. */
extern const struct sl_opt fake_source_no_opts[];

/* An event format named event_name that wraps records as {"Records":[r1,r2,...]} and filters on the
 * JSON payload under the field payload. */
#define FAKE_SOURCE_EVENT(event_name, payload)                                     \
    {                                                                              \
        .name = (event_name), .open = "{\"Records\":[", .sep = ",", .close = "]}", \
        .filter_payload_fields = (const char *const[]){(payload), NULL},           \
    }

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* event.c: the defaults of an event shape's optional members (event.h), filled once into a
 * copy of the shape by sl_event_format_complete (the registry does it for every source), so
 * that the batcher and the on-failure path call a shape's operations without testing them.
 * The shapes themselves live in their own modules (event_kinesis.c, sources/kafka/). Pure;
 * loop thread. */
#include "event.h"

#include <assert.h>
#include <string.h>

#include "encoder.h"
#include "source.h"

static int event_def_encode_open(const struct sl_source_ops *ops,
                                 void *src_ctx,
                                 struct sl_part *part,
                                 struct sl_buf *out)
{
    (void)src_ctx;
    (void)part;
    return sl_buf_puts(out, ops->event->open);
}

static int event_def_encode_close(const struct sl_source_ops *ops,
                                  void *src_ctx,
                                  struct sl_part *part,
                                  struct sl_buf *out)
{
    (void)src_ctx;
    (void)part;
    return sl_buf_puts(out, ops->event->close);
}

/* Never called: only a source whose caps say its batches span partitions gets such a batch,
 * and such a source's shape has its own (tests/unit/test_registry.c checks it). */
static int event_def_encode_next_part(const struct sl_source_ops *ops,
                                      void *src_ctx,
                                      struct sl_part *part,
                                      struct sl_buf *out)
{
    (void)ops;
    (void)src_ctx;
    (void)part;
    (void)out;
    return SL_EINVAL;
}

static int event_def_encode_batch_info(const struct sl_source_ops *ops,
                                       void *src_ctx,
                                       const struct sl_batch_run *runs,
                                       size_t n_runs,
                                       struct sl_buf *out)
{
    (void)ops;
    (void)src_ctx;
    size_t n = 0;
    for (size_t i = 0; i < n_runs; i++) {
        n += runs[i].n;
    }
    int r = sl_buf_puts(out, "\"BatchInfo\":{\"partition\":");
    if (r < 0) {
        return r;
    }
    r = sl_enc_json_str(out, runs[0].part->name, strlen(runs[0].part->name));
    if (r < 0) {
        return r;
    }
    return sl_buf_printf(out, ",\"batchSize\":%zu}", n);
}

static int event_def_encode_record_info(const struct sl_source_ops *ops,
                                        void *src_ctx,
                                        struct sl_part *part,
                                        const struct sl_record *rec,
                                        struct sl_buf *out)
{
    const struct sl_batch_run run = {part, rec, rec, 1};
    return ops->event->encode_batch_info(ops, src_ctx, &run, 1, out);
}

static int event_def_encode_source_arn(const struct sl_source_ops *ops,
                                       void *src_ctx,
                                       struct sl_part *part,
                                       struct sl_buf *out)
{
    (void)src_ctx;
    return sl_buf_printf(out, "%s%s", ops->scheme, part->name);
}

#define EVENT_DEFAULT(ev, slot)            \
    do {                                   \
        if (!(ev)->slot) {                 \
            (ev)->slot = event_def_##slot; \
        }                                  \
    } while (0)

void sl_event_format_complete(struct sl_event_format *ev)
{
    assert(ev->sep && (ev->open || ev->encode_open) && (ev->close || ev->encode_close));
    EVENT_DEFAULT(ev, encode_open);
    EVENT_DEFAULT(ev, encode_close);
    EVENT_DEFAULT(ev, encode_next_part);
    EVENT_DEFAULT(ev, encode_batch_info);
    EVENT_DEFAULT(ev, encode_record_info);
    EVENT_DEFAULT(ev, encode_source_arn);
    static const char *const no_fields[] = {NULL};
    if (!ev->filter_payload_fields) {
        ev->filter_payload_fields = no_fields;
    }
}

#undef EVENT_DEFAULT

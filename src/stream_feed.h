/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_FEED_H
#define SL_STREAM_FEED_H

#include <stdbool.h>

#include <uv.h>

#include "clock.h"
#include "err.h"
#include "function.h"

struct sl_stream;

/* A delivery stream as the function of a mapping (stream_feed.c): what a mapping whose
 * FunctionName is a delivery stream's ARN invokes, and what a KinesisStreamAsSource stream's
 * own mapping invokes. Loop thread. */

/* Makes the function that puts a batch's records into s (borrowed: it must outlive the
 * function, and its spool must be closed before sl_function_free, so that no append is still
 * owed a callback). With kinesis, each record keeps its Kinesis metadata (fh_kmeta.h) and its
 * ApproximateArrivalTimestamp as its arrival (Firehose's, for a Kinesis source); without, it
 * arrives when it is put, as a direct put's does. name is copied. Returns 0 and *ret_fn (owned:
 * sl_function_stop, sl_function_free), or SL_ENOMEM. */
SL_NODISCARD int sl_stream_feed_new(uv_loop_t *loop,
                                    struct sl_stream *s,
                                    const char *name,
                                    bool kinesis,
                                    const struct sl_clock *clock,
                                    struct sl_function **ret_fn);

/* How often a batch the spool's quota refused is offered again. */
#define SL_STREAM_FEED_RETRY_MS 100

#endif

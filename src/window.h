/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_WINDOW_H
#define SL_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* Tumbling windows (TumblingWindowInSeconds, reference/esm.md §6): the pieces that do not
 * depend on a mapping's state. Pure; any thread. */

/* State a function may carry from one invocation to the next within a window; beyond it the
 * window ends early. */
#define SL_WINDOW_STATE_MAX (1024u * 1024u)

/* The start of the window that holds arrival_ms: windows are aligned to multiples of their
 * length since the epoch. */
int64_t sl_window_start_ms(int64_t arrival_ms, int64_t window_ms);

struct sl_window_fields {
    int64_t start_ms;
    int64_t window_ms;
    const char *state; /* JSON object text */
    size_t state_len;
    const char *shard_id;
    const char *arn;
    bool final;
    bool terminated_early;
};

/* Turns the event in body ({"Records":[...]} as the batcher wrote it) into a tumbling window
 * event: "window", "state", "shardId", "eventSourceARN", "isFinalInvokeForWindow" and
 * "isWindowTerminatedEarly" follow "Records". Returns 0, SL_EINVAL (body does not end in '}')
 * or SL_ENOMEM. */
SL_NODISCARD int sl_window_wrap(struct sl_buf *body, const struct sl_window_fields *w);

/* Reads the "state" a tumbling window function returned. Returns 0 and *ret_state (owned
 * compact JSON text of an object) or SL_EPROTO when the response has no object "state" (the
 * invocation then counts as failed, as AWS's does), or SL_ENOMEM. */
SL_NODISCARD int
sl_window_read_state(const char *body, size_t len, char **ret_state, size_t *ret_len);

#endif

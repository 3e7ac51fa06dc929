/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_WINDOW_H
#define SL_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "recq.h"
#include "err.h"

/* Tumbling windows (TumblingWindowInSeconds, reference/esm.md §6): the event fields, the
 * state a function returns, and one lane's window (struct sl_window: when it opens, which
 * records it holds, when it closes). The functions above struct sl_window are pure (any
 * thread); a window belongs to its lane (loop thread). */

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

/* One lane's tumbling window (a windowed partition has one lane). It opens at the first record
 * the lane may send, holds the records delivered in it (flagged SL_REC_WINDOWED by the lane)
 * until it closes, keeps the state the function returned, and says when its final invocation
 * is due: time is up, a record of a later window waits, the partition ended (its source will
 * produce nothing more of it: a closed shard, a rotated file; AWS closes a shard's window when
 * the shard ends, esm.md §6), the partition's buffer is full, or the state grew over
 * SL_WINDOW_STATE_MAX (the last two end it early: the same window goes on with fresh state). It
 * never invokes, arms a timer or moves a checkpoint: it answers, and the lane does. */
struct sl_window;

/* Returns a closed window of window_ms (> 0), or NULL on OOM. */
struct sl_window *sl_window_new(int64_t window_ms);
/* NULL is a no-op. */
void sl_window_free(struct sl_window *w);

enum sl_window_step {
    SL_WINDOW_BATCH, /* *waiting is cut to the current window's records: a batch of them, if any */
    SL_WINDOW_FINAL, /* the window is over: its final invocation comes next */
    SL_WINDOW_WAIT,  /* nothing to send until the window ends, *ret_wait_ms from now */
    SL_WINDOW_STEP_COUNT,
};

/* Decides the lane's next step. q is the partition's queue; the lane's eligible records
 * (neither done nor taken) are counted from index start, *waiting of them. part_full: the
 * partition may fetch no more (its buffer is full of the window's records). part_ended: its
 * source will produce nothing more of it. now_ms is wall clock. Opens the window of the first
 * eligible record when none is open. */
enum sl_window_step sl_window_dispatch(struct sl_window *w,
                                       const struct sl_recq *q,
                                       size_t start,
                                       size_t *waiting,
                                       bool part_full,
                                       bool part_ended,
                                       int64_t now_ms,
                                       int64_t *ret_wait_ms);

/* Appends the window's fields to the event in body, for the partition part_name (shardId) of
 * the source arn (eventSourceARN, raw; borrowed); final for the window's final invocation (no
 * records). Returns 0 or SL_EINVAL / SL_ENOMEM as sl_window_wrap. */
SL_NODISCARD int sl_window_add_fields(const struct sl_window *w,
                                      struct sl_buf *body,
                                      const char *arn,
                                      const char *part_name,
                                      bool final);

/* The records up to absolute index end_abs (exclusive) were delivered in the window. */
void sl_window_delivered(struct sl_window *w, uint64_t end_abs);

/* Takes ownership of the state the function returned (JSON object text of len bytes). Returns
 * true when it is over SL_WINDOW_STATE_MAX: the window then ends early, its final invocation
 * due next. */
bool sl_window_set_state(struct sl_window *w, char *state, size_t len);

/* The final invocation succeeded: the window's records in q become done (SL_REC_WINDOWED ->
 * SL_REC_DONE) so that the checkpoint may pass them, and its state goes. A window ended early
 * goes on, from the next record, with fresh state. */
void sl_window_close(struct sl_window *w, struct sl_recq *q);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* carry_int.h: what the files of the carry share and nothing else includes: the state of a carry
 * and of its group, which carry_life.c makes and frees and carry.c drives. Everything outside the
 * carry goes through carry.h. */
#ifndef SL_CARRY_INT_H
#define SL_CARRY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "carry.h"
#include "lanebatch.h"
#include "retry.h"

struct sl_carry {
    struct sl_carry_group *g;
    void *lane_tag;
    void *part_tag; /* the lane's own partition */
    struct sl_part *part;
    struct sl_progress_part *prog;
    struct sl_window *win; /* TumblingWindowInSeconds > 0: the lane's window (borrowed) */
    enum sl_carry_state state;
    struct sl_lanebatch *b; /* the batch (lanebatch.c) */
    unsigned attempts;      /* counted failures of cur */
    unsigned invokes;       /* invocations of cur (approximateInvokeCount) */
    int last_status;
    bool last_function_error;
    struct sl_buf body;             /* cur's event, as sent */
    struct sl_onfail_write *ofw;    /* the on-failure path's write, once the lane gave up */
    struct sl_lanebatch_range dest; /* the records it writes */
    int64_t last_end_ms;
    int64_t first_invoke_ms; /* when cur was first invoked (a queue's hold is bounded from it) */
    bool in_final; /* the invocation in flight (or backing off) is the window's final one */
    uv_timer_t timer;
};

struct sl_carry_group {
    const char *inst;
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const struct sl_source_ops *ops;
    void *src_ctx;
    struct sl_function *fn;
    struct sl_onfail *onfail;
    struct sl_batch_limits lim;
    struct sl_invoker_policy policy;
    int64_t max_concurrency;
    int64_t max_record_age_s;
    int64_t queue_hold_ms;
    int64_t queue_max_hold_ms;
    struct sl_carry_host host;
    struct sl_retry_policy retry;
    uint64_t rng;
    struct sl_memo *memo; /* retry state left by batches of revoked partitions */
    char warned_key[64];
    bool draining;
    int in_flight; /* invocations */
};

#endif

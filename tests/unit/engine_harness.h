/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_ENGINE_HARNESS_H
#define SL_TEST_ENGINE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "clock.h"
#include "config.h"
#include "function.h"
#include "mapping.h"

/* What the engine's tests share (test_engine.c with the fake stream, test_engine_queue.c with
 * the fake queue): a loop, the injected clock, a temporary directory, a mapping built from JSON
 * text by the config loader, and a test function (function "f") whose answers the test gives,
 * held until it answers or at once, always on a later loop turn as a real function would.
 *
 * Time: the engine decides by the injected clock and waits with one-shot libuv timers armed for
 * the difference. libuv's own clock cannot be moved, so eh_advance() moves the fake clock and
 * then fires every armed timer (restarting it with timeout 0); the engine re-checks its due
 * times against the fake clock. Nothing sleeps: eh_settle runs the loop with UV_RUN_NOWAIT for a
 * bounded number of turns, eh_until runs it to a condition under a real-time deadline. */

#define EH_TURNS       100000 /* loop turns one settle may take */
#define EH_DEADLINE_MS 5000   /* real-time bound of a wait */
#define EH_SIZE_ALL    SIZE_MAX

/* What the function answers to one invocation. */
struct eh_reply {
    enum sl_outcome outcome;
    const char *body;    /* response body, or NULL */
    int64_t retry_after; /* ms, or -1 */
    bool hold;           /* not answered until the test calls eh_answer */
};

/* One invocation the function received. */
struct eh_call {
    size_t len;    /* event bytes */
    int64_t at_ms; /* fake clock, monotonic */
    sl_invoke_cb cb;
    void *arg;
    bool held;     /* waits for eh_answer */
    bool queued;   /* answered on the next loop turn */
    bool answered; /* its callback ran */
    struct eh_reply reply;
};

/* What the test learns of its function's invocations. */
struct eh_hooks {
    /* Call idx arrived with its event parsed (doc): the test records what it needs and may
     * change the reply (hold it, or answer otherwise than success). */
    void (*invoked)(void *arg, size_t idx, const cJSON *doc, struct eh_reply *rep);
    /* Call idx is about to be answered (before the engine sees the answer). May be NULL. */
    void (*answering)(void *arg, size_t idx);
    void *arg;
};

struct eh {
    uv_loop_t loop;
    struct sl_clock_fake clock;
    char *dir;
    char conf_path[600];
    struct sl_config *cfg;
    struct sl_function fn;
    struct sl_mapping *m;
    uv_idle_t answer;
    struct eh_call *calls;
    size_t n_calls;
    size_t cap_calls;
    bool hold_all;         /* invocations wait for eh_answer; else they succeed at once */
    int64_t fn_timeout_ms; /* the function's timeout as it tells the engine (0: unknown) */
    struct eh_hooks hooks;
};

/* Loop, clock (at a fixed wall time), a fresh directory, the function's answering handle. */
void eh_init(struct eh *h, const struct eh_hooks *hooks);
/* Closes the mapping (eh_close without flush) and everything eh_init made. */
void eh_fini(struct eh *h);

/* Writes the configuration file: function "f" and one mapping with the keys of fields (JSON
 * object members, no braces), state under the directory. */
void eh_write_config(struct eh *h, const char *fields);
/* Writes the configuration (fields, then extra when not empty), loads it, builds the mapping
 * of it with the test function and starts it; fails the test on an error. */
void eh_open(struct eh *h, const char *fields, const char *extra);
/* The same, but returns what sl_mapping_start returned (the mapping is built either way). */
int eh_open_start(struct eh *h, const char *fields, const char *extra);
/* Ends the mapping as a drain does, then frees it; without flush, what the store had not
 * written yet is lost (as in a crash). Runs the loop until its handles are closed. */
void eh_close(struct eh *h, bool flush);

/* Answers held invocation idx (on the next loop turn). */
void eh_answer(struct eh *h, size_t idx, enum sl_outcome outcome, const char *body);

/* Runs what is due now: NOWAIT turns until the loop has nothing immediate twice in a row. */
void eh_settle(struct eh *h);
/* Time passes: the fake clock moves by ms, and every armed timer fires. */
void eh_advance(struct eh *h, int64_t ms);
/* Runs the loop until cond(arg) or EH_DEADLINE_MS of real time. */
bool eh_until(struct eh *h, bool (*cond)(void *arg), void *arg);

#endif

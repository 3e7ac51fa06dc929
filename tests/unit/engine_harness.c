/* SPDX-License-Identifier: Apache-2.0 */
/* engine_harness.c: the ground the engine's tests share (engine_harness.h): loop, injected
 * clock, directory, a mapping from JSON text, and the test function whose answers the test
 * gives. Kept in one place so test_engine.c and test_engine_queue.c test the same engine the
 * same way. Loop thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_harness.h"
#include "helpers.h"

static void eh_deliver(struct eh *h, size_t idx)
{
    struct eh_call *c = &h->calls[idx];
    if (h->hooks.answering) {
        h->hooks.answering(h->hooks.arg, idx);
    }
    c->answered = true;
    c->queued = false;
    struct sl_invoke_result res = {
        .outcome = c->reply.outcome,
        .status = c->reply.outcome == SL_OUTCOME_SUCCESS ? 200 : 500,
        .body = c->reply.body,
        .body_len = c->reply.body ? strlen(c->reply.body) : 0,
        .error_type = c->reply.outcome == SL_OUTCOME_FUNCTION_ERROR ? "Unhandled" : NULL,
        .detail = "test",
        .retry_after_ms = c->reply.retry_after,
    };
    sl_invoke_cb cb = c->cb;
    void *arg = c->arg;
    cb(arg, &res); /* may invoke again: c may move */
}

static void eh_answer_cb(uv_idle_t *handle)
{
    struct eh *h = handle->data;
    bool more = false;
    for (size_t i = 0; i < h->n_calls; i++) {
        if (h->calls[i].queued) {
            eh_deliver(h, i);
            more = true;
        }
    }
    if (!more) {
        uv_idle_stop(handle);
    }
}

void eh_answer(struct eh *h, size_t idx, enum sl_outcome outcome, const char *body)
{
    struct eh_call *c = &h->calls[idx];
    assert_true(c->held && !c->answered && !c->queued);
    c->held = false;
    c->queued = true;
    c->reply.outcome = outcome;
    c->reply.body = body;
    c->reply.retry_after = -1;
    uv_idle_start(&h->answer, eh_answer_cb);
}

static int tfn_invoke(void *ctx, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    struct eh *h = ctx;
    if (h->n_calls == h->cap_calls) {
        h->cap_calls = h->cap_calls ? h->cap_calls * 2 : 32;
        h->calls = realloc(h->calls, h->cap_calls * sizeof(*h->calls));
        assert_non_null(h->calls);
    }
    size_t idx = h->n_calls++;
    struct eh_call *c = &h->calls[idx];
    memset(c, 0, sizeof(*c));
    c->len = body_len;
    c->at_ms = sl_clock_now_ms(&h->clock.clock);
    c->cb = cb;
    c->arg = arg;
    struct eh_reply rep = {SL_OUTCOME_SUCCESS, NULL, -1, h->hold_all};
    cJSON *doc = cJSON_ParseWithLength(body, body_len);
    assert_non_null(doc);
    h->hooks.invoked(h->hooks.arg, idx, doc, &rep);
    cJSON_Delete(doc);
    c = &h->calls[idx];
    c->reply = rep;
    c->held = rep.hold;
    c->queued = !rep.hold;
    if (c->queued) {
        uv_idle_start(&h->answer, eh_answer_cb);
    }
    return 0;
}

/* Cancels the held invocations (each still answers, as a canceled one does). */
static void tfn_stop(void *ctx)
{
    struct eh *h = ctx;
    for (size_t i = 0; i < h->n_calls; i++) {
        if (h->calls[i].held) {
            eh_answer(h, i, SL_OUTCOME_TRANSPORT_ERROR, NULL);
        }
    }
}

static const struct sl_function_ops tfn_ops = {
    .abi = SL_FUNCTION_ABI,
    .name = "test",
    .invoke = tfn_invoke,
    .stop = tfn_stop,
};

void eh_init(struct eh *h, const struct eh_hooks *hooks)
{
    memset(h, 0, sizeof(*h));
    h->hooks = *hooks;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    sl_clock_fake_init(&h->clock, 1000000, INT64_C(1700000000000));
    h->dir = test_tmpdir();
    (void)snprintf(h->conf_path, sizeof(h->conf_path), "%s/sluice.json", h->dir);
    uv_idle_init(&h->loop, &h->answer);
    h->answer.data = h;
}

void eh_fini(struct eh *h)
{
    eh_close(h, false);
    uv_close((uv_handle_t *)&h->answer, NULL);
    for (int i = 0; i < EH_TURNS && uv_loop_alive(&h->loop); i++) {
        (void)uv_run(&h->loop, UV_RUN_ONCE);
    }
    assert_int_equal(uv_loop_close(&h->loop), 0);
    free(h->calls);
    h->calls = NULL;
    test_rmtree(h->dir);
    free(h->dir);
    h->dir = NULL;
}

void eh_write_config(struct eh *h, const char *fields)
{
    char text[4096];
    int n = snprintf(text, sizeof(text),
                     "{\"state_dir\":\"%s/state\",\"functions\":{\"f\":{\"type\":\"exec\","
                     "\"command\":[\"/bin/true\"]}},\"mappings\":[{%s}]}",
                     h->dir, fields);
    assert_true(n > 0 && (size_t)n < sizeof(text));
    test_write_file(h->conf_path, "w", text, strlen(text));
}

int eh_open_start(struct eh *h, const char *fields, const char *extra)
{
    char all[3072];
    int n = snprintf(all, sizeof(all), "%s%s%s", fields, extra[0] ? "," : "", extra);
    assert_true(n > 0 && (size_t)n < sizeof(all));
    eh_write_config(h, all);
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    int r = sl_config_load(h->conf_path, &h->cfg, &errs);
    if (r < 0) {
        fail_msg("config: %s", errs.n ? errs.items[0] : "?");
    }
    sl_errlist_fini(&errs);
    h->fn = (struct sl_function){
        .ops = &tfn_ops, .ctx = h, .name = "f", .timeout_ms = h->fn_timeout_ms};
    struct sl_mapping_env env = {
        .loop = &h->loop,
        .clock = &h->clock.clock,
        .state_dir = h->cfg->state_dir,
        .region = h->cfg->region,
        .fn = &h->fn,
    };
    char errbuf[512] = "";
    r = sl_mapping_new(&h->cfg->mappings[0], &env, &h->m, errbuf, sizeof(errbuf));
    if (r < 0) {
        fail_msg("mapping: %s", errbuf);
    }
    return sl_mapping_start(h->m);
}

void eh_open(struct eh *h, const char *fields, const char *extra)
{
    assert_int_equal(eh_open_start(h, fields, extra), 0);
}

void eh_close(struct eh *h, bool flush)
{
    if (!h->m) {
        return;
    }
    sl_mapping_drain(h->m);
    tfn_stop(h);
    for (int i = 0; i < EH_TURNS && sl_mapping_in_flight(h->m) > 0; i++) {
        (void)uv_run(&h->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(sl_mapping_in_flight(h->m), 0);
    if (flush) {
        int r = sl_mapping_flush(h->m);
        (void)r; /* a test that broke the disk on purpose gets an error here */
    }
    sl_mapping_free(h->m);
    h->m = NULL;
    /* until its handles are closed and the store's last write ended (a next run would open
     * the same store) */
    for (int i = 0; i < EH_TURNS && uv_loop_alive(&h->loop); i++) {
        (void)uv_run(&h->loop, UV_RUN_ONCE);
    }
    sl_config_free(h->cfg);
    h->cfg = NULL;
}

void eh_settle(struct eh *h)
{
    int quiet = 0;
    for (int i = 0; i < EH_TURNS && quiet < 2; i++) {
        (void)uv_run(&h->loop, UV_RUN_NOWAIT);
        quiet = uv_backend_timeout(&h->loop) != 0 ? quiet + 1 : 0;
    }
}

static void eh_fire_cb(uv_handle_t *handle, void *arg)
{
    (void)arg;
    if (handle->type != UV_TIMER || !uv_is_active(handle) || uv_is_closing(handle)) {
        return;
    }
    uv_timer_t *t = (uv_timer_t *)handle;
    (void)uv_timer_start(t, t->timer_cb, 0, uv_timer_get_repeat(t));
}

/* A timer cannot tell how much fake time it was armed for (libuv counts real time), so all of
 * them fire: where the engine decides by time (the batching window) it checks the fake clock
 * and arms again; a retry backoff does not, so tests advance by the retry cap when they let one
 * end. */
void eh_advance(struct eh *h, int64_t ms)
{
    sl_clock_fake_advance(&h->clock, ms);
    uv_walk(&h->loop, eh_fire_cb, NULL);
    eh_settle(h);
}

bool eh_until(struct eh *h, bool (*cond)(void *arg), void *arg)
{
    return test_run_until(&h->loop, cond, arg, EH_DEADLINE_MS);
}

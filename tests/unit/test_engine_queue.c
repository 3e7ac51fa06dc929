/* SPDX-License-Identifier: Apache-2.0 */
/* test_engine_queue.c: the engine driven through its public API (mapping.h) with the fake
 * queue source (fake_queue.c): the queue delivery model of sources/README.md "The queue
 * model". A mapping built from JSON text by the config loader, a test function whose answers
 * the test gives (held until it answers, or at once), the injected clock moved by hand. The
 * fake's tick runs on real time (1 ms) and reads the fake clock, so waits run the loop to a
 * condition under a real-time deadline; retry backoffs are set long (6 s to 60 s) so none
 * fires by itself while a test runs.
 *
 * Each test was run with its feature removed by hand (never committed) and failed:
 *   never_deleted_before_success: carry.c acking the batch's leases at invoke (after the
 *     hold) instead of after the answer;
 *   success_deletes_all: carry_queue_verdict not acking (sl_queuebatch_end skipped);
 *   partial_deletes_exactly_unlisted, all_failed_deletes_nothing: the partial response ignored
 *     (sl_queuebatch_judge with report_item_failures false);
 *   function_error_releases_no_retry: the stream verdict used for queues (carry_is_queue false
 *     in carry_invoked): retried in process, no release;
 *   long_invocation_held: no queue_hold at invoke (carry_invoke);
 *   several_batches_in_flight: one lane per queue (mapping_lanes_per_part returning 1);
 *   fifo_group_one_batch_in_flight: intake giving keyed records SL_REC_LANE_ANY;
 *   fifo_failure_releases_rest_of_group: the group spread of sl_queuebatch_judge removed;
 *   drain_releases_unbatched_visible_now: sl_mapping_drain without the queue's release;
 *   failed_delete_retried_counted_once: the queue_report handler counting nothing;
 *   drain_waits_for_deletes_bounded: sl_mapping_in_flight not counting the queue source
 *     (first assertion), and sl_mapping_cancel not ending that count (second);
 *   lease_lost_before_invoke_released: the queue_report handler not releasing a record
 *     whose lease was lost (it was invoked on its first, lost lease);
 *   progress_line_counts_deletes: the queue counters left out of the progress line (fails
 *     against main too);
 *   config_refuses_stream_keys: config_queue_rules not called (fails against main too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "fake_queue.h"
#include "function.h"
#include "helpers.h"
#include "log.h"
#include "mapping.h"
#include "mapping_stats.h"

#define QE_DEADLINE_MS 5000
#define QE_MAX_CALLS   64
#define QE_MAX_RECS    32
#define QE_UUID        "engine-queue-test"

/* One invocation the function received. */
struct qcall {
    size_t msgs[QE_MAX_RECS]; /* fake_queue message indices, in event order */
    unsigned receives[QE_MAX_RECS];
    size_t n;
    sl_invoke_cb cb;
    void *arg;
    bool answered;
    bool queued; /* answered on the next loop turn */
    enum sl_outcome outcome;
    const char *body;
};

struct qe {
    uv_loop_t loop;
    struct sl_clock_fake clock;
    char *dir;
    char conf_path[600];
    struct sl_config *cfg;
    struct fake_queue fq;
    struct sl_function fn;
    struct sl_mapping *m;
    uv_idle_t answer;
    struct qcall calls[QE_MAX_CALLS];
    size_t n_calls;
    bool hold; /* invocations wait for qe_answer; else they succeed at once */
};

static void qe_answer_cb(uv_idle_t *h)
{
    struct qe *e = h->data;
    uv_idle_stop(h);
    for (size_t i = 0; i < e->n_calls; i++) {
        struct qcall *c = &e->calls[i];
        if (!c->queued) {
            continue;
        }
        c->queued = false;
        c->answered = true;
        struct sl_invoke_result res = {
            .outcome = c->outcome,
            .status = c->outcome == SL_OUTCOME_SUCCESS ? 200 : 500,
            .body = c->body,
            .body_len = c->body ? strlen(c->body) : 0,
            .error_type = c->outcome == SL_OUTCOME_FUNCTION_ERROR ? "Unhandled" : NULL,
            .detail = "test",
            .retry_after_ms = -1,
        };
        c->cb(c->arg, &res);
    }
}

/* Answers invocation i (on the next loop turn, as a real function would). */
static void qe_answer(struct qe *e, size_t i, enum sl_outcome outcome, const char *body)
{
    struct qcall *c = &e->calls[i];
    assert_false(c->answered || c->queued);
    c->outcome = outcome;
    c->body = body;
    c->queued = true;
    uv_idle_start(&e->answer, qe_answer_cb);
}

static int tfn_invoke(void *ctx, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    struct qe *e = ctx;
    assert_true(e->n_calls < QE_MAX_CALLS);
    struct qcall *c = &e->calls[e->n_calls++];
    memset(c, 0, sizeof(*c));
    c->cb = cb;
    c->arg = arg;
    cJSON *doc = cJSON_ParseWithLength(body, body_len);
    assert_non_null(doc);
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "Records"))
    {
        assert_true(c->n < QE_MAX_RECS);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, "body");
        const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(r, "attributes");
        const cJSON *rc = cJSON_GetObjectItemCaseSensitive(attrs, "ApproximateReceiveCount");
        size_t i = fake_queue_find(&e->fq, b->valuestring);
        assert_true(i != SIZE_MAX);
        c->receives[c->n] = (unsigned)strtoul(rc->valuestring, NULL, 10);
        c->msgs[c->n++] = i;
    }
    cJSON_Delete(doc);
    if (!e->hold) {
        qe_answer(e, e->n_calls - 1, SL_OUTCOME_SUCCESS, NULL);
    }
    return 0;
}

/* Cancels the held invocations (each still answers, as a canceled one does). */
static void tfn_stop(void *ctx)
{
    struct qe *e = ctx;
    for (size_t i = 0; i < e->n_calls; i++) {
        if (!e->calls[i].answered && !e->calls[i].queued) {
            qe_answer(e, i, SL_OUTCOME_TRANSPORT_ERROR, NULL);
        }
    }
}

static const struct sl_function_ops tfn_ops = {
    .abi = SL_FUNCTION_ABI,
    .name = "test",
    .invoke = tfn_invoke,
    .stop = tfn_stop,
};

static void qe_open(struct qe *e, const char *extra)
{
    char text[2048];
    (void)snprintf(text, sizeof(text),
                   "{\"state_dir\":\"%s/state\",\"functions\":{\"f\":{\"type\":\"exec\","
                   "\"command\":[\"/bin/true\"]}},\"mappings\":[{\"UUID\":\"" QE_UUID "\","
                   "\"EventSourceArn\":\"" FAKE_QUEUE_SCHEME "q\",\"FunctionName\":\"f\"%s%s}]}",
                   e->dir, extra[0] ? "," : "", extra);
    test_write_file(e->conf_path, "w", text, strlen(text));
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    int r = sl_config_load(e->conf_path, &e->cfg, &errs);
    if (r < 0) {
        fail_msg("config: %s", errs.n ? errs.items[0] : "?");
    }
    sl_errlist_fini(&errs);
    e->fn = (struct sl_function){.ops = &tfn_ops, .ctx = e, .name = "f"};
    struct sl_mapping_env env = {
        .loop = &e->loop,
        .clock = &e->clock.clock,
        .state_dir = e->cfg->state_dir,
        .region = e->cfg->region,
        .fn = &e->fn,
    };
    char errbuf[512] = "";
    r = sl_mapping_new(&e->cfg->mappings[0], &env, &e->m, errbuf, sizeof(errbuf));
    if (r < 0) {
        fail_msg("mapping: %s", errbuf);
    }
    assert_int_equal(sl_mapping_start(e->m), 0);
}

static void qe_close(struct qe *e)
{
    if (!e->m) {
        return;
    }
    sl_mapping_drain(e->m);
    tfn_stop(e);
    for (int i = 0; i < 100000 && sl_mapping_in_flight(e->m) > 0; i++) {
        (void)uv_run(&e->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(sl_mapping_in_flight(e->m), 0);
    sl_mapping_free(e->m);
    e->m = NULL;
    for (int i = 0; i < 100000 && uv_loop_alive(&e->loop); i++) {
        (void)uv_run(&e->loop, UV_RUN_ONCE);
    }
    sl_config_free(e->cfg);
    e->cfg = NULL;
}

static bool qe_until(struct qe *e, bool (*cond)(void *arg))
{
    return test_run_until(&e->loop, cond, e, QE_DEADLINE_MS);
}

/* Lets the fake's tick run a few times on the current clock. */
static bool qe_ticks_cond(void *arg)
{
    static int n;
    (void)arg;
    return ++n % 50 == 0;
}

static void qe_ticks(struct qe *e)
{
    (void)test_run_until(&e->loop, qe_ticks_cond, e, 200);
}

static bool qe_one_call(void *arg)
{
    return ((struct qe *)arg)->n_calls >= 1;
}

static bool qe_two_calls(void *arg)
{
    return ((struct qe *)arg)->n_calls >= 2;
}

static bool qe_three_calls(void *arg)
{
    return ((struct qe *)arg)->n_calls >= 3;
}

static bool qe_all_deleted(void *arg)
{
    struct qe *e = arg;
    for (size_t i = 0; i < e->fq.n_msgs; i++) {
        if (!e->fq.msgs[i].deleted) {
            return false;
        }
    }
    return true;
}

static bool qe_source_idle(void *arg)
{
    struct qe *e = arg;
    return sl_mapping_in_flight(e->m) == 0;
}

static size_t qe_count(struct qe *e, enum fake_queue_call_kind kind, size_t msg)
{
    return fake_queue_count(&e->fq, kind, msg);
}

/* The value logged for the first call of kind on msg (-2: none). */
static int64_t qe_value(struct qe *e, enum fake_queue_call_kind kind, size_t msg)
{
    for (size_t i = 0; i < e->fq.n_calls; i++) {
        if (e->fq.calls[i].kind == kind && e->fq.calls[i].msg == msg) {
            return e->fq.calls[i].value;
        }
    }
    return -2;
}

static void qe_send_n(struct qe *e, const char *group, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char body[32];
        (void)snprintf(body, sizeof(body), "b%zu", e->fq.n_msgs);
        (void)fake_queue_send(&e->fq, group, body);
    }
}

static bool qcall_has(const struct qcall *c, size_t msg)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->msgs[i] == msg) {
            return true;
        }
    }
    return false;
}

/* --- fixtures --- */

static int qe_setup(void **state)
{
    struct qe *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    sl_clock_fake_init(&e->clock, 1000000, INT64_C(1700000000000));
    e->dir = test_tmpdir();
    (void)snprintf(e->conf_path, sizeof(e->conf_path), "%s/sluice.json", e->dir);
    fake_queue_init(&e->fq);
    uv_idle_init(&e->loop, &e->answer);
    e->answer.data = e;
    *state = e;
    return 0;
}

static int qe_teardown(void **state)
{
    struct qe *e = *state;
    qe_close(e);
    uv_close((uv_handle_t *)&e->answer, NULL);
    for (int i = 0; i < 1000 && uv_loop_alive(&e->loop); i++) {
        (void)uv_run(&e->loop, UV_RUN_ONCE);
    }
    assert_int_equal(uv_loop_close(&e->loop), 0);
    fake_queue_fini(&e->fq);
    test_rmtree(e->dir);
    free(e->dir);
    free(e);
    return 0;
}

/* --- acknowledgement: only after success, exactly the delivered --- */

static void test_queue_never_deleted_before_success(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    qe_send_n(e, "", 3);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    assert_int_equal(e->calls[0].n, 3);
    qe_ticks(e);
    sl_clock_fake_advance(&e->clock, 5000);
    qe_ticks(e);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 0);
    assert_int_equal(qe_count(e, FAKE_QUEUE_REQ_DELETE, SIZE_MAX), 0);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_HOLD, SIZE_MAX), 3);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
}

static void test_queue_success_deletes_all(void **state)
{
    struct qe *e = *state;
    qe_send_n(e, "", 4);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_all_deleted));
    assert_true(qe_until(e, qe_source_idle));
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 4);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_RELEASE, SIZE_MAX), 0);
    const struct sl_mapping_stats *s = sl_mapping_stats(e->m);
    assert_int_equal(s->delivered, 4);
    assert_int_equal(s->queue_deleted, 4);
    assert_int_equal(e->n_calls, 1);
}

static void test_queue_partial_deletes_exactly_unlisted(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    qe_send_n(e, "", 4);
    qe_open(e, "\"BatchSize\":10,\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]");
    assert_true(qe_until(e, qe_one_call));
    assert_int_equal(e->calls[0].n, 4);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS,
              "{\"batchItemFailures\":[{\"itemIdentifier\":\"m1\"},{\"itemIdentifier\":\"m3\"}]}");
    assert_true(qe_until(e, qe_source_idle));
    qe_ticks(e);
    assert_true(e->fq.msgs[0].deleted && e->fq.msgs[2].deleted);
    assert_false(e->fq.msgs[1].deleted || e->fq.msgs[3].deleted);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, 1) + qe_count(e, FAKE_QUEUE_CALL_ACK, 3), 0);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, 1), SL_QUEUE_KEEP_VISIBILITY);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, 3), SL_QUEUE_KEEP_VISIBILITY);
    assert_int_equal(sl_mapping_stats(e->m)->queue_deleted, 2);
    assert_int_equal(sl_mapping_stats(e->m)->failed, 2);
}

static void test_queue_all_failed_deletes_nothing(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10,\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]");
    assert_true(qe_until(e, qe_one_call));
    qe_answer(e, 0, SL_OUTCOME_SUCCESS,
              "{\"batchItemFailures\":[{\"itemIdentifier\":\"m0\"},{\"itemIdentifier\":\"m1\"}]}");
    assert_true(qe_until(e, qe_source_idle));
    qe_ticks(e);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 0);
    assert_int_equal(qe_count(e, FAKE_QUEUE_REQ_DELETE, SIZE_MAX), 0);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_RELEASE, SIZE_MAX), 2);
    assert_int_equal(e->n_calls, 1); /* no retry in process */
}

/* A function error releases the batch to its visibility timeout; it is not retried in
 * process, and comes back from the queue with its receive count + 1 (at-least-once). */
static void test_queue_function_error_releases_no_retry(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    e->fq.visibility_ms = 30000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    qe_answer(e, 0, SL_OUTCOME_FUNCTION_ERROR, NULL);
    assert_true(qe_until(e, qe_source_idle));
    qe_ticks(e);
    assert_int_equal(e->n_calls, 1);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, 0), SL_QUEUE_KEEP_VISIBILITY);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 0);
    sl_clock_fake_advance(&e->clock, 29000);
    qe_ticks(e);
    assert_int_equal(e->n_calls, 1); /* still invisible */
    sl_clock_fake_advance(&e->clock, 2000);
    assert_true(qe_until(e, qe_two_calls));
    assert_int_equal(e->calls[1].n, 2);
    assert_int_equal(e->calls[1].receives[0], 2);
    qe_answer(e, 1, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
}

/* An invocation longer than the visibility timeout keeps its messages invisible: the leases
 * are extended, nothing is delivered twice, no lease is lost. */
static void test_queue_long_invocation_held(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    e->fq.visibility_ms = 10000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    for (int i = 0; i < 12; i++) {
        sl_clock_fake_advance(&e->clock, 2500);
        qe_ticks(e);
    }
    assert_int_equal(e->n_calls, 1);
    assert_true(qe_count(e, FAKE_QUEUE_REQ_VISIBILITY, 0) >= 2);
    assert_int_equal(sl_mapping_stats(e->m)->queue_lease_lost, 0);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
    assert_int_equal(e->n_calls, 1);
}

/* --- concurrency and groups --- */

static void test_queue_several_batches_in_flight(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    qe_send_n(e, "", 6);
    qe_open(e, "\"BatchSize\":2,\"ScalingConfig\":{\"MaximumConcurrency\":3}");
    assert_true(qe_until(e, qe_three_calls));
    qe_ticks(e);
    assert_int_equal(e->n_calls, 3);
    assert_int_equal(sl_mapping_in_flight(e->m), 3);
    for (size_t i = 0; i < 3; i++) {
        qe_answer(e, i, SL_OUTCOME_SUCCESS, NULL);
    }
    assert_true(qe_until(e, qe_all_deleted));
}

/* FIFO: a group's next message is not delivered while one of the group is in flight, and a
 * group keeps its order; another group flows meanwhile. */
static void test_queue_fifo_group_one_batch_in_flight(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    size_t a = fake_queue_send(&e->fq, "g1", "a");
    size_t b = fake_queue_send(&e->fq, "g1", "b");
    size_t c = fake_queue_send(&e->fq, "g2", "c");
    /* "g1" and "g2" hash to different lanes of 4 */
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":4}");
    assert_true(qe_until(e, qe_two_calls));
    qe_ticks(e);
    assert_int_equal(e->n_calls, 2);
    bool first_a = qcall_has(&e->calls[0], a) || qcall_has(&e->calls[1], a);
    bool first_c = qcall_has(&e->calls[0], c) || qcall_has(&e->calls[1], c);
    assert_true(first_a && first_c);
    size_t ia = qcall_has(&e->calls[0], a) ? 0 : 1;
    qe_answer(e, ia, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_three_calls));
    assert_true(qcall_has(&e->calls[2], b));
    qe_answer(e, 1 - ia, SL_OUTCOME_SUCCESS, NULL);
    qe_answer(e, 2, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
}

/* FIFO: a failed record fails the rest of its group in the batch; other groups are acked. */
static void test_queue_fifo_failure_releases_rest_of_group(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    size_t a = fake_queue_send(&e->fq, "g1", "a");
    size_t b = fake_queue_send(&e->fq, "g1", "b");
    size_t c = fake_queue_send(&e->fq, "g2", "c");
    qe_open(e, "\"BatchSize\":10,\"ScalingConfig\":{\"MaximumConcurrency\":1},"
               "\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]");
    assert_true(qe_until(e, qe_one_call));
    assert_int_equal(e->calls[0].n, 3);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, "{\"batchItemFailures\":[{\"itemIdentifier\":\"m0\"}]}");
    assert_true(qe_until(e, qe_source_idle));
    qe_ticks(e);
    assert_true(e->fq.msgs[c].deleted);
    assert_false(e->fq.msgs[a].deleted || e->fq.msgs[b].deleted);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, b), SL_QUEUE_KEEP_VISIBILITY);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, b), 0);
}

/* A lease that runs out before its record was invoked: the record is dropped and released
 * (it comes back from the queue), never invoked on the lost lease. */
static void test_queue_lease_lost_before_invoke_released(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    e->fq.visibility_ms = 10000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":1}");
    assert_true(qe_until(e, qe_one_call));
    size_t held = e->calls[0].msgs[0];
    size_t waiting = held == 0 ? 1 : 0;
    for (int i = 0; i < 5; i++) {
        sl_clock_fake_advance(&e->clock, 2500);
        qe_ticks(e);
    }
    assert_int_equal(sl_mapping_stats(e->m)->queue_lease_lost, 1);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, waiting), SL_QUEUE_KEEP_VISIBILITY);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_two_calls));
    assert_int_equal(e->calls[1].msgs[0], waiting);
    assert_int_equal(e->calls[1].receives[0], 2); /* the message came back, a new lease */
    qe_answer(e, 1, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
}

/* --- drain and deletes --- */

static bool qe_one_release(void *arg)
{
    struct qe *e = arg;
    return qe_count(e, FAKE_QUEUE_REQ_VISIBILITY, SIZE_MAX) >= 1;
}

static void test_queue_drain_releases_unbatched_visible_now(void **state)
{
    struct qe *e = *state;
    e->hold = true;
    qe_send_n(e, "", 3);
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":1}");
    assert_true(qe_until(e, qe_one_call));
    qe_ticks(e);
    assert_int_equal(e->n_calls, 1);
    size_t held = e->calls[0].msgs[0];
    size_t waiting = held == 0 ? 1 : 0; /* fetched (two batches' worth), not in a batch */
    sl_mapping_drain(e->m);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, waiting), 0);
    assert_true(qe_until(e, qe_one_release));
    /* the batch in flight ends as usual */
    assert_int_equal(sl_mapping_in_flight(e->m), 1);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_source_idle));
    assert_true(e->fq.msgs[held].deleted);
    assert_false(e->fq.msgs[waiting].deleted);
    assert_int_equal(e->n_calls, 1);
}

static bool qe_acked_one(void *arg)
{
    return qe_count(arg, FAKE_QUEUE_CALL_ACK, SIZE_MAX) >= 1;
}

/* A drain waits for the queue source's deletes (they count as in flight until queue_idle), and
 * no longer once the drain timed out (sl_mapping_cancel): the message comes back. */
static void test_queue_drain_waits_for_deletes_bounded(void **state)
{
    struct qe *e = *state;
    qe_send_n(e, "", 1);
    fake_queue_fail_deletes(&e->fq, 0, 100, false);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_acked_one));
    sl_mapping_drain(e->m);
    qe_ticks(e);
    assert_int_equal(sl_mapping_in_flight(e->m), 1); /* the delete is being retried */
    sl_mapping_cancel(e->m);
    assert_int_equal(sl_mapping_in_flight(e->m), 0);
    assert_false(e->fq.msgs[0].deleted);
}

static void test_queue_failed_delete_retried_counted_once(void **state)
{
    struct qe *e = *state;
    qe_send_n(e, "", 1);
    fake_queue_fail_deletes(&e->fq, 0, 1, false);
    qe_open(e, "\"BatchSize\":10");
    for (int i = 0; i < 20 && !qe_all_deleted(e); i++) {
        sl_clock_fake_advance(&e->clock, 1000); /* the fake's delete backoff */
        qe_ticks(e);
    }
    assert_true(qe_all_deleted(e));
    assert_true(qe_until(e, qe_source_idle));
    assert_int_equal(qe_count(e, FAKE_QUEUE_REQ_DELETE, 0), 2);
    assert_int_equal(fake_queue_count_failed(&e->fq, FAKE_QUEUE_REQ_DELETE, 0), 1);
    const struct sl_mapping_stats *s = sl_mapping_stats(e->m);
    assert_int_equal(s->delivered, 1);
    assert_int_equal(s->queue_deleted, 1);
    assert_int_equal(s->queue_delete_failed, 0);
    assert_int_equal(e->n_calls, 1);
}

/* The progress line of a queue mapping counts deletes (AWS's DeletedEventCount), failed
 * deletes and lost leases. */
static void test_queue_progress_line_counts_deletes(void **state)
{
    struct qe *e = *state;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_all_deleted));
    assert_true(qe_until(e, qe_source_idle));
    char path[700];
    (void)snprintf(path, sizeof(path), "%s/log", e->dir);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    sl_log_setup(SL_LOG_INFO, SL_LOG_JSON, fileno(f));
    sl_mapping_log_stats(e->m, "progress");
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    char line[4096] = "";
    rewind(f);
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    line[n] = '\0';
    fclose(f);
    assert_non_null(strstr(line, "\"DeletedEventCount\":2"));
    assert_non_null(strstr(line, "\"delete_failed\":0"));
    assert_non_null(strstr(line, "\"lease_lost\":0"));
}

/* --- configuration --- */

/* A queue source refuses the stream-only keys and an on-failure destination, naming the key
 * and why (keyed on the source's delivery model: the fake queue's name is not SQS). */
static void test_queue_config_refuses_stream_keys(void **state)
{
    struct qe *e = *state;
    static const char *const cases[][2] = {
        {"\"BisectBatchOnFunctionError\":true", "BisectBatchOnFunctionError"},
        {"\"MaximumRetryAttempts\":2", "MaximumRetryAttempts"},
        {"\"MaximumRecordAgeInSeconds\":60", "MaximumRecordAgeInSeconds"},
        {"\"ParallelizationFactor\":2", "ParallelizationFactor"},
        {"\"TumblingWindowInSeconds\":5", "TumblingWindowInSeconds"},
        {"\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"file:///tmp/x\"}}",
         "DestinationConfig.OnFailure"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[1024];
        (void)snprintf(text, sizeof(text),
                       "{\"state_dir\":\"%s/state\",\"functions\":{\"f\":{\"type\":\"exec\","
                       "\"command\":[\"/bin/true\"]}},\"mappings\":[{\"EventSourceArn\":"
                       "\"" FAKE_QUEUE_SCHEME "q\",\"FunctionName\":\"f\",%s}]}",
                       e->dir, cases[i][0]);
        test_write_file(e->conf_path, "w", text, strlen(text));
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        struct sl_config *cfg = NULL;
        assert_int_equal(sl_config_load(e->conf_path, &cfg, &errs), SL_ECONFIG);
        bool named = false;
        for (size_t k = 0; k < errs.n; k++) {
            named = named || (strstr(errs.items[k], cases[i][1]) &&
                              strstr(errs.items[k], "not supported for a queue source"));
        }
        if (!named) {
            fail_msg("%s: no error names it (%s)", cases[i][1], errs.n ? errs.items[0] : "none");
        }
        sl_errlist_fini(&errs);
    }
    /* the defaults AWS fills in for SQS pass: an empty OnFailure, ScalingConfig */
    qe_open(e, "\"DestinationConfig\":{\"OnFailure\":{}},"
               "\"ScalingConfig\":{\"MaximumConcurrency\":2}");
}

int main(void)
{
    sl_log_setup(getenv("QE_DEBUG") ? SL_LOG_DEBUG : SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    (void)setenv("SLUICE_RETRY_BASE_MS", "60000", 1);
    (void)setenv("SLUICE_RETRY_MAX_MS", "60000", 1);
    fake_queue_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_never_deleted_before_success, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_success_deletes_all, qe_setup, qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_partial_deletes_exactly_unlisted, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_all_failed_deletes_nothing, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_function_error_releases_no_retry, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_long_invocation_held, qe_setup, qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_several_batches_in_flight, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_fifo_group_one_batch_in_flight, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_fifo_failure_releases_rest_of_group, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_drain_releases_unbatched_visible_now, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_drain_waits_for_deletes_bounded, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_failed_delete_retried_counted_once, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_lease_lost_before_invoke_released, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_progress_line_counts_deletes, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_config_refuses_stream_keys, qe_setup,
                                        qe_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

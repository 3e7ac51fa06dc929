/* SPDX-License-Identifier: Apache-2.0 */
/* test_engine_queue.c: the engine driven through its public API (mapping.h) with the fake
 * queue source (fake_queue.c): the queue delivery model of sources/README.md "The queue
 * model". The mapping, the test function whose answers the test gives (held until it answers,
 * or at once) and the injected clock moved by hand are the harness's (engine_harness.h). The
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
 *   config_refuses_stream_keys: config_queue_rules not called (fails against main too);
 *   no_checkpoint_store: the store opened for a queue mapping too (fails against main);
 *   hold_follows_function_timeout: the hold at start + 15 min + 30 s whatever the function's
 *     timeout (fails against main);
 *   budget_counts_acks_awaiting_report, waiting_capped_at_lanes_times_batch: the stream's
 *     budget used for queues (two batches per lane, acks awaiting a report not counted: fail
 *     against main);
 *   fifo_batch_size_refused_at_start: queue_limits not asked at start (fails against main);
 *   throttle_retries_bounded_by_max_hold: a throttled batch retried whatever its hold (fails
 *     against main);
 *   lost_in_flight_warned_once: the in-flight branch of the queue_report handler removed
 *     (against main: the counters do not exist);
 *   visibility_short_warned_at_start: the check after queue_limits removed (against main: the
 *     counter does not exist);
 *   visibility_short_warned_when_learned: env->queue_limits_changed not set, or the check not
 *     made again (against main: the callback does not exist). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "config.h"
#include "engine_harness.h"
#include "fake_queue.h"
#include "function.h"
#include "helpers.h"
#include "log.h"
#include "mapping.h"
#include "mapping_stats.h"

#define QE_MAX_CALLS 64
#define QE_MAX_RECS  32
#define QE_UUID      "engine-queue-test"

/* What the test reads of one invocation (e->h.calls[i] has its answer's state). */
struct qcall {
    size_t msgs[QE_MAX_RECS]; /* fake_queue message indices, in event order */
    unsigned receives[QE_MAX_RECS];
    size_t n;
};

struct qe {
    struct eh h; /* loop, clock, directory, mapping, the function's answers */
    struct fake_queue fq;
    struct qcall calls[QE_MAX_CALLS]; /* parallel to h.calls */
};

/* Answers invocation i (on the next loop turn, as a real function would). */
static void qe_answer(struct qe *e, size_t i, enum sl_outcome outcome, const char *body)
{
    eh_answer(&e->h, i, outcome, body);
}

/* The function got call idx: which messages, with which receive counts. */
static void qe_invoked(void *arg, size_t idx, const cJSON *doc, struct eh_reply *rep)
{
    (void)rep;
    struct qe *e = arg;
    assert_true(idx < QE_MAX_CALLS);
    struct qcall *c = &e->calls[idx];
    memset(c, 0, sizeof(*c));
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
}

static void qe_open(struct qe *e, const char *extra)
{
    eh_open(&e->h,
            "\"UUID\":\"" QE_UUID "\",\"EventSourceArn\":\"" FAKE_QUEUE_SCHEME
            "q\",\"FunctionName\":\"f\"",
            extra);
}

static bool qe_until(struct qe *e, bool (*cond)(void *arg))
{
    return eh_until(&e->h, cond, e);
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
    (void)test_run_until(&e->h.loop, qe_ticks_cond, e, 200);
}

static bool qe_one_call(void *arg)
{
    return ((struct qe *)arg)->h.n_calls >= 1;
}

static bool qe_two_calls(void *arg)
{
    return ((struct qe *)arg)->h.n_calls >= 2;
}

static bool qe_three_calls(void *arg)
{
    return ((struct qe *)arg)->h.n_calls >= 3;
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
    return sl_mapping_in_flight(e->h.m) == 0;
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
    eh_init(&e->h, &(struct eh_hooks){qe_invoked, NULL, e});
    fake_queue_init(&e->fq);
    *state = e;
    return 0;
}

static int qe_teardown(void **state)
{
    struct qe *e = *state;
    eh_fini(&e->h);
    fake_queue_fini(&e->fq);
    free(e);
    return 0;
}

/* --- acknowledgement: only after success, exactly the delivered --- */

static void test_queue_never_deleted_before_success(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
    qe_send_n(e, "", 3);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    assert_int_equal(e->calls[0].n, 3);
    qe_ticks(e);
    sl_clock_fake_advance(&e->h.clock, 5000);
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
    const struct sl_mapping_stats *s = sl_mapping_stats(e->h.m);
    assert_int_equal(s->delivered, 4);
    assert_int_equal(s->queue_deleted, 4);
    assert_int_equal(e->h.n_calls, 1);
}

static void test_queue_partial_deletes_exactly_unlisted(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
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
    assert_int_equal(sl_mapping_stats(e->h.m)->queue_deleted, 2);
    assert_int_equal(sl_mapping_stats(e->h.m)->failed, 2);
}

static void test_queue_all_failed_deletes_nothing(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
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
    assert_int_equal(e->h.n_calls, 1); /* no retry in process */
}

/* A function error releases the batch to its visibility timeout; it is not retried in
 * process, and comes back from the queue with its receive count + 1 (at-least-once). */
static void test_queue_function_error_releases_no_retry(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
    e->fq.visibility_ms = 30000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    qe_answer(e, 0, SL_OUTCOME_FUNCTION_ERROR, NULL);
    assert_true(qe_until(e, qe_source_idle));
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 1);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, 0), SL_QUEUE_KEEP_VISIBILITY);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 0);
    sl_clock_fake_advance(&e->h.clock, 29000);
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 1); /* still invisible */
    sl_clock_fake_advance(&e->h.clock, 2000);
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
    e->h.hold_all = true;
    e->fq.visibility_ms = 10000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    for (int i = 0; i < 12; i++) {
        sl_clock_fake_advance(&e->h.clock, 2500);
        qe_ticks(e);
    }
    assert_int_equal(e->h.n_calls, 1);
    assert_true(qe_count(e, FAKE_QUEUE_REQ_VISIBILITY, 0) >= 2);
    assert_int_equal(sl_mapping_stats(e->h.m)->queue_lease_lost, 0);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
    assert_int_equal(e->h.n_calls, 1);
}

/* The leases of a batch are held for the function's own timeout past the invocation's start,
 * and a margin of 30 s: a function that tells 60 s is held to start + 90 s, not 15 min. */
static void test_queue_hold_follows_function_timeout(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
    e->h.fn_timeout_ms = 60000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    int64_t start = e->h.calls[0].at_ms;
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_HOLD, 0), start + 60000 + 30000);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_HOLD, 1), start + 60000 + 30000);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_all_deleted));
}

/* A throttled batch (it never reached the function) is tried again with its leases held anew,
 * only while that hold stays within 12 hours of its first invocation (SQS's limit: a message
 * stays invisible at most 12 hours from its receive); past it the batch is released to its
 * running visibility timeout. The function's timeout is 11 h 55 min, so the second throttle,
 * 6 minutes in, ends the retries. */
static void test_queue_throttle_retries_bounded_by_max_hold(void **state)
{
    struct qe *e = *state;
    const int64_t timeout = (11 * 3600 + 55 * 60) * INT64_C(1000);
    e->h.hold_all = true;
    e->h.fn_timeout_ms = timeout;
    e->fq.visibility_ms = 12 * 3600 * INT64_C(1000);
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_one_call));
    qe_answer(e, 0, SL_OUTCOME_THROTTLE, NULL);
    qe_ticks(e);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_RELEASE, SIZE_MAX), 0);
    eh_advance(&e->h, 60000); /* the backoff (at most the retry cap) ends */
    assert_true(qe_until(e, qe_two_calls));
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_HOLD, 0), 2); /* held anew */
    sl_clock_fake_advance(&e->h.clock, 5 * 60000);
    qe_answer(e, 1, SL_OUTCOME_THROTTLE, NULL);
    qe_ticks(e);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, 0), SL_QUEUE_KEEP_VISIBILITY);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, 1), SL_QUEUE_KEEP_VISIBILITY);
    eh_advance(&e->h, 60000);
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 2);
    assert_int_equal(qe_count(e, FAKE_QUEUE_CALL_ACK, SIZE_MAX), 0);
}

/* --- concurrency and groups --- */

static void test_queue_several_batches_in_flight(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
    qe_send_n(e, "", 6);
    qe_open(e, "\"BatchSize\":2,\"ScalingConfig\":{\"MaximumConcurrency\":3}");
    assert_true(qe_until(e, qe_three_calls));
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 3);
    assert_int_equal(sl_mapping_in_flight(e->h.m), 3);
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
    e->h.hold_all = true;
    size_t a = fake_queue_send(&e->fq, "g1", "a");
    size_t b = fake_queue_send(&e->fq, "g1", "b");
    size_t c = fake_queue_send(&e->fq, "g2", "c");
    /* "g1" and "g2" hash to different lanes of 4 */
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":4}");
    assert_true(qe_until(e, qe_two_calls));
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 2);
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
    e->h.hold_all = true;
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
    e->h.hold_all = true;
    e->fq.visibility_ms = 10000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":1}");
    assert_true(qe_until(e, qe_one_call));
    size_t held = e->calls[0].msgs[0];
    size_t waiting = held == 0 ? 1 : 0;
    for (int i = 0; i < 5; i++) {
        sl_clock_fake_advance(&e->h.clock, 2500);
        qe_ticks(e);
    }
    assert_int_equal(sl_mapping_stats(e->h.m)->queue_lease_lost, 1);
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
    e->h.hold_all = true;
    qe_send_n(e, "", 3);
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":1}");
    assert_true(qe_until(e, qe_one_call));
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 1);
    size_t held = e->calls[0].msgs[0];
    size_t waiting = held == 0 ? 1 : 0; /* fetched (two batches' worth), not in a batch */
    sl_mapping_drain(e->h.m);
    assert_int_equal(qe_value(e, FAKE_QUEUE_CALL_RELEASE, waiting), 0);
    assert_true(qe_until(e, qe_one_release));
    /* the batch in flight ends as usual */
    assert_int_equal(sl_mapping_in_flight(e->h.m), 1);
    qe_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    assert_true(qe_until(e, qe_source_idle));
    assert_true(e->fq.msgs[held].deleted);
    assert_false(e->fq.msgs[waiting].deleted);
    assert_int_equal(e->h.n_calls, 1);
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
    sl_mapping_drain(e->h.m);
    qe_ticks(e);
    assert_int_equal(sl_mapping_in_flight(e->h.m), 1); /* the delete is being retried */
    sl_mapping_cancel(e->h.m);
    assert_int_equal(sl_mapping_in_flight(e->h.m), 0);
    assert_false(e->fq.msgs[0].deleted);
}

static void test_queue_failed_delete_retried_counted_once(void **state)
{
    struct qe *e = *state;
    qe_send_n(e, "", 1);
    fake_queue_fail_deletes(&e->fq, 0, 1, false);
    qe_open(e, "\"BatchSize\":10");
    for (int i = 0; i < 20 && !qe_all_deleted(e); i++) {
        sl_clock_fake_advance(&e->h.clock, 1000); /* the fake's delete backoff */
        qe_ticks(e);
    }
    assert_true(qe_all_deleted(e));
    assert_true(qe_until(e, qe_source_idle));
    assert_int_equal(qe_count(e, FAKE_QUEUE_REQ_DELETE, 0), 2);
    assert_int_equal(fake_queue_count_failed(&e->fq, FAKE_QUEUE_REQ_DELETE, 0), 1);
    const struct sl_mapping_stats *s = sl_mapping_stats(e->h.m);
    assert_int_equal(s->delivered, 1);
    assert_int_equal(s->queue_deleted, 1);
    assert_int_equal(s->queue_delete_failed, 0);
    assert_int_equal(e->h.n_calls, 1);
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
    (void)snprintf(path, sizeof(path), "%s/log", e->h.dir);
    FILE *f = fopen(path, "w+");
    assert_non_null(f);
    sl_log_setup(SL_LOG_INFO, SL_LOG_JSON, fileno(f));
    sl_mapping_log_stats(e->h.m, "progress");
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    char line[4096] = "";
    rewind(f);
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    line[n] = '\0';
    fclose(f);
    assert_non_null(strstr(line, "\"DeletedEventCount\":2"));
    assert_non_null(strstr(line, "\"delete_failed\":0"));
    assert_non_null(strstr(line, "\"lease_lost\":0"));
    assert_non_null(strstr(line, "\"lost_in_flight\":0"));
}

/* --- the fetch budget --- */

static bool qe_four_acked(void *arg)
{
    struct qe *e = arg;
    return sl_mapping_stats(e->h.m)->queue_acked >= 4;
}

/* Acks the source has not reported on yet count against max_records_buffered: with every
 * delete failing once (its retry waits for the fake clock), the mapping stops receiving at 4,
 * and goes on once the deletes are reported. */
static void test_queue_budget_counts_acks_awaiting_report(void **state)
{
    struct qe *e = *state;
    qe_send_n(e, "", 10);
    for (size_t i = 0; i < 10; i++) {
        fake_queue_fail_deletes(&e->fq, i, 1, false);
    }
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":2},"
               "\"max_records_buffered\":4");
    assert_true(qe_until(e, qe_four_acked));
    for (int i = 0; i < 3; i++) {
        qe_ticks(e);
    }
    const struct sl_mapping_stats *s = sl_mapping_stats(e->h.m);
    assert_int_equal(s->fetched, 4);
    assert_int_equal(s->queue_deleted, 0);
    assert_true(qe_count(e, FAKE_QUEUE_REQ_DELETE, SIZE_MAX) >= 1); /* failed, not reported */
    for (int i = 0; i < 100 && !qe_all_deleted(e); i++) {
        sl_clock_fake_advance(&e->h.clock, 1000); /* the fake's delete backoff */
        qe_ticks(e);
    }
    assert_true(qe_all_deleted(e));
    assert_int_equal(s->fetched, 10);
    assert_int_equal(s->queue_deleted, 10);
}

struct qe_wait_calls {
    struct qe *e;
    size_t n;
};

static bool qe_more_calls_or_done(void *arg)
{
    struct qe_wait_calls *w = arg;
    return w->e->h.n_calls > w->n || qe_all_deleted(w->e);
}

/* Records received and not yet invoked never exceed MaximumConcurrency x BatchSize: with a slow
 * function, at every fetch what was asked for and what waited for a batch stay within 2 x 2,
 * and 4 wait beside the 4 in flight. */
static void test_queue_waiting_capped_at_lanes_times_batch(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
    qe_send_n(e, "", 20);
    qe_open(e, "\"BatchSize\":2,\"ScalingConfig\":{\"MaximumConcurrency\":2}");
    assert_true(qe_until(e, qe_two_calls));
    qe_ticks(e);
    assert_int_equal(e->h.n_calls, 2);
    assert_int_equal(sl_mapping_stats(e->h.m)->fetched, 8);
    size_t answered = 0;
    struct qe_wait_calls w = {e, 0};
    while (!qe_all_deleted(e)) {
        for (; answered < e->h.n_calls; answered++) {
            qe_answer(e, answered, SL_OUTCOME_SUCCESS, NULL);
        }
        w.n = answered;
        assert_true(eh_until(&e->h, qe_more_calls_or_done, &w));
    }
    assert_int_equal(e->h.n_calls, 10);
    for (size_t i = 0; i < e->fq.n_fetches; i++) {
        const struct fake_queue_fetch *f = &e->fq.fetches[i];
        if (f->max_records + f->unheld > 4) {
            fail_msg("fetch %zu asked for %zu with %zu waiting: over 2 x 2", i, f->max_records,
                     f->unheld);
        }
    }
}

/* --- what the queue says at start --- */

/* A FIFO queue takes BatchSize 10 at most, which is known only once the source started: the
 * mapping refuses to start with more, and receives nothing; with 10 it runs. */
static void test_queue_fifo_batch_size_refused_at_start(void **state)
{
    struct qe *e = *state;
    e->fq.fifo = true;
    (void)fake_queue_send(&e->fq, "g1", "a");
    const char *fields = "\"UUID\":\"" QE_UUID "\",\"EventSourceArn\":\"" FAKE_QUEUE_SCHEME
                         "q\",\"FunctionName\":\"f\"";
    assert_int_equal(
        eh_open_start(&e->h, fields, "\"BatchSize\":11,\"MaximumBatchingWindowInSeconds\":1"),
        SL_ECONFIG);
    qe_ticks(e);
    assert_int_equal(sl_mapping_stats(e->h.m)->fetched, 0);
    assert_int_equal(e->h.n_calls, 0);
    eh_close(&e->h, false);
    assert_int_equal(e->fq.msgs[0].receives, 0);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_all_deleted));
}

/* A lease lost while its record's invocation is in flight (the hold ended at the function's
 * timeout + 30 s, the function still runs): counted each time, warned once per mapping. */
static void test_queue_lost_in_flight_warned_once(void **state)
{
    struct qe *e = *state;
    e->h.hold_all = true;
    e->h.fn_timeout_ms = 1000; /* held until start + 31 s */
    e->fq.visibility_ms = 10000;
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":1,\"ScalingConfig\":{\"MaximumConcurrency\":2}");
    assert_true(qe_until(e, qe_two_calls));
    const struct sl_mapping_stats *s = sl_mapping_stats(e->h.m);
    for (int i = 0; i < 8; i++) {
        sl_clock_fake_advance(&e->h.clock, 2500);
        qe_ticks(e);
    }
    assert_int_equal(s->queue_lost_in_flight, 0); /* held: extended */
    for (int i = 0; i < 12; i++) {
        sl_clock_fake_advance(&e->h.clock, 2500);
        qe_ticks(e);
    }
    assert_int_equal(s->queue_lost_in_flight, 2);
    assert_true(s->queue_lease_lost >= 2); /* and those received again, lost waiting */
    assert_int_equal(s->queue_visibility_warnings, 1);
}

/* A queue that tells its visibility timeout at start gets a warning when it is shorter than the
 * function's timeout + the batching window, and none when it is long enough. */
static void test_queue_visibility_short_warned_at_start(void **state)
{
    struct qe *e = *state;
    e->fq.tell_visibility = true;
    e->fq.visibility_ms = 30000;
    e->h.fn_timeout_ms = 60000;
    qe_open(e, "\"BatchSize\":10");
    assert_int_equal(sl_mapping_stats(e->h.m)->queue_visibility_warnings, 1);
    eh_close(&e->h, false);
    e->fq.visibility_ms = 60000; /* the window makes it short */
    qe_open(e, "\"BatchSize\":10,\"MaximumBatchingWindowInSeconds\":1");
    assert_int_equal(sl_mapping_stats(e->h.m)->queue_visibility_warnings, 1);
    eh_close(&e->h, false);
    e->fq.visibility_ms = 6 * 60000;
    qe_open(e, "\"BatchSize\":10,\"MaximumBatchingWindowInSeconds\":1");
    assert_int_equal(sl_mapping_stats(e->h.m)->queue_visibility_warnings, 0);
}

/* A queue that learns its visibility timeout after start (SQS reads VisibilityTimeout with
 * GetQueueAttributes) tells the mapping, which asks again and warns once when it is shorter
 * than the function's timeout + window; the same value told again does not warn again, and a
 * long enough one never warns. */
static void test_queue_visibility_short_warned_when_learned(void **state)
{
    struct qe *e = *state;
    e->h.fn_timeout_ms = 30000;
    qe_open(e, "\"BatchSize\":10");
    const struct sl_mapping_stats *s = sl_mapping_stats(e->h.m);
    assert_int_equal(s->queue_visibility_warnings, 0); /* unknown at start */
    fake_queue_tell_visibility(&e->fq, 5000);
    assert_int_equal(s->queue_visibility_warnings, 1);
    fake_queue_tell_visibility(&e->fq, 5000);
    assert_int_equal(s->queue_visibility_warnings, 1);
    eh_close(&e->h, false);
    e->fq.tell_visibility = false;
    qe_open(e, "\"BatchSize\":10");
    s = sl_mapping_stats(e->h.m);
    fake_queue_tell_visibility(&e->fq, 6 * 30000);
    assert_int_equal(s->queue_visibility_warnings, 0);
}

/* --- no checkpoint store --- */

/* A queue keeps no positions: its mapping opens no checkpoint store, so a state directory that
 * cannot be made (a file stands where it would be) does not keep it from starting and
 * delivering. */
static void test_queue_no_checkpoint_store(void **state)
{
    struct qe *e = *state;
    char path[700];
    (void)snprintf(path, sizeof(path), "%s/state", e->h.dir);
    test_write_file(path, "w", "not a directory", 15);
    qe_send_n(e, "", 2);
    qe_open(e, "\"BatchSize\":10");
    assert_true(qe_until(e, qe_all_deleted));
    assert_int_equal(sl_mapping_flush(e->h.m), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
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
        char fields[512];
        (void)snprintf(fields, sizeof(fields),
                       "\"EventSourceArn\":\"" FAKE_QUEUE_SCHEME "q\",\"FunctionName\":\"f\",%s",
                       cases[i][0]);
        eh_write_config(&e->h, fields);
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        struct sl_config *cfg = NULL;
        assert_int_equal(sl_config_load(e->h.conf_path, &cfg, &errs), SL_ECONFIG);
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
        cmocka_unit_test_setup_teardown(test_queue_no_checkpoint_store, qe_setup, qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_hold_follows_function_timeout, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_budget_counts_acks_awaiting_report, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_waiting_capped_at_lanes_times_batch, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_fifo_batch_size_refused_at_start, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_throttle_retries_bounded_by_max_hold, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_lost_in_flight_warned_once, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_visibility_short_warned_at_start, qe_setup,
                                        qe_teardown),
        cmocka_unit_test_setup_teardown(test_queue_visibility_short_warned_when_learned, qe_setup,
                                        qe_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

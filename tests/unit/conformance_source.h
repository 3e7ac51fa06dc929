/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_CONFORMANCE_SOURCE_H
#define SL_TEST_CONFORMANCE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "source.h"

/* The source conformance suite: what every *stream* source adapter must do (below: every
 * *queue* source adapter), checked the same way for each, with the harness standing in for the
 * mapping (it owns the partitions and gives the env callbacks). An adapter joins by filling a
 * struct conf_source (how to make a source that holds given records, add one, and end the
 * partition) and calling each conf_source_check_* from a cmocka test
 * (tests/unit/test_conformance.c). Waits are bounded by real-time deadlines on the loop
 * (test_run_until), never sleeps; the source gets a fake clock that the harness moves forward while
 * it waits, so time-based decisions (a rotated file's rotate_wait) come due. Loop thread. */

struct conf_source {
    const char *name; /* for messages */
    void *arg;        /* the driver's */
    /* Makes a source holding exactly one partition with the records data[0..n) (text without
     * newlines), in order. Writes the EventSourceArn into arn and returns the adapter's options
     * as a JSON object (owned by the caller; NULL: defaults). Called once per check, before the
     * first instance starts; a second instance of the same check reads the same source. */
    cJSON *(*prepare)(void *arg, const char *const *data, size_t n, char *arn, size_t len);
    /* Adds one record at the end of the partition (the source is running). */
    void (*append)(void *arg, const char *data);
    /* Ends the partition for this instance: it will produce nothing more here (a file deleted,
     * a fake's part_gone; with end_revokes, the partition taken from it, as a rebalance does). */
    void (*end)(void *arg);
    /* The members below are zero for sources the harness runs without a server (file, fakes). */
    /* How the source ends a partition after `end`: false, part_gone (the partition is over);
     * true, part_revoke (the partition lives on, this instance lost it: Kafka's rebalance). */
    bool end_revokes;
    /* The source's timing comes from its client library's real timers (librdkafka): the harness
     * gives it the system clock instead of the fake one it moves forward. */
    bool real_clock;
    /* The real-time bound of each wait in ms (0: 5 s); joining a consumer group takes seconds. */
    int deadline_ms;
    /* Required for a source that keeps its own positions (caps->keeps_positions), read back
     * from where the source keeps them (Kafka: the group's committed offset at the broker): how
     * many of the partition's records are done there, i.e. the index of the record a restart
     * resumes at; -1 when nothing is stored. */
    int64_t (*stored)(void *arg);
    /* The payload a record made of data carries, when the source gives it a shape of its own
     * (Redis: the entry's fields as a JSON object, {"d":"<data>"}): written NUL-terminated into
     * buf (len bytes). NULL: the payload is data itself. */
    void (*payload)(void *arg, const char *data, char *buf, size_t len);
};

/* part_add: after start, the source reports its partition (id and name set, part->src set
 * before it returns to the loop). */
void conf_source_check_partitions_appear(const struct conf_source *cs);
/* fetch: the records in order, each position (1..SL_REC_POS_MAX bytes) before the next
 * record's by the source's compare_pos, within max_records; 0 (or SL_EINPROGRESS, then
 * part_fetched) when none, then part_wake once one is added, and that record next. */
void conf_source_check_fetch_in_order(const struct conf_source *cs);
/* format_pos and format_item_id: item ids unique and non-empty; a new instance resumes at record
 * k + 1 after record k was acknowledged: given format_pos(record k) as its stored checkpoint
 * (with the meta the source wrote), or for a source that keeps its positions, from its own
 * store, which holds k + 1 (cs->stored) once the first instance acknowledged k and stopped. */
void conf_source_check_positions_round_trip(const struct conf_source *cs);
/* ack after done: acknowledging the records in order, then dropping them, as the mapping does,
 * leaves fetch going on with the next record; a source that keeps its positions stores the one
 * after the last acknowledged record (cs->stored) while it runs. */
void conf_source_check_ack_after_done(const struct conf_source *cs);
/* part_gone (part_revoke with cs->end_revokes): once the partition ended and its records were
 * fetched, part_gone (part_revoke) comes once; after part_release nothing of the partition is
 * called back (a revoked partition may come back, as a new partition). */
void conf_source_check_part_gone(const struct conf_source *cs);
/* stop: no callback after it returns, whatever happens at the source; part_release and fini
 * then leave no handle open on the loop. */
void conf_source_check_stop(const struct conf_source *cs);

/* Stops and frees what the last check started and did not let go: the instances (the adapter's
 * ctx, its partitions, the loop) and the options prepare returned. Every teardown of a test
 * running these checks (stream or queue) calls it first, before it takes down what the source
 * talks to (a server, a mock cluster): a check that fails leaves by cmocka's longjmp, before
 * its own stop, and would otherwise leave the source running into the next test and its memory
 * lost. Does nothing after a check that passed. */
void conf_source_cleanup(void);

/* A test file running the stream checks writes CONF_SOURCE_TESTS once at file scope: it defines
 * test_conformance_<check>(state) for each check above, *state being the struct conf_source;
 * CONF_TESTS(setup, teardown) then lists them all for a cmocka group, each between setup (which
 * sets *state) and teardown (which calls conf_source_cleanup). */
#define CONF_SOURCE_TEST(check)                        \
    static void test_conformance_##check(void **state) \
    {                                                  \
        conf_source_check_##check(*state);             \
    }
#define CONF_SOURCE_TESTS                  \
    CONF_SOURCE_TEST(partitions_appear)    \
    CONF_SOURCE_TEST(fetch_in_order)       \
    CONF_SOURCE_TEST(positions_round_trip) \
    CONF_SOURCE_TEST(ack_after_done)       \
    CONF_SOURCE_TEST(part_gone)            \
    CONF_SOURCE_TEST(stop)

#define CONF_TESTS(setup, teardown)                                                              \
    cmocka_unit_test_setup_teardown(test_conformance_partitions_appear, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_conformance_fetch_in_order, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_conformance_positions_round_trip, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_conformance_ack_after_done, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_conformance_part_gone, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_conformance_stop, setup, teardown)

/* --- The queue contract (sources whose caps->model is SL_DELIVERY_QUEUE) ---
 *
 * What every queue source adapter must do with the queue model's operations (source.h, "The
 * queue model"), with the harness standing in for the mapping as above. The checks read the
 * time from the env clock the harness gives (a fake clock it moves forward while it waits, or
 * the system clock for a server whose visibility runs on real time: real_clock). */

struct conf_queue {
    const char *name; /* for messages */
    void *arg;        /* the driver's */
    /* Makes a queue holding the messages data[0..n) (text without newlines), sent in that
     * order, message i in group groups[i] (groups NULL: a standard queue, no groups), whose
     * visibility timeout is visibility_ms. Writes the EventSourceArn into arn and returns the
     * adapter's options as a JSON object (owned by the caller; NULL: defaults). */
    cJSON *(*prepare)(void *arg,
                      const char *const *data,
                      const char *const *groups,
                      size_t n,
                      int64_t visibility_ms,
                      char *arn,
                      size_t len);
    /* The next n delete attempts of the message data fail as a service error on that entry
     * only (DeleteMessageBatch's Failed with SenderFault false): retriable. */
    void (*fail_deletes)(void *arg, const char *data, size_t n);
    /* Whether the message data is still in the queue (not deleted). */
    bool (*exists)(void *arg, const char *data);
    /* The members below are zero for queues the harness runs without a server (the fake). */
    /* The queue's visibility runs on real time (a server): the source gets the system clock
     * and the checks wait for time to pass instead of moving it. */
    bool real_clock;
    /* The visibility timeout the checks use, ms (0: 30 s); a server's must be short. */
    int64_t visibility_ms;
    /* The real-time bound of each wait in ms (0: 5 s); must exceed a few visibility timeouts. */
    int deadline_ms;
};

/* Received records stay invisible until their lease runs out: fetch gives nothing more before
 * it; then the source reports each lease lost and the messages come back, with new leases.
 * Records of a standard queue have no group (an empty record_key). */
void conf_queue_check_received_invisible(const struct conf_queue *cq);
/* queue_ack deletes: each acked lease gets exactly one SL_QUEUE_ACKED, queue_idle turns true,
 * the messages are gone and never come back, nor are their leases reported lost. */
void conf_queue_check_ack_deletes(const struct conf_queue *cq);
/* queue_release with visibility 0 makes a message receivable again at once (a new lease);
 * with SL_QUEUE_KEEP_VISIBILITY only after its timeout; a released lease is never reported. */
void conf_queue_check_release(const struct conf_queue *cq);
/* queue_hold keeps records invisible past the visibility timeout, without a lost lease, until
 * the hold ends; a record not held is lost at its timeout; a held one after its hold. */
void conf_queue_check_hold_extends(const struct conf_queue *cq);
/* A delete entry that fails is retried: the lease is still reported SL_QUEUE_ACKED once, the
 * message is gone, and the other entries of the same acknowledgement are not held back. */
void conf_queue_check_ack_retried(const struct conf_queue *cq);
/* FIFO: record_key is the group; no record of a group is handed out while an earlier message
 * of that group is leased or not yet deleted (except earlier in the same fetch); a group's
 * message released with visibility 0 comes back before the rest of its group. */
void conf_queue_check_fifo_groups(const struct conf_queue *cq);
/* stop: no report after it returns, with deletes pending and leases running out; part_release
 * and fini then leave no handle open on the loop. */
void conf_queue_check_stop(const struct conf_queue *cq);

/* A test file running the queue checks writes CONF_QUEUE_TESTS_DEFINE once at file scope (it
 * defines test_conformance_queue_<check>(state), *state being the struct conf_queue), then
 * lists CONF_QUEUE_TESTS(setup, teardown) in a cmocka group (teardown calls
 * conf_source_cleanup). */
#define CONF_QUEUE_CHECK(check)                              \
    static void test_conformance_queue_##check(void **state) \
    {                                                        \
        conf_queue_check_##check(*state);                    \
    }

#define CONF_QUEUE_TESTS_DEFINE          \
    CONF_QUEUE_CHECK(received_invisible) \
    CONF_QUEUE_CHECK(ack_deletes)        \
    CONF_QUEUE_CHECK(release)            \
    CONF_QUEUE_CHECK(hold_extends)       \
    CONF_QUEUE_CHECK(ack_retried)        \
    CONF_QUEUE_CHECK(fifo_groups)        \
    CONF_QUEUE_CHECK(stop)

#define CONF_QUEUE_TESTS(setup, teardown)                                                        \
    cmocka_unit_test_setup_teardown(test_conformance_queue_received_invisible, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_conformance_queue_ack_deletes, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_conformance_queue_release, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_conformance_queue_hold_extends, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_conformance_queue_ack_retried, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_conformance_queue_fifo_groups, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_conformance_queue_stop, setup, teardown)

#endif

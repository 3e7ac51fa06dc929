/* SPDX-License-Identifier: Apache-2.0 */
/* test_conformance_kafka.c: the stream checks of the source conformance suite
 * (conformance_source.h) run against the Kafka source, through the registry like the file adapter
 * and the fakes (test_conformance.c), with librdkafka's in-process mock cluster as the broker (no
 * external service; exists only in a build with Kafka). Each check gets a cluster of its own: one
 * broker, a topic of one partition holding the check's records, a consumer group of its own.
 *
 * How Kafka answers the driver's questions: `end` takes the partition away by a rebalance (the
 * broker answers the next Heartbeat REBALANCE_IN_PROGRESS, so the consumer rejoins and, with an
 * eager assignor, has everything revoked first): a Kafka partition is revoked, never gone
 * (end_revokes); it comes back to the group's only member. Kafka keeps its positions
 * (caps->keeps_positions): `stored` reads the group's committed offset back from the broker, as
 * another client of the group (offsets start at 0 on a new topic, so the offset is the number of
 * records done). librdkafka's timers are real, so the source runs on the system clock; the
 * heartbeat is set low (100 ms) and each wait is bounded at 20 s, since the mock broker holds a
 * new group's first join back 3 s and a rejoin session.timeout.ms - 1 s.
 *
 * session.timeout.ms is 6000, well above that 3 s hold (as in test_kafka.c): the mock broker
 * (librdkafka 2.0) checks every second for members silent for session.timeout.ms, the member
 * whose JoinGroup it holds included, and that member's last request is the JoinGroup itself.
 * With 3000 the hold and the expiry fell due together, and when the mock's thread woke a few ms
 * late (valgrind, a loaded machine; half the runs of this file under valgrind with two busy
 * CPUs) the expiry ran first: the member was dropped with its JoinGroup unanswered, and
 * librdkafka waits max.poll.interval.ms + 3 s (303 s) for that answer, so no partition came
 * within the deadline.
 *
 * The topic's metadata is never refreshed on a timer (topic.metadata.refresh.interval.ms is a
 * minute, longer than any check): librdkafka 2.0's group leader, between a JoinGroup answer and
 * the metadata it then asks for to run the assignor (join state wait-metadata), takes ANY
 * metadata that arrives as a change of subscription and joins again, throwing the answer away.
 * A periodic refresh is the only other metadata the consumer asks for, and at 500 ms it fell in
 * step with the mock's holds (3 s and 5 s, multiples of 500 ms, both started by a metadata
 * answer): one JoinGroup answer in eight was thrown away with four copies of this file and two
 * busy loops on two CPUs, each costing another 5 s hold, so that a few in a row (3 + 4 x 5 s
 * for a first join, 4 x 5 s for a rejoin) ran a wait past its 20 s ("no partition appeared").
 * The long refresh also keeps the metadata cache (3 x the refresh) alive through the holds.
 *
 * SLUICE_TEST_KAFKA_DEBUG=1 logs librdkafka's group, protocol and metadata debug of the source
 * and the mock broker's own (kafka_mock.c) on stderr; SLUICE_TEST_FILTER selects checks, e.g.
 * "test_conformance_part_gone". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_source.h"
#include "helpers.h"
#include "kafka_mock.h"
#include "log.h"

#define KC_HEARTBEAT_API 12 /* the Heartbeat request's ApiKey */

struct kafka_drv {
    rd_kafka_t *mock_rk; /* owns the mock cluster */
    rd_kafka_t *prod;    /* writes the records */
    rd_kafka_t *reader;  /* reads the group's committed offset */
    rd_kafka_mock_cluster_t *mc;
    unsigned seq; /* names each check's topic and group */
    char topic[64];
    char group[80];
};

static void kc_free(struct kafka_drv *d)
{
    if (d->reader) {
        rd_kafka_destroy(d->reader);
    }
    if (d->prod) {
        rd_kafka_destroy(d->prod);
    }
    if (d->mock_rk) {
        rd_kafka_destroy(d->mock_rk);
    }
    d->reader = d->prod = d->mock_rk = NULL;
    d->mc = NULL;
}

static void kc_produce(struct kafka_drv *d, const char *data)
{
    assert_int_equal(rd_kafka_producev(d->prod, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE((void *)data, strlen(data)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

static cJSON *kc_prepare(void *arg, const char *const *data, size_t n, char *arn, size_t len)
{
    struct kafka_drv *d = arg;
    kc_free(d);
    d->seq++;
    (void)snprintf(d->topic, sizeof(d->topic), "conf-%u", d->seq);
    (void)snprintf(d->group, sizeof(d->group), "g-conf-%u", d->seq);
    d->mock_rk = kafka_mock_cluster(d->topic, false, &d->mc);
    d->prod = kafka_mock_client(d->mc, RD_KAFKA_PRODUCER, NULL);
    /* The topic's metadata asked for first: records produced before the producer knows the
     * topic can wait for its scan of unknown topics, once a second (half the checks did). */
    rd_kafka_topic_t *t = rd_kafka_topic_new(d->prod, d->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(d->prod, 0, t, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    d->reader = kafka_mock_client(d->mc, RD_KAFKA_CONSUMER, d->group);
    for (size_t i = 0; i < n; i++) {
        kc_produce(d, data[i]);
    }
    assert_int_equal(rd_kafka_flush(d->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    (void)snprintf(arn, len, "kafka://%s", rd_kafka_mock_cluster_bootstraps(d->mc));
    char json[1024];
    (void)snprintf(json, sizeof(json),
                   "{\"Topics\":[\"%s\"],\"SelfManagedKafkaEventSourceConfig\":"
                   "{\"ConsumerGroupId\":\"%s\"},\"rdkafka\":{\"session.timeout.ms\":\"6000\","
                   "\"heartbeat.interval.ms\":\"100\","
                   "\"topic.metadata.refresh.interval.ms\":\"60000\"%s}}",
                   d->topic, d->group,
                   getenv("SLUICE_TEST_KAFKA_DEBUG") ? ",\"debug\":\"cgrp,protocol,metadata\""
                                                     : "");
    cJSON *opts = cJSON_Parse(json);
    assert_non_null(opts);
    return opts;
}

static void kc_append(void *arg, const char *data)
{
    struct kafka_drv *d = arg;
    kc_produce(d, data);
    assert_int_equal(rd_kafka_flush(d->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A rebalance: the member's next heartbeat is told the group rebalances. */
static void kc_end(void *arg)
{
    struct kafka_drv *d = arg;
    rd_kafka_mock_push_request_errors(d->mc, KC_HEARTBEAT_API, 1,
                                      RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS);
}

/* The group's committed offset of the partition, asked of the broker; -1: none. */
static int64_t kc_stored(void *arg)
{
    struct kafka_drv *d = arg;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, d->topic, 0);
    int64_t off = -1;
    if (rd_kafka_committed(d->reader, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        l->elems[0].err == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].offset >= 0) {
        off = l->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return off;
}

static struct kafka_drv kafka_drv;
static const struct conf_source kafka_source = {
    .name = "kafka",
    .arg = &kafka_drv,
    .prepare = kc_prepare,
    .append = kc_append,
    .end = kc_end,
    .end_revokes = true,
    .real_clock = true,
    .deadline_ms = 20000,
    .stored = kc_stored,
};

static int kc_setup(void **state)
{
    *state = (void *)&kafka_source;
    return 0;
}

static int kc_teardown(void **state)
{
    (void)state;
    conf_source_cleanup(); /* before the cluster its consumer talks to */
    kc_free(&kafka_drv);
    return 0;
}

CONF_SOURCE_TESTS

int main(void)
{
    sl_log_setup(getenv("SLUICE_TEST_KAFKA_DEBUG") ? SL_LOG_DEBUG : SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    if (getenv("SLUICE_TEST_FILTER")) {
        cmocka_set_test_filter(getenv("SLUICE_TEST_FILTER"));
    }
    const struct CMUnitTest tests[] = {CONF_TESTS(kc_setup, kc_teardown)};
    return cmocka_run_group_tests_name("conformance: kafka", tests, NULL, NULL);
}

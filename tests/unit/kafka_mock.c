/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_mock.c: the mock cluster and its clients (kafka_mock.h), in one place for the tests that
 * drive a Kafka client against librdkafka's in-process broker (the kafka:// sink's own test and
 * its conformance run, the Kafka source's conformance run). Owns nothing between calls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "kafka_mock.h"

rd_kafka_t *kafka_mock_cluster(const char *topic, bool quiet, rd_kafka_mock_cluster_t **ret_mc)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "test.mock.num.brokers", "1", err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    if (getenv("SLUICE_TEST_KAFKA_DEBUG")) { /* what the broker does, on stderr */
        assert_int_equal(rd_kafka_conf_set(conf, "debug", "mock", err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
    }
    if (quiet) {
        assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(mock_rk);
    rd_kafka_mock_cluster_t *mc = rd_kafka_handle_mock_cluster(mock_rk);
    assert_non_null(mc);
    assert_int_equal(rd_kafka_mock_topic_create(mc, topic, 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    *ret_mc = mc;
    return mock_rk;
}

rd_kafka_t *kafka_mock_client(rd_kafka_mock_cluster_t *mc, rd_kafka_type_t type, const char *group)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(c, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mc),
                                       err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    if (group) {
        assert_int_equal(rd_kafka_conf_set(c, "group.id", group, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof(err));
    if (!rk) {
        fail_msg("kafka: a client of the mock cluster: %s", err);
    }
    return rk;
}

rd_kafka_t *kafka_mock_reader(rd_kafka_mock_cluster_t *mc, const char *topic)
{
    rd_kafka_t *c = kafka_mock_client(mc, RD_KAFKA_CONSUMER, "reader");
    rd_kafka_topic_partition_list_t *tp = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tp, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, tp), 0);
    rd_kafka_topic_partition_list_destroy(tp);
    return c;
}

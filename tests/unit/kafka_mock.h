/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_KAFKA_MOCK_H
#define SL_TEST_KAFKA_MOCK_H

/* librdkafka's in-process mock cluster for the unit tests (kafka_mock.c): a cluster of one
 * broker with one topic, and clients of it. Compiled only in a build with Kafka. Failures fail
 * the running cmocka test. */

#include <stdbool.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* A cluster of one broker holding topic (one partition). Returns the handle that owns it
 * (rd_kafka_destroy ends the cluster) and *ret_mc. quiet: librdkafka logs nothing (log_level
 * 0). */
rd_kafka_t *kafka_mock_cluster(const char *topic, bool quiet, rd_kafka_mock_cluster_t **ret_mc);

/* A client of mc: a producer, or a consumer in group (NULL: none set). Owned by the caller. */
rd_kafka_t *kafka_mock_client(rd_kafka_mock_cluster_t *mc, rd_kafka_type_t type, const char *group);

/* A consumer in group "reader" assigned partition 0 of topic from its beginning, to read back
 * what a test wrote. The caller polls it, then rd_kafka_consumer_close and rd_kafka_destroy. */
rd_kafka_t *kafka_mock_reader(rd_kafka_mock_cluster_t *mc, const char *topic);

#endif

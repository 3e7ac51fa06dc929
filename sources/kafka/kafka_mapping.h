/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_mapping.h: the rules of a Kafka mapping that need no Kafka client (kafka_mapping.c),
 * for the adapter's ops (kafka.c) and for the registry, which recognises a Kafka mapping even in
 * a build that left the adapter out. Pure; any thread. */
#ifndef SL_KAFKA_MAPPING_H
#define SL_KAFKA_MAPPING_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* What EventSourceArn (or the keys standing for it) may be for Kafka, as errors list it. */
#define KAFKA_MAPPING_ARN_FORMS                                                               \
    "an arn:aws:kafka: ARN, or SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS for " \
    "self-managed Kafka"

/* sl_source_ops.arn_from_mapping: SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS as
 * "kafka://" and the servers joined by commas. */
int kafka_mapping_arn(const cJSON *mapping, char **ret_arn, const char **ret_key);

/* sl_source_ops.check_destination: a kafka:// destination is a topic of the mapping's own
 * cluster, so only a Kafka mapping may have one, and not one of the topics it reads. */
int kafka_mapping_check_destination(
    bool same_source, const cJSON *mapping, const char *destination, char *errbuf, size_t errlen);

/* sl_source_ops.read_item_id: Kafka's object itemIdentifier. */
const char *kafka_mapping_read_item_id(const cJSON *id, char *buf, size_t len);

#endif

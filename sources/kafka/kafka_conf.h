/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KAFKA_CONF_H
#define SL_KAFKA_CONF_H

/* The part of the librdkafka client configuration that every client of a Kafka source's cluster
 * shares (kafka_conf.c): the source's consumer builds its own from its options, and another
 * client of the cluster (the kafka:// sink's producer) builds one here from the properties the
 * source's client_props gave, with the same rule for errors: a value may be a secret, so an
 * error names the key and never shows the value. Nothing here keeps state; any thread. */

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "opt.h"

/* A new configuration for another client of the cluster: cluster's properties (bootstrap
 * servers and connection security, secrets included), then settings[0..n_settings) (pairs the
 * client itself needs, never secrets; a NULL value is skipped). what names the client in
 * errors ("kafka:// destination"). Returns 0 and *ret_conf (owned: rd_kafka_new or
 * rd_kafka_conf_destroy), SL_ECONFIG with errbuf saying which key librdkafka refused, or
 * SL_ENOMEM. */
int sl_kafka_conf_client(const struct sl_strmap *cluster,
                         const char *const (*settings)[2],
                         size_t n_settings,
                         const char *what,
                         rd_kafka_conf_t **ret_conf,
                         char *errbuf,
                         size_t errlen);

/* True when s is one server of bootstrap.servers: host:port with a port 1 to 65535 (an IPv6
 * address in brackets), no comma, space or slash. The Kafka source's check and the kafka://
 * sink's (a cluster of the destination's own) accept the same. Pure. */
bool sl_kafka_conf_is_server(const char *s);

#endif

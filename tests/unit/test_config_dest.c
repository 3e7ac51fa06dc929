/* SPDX-License-Identifier: Apache-2.0 */
/* test_config_dest.c: the cluster of a mapping's kafka:// on-failure destination in the
 * configuration loader (config_rules.c, config_sink.c, the kafka sink's option table and
 * check_opts): a mapping whose source is not Kafka loads with destination_options
 * bootstrap_servers and is refused without it, by path and with what is allowed; a Kafka mapping
 * may name another cluster; the options' own rules are reported with their path, and a value of
 * rdkafka (a SASL password, say) is never shown. In a build without Kafka every such mapping is
 * told that Kafka was left out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "helpers.h"
#include "sl_adapters.h"

struct fixture {
    char *dir;
    char file[4200];
    struct sl_errlist errs;
    struct sl_config *cfg;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    f->dir = test_tmpdir();
    (void)snprintf(f->file, sizeof(f->file), "%s/config.json", f->dir);
    sl_errlist_init(&f->errs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_config_free(f->cfg);
    sl_errlist_fini(&f->errs);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

#define FN_AUDIT "\"audit\":{\"type\":\"exec\",\"command\":[\"cat\"]}"
#define DEST_DLQ "\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"kafka://dlq\"}}"
#define MAP_FILE                                                              \
    "{\"EventSourceArn\":\"file:///tmp/x/*.log\",\"FunctionName\":\"audit\"," \
    "\"StartingPosition\":\"TRIM_HORIZON\","
#define MAP_KAFKA                                                                \
    "{\"SelfManagedEventSource\":{\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":"   \
    "[\"127.0.0.1:9092\"]}},\"Topics\":[\"orders\"],\"FunctionName\":\"audit\"," \
    "\"StartingPosition\":\"LATEST\",\"SelfManagedKafkaEventSourceConfig\":{"    \
    "\"ConsumerGroupId\":\"g\"},"

/* One function "audit" and one mapping: map (MAP_FILE or MAP_KAFKA) followed by extra. */
static int load(struct fixture *f, const char *map, const char *extra)
{
    char text[4096];
    (void)snprintf(text, sizeof(text), "{\"functions\":{" FN_AUDIT "},\"mappings\":[%s%s}]}", map,
                   extra);
    sl_config_free(f->cfg);
    f->cfg = NULL;
    sl_errlist_fini(&f->errs);
    test_write_file(f->file, "w", text, strlen(text));
    return sl_config_load(f->file, &f->cfg, &f->errs);
}

static void dump(const struct fixture *f)
{
    for (size_t i = 0; i < f->errs.n; i++) {
        print_error("  error: %s\n", f->errs.items[i]);
    }
}

/* Loads expecting exactly one error, "<file>: " + want. */
static __attribute__((unused)) void
expect_one(struct fixture *f, const char *map, const char *extra, const char *want)
{
    int r = load(f, map, extra);
    size_t flen = strlen(f->file);
    if (r != SL_ECONFIG || f->errs.n != 1 || strncmp(f->errs.items[0], f->file, flen) != 0 ||
        strcmp(f->errs.items[0] + flen, want) != 0) {
        dump(f);
        print_error("r=%d, wanted one error: <file>%s\n", r, want);
        fail();
    }
    assert_null(f->cfg);
}

static __attribute__((unused)) void expect_ok(struct fixture *f, const char *map, const char *extra)
{
    int r = load(f, map, extra);
    if (r != 0) {
        dump(f);
        fail();
    }
    assert_non_null(f->cfg->mappings[0].on_failure);
}

#define OWN_CLUSTER ",\"destination_options\":{\"bootstrap_servers\":[\"127.0.0.1:9092\"]}"

#if SL_HAVE_KAFKA
/* A file mapping (any source that is not Kafka) has no cluster of its own: kafka:// needs the
 * cluster in destination_options, and loads with it. */
static void test_config_dest_kafka_cluster_of_its_own(void **state)
{
    struct fixture *f = *state;
    expect_one(f, MAP_FILE, DEST_DLQ,
               ": $.mappings[0].DestinationConfig.OnFailure.Destination: \"kafka://dlq\": "
               "kafka:// destinations are for Kafka mappings (the topic is in the source's "
               "cluster) unless destination_options.bootstrap_servers names the cluster; "
               "allowed: destination_options {\"bootstrap_servers\": [\"host:port\"]} beside it, "
               "or file:///dir, http(s)://..., an SQS queue ARN or URL");
    expect_ok(f, MAP_FILE, DEST_DLQ OWN_CLUSTER);
    assert_string_equal(f->cfg->mappings[0].on_failure, "kafka://dlq");
    expect_ok(f, MAP_FILE,
              DEST_DLQ ",\"destination_options\":{\"bootstrap_servers\":[\"b1:9092\","
                       "\"[::1]:9093\"],\"rdkafka\":{\"security.protocol\":\"SASL_SSL\","
                       "\"sasl.mechanism\":\"PLAIN\",\"sasl.username\":\"u\","
                       "\"sasl.password\":\"pw\"},\"delivery_timeout\":\"5s\"}");
    /* a Kafka mapping: its own cluster, or another one named (where its own topics are not
     * the source's) */
    expect_ok(f, MAP_KAFKA, DEST_DLQ);
    expect_ok(f, MAP_KAFKA,
              "\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"kafka://orders\"}}"
              ",\"destination_options\":{\"bootstrap_servers\":[\"10.0.0.9:9092\"]}");
    assert_string_equal(f->cfg->mappings[0].on_failure, "kafka://orders");
}

/* The options' errors name their path and what is allowed; a value of rdkafka is never shown. */
static void test_config_dest_kafka_options_refused(void **state)
{
    struct fixture *f = *state;
    expect_one(f, MAP_FILE,
               DEST_DLQ ",\"destination_options\":{\"bootstrap_servers\":\"127.0.0.1:9092\"}",
               ": $.mappings[0].destination_options.bootstrap_servers: \"127.0.0.1:9092\" is not "
               "an array of strings; allowed: an array of strings of 1 to 100 items");
    expect_one(f, MAP_FILE,
               DEST_DLQ ",\"destination_options\":{\"bootstrap_servers\":[\"broker\"]}",
               ": $.mappings[0].destination_options.bootstrap_servers[0]: \"broker\" is not "
               "host:port; allowed: a host name or address and a port 1 to 65535, such as "
               "\"broker1:9092\"");
    expect_one(f, MAP_KAFKA,
               DEST_DLQ ",\"destination_options\":{\"rdkafka\":{\"sasl.password\":\"pw-1\"}}",
               ": $.mappings[0].destination_options.rdkafka: settings of a cluster of the "
               "destination's own; allowed: only with bootstrap_servers (without it a Kafka "
               "mapping's destination connects as its source does)");
    expect_one(f, MAP_FILE,
               DEST_DLQ ",\"destination_options\":{\"bootstrap_servers\":[\"h:1\"],"
                        "\"rdkafka\":{\"acks\":\"1\"}}",
               ": $.mappings[0].destination_options.rdkafka.acks: set by sluice; allowed: "
               "nothing: the producer is idempotent, with acks=all and linger.ms=0");
    expect_one(f, MAP_FILE,
               DEST_DLQ ",\"destination_options\":{\"bootstrap_servers\":[\"h:1\"],"
                        "\"rdkafka\":{\"sasl.password\":12345}}",
               ": $.mappings[0].destination_options.rdkafka.sasl.password: <hidden> is not a "
               "string; allowed: an object whose values are strings");
    expect_one(f, MAP_FILE,
               DEST_DLQ ",\"destination_options\":{\"bootstrap_servers\":[\"h:1\"],"
                        "\"rdkafka\":{\"security.protocol\":\"pw-S3CRET\"}}",
               ": $.mappings[0].destination_options.rdkafka: librdkafka rejects the value of "
               "security.protocol; allowed: librdkafka's producer properties with values it "
               "takes");
    /* a sink that has no cluster takes none */
    expect_one(f, MAP_FILE,
               "\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"file:///tmp/dlq\"}}"
               "" OWN_CLUSTER,
               ": $.mappings[0].destination_options.bootstrap_servers: unknown key; allowed: no "
               "keys");
}
#else
/* Without Kafka, a kafka:// destination is left out, with or without a cluster of its own. */
static void test_config_dest_kafka_left_out(void **state)
{
    struct fixture *f = *state;
    for (int own = 0; own < 2; own++) {
        assert_int_equal(load(f, MAP_FILE, own ? DEST_DLQ OWN_CLUSTER : DEST_DLQ), SL_ECONFIG);
        assert_int_equal(f->errs.n, 1);
        assert_non_null(strstr(f->errs.items[0], "$.mappings[0].DestinationConfig.OnFailure."
                                                 "Destination: \"kafka://dlq\" is a Kafka "
                                                 "destination and this sluice was built without "
                                                 "Kafka"));
    }
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#if SL_HAVE_KAFKA
        cmocka_unit_test_setup_teardown(test_config_dest_kafka_cluster_of_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_dest_kafka_options_refused, setup, teardown),
#else
        cmocka_unit_test_setup_teardown(test_config_dest_kafka_left_out, setup, teardown),
#endif
    };
    return cmocka_run_group_tests_name("config_dest", tests, NULL, NULL);
}

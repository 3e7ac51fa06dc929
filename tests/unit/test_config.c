/* SPDX-License-Identifier: Apache-2.0 */
/* test_config.c: the configuration loader (config.c) with the real registry of sources and
 * function types: a valid file, then every error path of the issue (unknown keys at each level,
 * wrong types, ranges that depend on the source, StartingPosition rules, missing keys, unknown
 * ARN schemes and function types, adapters the build left out, FunctionName resolution with and
 * without a Lambda endpoint,
 * ${VAR} expansion, JSON syntax errors, UUIDs), secrets kept out of errors, and all errors
 * collected at once. Each test writes its config into a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "fake_queue.h"
#include "function.h"
#include "helpers.h"
#include "httpc.h"
#include "registry.h"
#include "sink.h"
#include "sl_adapters.h"
#include "source.h"

/* What the errors list as allowed depends on the adapters built in (meson feature options). */
#define SQS_SCHEMES ", arn:aws:sqs:..., http..."
#define SQS_MISSING ", arn:aws:sqs:REGION:ACCOUNT:NAME or a queue URL http(s)://HOST/ACCOUNT/NAME"
#if SL_HAVE_KAFKA
#define KAFKA_SCHEMES ", kafka://..., arn:aws:kafka:..."
#define KAFKA_MISSING                                                                       \
    ", an arn:aws:kafka: ARN, or SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS " \
    "for self-managed Kafka"
#define KAFKA_DESTINATIONS ", kafka://TOPIC"
#else
#define KAFKA_SCHEMES      ""
#define KAFKA_MISSING      ""
#define KAFKA_DESTINATIONS ""
#endif
#if SL_HAVE_REDIS
#define REDIS_DESTINATIONS ", redis://HOST:PORT/DB/STREAM, redis://HOST:PORT/DB/list/NAME"
#define REDIS_SCHEMES      ", redis://..., rediss://..."
#define REDIS_MISSING      ", redis://[user:password@]host:port/db/STREAM"
#else
#define REDIS_DESTINATIONS ""
#define REDIS_SCHEMES      ""
#define REDIS_MISSING      ""
#endif
#if SL_HAVE_KINESIS
#define KINESIS_SCHEMES ", arn:aws:kinesis:..."
#define KINESIS_MISSING ", arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"
#else
#define KINESIS_SCHEMES ""
#define KINESIS_MISSING ""
#endif

struct fixture {
    char *dir;
    char file[4200];
    struct sl_errlist errs;
    struct sl_config *cfg;
};

static const char *const env_vars[] = {
    "AWS_ENDPOINT_URL_LAMBDA", "AWS_ENDPOINT_URL", "AWS_REGION",    "AWS_DEFAULT_REGION",
    "SL_TEST_TOKEN",           "SL_TEST_DIR",      "SL_TEST_UNSET",
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
    for (size_t i = 0; i < SL_ARRAY_LEN(env_vars); i++) {
        unsetenv(env_vars[i]);
    }
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
    for (size_t i = 0; i < SL_ARRAY_LEN(env_vars); i++) {
        unsetenv(env_vars[i]);
    }
    return 0;
}

/* Writes text as the config and loads it; returns sl_config_load's result. Previous results
 * are dropped. */
static int load(struct fixture *f, const char *text)
{
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

/* Asserts that one error is exactly "<file>: " + want. */
static void expect(const struct fixture *f, const char *want)
{
    size_t flen = strlen(f->file);
    for (size_t i = 0; i < f->errs.n; i++) {
        const char *e = f->errs.items[i];
        if (strncmp(e, f->file, flen) == 0 && strncmp(e + flen, ": ", 2) == 0 &&
            strcmp(e + flen + 2, want) == 0) {
            return;
        }
    }
    dump(f);
    print_error("wanted: <file>: %s\n", want);
    fail();
}

/* Asserts that some error contains want. */
static void expect_sub(const struct fixture *f, const char *want)
{
    for (size_t i = 0; i < f->errs.n; i++) {
        if (strstr(f->errs.items[i], want)) {
            return;
        }
    }
    dump(f);
    print_error("wanted an error containing: %s\n", want);
    fail();
}

/* Loads text expecting exactly one error, equal to "<file>: " + want. */
static void expect_one(struct fixture *f, const char *text, const char *want)
{
    int r = load(f, text);
    if (r != SL_ECONFIG || f->errs.n != 1) {
        dump(f);
        print_error("r=%d, %zu errors for: %s\n", r, f->errs.n, text);
        fail();
    }
    assert_null(f->cfg);
    expect(f, want);
}

#define FN_AUDIT "\"audit\":{\"type\":\"exec\",\"command\":[\"cat\"]}"
#define MAP_OK                                                                \
    "{\"EventSourceArn\":\"file:///tmp/x/*.log\",\"FunctionName\":\"audit\"," \
    "\"StartingPosition\":\"TRIM_HORIZON\""

/* One function "audit" and one mapping whose object starts with MAP_OK and ends with extra. */
static int load_mapping(struct fixture *f, const char *extra)
{
    char text[4096];
    (void)snprintf(text, sizeof(text),
                   "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "%s}]}", extra);
    return load(f, text);
}

static void expect_mapping_error(struct fixture *f, const char *extra, const char *want)
{
    int r = load_mapping(f, extra);
    if (r != SL_ECONFIG || f->errs.n != 1) {
        dump(f);
        print_error("r=%d, %zu errors for mapping extra: %s\n", r, f->errs.n, extra);
        fail();
    }
    expect(f, want);
}

static void test_valid(void **state)
{
    struct fixture *f = *state;
    setenv("SL_TEST_TOKEN", "tok-123", 1);
    int r =
        load(f, "{\n"
                "  \"state_dir\": \"/tmp/st\",\n"
                "  \"stats_interval\": \"1.5s\",\n"
                "  \"functions\": {\n"
                "    \"audit\": {\"type\": \"exec\", \"command\": [\"python3\", \"h.py\"], "
                "\"timeout\": 30, \"env\": {\"LEVEL\": \"info\"}},\n"
                "    \"hook\": {\"type\": \"http\", \"url\": \"http://127.0.0.1:8080/events\", "
                "\"timeout\": 30, \"headers\": {\"X-Token\": \"${SL_TEST_TOKEN}\"}},\n"
                "    \"remote\": {\"type\": \"lambda\", \"endpoint\": "
                "\"http://127.0.0.1:9001\", \"function_name\": \"function\", \"timeout\": 900}\n"
                "  },\n"
                "  \"mappings\": [\n"
                "    {\"EventSourceArn\": \"file:///var/log/app/*.ndjson\", \"FunctionName\": "
                "\"audit\", \"BatchSize\": 100, \"MaximumBatchingWindowInSeconds\": 1, "
                "\"StartingPosition\": \"TRIM_HORIZON\"},\n"
                "    {\"UUID\": \"my-map\", \"EventSourceArn\": \"file:///var/log/b.log\", "
                "\"FunctionName\": \"hook\", \"StartingPosition\": \"LATEST\", \"Enabled\": "
                "false, \"max_bytes_buffered\": \"1MiB\", \"max_line_bytes\": \"64KiB\"}\n"
                "  ]\n"
                "}\n");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    struct sl_config *cfg = f->cfg;
    assert_string_equal(cfg->file, f->file);
    assert_string_equal(cfg->state_dir, "/tmp/st");
    assert_string_equal(cfg->region, "us-east-1");
    assert_int_equal(cfg->stats_interval_ms, 1500);
    assert_int_equal(cfg->drain_timeout_ms, 30000);
    assert_int_equal(cfg->n_functions, 3);
    assert_string_equal(cfg->functions[0].name, "audit");
    assert_ptr_equal(cfg->functions[0].ops, &sl_function_exec);
    assert_string_equal(cfg->functions[0].path, "$.functions.audit");
    assert_ptr_equal(cfg->functions[1].ops, &sl_function_http);
    assert_ptr_equal(cfg->functions[2].ops, &sl_function_lambda);
    /* ${VAR} was expanded in the function's kept JSON. */
    const cJSON *h = cJSON_GetObjectItem(cfg->functions[1].json, "headers");
    assert_string_equal(cJSON_GetObjectItem(h, "X-Token")->valuestring, "tok-123");

    assert_int_equal(cfg->n_mappings, 2);
    const struct sl_mapping_conf *m0 = &cfg->mappings[0];
    assert_ptr_equal(m0->source, sl_source_for_arn("file:///")); /* the completed file ops */
    assert_ptr_equal(m0->function, &cfg->functions[0]);
    assert_string_equal(m0->path, "$.mappings[0]");
    assert_string_equal(m0->core.event_source_arn, "file:///var/log/app/*.ndjson");
    assert_int_equal(m0->core.batch_size, 100);
    assert_int_equal(m0->core.window_ms, 1000);
    assert_int_equal(m0->core.starting_position, SL_START_TRIM_HORIZON);
    assert_true(m0->core.enabled);
    assert_int_equal(m0->core.max_records_buffered, 10000);
    assert_int_equal(m0->core.max_bytes_buffered, 16 * 1024 * 1024);
    assert_true(m0->uuid_derived);
    /* 8-4-4-4-12 lower-case hex. */
    const char *u = m0->core.uuid;
    assert_int_equal(strlen(u), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            assert_int_equal(u[i], '-');
        } else {
            assert_non_null(strchr("0123456789abcdef", u[i]));
        }
    }

    const struct sl_mapping_conf *m1 = &cfg->mappings[1];
    assert_string_equal(m1->core.uuid, "my-map");
    assert_false(m1->uuid_derived);
    assert_false(m1->core.enabled);
    assert_int_equal(m1->core.starting_position, SL_START_LATEST);
    assert_int_equal(m1->core.batch_size, sl_source_file.caps->batch_size_default);
    assert_int_equal(m1->core.max_bytes_buffered, 1024 * 1024);
    assert_ptr_equal(m1->function, &cfg->functions[1]);
    assert_non_null(cJSON_GetObjectItem(m1->json, "max_line_bytes"));
}

static void test_region_from_env(void **state)
{
    struct fixture *f = *state;
    const char *text = "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "}]}";
    setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
    assert_int_equal(load(f, text), 0);
    assert_string_equal(f->cfg->region, "eu-west-1");
    setenv("AWS_REGION", "ap-south-1", 1);
    assert_int_equal(load(f, text), 0);
    assert_string_equal(f->cfg->region, "ap-south-1");
    /* The key wins over the environment. */
    assert_int_equal(load(f, "{\"region\":\"us-west-2\",\"functions\":{" FN_AUDIT
                             "},\"mappings\":[" MAP_OK "}]}"),
                     0);
    assert_string_equal(f->cfg->region, "us-west-2");
}

/* Loads text expecting one error that contains want. */
static void expect_store_error(struct fixture *f, const char *text, const char *want)
{
    int r = load(f, text);
    if (r != SL_ECONFIG || f->errs.n != 1) {
        dump(f);
        print_error("r=%d, %zu errors for: %s\n", r, f->errs.n, text);
        fail();
    }
    expect_sub(f, want);
}

/* checkpoint_store: a Redis URL whose problems name the key; a good one loads. */
static void test_checkpoint_store_url(void **state)
{
    struct fixture *f = *state;
#if SL_HAVE_REDIS
    assert_int_equal(load(f, "{\"checkpoint_store\":\"redis://127.0.0.1:6379/2?prefix=app:\","
                             "\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "}]}"),
                     0);
    assert_string_equal(f->cfg->checkpoint_store, "redis://127.0.0.1:6379/2?prefix=app:");
    expect_store_error(
        f,
        "{\"checkpoint_store\":\"redis://127.0.0.1:6379/0/extra\",\"functions\":{" FN_AUDIT
        "},\"mappings\":[" MAP_OK "}]}",
        "$.checkpoint_store: redis://127.0.0.1:6379/0/extra: nothing may follow the "
        "database number");
    expect_store_error(f,
                       "{\"checkpoint_store\":\"redis://h:1/0?maxlen=3\",\"functions\":{" FN_AUDIT
                       "},\"mappings\":[" MAP_OK "}]}",
                       "unknown query key \"maxlen\"; allowed: ?prefix=P");
    expect_store_error(f,
                       "{\"checkpoint_store\":\"rediss://h:1/0\",\"functions\":{" FN_AUDIT
                       "},\"mappings\":[" MAP_OK "}]}",
                       "$.checkpoint_store: ");
#else
    expect_store_error(f,
                       "{\"checkpoint_store\":\"redis://h:1/0\",\"functions\":{" FN_AUDIT
                       "},\"mappings\":[" MAP_OK "}]}",
                       "$.checkpoint_store: a Redis checkpoint store needs a build with Redis");
#endif
}

static void test_unknown_keys(void **state)
{
    struct fixture *f = *state;
    expect_one(f, "{\"stat_dir\":\"x\",\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "}]}",
               "$.stat_dir: unknown key (did you mean state_dir?); allowed: "
               "checkpoint_store, delivery_streams, drain_timeout, functions, lease_ttl, listen, "
               "mappings, region, spool_max_bytes, state_dir, stats_interval");
    expect_one(f,
               "{\"functions\":{\"audit\":{\"type\":\"exec\",\"command\":[\"cat\"],\"timout\":5}},"
               "\"mappings\":[" MAP_OK "}]}",
               "$.functions.audit.timout: unknown key (did you mean timeout?); allowed: command, "
               "cwd, env, timeout");
    /* The allowed list holds the core's and the file source's keys, sorted. */
    assert_int_equal(load_mapping(f, ",\"BatchSzie\":5"), SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    expect_sub(f, "$.mappings[0].BatchSzie: unknown key (did you mean BatchSize?); allowed: "
                  "BatchSize, BisectBatchOnFunctionError, DestinationConfig, Enabled, ");
    expect_sub(f, ", max_line_bytes, ");
    expect_sub(f, ", rotate_wait");
}

static void test_wrong_types(void **state)
{
    struct fixture *f = *state;
    expect_mapping_error(
        f, ",\"BatchSize\":\"10\"",
        "$.mappings[0].BatchSize: \"10\" is not an integer; allowed: an integer, 1 "
        "to 10000");
    expect_mapping_error(f, ",\"BatchSize\":1.5",
                         "$.mappings[0].BatchSize: 1.5 is not an integer; allowed: an integer, 1 "
                         "to 10000");
    expect_mapping_error(f, ",\"Enabled\":\"yes\"",
                         "$.mappings[0].Enabled: \"yes\" is not a boolean; allowed: true or false");
    expect_mapping_error(f, ",\"max_bytes_buffered\":\"lots\"",
                         "$.mappings[0].max_bytes_buffered: \"lots\" is not a size; allowed: a "
                         "byte count, or a string like \"512KiB\" or \"6MB\" (KB=1000, KiB=1024), "
                         "64KiB to 4GiB");
    expect_one(f,
               "{\"drain_timeout\":\"forever\",\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK
               "}]}",
               "$.drain_timeout: \"forever\" is not a duration; allowed: seconds as a number, or a "
               "string like \"500ms\", \"1.5s\", \"2m\", \"1h\", 0s to 1h");
    expect_one(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":{}}",
               "$.mappings: is not an array; allowed: an array of at least one mapping object");
    expect_one(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":[]}",
               "$.mappings: is empty; allowed: an array of at least one mapping object");
    expect_one(f, "{\"functions\":[],\"mappings\":[" MAP_OK "}]}",
               "$.functions: not an object; allowed: an object of functions by name");
    expect_one(f, "[1,2]", "$: [1,2] is not an object; allowed: an object");
    expect_one(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "},7]}",
               "$.mappings[1]: not an object; allowed: an object with EventSourceArn and "
               "FunctionName");
}

static void test_ranges(void **state)
{
    struct fixture *f = *state;
    expect_mapping_error(f, ",\"BatchSize\":0",
                         "$.mappings[0].BatchSize: 0 is out of range; allowed: 1 to 10000");
    expect_mapping_error(f, ",\"BatchSize\":10001",
                         "$.mappings[0].BatchSize: 10001 is out of range; allowed: 1 to 10000");
    expect_mapping_error(f, ",\"MaximumBatchingWindowInSeconds\":301",
                         "$.mappings[0].MaximumBatchingWindowInSeconds: 301 is out of range; "
                         "allowed: 0 to 300 seconds");
    expect_mapping_error(f, ",\"max_records_buffered\":0",
                         "$.mappings[0].max_records_buffered: 0 is out of range; allowed: 1 to "
                         "10000000");
    expect_mapping_error(f, ",\"max_bytes_buffered\":\"8GiB\"",
                         "$.mappings[0].max_bytes_buffered: \"8GiB\" (8GiB) is out of range; "
                         "allowed: 64KiB to 4GiB");
    expect_one(
        f, "{\"stats_interval\":\"10ms\",\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "}]}",
        "$.stats_interval: \"10ms\" (10ms) is out of range; allowed: 100ms to 1d");
    /* The limits at their edges are fine. */
    assert_int_equal(load_mapping(f, ",\"BatchSize\":10000,\"MaximumBatchingWindowInSeconds\":300"),
                     0);
    assert_int_equal(f->cfg->mappings[0].core.batch_size, 10000);
    assert_int_equal(f->cfg->mappings[0].core.window_ms, 300000);
}

static void test_starting_position(void **state)
{
    struct fixture *f = *state;
    expect_mapping_error(f, ",\"StartingPosition\":\"EARLIEST\"",
                         "$.mappings[0].StartingPosition: duplicate key; allowed: each key once");
    /* MAP_OK already has one; build the mapping by hand. */
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
               "\"file:///tmp/a.log\",\"FunctionName\":\"audit\",\"StartingPosition\":"
               "\"EARLIEST\"}]}",
               "$.mappings[0].StartingPosition: \"EARLIEST\" is not a valid choice; allowed: one "
               "of TRIM_HORIZON, LATEST, AT_TIMESTAMP");
    assert_true(sl_source_file.caps->starting_position_required);
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
               "\"file:///tmp/a.log\",\"FunctionName\":\"audit\"}]}",
               "$.mappings[0].StartingPosition: missing required key (for file sources); "
               "allowed: one of TRIM_HORIZON, LATEST, AT_TIMESTAMP");
#define AT                                                                                   \
    "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":\"file:///tmp/a.log\"," \
    "\"FunctionName\":\"audit\",\"StartingPosition\":\"AT_TIMESTAMP\"%s}]}"
    char text[1024];
    (void)snprintf(text, sizeof(text), AT, "");
    expect_one(f, text,
               "$.mappings[0].StartingPositionTimestamp: missing required key (with "
               "StartingPosition AT_TIMESTAMP); allowed: seconds since the epoch");
    long long future = (long long)time(NULL) + 3600;
    char extra[64];
    (void)snprintf(extra, sizeof(extra), ",\"StartingPositionTimestamp\":%lld", future);
    (void)snprintf(text, sizeof(text), AT, extra);
    char want[256];
    (void)snprintf(want, sizeof(want),
                   "$.mappings[0].StartingPositionTimestamp: %lld is in the future; allowed: a "
                   "time up to now, in seconds since the epoch",
                   future);
    expect_one(f, text, want);
    /* Files have no arrival times to seek by: the file source refuses AT_TIMESTAMP. */
    assert_false(sl_source_file.caps->at_timestamp_supported);
    (void)snprintf(text, sizeof(text), AT, ",\"StartingPositionTimestamp\":1700000000");
    expect_one(f, text,
               "$.mappings[0].StartingPosition: AT_TIMESTAMP is not supported by file sources; "
               "allowed: TRIM_HORIZON or LATEST");
    expect_mapping_error(f, ",\"StartingPositionTimestamp\":1700000000",
                         "$.mappings[0].StartingPositionTimestamp: only used with "
                         "StartingPosition AT_TIMESTAMP; allowed: remove it, or set "
                         "StartingPosition to AT_TIMESTAMP");
}

static void test_missing_keys(void **state)
{
    struct fixture *f = *state;
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"FunctionName\":\"audit\","
               "\"StartingPosition\":\"LATEST\"}]}",
               "$.mappings[0].EventSourceArn: missing required key; allowed: file:///path or "
               "glob" SQS_MISSING KAFKA_MISSING REDIS_MISSING KINESIS_MISSING);
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
               "\"file:///tmp/a.log\",\"StartingPosition\":\"LATEST\"}]}",
               "$.mappings[0].FunctionName: missing required key; allowed: a string");
    expect_one(f, "{\"functions\":{" FN_AUDIT "}}",
               "$.mappings: missing required key; allowed: an array of mappings, or "
               "\"delivery_streams\" (or both)");
    expect_one(f, "{\"functions\":{\"audit\":{\"type\":\"exec\"}},\"mappings\":[" MAP_OK "}]}",
               "$.functions.audit.command: missing required key; allowed: an array of strings of "
               "1 to 256 items");
}

static void test_unknown_scheme(void **state)
{
    struct fixture *f = *state;
    /* Source keys are still recognised (against every source) when the scheme is unknown. */
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
               "\"arn:aws:dynamodb:us-east-1:1:table/t/stream/s\",\"FunctionName\":\"audit\","
               "\"StartingPosition\":\"LATEST\",\"max_line_bytes\":100}]}",
               "$.mappings[0].EventSourceArn: \"arn:aws:dynamodb:us-east-1:1:table/t/stream/s\" "
               "has an unknown scheme; allowed: file://..." SQS_SCHEMES KAFKA_SCHEMES REDIS_SCHEMES
                   KINESIS_SCHEMES);
    /* The source's own check: file paths must be absolute. */
    int r = load(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
                    "\"file://relative/*.log\",\"FunctionName\":\"audit\",\"StartingPosition\":"
                    "\"LATEST\"}]}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    expect_sub(f, ": $.mappings[0].EventSourceArn: \"file://relative/*.log\": the path must be "
                  "absolute");
}

/* An adapter a build leaves out (meson -Dkafka=disabled): a mapping or a destination that needs
 * it gets one error naming the missing feature and how to build it in, not "unknown scheme" nor
 * a list of unknown keys. With Kafka built in, the same mappings load. */
static void test_left_out_adapter(void **state)
{
    struct fixture *f = *state;
    static const char msk[] = "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
                              "\"arn:aws:kafka:us-east-1:1:cluster/c/abc\",\"Topics\":[\"orders\"],"
                              "\"bootstrap_servers\":[\"127.0.0.1:9092\"],"
                              "\"FunctionName\":\"audit\",\"StartingPosition\":\"LATEST\"}]}";
    static const char self_managed[] =
        "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"SelfManagedEventSource\":"
        "{\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[\"127.0.0.1:9092\"]}},"
        "\"Topics\":[\"orders\"],\"SelfManagedKafkaEventSourceConfig\":"
        "{\"ConsumerGroupId\":\"g\"},\"FunctionName\":\"audit\","
        "\"StartingPosition\":\"LATEST\",\"rdkafka\":{\"session.timeout.ms\":\"6000\"}}]}";
    static const char kafka_destination[] =
        "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK ",\"DestinationConfig\":"
        "{\"OnFailure\":{\"Destination\":\"kafka://dlq\"}}}]}";
#if SL_HAVE_KAFKA
    assert_null(sl_registry_left_out("kafka://dlq"));
    assert_null(sl_registry_left_out("arn:aws:kafka:us-east-1:1:cluster/c/abc"));
    assert_int_equal(load(f, msk), 0);
    assert_int_equal(load(f, self_managed), 0);
    /* A kafka:// destination is for Kafka mappings: refused, but not as left out. */
    assert_int_equal(load(f, kafka_destination), SL_ECONFIG);
    expect_sub(f, "kafka:// destinations are for Kafka mappings");
#else
    const struct sl_registry_feature *feat = sl_registry_left_out("KAFKA://dlq");
    assert_non_null(feat);
    assert_string_equal(feat->option, "kafka");
    assert_null(sl_registry_left_out("file:///tmp/x"));
    expect_one(f, msk,
               "$.mappings[0].EventSourceArn: \"arn:aws:kafka:us-east-1:1:cluster/c/abc\" is a "
               "Kafka source and this sluice was built without Kafka (Kafka is built in by meson "
               "setup -Dkafka=enabled, which needs librdkafka); allowed: file://..." SQS_SCHEMES
                   REDIS_SCHEMES KINESIS_SCHEMES);
    expect_one(
        f, self_managed,
        "$.mappings[0].SelfManagedEventSource: \"kafka://127.0.0.1:9092\" is a Kafka "
        "source and this sluice was built without Kafka (Kafka is built in by meson setup "
        "-Dkafka=enabled, which needs librdkafka); allowed: file://..." SQS_SCHEMES REDIS_SCHEMES
            KINESIS_SCHEMES);
    expect_one(
        f, kafka_destination,
        "$.mappings[0].DestinationConfig.OnFailure.Destination: \"kafka://dlq\" is a Kafka "
        "destination and this sluice was built without Kafka (Kafka is built in by meson "
        "setup -Dkafka=enabled, which needs librdkafka); allowed: file:///dir, "
        "http(s)://..., arn:aws:sqs:REGION:ACCOUNT:QUEUE or an SQS queue URL" REDIS_DESTINATIONS);
#endif
}

/* Redis (meson -Dredis=disabled) brings only a destination: a redis:// destination is named as
 * left out; a redis:// EventSourceArn is not a source of any build (an unknown scheme). */
static void test_left_out_redis(void **state)
{
    struct fixture *f = *state;
    static const char redis_destination[] =
        "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK ",\"DestinationConfig\":"
        "{\"OnFailure\":{\"Destination\":\"redis://:pw@127.0.0.1:6379/0/dlq\"}}}]}";
#if SL_HAVE_REDIS
    assert_null(sl_registry_left_out("redis://127.0.0.1:6379/0/dlq"));
    assert_int_equal(load(f, redis_destination), 0);
#else
    const struct sl_registry_feature *feat = sl_registry_left_out("REDIS://h/0/s");
    assert_non_null(feat);
    assert_string_equal(feat->option, "redis");
    assert_int_equal(load(f, redis_destination), SL_ECONFIG);
    expect_sub(f, "$.mappings[0].DestinationConfig.OnFailure.Destination: "
                  "\"redis://***@127.0.0.1:6379/0/dlq\" is a Redis destination and this sluice "
                  "was built without Redis (Redis is built in by meson setup -Dredis=enabled, "
                  "which needs hiredis (libhiredis-dev))");
#endif
}

static void test_function_types(void **state)
{
    struct fixture *f = *state;
    expect_one(
        f, "{\"functions\":{" FN_AUDIT ",\"a\":{\"type\":\"grpc\"}},\"mappings\":[" MAP_OK "}]}",
        "$.functions.a.type: \"grpc\" is not a function type; allowed: exec, http, lambda");
    expect_one(
        f, "{\"functions\":{" FN_AUDIT ",\"a\":{\"url\":\"http://x\"}},\"mappings\":[" MAP_OK "}]}",
        "$.functions.a.type: missing required key; allowed: exec, http, lambda");
    expect_one(f, "{\"functions\":{" FN_AUDIT ",\"a\":5},\"mappings\":[" MAP_OK "}]}",
               "$.functions.a: not an object; allowed: an object with \"type\"");
    /* A mapping naming a declared but invalid function gets no second error. */
    expect_one(f, "{\"functions\":{\"audit\":{\"type\":\"grpc\"}},\"mappings\":[" MAP_OK "}]}",
               "$.functions.audit.type: \"grpc\" is not a function type; allowed: exec, http, "
               "lambda");
    /* The type's check, joined to the path of the key it names. */
    expect_one(f,
               "{\"functions\":{" FN_AUDIT ",\"hook\":{\"type\":\"http\",\"url\":\"ftp://x\"}},"
               "\"mappings\":[" MAP_OK "}]}",
               "$.functions.hook.url: \"ftp://x\" has a scheme sluice does not speak here; "
               "allowed: an http:// or https:// URL with a host and an optional port from 1 to "
               "65535");
}

static void test_function_name_resolution(void **state)
{
    struct fixture *f = *state;
    const char *text = "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
                       "\"file:///tmp/a.log\",\"FunctionName\":\"orders\",\"StartingPosition\":"
                       "\"LATEST\"},{\"EventSourceArn\":\"file:///tmp/b.log\",\"FunctionName\":"
                       "\"orders\",\"StartingPosition\":\"LATEST\"},{\"EventSourceArn\":"
                       "\"file:///tmp/c.log\",\"FunctionName\":\"audit\",\"StartingPosition\":"
                       "\"LATEST\"}]}";
    assert_int_equal(load(f, text), SL_ECONFIG);
    assert_int_equal(f->errs.n, 2);
    expect(f, "$.mappings[0].FunctionName: \"orders\" is not in \"functions\" and neither "
              "AWS_ENDPOINT_URL_LAMBDA nor AWS_ENDPOINT_URL is set; allowed: one of audit, or a "
              "Lambda function with AWS_ENDPOINT_URL_LAMBDA set");

    setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9001", 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
    int r = load(f, text);
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    struct sl_config *cfg = f->cfg;
    assert_int_equal(cfg->n_functions, 2); /* one synthesized for both mappings */
    const struct sl_function_conf *fc = &cfg->functions[1];
    assert_string_equal(fc->name, "orders");
    assert_ptr_equal(fc->ops, &sl_function_lambda);
    assert_string_equal(cJSON_GetObjectItem(fc->json, "type")->valuestring, "lambda");
    assert_string_equal(cJSON_GetObjectItem(fc->json, "endpoint")->valuestring,
                        "http://127.0.0.1:9001");
    assert_string_equal(cJSON_GetObjectItem(fc->json, "function_name")->valuestring, "orders");
    assert_ptr_equal(cfg->mappings[0].function, fc);
    assert_ptr_equal(cfg->mappings[1].function, fc);
    assert_ptr_equal(cfg->mappings[2].function, &cfg->functions[0]);

    /* AWS_ENDPOINT_URL alone also works. */
    unsetenv("AWS_ENDPOINT_URL_LAMBDA");
    assert_int_equal(load(f, text), 0);
    assert_string_equal(cJSON_GetObjectItem(f->cfg->functions[1].json, "endpoint")->valuestring,
                        "http://127.0.0.1:4566");
}

static void test_env_expansion(void **state)
{
    struct fixture *f = *state;
    setenv("SL_TEST_DIR", "/srv/logs", 1);
    int r = load(f, "{\"state_dir\":\"${SL_TEST_DIR}/state\",\"functions\":{" FN_AUDIT "},"
                    "\"mappings\":[{\"EventSourceArn\":\"file://${SL_TEST_DIR}/*.log\","
                    "\"FunctionName\":\"audit\",\"StartingPosition\":\"LATEST\"}]}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    assert_string_equal(f->cfg->state_dir, "/srv/logs/state");
    assert_string_equal(f->cfg->mappings[0].core.event_source_arn, "file:///srv/logs/*.log");
    /* $${ is a literal ${ (and then not a valid UUID, which shows it was kept). */
    sl_config_free(f->cfg);
    f->cfg = NULL;
    expect_one(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK ",\"UUID\":\"a$${x}\"}]}",
               "$.mappings[0].UUID: \"a${x}\" is not a valid id; allowed: 1 to 128 of A-Z a-z "
               "0-9 . _ - (not starting with .)");
    expect_one(f,
               "{\"functions\":{\"audit\":{\"type\":\"exec\",\"command\":[\"cat\","
               "\"${SL_TEST_UNSET}\"]}},\"mappings\":[" MAP_OK "}]}",
               "$.functions.audit.command[1]: environment variable SL_TEST_UNSET is not set; "
               "allowed: set SL_TEST_UNSET, or write $${SL_TEST_UNSET} for a literal "
               "${SL_TEST_UNSET}");
    expect_one(f,
               "{\"state_dir\":\"${bad-name}\",\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK
               "}]}",
               "$.state_dir: bad variable reference \"${bad-name}\"; allowed: ${NAME} with NAME "
               "of letters, digits and _, or $${ for a literal ${");
}

static void test_syntax_error(void **state)
{
    struct fixture *f = *state;
    expect_one(f, "{\n  \"state_dir\": \"x\",\n  \"mappings\": [,]\n}\n",
               "line 3, column 16: invalid JSON near \",]\"; allowed: one complete JSON object");
    expect_one(f, "{\"a\": 1",
               "line 1, column 8: invalid JSON at end of input; allowed: one complete JSON object");
    expect_one(f, "{} {}",
               "line 1, column 4: invalid JSON near \"{}\"; allowed: one complete "
               "JSON object");
}

static void test_missing_file(void **state)
{
    struct fixture *f = *state;
    char path[4300];
    (void)snprintf(path, sizeof(path), "%s/nope.json", f->dir);
    assert_int_equal(sl_config_load(path, &f->cfg, &f->errs), SL_ECONFIG);
    assert_null(f->cfg);
    assert_int_equal(f->errs.n, 1);
    char want[4400];
    (void)snprintf(want, sizeof(want),
                   "%s: cannot open: No such file or directory; allowed: a readable JSON file",
                   path);
    assert_string_equal(f->errs.items[0], want);
}

static void test_uuids(void **state)
{
    struct fixture *f = *state;
    /* Explicit duplicates. */
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK ",\"UUID\":\"u1\"},"
               "{\"EventSourceArn\":\"file:///tmp/b.log\",\"FunctionName\":\"audit\","
               "\"StartingPosition\":\"LATEST\",\"UUID\":\"u1\"}]}",
               "$.mappings[1].UUID: \"u1\" is also the UUID of $.mappings[0]; allowed: a UUID no "
               "other mapping has");
}

static void test_uuid_duplicate_derived(void **state)
{
    struct fixture *f = *state;
    int r = load(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK "}," MAP_OK "}]}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    expect_sub(f, ": $.mappings[1]: same EventSourceArn and FunctionName as $.mappings[0] "
                  "(derived UUID ");
    expect_sub(f, "); allowed: a different UUID for each");
}

static char *derived_uuid(struct fixture *f, const char *mapping)
{
    char text[2048];
    (void)snprintf(text, sizeof(text), "{\"functions\":{" FN_AUDIT "},\"mappings\":[%s]}", mapping);
    int r = load(f, text);
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    assert_true(f->cfg->mappings[0].uuid_derived);
    size_t n = strlen(f->cfg->mappings[0].core.uuid) + 1;
    char *u = malloc(n);
    assert_non_null(u);
    memcpy(u, f->cfg->mappings[0].core.uuid, n);
    return u;
}

static void test_uuid_derivation(void **state)
{
    struct fixture *f = *state;
    char *a = derived_uuid(f, "{\"EventSourceArn\":\"file:///tmp/a.log\",\"FunctionName\":"
                              "\"audit\",\"StartingPosition\":\"LATEST\",\"BatchSize\":10}");
    char *b =
        derived_uuid(f, "{\"BatchSize\":10,\"StartingPosition\":\"LATEST\","
                        "\"FunctionName\":\"audit\",\"EventSourceArn\":\"file:///tmp/a.log\"}");
    char *c = derived_uuid(f, "{\"EventSourceArn\":\"file:///tmp/b.log\",\"FunctionName\":"
                              "\"audit\",\"StartingPosition\":\"LATEST\",\"BatchSize\":10}");
    char *d = derived_uuid(f, "{\"EventSourceArn\":\"file:///tmp/a.log\",\"FunctionName\":"
                              "\"audit\",\"StartingPosition\":\"LATEST\",\"BatchSize\":11}");
    setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9001", 1);
    char *e = derived_uuid(f, "{\"EventSourceArn\":\"file:///tmp/a.log\",\"FunctionName\":"
                              "\"other\",\"StartingPosition\":\"LATEST\"}");
    unsetenv("AWS_ENDPOINT_URL_LAMBDA");
    /* Key order and settings other than the source and the function do not matter: editing
     * BatchSize keeps the mapping's checkpoints, as AWS keeps its UUID. */
    assert_string_equal(a, b);
    assert_string_equal(a, d);
    assert_string_not_equal(a, c);
    assert_string_not_equal(a, e);
    assert_string_not_equal(c, e);
    /* Stable across runs and builds: the derivation is part of the checkpoint format. */
    assert_string_equal(a, "5e4637d2-33b2-8ee3-a085-821733734456");
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}

static void test_secret_hidden(void **state)
{
    struct fixture *f = *state;
    setenv("SL_TEST_TOKEN", "hunter2-secret", 1);
    int r = load(f, "{\"functions\":{" FN_AUDIT ",\"hook\":{\"type\":\"http\",\"url\":"
                    "\"http://127.0.0.1:1/\",\"headers\":{\"X-Token\":[\"${SL_TEST_TOKEN}\"],"
                    "\"X-Other\":\"hunter2-secret\\r\\n\"}}},\"mappings\":[" MAP_OK "}]}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    expect(f, "$.functions.hook.headers.X-Token: <hidden> is not a string; allowed: an object "
              "whose values are strings");
    for (size_t i = 0; i < f->errs.n; i++) {
        assert_null(strstr(f->errs.items[i], "hunter2"));
    }
    /* The type's own check must not show it either. */
    r = load(f, "{\"functions\":{" FN_AUDIT ",\"hook\":{\"type\":\"http\",\"url\":"
                "\"http://127.0.0.1:1/\",\"headers\":{\"X-Other\":\"hunter2-secret\\r\\n\"}}},"
                "\"mappings\":[" MAP_OK "}]}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_null(strstr(f->errs.items[0], "hunter2"));
}

static void test_framing_headers_refused(void **state)
{
    struct fixture *f = *state;
    int r = load(f, "{\"functions\":{" FN_AUDIT ",\"hook\":{\"type\":\"http\",\"url\":"
                    "\"http://127.0.0.1:1/\",\"headers\":{\"content-length\":\"5\","
                    "\"X-Ok\":\"1\",\"Transfer-Encoding\":\"chunked\",\"CONNECTION\":\"close\","
                    "\"Host\":\"h\",\"Expect\":\"100-continue\",\"Bad Name\":\"x\"}}},"
                    "\"mappings\":[" MAP_OK "}]}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 6);
    static const char *const names[] = {"content-length", "Transfer-Encoding", "CONNECTION", "Host",
                                        "Expect"};
    for (size_t i = 0; i < SL_ARRAY_LEN(names); i++) {
        char want[256];
        (void)snprintf(want, sizeof(want),
                       "$.functions.hook.headers.%s: sluice sets this header from the request "
                       "itself, and another value would break the HTTP framing; allowed: any "
                       "header but Content-Length, Transfer-Encoding, Connection, Host and Expect",
                       names[i]);
        expect(f, want);
    }
    expect_sub(f, "$.functions.hook.headers.Bad Name: not a valid header name");
}

static void test_url_values_checked(void **state)
{
    struct fixture *f = *state;
    /* Ports, hosts and schemes of every URL option; the value shown, redacted. */
    int r = load(f, "{\"functions\":{" FN_AUDIT ",\"hook\":{\"type\":\"http\",\"url\":"
                    "\"http://u:hunter2@127.0.0.1:99999/?t=tok\"},\"l\":{\"type\":\"lambda\","
                    "\"endpoint\":\"http://127.0.0.1:0\",\"function_name\":\"f\"}},"
                    "\"mappings\":[" MAP_OK ",\"DestinationConfig\":{\"OnFailure\":{"
                    "\"Destination\":\"https://carol:hunter2@:8080/x\"}}}]}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 3);
    expect(f, "$.functions.hook.url: \"http://***@127.0.0.1:99999/?***\" has a port outside 1 "
              "to 65535; allowed: an http:// or https:// URL with a host and an optional port "
              "from 1 to 65535");
    expect(f, "$.functions.l.endpoint: \"http://127.0.0.1:0\" has a port outside 1 to 65535; "
              "allowed: an http:// or https:// URL with a host, an optional port from 1 to 65535 "
              "and no query");
    expect_sub(f, "$.mappings[0].DestinationConfig.OnFailure.Destination: "
                  "\"https://***@:8080/x\" has no host");
    for (size_t i = 0; i < f->errs.n; i++) {
        assert_null(strstr(f->errs.items[i], "hunter2"));
        assert_null(strstr(f->errs.items[i], "tok"));
    }
}

static void test_url_secrets_not_in_errors(void **state)
{
    struct fixture *f = *state;
    expect_mapping_error(f,
                         ",\"DestinationConfig\":{\"OnFailure\":{\"Destination\":"
                         "\"gopher://u:hunter2@h/x?t=tok\"}}",
                         "$.mappings[0].DestinationConfig.OnFailure.Destination: "
                         "\"gopher://***@h/x?***\" is not a destination sluice can write; "
                         "allowed: file:///dir, http(s)://..., arn:aws:sqs:REGION:ACCOUNT:QUEUE "
                         "or an SQS queue URL" KAFKA_DESTINATIONS REDIS_DESTINATIONS);
    expect_one(
        f,
        "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
        "\"gopher://:hunter2@h:6379/0?t=tok\",\"FunctionName\":\"audit\"}]}",
        "$.mappings[0].EventSourceArn: \"gopher://***@h:6379/0?***\" has an unknown "
        "scheme; allowed: file://..." SQS_SCHEMES KAFKA_SCHEMES REDIS_SCHEMES KINESIS_SCHEMES);
#if SL_HAVE_REDIS
    /* the Redis Streams source's own refusal names no secret either */
    expect_one(f,
               "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
               "\"redis://:hunter2@h:6379/0?t=tok\",\"FunctionName\":\"audit\","
               "\"StartingPosition\":\"LATEST\"}]}",
               "$.mappings[0].EventSourceArn: \"redis://***@h:6379/0?***\" names no stream; "
               "allowed: redis://[user:password@]host:port/db/STREAM");
#endif
}

static void test_nul_in_strings(void **state)
{
    struct fixture *f = *state;
    int r = load(f, "{\"functions\":{" FN_AUDIT ",\"hook\":{\"type\":\"http\",\"url\":"
                    "\"http://127.0.0.1:1/\\u0000x\",\"headers\":{\"X-A\":\"ok\\\\u0000\"}}},"
                    "\"mappings\":[" MAP_OK ",\"FunctionResponseTypes\":[\"a\",\"b\\u0000\"]}]}");
    assert_int_equal(r, SL_ECONFIG);
    expect(f, "$.functions.hook.url: the string contains \\u0000 (a NUL character), which would "
              "cut the value short; allowed: strings without \\u0000");
    expect_sub(f, "$.mappings[0].FunctionResponseTypes[1]: the string contains \\u0000");
    /* "\\u0000" is a backslash and "u0000", not a NUL. */
    for (size_t i = 0; i < f->errs.n; i++) {
        assert_null(strstr(f->errs.items[i], "X-A"));
    }
    r = load(f, "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_OK ",\"a\\u0000b\":1}]}");
    assert_int_equal(r, SL_ECONFIG);
    expect_sub(f, "$.mappings[0].a: the key contains \\u0000");
}

static void test_all_errors_collected(void **state)
{
    struct fixture *f = *state;
    int r = load(f, "{\"statedir\":1,\"stats_interval\":\"1ms\",\n"
                    " \"functions\":{\"a\":{\"type\":\"nope\"},\"b\":{\"type\":\"exec\"}},\n"
                    " \"mappings\":[\n"
                    "  {\"EventSourceArn\":\"file:///tmp/a.log\",\"FunctionName\":\"zz\","
                    "\"BatchSize\":0,\"MaximumBatchingWindowInSeconds\":301,\"Bogus\":1},\n"
                    "  {\"EventSourceArn\":\"s3://bucket/key\",\"FunctionName\":\"b\","
                    "\"StartingPosition\":\"NOW\"},\n"
                    "  {\"FunctionName\":\"${SL_TEST_UNSET}\"}\n"
                    " ]}\n");
    assert_int_equal(r, SL_ECONFIG);
    assert_null(f->cfg);
    static const char *const want[] = {
        "$.mappings[2].FunctionName: environment variable SL_TEST_UNSET",
        "$.statedir: unknown key",
        "$.stats_interval: \"1ms\" (1ms) is out of range",
        "$.functions.a.type: \"nope\" is not a function type",
        "$.functions.b.command: missing required key",
        "$.mappings[0].BatchSize: 0 is out of range",
        "$.mappings[0].MaximumBatchingWindowInSeconds: 301 is out of range",
        "$.mappings[0].Bogus: unknown key",
        "$.mappings[0].StartingPosition: missing required key",
        "$.mappings[0].FunctionName: \"zz\" is not in \"functions\"",
        "$.mappings[1].EventSourceArn: \"s3://bucket/key\" has an unknown scheme",
        "$.mappings[1].StartingPosition: \"NOW\" is not a valid choice",
        "$.mappings[2].EventSourceArn: missing required key",
        "$.mappings[2].FunctionName: \"${SL_TEST_UNSET}\" is not in \"functions\"",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
        expect_sub(f, want[i]);
    }
    if (f->errs.n != SL_ARRAY_LEN(want)) {
        dump(f);
    }
    assert_int_equal(f->errs.n, SL_ARRAY_LEN(want));
    /* Every error names the file first. */
    for (size_t i = 0; i < f->errs.n; i++) {
        assert_int_equal(strncmp(f->errs.items[i], f->file, strlen(f->file)), 0);
        assert_non_null(strstr(f->errs.items[i], "; allowed: "));
    }
}

static void test_print_options(void **state)
{
    (void)state;
    for (int md = 0; md < 2; md++) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        assert_non_null(out);
        sl_config_print_options(out, md);
        assert_int_equal(fclose(out), 0);
        const char *p = md ? "## " : "";
        char h[64];
        static const char *const headings[] = {"Daemon",
                                               "Mapping",
                                               "Function type exec",
                                               "Function type http",
                                               "Function type lambda",
                                               "Source file",
                                               "Sink http",
                                               "Sink file"};
        for (size_t i = 0; i < SL_ARRAY_LEN(headings); i++) {
            (void)snprintf(h, sizeof(h), "\n%s%s\n", p, headings[i]);
            if (!strstr(text, h)) {
                print_error("missing heading %s in:\n%s\n", h, text);
                fail();
            }
        }
        assert_non_null(strstr(text, "MaximumBatchingWindowInSeconds"));
        assert_non_null(strstr(text, "max_line_bytes"));
        if (md) {
            assert_non_null(strstr(text, "| `BatchSize` | integer | none | 1 to 10000 |"));
            assert_non_null(strstr(text, "| `StartingPosition` | enum | none | TRIM_HORIZON, "
                                         "LATEST, AT_TIMESTAMP |"));
        }
        free(text);
    }
}

#define DEST_HTTP "\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"http://127.0.0.1:9/f\"}}"

/* destination_options are the on-failure destination's sink options: checked against that
 * sink's table when the file is loaded, each error naming the file, the JSON path and the keys
 * the sink allows. */
static void test_destination_options_checked(void **state)
{
    struct fixture *f = *state;
    expect_mapping_error(f, "," DEST_HTTP ",\"destination_options\":{\"timout\":\"5s\"}",
                         "$.mappings[0].destination_options.timout: unknown key (did you mean "
                         "timeout?); allowed: timeout");
    expect_mapping_error(
        f, "," DEST_HTTP ",\"destination_options\":{\"timeout\":\"99h\"}",
        "$.mappings[0].destination_options.timeout: \"99h\" (99h) is out of range; "
        "allowed: 100ms to 15m");
    expect_mapping_error(f, "," DEST_HTTP ",\"destination_options\":[1]",
                         "$.mappings[0].destination_options: [1] is not an object; allowed: an "
                         "object");
    /* a sink without options takes none */
    expect_mapping_error(f,
                         ",\"DestinationConfig\":{\"OnFailure\":{\"Destination\":\"file:///tmp/"
                         "dlq\"}},\"destination_options\":{\"timeout\":\"5s\"}",
                         "$.mappings[0].destination_options.timeout: unknown key; allowed: no "
                         "keys");
    /* without a destination they would apply to nothing */
    expect_mapping_error(f, ",\"destination_options\":{\"timeout\":\"5s\"}",
                         "$.mappings[0].destination_options: no on-failure destination to apply "
                         "them to; allowed: only beside DestinationConfig.OnFailure.Destination");
}

/* A valid destination_options loads and is what the sink is opened with: the sink's own option
 * (read back through its table) has the configured value, not its default. */
static void test_destination_options_reach_the_sink(void **state)
{
    struct fixture *f = *state;
    int r = load_mapping(f, "," DEST_HTTP ",\"destination_options\":{\"timeout\":\"2500ms\"}");
    if (r != 0) {
        dump(f);
        fail();
    }
    const struct sl_mapping_conf *mc = &f->cfg->mappings[0];
    assert_string_equal(mc->on_failure, "http://127.0.0.1:9/f");
    const struct sl_sink_ops *sink = sl_sink_for(mc->on_failure);
    assert_non_null(sink);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sl_httpc *httpc = NULL;
    assert_int_equal(sl_httpc_new(&loop, &httpc), 0);
    struct sl_clock_fake clock;
    sl_clock_fake_init(&clock, 0, 0);
    struct sl_sink_env env = {
        .loop = &loop, .httpc = httpc, .clock = &clock.clock, .inst = "t", .region = "us-east-1"};
    const struct sl_opt *timeout = NULL;
    for (const struct sl_opt *o = sink->opts; o && o->name; o++) {
        timeout = strcmp(o->name, "timeout") == 0 ? o : timeout;
    }
    assert_non_null(timeout);
    for (int configured = 0; configured < 2; configured++) {
        void *ctx = NULL;
        char errbuf[256] = "";
        assert_int_equal(sl_sink_open(sink, &env, mc->on_failure,
                                      configured ? mc->core.destination_options : NULL, f->file,
                                      mc->path, &ctx, errbuf, sizeof(errbuf)),
                         0);
        int64_t ms;
        memcpy(&ms, (const char *)ctx + timeout->off, sizeof(ms));
        assert_int_equal(ms, configured ? 2500 : 30000);
        sl_sink_close(sink, ctx);
    }
    sl_httpc_free(httpc);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

#define MAP_QUEUE "{\"EventSourceArn\":\"" FAKE_QUEUE_SCHEME "q\",\"FunctionName\":\"audit\""

static int load_queue_mapping(struct fixture *f, const char *extra)
{
    char text[4096];
    (void)snprintf(text, sizeof(text),
                   "{\"functions\":{" FN_AUDIT "},\"mappings\":[" MAP_QUEUE "%s}]}", extra);
    return load(f, text);
}

/* A queue source's BatchSize comes from its kind's caps (the fake queue's are SQS's: default
 * 10, at most 10000), and more than 10 needs a batching window of at least 1 s (AWS's rule for
 * SQS), keyed on the caps, not the source's name. */
static void test_queue_batch_rules(void **state)
{
    struct fixture *f = *state;
    fake_queue_register();
    assert_int_equal(load_queue_mapping(f, ""), 0);
    assert_int_equal(f->cfg->mappings[0].core.batch_size, 10);
    assert_int_equal(f->cfg->mappings[0].core.window_ms, 0);
    assert_int_equal(load_queue_mapping(f, ",\"BatchSize\":10"), 0);
    static const char *const no_window[] = {
        ",\"BatchSize\":11", ",\"BatchSize\":11,\"MaximumBatchingWindowInSeconds\":0"};
    for (size_t i = 0; i < SL_ARRAY_LEN(no_window); i++) {
        int r = load_queue_mapping(f, no_window[i]);
        if (r != SL_ECONFIG || f->errs.n != 1) {
            dump(f);
            fail_msg("r=%d, %zu errors for %s", r, f->errs.n, no_window[i]);
        }
        expect(f, "$.mappings[0].MaximumBatchingWindowInSeconds: a queue source with BatchSize 11 "
                  "(more than 10) needs a batching window of at least 1 second (AWS's rule for "
                  "SQS); allowed: MaximumBatchingWindowInSeconds 1 to 300, or BatchSize 1 to 10");
    }
    assert_int_equal(
        load_queue_mapping(f, ",\"BatchSize\":11,\"MaximumBatchingWindowInSeconds\":1"), 0);
    assert_int_equal(
        load_queue_mapping(f, ",\"BatchSize\":10000,\"MaximumBatchingWindowInSeconds\":1"), 0);
    assert_int_equal(load_queue_mapping(f, ",\"BatchSize\":10001"), SL_ECONFIG);
    expect(f, "$.mappings[0].BatchSize: 10001 is out of range; allowed: 1 to 10000");
    /* a stream has no such rule */
    assert_int_equal(load_mapping(f, ",\"BatchSize\":11"), 0);
    sl_source_register_extra(NULL);
}

#if SL_HAVE_KINESIS
/* A Kinesis mapping that does not set max_records_buffered gets its caps' default (four full
 * GetRecords pages); one that sets it keeps its value; other sources keep the option's. */
static void test_kinesis_records_buffered_default(void **state)
{
    struct fixture *f = *state;
    static const char *const fmt =
        "{\"functions\":{" FN_AUDIT "},\"mappings\":[{\"EventSourceArn\":"
        "\"arn:aws:kinesis:us-east-1:123456789012:stream/s\",\"FunctionName\":\"audit\","
        "\"StartingPosition\":\"TRIM_HORIZON\"%s}]}";
    char text[1024];
    (void)snprintf(text, sizeof(text), fmt, "");
    assert_int_equal(load(f, text), 0);
    assert_int_equal(f->cfg->mappings[0].core.max_records_buffered, 40000);
    (void)snprintf(text, sizeof(text), fmt, ",\"max_records_buffered\":5000");
    assert_int_equal(load(f, text), 0);
    assert_int_equal(f->cfg->mappings[0].core.max_records_buffered, 5000);
    assert_int_equal(load_mapping(f, ""), 0);
    assert_int_equal(f->cfg->mappings[0].core.max_records_buffered, 10000);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_from_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starting_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_scheme, setup, teardown),
        cmocka_unit_test_setup_teardown(test_left_out_adapter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_left_out_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_function_name_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_expansion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid_duplicate_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid_derivation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_hidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_framing_headers_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_values_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_url_secrets_not_in_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_in_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_errors_collected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destination_options_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destination_options_reach_the_sink, setup, teardown),
        cmocka_unit_test(test_print_options),
        cmocka_unit_test_setup_teardown(test_queue_batch_rules, setup, teardown),
#if SL_HAVE_KINESIS
        cmocka_unit_test_setup_teardown(test_kinesis_records_buffered_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_store_url, setup, teardown),
#endif
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

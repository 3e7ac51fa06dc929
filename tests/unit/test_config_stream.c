/* SPDX-License-Identifier: Apache-2.0 */
/* test_config_stream.c: "delivery_streams" and "listen" in the configuration loader
 * (config_stream.c, config.c): a CreateDeliveryStream-shaped entry loads with its defaults and
 * values, the S3 API, GZIP, prefix expressions and the HTTP endpoint with its S3Configuration;
 * each refusal names the JSON path and what is allowed (other destinations and sources,
 * transforms, other compressions not built yet; bad expressions;
 * ranges; names; prefixes that leave the directory; duplicates; a bad listen address). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "fh_http.h"
#include "fh_processing.h"
#include "helpers.h"
#include "sink.h"
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

#define DEST_OK "\"BucketARN\":\"file:///tmp/out\""

/* One delivery stream "clicks" whose destination object is DEST_OK followed by dest_extra, and
 * whose entry ends with entry_extra. */
static int load_stream(struct fixture *f, const char *dest_extra, const char *entry_extra)
{
    char text[4096];
    (void)snprintf(text, sizeof(text),
                   "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                   "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "%s}%s}]}",
                   dest_extra, entry_extra);
    return load(f, text);
}

/* Loads expecting exactly one error, "<file>: " + want. */
static void expect_one(struct fixture *f, int r, const char *want)
{
    size_t flen = strlen(f->file);
    if (r != SL_ECONFIG || f->errs.n != 1 || strncmp(f->errs.items[0], f->file, flen) != 0 ||
        strcmp(f->errs.items[0] + flen, want) != 0) {
        dump(f);
        print_error("r=%d, wanted one error: <file>%s\n", r, want);
        fail();
    }
    assert_null(f->cfg);
}

#define DEST_PATH ": $.delivery_streams[0].ExtendedS3DestinationConfiguration"
#define QUERY_PROC                                                                        \
    "{\"Enabled\":true,\"Processors\":[{\"Type\":\"MetadataExtraction\",\"Parameters\":[" \
    "{\"ParameterName\":\"MetadataExtractionQuery\",\"ParameterValue\":\"{a:.a}\"},"      \
    "{\"ParameterName\":\"JsonParsingEngine\",\"ParameterValue\":\"JQ-1.6\"}]}]}"

static void test_config_stream_valid(void **state)
{
    struct fixture *f = *state;
    int r = load(f, "{\"listen\":\"127.0.0.1:0\",\"delivery_streams\":["
                    "{\"DeliveryStreamName\":\"clicks\",\"DeliveryStreamType\":\"DirectPut\","
                    "\"ExtendedS3DestinationConfiguration\":{\"RoleARN\":\"arn:aws:iam::1:role/r\","
                    "\"BucketARN\":\"file:///tmp/out\",\"Prefix\":\"raw/\","
                    "\"ErrorOutputPrefix\":\"err/\",\"BufferingHints\":{\"SizeInMBs\":1,"
                    "\"IntervalInSeconds\":0},\"CompressionFormat\":\"UNCOMPRESSED\","
                    "\"ProcessingConfiguration\":{\"Enabled\":false},"
                    "\"EncryptionConfiguration\":{\"NoEncryptionConfig\":\"NoEncryption\"}},"
                    "\"Tags\":[{\"Key\":\"a\",\"Value\":\"b\"}]},"
                    "{\"DeliveryStreamName\":\"other.stream-2\","
                    "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}}]}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    assert_int_equal(f->cfg->n_mappings, 0);
    assert_int_equal(f->cfg->n_streams, 2);
    assert_string_equal(f->cfg->listen, "127.0.0.1:0");
    const struct sl_stream_conf *sc = &f->cfg->streams[0];
    assert_string_equal(sc->name, "clicks");
    assert_string_equal(sc->dir, "/tmp/out");
    assert_string_equal(sc->prefix, "raw/");
    assert_string_equal(sc->error_prefix, "err/");
    assert_string_equal(sc->role_arn, "arn:aws:iam::1:role/r");
    assert_int_equal(sc->size_mb, 1);
    assert_int_equal(sc->interval_s, 0);
    assert_int_equal(sc->compression, SL_STREAM_UNCOMPRESSED);
    /* Firehose's defaults: 5 MiB, 300 s, no prefix */
    sc = &f->cfg->streams[1];
    assert_int_equal(sc->size_mb, 5);
    assert_int_equal(sc->interval_s, 300);
    assert_string_equal(sc->prefix, "");
    assert_null(sc->error_prefix);
}

static void test_config_stream_listen_default(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(load_stream(f, "", ""), 0);
    assert_string_equal(f->cfg->listen, "127.0.0.1:4573");
    expect_one(f, load(f, "{\"listen\":\"4573\",\"delivery_streams\":[]}"),
               ": $.listen: \"4573\" is not host:port; allowed: host:port like "
               "\"127.0.0.1:4573\"");
    expect_one(f, load(f, "{\"listen\":\"localhost:70000\",\"delivery_streams\":[]}"),
               ": $.listen: \"localhost:70000\": the port is not a number from 0 to 65535; "
               "allowed: host:port like \"127.0.0.1:4573\"");
}

/* The S3 API and file:// buckets, GZIP and prefix expressions load; what is still not built is
 * refused by name. */
static void test_config_stream_s3_built(void **state)
{
    struct fixture *f = *state;
    int r = load(f, "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                    "\"ExtendedS3DestinationConfiguration\":{\"BucketARN\":"
                    "\"arn:aws:s3:::my-bucket\",\"CompressionFormat\":\"GZIP\","
                    "\"Prefix\":\"logs/!{timestamp:yyyy-MM}/\",\"ErrorOutputPrefix\":"
                    "\"err/!{firehose:error-output-type}/\"}}]}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    const struct sl_stream_conf *sc = &f->cfg->streams[0];
    assert_int_equal(sc->compression, SL_STREAM_GZIP);
    assert_null(sc->dir);
    assert_non_null(sc->layout);
    assert_null(sc->http);
    expect_one(f,
               load(f, "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                       "\"ExtendedS3DestinationConfiguration\":{\"BucketARN\":\"file://rel\"}}]}"),
               DEST_PATH ".BucketARN: 'file://rel': needs an absolute path and no host: "
                         "file:///absolute/dir (three slashes)");
    expect_one(f,
               load(f, "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                       "\"ExtendedS3DestinationConfiguration\":{\"BucketARN\":"
                       "\"arn:aws:s3:::A_B\"}}]}"),
               DEST_PATH ".BucketARN: BucketARN 'arn:aws:s3:::A_B': allowed: arn:aws:s3:::BUCKET, "
                         "BUCKET 3 to 63 characters of a-z 0-9 . - starting and ending with a "
                         "letter or digit");
}

static void test_config_stream_other_destinations_refused(void **state)
{
    struct fixture *f = *state;
    expect_one(f, load_stream(f, "", ",\"HttpEndpointDestinationConfiguration\":{}"),
               ": $.delivery_streams[0]: two destinations; allowed: one of "
               "ExtendedS3DestinationConfiguration and HttpEndpointDestinationConfiguration");
    expect_one(f, load_stream(f, "", ",\"DeliveryStreamType\":\"MSKAsSource\""),
               ": $.delivery_streams[0].DeliveryStreamType: not built; allowed: DirectPut "
               "(records put through the Firehose API) or KinesisStreamAsSource (with "
               "KinesisStreamSourceConfiguration)");
    expect_one(f, load(f, "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\"}]}"),
               DEST_PATH ": missing ExtendedS3DestinationConfiguration; allowed: an object with "
                         "BucketARN (arn:aws:s3:::BUCKET or file:///dir), an "
                         "HttpEndpointDestinationConfiguration or a SinkDestinationConfiguration");
}

#define SINK_PATH ": $.delivery_streams[0].SinkDestinationConfiguration"

/* {"DeliveryStreamName":"clicks","SinkDestinationConfiguration":{<sink>}}. */
static int load_sink(struct fixture *f, const char *sink)
{
    char text[4096];
    (void)snprintf(text, sizeof(text),
                   "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                   "\"SinkDestinationConfiguration\":{%s}}]}",
                   sink);
    return load(f, text);
}

/* A Kafka topic and a Redis stream as destinations: the sink that serves each, the cluster a
 * Kafka one gets, the sink's options and the buffering hints. */
static void test_config_stream_sink_destinations(void **state)
{
    struct fixture *f = *state;
    (void)f; /* a build with neither Kafka nor Redis checks nothing here */
#if SL_HAVE_KAFKA
    int r = load_sink(f, "\"Destination\":\"kafka://clicks\","
                         "\"BootstrapServers\":\"127.0.0.1:9092,127.0.0.1:9093\","
                         "\"rdkafka\":{\"client.id\":\"fh\"},"
                         "\"DestinationOptions\":{\"delivery_timeout\":\"5s\"},"
                         "\"BufferingHints\":{\"SizeInMBs\":2,\"IntervalInSeconds\":0}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    const struct sl_stream_sink_conf *k = f->cfg->streams[0].sink;
    assert_non_null(k);
    assert_string_equal(k->ops->name, "kafka");
    assert_string_equal(k->destination, "kafka://clicks");
    assert_string_equal(sl_strmap_get(&k->cluster, "bootstrap.servers"),
                        "127.0.0.1:9092,127.0.0.1:9093");
    assert_string_equal(sl_strmap_get(&k->cluster, "client.id"), "fh");
    assert_non_null(k->options);
    assert_int_equal(f->cfg->streams[0].size_mb, 2);
    assert_int_equal(f->cfg->streams[0].interval_s, 0);
    assert_null(f->cfg->streams[0].http);
    expect_one(f, load_sink(f, "\"Destination\":\"kafka://clicks\""),
               SINK_PATH ".BootstrapServers: missing; allowed: the cluster kafka://clicks writes "
                         "to, as \"host:port,host:port\"");
    /* the cluster a mapping's destination_options may name is the stream's BootstrapServers */
    expect_one(f,
               load_sink(f, "\"Destination\":\"kafka://clicks\",\"BootstrapServers\":\"h:1\","
                            "\"DestinationOptions\":{\"bootstrap_servers\":[\"h:2\"]}"),
               SINK_PATH ".DestinationOptions.bootstrap_servers: a mapping's option; allowed: the "
                         "cluster in BootstrapServers (and rdkafka) beside Destination");
#endif
#if SL_HAVE_REDIS
    int rr = load_sink(f, "\"Destination\":\"redis://u:pw@127.0.0.1:6379/2/clicks?maxlen=9\","
                          "\"DestinationOptions\":{\"command_timeout\":\"2s\"}");
    if (rr != 0) {
        dump(f);
    }
    assert_int_equal(rr, 0);
    assert_string_equal(f->cfg->streams[0].sink->ops->name, "redis");
    assert_int_equal(f->cfg->streams[0].sink->cluster.n, 0);
    assert_int_equal(f->cfg->streams[0].size_mb, 5); /* the defaults */
    assert_int_equal(f->cfg->streams[0].interval_s, 300);
    expect_one(f,
               load_sink(f, "\"Destination\":\"redis://127.0.0.1:6379/0/s\","
                            "\"BootstrapServers\":\"h:1\""),
               SINK_PATH ".BootstrapServers: not used by redis://127.0.0.1:6379/0/s; allowed: "
                         "BootstrapServers and rdkafka only with a kafka:// Destination");
    expect_one(f, load_sink(f, "\"Destination\":\"rediss://u:hunter2@h:6380/0/s\""),
               SINK_PATH ".Destination: \"rediss://***@h:6380/0/s\" asks for TLS, which this "
                         "build cannot do: Debian 12's hiredis (0.14) has no TLS support; use "
                         "redis:// (a TLS tunnel such as stunnel on loopback works); allowed: "
                         "redis://[user:password@]host[:port][/db], port 1 to 65535, db a number "
                         "from 0");
    expect_one(f,
               load_sink(f, "\"Destination\":\"redis://h:6379/0/s\","
                            "\"DestinationOptions\":{\"maxlen\":-1}"),
               SINK_PATH ".DestinationOptions.maxlen: -1 is out of range; allowed: 0 to "
                         "1099511627776");
#endif
}

/* What is not a sink destination, a second destination, and unknown keys: refused by path. */
static void test_config_stream_sink_refused(void **state)
{
    struct fixture *f = *state;
    expect_one(f, load_stream(f, "", ",\"SinkDestinationConfiguration\":{}"),
               ": $.delivery_streams[0]: two destinations; allowed: one of "
               "ExtendedS3DestinationConfiguration, HttpEndpointDestinationConfiguration and "
               "SinkDestinationConfiguration");
    int r = load_sink(f, "\"Destination\":\"gopher://u:hunter2@h/x\"");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_non_null(strstr(f->errs.items[0], SINK_PATH ".Destination: \"gopher://***@h/x\" is "
                                                       "not a destination sluice can write"));
    assert_null(strstr(f->errs.items[0], "hunter2"));
    r = load_sink(f, "\"Destination\":\"file:///tmp/x\",\"Colour\":1");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_non_null(strstr(f->errs.items[0], SINK_PATH ".Colour"));
    expect_one(f, load_sink(f, "\"BufferingHints\":{\"SizeInMBs\":1}"),
               SINK_PATH ".Destination: missing required key; allowed: a string");
}

#define KSC_PATH ": $.delivery_streams[0].KinesisStreamSourceConfiguration"
#define KIN_ARN  "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
#define FH_ARN   "arn:aws:firehose:us-east-1:000000000000:deliverystream/"

/* DeliveryStreamType KinesisStreamAsSource: its KinesisStreamSourceConfiguration becomes a
 * mapping of the Kinesis stream into the stream (from LATEST, KPL aggregates split); a mapping
 * whose FunctionName is a delivery stream's ARN feeds that stream; what does not fit is named. */
static void test_config_stream_kinesis_source(void **state)
{
    struct fixture *f = *state;
    int r = load_stream(f, "",
                        ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
                        "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"" KIN_ARN
                        "\",\"RoleARN\":\"arn:aws:iam::123456789012:role/fh\"}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    const struct sl_stream_conf *sc = &f->cfg->streams[0];
    assert_string_equal(sc->kinesis_arn, KIN_ARN);
    assert_string_equal(sc->kinesis_role_arn, "arn:aws:iam::123456789012:role/fh");
    assert_int_equal(f->cfg->n_mappings, 1);
    const struct sl_mapping_conf *mc = &f->cfg->mappings[0];
    assert_string_equal(mc->core.event_source_arn, KIN_ARN);
    assert_string_equal(mc->delivery_stream, "clicks");
    assert_int_equal(mc->stream_index, 0);
    assert_true(mc->stream_source);
    assert_null(mc->function);
    assert_int_equal(mc->core.starting_position, SL_START_LATEST);
    assert_string_equal(mc->path, "$.delivery_streams[0].KinesisStreamSourceConfiguration");
    sl_config_free(f->cfg);
    f->cfg = NULL;

    expect_one(f, load_stream(f, "", ",\"DeliveryStreamType\":\"KinesisStreamAsSource\""),
               KSC_PATH ": missing (KinesisStreamAsSource); allowed: an object with "
                        "KinesisStreamARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) and "
                        "RoleARN");
    expect_one(f,
               load_stream(f, "",
                           ",\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"" KIN_ARN
                           "\"}"),
               KSC_PATH ": only with DeliveryStreamType KinesisStreamAsSource; allowed: "
                        "\"DeliveryStreamType\": \"KinesisStreamAsSource\", or no key");
    r = load_stream(f, "",
                    ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
                    "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
                    "\"arn:aws:kinesis:us-east-1:12:stream/orders\"}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_non_null(strstr(f->errs.items[0], KSC_PATH ".KinesisStreamARN: "));
    assert_non_null(strstr(f->errs.items[0], "the account must be 12 digits"));
    expect_one(f,
               load_stream(f, "",
                           ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
                           "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":"
                           "\"file:///tmp/x\"}"),
               KSC_PATH ".KinesisStreamARN: \"file:///tmp/x\" is not a Kinesis stream ARN; "
                        "allowed: arn:aws:kinesis:REGION:ACCOUNT:stream/NAME");
    r = load_stream(f, "",
                    ",\"DeliveryStreamType\":\"KinesisStreamAsSource\","
                    "\"KinesisStreamSourceConfiguration\":{\"RoleARN\":\"x\",\"Bogus\":1}");
    assert_int_equal(r, SL_ECONFIG);
    assert_int_equal(f->errs.n, 2);
    sl_errlist_fini(&f->errs);
    sl_errlist_init(&f->errs);

    /* A mapping of any source feeds a DirectPut stream named by its ARN. */
    r = load(
        f, "{\"mappings\":[{\"EventSourceArn\":\"file:///tmp/in.log\",\"FunctionName\":\"" FH_ARN
           "clicks\",\"StartingPosition\":\"TRIM_HORIZON\"}],\"delivery_streams\":[{"
           "\"DeliveryStreamName\":\"other\",\"ExtendedS3DestinationConfiguration\":{" DEST_OK
           "}},{\"DeliveryStreamName\":\"clicks\",\"ExtendedS3DestinationConfiguration\":{" DEST_OK
           "}}]}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    assert_string_equal(f->cfg->mappings[0].delivery_stream, "clicks");
    assert_int_equal(f->cfg->mappings[0].stream_index, 1);
    assert_false(f->cfg->mappings[0].stream_source);
    sl_config_free(f->cfg);
    f->cfg = NULL;
    expect_one(f,
               load(f, "{\"mappings\":[{\"EventSourceArn\":\"file:///tmp/in.log\","
                       "\"FunctionName\":\"" FH_ARN "nope\",\"StartingPosition\":\"LATEST\"}],"
                       "\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                       "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}}]}"),
               ": $.mappings[0].FunctionName: \"" FH_ARN
               "nope\" names no delivery stream; allowed: the ARN of one of \"delivery_streams\" "
               "(arn:aws:firehose:REGION:ACCOUNT:deliverystream/DeliveryStreamName)");
    expect_one(f,
               load(f, "{\"mappings\":[{\"EventSourceArn\":\"file:///tmp/in.log\","
                       "\"FunctionName\":\"" FH_ARN "clicks\",\"StartingPosition\":\"LATEST\"}],"
                       "\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                       "\"DeliveryStreamType\":\"KinesisStreamAsSource\","
                       "\"KinesisStreamSourceConfiguration\":{\"KinesisStreamARN\":\"" KIN_ARN
                       "\"},\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}}]}"),
               ": $.mappings[0].FunctionName: \"" FH_ARN
               "clicks\" is a KinesisStreamAsSource stream, which takes records only from its "
               "Kinesis stream; allowed: a DirectPut stream");
    expect_one(f,
               load(f, "{\"mappings\":[{\"EventSourceArn\":\"file:///tmp/in.log\","
                       "\"FunctionName\":\"" FH_ARN "clicks\",\"StartingPosition\":\"LATEST\","
                       "\"TumblingWindowInSeconds\":30}],"
                       "\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                       "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}}]}"),
               ": $.mappings[0].TumblingWindowInSeconds: a delivery stream keeps no window "
               "state; allowed: 0 or no key");
}

#define HTTP_PATH ": $.delivery_streams[0].HttpEndpointDestinationConfiguration"

/* {"DeliveryStreamName":"clicks","HttpEndpointDestinationConfiguration":{<http>}}. */
static int load_http(struct fixture *f, const char *http)
{
    char text[4096];
    (void)snprintf(text, sizeof(text),
                   "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                   "\"HttpEndpointDestinationConfiguration\":{%s}}]}",
                   http);
    return load(f, text);
}

#define HTTP_OK                                                      \
    "\"EndpointConfiguration\":{\"Url\":\"http://127.0.0.1:9/in\"}," \
    "\"BufferingHints\":{\"SizeInMBs\":2,\"IntervalInSeconds\":7},"  \
    "\"S3Configuration\":{\"BucketARN\":\"file:///tmp/backup\"}"

static void test_config_stream_http(void **state)
{
    struct fixture *f = *state;
    int r = load_http(f, HTTP_OK ",\"S3BackupMode\":\"AllData\"");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    const struct sl_stream_conf *sc = &f->cfg->streams[0];
    assert_non_null(sc->http);
    assert_true(sc->http->backup_all);
    assert_int_equal(sc->size_mb, 2);
    assert_int_equal(sc->interval_s, 7);
    assert_string_equal(sc->dir, "/tmp/backup");
    assert_non_null(sc->layout);
    expect_one(f, load_http(f, "\"EndpointConfiguration\":{\"Url\":\"http://127.0.0.1:9/\"}"),
               HTTP_PATH ".S3Configuration: missing; allowed: an object with BucketARN "
                         "(arn:aws:s3:::BUCKET or file:///dir), where failed records (and all of "
                         "them with S3BackupMode AllData) are written");
    expect_one(f, load_http(f, HTTP_OK ",\"S3BackupMode\":\"Some\""),
               HTTP_PATH ".S3BackupMode: must be \"FailedDataOnly\" (default) or \"AllData\"");
    expect_one(f, load_http(f, HTTP_OK ",\"ProcessingConfiguration\":" QUERY_PROC),
               HTTP_PATH ".ProcessingConfiguration: a MetadataExtraction processor needs dynamic "
                         "partitioning, which an HTTP endpoint does not have; allowed: Lambda and "
                         "AppendDelimiterToRecord processors");
    expect_one(f,
               load_http(f, "\"EndpointConfiguration\":{\"Url\":\"http://127.0.0.1:9/\"},"
                            "\"S3Configuration\":{\"BucketARN\":\"file:///tmp/b\","
                            "\"CompressionFormat\":\"Snappy\"}"),
               HTTP_PATH ".S3Configuration.CompressionFormat: Snappy is not built; allowed: "
                         "UNCOMPRESSED or GZIP");
}

static void test_config_stream_unbuilt_features_refused(void **state)
{
    struct fixture *f = *state;
    expect_one(f, load_stream(f, ",\"CompressionFormat\":\"ZIP\"", ""),
               DEST_PATH ".CompressionFormat: ZIP is not built; allowed: UNCOMPRESSED or GZIP");
    expect_one(f, load_stream(f, ",\"Prefix\":\"!{timestamp:yyyy}/\"", ""),
               DEST_PATH ".ErrorOutputPrefix: required when Prefix has expressions or dynamic "
                         "partitioning is enabled; e.g. "
                         "\"errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/\"");
    expect_one(f, load_stream(f, ",\"Prefix\":\"!{nope:x}/\",\"ErrorOutputPrefix\":\"e/\"", ""),
               DEST_PATH ".Prefix: unknown namespace \"nope\"; allowed: !{timestamp:<pattern>}, "
                         "!{firehose:random-string|error-output-type}, "
                         "!{partitionKeyFromQuery:<key>}, !{partitionKeyFromLambda:<key>}");
}

/* A Lambda processor's LambdaArn names a function as a mapping's FunctionName does. */
static void test_config_stream_transform(void **state)
{
    struct fixture *f = *state;
    unsetenv("AWS_ENDPOINT_URL_LAMBDA");
    unsetenv("AWS_ENDPOINT_URL");
    int r = load(f, "{\"functions\":{\"up\":{\"type\":\"exec\",\"command\":[\"/bin/cat\"]}},"
                    "\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\","
                    "\"ExtendedS3DestinationConfiguration\":{" DEST_OK ","
                    "\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":["
                    "{\"Type\":\"Lambda\",\"Parameters\":[{\"ParameterName\":\"LambdaArn\","
                    "\"ParameterValue\":\"up\"},{\"ParameterName\":\"NumberOfRetries\","
                    "\"ParameterValue\":\"1\"}]},{\"Type\":\"AppendDelimiterToRecord\","
                    "\"Parameters\":[{\"ParameterName\":\"Delimiter\",\"ParameterValue\":"
                    "\"\\\\t\"}]}]}}}]}");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    const struct sl_stream_conf *sc = &f->cfg->streams[0];
    assert_ptr_equal(sc->transform_fn, &f->cfg->functions[0]);
    assert_non_null(sc->processing);
    assert_int_equal(sc->processing->lambda.number_of_retries, 1);
    assert_true(sc->processing->append_delimiter);
    assert_string_equal(sc->processing->delimiter, "\t");
    expect_one(f,
               load_stream(f,
                           ",\"ProcessingConfiguration\":{\"Enabled\":true,\"Processors\":["
                           "{\"Type\":\"Lambda\",\"Parameters\":[{\"ParameterName\":"
                           "\"LambdaArn\",\"ParameterValue\":\"nope\"}]}]}",
                           ""),
               DEST_PATH ".ProcessingConfiguration.Processors[0].Parameters[0].ParameterValue: "
                         "\"nope\" is not in \"functions\" and neither AWS_ENDPOINT_URL_LAMBDA nor "
                         "AWS_ENDPOINT_URL is set; allowed: a key of \"functions\" (there are "
                         "none), or a Lambda function with AWS_ENDPOINT_URL_LAMBDA set");
}

/* DynamicPartitioningConfiguration with a MetadataExtraction query, checked against Prefix. */
static void test_config_stream_partitioning(void **state)
{
    struct fixture *f = *state;
    int r = load_stream(f,
                        ",\"Prefix\":\"c=!{partitionKeyFromQuery:a}/\",\"ErrorOutputPrefix\":"
                        "\"e/!{firehose:error-output-type}/\",\"BufferingHints\":{"
                        "\"IntervalInSeconds\":60},\"DynamicPartitioningConfiguration\":{"
                        "\"Enabled\":true},\"ProcessingConfiguration\":" QUERY_PROC,
                        "");
    if (r != 0) {
        dump(f);
    }
    assert_int_equal(r, 0);
    assert_true(f->cfg->streams[0].dynamic_partitioning);
    assert_non_null(f->cfg->streams[0].processing->query);
    expect_one(f,
               load_stream(f,
                           ",\"Prefix\":\"c=!{partitionKeyFromQuery:b}/\",\"ErrorOutputPrefix\":"
                           "\"e/!{firehose:error-output-type}/\",\"DynamicPartitioningConfiguration"
                           "\":{\"Enabled\":true},\"ProcessingConfiguration\":" QUERY_PROC,
                           ""),
               DEST_PATH ".Prefix: !{partitionKeyFromQuery:b} is not a key of the "
                         "MetadataExtractionQuery; allowed: the keys it defines");
    expect_one(f,
               load_stream(f,
                           ",\"Prefix\":\"c=!{partitionKeyFromQuery:a}/\",\"ErrorOutputPrefix\":"
                           "\"e/!{firehose:error-output-type}/\",\"BufferingHints\":{"
                           "\"IntervalInSeconds\":0},\"DynamicPartitioningConfiguration\":{"
                           "\"Enabled\":true},\"ProcessingConfiguration\":" QUERY_PROC,
                           ""),
               DEST_PATH ".BufferingHints.IntervalInSeconds: 0 (zero buffering) is not available "
                         "with dynamic partitioning (as on Firehose); allowed: 1 to 900");
}

static void test_config_stream_values_checked(void **state)
{
    struct fixture *f = *state;
    expect_one(f, load_stream(f, ",\"BufferingHints\":{\"SizeInMBs\":0}", ""),
               DEST_PATH ".BufferingHints.SizeInMBs: 0 is out of range; allowed: 1 to 128");
    expect_one(f, load_stream(f, ",\"BufferingHints\":{\"IntervalInSeconds\":901}", ""),
               DEST_PATH ".BufferingHints.IntervalInSeconds: 901 is out of range; allowed: 0 to "
                         "900");
    expect_one(f, load_stream(f, ",\"Prefix\":\"a/../../etc/\"", ""),
               DEST_PATH ".Prefix: \"a/../../etc/\" has a . or .. segment; allowed: a prefix "
                         "that stays under the directory");
    assert_int_equal(load_stream(f, ",\"Bukket\":1", ""), SL_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_non_null(strstr(f->errs.items[0], DEST_PATH ".Bukket: unknown key"));
    expect_one(f,
               load(f, "{\"delivery_streams\":[{\"DeliveryStreamName\":\"a b\","
                       "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}}]}"),
               ": $.delivery_streams[0].DeliveryStreamName: \"a b\" is not a valid name; "
               "allowed: 1 to 64 of A-Z a-z 0-9 _ . -");
    expect_one(f,
               load(f, "{\"delivery_streams\":[{\"DeliveryStreamName\":\"x\","
                       "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}},"
                       "{\"DeliveryStreamName\":\"x\","
                       "\"ExtendedS3DestinationConfiguration\":{" DEST_OK "}}]}"),
               ": $.delivery_streams[1].DeliveryStreamName: \"x\" is also the name of "
               "$.delivery_streams[0]; allowed: a name no other delivery stream has");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_stream_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_listen_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_s3_built, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_kinesis_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_other_destinations_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_sink_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_sink_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_unbuilt_features_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_values_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_transform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_stream_partitioning, setup, teardown),
    };
    return cmocka_run_group_tests_name("config_stream", tests, NULL, NULL);
}

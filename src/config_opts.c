/* SPDX-License-Identifier: Apache-2.0 */
/* config_opts.c: the core's option tables, the daemon's top-level keys and the keys every
 * mapping shares (AWS's CreateEventSourceMapping names plus sluice's own limits), with their
 * defaults and ranges, and `sluice options`, which prints them with every function type's,
 * source's and sink's table. Data and printing only: the loader applies the tables (config.c,
 * config_mapping.c). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "function.h"
#include "registry.h"
#include "sink.h"
#include "source.h"

#define CONFIG_UUID_MAX 128

const struct sl_opt sl_config_daemon_opts[] = {
    {"state_dir", SL_OPT_STR, "./sluice-state", 0, -1, offsetof(struct sl_config, state_dir), 0,
     NULL,
     "Directory for checkpoints, one file per mapping, and the delivery streams' spools "
     "(streams/<DeliveryStreamName>/); created if missing."},
    {"checkpoint_store", SL_OPT_STR, NULL, 0, -1, offsetof(struct sl_config, checkpoint_store), 0,
     NULL,
     "Where the mappings' checkpoints are kept instead of files in state_dir: "
     "redis://[user:password@]host[:port][/db][?prefix=P] keeps each mapping's in the Redis hash "
     "<P>ckpt:<UUID> (P default \"sluice:\"), so they survive the loss of a process or its "
     "machine; a position there only moves forward. While Redis is down no checkpoint moves "
     "and each partition stops after max_unsaved_batches advances; all is written once it is "
     "back. Password also as ${VAR}."},
    {"lease_ttl", SL_OPT_DURATION, "10s", 300, 3600 * 1000,
     offsetof(struct sl_config, lease_ttl_ms), 0, NULL,
     "With a Redis checkpoint_store, the processes that run a mapping of a source without a "
     "group protocol of its own (Kinesis) share its partitions by leases in Redis: a lease "
     "lasts this long, is renewed every third of it, and a process that cannot renew stops "
     "the partition before it runs out; another process takes it then."},
    {"spool_max_bytes", SL_OPT_SIZE, "1GiB", 64 * 1024, INT64_C(1) << 40,
     offsetof(struct sl_config, spool_max_bytes), 0, NULL,
     "Most bytes each delivery stream's spool keeps on disk (records accepted and not yet "
     "delivered); past it PutRecord and PutRecordBatch answer ServiceUnavailableException "
     "(\"Slow down.\", which the SDKs retry) and store nothing. A stream's own spool_max_bytes "
     "overrides it."},
    {"region", SL_OPT_STR, "us-east-1", 0, -1, offsetof(struct sl_config, region), 0, NULL,
     "AWS region written into events and used to sign requests; when absent, AWS_REGION, then "
     "AWS_DEFAULT_REGION, then the default."},
    {"listen", SL_OPT_STR, "127.0.0.1:4573", 0, -1, offsetof(struct sl_config, listen), 0, NULL,
     "Address of sluice's HTTP server (host:port; port 0 picks a free one, which the log "
     "says), where the Firehose API of the delivery streams is served; started only when a "
     "delivery stream needs it."},
    {"stats_interval", SL_OPT_DURATION, "10s", 100, 86400 * 1000,
     offsetof(struct sl_config, stats_interval_ms), 0, NULL,
     "How often each mapping logs its counters (also logged at exit)."},
    {"drain_timeout", SL_OPT_DURATION, "30s", 0, 3600 * 1000,
     offsetof(struct sl_config, drain_timeout_ms), 0, NULL,
     "On SIGTERM or SIGINT, how long in-flight invocations may take to finish before sluice "
     "exits; their records are repeated at the next start."},
    {0},
};

#define CORE_OFF(f) offsetof(struct sl_mapping_core, f)

const struct sl_opt sl_config_mapping_opts[] = {
    {"UUID", SL_OPT_STR, NULL, 0, -1, CORE_OFF(uuid), 0, NULL,
     "Identifies the mapping and its checkpoints ([A-Za-z0-9._-], up to 128 characters); when "
     "absent, derived from EventSourceArn and FunctionName, so other settings can change "
     "without losing the checkpoints."},
    {"EventSourceArn", SL_OPT_STR, NULL, 0, -1, CORE_OFF(event_source_arn), 0, NULL,
     "The source to read; its scheme picks the source kind (file:///path/*.log)."},
    {"FunctionName", SL_OPT_STR, NULL, 0, -1, CORE_OFF(function_name), SL_OPT_REQUIRED, NULL,
     "A key of \"functions\", or a Lambda function name or ARN invoked through the Lambda API at "
     "AWS_ENDPOINT_URL_LAMBDA or AWS_ENDPOINT_URL."},
    {"BatchSize", SL_OPT_INT, NULL, 1, 10000, CORE_OFF(batch_size), 0, NULL,
     "Most records per invocation; default and maximum depend on the source kind (file: 100, "
     "at most 10000)."},
    {"MaximumBatchingWindowInSeconds", SL_OPT_SECONDS, "0", 0, 300 * 1000, CORE_OFF(window_ms), 0,
     NULL, "How long to gather records before invoking with a batch that is not full."},
    {"StartingPosition", SL_OPT_ENUM, NULL, 0, -1, CORE_OFF(starting_position), 0,
     "TRIM_HORIZON|LATEST|AT_TIMESTAMP",
     "Where to start reading a partition that has no checkpoint; required for stream sources "
     "(file)."},
    {"StartingPositionTimestamp", SL_OPT_INT, NULL, 0, INT64_MAX, CORE_OFF(starting_position_ts_s),
     0, NULL,
     "With AT_TIMESTAMP: the time to start from, in seconds since the epoch; not in the future."},
    {"Enabled", SL_OPT_BOOL, "true", 0, -1, CORE_OFF(enabled), 0, NULL,
     "false keeps the mapping configured but does not run it."},
    {"MaximumRetryAttempts", SL_OPT_INT, "-1", -1, 10000, CORE_OFF(max_retry_attempts), 0, NULL,
     "Function errors (and partial failures) a batch may have before its records go to the "
     "on-failure destination: N means at most N+1 invocations of the same records. -1: retry "
     "until the records expire. Throttles and transport errors do not count."},
    {"MaximumRecordAgeInSeconds", SL_OPT_INT, "-1", -1, 604800, CORE_OFF(max_record_age_s), 0, NULL,
     "Records older than this (by arrival time) are not invoked again but go to the on-failure "
     "destination; -1 or 60 to 604800."},
    {"BisectBatchOnFunctionError", SL_OPT_BOOL, "false", 0, -1, CORE_OFF(bisect), 0, NULL,
     "On a function error, split the batch in two and retry each half, so one bad record ends "
     "up alone; splits do not count as retries."},
    {"FunctionResponseTypes", SL_OPT_STRLIST, NULL, 0, 1, CORE_OFF(response_types), 0, NULL,
     "[\"ReportBatchItemFailures\"] makes the function's {\"batchItemFailures\": [...]} "
     "response count: streams resume from the lowest failed record."},
    {"DestinationConfig", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(destination_config), 0, NULL,
     "{\"OnFailure\": {\"Destination\": D}}: where records that cannot be delivered go, as "
     "AWS invocation records: file:///dir (NDJSON per day, with the payload), an http(s) URL, "
     "an SQS queue ARN or URL, or kafka://TOPIC (one message per record: a Kafka mapping's "
     "own cluster, or the one destination_options.bootstrap_servers names)."},
    {"FilterCriteria", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(filter_criteria), 0, NULL,
     "{\"Filters\": [{\"Pattern\": \"...\"}]}: EventBridge patterns, up to 5, ORed; records "
     "that match none are not delivered and still pass the checkpoint."},
    {"ParallelizationFactor", SL_OPT_INT, "1", 1, 10, CORE_OFF(parallelization_factor), 0, NULL,
     "Batches in flight per partition; records with the same partition key stay in order."},
    {"ScalingConfig", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(scaling_config), 0, NULL,
     "{\"MaximumConcurrency\": N}: at most N invocations in flight for this mapping, 1 to "
     "1000 (AWS's minimum is 2; sluice accepts 1)."},
    {"TumblingWindowInSeconds", SL_OPT_INT, "0", 0, 900, CORE_OFF(tumbling_window_s), 0, NULL,
     "Groups records into windows of this many seconds by arrival time; each invocation gets "
     "the state the previous one of its window returned, and a final invocation closes the "
     "window. 0 is off."},
    {"max_records_buffered", SL_OPT_INT, "10000", 1, 10000000, CORE_OFF(max_records_buffered), 0,
     NULL,
     "Records a mapping may hold (fetched, not yet acknowledged); fetching pauses there "
     "(Kinesis mappings: 40000 unless set)."},
    {"max_bytes_buffered", SL_OPT_SIZE, "16MiB", 64 * 1024, INT64_C(4) * 1024 * 1024 * 1024,
     CORE_OFF(max_bytes_buffered), 0, NULL,
     "Bytes of records a mapping may hold; fetching pauses there."},
    {"max_unsaved_batches", SL_OPT_INT, "16", 1, 1000, CORE_OFF(max_unsaved_batches), 0, NULL,
     "Delivered batches per partition whose checkpoint may still be on its way to the disk "
     "before the partition waits for it; a crash repeats at most these and the batch in flight. "
     "1 repeats least; more keeps throughput when fsync is slower than an invocation."},
    {"destination_options", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(destination_options), 0, NULL,
     "The on-failure destination's own options, an object checked against its sink's keys "
     "(see the Sink sections below), e.g. {\"timeout\": \"5s\"} for an http(s) or SQS "
     "destination, {\"bootstrap_servers\": [\"host:port\"]} for a kafka:// one on a cluster of "
     "its own; without it the sink's defaults."},
    {0},
};

/* ------------------------------------------------------------------------------------------ */
/* `sluice options` */

void sl_config_print_options(FILE *out, bool markdown)
{
    if (markdown) {
        fputs("# sluice configuration options\n\n"
              "Generated by `sluice options --markdown`; do not edit by hand.\n\n"
              "A configuration file is one JSON object: the daemon keys below, `functions` (an "
              "object of functions by name), `mappings` (an array of mappings) and "
              "`delivery_streams` (an array of delivery streams), at least one of the two. "
              "Every string value may use `${VAR}` to take text from the environment (`$${` "
              "writes a literal `${`). Sizes take `KB`/`MB`/`GB` (powers of 1000) or "
              "`KiB`/`MiB`/`GiB` (powers of 1024); durations take a number of seconds or `ms`, "
              "`s`, `m`, `h`, `d`.\n\n",
              out);
    } else {
        fputs("sluice configuration options\n\n"
              "A configuration file is one JSON object: the daemon keys, \"functions\" (by name) "
              "\"mappings\" and \"delivery_streams\" (at least one of them). String values may use "
              "${VAR} from the "
              "environment.\n"
              "Sizes: KB/MB/GB = powers of 1000, KiB/MiB/GiB = powers of 1024. Durations: "
              "seconds, or ms, s, m, h, d.\n\n",
              out);
    }
    sl_opt_print(out, "Daemon", "Top-level keys of the configuration file.", sl_config_daemon_opts,
                 markdown);
    sl_opt_print(out, "Mapping",
                 "Keys of each entry of \"mappings\": AWS CreateEventSourceMapping names, plus "
                 "sluice's own in snake_case. The source's keys (below) go in the same object.",
                 sl_config_mapping_opts, markdown);
    size_t n;
    const struct sl_function_ops *const *types = sl_function_types(&n);
    for (size_t i = 0; i < n; i++) {
        char heading[128], intro[256];
        (void)snprintf(heading, sizeof(heading), "Function type %s", types[i]->name);
        (void)snprintf(intro, sizeof(intro),
                       "Keys of a function object with \"type\": \"%s\" in \"functions\".",
                       types[i]->name);
        sl_opt_print(out, heading, intro, types[i]->opts, markdown);
    }
    const struct sl_source_ops *const *srcs = sl_source_all(&n);
    for (size_t i = 0; i < n; i++) {
        char heading[128], intro[320];
        (void)snprintf(heading, sizeof(heading), "Source %s", srcs[i]->name);
        (void)snprintf(intro, sizeof(intro),
                       "Extra mapping keys when EventSourceArn starts with %s (BatchSize default "
                       "%lld, at most %lld; StartingPosition %s).",
                       srcs[i]->scheme, (long long)srcs[i]->caps->batch_size_default,
                       (long long)srcs[i]->caps->batch_size_max,
                       srcs[i]->caps->starting_position_required ? "required" : "optional");
        sl_opt_print(out, heading, intro, srcs[i]->opts, markdown);
    }
    sl_opt_print(out, "Delivery stream",
                 "Keys of each entry of \"delivery_streams\": Firehose's CreateDeliveryStream "
                 "request. Keys of destinations and sources not built are refused by name.",
                 sl_config_stream_opts, markdown);
    sl_opt_print(out, "Delivery stream destination",
                 "Keys of ExtendedS3DestinationConfiguration. Also accepted: BufferingHints "
                 "(next table), ProcessingConfiguration (processors Lambda, MetadataExtraction, "
                 "AppendDelimiterToRecord), DynamicPartitioningConfiguration, and, only switched "
                 "off, DataFormatConversionConfiguration, S3BackupMode Disabled, CustomTimeZone "
                 "UTC; EncryptionConfiguration and CloudWatchLoggingOptions are ignored.",
                 sl_config_stream_s3_opts, markdown);
    sl_opt_print(out, "Delivery stream buffering",
                 "Keys of ExtendedS3DestinationConfiguration.BufferingHints: whichever is reached "
                 "first delivers.",
                 sl_config_stream_hints_opts, markdown);
    sl_opt_print(out, "Delivery stream Kinesis source",
                 "Keys of KinesisStreamSourceConfiguration (DeliveryStreamType "
                 "KinesisStreamAsSource).",
                 sl_config_stream_kinesis_opts, markdown);
    sl_opt_print(out, "Delivery stream sink destination",
                 "Keys of SinkDestinationConfiguration (sluice's own destination): each record of "
                 "a delivered object is one message or entry of the sink; retried until written.",
                 sl_config_stream_sink_opts, markdown);
    const struct sl_sink_ops *const *sinks = sl_sink_all(&n);
    for (size_t i = 0; i < n; i++) {
        char heading[128], intro[320];
        (void)snprintf(heading, sizeof(heading), "Sink %s", sinks[i]->name);
        (void)snprintf(intro, sizeof(intro),
                       "Keys of a mapping's \"destination_options\" when its "
                       "DestinationConfig.OnFailure.Destination is written by the %s sink, and "
                       "of a SinkDestinationConfiguration's DestinationOptions.",
                       sinks[i]->name);
        sl_opt_print(out, heading, intro, sinks[i]->opts, markdown);
    }
}

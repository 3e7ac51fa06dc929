/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "opt.h"
#include "strmap.h"

struct sl_source_ops;
struct sl_function_ops;
struct sl_s3_layout;
struct sl_fh_http_conf;
struct sl_sink_ops;
struct sl_fh_processing;

enum sl_starting_position {
    SL_START_TRIM_HORIZON,
    SL_START_LATEST,
    SL_START_AT_TIMESTAMP,
    SL_START_COUNT
};

/* A function from "functions", or one made up for a FunctionName that is not there (a Lambda
 * name or ARN invoked through AWS_ENDPOINT_URL_LAMBDA / AWS_ENDPOINT_URL). */
struct sl_function_conf {
    char *name;                        /* the key in "functions", or the FunctionName */
    const struct sl_function_ops *ops; /* chosen by "type" */
    cJSON *json;                       /* owned: the function's object, ${VAR} expanded */
    char *path;                        /* "$.functions.audit", for messages */
};

/* The keys every mapping shares, under AWS's CreateEventSourceMapping names. Filled from
 * sl_config_mapping_opts; adapter keys (snake_case) go to the source's own table. */
struct sl_mapping_core {
    char *uuid;
    char *event_source_arn;
    char *function_name;
    int64_t batch_size;
    int64_t window_ms;              /* MaximumBatchingWindowInSeconds */
    int starting_position;          /* enum sl_starting_position */
    int64_t starting_position_ts_s; /* StartingPositionTimestamp */
    bool enabled;
    int64_t max_records_buffered;     /* our own: pause fetching at this many held records */
    int64_t max_bytes_buffered;       /* ... or bytes */
    int64_t max_retry_attempts;       /* MaximumRetryAttempts: -1 forever */
    int64_t max_record_age_s;         /* MaximumRecordAgeInSeconds: -1 forever */
    bool bisect;                      /* BisectBatchOnFunctionError */
    struct sl_strlist response_types; /* FunctionResponseTypes */
    cJSON *destination_config;        /* DestinationConfig */
    cJSON *destination_options;       /* our own: the on-failure destination's sink options */
    cJSON *filter_criteria;           /* FilterCriteria */
    int64_t parallelization_factor;   /* ParallelizationFactor */
    cJSON *scaling_config;            /* ScalingConfig */
    int64_t tumbling_window_s;        /* TumblingWindowInSeconds: 0 off */
    int64_t max_unsaved_batches;      /* delivered batches per partition whose checkpoint may still
                                         be on its way to the disk */
};

struct sl_mapping_conf {
    struct sl_mapping_core core;
    bool uuid_derived;                  /* no UUID given: derived from the mapping's content */
    const struct sl_source_ops *source; /* chosen by the ARN's scheme */
    struct sl_function_conf *function;  /* borrowed from sl_config.functions */
    bool report_item_failures;          /* FunctionResponseTypes has ReportBatchItemFailures */
    const char *on_failure;             /* DestinationConfig.OnFailure.Destination, or NULL */
    int64_t max_concurrency;            /* ScalingConfig.MaximumConcurrency, 0 = no cap */
    cJSON *json;                        /* owned: the mapping's object, ${VAR} expanded */
    char *path;                         /* "$.mappings[0]", for messages */
    /* A mapping whose FunctionName is a delivery stream's ARN
     * (arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME) feeds that stream (stream_feed.c)
     * instead of invoking a function (function is NULL): */
    char *delivery_stream; /* NAME (owned), or NULL */
    size_t stream_index;   /* its index in sl_config.streams */
    bool stream_source;    /* made by a KinesisStreamSourceConfiguration (config_stream.c) */
};

/* One entry of "delivery_streams", in the shape of Firehose's CreateDeliveryStream request
 * (config_stream.c): an ExtendedS3DestinationConfiguration (BucketARN arn:aws:s3:::BUCKET or
 * file:///dir), or an HttpEndpointDestinationConfiguration whose S3Configuration fills the S3
 * fields below as its backup. */
enum sl_stream_compression {
    SL_STREAM_UNCOMPRESSED,
    SL_STREAM_GZIP,
    SL_STREAM_ZIP,
    SL_STREAM_SNAPPY,
    SL_STREAM_HADOOP_SNAPPY,
    SL_STREAM_COMPRESSION_COUNT
};

struct sl_stream_conf {
    char *name;                   /* DeliveryStreamName */
    char *role_arn;               /* RoleARN: echoed by DescribeDeliveryStream, otherwise unused */
    char *bucket_arn;             /* BucketARN as written (HTTP endpoint: its S3Configuration's) */
    char *dir;                    /* the directory of a file:///dir BucketARN */
    char *prefix;                 /* Prefix ("" when absent) */
    char *error_prefix;           /* ErrorOutputPrefix, or NULL */
    int compression;              /* CompressionFormat: enum sl_stream_compression */
    int64_t size_mb;              /* BufferingHints.SizeInMBs */
    int64_t interval_s;           /* BufferingHints.IntervalInSeconds; 0 delivers at once */
    int64_t spool_max_bytes;      /* sluice's: the spool's quota; 0 = the top-level one */
    char *path;                   /* "$.delivery_streams[0]", for messages */
    struct sl_s3_layout *layout;  /* Prefix and ErrorOutputPrefix, compiled (s3_keys.h) */
    struct sl_fh_http_conf *http; /* HttpEndpointDestinationConfiguration, or NULL (S3) */
    struct sl_stream_sink_conf *sink; /* SinkDestinationConfiguration, or NULL */
    /* ProcessingConfiguration (fh_processing.h), or NULL: no processor runs. */
    struct sl_fh_processing *processing;
    struct sl_function_conf *transform_fn; /* the function its LambdaArn names, or NULL */
    bool dynamic_partitioning;             /* DynamicPartitioningConfiguration.Enabled */
    /* For DescribeDeliveryStream (owned, or NULL when the key is absent): the destination's
     * ProcessingConfiguration as configured (Enabled, Processors' Type and Parameters) and its
     * DynamicPartitioningConfiguration (Enabled, RetryOptions with the default filled in). */
    cJSON *processing_desc;
    cJSON *dynamic_desc;
    int64_t backup_size_mb;    /* an HTTP endpoint's S3Configuration.BufferingHints: */
    int64_t backup_interval_s; /* described by DescribeDeliveryStream, otherwise unused */
    /* DeliveryStreamType KinesisStreamAsSource: KinesisStreamSourceConfiguration's
     * KinesisStreamARN (owned; read by a mapping config_stream.c adds, whose stream_source is
     * set), else NULL (DirectPut); its RoleARN, kept and never assumed. */
    char *kinesis_arn;
    char *kinesis_role_arn;
};

/* A delivery stream's SinkDestinationConfiguration (sluice's own, beside Firehose's): each
 * record of an object becomes one message or entry of a sink (kafka://TOPIC, redis://...), as
 * the on-failure destinations write them (config_stream_sink.c reads it, stream_dest_sink.c
 * delivers). */
struct sl_stream_sink_conf {
    char *destination;             /* Destination, as written (may hold a password) */
    const struct sl_sink_ops *ops; /* the sink that serves it */
    struct sl_strmap cluster;      /* kafka://: bootstrap.servers and the rdkafka settings */
    cJSON *options;                /* DestinationOptions (the sink's own table), or NULL */
};

struct sl_config {
    char *file;
    char *listen; /* the HTTP server's host:port, started when a delivery stream needs it */
    char *state_dir;
    char *checkpoint_store;  /* redis://... for the Redis checkpoint store; NULL: files */
    int64_t lease_ttl_ms;    /* partition leases' TTL, with the Redis store */
    int64_t spool_max_bytes; /* each delivery stream's spool quota, unless it sets its own */
    char *region;
    int64_t stats_interval_ms;
    int64_t drain_timeout_ms;
    struct sl_function_conf *functions;
    size_t n_functions;
    struct sl_mapping_conf *mappings;
    size_t n_mappings;
    struct sl_stream_conf *streams;
    size_t n_streams;
};

/* Reads, expands and validates file. On success returns 0 and *ret_cfg (owned). Otherwise
 * returns SL_ECONFIG with every problem in errs (each naming file, JSON path, bad value and
 * what is allowed; secrets never shown) or SL_ENOMEM. Checks everything a run would check
 * short of I/O: keys, types, ranges, ARNs (via each source's check), function types (via each
 * function's check), references between mappings and functions. */
SL_NODISCARD int
sl_config_load(const char *file, struct sl_config **ret_cfg, struct sl_errlist *errs);
void sl_config_free(struct sl_config *cfg);

/* The option tables, for `sluice options` and the loader. */
extern const struct sl_opt sl_config_daemon_opts[];
extern const struct sl_opt sl_config_mapping_opts[];
extern const struct sl_opt sl_config_stream_opts[];
extern const struct sl_opt sl_config_stream_s3_opts[];
extern const struct sl_opt sl_config_stream_hints_opts[];
extern const struct sl_opt sl_config_stream_kinesis_opts[];
extern const struct sl_opt sl_config_stream_sink_opts[];

/* Prints every option table (daemon, mapping, each function type, each source). */
void sl_config_print_options(FILE *out, bool markdown);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* config_stream.c: the "delivery_streams" of the configuration. Each entry is written as
 * Firehose's CreateDeliveryStream request (so a file made for `aws firehose
 * create-delivery-stream --cli-input-json` is an entry): DeliveryStreamName, and either an
 * ExtendedS3DestinationConfiguration (BucketARN arn:aws:s3:::BUCKET or file:///dir, Prefix and
 * ErrorOutputPrefix with Firehose's !{...} expressions, BufferingHints, CompressionFormat
 * UNCOMPRESSED or GZIP) or an HttpEndpointDestinationConfiguration (read by fh_http_conf.c)
 * with its S3Configuration, the backup, or sluice's own SinkDestinationConfiguration (a Kafka
 * topic or a Redis stream or list, read by config_stream_sink.c). It owns the option tables of
 * the S3 keys and the rules between keys; prefixes are compiled here by s3_keys.c, so a bad
 * expression is a config error naming its JSON path. A ProcessingConfiguration is read by
 * fh_processing.c (its LambdaArn resolved here as a mapping's FunctionName: a key of
 * "functions" or a Lambda name or ARN), and DynamicPartitioningConfiguration by fh_partition.c,
 * which also checks the Prefix's partition keys against the methods. The source
 * (DeliveryStreamType, KinesisStreamSourceConfiguration) is config_stream_source.c's. What this
 * build cannot do yet (other destinations and sources, other compressions) is refused by name,
 * never ignored, so a pipeline never runs differently from what its file says. Reports through
 * config_error.c; called by config.c. Main thread, at start-up. */
#include "config_int.h"

#include <string.h>

#include "fh_http.h"
#include "fh_processing.h"
#include "s3_file.h"
#include "s3_keys.h"
#include "s3_put.h"

#define STREAM_NAME_MAX 64

/* The keys of an entry beside the destination's: the other destinations and sources are
 * known keys, so that they are refused by name rather than as unknown keys. */
struct stream_top {
    char *name;
    int type;
    cJSON *s3;
    cJSON *other[12];
    cJSON *tags;
    cJSON *sink;
    int64_t spool_max_bytes;
};

#define TOP_OFF(f) offsetof(struct stream_top, f)
#define OTHER(i)   (offsetof(struct stream_top, other) + (i) * sizeof(cJSON *))

const struct sl_opt sl_config_stream_opts[] = {
    {"DeliveryStreamName", SL_OPT_STR, NULL, 0, -1, TOP_OFF(name), SL_OPT_REQUIRED, NULL,
     "The stream's name, as PutRecord and PutRecordBatch give it: 1 to 64 of A-Z a-z 0-9 _ . -"},
    {"DeliveryStreamType", SL_OPT_ENUM, "DirectPut", 0, -1, TOP_OFF(type), 0,
     "DirectPut|KinesisStreamAsSource|MSKAsSource|DatabaseAsSource",
     "Where records come from: DirectPut (the Firehose API on `listen`, and mappings whose "
     "FunctionName is the stream's ARN) or KinesisStreamAsSource (the Kinesis stream of "
     "KinesisStreamSourceConfiguration, from LATEST, every shard; PutRecord and PutRecordBatch "
     "are refused, as AWS does)."},
    {"ExtendedS3DestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, TOP_OFF(s3), 0, NULL,
     "The destination: an object with the keys of the next table."},
    {"S3DestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(0), 0, NULL,
     "Not built: use ExtendedS3DestinationConfiguration."},
    {"HttpEndpointDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(1), 0, NULL,
     "The destination instead: Firehose's HTTP endpoint delivery, with an S3Configuration (the "
     "keys of the next table) for the backup."},
    {"KinesisStreamSourceConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(2), 0, NULL,
     "With KinesisStreamAsSource: an object with the keys of the Kinesis source table."},
    {"RedshiftDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(3), 0, NULL,
     "Not supported."},
    {"ElasticsearchDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(4), 0, NULL,
     "Not supported."},
    {"AmazonopensearchserviceDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(5), 0, NULL,
     "Not supported."},
    {"AmazonOpenSearchServerlessDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(6), 0,
     NULL, "Not supported."},
    {"SplunkDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(7), 0, NULL,
     "Not supported."},
    {"SnowflakeDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(8), 0, NULL,
     "Not supported."},
    {"IcebergDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(9), 0, NULL,
     "Not supported."},
    {"MSKSourceConfiguration", SL_OPT_JSON, NULL, 0, -1, OTHER(10), 0, NULL, "Not supported."},
    {"DeliveryStreamEncryptionConfigurationInput", SL_OPT_JSON, NULL, 0, -1, OTHER(11), 0, NULL,
     "Not supported (records are kept as given)."},
    {"Tags", SL_OPT_JSON, NULL, 0, -1, TOP_OFF(tags), 0, NULL, "Accepted and ignored."},
    {"SinkDestinationConfiguration", SL_OPT_JSON, NULL, 0, -1, TOP_OFF(sink), 0, NULL,
     "sluice's own destination instead: each record one Kafka message or Redis entry (the "
     "keys of the \"Delivery stream sink destination\" table)."},
    {"spool_max_bytes", SL_OPT_SIZE, NULL, 64 * 1024, INT64_C(1) << 40, TOP_OFF(spool_max_bytes), 0,
     NULL,
     "sluice's own: this stream's spool quota (bytes on disk of records accepted and not yet "
     "delivered); when absent, the top-level spool_max_bytes."},
    {0},
};

/* What refusing each OTHER(i) key says. */
static const char *const stream_other_why[] = {
    "the legacy S3 destination is not built; allowed: ExtendedS3DestinationConfiguration",
    NULL, /* HttpEndpointDestinationConfiguration: a destination */
    NULL, /* KinesisStreamSourceConfiguration: a source */
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: ExtendedS3DestinationConfiguration",
    "not supported; allowed: records put through the Firehose API (DirectPut)",
    "server-side encryption is not supported; allowed: remove it",
};

/* The destination's keys that this build refuses unless they say "off". */
struct stream_s3_extra {
    cJSON *processing;
    cJSON *dynamic;
    cJSON *backup_conf;
    cJSON *format_conv;
    int backup_mode;
    char *file_extension;
    char *time_zone;
    cJSON *encryption;
    cJSON *logging;
    cJSON *hints;
};

#define CONF_OFF(f) offsetof(struct sl_stream_conf, f)

/* The destination table fills struct sl_stream_conf, except the keys it refuses or ignores,
 * which go to struct stream_s3_extra through sl_config_stream_s3_extra (same object). */
const struct sl_opt sl_config_stream_s3_opts[] = {
    {"BucketARN", SL_OPT_STR, NULL, 0, -1, CONF_OFF(bucket_arn), SL_OPT_REQUIRED, NULL,
     "arn:aws:s3:::BUCKET: objects are put through the S3 API (AWS_ENDPOINT_URL_S3, else "
     "AWS_ENDPOINT_URL, else AWS); file:///dir: the same objects as files under dir, with S3's "
     "keys as paths (sluice's own)."},
    {"RoleARN", SL_OPT_STR, NULL, 0, -1, CONF_OFF(role_arn), 0, NULL,
     "Accepted and shown by DescribeDeliveryStream; sluice assumes no role."},
    {"Prefix", SL_OPT_STR, "", 0, -1, CONF_OFF(prefix), 0, NULL,
     "The start of each object's key, with Firehose's !{timestamp:...} and "
     "!{firehose:random-string} expressions; YYYY/MM/dd/HH/ (UTC) is appended when it has no "
     "timestamp. file:///dir: no . or .. segments, not starting with /."},
    {"ErrorOutputPrefix", SL_OPT_STR, NULL, 0, -1, CONF_OFF(error_prefix), 0, NULL,
     "Where failed records go (http-endpoint-failed), with !{firehose:error-output-type}; "
     "required when Prefix has expressions; default <Prefix><type>/YYYY/MM/dd/HH/."},
    {"CompressionFormat", SL_OPT_ENUM, "UNCOMPRESSED", 0, -1, CONF_OFF(compression), 0,
     "UNCOMPRESSED|GZIP|ZIP|Snappy|HADOOP_SNAPPY",
     "UNCOMPRESSED (the records as they came) or GZIP (one gzip member, key ending .gz); the "
     "others are not built."},
    {0},
};

#define EXTRA_OFF(f) offsetof(struct stream_s3_extra, f)

static const struct sl_opt stream_s3_extra_opts[] = {
    {"BufferingHints", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(hints), 0, NULL,
     "{\"SizeInMBs\": N, \"IntervalInSeconds\": S}: see the next table."},
    {"ProcessingConfiguration", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(processing), 0, NULL,
     "Firehose's processors: Lambda (LambdaArn: a key of \"functions\" of any type, or a Lambda "
     "name or ARN; NumberOfRetries, BufferSizeInMBs, BufferIntervalInSeconds), "
     "MetadataExtraction (MetadataExtractionQuery, JsonParsingEngine JQ-1.6) and "
     "AppendDelimiterToRecord (Delimiter, default \\n)."},
    {"DynamicPartitioningConfiguration", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(dynamic), 0, NULL,
     "{\"Enabled\": true}: one buffer per partition (the values of the Prefix's "
     "!{partitionKeyFromQuery:k} and !{partitionKeyFromLambda:k}), each flushed at the "
     "BufferingHints; records without their keys go under ErrorOutputPrefix "
     "(partitioning-failed)."},
    {"S3BackupMode", SL_OPT_ENUM, "Disabled", 0, -1, EXTRA_OFF(backup_mode), 0, "Disabled|Enabled",
     "Source record backup is not built yet: only Disabled."},
    {"S3BackupConfiguration", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(backup_conf), 0, NULL,
     "Not built yet."},
    {"DataFormatConversionConfiguration", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(format_conv), 0, NULL,
     "Not supported: only {\"Enabled\": false}."},
    {"FileExtension", SL_OPT_STR, NULL, 0, -1, EXTRA_OFF(file_extension), 0, NULL,
     "Not built yet."},
    {"CustomTimeZone", SL_OPT_STR, NULL, 0, -1, EXTRA_OFF(time_zone), 0, NULL,
     "Only UTC is built."},
    {"EncryptionConfiguration", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(encryption), 0, NULL,
     "Accepted and ignored (files are not encrypted)."},
    {"CloudWatchLoggingOptions", SL_OPT_JSON, NULL, 0, -1, EXTRA_OFF(logging), 0, NULL,
     "Accepted and ignored (sluice logs to stderr)."},
    {0},
};

const struct sl_opt sl_config_stream_hints_opts[] = {
    {"SizeInMBs", SL_OPT_INT, "5", 1, 128, CONF_OFF(size_mb), 0, NULL,
     "Deliver an object once this many MiB of records are buffered."},
    {"IntervalInSeconds", SL_OPT_INT, "300", 0, 900, CONF_OFF(interval_s), 0, NULL,
     "Deliver an object this long after its first record arrived, whichever comes first; 0 "
     "delivers the records of each put at once."},
    {0},
};

/* ------------------------------------------------------------------------------------------ */
/* Rules */

static bool stream_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > STREAM_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* Under file:///dir a prefix is a path under the directory: it must stay under it. (Lengths and
 * expressions are s3_keys.c's rules.) */
static const char *stream_prefix_problem(const char *p)
{
    if (p[0] == '/') {
        return "starts with /; allowed: a relative prefix like \"logs/\"";
    }
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, "/");
        if ((n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.' && s[1] == '/')) {
            return "has a . or .. segment; allowed: a prefix that stays under the directory";
        }
        s += n;
        s += *s == '/';
    }
    return NULL;
}

/* {"Enabled": false} (or absent) is the only value of the keys this build refuses. */
static bool stream_is_disabled(const cJSON *v)
{
    if (!v) {
        return true;
    }
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(v, "Enabled");
    return cJSON_IsObject(v) && cJSON_IsFalse(en);
}

static void stream_check_bucket(struct config_ctx *cc, struct sl_stream_conf *sc, const char *dpath)
{
    const char *arn = sc->bucket_arn;
    char err[512] = "";
    if (strncmp(arn, "file:", 5) == 0) {
        if (sl_s3_file_check(arn, err, sizeof(err)) < 0) {
            config_error(cc, "%s: %s.BucketARN: %s", cc->file, dpath, err);
            return;
        }
        sc->dir = sl_strdup(arn + 7);
        if (!sc->dir) {
            cc->failed = true;
        }
        return;
    }
    if (strncmp(arn, "arn:", 4) == 0) {
        if (sl_s3_put_check(arn, err, sizeof(err)) < 0) {
            config_error(cc, "%s: %s.BucketARN: %s", cc->file, dpath, err);
        }
        return;
    }
    config_error(cc,
                 "%s: %s.BucketARN: \"%s\" is not a bucket; allowed: arn:aws:s3:::BUCKET or "
                 "file:///dir",
                 cc->file, dpath, arn);
}

/* Prefix and ErrorOutputPrefix with Firehose's rules (s3_keys.c), compiled for the run. */
static void
stream_check_prefixes(struct config_ctx *cc, struct sl_stream_conf *sc, const char *dpath)
{
    for (int i = 0; sc->dir && i < 2; i++) {
        const char *p = i == 0 ? sc->prefix : sc->error_prefix;
        const char *why = p ? stream_prefix_problem(p) : NULL;
        if (why) {
            config_error(cc, "%s: %s.%s: \"%s\" %s", cc->file, dpath,
                         i == 0 ? "Prefix" : "ErrorOutputPrefix", p, why);
            return;
        }
    }
    struct sl_s3_layout_conf lc = {
        .prefix = sc->prefix,
        .error_prefix = sc->error_prefix,
        .dynamic_partitioning = sc->dynamic_partitioning,
        .path = dpath,
    };
    char err[1024] = "";
    int r = sl_s3_layout_new(&lc, &sc->layout, err, sizeof(err));
    if (r == SL_ENOMEM) {
        cc->failed = true;
    } else if (r < 0) {
        config_error(cc, "%s: %s", cc->file, err);
    }
}

/* ProcessingConfiguration pc (NULL: none) of the destination at dpath: parsed into
 * sc->processing when enabled, its LambdaArn resolved as a FunctionName (the function's index
 * in *ret_fn, SIZE_MAX when none). Returns 0 or SL_ENOMEM; problems are reported. */
/* ProcessingConfiguration pc as DescribeDeliveryStream shows it: Enabled and each processor's
 * Type and Parameters (names and values as written), nothing else. Returns owned, or NULL when
 * out of memory. */
static cJSON *stream_processing_desc(const cJSON *pc)
{
    cJSON *d = cJSON_CreateObject();
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(pc, "Enabled");
    bool ok = d && (!cJSON_IsBool(en) || cJSON_AddBoolToObject(d, "Enabled", cJSON_IsTrue(en)));
    const cJSON *procs = cJSON_GetObjectItemCaseSensitive(pc, "Processors");
    cJSON *list = ok && cJSON_IsArray(procs) ? cJSON_AddArrayToObject(d, "Processors") : NULL;
    ok = ok && (!cJSON_IsArray(procs) || list);
    const cJSON *proc;
    const cJSON *each = list ? procs : NULL;
    cJSON_ArrayForEach(proc, each)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(proc, "Type");
        cJSON *p = ok ? cJSON_CreateObject() : NULL;
        ok = p && cJSON_AddItemToArray(list, p);
        ok = ok && (!cJSON_IsString(type) || cJSON_AddStringToObject(p, "Type", type->valuestring));
        cJSON *params = ok ? cJSON_AddArrayToObject(p, "Parameters") : NULL;
        ok = ok && params;
        const cJSON *param;
        const cJSON *given = ok ? cJSON_GetObjectItemCaseSensitive(proc, "Parameters") : NULL;
        cJSON_ArrayForEach(param, given)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(param, "ParameterName");
            const cJSON *value = cJSON_GetObjectItemCaseSensitive(param, "ParameterValue");
            cJSON *q = ok ? cJSON_CreateObject() : NULL;
            ok = q && cJSON_AddItemToArray(params, q);
            ok = ok && (!cJSON_IsString(name) ||
                        cJSON_AddStringToObject(q, "ParameterName", name->valuestring));
            ok = ok && (!cJSON_IsString(value) ||
                        cJSON_AddStringToObject(q, "ParameterValue", value->valuestring));
        }
    }
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static int stream_load_processing(struct config_ctx *cc,
                                  struct sl_stream_conf *sc,
                                  const cJSON *pc,
                                  const char *dpath,
                                  size_t *ret_fn)
{
    *ret_fn = SIZE_MAX;
    char path[320];
    (void)snprintf(path, sizeof(path), "%s.ProcessingConfiguration", dpath);
    if (cJSON_IsObject(pc) && !(sc->processing_desc = stream_processing_desc(pc))) {
        return SL_ENOMEM;
    }
    struct sl_fh_processing p;
    int r = sl_fh_processing_parse(pc, cc->file, path, &p, cc->errs);
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        cc->failed = true;
        return 0;
    }
    if (!p.enabled) {
        sl_fh_processing_fini(&p);
        return 0;
    }
    sc->processing = sl_calloc(1, sizeof(*sc->processing));
    if (!sc->processing) {
        sl_fh_processing_fini(&p);
        return SL_ENOMEM;
    }
    *sc->processing = p;
    if (p.lambda.enabled) {
        r = config_function_resolve_at(cc, p.lambda.lambda_arn, p.lambda.lambda_arn_path, ret_fn);
        if (r == SL_ENOMEM) {
            return r;
        }
        cc->failed = cc->failed || r < 0;
    }
    return 0;
}

/* DynamicPartitioningConfiguration dpc (NULL: none) of the destination at dpath. */
static int stream_load_dynamic(struct config_ctx *cc,
                               struct sl_stream_conf *sc,
                               const cJSON *dpc,
                               const char *dpath,
                               struct sl_fh_partition_conf *ret)
{
    char path[320];
    (void)snprintf(path, sizeof(path), "%s.DynamicPartitioningConfiguration", dpath);
    int r = sl_fh_partition_conf_parse(dpc, cc->file, path, ret, cc->errs);
    if (r == SL_ENOMEM) {
        return r;
    }
    cc->failed = cc->failed || r < 0;
    sc->dynamic_partitioning = r == 0 && ret->enabled;
    if (r == 0 && dpc) {
        cJSON *d = cJSON_CreateObject();
        cJSON *retry = cJSON_AddObjectToObject(d, "RetryOptions");
        sc->dynamic_desc = d;
        if (!retry || !cJSON_AddBoolToObject(d, "Enabled", ret->enabled) ||
            !cJSON_AddNumberToObject(retry, "DurationInSeconds", (double)ret->retry_duration_s)) {
            return SL_ENOMEM;
        }
    }
    if (sc->dynamic_partitioning && sc->interval_s == 0) {
        config_error(cc,
                     "%s: %s.BufferingHints.IntervalInSeconds: 0 (zero buffering) is not "
                     "available with dynamic partitioning (as on Firehose); allowed: 1 to 900",
                     cc->file, dpath);
    }
    return 0;
}

static void
stream_check_extra(struct config_ctx *cc, const struct stream_s3_extra *x, const char *dpath)
{
    struct {
        bool bad;
        const char *key;
        const char *why;
    } refuse[] = {
        {!stream_is_disabled(x->format_conv), "DataFormatConversionConfiguration",
         "format conversion is not supported; allowed: {\"Enabled\": false} or no key"},
        {x->backup_mode != 0, "S3BackupMode",
         "source record backup (of a transform's input) is not built yet; allowed: Disabled"},
        {x->backup_conf != NULL, "S3BackupConfiguration",
         "source record backup is not built yet; allowed: no key"},
        {x->file_extension != NULL, "FileExtension",
         "custom file extensions are not built yet; allowed: no key"},
        {x->time_zone && strcmp(x->time_zone, "UTC") != 0, "CustomTimeZone",
         "only UTC is built; allowed: \"UTC\" or no key"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(refuse); i++) {
        if (refuse[i].bad) {
            config_error(cc, "%s: %s.%s: %s", cc->file, dpath, refuse[i].key, refuse[i].why);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Loading */

/* The S3 keys of dest at dpath into sc: the destination, or (backup) an HTTP endpoint's
 * S3Configuration, whose BufferingHints are checked and not used (the endpoint's own apply). */
static int stream_load_dest(struct config_ctx *cc,
                            struct sl_stream_conf *sc,
                            const cJSON *dest,
                            const char *dpath,
                            bool backup,
                            size_t *ret_fn)
{
    struct stream_s3_extra x = {0};
    struct sl_stream_conf hints_conf = {0};
    struct sl_stream_conf *hc = backup ? &hints_conf : sc;
    struct sl_opt_target targets[] = {
        {.table = sl_config_stream_s3_opts, .base = sc},
        {.table = stream_s3_extra_opts, .base = &x},
    };
    int r = sl_opt_apply(targets, SL_ARRAY_LEN(targets), dest, cc->file, dpath, cc->errs);
    if (r == SL_ENOMEM) {
        goto done;
    }
    cc->failed = cc->failed || r < 0;
    char hpath[256];
    (void)snprintf(hpath, sizeof(hpath), "%s.BufferingHints", dpath);
    if (x.hints) {
        struct sl_opt_target ht = {.table = sl_config_stream_hints_opts, .base = hc};
        r = sl_opt_apply(&ht, 1, x.hints, cc->file, hpath, cc->errs);
        cc->failed = cc->failed || r < 0;
    } else {
        r = sl_opt_defaults(sl_config_stream_hints_opts, hc);
    }
    if (r == SL_ENOMEM) {
        goto done;
    }
    r = 0;
    if (backup) {
        sc->backup_size_mb = hints_conf.size_mb;
        sc->backup_interval_s = hints_conf.interval_s;
    }
    if (sc->bucket_arn) {
        stream_check_bucket(cc, sc, dpath);
    }
    struct sl_fh_partition_conf pconf = {0};
    if (!backup) {
        r = stream_load_processing(cc, sc, x.processing, dpath, ret_fn);
        if (r == 0) {
            r = stream_load_dynamic(cc, sc, x.dynamic, dpath, &pconf);
        }
        if (r < 0) {
            goto done;
        }
    } else if (!stream_is_disabled(x.processing) || !stream_is_disabled(x.dynamic)) {
        config_error(cc,
                     "%s: %s: processors and dynamic partitioning do not apply to the backup; "
                     "allowed: the endpoint's own ProcessingConfiguration, no key here",
                     cc->file, dpath);
    }
    if (sc->prefix) {
        stream_check_prefixes(cc, sc, dpath);
    }
    if (!backup && sc->layout) {
        const struct sl_fh_processing *p = sc->processing;
        r = sl_fh_partition_check(&pconf, sc->layout, p ? p->query : NULL, p && p->lambda.enabled,
                                  cc->file, dpath, cc->errs);
        if (r == SL_ENOMEM) {
            goto done;
        }
        cc->failed = cc->failed || r < 0;
        r = 0;
    }
    if (sc->compression != SL_STREAM_UNCOMPRESSED && sc->compression != SL_STREAM_GZIP) {
        static const char *const names[] = {"UNCOMPRESSED", "GZIP", "ZIP", "Snappy",
                                            "HADOOP_SNAPPY"};
        config_error(cc, "%s: %s.CompressionFormat: %s is not built; allowed: UNCOMPRESSED or GZIP",
                     cc->file, dpath, names[sc->compression]);
    }
    stream_check_extra(cc, &x, dpath);
done:
    sl_opt_free(stream_s3_extra_opts, &x);
    return r;
}

/* An HttpEndpointDestinationConfiguration (fh_http_conf.c reads it) and its S3Configuration. */
static int stream_load_http(struct config_ctx *cc,
                            struct sl_stream_conf *sc,
                            const cJSON *obj,
                            const char *path,
                            size_t *ret_fn)
{
    char hpath[192];
    (void)snprintf(hpath, sizeof(hpath), "%s.HttpEndpointDestinationConfiguration", path);
    sc->http = sl_calloc(1, sizeof(*sc->http));
    if (!sc->http) {
        return SL_ENOMEM;
    }
    char err[1024] = "";
    int r = sl_fh_http_conf_parse(obj, hpath, sc->http, err, sizeof(err));
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        config_error(cc, "%s: %s", cc->file, err);
    }
    sc->size_mb = sc->http->size_bytes / (1024 * 1024);
    sc->interval_s = sc->http->interval_ms / 1000;
    /* A transform runs before the request is built; its failed records go to the
     * S3Configuration under ErrorOutputPrefix. */
    const cJSON *proc = cJSON_GetObjectItemCaseSensitive(obj, "ProcessingConfiguration");
    r = stream_load_processing(cc, sc, proc, hpath, ret_fn);
    if (r < 0) {
        return r;
    }
    if (sc->processing && sc->processing->query) {
        config_error(cc,
                     "%s: %s.ProcessingConfiguration: a MetadataExtraction processor needs "
                     "dynamic partitioning, which an HTTP endpoint does not have; allowed: Lambda "
                     "and AppendDelimiterToRecord processors",
                     cc->file, hpath);
    }
    const cJSON *secrets = cJSON_GetObjectItemCaseSensitive(obj, "SecretsManagerConfiguration");
    if (!stream_is_disabled(secrets)) {
        config_error(cc,
                     "%s: %s.SecretsManagerConfiguration: not supported; allowed: "
                     "EndpointConfiguration.AccessKey (with ${VAR}), {\"Enabled\": false} or no "
                     "key",
                     cc->file, hpath);
    }
    const cJSON *s3 = cJSON_GetObjectItemCaseSensitive(obj, "S3Configuration");
    char spath[224];
    (void)snprintf(spath, sizeof(spath), "%s.S3Configuration", hpath);
    if (!cJSON_IsObject(s3)) {
        config_error(cc,
                     "%s: %s: %s; allowed: an object with BucketARN (arn:aws:s3:::BUCKET or "
                     "file:///dir), where failed records (and all of them with S3BackupMode "
                     "AllData) are written",
                     cc->file, spath, s3 ? "not an object" : "missing");
        return 0;
    }
    size_t unused;
    return stream_load_dest(cc, sc, s3, spath, true, &unused);
}

static int stream_load(struct config_ctx *cc, const cJSON *obj, size_t idx, size_t *ret_fn)
{
    struct sl_stream_conf *sc = &cc->cfg->streams[idx];
    char path[64];
    (void)snprintf(path, sizeof(path), "$.delivery_streams[%zu]", idx);
    sc->path = sl_strdup(path);
    if (!sc->path) {
        return SL_ENOMEM;
    }
    if (!cJSON_IsObject(obj)) {
        config_error(cc,
                     "%s: %s: not an object; allowed: an object like CreateDeliveryStream's "
                     "request, with DeliveryStreamName and ExtendedS3DestinationConfiguration",
                     cc->file, path);
        return SL_ECONFIG;
    }
    struct stream_top top = {0};
    struct sl_opt_target targets[] = {{.table = sl_config_stream_opts, .base = &top}};
    int r = sl_opt_apply(targets, 1, obj, cc->file, path, cc->errs);
    if (r == SL_ENOMEM) {
        goto done;
    }
    cc->failed = cc->failed || r < 0;
    r = 0;
    if (top.name) {
        sc->name = top.name;
        top.name = NULL;
        if (!stream_name_valid(sc->name)) {
            config_error(cc,
                         "%s: %s.DeliveryStreamName: \"%s\" is not a valid name; allowed: 1 to "
                         "64 of A-Z a-z 0-9 _ . -",
                         cc->file, path, sc->name);
        }
    }
    sc->spool_max_bytes = top.spool_max_bytes;
    r = config_stream_load_source(cc, sc, top.type, top.other[2], path);
    if (r == SL_ENOMEM) {
        goto done;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(top.other); i++) {
        if (top.other[i] && stream_other_why[i]) {
            const struct sl_opt *o = &sl_config_stream_opts[3 + i];
            config_error(cc, "%s: %s.%s: %s", cc->file, path, o->name, stream_other_why[i]);
        }
    }
    char dpath[128];
    (void)snprintf(dpath, sizeof(dpath), "%s.ExtendedS3DestinationConfiguration", path);
    const cJSON *http = top.other[1];
    if (top.sink && (http || top.s3)) {
        config_error(
            cc,
            "%s: %s: two destinations; allowed: one of ExtendedS3DestinationConfiguration, "
            "HttpEndpointDestinationConfiguration and SinkDestinationConfiguration",
            cc->file, path);
        r = sl_opt_defaults(sl_config_stream_hints_opts, sc);
    } else if (top.sink) {
        r = config_stream_sink_load(cc, sc, top.sink, path);
    } else if (http && top.s3) {
        config_error(cc,
                     "%s: %s: two destinations; allowed: one of ExtendedS3DestinationConfiguration "
                     "and HttpEndpointDestinationConfiguration",
                     cc->file, path);
        r = sl_opt_defaults(sl_config_stream_hints_opts, sc);
    } else if (http && cJSON_IsObject(http)) {
        r = stream_load_http(cc, sc, http, path, ret_fn);
    } else if (http) {
        config_error(cc, "%s: %s.HttpEndpointDestinationConfiguration: not an object", cc->file,
                     path);
        r = sl_opt_defaults(sl_config_stream_hints_opts, sc);
    } else if (!top.s3) {
        config_error(cc,
                     "%s: %s: missing ExtendedS3DestinationConfiguration; allowed: an object "
                     "with BucketARN (arn:aws:s3:::BUCKET or file:///dir), an "
                     "HttpEndpointDestinationConfiguration or a SinkDestinationConfiguration",
                     cc->file, dpath);
        r = sl_opt_defaults(sl_config_stream_hints_opts, sc);
    } else if (!cJSON_IsObject(top.s3)) {
        config_error(cc, "%s: %s: not an object; allowed: an object with BucketARN", cc->file,
                     dpath);
        r = sl_opt_defaults(sl_config_stream_hints_opts, sc);
    } else {
        r = stream_load_dest(cc, sc, top.s3, dpath, false, ret_fn);
    }
done:
    sl_opt_free(sl_config_stream_opts, &top);
    return r;
}

int config_stream_load_all(struct config_ctx *cc, const cJSON *streams)
{
    struct sl_config *cfg = cc->cfg;
    if (!cJSON_IsArray(streams)) {
        config_error(cc,
                     "%s: $.delivery_streams: is not an array; allowed: an array of delivery "
                     "stream objects",
                     cc->file);
        return SL_ECONFIG;
    }
    size_t n = (size_t)cJSON_GetArraySize(streams);
    if (n == 0) {
        return 0;
    }
    cfg->streams = sl_calloc(n, sizeof(*cfg->streams));
    if (!cfg->streams) {
        return SL_ENOMEM;
    }
    /* The functions LambdaArns name, by index: resolving may add functions (and move them). */
    size_t *fn = sl_calloc(n, sizeof(*fn));
    if (!fn) {
        return SL_ENOMEM;
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, streams)
    {
        size_t idx = cfg->n_streams++;
        fn[idx] = SIZE_MAX;
        int r = stream_load(cc, s, idx, &fn[idx]);
        if (r == SL_ENOMEM) {
            sl_free(fn);
            return r;
        }
    }
    for (size_t i = 0; i < cfg->n_streams; i++) {
        if (fn[i] != SIZE_MAX) {
            cfg->streams[i].transform_fn = &cfg->functions[fn[i]];
        }
    }
    sl_free(fn);
    for (size_t i = 0; i < cfg->n_streams; i++) {
        for (size_t j = 0; cfg->streams[i].name && j < i; j++) {
            if (cfg->streams[j].name && strcmp(cfg->streams[i].name, cfg->streams[j].name) == 0) {
                config_error(cc,
                             "%s: %s.DeliveryStreamName: \"%s\" is also the name of %s; allowed: "
                             "a name no other delivery stream has",
                             cc->file, cfg->streams[i].path, cfg->streams[i].name,
                             cfg->streams[j].path);
                break;
            }
        }
    }
    return cc->failed ? SL_ECONFIG : 0;
}

void config_stream_fini(struct sl_stream_conf *sc)
{
    sl_opt_free(sl_config_stream_kinesis_opts, sc);
    sl_opt_free(sl_config_stream_s3_opts, sc);
    sl_opt_free(sl_config_stream_hints_opts, sc);
    sl_free(sc->name);
    sl_free(sc->dir);
    sl_free(sc->path);
    sl_s3_layout_free(sc->layout);
    if (sc->http) {
        sl_fh_http_conf_fini(sc->http);
        sl_free(sc->http);
    }
    if (sc->processing) {
        sl_fh_processing_fini(sc->processing);
        sl_free(sc->processing);
    }
    cJSON_Delete(sc->processing_desc);
    cJSON_Delete(sc->dynamic_desc);
    config_stream_sink_fini(sc);
}

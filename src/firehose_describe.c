/* SPDX-License-Identifier: Apache-2.0 */
/* firehose_describe.c: the Firehose API's read-only calls, DescribeDeliveryStream and
 * ListDeliveryStreams (wire.md §4.1), answered from the streams' configuration as AWS answers
 * them, so the SDKs and the AWS CLI read them unchanged. It owns the description's shape: which
 * members each destination has and the values AWS would show for what sluice runs; secrets
 * (an endpoint's AccessKey, a password in a destination URL, librdkafka settings) are never part
 * of it. Called by firehose_api.c's dispatch; answers through firehose_reply.c. Loop thread. */
#include "firehose_describe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "fh_http.h"
#include "firehose_reply.h"
#include "url.h"

#define DESCRIBE_LIST_MAX 10000

static void
describe_arn(const struct sl_firehose_host *host, const char *name, char *out, size_t len)
{
    (void)snprintf(out, len, "arn:aws:firehose:%s:%s:deliverystream/%s", host->region,
                   host->account, name);
}

static const char *const describe_compression_names[] = {"UNCOMPRESSED", "GZIP", "ZIP", "Snappy",
                                                         "HADOOP_SNAPPY"};

/* A copy of what the configuration kept for the description (NULL: the key was absent, so none)
 * as d's member key. */
static bool describe_copy(cJSON *d, const char *key, const cJSON *kept)
{
    if (!kept) {
        return true;
    }
    cJSON *c = cJSON_Duplicate(kept, true);
    return c && cJSON_AddItemToObject(d, key, c);
}

/* An S3 destination's description: ExtendedS3DestinationDescription (extended: with its
 * S3BackupMode, ProcessingConfiguration and DynamicPartitioningConfiguration) or
 * S3DestinationDescription, with the buffering hints given. */
static cJSON *
describe_s3(const struct sl_stream_conf *sc, int64_t size_mb, int64_t interval_s, bool extended)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *hints = cJSON_CreateObject();
    cJSON *enc = cJSON_CreateObject();
    cJSON *logging = cJSON_CreateObject();
    bool ok = d && hints && enc && logging;
    ok = ok && (!sc->role_arn || cJSON_AddStringToObject(d, "RoleARN", sc->role_arn));
    ok = ok && cJSON_AddStringToObject(d, "BucketARN", sc->bucket_arn);
    ok = ok && cJSON_AddStringToObject(d, "Prefix", sc->prefix ? sc->prefix : "");
    ok = ok &&
         (!sc->error_prefix || cJSON_AddStringToObject(d, "ErrorOutputPrefix", sc->error_prefix));
    ok = ok && cJSON_AddNumberToObject(hints, "SizeInMBs", (double)size_mb);
    ok = ok && cJSON_AddNumberToObject(hints, "IntervalInSeconds", (double)interval_s);
    ok = ok && cJSON_AddStringToObject(d, "CompressionFormat",
                                       describe_compression_names[sc->compression]);
    ok = ok && cJSON_AddStringToObject(enc, "NoEncryptionConfig", "NoEncryption");
    ok = ok && cJSON_AddFalseToObject(logging, "Enabled");
    if (ok) {
        cJSON_AddItemToObject(d, "BufferingHints", hints);
        cJSON_AddItemToObject(d, "EncryptionConfiguration", enc);
        cJSON_AddItemToObject(d, "CloudWatchLoggingOptions", logging);
        hints = enc = logging = NULL;
        ok = !extended || cJSON_AddStringToObject(d, "S3BackupMode", "Disabled") != NULL;
        ok = ok && (!extended || describe_copy(d, "ProcessingConfiguration", sc->processing_desc));
        ok = ok &&
             (!extended || describe_copy(d, "DynamicPartitioningConfiguration", sc->dynamic_desc));
    }
    cJSON_Delete(hints);
    cJSON_Delete(enc);
    cJSON_Delete(logging);
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

/* RequestConfiguration's CommonAttributes as AWS lists them, from the header value kept
 * ({"commonAttributes":{"name":"value",...}}, in the order configured). */
static bool describe_attrs(const struct sl_fh_http_conf *hc, cJSON *req_conf)
{
    if (!hc->common_attributes) {
        return true;
    }
    cJSON *kept = cJSON_Parse(hc->common_attributes);
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(kept, "commonAttributes");
    cJSON *list = cJSON_AddArrayToObject(req_conf, "CommonAttributes");
    bool ok = kept && list;
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        cJSON *item = ok ? cJSON_CreateObject() : NULL;
        ok = item && cJSON_AddStringToObject(item, "AttributeName", a->string) &&
             cJSON_AddStringToObject(item, "AttributeValue",
                                     cJSON_IsString(a) ? a->valuestring : "");
        if (item && !ok) {
            cJSON_Delete(item);
        } else if (item) {
            cJSON_AddItemToArray(list, item);
        }
    }
    cJSON_Delete(kept);
    return ok;
}

/* HttpEndpointDestinationDescription, as AWS answers it: the endpoint's Url and Name (never its
 * AccessKey, which AWS does not return either), its buffering, request and retry settings, and
 * the S3Configuration where failed (or all) records go. */
static cJSON *describe_http(const struct sl_stream_conf *sc)
{
    const struct sl_fh_http_conf *hc = sc->http;
    cJSON *d = cJSON_CreateObject();
    cJSON *ep = cJSON_AddObjectToObject(d, "EndpointConfiguration");
    cJSON *hints = cJSON_AddObjectToObject(d, "BufferingHints");
    cJSON *logging = cJSON_AddObjectToObject(d, "CloudWatchLoggingOptions");
    cJSON *req_conf = cJSON_AddObjectToObject(d, "RequestConfiguration");
    cJSON *retry = cJSON_AddObjectToObject(d, "RetryOptions");
    bool ok = d && ep && hints && logging && req_conf && retry;
    ok = ok && cJSON_AddStringToObject(ep, "Url", hc->url);
    ok = ok && (!hc->name || cJSON_AddStringToObject(ep, "Name", hc->name));
    ok = ok && cJSON_AddNumberToObject(hints, "SizeInMBs", (double)sc->size_mb);
    ok = ok && cJSON_AddNumberToObject(hints, "IntervalInSeconds", (double)sc->interval_s);
    ok = ok && cJSON_AddFalseToObject(logging, "Enabled");
    ok = ok && cJSON_AddStringToObject(req_conf, "ContentEncoding", hc->gzip ? "GZIP" : "NONE");
    ok = ok && describe_attrs(hc, req_conf);
    ok = ok && cJSON_AddNumberToObject(retry, "DurationInSeconds",
                                       (double)(hc->retry_duration_ms / 1000));
    ok = ok &&
         cJSON_AddStringToObject(d, "S3BackupMode", hc->backup_all ? "AllData" : "FailedDataOnly");
    ok = ok && describe_copy(d, "ProcessingConfiguration", sc->processing_desc);
    cJSON *s3 = ok ? describe_s3(sc, sc->backup_size_mb, sc->backup_interval_s, false) : NULL;
    if (!s3) {
        cJSON_Delete(d);
        return NULL;
    }
    cJSON_AddItemToObject(d, "S3DestinationDescription", s3);
    return d;
}

/* SinkDestinationDescription, sluice's own (the SDKs skip a member their model lacks): the
 * Destination with any password or query redacted, a Kafka sink's BootstrapServers (never its
 * rdkafka settings, which may hold SASL secrets), and the buffering hints. */
static cJSON *describe_sink(const struct sl_stream_conf *sc)
{
    char shown[SL_URL_REDACTED_MAX];
    const char *servers = sl_strmap_get(&sc->sink->cluster, "bootstrap.servers");
    cJSON *d = cJSON_CreateObject();
    cJSON *hints = cJSON_CreateObject();
    bool ok = d && hints && cJSON_AddItemToObject(d, "BufferingHints", hints);
    if (!ok) {
        cJSON_Delete(hints);
    }
    ok = ok && cJSON_AddStringToObject(d, "Destination",
                                       sl_url_redact(sc->sink->destination, shown, sizeof(shown)));
    ok = ok && (!servers || cJSON_AddStringToObject(d, "BootstrapServers", servers));
    ok = ok && cJSON_AddNumberToObject(hints, "SizeInMBs", (double)sc->size_mb);
    ok = ok && cJSON_AddNumberToObject(hints, "IntervalInSeconds", (double)sc->interval_s);
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

int sl_firehose_describe(struct sl_firehose_host *host,
                         const cJSON *req,
                         struct sl_firehose_reply *ret)
{
    int r = 0;
    long idx = sl_firehose_reply_stream(host, req, ret, &r, true);
    if (idx < 0) {
        return r;
    }
    const struct sl_stream_conf *sc = host->conf_at(host->arg, (size_t)idx);
    char arn[256];
    describe_arn(host, sc->name, arn, sizeof(arn));
    cJSON *o = cJSON_CreateObject();
    cJSON *desc = cJSON_AddObjectToObject(o, "DeliveryStreamDescription");
    cJSON *dests = cJSON_AddArrayToObject(desc, "Destinations");
    cJSON *dest = cJSON_CreateObject();
    cJSON *enc = cJSON_AddObjectToObject(desc, "DeliveryStreamEncryptionConfiguration");
    bool ok = o && desc && dests && dest && enc;
    ok = ok && cJSON_AddStringToObject(desc, "DeliveryStreamName", sc->name);
    ok = ok && cJSON_AddStringToObject(desc, "DeliveryStreamARN", arn);
    ok = ok && cJSON_AddStringToObject(desc, "DeliveryStreamStatus", "ACTIVE");
    ok = ok && cJSON_AddStringToObject(enc, "Status", "DISABLED");
    ok = ok && cJSON_AddStringToObject(desc, "DeliveryStreamType",
                                       sc->kinesis_arn ? "KinesisStreamAsSource" : "DirectPut");
    if (ok && sc->kinesis_arn) {
        cJSON *src = cJSON_AddObjectToObject(desc, "Source");
        cJSON *ks = src ? cJSON_AddObjectToObject(src, "KinesisStreamSourceDescription") : NULL;
        ok =
            ks && cJSON_AddStringToObject(ks, "KinesisStreamARN", sc->kinesis_arn) &&
            (!sc->kinesis_role_arn || cJSON_AddStringToObject(ks, "RoleARN", sc->kinesis_role_arn));
    }
    ok = ok && cJSON_AddStringToObject(desc, "VersionId", "1");
    ok = ok && cJSON_AddNumberToObject(desc, "CreateTimestamp", host->created_s);
    ok = ok && cJSON_AddFalseToObject(desc, "HasMoreDestinations");
    ok = ok && cJSON_AddStringToObject(dest, "DestinationId", "destinationId-000000000001");
    if (ok && sc->http) {
        cJSON *h = describe_http(sc);
        ok = h != NULL;
        if (ok) {
            cJSON_AddItemToObject(dest, "HttpEndpointDestinationDescription", h);
        }
    } else if (ok && sc->sink) {
        cJSON *k = describe_sink(sc);
        ok = k != NULL;
        if (ok) {
            cJSON_AddItemToObject(dest, "SinkDestinationDescription", k);
        }
    } else if (ok) {
        /* AWS describes an extended S3 destination under both names. */
        cJSON *s3 = describe_s3(sc, sc->size_mb, sc->interval_s, false);
        cJSON *ext = describe_s3(sc, sc->size_mb, sc->interval_s, true);
        ok = s3 && ext;
        if (ok) {
            cJSON_AddItemToObject(dest, "S3DestinationDescription", s3);
            cJSON_AddItemToObject(dest, "ExtendedS3DestinationDescription", ext);
        } else {
            cJSON_Delete(s3);
            cJSON_Delete(ext);
        }
    }
    if (!ok) {
        cJSON_Delete(dest);
        cJSON_Delete(o);
        return SL_ENOMEM;
    }
    cJSON_AddItemToArray(dests, dest);
    return sl_firehose_reply_json(ret, o);
}

static int describe_name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int sl_firehose_describe_list(struct sl_firehose_host *host,
                              const cJSON *req,
                              struct sl_firehose_reply *ret)
{
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(req, "Limit");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(req, "ExclusiveStartDeliveryStreamName");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(req, "DeliveryStreamType");
    long max = 10;
    if (limit && !cJSON_IsNull(limit)) {
        if (!cJSON_IsNumber(limit)) {
            return sl_firehose_reply_error(ret, 400, "SerializationException",
                                           "Limit: expected a number");
        }
        if (limit->valuedouble < 1 || limit->valuedouble > DESCRIBE_LIST_MAX) {
            return SL_FIREHOSE_VALIDATION(
                ret,
                "Value '%d' at 'limit' failed to satisfy constraint: Member "
                "must have value %s",
                limit->valueint,
                limit->valuedouble < 1 ? "greater than or equal to 1"
                                       : "less than or equal to 10000");
        }
        max = limit->valueint;
    }
    if ((start && !cJSON_IsNull(start) && !cJSON_IsString(start)) ||
        (type && !cJSON_IsNull(type) && !cJSON_IsString(type))) {
        return sl_firehose_reply_error(
            ret, 400, "SerializationException",
            "ExclusiveStartDeliveryStreamName, DeliveryStreamType: expected strings");
    }
    const char **names = sl_calloc(host->n_streams ? host->n_streams : 1, sizeof(*names));
    if (!names) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < host->n_streams; i++) {
        names[i] = host->conf_at(host->arg, i)->name;
    }
    qsort(names, host->n_streams, sizeof(*names), describe_name_cmp);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "DeliveryStreamNames");
    bool ok = o && arr;
    bool more = false;
    long n = 0;
    bool direct_only = !cJSON_IsString(type) || strcmp(type->valuestring, "DirectPut") == 0;
    for (size_t i = 0; ok && direct_only && i < host->n_streams; i++) {
        if (cJSON_IsString(start) && strcmp(names[i], start->valuestring) <= 0) {
            continue;
        }
        if (n == max) {
            more = true;
            break;
        }
        cJSON *s = cJSON_CreateString(names[i]);
        ok = s != NULL;
        if (ok) {
            cJSON_AddItemToArray(arr, s);
            n++;
        }
    }
    sl_free(names);
    ok = ok && cJSON_AddBoolToObject(o, "HasMoreDeliveryStreams", more);
    if (!ok) {
        cJSON_Delete(o);
        return SL_ENOMEM;
    }
    return sl_firehose_reply_json(ret, o);
}

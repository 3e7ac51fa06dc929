/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_S3_KEYS_H
#define SL_S3_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "strmap.h"
#include "uuid.h"

/* Firehose's S3 object keys (wire.md §4.5; AWS's "Custom Prefixes for Amazon S3 Objects" and
 * "Amazon S3 object name format"): key = <evaluated prefix><object name>.
 *
 * How a delivery stream uses it:
 *   at config time  sl_s3_layout_new(&conf, &layout, errbuf, errlen) with the destination's
 *                   Prefix, ErrorOutputPrefix and DynamicPartitioningConfiguration.Enabled; a
 *                   refused config leaves an error naming the JSON path and what is allowed.
 *                   sl_s3_layout_key_count/sl_s3_layout_key tell which partition keys the
 *                   prefix needs, so the stream knows what to extract per record.
 *   per record      sl_s3_layout_partition: the buffer (active partition) the record joins.
 *   per object      sl_s3_layout_key_of(layout, &vars, false, stream, version, ext, &key, ...)
 *                   with vars.time_ms = the approximate arrival time of the OLDEST record in the
 *                   object (Firehose evaluates every !{timestamp:...} of one prefix, and names
 *                   the object, at that one instant), and the record's partition key values.
 *                   SL_ENOTFOUND means a key the prefix needs is missing: Firehose sends such a
 *                   record to the error prefix instead.
 *   failed records  the same with error = true and vars.error_type = SL_S3_PROCESSING_FAILED,
 *                   SL_S3_HTTP_ENDPOINT_FAILED, ...
 *
 * Times are UTC (CustomTimeZone is not supported). Any thread; nothing logs. */

/* The values of !{firehose:error-output-type} Firehose documents. */
#define SL_S3_PROCESSING_FAILED        "processing-failed"
#define SL_S3_HTTP_ENDPOINT_FAILED     "http-endpoint-failed"
#define SL_S3_SPLUNK_FAILED            "splunk-failed"
#define SL_S3_OPENSEARCH_FAILED        "AmazonOpenSearchService-failed"
#define SL_S3_ELASTICSEARCH_FAILED     "elasticsearch-failed"
#define SL_S3_FORMAT_CONVERSION_FAILED "format-conversion-failed"
/* Dynamic partitioning: a record whose partition keys cannot be extracted (the value AWS's own
 * integration tests of Firehose read back). */
#define SL_S3_PARTITIONING_FAILED "partitioning-failed"

/* Evaluated prefixes longer than this are refused (Firehose's semantic rules). */
#define SL_S3_PREFIX_MAX 512
/* Prefix and ErrorOutputPrefix as configured: CreateDeliveryStream's length limit. */
#define SL_S3_PREFIX_CONF_MAX 1024
/* !{firehose:random-string}'s length. */
#define SL_S3_RANDOM_LEN 11

struct sl_s3_layout_conf {
    const char *prefix;        /* Prefix; NULL or "" = not set */
    const char *error_prefix;  /* ErrorOutputPrefix; NULL or "" = not set */
    bool dynamic_partitioning; /* DynamicPartitioningConfiguration.Enabled */
    /* The JSON path of the destination object errors name, e.g.
     * "$.delivery_streams[0].ExtendedS3DestinationConfiguration"; NULL: none. */
    const char *path;
};

struct sl_s3_vars {
    int64_t time_ms;                /* epoch ms: oldest record's approximate arrival */
    const struct sl_strmap *query;  /* partitionKeyFromQuery values, or NULL (borrowed) */
    const struct sl_strmap *lambda; /* partitionKeyFromLambda values, or NULL (borrowed) */
    const char *error_type;         /* error prefix only: one of SL_S3_*_FAILED */
    sl_rand_fn rand;                /* NULL: sl_rand_system; tests pass their own */
    void *rand_arg;
};

enum sl_s3_key_ns { SL_S3_KEY_QUERY, SL_S3_KEY_LAMBDA, SL_S3_KEY_NS_COUNT };

struct sl_s3_layout;

/* Validates conf with Firehose's rules and compiles both prefixes. Returns 0 with *ret_layout
 * (owned; sl_s3_layout_free), or SL_ECONFIG with the reason in errbuf (naming the field:
 * "<path>.Prefix: ..." and what is allowed), or SL_ENOMEM. */
SL_NODISCARD int sl_s3_layout_new(const struct sl_s3_layout_conf *conf,
                                  struct sl_s3_layout **ret_layout,
                                  char *errbuf,
                                  size_t errlen);
void sl_s3_layout_free(struct sl_s3_layout *l);

/* The partition keys the Prefix names, in order of appearance (a key used twice counts once):
 * the i-th one's name (borrowed) and namespace. */
size_t sl_s3_layout_key_count(const struct sl_s3_layout *l);
const char *sl_s3_layout_key(const struct sl_s3_layout *l, size_t i, enum sl_s3_key_ns *ret_ns);

/* Appends the partition a record belongs to: the values of the partition keys the Prefix names
 * (sl_s3_layout_key order), each as "<length>:<value>", so records with equal keys, and only
 * those, get equal strings; "" without dynamic partitioning. Firehose buffers each partition
 * apart and evaluates the rest of the prefix (time, random-string) per object. Returns 0,
 * SL_ENOTFOUND (a key missing: errbuf names it; the record goes to the error prefix) or
 * SL_ENOMEM; out as it was on failure. */
SL_NODISCARD int sl_s3_layout_partition(const struct sl_s3_layout *l,
                                        const struct sl_s3_vars *vars,
                                        struct sl_buf *out,
                                        char *errbuf,
                                        size_t errlen);

/* Appends the evaluated Prefix (error: the evaluated ErrorOutputPrefix) to out. Returns 0,
 * SL_ENOTFOUND (a partition key the prefix names is not in vars), SL_EINVAL (evaluated longer
 * than SL_S3_PREFIX_MAX, or error without vars->error_type) with the reason in errbuf, or
 * SL_ENOMEM. out is left as it was on failure. */
SL_NODISCARD int sl_s3_layout_prefix(const struct sl_s3_layout *l,
                                     const struct sl_s3_vars *vars,
                                     bool error,
                                     struct sl_buf *out,
                                     char *errbuf,
                                     size_t errlen);

/* Appends Firehose's object name <stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid><ext> at time_ms
 * (UTC) with a random (version 4) UUID; ext is "" or sl_s3_keys_extension()'s. Returns 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_s3_keys_object_name(struct sl_buf *out,
                                        const char *stream,
                                        unsigned version,
                                        int64_t time_ms,
                                        const char *ext,
                                        sl_rand_fn rand,
                                        void *rand_arg);

/* The whole key: sl_s3_layout_prefix then sl_s3_keys_object_name at vars->time_ms. */
SL_NODISCARD int sl_s3_layout_key_of(const struct sl_s3_layout *l,
                                     const struct sl_s3_vars *vars,
                                     bool error,
                                     const char *stream,
                                     unsigned version,
                                     const char *ext,
                                     struct sl_buf *out,
                                     char *errbuf,
                                     size_t errlen);

/* The extension Firehose appends for a CompressionFormat: "" for UNCOMPRESSED (and NULL),
 * ".gz" for GZIP, ".zip", ".snappy" (Snappy and HADOOP_SNAPPY); NULL for anything else. */
const char *sl_s3_keys_extension(const char *compression);

/* Formats time_ms (UTC) with a Java DateTimeFormatter pattern into out: letters y u M d D H h
 * k K m s S a E, other characters as is, text in single quotes literal ('' is one quote).
 * Returns 0, SL_EINVAL (a letter or construct outside that set, an unterminated quote: the
 * reason in errbuf) or SL_ENOMEM. out NULL: only checks the pattern. */
SL_NODISCARD int sl_s3_keys_format_time(struct sl_buf *out,
                                        const char *pattern,
                                        size_t len,
                                        int64_t time_ms,
                                        char *errbuf,
                                        size_t errlen);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_PARTITION_H
#define SL_FH_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "errlist.h"
#include "strmap.h"

/* Firehose's dynamic partitioning (wire.md §4.6; AWS's "Dynamic partitioning" and
 * "Understand partitioning keys"): DynamicPartitioningConfiguration, and the partition keys a
 * MetadataExtraction processor's jq query takes from each JSON record (partitionKeyFromQuery).
 *
 * How a delivery stream uses it:
 *   at config time  sl_fh_partition_conf_parse on DynamicPartitioningConfiguration;
 *                   sl_fh_processing_parse (fh_processing.h) compiles the query with
 *                   sl_fh_query_new; sl_fh_partition_check then checks the S3 layout
 *                   (s3_keys.h) against the methods: every !{partitionKeyFromQuery:k} must be a
 *                   key of the query, !{partitionKeyFromLambda:k} needs a Lambda processor.
 *   per record      sl_fh_query_extract into the record's partitionKeyFromQuery map (the
 *                   sl_s3_vars.query of s3_keys.h). A record that is not JSON, or lacks a key,
 *                   fails: Firehose writes it under the error prefix with errorCode
 *                   SL_FH_PARTITION_ERR_CODE and the message errbuf holds.
 *
 * The query: a jq object of paths, {key: .field, key: .a.b, "key": ."odd-key", key: .a["b"]}
 * and the shorthand {key} (= {key: .key}); jq's other forms (pipes, functions such as
 * strftime, arrays, slices, variables) are refused at config time, naming the path and what is
 * supported. Values render as Firehose's jq -r: a string without its quotes (escapes decoded),
 * a number exactly as written in the record, true and false; null, a missing key, an object
 * or an array fails the record. Of a key written twice in a record, the last counts (jq).
 *
 * Any thread; nothing logs. */

/* errorCode of a record whose partition keys cannot be extracted (as Firehose writes it). */
#define SL_FH_PARTITION_ERR_CODE "DynamicPartitioning.MetadataExtractionFailed"

/* RetryOptions.DurationInSeconds of DynamicPartitioningConfiguration. */
#define SL_FH_PARTITION_RETRY_DEFAULT_S 300
#define SL_FH_PARTITION_RETRY_MAX_S     7200
/* Partition keys a query may define (Firehose's documented limit of keys per stream). */
#define SL_FH_QUERY_MAX_KEYS 50

struct sl_fh_partition_conf {
    bool enabled;             /* Enabled */
    int64_t retry_duration_s; /* RetryOptions.DurationInSeconds: 0..7200, default 300 */
};

/* Reads DynamicPartitioningConfiguration (dpc; NULL: not enabled) at path (the key's own path,
 * "$.delivery_streams[0].ExtendedS3DestinationConfiguration.DynamicPartitioningConfiguration").
 * Returns 0 with *ret filled, or SL_ECONFIG with one line per problem added to errs ("FILE:
 * PATH.Key: problem; allowed: ..."), or SL_ENOMEM. */
SL_NODISCARD int sl_fh_partition_conf_parse(const cJSON *dpc,
                                            const char *file,
                                            const char *path,
                                            struct sl_fh_partition_conf *ret,
                                            struct sl_errlist *errs);

struct sl_fh_query;

/* Compiles a MetadataExtractionQuery. path names its ParameterValue for errors. Returns 0 and
 * *ret_q (owned: sl_fh_query_free), SL_ECONFIG (a line added to errs naming the path, the
 * offset of the problem and what is supported) or SL_ENOMEM. */
SL_NODISCARD int sl_fh_query_new(const char *text,
                                 const char *file,
                                 const char *path,
                                 struct sl_fh_query **ret_q,
                                 struct sl_errlist *errs);
void sl_fh_query_free(struct sl_fh_query *q);

/* The keys the query defines, in order. */
size_t sl_fh_query_key_count(const struct sl_fh_query *q);
const char *sl_fh_query_key(const struct sl_fh_query *q, size_t i);

/* Extracts every key of q from the record data[0..len) into out (sl_strmap_put: added or
 * replaced). Returns 0, SL_EINVAL (not one JSON value), SL_ENOTFOUND (a key missing, null, an
 * object or an array) with the reason in errbuf, or SL_ENOMEM. out may hold some keys on
 * failure. */
SL_NODISCARD int sl_fh_query_extract(const struct sl_fh_query *q,
                                     const void *data,
                                     size_t len,
                                     struct sl_strmap *out,
                                     char *errbuf,
                                     size_t errlen);

struct sl_s3_layout;

/* Checks a destination's layout against its partitioning methods: with dynamic partitioning,
 * at least one method (query or Lambda) and, for each key the Prefix names, its method
 * (!{partitionKeyFromQuery:k}: k a key of query; !{partitionKeyFromLambda:k}: has_lambda).
 * path is the destination's ("$.delivery_streams[0].ExtendedS3DestinationConfiguration").
 * Returns 0 or SL_ECONFIG (lines added to errs) or SL_ENOMEM. */
SL_NODISCARD int sl_fh_partition_check(const struct sl_fh_partition_conf *conf,
                                       const struct sl_s3_layout *layout,
                                       const struct sl_fh_query *query,
                                       bool has_lambda,
                                       const char *file,
                                       const char *path,
                                       struct sl_errlist *errs);

#endif

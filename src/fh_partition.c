/* SPDX-License-Identifier: Apache-2.0 */
/* fh_partition.c: DynamicPartitioningConfiguration (Enabled, RetryOptions.DurationInSeconds)
 * read from the stream's JSON with errors naming the JSON path, and the config-time check that
 * every partition key a Prefix names has a method that produces it. The query itself is
 * fh_query.c's. Any thread; nothing logs. */
#include "fh_partition.h"

#include <math.h>
#include <string.h>

#include "s3_keys.h"

static int fhp_bad(
    struct sl_errlist *errs, const char *file, const char *path, const char *key, const char *why)
{
    sl_errlist_add(errs, "%s: %s%s%s: %s", file, path, key ? "." : "", key ? key : "", why);
    return SL_ECONFIG;
}

int sl_fh_partition_conf_parse(const cJSON *dpc,
                               const char *file,
                               const char *path,
                               struct sl_fh_partition_conf *ret,
                               struct sl_errlist *errs)
{
    struct sl_fh_partition_conf c = {.enabled = false,
                                     .retry_duration_s = SL_FH_PARTITION_RETRY_DEFAULT_S};
    int r = 0;
    if (!dpc || cJSON_IsNull(dpc)) {
        *ret = c;
        return 0;
    }
    if (!cJSON_IsObject(dpc)) {
        return fhp_bad(errs, file, path, NULL,
                       "not an object; allowed: {\"Enabled\": true|false, \"RetryOptions\": "
                       "{\"DurationInSeconds\": 0..7200}}");
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, dpc)
    {
        if (strcmp(kv->string, "Enabled") == 0) {
            if (!cJSON_IsBool(kv)) {
                r = fhp_bad(errs, file, path, "Enabled", "not a boolean; allowed: true or false");
            }
            c.enabled = cJSON_IsTrue(kv);
        } else if (strcmp(kv->string, "RetryOptions") == 0) {
            const cJSON *d = cJSON_IsObject(kv)
                                 ? cJSON_GetObjectItemCaseSensitive(kv, "DurationInSeconds")
                                 : NULL;
            bool only = cJSON_IsObject(kv) && (!kv->child || (kv->child == d && !d->next));
            if (!only) {
                r = fhp_bad(errs, file, path, "RetryOptions",
                            "allowed: {\"DurationInSeconds\": 0..7200} (the only key)");
            } else if (d && (!cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble) ||
                             d->valuedouble < 0 || d->valuedouble > SL_FH_PARTITION_RETRY_MAX_S)) {
                r = fhp_bad(errs, file, path, "RetryOptions.DurationInSeconds",
                            "allowed: an integer from 0 to 7200 (seconds)");
            } else if (d) {
                c.retry_duration_s = (int64_t)d->valuedouble;
            }
        } else {
            sl_errlist_add(errs, "%s: %s.%s: unknown key; allowed: Enabled, RetryOptions", file,
                           path, kv->string);
            r = SL_ECONFIG;
        }
    }
    if (r == 0) {
        *ret = c;
    }
    return r;
}

int sl_fh_partition_check(const struct sl_fh_partition_conf *conf,
                          const struct sl_s3_layout *layout,
                          const struct sl_fh_query *query,
                          bool has_lambda,
                          const char *file,
                          const char *path,
                          struct sl_errlist *errs)
{
    int r = 0;
    if (!conf->enabled) {
        if (query) {
            r = fhp_bad(errs, file, path, "ProcessingConfiguration",
                        "a MetadataExtraction processor needs dynamic partitioning; allowed: "
                        "DynamicPartitioningConfiguration.Enabled true, or no such processor");
        }
        return r;
    }
    if (!query && !has_lambda) {
        r = fhp_bad(errs, file, path, "DynamicPartitioningConfiguration",
                    "dynamic partitioning is enabled but no method makes partition keys; allowed: "
                    "a MetadataExtraction processor (partitionKeyFromQuery) or a Lambda "
                    "processor (partitionKeyFromLambda) in ProcessingConfiguration");
    }
    size_t n = layout ? sl_s3_layout_key_count(layout) : 0;
    for (size_t i = 0; i < n; i++) {
        enum sl_s3_key_ns ns;
        const char *k = sl_s3_layout_key(layout, i, &ns);
        if (ns == SL_S3_KEY_LAMBDA && !has_lambda) {
            sl_errlist_add(errs,
                           "%s: %s.Prefix: !{partitionKeyFromLambda:%s} needs a Lambda processor; "
                           "allowed: a Lambda processor in ProcessingConfiguration, or "
                           "!{partitionKeyFromQuery:...} keys of the MetadataExtractionQuery",
                           file, path, k);
            r = SL_ECONFIG;
            continue;
        }
        if (ns != SL_S3_KEY_QUERY) {
            continue;
        }
        bool found = false;
        for (size_t j = 0; query && j < sl_fh_query_key_count(query); j++) {
            found = found || strcmp(sl_fh_query_key(query, j), k) == 0;
        }
        if (!found) {
            sl_errlist_add(errs,
                           "%s: %s.Prefix: !{partitionKeyFromQuery:%s} is not a key of the "
                           "MetadataExtractionQuery; allowed: the keys it defines%s",
                           file, path, k,
                           query ? "" : " (there is no MetadataExtraction processor)");
            r = SL_ECONFIG;
        }
    }
    return r;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* config_rules.c: the rules of a mapping's core keys that go beyond their option table: the
 * source kind's defaults and ranges (BatchSize, the batching window, StartingPosition and its
 * timestamp), the failure controls (MaximumRecordAgeInSeconds, FunctionResponseTypes,
 * DestinationConfig and the sink that serves it), FilterCriteria (compiled once to check it),
 * ScalingConfig and TumblingWindowInSeconds. Called by config_mapping.c once the tables are
 * applied; it reads the mapping and reports, nothing more. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "filter.h"
#include "sink.h"
#include "source.h"
#include "url.h"

/* A destination on a source's own cluster (kafka://TOPIC without a cluster in its options):
 * the source adapter that serves its scheme says whether this mapping may have it. Returns 0 or
 * SL_ECONFIG (reported). */
static int config_cluster_destination(struct config_ctx *cc,
                                      const struct sl_mapping_conf *mc,
                                      const char *path,
                                      const cJSON *d)
{
    const struct sl_source_ops *owner = sl_source_for_arn(d->valuestring);
    char errbuf[1024] = "";
    int r = SL_ECONFIG;
    if (owner) {
        r = owner->check_destination(owner == mc->source, mc->json, d->valuestring, errbuf,
                                     sizeof(errbuf));
    } else {
        char shown[SL_URL_REDACTED_MAX];
        (void)snprintf(errbuf, sizeof(errbuf),
                       "\"%s\" is on a cluster no source of this build reads; allowed: %s",
                       sl_url_redact(d->valuestring, shown, sizeof(shown)),
                       config_error_destinations());
    }
    if (r < 0) {
        config_error(cc, "%s: %s.DestinationConfig.OnFailure.Destination: %s", cc->file, path,
                     errbuf[0] ? errbuf : sl_strerror(r));
        return SL_ECONFIG;
    }
    return 0;
}

/* True when the mapping's destination_options name a cluster of the sink's own (kafka:
 * bootstrap_servers): the destination then needs nothing of the source, whatever its kind. Its
 * value is checked with the other options (config_sink.c). */
static bool config_own_cluster(const struct sl_mapping_conf *mc, const struct sl_sink_ops *sink)
{
    const cJSON *opts = mc->core.destination_options;
    return sink->own_cluster_opt && cJSON_IsObject(opts) &&
           cJSON_GetObjectItemCaseSensitive(opts, sink->own_cluster_opt);
}

/* Checks DestinationConfig: only OnFailure, whose Destination a sink serves. */
static void config_destination(struct config_ctx *cc, struct sl_mapping_conf *mc, const char *path)
{
    const char *file = cc->file;
    const cJSON *dc = mc->core.destination_config;
    if (!dc) {
        return;
    }
    if (!cJSON_IsObject(dc)) {
        config_error(cc,
                     "%s: %s.DestinationConfig: not an object; allowed: {\"OnFailure\": "
                     "{\"Destination\": \"...\"}}",
                     file, path);
        return;
    }
    for (const cJSON *c = dc->child; c; c = c->next) {
        if (strcmp(c->string, "OnFailure") != 0) {
            config_error(
                cc,
                "%s: %s.DestinationConfig.%s: unsupported DestinationConfig parameter "
                "(AWS supports only OnFailure for event source mappings); allowed: OnFailure",
                file, path, c->string);
        }
    }
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(dc, "OnFailure");
    if (!of) {
        return;
    }
    if (!cJSON_IsObject(of)) {
        config_error(cc,
                     "%s: %s.DestinationConfig.OnFailure: not an object; allowed: "
                     "{\"Destination\": \"...\"} or {}",
                     file, path);
        return;
    }
    for (const cJSON *c = of->child; c; c = c->next) {
        if (strcmp(c->string, "Destination") != 0) {
            config_error(cc,
                         "%s: %s.DestinationConfig.OnFailure.%s: unknown key; allowed: "
                         "Destination",
                         file, path, c->string);
        }
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(of, "Destination");
    if (!d) {
        return;
    }
    if (!cJSON_IsString(d) || !d->valuestring[0]) {
        config_error(cc,
                     "%s: %s.DestinationConfig.OnFailure.Destination: not a non-empty string; "
                     "allowed: file:///dir, http(s)://..., an SQS queue ARN or URL",
                     file, path);
        return;
    }
    const struct sl_sink_ops *sink = sl_sink_for(d->valuestring);
    char errbuf[1024] = "";
    /* Shown redacted: a destination URL may carry a password or a token (url.h). */
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(d->valuestring, shown, sizeof(shown));
    if (!sink && config_error_left_out(cc, path, "DestinationConfig.OnFailure.Destination",
                                       d->valuestring, false) < 0) {
        return; /* reported; the load fails */
    } else if (!sink) {
        config_error(cc,
                     "%s: %s.DestinationConfig.OnFailure.Destination: \"%s\" is not a "
                     "destination sluice can write; allowed: %s",
                     file, path, shown, config_error_destinations());
    } else if (sink->check(d->valuestring, errbuf, sizeof(errbuf)) < 0) {
        config_error(cc, "%s: %s.DestinationConfig.OnFailure.Destination: %s", file, path, errbuf);
    } else if (sink->uses_source_cluster && !config_own_cluster(mc, sink) &&
               config_cluster_destination(cc, mc, path, d) < 0) {
        return; /* reported */
    } else {
        mc->on_failure = d->valuestring;
    }
}

/* Checks the failure controls, filters and scaling keys whose rules go beyond the table. */
static void
config_failure_rules(struct config_ctx *cc, struct sl_mapping_conf *mc, const char *path)
{
    struct sl_mapping_core *core = &mc->core;
    const char *file = cc->file;
    if (core->max_record_age_s != -1 && core->max_record_age_s < 60) {
        config_error(cc,
                     "%s: %s.MaximumRecordAgeInSeconds: %lld is out of range; allowed: -1 or "
                     "60 to 604800",
                     file, path, (long long)core->max_record_age_s);
    }
    for (size_t i = 0; i < core->response_types.n; i++) {
        if (strcmp(core->response_types.items[i], "ReportBatchItemFailures") == 0) {
            mc->report_item_failures = true;
        } else {
            config_error(cc,
                         "%s: %s.FunctionResponseTypes[%zu]: \"%s\" is not a response type; "
                         "allowed: ReportBatchItemFailures",
                         file, path, i, core->response_types.items[i]);
        }
    }
    config_destination(cc, mc, path);
    if (core->filter_criteria) {
        struct sl_filter *f = NULL;
        char errbuf[512] = "";
        if (sl_filter_compile(core->filter_criteria, &f, errbuf, sizeof(errbuf)) < 0) {
            config_error(cc, "%s: %s.FilterCriteria.%s", file, path,
                         errbuf[0] ? errbuf : "invalid filter criteria");
        }
        sl_filter_free(f);
    }
    const cJSON *sc = core->scaling_config;
    if (sc) {
        const cJSON *mcy = cJSON_GetObjectItemCaseSensitive(sc, "MaximumConcurrency");
        if (!cJSON_IsObject(sc)) {
            config_error(cc,
                         "%s: %s.ScalingConfig: not an object; allowed: "
                         "{\"MaximumConcurrency\": 1 to 1000}",
                         file, path);
        } else {
            for (const cJSON *c = sc->child; c; c = c->next) {
                if (strcmp(c->string, "MaximumConcurrency") != 0) {
                    config_error(cc,
                                 "%s: %s.ScalingConfig.%s: unknown key; allowed: "
                                 "MaximumConcurrency",
                                 file, path, c->string);
                }
            }
            if (mcy && (!cJSON_IsNumber(mcy) || mcy->valuedouble != (double)(int)mcy->valuedouble ||
                        mcy->valuedouble < 1 || mcy->valuedouble > 1000)) {
                char *v = cJSON_PrintUnformatted(mcy);
                config_error(cc,
                             "%s: %s.ScalingConfig.MaximumConcurrency: %s is not an integer "
                             "from 1 to 1000; allowed: 1 to 1000",
                             file, path, v ? v : "?");
                cJSON_free(v);
            } else if (mcy) {
                mc->max_concurrency = (int64_t)mcy->valuedouble;
            }
        }
    }
    if (core->tumbling_window_s != 0 && core->parallelization_factor != 1) {
        config_error(cc,
                     "%s: %s.TumblingWindowInSeconds: tumbling windows keep one state per "
                     "partition, so they need ParallelizationFactor 1 (it is %lld); allowed: "
                     "TumblingWindowInSeconds 0, or ParallelizationFactor 1",
                     file, path, (long long)core->parallelization_factor);
    }
}

/* A queue source (caps->model SL_DELIVERY_QUEUE) refuses the stream-only keys, as AWS does
 * for SQS (esm.md §1): a failed message goes back to the queue, whose redrive policy bounds
 * its receives and holds its dead-letter queue. A BatchSize above the kind's
 * window_required_above (SQS: 10) needs a batching window of at least 1 s, as AWS requires. */
static void config_queue_rules(struct config_ctx *cc,
                               const struct sl_mapping_conf *mc,
                               const cJSON *obj,
                               const char *path)
{
    const struct sl_source_caps *caps = mc->source->caps;
    const struct sl_mapping_core *core = &mc->core;
    if (caps->window_required_above > 0 && core->batch_size > caps->window_required_above &&
        core->window_ms < 1000) {
        config_error(cc,
                     "%s: %s.MaximumBatchingWindowInSeconds: a queue source with BatchSize %lld "
                     "(more than %lld) needs a batching window of at least 1 second (AWS's rule "
                     "for SQS); allowed: MaximumBatchingWindowInSeconds 1 to 300, or BatchSize 1 "
                     "to %lld",
                     cc->file, path, (long long)core->batch_size,
                     (long long)caps->window_required_above,
                     (long long)caps->window_required_above);
    }
    static const struct {
        const char *key;
        const char *why;
    } stream_only[] = {
        {"BisectBatchOnFunctionError", "a failed batch goes back to the queue whole"},
        {"MaximumRetryAttempts",
         "a failed message is received again, up to the redrive policy's maxReceiveCount"},
        {"MaximumRecordAgeInSeconds", "the queue's retention period bounds a message's age"},
        {"ParallelizationFactor", "concurrency is ScalingConfig.MaximumConcurrency"},
        {"TumblingWindowInSeconds", "queues have no tumbling windows"},
    };
    for (size_t i = 0; i < sizeof(stream_only) / sizeof(stream_only[0]); i++) {
        if (cJSON_GetObjectItemCaseSensitive(obj, stream_only[i].key)) {
            config_error(cc,
                         "%s: %s.%s: not supported for a queue source (AWS rejects it for SQS: "
                         "%s); allowed: remove it",
                         cc->file, path, stream_only[i].key, stream_only[i].why);
        }
    }
    const cJSON *dc = cJSON_GetObjectItemCaseSensitive(obj, "DestinationConfig");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(dc, "OnFailure");
    if (cJSON_GetObjectItemCaseSensitive(of, "Destination")) {
        config_error(cc,
                     "%s: %s.DestinationConfig.OnFailure: not supported for a queue source (AWS "
                     "rejects it for SQS: the queue's redrive policy and its dead-letter queue "
                     "take its place); allowed: remove it",
                     cc->file, path);
    }
}

/* Checks the keys whose rules depend on the source kind or on other keys. */
void config_rules_check(struct config_ctx *cc,
                        struct sl_mapping_conf *mc,
                        const cJSON *obj,
                        const char *path)
{
    const struct sl_source_ops *src = mc->source;
    struct sl_mapping_core *core = &mc->core;
    const char *file = cc->file;
    if (!cJSON_GetObjectItemCaseSensitive(obj, "MaximumBatchingWindowInSeconds")) {
        core->window_ms = src->caps->window_ms_default;
    }
    if (!cJSON_GetObjectItemCaseSensitive(obj, "max_records_buffered") &&
        src->caps->records_buffered_default > 0) {
        core->max_records_buffered = src->caps->records_buffered_default;
    }
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(obj, "BatchSize");
    if (!bs) {
        core->batch_size = src->caps->batch_size_default;
    } else if (core->batch_size > src->caps->batch_size_max) {
        config_error(cc, "%s: %s.BatchSize: %lld is out of range; allowed: 1 to %lld", file, path,
                     (long long)core->batch_size, (long long)src->caps->batch_size_max);
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(obj, "StartingPosition");
    if (!sp && src->caps->starting_position_required) {
        config_error(cc,
                     "%s: %s.StartingPosition: missing required key (for %s "
                     "sources); allowed: one of TRIM_HORIZON, LATEST, AT_TIMESTAMP",
                     file, path, src->name);
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(obj, "StartingPositionTimestamp");
    bool at_ts = sp && core->starting_position == SL_START_AT_TIMESTAMP;
    if (at_ts && !ts) {
        config_error(cc,
                     "%s: %s.StartingPositionTimestamp: missing required key (with "
                     "StartingPosition AT_TIMESTAMP); allowed: seconds since the epoch",
                     file, path);
    } else if (ts && sp && !at_ts) {
        config_error(cc,
                     "%s: %s.StartingPositionTimestamp: only used with "
                     "StartingPosition AT_TIMESTAMP; allowed: remove it, or set "
                     "StartingPosition to AT_TIMESTAMP",
                     file, path);
    } else if (ts && at_ts && core->starting_position_ts_s > (int64_t)time(NULL)) {
        config_error(cc,
                     "%s: %s.StartingPositionTimestamp: %lld is in the future; "
                     "allowed: a time up to now, in seconds since the epoch",
                     file, path, (long long)core->starting_position_ts_s);
    } else if (at_ts && !src->caps->at_timestamp_supported) {
        config_error(cc,
                     "%s: %s.StartingPosition: AT_TIMESTAMP is not supported by %s sources; "
                     "allowed: TRIM_HORIZON or LATEST",
                     file, path, src->name);
    }
    if (src->caps->model == SL_DELIVERY_QUEUE) {
        config_queue_rules(cc, mc, obj, path);
    }
    config_failure_rules(cc, mc, path);
}

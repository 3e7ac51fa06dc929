/* SPDX-License-Identifier: Apache-2.0 */
/* config_stream_sink.c: a delivery stream's SinkDestinationConfiguration, sluice's own
 * destination beside Firehose's (named as Firehose names its destinations): each record of a
 * delivered object becomes one message or entry of a sink, the same sinks the mappings'
 * on-failure destinations use: kafka://TOPIC (with BootstrapServers, and librdkafka settings
 * under "rdkafka"), redis://[user:password@]host:port/db/STREAM or .../db/list/NAME. It owns
 * the keys' table and rules: the destination checked by its sink (sl_sink_for, check), the
 * cluster given to a sink that needs one (a capability of the sink, uses_source_cluster, not its
 * name), the sink's own options (DestinationOptions) checked against its table as sl_sink_open
 * will apply them, BufferingHints as the other destinations take them. Every error names the
 * JSON path; a destination's password is never shown (sl_url_redact). Called by
 * config_stream.c; reports through config_error.c. Main thread, at start-up. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

#include "sink.h"
#include "url.h"

struct stream_sink_keys {
    char *destination;
    char *bootstrap;
    struct sl_strmap rdkafka;
    cJSON *hints;
    cJSON *options;
    cJSON *processing;
    cJSON *logging;
};

#define KEYS_OFF(f) offsetof(struct stream_sink_keys, f)

const struct sl_opt sl_config_stream_sink_opts[] = {
    {"Destination", SL_OPT_STR, NULL, 0, -1, KEYS_OFF(destination), SL_OPT_REQUIRED, NULL,
     "Where each record goes, as one message or entry: kafka://TOPIC (one message per record, "
     "idempotent producer, acks=all), redis://[user:password@]host:port/db/STREAM[?maxlen=N] "
     "(XADD, field data) or redis://[user:password@]host:port/db/list/NAME (RPUSH); the "
     "password may be ${VAR}."},
    {"BufferingHints", SL_OPT_JSON, NULL, 0, -1, KEYS_OFF(hints), 0, NULL,
     "{\"SizeInMBs\": N, \"IntervalInSeconds\": S}: as for the other destinations."},
    {"BootstrapServers", SL_OPT_STR, NULL, 0, -1, KEYS_OFF(bootstrap), 0, NULL,
     "kafka://: the cluster's host:port list (librdkafka's bootstrap.servers); required there, "
     "refused elsewhere."},
    {"rdkafka", SL_OPT_STRMAP, NULL, 0, -1, KEYS_OFF(rdkafka), 0, NULL,
     "kafka://: librdkafka client settings (security.protocol, sasl.*, ssl.*: values may be "
     "${VAR}), as a Kafka source's."},
    {"DestinationOptions", SL_OPT_JSON, NULL, 0, -1, KEYS_OFF(options), 0, NULL,
     "The sink's own options: the keys of its \"Sink\" table (kafka: delivery_timeout; redis: "
     "maxlen, max_document_bytes, connect_timeout, command_timeout)."},
    {"ProcessingConfiguration", SL_OPT_JSON, NULL, 0, -1, KEYS_OFF(processing), 0, NULL,
     "Transforms are not built for this destination: only {\"Enabled\": false}."},
    {"CloudWatchLoggingOptions", SL_OPT_JSON, NULL, 0, -1, KEYS_OFF(logging), 0, NULL,
     "Accepted and ignored (sluice logs to stderr)."},
    {0},
};

/* The sink's options, checked as sl_sink_open will apply them (config_sink.c does the same
 * for mappings), except a cluster of the sink's own (the stream names it in BootstrapServers).
 * Returns 0, SL_ECONFIG (reported) or SL_ENOMEM. */
static int stream_sink_check_options(struct config_ctx *cc,
                                     const struct sl_sink_ops *sink,
                                     const cJSON *opts,
                                     const char *spath)
{
    static const struct sl_opt none[] = {{0}};
    const struct sl_opt *table = sink->opts ? sink->opts : none;
    void *scratch = sl_calloc(1, sink->ctx_size);
    char path[256];
    (void)snprintf(path, sizeof(path), "%s.DestinationOptions", spath);
    if (!scratch) {
        return SL_ENOMEM;
    }
    struct sl_opt_target t = {.table = table, .base = scratch};
    int r = sl_opt_apply(&t, 1, opts, cc->file, path, cc->errs);
    char why[512] = "";
    if (r == 0 && sink->own_cluster_opt && cJSON_IsObject(opts) &&
        cJSON_GetObjectItemCaseSensitive(opts, sink->own_cluster_opt)) {
        config_error(cc,
                     "%s: %s.%s: a mapping's option; allowed: the cluster in BootstrapServers "
                     "(and rdkafka) beside Destination",
                     cc->file, path, sink->own_cluster_opt);
        r = SL_ECONFIG;
    } else if (r == 0 && sink->check_opts && sink->check_opts(scratch, why, sizeof(why)) < 0) {
        config_error(cc, "%s: %s.%s", cc->file, path, why);
        r = SL_ECONFIG;
    }
    sl_opt_free(table, scratch);
    sl_free(scratch);
    cc->failed = cc->failed || r == SL_ECONFIG;
    return r;
}

/* Destination, the cluster and the options: into k. */
static int stream_sink_check(struct config_ctx *cc,
                             struct sl_stream_sink_conf *k,
                             struct stream_sink_keys *keys,
                             const char *spath)
{
    const char *dest = keys->destination;
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(dest, shown, sizeof(shown));
    const struct sl_sink_ops *sink = sl_sink_for(dest);
    char errbuf[1024] = "";
    if (!sink) {
        int r = config_error_left_out(cc, spath, "Destination", dest, false);
        if (r < 0) {
            return r == SL_ENOMEM ? r : 0;
        }
        config_error(cc,
                     "%s: %s.Destination: \"%s\" is not a destination sluice can write; "
                     "allowed: %s",
                     cc->file, spath, shown, config_error_destinations());
        return 0;
    }
    if (sink->check(dest, errbuf, sizeof(errbuf)) < 0) {
        config_error(cc, "%s: %s.Destination: %s", cc->file, spath, errbuf);
        return 0;
    }
    k->ops = sink;
    if (sink->uses_source_cluster && !keys->bootstrap) {
        config_error(cc,
                     "%s: %s.BootstrapServers: missing; allowed: the cluster %s writes to, as "
                     "\"host:port,host:port\"",
                     cc->file, spath, shown);
    } else if (!sink->uses_source_cluster && (keys->bootstrap || keys->rdkafka.n > 0)) {
        config_error(cc,
                     "%s: %s.%s: not used by %s; allowed: BootstrapServers and rdkafka only "
                     "with a kafka:// Destination",
                     cc->file, spath, keys->bootstrap ? "BootstrapServers" : "rdkafka", shown);
    } else if (sink->uses_source_cluster) {
        if (keys->bootstrap[0] == '\0' || strchr(keys->bootstrap, ' ')) {
            config_error(cc,
                         "%s: %s.BootstrapServers: \"%s\" is not a list of servers; allowed: "
                         "\"host:port,host:port\" without spaces",
                         cc->file, spath, keys->bootstrap);
        }
        if (sl_strmap_get(&keys->rdkafka, "bootstrap.servers")) {
            config_error(cc,
                         "%s: %s.rdkafka.bootstrap.servers: set twice; allowed: only "
                         "BootstrapServers",
                         cc->file, spath);
        }
        /* the settings first, then the servers: one map for the client (kafka_conf.c) */
        k->cluster = keys->rdkafka;
        keys->rdkafka = (struct sl_strmap){0};
        if (sl_strmap_put(&k->cluster, "bootstrap.servers", keys->bootstrap) < 0) {
            return SL_ENOMEM;
        }
        /* A Firehose record may be 1,000 KiB, over librdkafka's default message.max.bytes
         * (1,000,000): 1 MiB takes any record and stays under a broker's default limit. */
        if (!sl_strmap_get(&k->cluster, "message.max.bytes") &&
            sl_strmap_put(&k->cluster, "message.max.bytes", "1048576") < 0) {
            return SL_ENOMEM;
        }
    }
    if (keys->options) {
        int r = stream_sink_check_options(cc, sink, keys->options, spath);
        if (r == SL_ENOMEM) {
            return r;
        }
        k->options = keys->options;
        keys->options = NULL;
    }
    return 0;
}

int config_stream_sink_load(struct config_ctx *cc,
                            struct sl_stream_conf *sc,
                            const cJSON *obj,
                            const char *path)
{
    char spath[192];
    (void)snprintf(spath, sizeof(spath), "%s.SinkDestinationConfiguration", path);
    if (!cJSON_IsObject(obj)) {
        config_error(cc,
                     "%s: %s: not an object; allowed: an object with Destination (kafka://TOPIC "
                     "or redis://host:port/db/STREAM)",
                     cc->file, spath);
        return sl_opt_defaults(sl_config_stream_hints_opts, sc);
    }
    struct stream_sink_keys keys = {0};
    struct sl_opt_target t = {.table = sl_config_stream_sink_opts, .base = &keys};
    int r = sl_opt_apply(&t, 1, obj, cc->file, spath, cc->errs);
    if (r == SL_ENOMEM) {
        goto done;
    }
    cc->failed = cc->failed || r < 0;
    char hpath[224];
    (void)snprintf(hpath, sizeof(hpath), "%s.BufferingHints", spath);
    if (keys.hints) {
        struct sl_opt_target ht = {.table = sl_config_stream_hints_opts, .base = sc};
        r = sl_opt_apply(&ht, 1, keys.hints, cc->file, hpath, cc->errs);
        cc->failed = cc->failed || r < 0;
    } else {
        r = sl_opt_defaults(sl_config_stream_hints_opts, sc);
    }
    if (r == SL_ENOMEM) {
        goto done;
    }
    r = 0;
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(keys.processing, "Enabled");
    if (keys.processing && !(cJSON_IsObject(keys.processing) && cJSON_IsFalse(en))) {
        config_error(cc,
                     "%s: %s.ProcessingConfiguration: transforms are not built for this "
                     "destination; allowed: {\"Enabled\": false} or no key",
                     cc->file, spath);
    }
    if (!keys.destination) {
        goto done; /* reported by the table */
    }
    sc->sink = sl_calloc(1, sizeof(*sc->sink));
    if (!sc->sink || !(sc->sink->destination = sl_strdup(keys.destination))) {
        r = SL_ENOMEM;
        goto done;
    }
    r = stream_sink_check(cc, sc->sink, &keys, spath);
done:
    sl_opt_free(sl_config_stream_sink_opts, &keys);
    return r;
}

void config_stream_sink_fini(struct sl_stream_conf *sc)
{
    if (!sc->sink) {
        return;
    }
    sl_free(sc->sink->destination);
    sl_strmap_clear(&sc->sink->cluster, true);
    cJSON_Delete(sc->sink->options);
    sl_free(sc->sink);
    sc->sink = NULL;
}

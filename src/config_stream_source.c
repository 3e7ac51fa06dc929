/* SPDX-License-Identifier: Apache-2.0 */
/* config_stream_source.c: where a delivery stream's records come from, in the configuration.
 * It owns DeliveryStreamType and KinesisStreamSourceConfiguration (a KinesisStreamAsSource
 * stream becomes a mapping of that Kinesis stream into the stream: config_mapping.c loads it,
 * stream_feed.c runs it, from LATEST as Firehose reads), and the link between a mapping whose
 * FunctionName is a delivery stream's ARN and that stream, with what such a mapping may not ask
 * (a window, partial batch responses). Apart from config_stream.c's destinations because the
 * source is the only part of an entry that makes mappings. Reports through config_error.c;
 * called by config_stream.c and config.c. Main thread, at start-up. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

#include "registry.h"
#include "source.h"

#define CONF_OFF(f) offsetof(struct sl_stream_conf, f)

/* KinesisStreamSourceConfiguration, into struct sl_stream_conf. */
const struct sl_opt sl_config_stream_kinesis_opts[] = {
    {"KinesisStreamARN", SL_OPT_STR, NULL, 0, -1, CONF_OFF(kinesis_arn), SL_OPT_REQUIRED, NULL,
     "arn:aws:kinesis:REGION:ACCOUNT:stream/NAME: read as a Kinesis mapping reads it (the same "
     "endpoint and credentials: AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL), every shard, "
     "parents before children, KPL aggregates split, from LATEST at the first start and from "
     "the checkpoint after; each shard's checkpoint moves once its records are in the spool."},
    {"RoleARN", SL_OPT_STR, NULL, 0, -1, CONF_OFF(kinesis_role_arn), 0, NULL,
     "Accepted and kept; sluice assumes no role."},
    {0},
};

enum { STREAM_DIRECT_PUT, STREAM_KINESIS_SOURCE }; /* DeliveryStreamType's first two values */

/* The KinesisStreamARN's problems, checked by the Kinesis source itself (its ARN rules), each
 * reported at path.KinesisStreamARN. */
static int stream_check_kinesis_arn(struct config_ctx *cc, const char *arn, const char *kpath)
{
    const struct sl_source_ops *src = sl_source_for_arn(arn);
    if (!src || strcmp(src->name, "kinesis") != 0) {
        int r = config_error_left_out(cc, kpath, "KinesisStreamARN", arn, true);
        if (r != 0) {
            return r;
        }
        config_error(cc,
                     "%s: %s.KinesisStreamARN: \"%s\" is not a Kinesis stream ARN; allowed: "
                     "arn:aws:kinesis:REGION:ACCOUNT:stream/NAME",
                     cc->file, kpath, arn);
        return SL_ECONFIG;
    }
    void *ctx = sl_calloc(1, src->ctx_size);
    if (!ctx || sl_opt_defaults(src->opts, ctx) < 0) {
        sl_free(ctx);
        return SL_ENOMEM;
    }
    char err[1024] = "";
    int r = src->check(ctx, arn, err, sizeof(err));
    sl_opt_free(src->opts, ctx);
    sl_free(ctx);
    if (r == SL_ENOMEM || r == 0) {
        return r;
    }
    static const char key[] = "EventSourceArn: ";
    for (const char *line = err; *line;) {
        size_t n = strcspn(line, "\n");
        bool keyed = strncmp(line, key, sizeof(key) - 1) == 0;
        size_t skip = keyed ? sizeof(key) - 1 : 0;
        config_error(cc, "%s: %s.KinesisStreamARN: %.*s", cc->file, kpath, (int)(n - skip),
                     line + skip);
        line += n;
        line += *line == '\n';
    }
    return SL_ECONFIG;
}

/* The mapping that reads a KinesisStreamAsSource stream's Kinesis stream into it (stream_feed.c):
 * Firehose's reading (from LATEST, KPL aggregates split, GetRecords about once a second per
 * shard) under every mapping rule; its records go in as they are, with their metadata. Errors
 * are reported at kpath. */
static int stream_add_kinesis_mapping(struct config_ctx *cc,
                                      const struct sl_stream_conf *sc,
                                      const char *kpath)
{
    struct sl_buf fn;
    sl_buf_init(&fn);
    int r = sl_buf_printf(&fn, "arn:aws:firehose:%s:000000000000:deliverystream/%s",
                          cc->cfg->region ? cc->cfg->region : "us-east-1", sc->name);
    cJSON *m = r == 0 ? cJSON_CreateObject() : NULL;
    if (!m || !cJSON_AddStringToObject(m, "EventSourceArn", sc->kinesis_arn) ||
        !cJSON_AddStringToObject(m, "FunctionName", fn.data) ||
        !cJSON_AddStringToObject(m, "StartingPosition", "LATEST") ||
        !cJSON_AddNumberToObject(m, "BatchSize", 10000) ||
        !cJSON_AddBoolToObject(m, "deaggregate", true)) {
        r = SL_ENOMEM;
    }
    if (r == 0) {
        r = config_mapping_add(cc, m, kpath);
    }
    if (r == 0) {
        cc->cfg->mappings[cc->cfg->n_mappings - 1].stream_source = true;
    }
    cJSON_Delete(m);
    sl_buf_fini(&fn);
    return r;
}

/* DeliveryStreamType and its source: DirectPut (nothing to read) or KinesisStreamAsSource with
 * its KinesisStreamSourceConfiguration. */
int config_stream_load_source(
    struct config_ctx *cc, struct sl_stream_conf *sc, int type, const cJSON *ksc, const char *path)
{
    char kpath[128];
    (void)snprintf(kpath, sizeof(kpath), "%s.KinesisStreamSourceConfiguration", path);
    if (type != STREAM_DIRECT_PUT && type != STREAM_KINESIS_SOURCE) {
        config_error(cc,
                     "%s: %s.DeliveryStreamType: not built; allowed: DirectPut (records put "
                     "through the Firehose API) or KinesisStreamAsSource (with "
                     "KinesisStreamSourceConfiguration)",
                     cc->file, path);
        return SL_ECONFIG;
    }
    if (type == STREAM_DIRECT_PUT) {
        if (ksc) {
            config_error(cc,
                         "%s: %s: only with DeliveryStreamType KinesisStreamAsSource; allowed: "
                         "\"DeliveryStreamType\": \"KinesisStreamAsSource\", or no key",
                         cc->file, kpath);
            return SL_ECONFIG;
        }
        return 0;
    }
    if (!cJSON_IsObject(ksc)) {
        config_error(cc,
                     "%s: %s: %s; allowed: an object with KinesisStreamARN "
                     "(arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) and RoleARN",
                     cc->file, kpath, ksc ? "not an object" : "missing (KinesisStreamAsSource)");
        return SL_ECONFIG;
    }
    struct sl_opt_target t = {.table = sl_config_stream_kinesis_opts, .base = sc};
    int r = sl_opt_apply(&t, 1, ksc, cc->file, kpath, cc->errs);
    if (r < 0 || !sc->kinesis_arn) {
        cc->failed = cc->failed || r != SL_ENOMEM;
        return r == SL_ENOMEM ? r : SL_ECONFIG;
    }
    r = stream_check_kinesis_arn(cc, sc->kinesis_arn, kpath);
    if (r < 0 || !sc->name) {
        return r;
    }
    return stream_add_kinesis_mapping(cc, sc, kpath);
}

int config_stream_link_mappings(struct config_ctx *cc)
{
    const struct sl_config *cfg = cc->cfg;
    int result = 0;
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        struct sl_mapping_conf *mc = &cfg->mappings[i];
        if (!mc->delivery_stream) {
            continue;
        }
        size_t j = 0;
        while (j < cfg->n_streams &&
               (!cfg->streams[j].name || strcmp(cfg->streams[j].name, mc->delivery_stream) != 0)) {
            j++;
        }
        const char *why = NULL;
        if (j == cfg->n_streams) {
            why = "names no delivery stream; allowed: the ARN of one of \"delivery_streams\" "
                  "(arn:aws:firehose:REGION:ACCOUNT:deliverystream/DeliveryStreamName)";
        } else if (cfg->streams[j].kinesis_arn && !mc->stream_source) {
            why = "is a KinesisStreamAsSource stream, which takes records only from its Kinesis "
                  "stream; allowed: a DirectPut stream";
        }
        if (why) {
            config_error(cc, "%s: %s.FunctionName: \"%s\" %s", cc->file, mc->path,
                         mc->core.function_name, why);
            result = SL_ECONFIG;
            continue;
        }
        mc->stream_index = j;
        /* The stream takes records, not an event: what only a function's answer means. */
        if (mc->core.tumbling_window_s > 0) {
            config_error(cc,
                         "%s: %s.TumblingWindowInSeconds: a delivery stream keeps no window "
                         "state; allowed: 0 or no key",
                         cc->file, mc->path);
            result = SL_ECONFIG;
        }
        if (mc->report_item_failures) {
            config_error(cc,
                         "%s: %s.FunctionResponseTypes: a delivery stream takes a batch whole; "
                         "allowed: [] or no key",
                         cc->file, mc->path);
            result = SL_ECONFIG;
        }
    }
    return result;
}

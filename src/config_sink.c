/* SPDX-License-Identifier: Apache-2.0 */
/* config_sink.c: a mapping's destination_options, the options of its on-failure destination's
 * sink. Once the mappings are loaded (DestinationConfig checked, the sink that serves it known),
 * it checks each mapping's destination_options against that sink's option table, as sl_sink_open
 * will apply them: unknown keys (with the sink's allowed keys), types and ranges, then the
 * sink's own rules over them together (check_opts: a kafka:// destination's cluster), each
 * error naming the file and the JSON path. It opens nothing and keeps nothing: the options reach
 * the sink when the mapping opens its destination (onfailure.c). Called by config.c; reports
 * through config_error.c. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

#include "sink.h"

/* Checks mc's destination_options. Returns 0, SL_ECONFIG (reported) or SL_ENOMEM. */
static int config_sink_check(struct config_ctx *cc, const struct sl_mapping_conf *mc)
{
    const cJSON *opts = mc->core.destination_options;
    if (!opts) {
        return 0;
    }
    if (!mc->on_failure) {
        const cJSON *dest = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(mc->core.destination_config, "OnFailure"),
            "Destination");
        if (dest) {
            return 0; /* a destination that was refused: reported already */
        }
        config_error(cc,
                     "%s: %s.destination_options: no on-failure destination to apply them to; "
                     "allowed: only beside DestinationConfig.OnFailure.Destination",
                     cc->file, mc->path);
        return SL_ECONFIG;
    }
    const struct sl_sink_ops *sink = sl_sink_for(mc->on_failure);
    static const struct sl_opt none[] = {{0}};
    void *scratch = sl_calloc(1, sink->ctx_size);
    struct sl_buf path;
    sl_buf_init(&path);
    if (!scratch || sl_buf_printf(&path, "%s.destination_options", mc->path) < 0) {
        sl_free(scratch);
        sl_buf_fini(&path);
        return SL_ENOMEM;
    }
    const struct sl_opt *table = sink->opts ? sink->opts : none;
    struct sl_opt_target t = {.table = table, .base = scratch};
    int r = sl_opt_apply(&t, 1, opts, cc->file, path.data, cc->errs);
    char why[512] = "";
    if (r == 0 && sink->check_opts && sink->check_opts(scratch, why, sizeof(why)) < 0) {
        config_error(cc, "%s: %s.%s", cc->file, path.data, why);
        r = SL_ECONFIG;
    }
    sl_opt_free(table, scratch);
    sl_free(scratch);
    sl_buf_fini(&path);
    if (r == SL_ECONFIG) {
        cc->failed = true;
    }
    return r;
}

int config_sink_check_all(struct config_ctx *cc)
{
    int result = 0;
    for (size_t i = 0; i < cc->cfg->n_mappings; i++) {
        int r = config_sink_check(cc, &cc->cfg->mappings[i]);
        if (r == SL_ENOMEM) {
            return r;
        }
        result = result < 0 ? result : r;
    }
    return result;
}

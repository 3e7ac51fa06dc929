/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: loading the configuration file, the top of the loader. It owns the order of a load
 * (read, parse, refuse \u0000, expand ${VAR}, the daemon keys, the functions, the mappings, their
 * destinations' options, the delivery streams), the
 * region from the environment, and freeing struct sl_config. Every problem is collected, never
 * only the first, so `sluice validate` lists them all; each names the file, the JSON path, the
 * bad value and what is allowed. The layers below: config_read.c (text and JSON),
 * config_function.c, config_mapping.c (> config_rules.c), config_sink.c, config_stream.c, and
 * config_error.c under
 * them all; the
 * option tables are config_opts.c's. It builds struct sl_config and nothing else: no logging
 * (the CLI prints the errors), no state beyond the returned config. Called once at start-up,
 * from the main thread, before the loop runs. */
#include "config_int.h"

#include <stdlib.h>
#include <string.h>

#include "ckpt_redis.h"
#include "httpd.h"

/* The structural top-level keys, applied with the daemon table so that unknown top-level keys
 * are reported against all of them. Not printed as options (see sl_config_print_options). */
struct config_top {
    cJSON *functions;
    cJSON *mappings;
    cJSON *streams;
};

static const struct sl_opt config_top_opts[] = {
    {"functions", SL_OPT_JSON, NULL, 0, -1, offsetof(struct config_top, functions), 0, NULL,
     "Functions by name."},
    {"mappings", SL_OPT_JSON, NULL, 0, -1, offsetof(struct config_top, mappings), 0, NULL,
     "Event source mappings."},
    {"delivery_streams", SL_OPT_JSON, NULL, 0, -1, offsetof(struct config_top, streams), 0, NULL,
     "Firehose-style delivery streams."},
    {0},
};

/* ------------------------------------------------------------------------------------------ */
/* Loading */

/* checkpoint_store, when given, must be a Redis URL the store takes. */
static int config_check_store(struct config_ctx *cc)
{
    if (!cc->cfg->checkpoint_store) {
        return 0;
    }
    char why[600] = "";
    int r = ckpt_redis_check_url(cc->cfg->checkpoint_store, why, sizeof(why));
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        config_error(cc, "%s: $.checkpoint_store: %s", cc->file, why);
    }
    return 0;
}

/* `listen` must be host:port even when nothing needs the server, so a typo shows at once. */
static int config_check_listen(struct config_ctx *cc)
{
    char *host = NULL;
    int port = 0;
    char why[160] = "";
    int r = sl_httpd_parse_listen(cc->cfg->listen, &host, &port, why, sizeof(why));
    sl_free(host);
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        config_error(cc, "%s: $.listen: %s; allowed: host:port like \"127.0.0.1:4573\"", cc->file,
                     why);
    }
    return 0;
}

int sl_config_load(const char *file, struct sl_config **ret_cfg, struct sl_errlist *errs)
{
    size_t errs_before = errs->n;
    char *text = NULL;
    cJSON *root = NULL;
    struct config_top top = {0};
    struct config_ctx cc = {.file = file, .errs = errs};
    int r;

    cc.cfg = sl_calloc(1, sizeof(*cc.cfg));
    if (!cc.cfg) {
        return SL_ENOMEM;
    }
    cc.cfg->file = sl_strdup(file);
    if (!cc.cfg->file) {
        r = SL_ENOMEM;
        goto fail;
    }
    r = config_read_file(file, &text, errs);
    if (r < 0) {
        goto fail;
    }
    root = config_read_parse(file, text, errs);
    if (!root) {
        r = SL_ECONFIG;
        goto fail;
    }
    r = config_read_find_nul(file, text, errs);
    if (r == SL_ENOMEM) {
        goto fail;
    }
    cc.failed = r < 0;
    r = config_read_expand(root, "$", file, errs);
    cc.failed = cc.failed || r < 0;
    if (r == SL_ENOMEM) {
        goto fail;
    }
    /* Validation goes on after expansion errors: a variable that is not set leaves its
     * "${...}" text in place, which is still a string of the expected type. */
    struct sl_opt_target targets[] = {
        {.table = sl_config_daemon_opts, .base = cc.cfg},
        {.table = config_top_opts, .base = &top},
    };
    r = sl_opt_apply(targets, SL_ARRAY_LEN(targets), root, file, "$", errs);
    cc.failed = cc.failed || r < 0;
    if (r == SL_ENOMEM) {
        goto fail;
    }
    if (!cJSON_GetObjectItemCaseSensitive(root, "region")) {
        const char *env_region = getenv("AWS_REGION");
        if (!env_region || !*env_region) {
            env_region = getenv("AWS_DEFAULT_REGION");
        }
        if (env_region && *env_region) {
            char *s = sl_strdup(env_region);
            if (!s) {
                r = SL_ENOMEM;
                goto fail;
            }
            sl_free(cc.cfg->region);
            cc.cfg->region = s;
        }
    }
    if (cJSON_IsObject(root)) {
        cc.functions = top.functions;
        r = config_function_load_all(&cc, top.functions);
        if (r == SL_ENOMEM) {
            goto fail;
        }
        if (top.mappings) {
            r = config_mapping_load_all(&cc, top.mappings);
            if (r == SL_ENOMEM) {
                goto fail;
            }
            r = config_sink_check_all(&cc);
            if (r == SL_ENOMEM) {
                goto fail;
            }
        }
        if (top.streams) {
            r = config_stream_load_all(&cc, top.streams);
            if (r == SL_ENOMEM) {
                goto fail;
            }
        }
        r = config_stream_link_mappings(&cc);
        if (r == SL_ENOMEM) {
            goto fail;
        }
        if (!top.mappings && !top.streams) {
            config_error(&cc,
                         "%s: $.mappings: missing required key; allowed: an array of mappings, "
                         "or \"delivery_streams\" (or both)",
                         file);
        }
        r = config_check_listen(&cc);
        if (r == 0) {
            r = config_check_store(&cc);
        }
        if (r == SL_ENOMEM) {
            goto fail;
        }
    }
    r = (cc.failed || errs->n > errs_before) ? SL_ECONFIG : 0;
    if (r < 0) {
        goto fail;
    }
    sl_free(cc.fn_index);
    sl_opt_free(config_top_opts, &top);
    cJSON_Delete(root);
    sl_free(text);
    *ret_cfg = cc.cfg;
    return 0;

fail:
    sl_free(cc.fn_index);
    sl_opt_free(config_top_opts, &top);
    cJSON_Delete(root);
    sl_free(text);
    sl_config_free(cc.cfg);
    return r == SL_ENOMEM ? SL_ENOMEM : SL_ECONFIG;
}

void sl_config_free(struct sl_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        struct sl_mapping_conf *mc = &cfg->mappings[i];
        sl_opt_free(sl_config_mapping_opts, &mc->core);
        cJSON_Delete(mc->json);
        sl_free(mc->path);
        sl_free(mc->delivery_stream);
    }
    sl_free(cfg->mappings);
    for (size_t i = 0; i < cfg->n_streams; i++) {
        config_stream_fini(&cfg->streams[i]);
    }
    sl_free(cfg->streams);
    for (size_t i = 0; i < cfg->n_functions; i++) {
        config_function_fini(&cfg->functions[i]);
    }
    sl_free(cfg->functions);
    sl_opt_free(sl_config_daemon_opts, cfg);
    sl_free(cfg->file);
    sl_free(cfg);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* config_function.c: the "functions" of the configuration: each one's type, its type's option
 * table and check, duplicate and empty names, and the function a mapping's FunctionName
 * resolves to (a key of "functions", or a Lambda function made up when a Lambda endpoint is
 * set). It fills cfg->functions; the mappings (config_mapping.c) only ask it to resolve a name.
 */
#include "config_int.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "function.h"
#include "registry.h"

/* ------------------------------------------------------------------------------------------ */
/* Functions */

void config_function_fini(struct sl_function_conf *fc)
{
    sl_free(fc->name);
    sl_free(fc->path);
    cJSON_Delete(fc->json);
}

/* Adds an empty entry to cfg->functions and returns it, or NULL on OOM. */
static struct sl_function_conf *config_function_add(struct config_ctx *cc)
{
    struct sl_config *cfg = cc->cfg;
    if (cfg->n_functions == cc->cap_functions) {
        size_t cap = cc->cap_functions ? cc->cap_functions * 2 : 4;
        struct sl_function_conf *fns = sl_realloc(cfg->functions, cap * sizeof(*fns));
        if (!fns) {
            return NULL;
        }
        cfg->functions = fns;
        cc->cap_functions = cap;
    }
    struct sl_function_conf *fc = &cfg->functions[cfg->n_functions++];
    memset(fc, 0, sizeof(*fc));
    return fc;
}

static void config_append_types(struct sl_buf *b, int *r)
{
    size_t n;
    const struct sl_function_ops *const *types = sl_function_types(&n);
    for (size_t i = 0; i < n; i++) {
        *r |= sl_buf_printf(b, "%s%s", i ? ", " : "", types[i]->name);
    }
}

/* Applies obj (the function's object; "type" is skipped) to a scratch ctx of ops and runs
 * ops->check. Returns 0, SL_ECONFIG (errors added) or SL_ENOMEM. */
static int config_function_check(struct config_ctx *cc,
                                 const struct sl_function_ops *ops,
                                 const cJSON *obj,
                                 const char *path)
{
    cJSON *opts = cJSON_Duplicate(obj, 1);
    void *ctx = sl_calloc(1, ops->ctx_size);
    int r = (opts && ctx) ? 0 : SL_ENOMEM;
    if (r == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(opts, "type");
        struct sl_opt_target t = {.table = ops->opts, .base = ctx};
        r = sl_opt_apply(&t, 1, opts, cc->file, path, cc->errs);
        cc->failed = cc->failed || r < 0;
        if (r == 0) {
            char errbuf[4096] = "";
            r = ops->check(ctx, errbuf, sizeof(errbuf));
            if (r == SL_ENOMEM) {
                /* reported below */
            } else if (r < 0) {
                config_error_check_lines(cc, path, ops->opts, NULL, errbuf, r);
                r = SL_ECONFIG;
            }
        }
        sl_opt_free(ops->opts, ctx);
    }
    sl_free(ctx);
    cJSON_Delete(opts);
    return r;
}

static int config_load_function(struct config_ctx *cc, const cJSON *obj)
{
    struct sl_buf path;
    sl_buf_init(&path);
    int r = sl_buf_printf(&path, "$.functions.%s", obj->string);
    if (r < 0) {
        return SL_ENOMEM;
    }
    const struct sl_function_ops *ops = NULL;
    if (!cJSON_IsObject(obj)) {
        config_error(cc, "%s: %s: not an object; allowed: an object with \"type\"", cc->file,
                     path.data);
        r = SL_ECONFIG;
        goto done;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (cJSON_IsString(type)) {
        ops = sl_function_type(type->valuestring);
    }
    if (!ops) {
        struct sl_buf b;
        int e = 0;
        sl_buf_init(&b);
        e |= sl_buf_printf(&b, "%s: %s.type: ", cc->file, path.data);
        if (!type) {
            e |= sl_buf_puts(&b, "missing required key");
        } else {
            char *v = cJSON_PrintUnformatted(type);
            e |= v ? sl_buf_printf(&b, "%s is not a function type", v) : SL_ENOMEM;
            cJSON_free(v);
        }
        e |= sl_buf_puts(&b, "; allowed: ");
        config_append_types(&b, &e);
        if (e == 0) {
            config_error(cc, "%s", b.data);
        }
        sl_buf_fini(&b);
        r = e ? SL_ENOMEM : SL_ECONFIG;
        goto done;
    }
    r = config_function_check(cc, ops, obj, path.data);
    if (r == SL_ENOMEM) {
        goto done;
    }
    struct sl_function_conf *fc = config_function_add(cc);
    if (!fc) {
        r = SL_ENOMEM;
        goto done;
    }
    fc->ops = ops;
    fc->name = sl_strdup(obj->string);
    fc->json = cJSON_Duplicate(obj, 1);
    fc->path = sl_buf_steal(&path);
    if (!fc->name || !fc->json || !fc->path) {
        r = SL_ENOMEM;
    }
done:
    sl_buf_fini(&path);
    return r;
}

int config_function_load_all(struct config_ctx *cc, const cJSON *fns)
{
    if (!fns) {
        return 0;
    }
    if (!cJSON_IsObject(fns)) {
        config_error(cc,
                     "%s: $.functions: not an object; allowed: an object of "
                     "functions by name",
                     cc->file);
        return SL_ECONFIG;
    }
    int result = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, fns)
    {
        bool dup = false;
        for (const cJSON *d = fns->child; d != c; d = d->next) {
            dup = dup || strcmp(d->string, c->string) == 0;
        }
        int r;
        if (dup) {
            config_error(cc, "%s: $.functions.%s: duplicate key; allowed: each name once", cc->file,
                         c->string);
            r = SL_ECONFIG;
        } else if (c->string[0] == '\0') {
            config_error(cc,
                         "%s: $.functions: empty function name; allowed: a "
                         "non-empty name",
                         cc->file);
            r = SL_ECONFIG;
        } else {
            r = config_load_function(cc, c);
        }
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }
    return result;
}

static size_t config_function_find(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_functions; i++) {
        if (strcmp(cfg->functions[i].name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Finds the function a mapping names, synthesizing a lambda function when FunctionName is not
 * in "functions" and a Lambda endpoint is set. Returns 0 with *ret_index, SL_ECONFIG or
 * SL_ENOMEM. */
int config_function_resolve(struct config_ctx *cc,
                            const char *name,
                            const char *mapping_path,
                            size_t *ret_index)
{
    struct sl_buf key;
    sl_buf_init(&key);
    if (sl_buf_printf(&key, "%s.FunctionName", mapping_path) < 0) {
        return SL_ENOMEM;
    }
    int r = config_function_resolve_at(cc, name, key.data, ret_index);
    sl_buf_fini(&key);
    return r;
}

int config_function_resolve_at(struct config_ctx *cc,
                               const char *name,
                               const char *key_path,
                               size_t *ret_index)
{
    struct sl_config *cfg = cc->cfg;
    size_t i = config_function_find(cfg, name);
    if (i != SIZE_MAX) {
        *ret_index = i;
        return 0;
    }
    /* Declared but invalid, or "functions" itself is invalid: those errors say why. */
    if (cc->functions &&
        (!cJSON_IsObject(cc->functions) || cJSON_GetObjectItemCaseSensitive(cc->functions, name))) {
        return SL_ECONFIG;
    }
    const char *endpoint = getenv("AWS_ENDPOINT_URL_LAMBDA");
    if (!endpoint || !*endpoint) {
        endpoint = getenv("AWS_ENDPOINT_URL");
    }
    if (!endpoint || !*endpoint) {
        struct sl_buf b;
        int e = 0;
        sl_buf_init(&b);
        cJSON *qs = cJSON_CreateString(name);
        char *q = qs ? cJSON_PrintUnformatted(qs) : NULL;
        cJSON_Delete(qs);
        e |= q ? 0 : SL_ENOMEM;
        e |= sl_buf_printf(&b,
                           "%s: %s: %s is not in \"functions\" and neither "
                           "AWS_ENDPOINT_URL_LAMBDA nor AWS_ENDPOINT_URL is set; allowed: ",
                           cc->file, key_path, q ? q : "");
        cJSON_free(q);
        int k = 0;
        const cJSON *fn;
        const cJSON *declared = cc->functions;
        cJSON_ArrayForEach(fn, declared)
        {
            e |= sl_buf_printf(&b, "%s%s", k++ ? ", " : "one of ", fn->string);
        }
        if (k == 0) {
            e |= sl_buf_puts(&b, "a key of \"functions\" (there are none)");
        }
        e |= sl_buf_puts(&b, ", or a Lambda function with AWS_ENDPOINT_URL_LAMBDA set");
        if (e == 0) {
            config_error(cc, "%s", b.data);
        }
        sl_buf_fini(&b);
        return e ? SL_ENOMEM : SL_ECONFIG;
    }
    const struct sl_function_ops *ops = sl_function_type("lambda");
    assert(ops);
    cJSON *json = cJSON_CreateObject();
    int r = json ? 0 : SL_ENOMEM;
    if (r == 0 && (!cJSON_AddStringToObject(json, "type", "lambda") ||
                   !cJSON_AddStringToObject(json, "endpoint", endpoint) ||
                   !cJSON_AddStringToObject(json, "function_name", name))) {
        r = SL_ENOMEM;
    }
    struct sl_buf path;
    sl_buf_init(&path);
    if (r == 0 && sl_buf_puts(&path, key_path) < 0) {
        r = SL_ENOMEM;
    }
    if (r == 0) {
        r = config_function_check(cc, ops, json, path.data);
    }
    struct sl_function_conf *fc = r == SL_ENOMEM ? NULL : config_function_add(cc);
    if (fc) {
        fc->ops = ops;
        fc->name = sl_strdup(name);
        fc->json = json;
        json = NULL;
        fc->path = sl_buf_steal(&path);
        if (!fc->name || !fc->path) {
            r = SL_ENOMEM;
        }
        *ret_index = cfg->n_functions - 1;
    } else {
        r = SL_ENOMEM;
    }
    cJSON_Delete(json);
    sl_buf_fini(&path);
    return r;
}

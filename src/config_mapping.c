/* SPDX-License-Identifier: Apache-2.0 */
/* config_mapping.c: the "mappings" of the configuration: for each one, the source its
 * EventSourceArn names (or, without one, every source's table so that only keys no table knows
 * are reported), the shared AWS-named table and the source's table applied together, the
 * source's check, the rules of the core keys (config_rules.c), the function it names, and its
 * UUID (given, or derived from EventSourceArn and FunctionName so that other settings can change
 * without losing the checkpoints), unique across mappings. */
#include "config_int.h"

#include <ctype.h>
#include <string.h>

#include "hash.h"
#include "registry.h"
#include "source.h"
#include "url.h"

#define CONFIG_UUID_MAX 128

/* ------------------------------------------------------------------------------------------ */
/* Mappings */

/* Derives a UUID-shaped id from what identifies a mapping: its EventSourceArn and its
 * FunctionName (AWS maps a function to a source once, and keeps the UUID when other settings
 * change, so editing BatchSize must not start a new mapping from its StartingPosition). Hashed
 * by two FNV-1a passes with different bases, each finished with a 64-bit mixer. Version nibble
 * 8 and variant 10 mark it as a custom (RFC 9562 version 8) UUID. Not a cryptographic hash; it
 * only has to be stable and to tell mappings apart. */
static int config_derive_uuid(const struct sl_mapping_core *core, char **ret_uuid)
{
    struct sl_buf text;
    sl_buf_init(&text);
    if (sl_buf_printf(&text, "%s\n%s", core->event_source_arn ? core->event_source_arn : "",
                      core->function_name ? core->function_name : "") < 0) {
        sl_buf_fini(&text);
        return SL_ENOMEM;
    }
    uint64_t h1 = sl_hash_mix(sl_hash_fnv1a(text.data, text.len, SL_HASH_FNV1A_BASIS));
    uint64_t h2 =
        sl_hash_mix(sl_hash_fnv1a(text.data, text.len, UINT64_C(0x84222325cbf29ce4)) ^ h1);
    sl_buf_fini(&text);
    h1 = (h1 & ~(UINT64_C(0xf) << 12)) | (UINT64_C(0x8) << 12);
    h2 = (h2 & ~(UINT64_C(0x3) << 62)) | (UINT64_C(0x2) << 62);
    char buf[37];
    (void)snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h1 >> 32),
                   (unsigned)((h1 >> 16) & 0xffff), (unsigned)(h1 & 0xffff), (unsigned)(h2 >> 48),
                   (unsigned long long)(h2 & UINT64_C(0xffffffffffff)));
    *ret_uuid = sl_strdup(buf);
    return *ret_uuid ? 0 : SL_ENOMEM;
}

static bool config_uuid_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CONFIG_UUID_MAX || s[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') {
            return false;
        }
    }
    return true;
}

/* Appends what EventSourceArn may be: each compiled-in source's forms ("file:///path or glob, an
 * arn:aws:kafka: ARN, or ..."). */
static void config_arn_forms(struct sl_buf *b, int *r)
{
    size_t n;
    const struct sl_source_ops *const *all = sl_source_all(&n);
    for (size_t i = 0; i < n; i++) {
        *r |= sl_buf_printf(b, "%s%s", i ? ", " : "", all[i]->arn_forms);
    }
}

/* Reports a mapping that names no source: "EventSourceArn: missing required key". */
static int config_no_source(struct config_ctx *cc, const char *path)
{
    struct sl_buf b;
    int e = 0;
    sl_buf_init(&b);
    e |=
        sl_buf_printf(&b, "%s: %s.EventSourceArn: missing required key; allowed: ", cc->file, path);
    config_arn_forms(&b, &e);
    if (e == 0) {
        config_error(cc, "%s", b.data);
    }
    sl_buf_fini(&b);
    cc->failed = true; /* the load fails even without memory for the message */
    return e ? SL_ENOMEM : SL_ECONFIG;
}

/* The delivery stream's name in a FunctionName of the form
 * arn:aws:firehose:REGION:ACCOUNT:deliverystream/NAME, else NULL. */
static const char *config_stream_target(const char *fn)
{
    static const char prefix[] = "arn:aws:firehose:";
    static const char kind[] = ":deliverystream/";
    if (strncmp(fn, prefix, sizeof(prefix) - 1) != 0) {
        return NULL;
    }
    const char *k = strstr(fn, kind);
    return k ? k + sizeof(kind) - 1 : NULL;
}

/* Loads mappings[idx] from obj; path names it in messages (NULL: "$.mappings[idx]"). */
static int
config_load_mapping(struct config_ctx *cc, const cJSON *obj, size_t idx, const char *path_in)
{
    struct sl_config *cfg = cc->cfg;
    struct sl_mapping_conf *mc = &cfg->mappings[idx];
    cc->fn_index[idx] = SIZE_MAX;
    struct sl_buf pb;
    sl_buf_init(&pb);
    int pr = path_in ? sl_buf_puts(&pb, path_in) : sl_buf_printf(&pb, "$.mappings[%zu]", idx);
    if (pr < 0) {
        return SL_ENOMEM;
    }
    mc->path = sl_buf_steal(&pb);
    mc->json = cJSON_Duplicate(obj, 1);
    if (!mc->path || !mc->json) {
        return SL_ENOMEM;
    }
    const char *path = mc->path;
    if (!cJSON_IsObject(obj)) {
        config_error(cc,
                     "%s: %s: not an object; allowed: an object with EventSourceArn "
                     "and FunctionName",
                     cc->file, path);
        return SL_ECONFIG;
    }

    /* The source comes from the ARN; without one, keys are checked against every source's
     * table so that only keys no table knows are reported. */
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(obj, "EventSourceArn");
    const struct sl_source_ops *src = NULL;
    int result = 0;
    char *smk_arn = NULL;
    if (!arn) {
        /* A source may be named by other keys (self-managed Kafka has no ARN: AWS names the
         * cluster by its bootstrap servers); the sources say which. */
        const char *key = NULL;
        int r = sl_registry_arn_from_mapping(obj, &smk_arn, &key);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (smk_arn) {
            r = config_error_left_out(cc, path, key, smk_arn, true);
            if (r < 0) {
                sl_free(smk_arn);
                return r; /* the one error a mapping of a left-out source gets */
            }
            src = sl_source_for_arn(smk_arn);
        } else {
            r = config_no_source(cc, path);
            if (r == SL_ENOMEM) {
                return r;
            }
            result = r;
        }
    } else if (cJSON_IsString(arn)) {
        int r = config_error_left_out(cc, path, "EventSourceArn", arn->valuestring, true);
        if (r < 0) {
            return r; /* the one error a mapping of a left-out source gets */
        }
        src = sl_source_for_arn(arn->valuestring);
        if (!src) {
            struct sl_buf b;
            int e = 0;
            sl_buf_init(&b);
            /* Shown redacted: a URL of a source to come may carry credentials (url.h). */
            char shown[SL_URL_REDACTED_MAX];
            cJSON *qs = cJSON_CreateString(sl_url_redact(arn->valuestring, shown, sizeof(shown)));
            char *q = qs ? cJSON_PrintUnformatted(qs) : NULL;
            cJSON_Delete(qs);
            e |= q ? 0 : SL_ENOMEM;
            e |= sl_buf_printf(&b, "%s: %s.EventSourceArn: %s has an unknown scheme; allowed: ",
                               cc->file, path, q ? q : "");
            cJSON_free(q);
            config_error_schemes(&b, &e);
            if (e == 0) {
                config_error(cc, "%s", b.data);
            }
            sl_buf_fini(&b);
            if (e) {
                return SL_ENOMEM;
            }
            result = SL_ECONFIG;
        }
    }
    size_t n_src;
    const struct sl_source_ops *const *all = sl_source_all(&n_src);
    const struct sl_source_ops *const *use = src ? &src : all;
    size_t n_use = src ? 1 : n_src;
    struct sl_opt_target *targets = sl_calloc(n_use + 1, sizeof(*targets));
    if (!targets) {
        return SL_ENOMEM;
    }
    targets[0] = (struct sl_opt_target){.table = sl_config_mapping_opts, .base = &mc->core};
    int r = 0;
    for (size_t i = 0; i < n_use; i++) {
        targets[i + 1].table = use[i]->opts;
        targets[i + 1].lenient = src == NULL;
        targets[i + 1].base = sl_calloc(1, use[i]->ctx_size);
        if (!targets[i + 1].base) {
            r = SL_ENOMEM;
        }
    }
    if (r == 0) {
        r = sl_opt_apply(targets, n_use + 1, obj, cc->file, path, cc->errs);
        cc->failed = cc->failed || r < 0;
    }
    if (r == 0 && smk_arn && !mc->core.event_source_arn) {
        mc->core.event_source_arn = smk_arn;
        smk_arn = NULL;
    }
    sl_free(smk_arn);
    if (r == 0 && src) {
        char errbuf[1024] = "";
        r = src->check(targets[1].base, mc->core.event_source_arn, errbuf, sizeof(errbuf));
        if (r < 0 && r != SL_ENOMEM) {
            config_error_check_lines(cc, path, src->opts, sl_config_mapping_opts, errbuf, r);
            r = SL_ECONFIG;
        }
    }
    for (size_t i = 0; i < n_use; i++) {
        if (targets[i + 1].base) {
            sl_opt_free(use[i]->opts, targets[i + 1].base);
            sl_free(targets[i + 1].base);
        }
    }
    sl_free(targets);
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        result = r;
    }
    mc->source = src;
    if (src) {
        bool before = cc->failed;
        cc->failed = false;
        config_rules_check(cc, mc, obj, path);
        if (cc->failed) {
            result = SL_ECONFIG;
        }
        cc->failed = cc->failed || before;
    }

    const char *target =
        mc->core.function_name ? config_stream_target(mc->core.function_name) : NULL;
    if (target) {
        /* A delivery stream: config_stream_link_mappings finds it once the streams are read. */
        mc->delivery_stream = sl_strdup(target);
        if (!mc->delivery_stream) {
            return SL_ENOMEM;
        }
    } else if (mc->core.function_name) {
        r = config_function_resolve(cc, mc->core.function_name, path, &cc->fn_index[idx]);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }

    if (!cJSON_GetObjectItemCaseSensitive(obj, "UUID")) {
        sl_free(mc->core.uuid);
        mc->core.uuid = NULL;
        if (config_derive_uuid(&mc->core, &mc->core.uuid) < 0) {
            return SL_ENOMEM;
        }
        mc->uuid_derived = true;
    } else if (mc->core.uuid && !config_uuid_valid(mc->core.uuid)) {
        config_error(cc,
                     "%s: %s.UUID: \"%s\" is not a valid id; allowed: 1 to %d of "
                     "A-Z a-z 0-9 . _ - (not starting with .)",
                     cc->file, path, mc->core.uuid, CONFIG_UUID_MAX);
        result = SL_ECONFIG;
    }
    return result;
}

/* Reports mappings from..n_mappings-1 whose UUID an earlier mapping has. */
static int config_check_uuids(struct config_ctx *cc, size_t from)
{
    const struct sl_config *cfg = cc->cfg;
    int result = 0;
    for (size_t i = from; i < cfg->n_mappings; i++) {
        const struct sl_mapping_conf *a = &cfg->mappings[i];
        for (size_t j = 0; a->core.uuid && j < i; j++) {
            const struct sl_mapping_conf *b = &cfg->mappings[j];
            if (!b->core.uuid || strcmp(a->core.uuid, b->core.uuid) != 0) {
                continue;
            }
            if (a->uuid_derived && b->uuid_derived) {
                config_error(
                    cc,
                    "%s: %s: same EventSourceArn and FunctionName as %s (derived UUID %s); "
                    "allowed: a different UUID for each",
                    cc->file, a->path, b->path, a->core.uuid);
            } else {
                config_error(cc,
                             "%s: %s.UUID: \"%s\" is also the UUID of %s; allowed: "
                             "a UUID no other mapping has",
                             cc->file, a->path, a->core.uuid, b->path);
            }
            result = SL_ECONFIG;
            break;
        }
    }
    return result;
}

int config_mapping_load_all(struct config_ctx *cc, const cJSON *maps)
{
    struct sl_config *cfg = cc->cfg;
    if (!cJSON_IsArray(maps) || cJSON_GetArraySize(maps) < 1) {
        config_error(cc,
                     "%s: $.mappings: %s; allowed: an array of at least one "
                     "mapping object",
                     cc->file, cJSON_IsArray(maps) ? "is empty" : "is not an array");
        return SL_ECONFIG;
    }
    size_t n = (size_t)cJSON_GetArraySize(maps);
    cfg->mappings = sl_calloc(n, sizeof(*cfg->mappings));
    cc->fn_index = sl_calloc(n, sizeof(*cc->fn_index));
    if (!cfg->mappings || !cc->fn_index) {
        return SL_ENOMEM;
    }
    int result = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, maps)
    {
        size_t idx = cfg->n_mappings++;
        int r = config_load_mapping(cc, m, idx, NULL);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }
    /* cfg->functions may have moved while lambda functions were added; link only now. */
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (cc->fn_index[i] != SIZE_MAX) {
            cfg->mappings[i].function = &cfg->functions[cc->fn_index[i]];
        }
    }
    int r = config_check_uuids(cc, 0);
    return r < 0 ? r : result;
}

int config_mapping_add(struct config_ctx *cc, const cJSON *obj, const char *path)
{
    struct sl_config *cfg = cc->cfg;
    size_t idx = cfg->n_mappings;
    struct sl_mapping_conf *maps = sl_realloc(cfg->mappings, (idx + 1) * sizeof(*maps));
    if (!maps) {
        return SL_ENOMEM;
    }
    cfg->mappings = maps;
    size_t *fi = sl_realloc(cc->fn_index, (idx + 1) * sizeof(*fi));
    if (!fi) {
        return SL_ENOMEM;
    }
    cc->fn_index = fi;
    memset(&maps[idx], 0, sizeof(maps[idx]));
    cfg->n_mappings++;
    int r = config_load_mapping(cc, obj, idx, path);
    if (r == SL_ENOMEM) {
        return r;
    }
    if (cc->fn_index[idx] != SIZE_MAX) {
        maps[idx].function = &cfg->functions[cc->fn_index[idx]];
    }
    int u = config_check_uuids(cc, idx);
    return r < 0 ? r : u;
}

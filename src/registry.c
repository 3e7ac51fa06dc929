/* SPDX-License-Identifier: Apache-2.0 */
/* registry.c: the compiled-in source adapters and function types, and lookup by ARN scheme or
 * type name. The source list is the generated sl_adapters.h (meson.build writes it from the
 * feature options): adding a source means its file and its line in meson.build. It also knows
 * the adapters a build may leave out and the schemes they would serve, so that a configuration
 * naming one gets "this sluice was built without Kafka" and not "unknown scheme". */
#include "registry.h"

#include <string.h>
#include <strings.h>

#include "function.h"
#include "sl_adapters.h"
#include "source.h"

#define REGISTRY_SOURCE(name) &sl_source_##name,
static const struct sl_source_ops *const registry_sources[] = {SL_SOURCES(REGISTRY_SOURCE)};
#undef REGISTRY_SOURCE

static const struct sl_function_ops *const registry_functions[] = {
    &sl_function_exec,
    &sl_function_http,
    &sl_function_lambda,
};

/* The adapters a meson feature option can leave out, with the prefixes of the source ARNs and
 * destinations they serve. */
static const struct sl_registry_feature registry_features[] = {
    {"kafka", "Kafka", "librdkafka", SL_HAVE_KAFKA, {"kafka://", "arn:aws:kafka:", NULL}},
};

#define REGISTRY_NAME(name) " " #name
static const char registry_sources_built[] = SL_SOURCES(REGISTRY_NAME);
static const char registry_sinks_built[] = SL_SINKS(REGISTRY_NAME);
#undef REGISTRY_NAME

const struct sl_source_ops *const *sl_source_all(size_t *ret_n)
{
    *ret_n = SL_ARRAY_LEN(registry_sources);
    return registry_sources;
}

const struct sl_source_ops *sl_source_for_arn(const char *arn)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_sources); i++) {
        const char *scheme = registry_sources[i]->scheme;
        const char *prefix = registry_sources[i]->arn_prefix;
        if (strncmp(arn, scheme, strlen(scheme)) == 0 ||
            (prefix && strncmp(arn, prefix, strlen(prefix)) == 0)) {
            return registry_sources[i];
        }
    }
    return NULL;
}

const struct sl_registry_feature *sl_registry_left_out(const char *uri)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_features); i++) {
        const struct sl_registry_feature *f = &registry_features[i];
        for (size_t j = 0; !f->built && f->prefixes[j]; j++) {
            if (strncasecmp(uri, f->prefixes[j], strlen(f->prefixes[j])) == 0) {
                return f;
            }
        }
    }
    return NULL;
}

const char *sl_registry_sources_built(void)
{
    return registry_sources_built + 1;
}

const char *sl_registry_sinks_built(void)
{
    return registry_sinks_built + 1;
}

const struct sl_function_ops *const *sl_function_types(size_t *ret_n)
{
    *ret_n = SL_ARRAY_LEN(registry_functions);
    return registry_functions;
}

const struct sl_function_ops *sl_function_type(const char *name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_functions); i++) {
        if (strcmp(registry_functions[i]->name, name) == 0) {
            return registry_functions[i];
        }
    }
    return NULL;
}

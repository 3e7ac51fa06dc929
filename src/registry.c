/* SPDX-License-Identifier: Apache-2.0 */
/* registry.c: the compiled-in source adapters and function types, and lookup by ARN scheme or
 * type name. Adding an adapter means one line here and its file in meson.build. */
#include <string.h>

#include "function.h"
#include "source.h"

static const struct sl_source_ops *const registry_sources[] = {
    &sl_source_file,
    &sl_source_kafka,
};

static const struct sl_function_ops *const registry_functions[] = {
    &sl_function_exec,
    &sl_function_http,
    &sl_function_lambda,
};

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

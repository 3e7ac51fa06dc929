/* SPDX-License-Identifier: Apache-2.0 */
/* registry.h: what this build of sluice has. The compiled-in lists themselves are declared
 * beside their types (source.h, sinks/sink.h, function.h); this names the adapters a build
 * can leave out (meson feature options), so that a configuration using one is told which
 * feature is missing rather than that its scheme is unknown. Pure; any thread. */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"

/* An adapter a meson feature option can leave out. */
struct sl_registry_feature {
    const char *option;       /* the meson option: "kafka" */
    const char *title;        /* for messages: "Kafka" */
    const char *library;      /* what building it needs: "librdkafka" */
    bool built;               /* in this build */
    const char *prefixes[3];  /* of the URIs it serves, matched without case; NULL-terminated */
    const char *destinations; /* the on-failure destinations it adds, as errors list them */
    /* Its sources' arn_from_mapping (built even when the adapter is not), or NULL. */
    int (*arn_from_mapping)(const cJSON *mapping, char **ret_arn, const char **ret_key);
    bool has_source; /* it brings a source (Kafka, Kinesis), not only a destination (Redis) */
};

/* When uri (an EventSourceArn, a self-managed "kafka://" source or an on-failure destination)
 * belongs to an adapter this build left out, returns that adapter's feature (static); else
 * NULL. Borrows uri. */
const struct sl_registry_feature *sl_registry_left_out(const char *uri);

/* For a mapping without EventSourceArn: the ARN a source derives from its other keys (owned, in
 * *ret_arn, NULL when none does) and the key it came from (*ret_key, static). Asks the
 * compiled-in sources and the adapters this build left out, so that such a mapping of a left-out
 * adapter is told so. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int
sl_registry_arn_from_mapping(const cJSON *mapping, char **ret_arn, const char **ret_key);

/* The on-failure destinations this build can write, as errors list what is allowed
 * ("file:///dir, http(s)://..., ..."), static. */
const char *sl_registry_destinations(void);

/* The names of the compiled-in source adapters, then of the sinks, each list space-separated
 * ("file kafka"), static: for `sluice version`. */
const char *sl_registry_sources_built(void);
const char *sl_registry_sinks_built(void);

#endif

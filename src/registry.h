/* SPDX-License-Identifier: Apache-2.0 */
/* registry.h: what this build of sluice has. The compiled-in lists themselves are declared
 * beside their types (source.h, sinks/sink.h, function.h); this names the adapters a build
 * can leave out (meson feature options), so that a configuration using one is told which
 * feature is missing rather than that its scheme is unknown. Pure; any thread. */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <stdbool.h>

/* An adapter a meson feature option can leave out. */
struct sl_registry_feature {
    const char *option;      /* the meson option: "kafka" */
    const char *title;       /* for messages: "Kafka" */
    const char *library;     /* what building it needs: "librdkafka" */
    bool built;              /* in this build */
    const char *prefixes[3]; /* of the URIs it serves, matched without case; NULL-terminated */
};

/* When uri (an EventSourceArn, a self-managed "kafka://" source or an on-failure destination)
 * belongs to an adapter this build left out, returns that adapter's feature (static); else
 * NULL. Borrows uri. */
const struct sl_registry_feature *sl_registry_left_out(const char *uri);

/* The names of the compiled-in source adapters, then of the sinks, each list space-separated
 * ("file kafka"), static: for `sluice version`. */
const char *sl_registry_sources_built(void);
const char *sl_registry_sinks_built(void);

#endif

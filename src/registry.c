/* SPDX-License-Identifier: Apache-2.0 */
/* registry.c: the compiled-in source adapters and function types, and lookup by ARN scheme or
 * type name. The source list is the generated sl_adapters.h (meson.build writes it from the
 * feature options): adding a source means its file and its line in meson.build. It also knows
 * the adapters a build may leave out and the schemes they would serve, so that a configuration
 * naming one gets "this sluice was built without Kafka" and not "unknown scheme". It hands out
 * each source's ops completed with the defaults of its optional operations (filled once), so the
 * core never tests a slot for NULL. Nothing here reads a record's position: positions are the
 * adapters' bytes, and the operations on them (compare_pos, format_pos, format_item_id) are
 * required. */
#include "registry.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "encoder.h"
#include "kafka/kafka_mapping.h"
#include "function.h"
#include "sl_adapters.h"
#include "source.h"
#include "url.h"

#define REGISTRY_SOURCE(name) &sl_source_##name,
static const struct sl_source_ops *const registry_given[] = {SL_SOURCES(REGISTRY_SOURCE)};
#undef REGISTRY_SOURCE

/* The adapters' ops completed with the defaults below, filled once at the first lookup: what
 * the registry hands out. */
static struct sl_source_ops registry_filled[SL_ARRAY_LEN(registry_given)];
static struct sl_event_format registry_events[SL_ARRAY_LEN(registry_given)];
static const struct sl_source_ops *registry_sources[SL_ARRAY_LEN(registry_given)];
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static const struct sl_function_ops *const registry_functions[] = {
    &sl_function_exec,
    &sl_function_http,
    &sl_function_lambda,
};

/* The adapters a meson feature option can leave out, with the prefixes of the source ARNs and
 * destinations they serve, the destinations they add, and the rules of theirs that need no
 * library (sources/kafka/kafka_mapping.c), so that their mappings read the same in a build
 * without them. */
static const struct sl_registry_feature registry_features[] = {
    {"kafka",
     "Kafka",
     "librdkafka",
     SL_HAVE_KAFKA,
     {"kafka://", "arn:aws:kafka:", NULL},
     "kafka://TOPIC",
     kafka_mapping_arn,
     true},
    {"kinesis",
     "Kinesis",
     "no library beyond the core's",
     SL_HAVE_KINESIS,
     {"arn:aws:kinesis:", NULL, NULL},
     NULL,
     NULL,
     true},
    {"redis",
     "Redis",
     "hiredis (libhiredis-dev)",
     SL_HAVE_REDIS,
     {"redis://", "rediss://", NULL},
     "redis://HOST:PORT/DB/STREAM, redis://HOST:PORT/DB/list/NAME",
     NULL,
     false},
};

/* The destinations every build can write; each built feature adds its own. */
#define REGISTRY_DESTINATIONS                                                       \
    "file:///dir, http(s)://..., arn:aws:sqs:REGION:ACCOUNT:QUEUE or an SQS queue " \
    "URL"
static char registry_destinations[256];

#define REGISTRY_NAME(name) " " #name
static const char registry_sources_built[] = SL_SOURCES(REGISTRY_NAME);
static const char registry_sinks_built[] = SL_SINKS(REGISTRY_NAME);
#undef REGISTRY_NAME

/* --- the defaults of the optional source operations (what "May be NULL:" in source.h says) --- */

static size_t source_def_record_key(void *ctx,
                                    struct sl_part *part,
                                    const struct sl_record *rec,
                                    const char **ret_key)
{
    (void)ctx;
    (void)part;
    (void)rec;
    *ret_key = "";
    return 0;
}

/* Never called: a mapping with FilterCriteria is refused when the source cannot filter. */
static cJSON *source_def_filter_doc(void *ctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)ctx;
    (void)part;
    (void)rec;
    return NULL;
}

static bool source_def_settling(void *ctx)
{
    (void)ctx;
    return false;
}

static int64_t source_def_lag(void *ctx, struct sl_part *part)
{
    (void)ctx;
    (void)part;
    return -1;
}

static void source_def_ack(void *ctx, struct sl_part *part, const struct sl_record *last)
{
    (void)ctx;
    (void)part;
    (void)last;
}

static void source_def_part_release(void *ctx, struct sl_part *part)
{
    (void)ctx;
    (void)part;
}

static void source_def_offer_again(void *ctx)
{
    (void)ctx;
}

static int
source_def_client_props(void *ctx, struct sl_strmap *ret_props, char *errbuf, size_t errlen)
{
    (void)ctx;
    (void)ret_props;
    (void)errbuf;
    (void)errlen;
    return 0;
}

static int source_def_arn_from_mapping(const cJSON *mapping, char **ret_arn, const char **ret_key)
{
    (void)mapping;
    *ret_arn = NULL;
    *ret_key = "EventSourceArn";
    return 0;
}

static int source_def_check_destination(
    bool same_source, const cJSON *mapping, const char *destination, char *errbuf, size_t errlen)
{
    (void)same_source;
    (void)mapping;
    char shown[SL_URL_REDACTED_MAX];
    (void)snprintf(errbuf, errlen,
                   "\"%s\": its source kind has no cluster a destination can share; allowed: "
                   "%s",
                   sl_url_redact(destination, shown, sizeof(shown)), REGISTRY_DESTINATIONS);
    return SL_ECONFIG;
}

static const char *source_def_read_item_id(const cJSON *id, char *buf, size_t len)
{
    (void)id;
    (void)buf;
    (void)len;
    return NULL;
}

static void source_def_stop(void *ctx)
{
    (void)ctx;
}

/* The queue model's defaults: for stream sources, which never get these calls. A queue source
 * must give its own (test_registry checks it); should one be missing, an acknowledgement is
 * refused rather than dropped, and a release or hold leaves the lease to run out, so a message
 * is at worst delivered again, never lost. */
static int source_def_queue_ack(void *ctx, struct sl_part *part, const uint64_t *leases, size_t n)
{
    (void)ctx;
    (void)part;
    (void)leases;
    (void)n;
    return SL_EINVAL;
}

static int source_def_queue_release(
    void *ctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t visible_in_ms)
{
    (void)ctx;
    (void)part;
    (void)leases;
    (void)n;
    (void)visible_in_ms;
    return 0;
}

static int source_def_queue_hold(
    void *ctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t until_ms)
{
    (void)ctx;
    (void)part;
    (void)leases;
    (void)n;
    (void)until_ms;
    return 0;
}

static bool source_def_queue_idle(void *ctx)
{
    (void)ctx;
    return true;
}

static void source_def_queue_limits(void *ctx, struct sl_queue_limits *lim)
{
    (void)ctx;
    (void)lim;
}

#define SOURCE_DEFAULT(ops, slot)            \
    do {                                     \
        if (!(ops)->slot) {                  \
            (ops)->slot = source_def_##slot; \
        }                                    \
    } while (0)

/* An adapter that declares no capabilities is a stream with AWS's stream defaults. */
static const struct sl_source_caps source_def_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .lag_unit = SL_LAG_RECORDS,
};

const char *sl_lag_unit_name(enum sl_lag_unit unit)
{
    static const char *const names[SL_LAG_UNIT_COUNT] = {
        [SL_LAG_RECORDS] = "records",
        [SL_LAG_BYTES] = "bytes",
        [SL_LAG_MS] = "ms",
    };
    return (unsigned)unit < SL_LAG_UNIT_COUNT ? names[unit] : "?";
}

const char *sl_queue_report_name(enum sl_queue_report report)
{
    static const char *const names[SL_QUEUE_REPORT_COUNT] = {
        [SL_QUEUE_ACKED] = "acked",
        [SL_QUEUE_ACK_FAILED] = "ack_failed",
        [SL_QUEUE_LEASE_LOST] = "lease_lost",
    };
    return (unsigned)report < SL_QUEUE_REPORT_COUNT ? names[report] : "?";
}

void sl_source_ops_complete(struct sl_source_ops *ops, struct sl_event_format *ret_event)
{
    /* Required: positions are the adapter's bytes, which no default could read. */
    assert(ops->compare_pos && ops->format_pos && ops->format_item_id);
    if (!ops->caps) {
        ops->caps = &source_def_caps;
    }
    ops->filters = ops->filter_doc != NULL;
    ops->shares_cluster = ops->client_props != NULL;
    SOURCE_DEFAULT(ops, record_key);
    SOURCE_DEFAULT(ops, filter_doc);
    SOURCE_DEFAULT(ops, settling);
    SOURCE_DEFAULT(ops, lag);
    SOURCE_DEFAULT(ops, ack);
    SOURCE_DEFAULT(ops, part_release);
    SOURCE_DEFAULT(ops, client_props);
    SOURCE_DEFAULT(ops, offer_again);
    SOURCE_DEFAULT(ops, stop);
    SOURCE_DEFAULT(ops, arn_from_mapping);
    SOURCE_DEFAULT(ops, check_destination);
    SOURCE_DEFAULT(ops, read_item_id);
    if (!ops->arn_forms) {
        ops->arn_forms = ops->scheme;
    }
    SOURCE_DEFAULT(ops, queue_ack);
    SOURCE_DEFAULT(ops, queue_release);
    SOURCE_DEFAULT(ops, queue_hold);
    SOURCE_DEFAULT(ops, queue_idle);
    SOURCE_DEFAULT(ops, queue_limits);
    assert(ops->event);
    *ret_event = *ops->event;
    sl_event_format_complete(ret_event);
    ops->event = ret_event;
}

#undef SOURCE_DEFAULT

static void registry_fill(void)
{
    size_t len = (size_t)snprintf(registry_destinations, sizeof(registry_destinations), "%s",
                                  REGISTRY_DESTINATIONS);
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_features); i++) {
        const struct sl_registry_feature *f = &registry_features[i];
        if (f->built && f->destinations && len < sizeof(registry_destinations)) {
            len += (size_t)snprintf(registry_destinations + len,
                                    sizeof(registry_destinations) - len, ", %s", f->destinations);
        }
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_given); i++) {
        registry_filled[i] = *registry_given[i];
        sl_source_ops_complete(&registry_filled[i], &registry_events[i]);
        registry_sources[i] = &registry_filled[i];
    }
}

const struct sl_source_ops *const *sl_source_all(size_t *ret_n)
{
    (void)pthread_once(&registry_once, registry_fill);
    *ret_n = SL_ARRAY_LEN(registry_sources);
    return registry_sources;
}

/* The one extra source a unit test may register (tests/unit/fake_stream.c), completed like the
 * others; served after them. Not in sl_source_all(). */
static struct sl_source_ops registry_extra;
static struct sl_event_format registry_extra_event;
static bool registry_has_extra;

void sl_source_register_extra(const struct sl_source_ops *ops)
{
    registry_has_extra = ops != NULL;
    if (ops) {
        registry_extra = *ops;
        sl_source_ops_complete(&registry_extra, &registry_extra_event);
    }
}

const struct sl_source_ops *sl_source_for_arn(const char *arn)
{
    (void)pthread_once(&registry_once, registry_fill);
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_sources); i++) {
        const char *scheme = registry_sources[i]->scheme;
        const char *prefix = registry_sources[i]->arn_prefix;
        if (strncmp(arn, scheme, strlen(scheme)) == 0 ||
            (prefix && strncmp(arn, prefix, strlen(prefix)) == 0)) {
            return registry_sources[i];
        }
    }
    const char *extra = registry_extra.scheme;
    if (registry_has_extra && strncmp(arn, extra, strlen(extra)) == 0) {
        return &registry_extra;
    }
    return NULL;
}

int sl_registry_arn_from_mapping(const cJSON *mapping, char **ret_arn, const char **ret_key)
{
    (void)pthread_once(&registry_once, registry_fill);
    *ret_arn = NULL;
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_sources); i++) {
        int r = registry_sources[i]->arn_from_mapping(mapping, ret_arn, ret_key);
        if (r < 0 || *ret_arn) {
            return r;
        }
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(registry_features); i++) {
        const struct sl_registry_feature *f = &registry_features[i];
        if (!f->built && f->arn_from_mapping) {
            int r = f->arn_from_mapping(mapping, ret_arn, ret_key);
            if (r < 0 || *ret_arn) {
                return r;
            }
        }
    }
    return 0;
}

const char *sl_registry_destinations(void)
{
    (void)pthread_once(&registry_once, registry_fill);
    return registry_destinations;
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

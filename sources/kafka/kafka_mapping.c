/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_mapping.c: what the configuration and the invoker must know about a Kafka mapping,
 * kept with the adapter instead of in the core: how AWS names a self-managed cluster that has
 * no ARN (SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS), which on-failure
 * destinations may be on the source's own cluster (kafka://TOPIC: only for Kafka mappings, and
 * never a topic the mapping reads; any mapping whose destination_options name a cluster is not
 * asked), and Kafka's second itemIdentifier form in partial batch
 * responses. It needs no librdkafka, so it is built even when the adapter is left out (the
 * registry then still tells a self-managed Kafka mapping that Kafka is missing). Pure functions
 * over the JSON they are given; any thread; no logging. */
#include "kafka_mapping.h"

#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "err.h"
#include "url.h"

#define KAFKA_MAPPING_SCHEME     "kafka://"
#define KAFKA_MAPPING_SCHEME_LEN 8

/* Self-managed Kafka has no ARN: AWS names the cluster by its bootstrap servers. *ret_arn is
 * NULL when the mapping has none; the source's check judges the servers' shape. */
int kafka_mapping_arn(const cJSON *mapping, char **ret_arn, const char **ret_key)
{
    *ret_arn = NULL;
    *ret_key = "SelfManagedEventSource";
    const cJSON *sme = cJSON_GetObjectItemCaseSensitive(mapping, "SelfManagedEventSource");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(sme, "Endpoints");
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive(ep, "KAFKA_BOOTSTRAP_SERVERS");
    if (!cJSON_IsArray(servers) || !servers->child) {
        return 0;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, KAFKA_MAPPING_SCHEME);
    for (const cJSON *s = servers->child; s && r == 0; s = s->next) {
        if (cJSON_IsString(s)) {
            r = sl_buf_printf(&b, "%s%s", s == servers->child ? "" : ",", s->valuestring);
        }
    }
    if (r < 0) {
        sl_buf_fini(&b);
        return r;
    }
    *ret_arn = sl_buf_steal(&b);
    return *ret_arn ? 0 : SL_ENOMEM;
}

/* True when destination is kafka://T and T is one of the mapping's Topics. */
static bool kafka_mapping_is_source_topic(const cJSON *mapping, const char *destination)
{
    if (strncmp(destination, KAFKA_MAPPING_SCHEME, KAFKA_MAPPING_SCHEME_LEN) != 0) {
        return false;
    }
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(mapping, "Topics");
    for (const cJSON *t = topics ? topics->child : NULL; t; t = t->next) {
        if (cJSON_IsString(t) &&
            strcmp(t->valuestring, destination + KAFKA_MAPPING_SCHEME_LEN) == 0) {
            return true;
        }
    }
    return false;
}

int kafka_mapping_check_destination(
    bool same_source, const cJSON *mapping, const char *destination, char *errbuf, size_t errlen)
{
    /* Shown redacted: a destination URL may carry a password or a token (url.h). */
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(destination, shown, sizeof(shown));
    if (!same_source) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\": kafka:// destinations are for Kafka mappings (the topic is in "
                       "the source's cluster) unless destination_options.bootstrap_servers names "
                       "the cluster; allowed: destination_options {\"bootstrap_servers\": "
                       "[\"host:port\"]} beside it, or file:///dir, http(s)://..., an SQS queue "
                       "ARN or URL",
                       shown);
        return SL_ECONFIG;
    }
    if (kafka_mapping_is_source_topic(mapping, destination)) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\" is the source topic; allowed: another topic of the same cluster",
                       shown);
        return SL_ECONFIG;
    }
    return 0;
}

/* Kafka's other itemIdentifier form, {"partition":"<topic>-<p>","offset":N}, as the string
 * form "<topic>-<p>-<N>" that kafka_format_item_id writes (esm.md §4.3: third parties use
 * both; sluice accepts both). Returns the text in buf, or NULL when id is not such an object. */
const char *kafka_mapping_read_item_id(const cJSON *id, char *buf, size_t len)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(id, "partition");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(id, "offset");
    if (!cJSON_IsObject(id) || !cJSON_IsString(p) || !p->valuestring[0]) {
        return NULL;
    }
    int n = -1;
    if (cJSON_IsNumber(o) && o->valuedouble >= 0 && o->valuedouble < 9007199254740992.0 &&
        o->valuedouble == (double)(long long)o->valuedouble) {
        n = snprintf(buf, len, "%s-%lld", p->valuestring, (long long)o->valuedouble);
    } else if (cJSON_IsString(o) && o->valuestring[0]) {
        n = snprintf(buf, len, "%s-%s", p->valuestring, o->valuestring);
    }
    return n > 0 && (size_t)n < len ? buf : NULL;
}

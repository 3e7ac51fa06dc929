/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_check.c: validation of a Kafka mapping's options (ops->check): servers, topics,
 * the consumer group, SelfManagedEventSource, SourceAccessConfigurations and the "rdkafka"
 * pass-through, each error naming where and what is allowed. Apart from the adapter because it
 * is pure (nothing connects, nothing is read but the options) and the largest single concern;
 * it uses kafka_conf.c's SourceAccessConfiguration table and pass-through rules, so that the
 * check and the configuration built later accept the same things.
 */
#include "kafka_int.h"
#include "kafka_conf.h"

static bool kafka_valid_topic(const char *t)
{
    size_t len = strlen(t);
    if (len == 0 || len > 249 || t[0] == '.') {
        return false;
    }
    for (const char *p = t; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static bool kafka_valid_group(const char *g)
{
    size_t len = strlen(g);
    if (len == 0 || len > 200) {
        return false;
    }
    for (const char *p = g; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-/*:_+=.@", c))) {
            return false;
        }
    }
    return true;
}

/* Checks that obj has only the members in allowed ("A|B"). Returns the first other, or NULL. */
static const char *kafka_unknown_member(const cJSON *obj, const char *allowed)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        size_t n = strlen(c->string);
        const char *p = allowed;
        bool found = false;
        while (*p && !found) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            found = len == n && strncmp(p, c->string, n) == 0;
            p = bar ? bar + 1 : p + len;
        }
        if (!found) {
            return c->string;
        }
    }
    return NULL;
}

/* Validates SelfManagedEventSource; on success points *ret_servers at the array. */
static int kafka_check_sme(const cJSON *sme, const cJSON **ret_servers, char *errbuf, size_t errlen)
{
    static const char *allowed =
        "allowed: {\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[\"host:port\", ...]}} with 1 to 10 "
        "servers";
    const char *bad;
    if (!cJSON_IsObject(sme)) {
        (void)snprintf(errbuf, errlen, "SelfManagedEventSource: not an object; %s", allowed);
        return SL_ECONFIG;
    }
    if ((bad = kafka_unknown_member(sme, "Endpoints"))) {
        (void)snprintf(errbuf, errlen, "SelfManagedEventSource.%s: unknown key; %s", bad, allowed);
        return SL_ECONFIG;
    }
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(sme, "Endpoints");
    if (!cJSON_IsObject(ep)) {
        (void)snprintf(errbuf, errlen,
                       "SelfManagedEventSource.Endpoints: missing or not an "
                       "object; %s",
                       allowed);
        return SL_ECONFIG;
    }
    if ((bad = kafka_unknown_member(ep, "KAFKA_BOOTSTRAP_SERVERS"))) {
        (void)snprintf(errbuf, errlen, "SelfManagedEventSource.Endpoints.%s: unknown key; %s", bad,
                       allowed);
        return SL_ECONFIG;
    }
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive(ep, "KAFKA_BOOTSTRAP_SERVERS");
    int n = cJSON_GetArraySize(servers);
    if (!cJSON_IsArray(servers) || n < 1 || n > 10) {
        (void)snprintf(
            errbuf, errlen, "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS: %s; %s",
            cJSON_IsArray(servers) ? "needs 1 to 10 servers" : "missing or not a list", allowed);
        return SL_ECONFIG;
    }
    int i = 0;
    for (const cJSON *s = servers->child; s; s = s->next, i++) {
        if (!cJSON_IsString(s) || !sl_kafka_conf_is_server(s->valuestring)) {
            (void)snprintf(errbuf, errlen,
                           "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[%d]: %s%s%s "
                           "is not host:port; allowed: a host name or address and a port 1 to "
                           "65535, such as \"broker1:9092\"",
                           i, cJSON_IsString(s) ? "\"" : "",
                           cJSON_IsString(s) ? s->valuestring : "a non-string",
                           cJSON_IsString(s) ? "\"" : "");
            return SL_ECONFIG;
        }
    }
    *ret_servers = servers;
    return 0;
}

static int kafka_check_group_config(
    const cJSON *c, const char *key, const char **ret_group, char *errbuf, size_t errlen)
{
    const char *bad;
    if (!cJSON_IsObject(c)) {
        (void)snprintf(errbuf, errlen,
                       "%s: not an object; allowed: {\"ConsumerGroupId\":\"my-group\"}", key);
        return SL_ECONFIG;
    }
    if ((bad = kafka_unknown_member(c, "ConsumerGroupId|SchemaRegistryConfig"))) {
        (void)snprintf(errbuf, errlen, "%s.%s: unknown key; allowed: ConsumerGroupId", key, bad);
        return SL_ECONFIG;
    }
    if (cJSON_GetObjectItemCaseSensitive(c, "SchemaRegistryConfig")) {
        (void)snprintf(errbuf, errlen,
                       "%s.SchemaRegistryConfig: schema registries are not supported; allowed: "
                       "ConsumerGroupId only (the function receives the raw bytes)",
                       key);
        return SL_ECONFIG;
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(c, "ConsumerGroupId");
    if (!g) {
        return 0;
    }
    if (!cJSON_IsString(g) || !kafka_valid_group(g->valuestring)) {
        (void)snprintf(errbuf, errlen,
                       "%s.ConsumerGroupId: %s%.64s%s is not a group id; allowed: 1 to 200 "
                       "characters of a-z A-Z 0-9 and -/*:_+=.@",
                       key, cJSON_IsString(g) ? "\"" : "",
                       cJSON_IsString(g) ? g->valuestring : "a non-string",
                       cJSON_IsString(g) ? "\"" : "");
        return SL_ECONFIG;
    }
    *ret_group = g->valuestring;
    return 0;
}

/* Validates SourceAccessConfigurations: shapes, types, URIs, at most one SASL method. */
static int kafka_check_sac(const cJSON *sac, char *errbuf, size_t errlen)
{
    static const char *types = "BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH, "
                               "CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE, "
                               "VPC_SUBNET, VPC_SECURITY_GROUP";
    int n = cJSON_GetArraySize(sac);
    if (!cJSON_IsArray(sac) || n > KAFKA_SAC_MAX) {
        (void)snprintf(errbuf, errlen,
                       "SourceAccessConfigurations: %s; allowed: a list of 0 to 22 "
                       "{\"Type\":\"...\",\"URI\":\"...\"}",
                       cJSON_IsArray(sac) ? "too many entries" : "not a list");
        return SL_ECONFIG;
    }
    int i = 0;
    int sasl = -1;
    bool seen[KAFKA_SAC_COUNT] = {false};
    for (const cJSON *e = sac->child; e; e = e->next, i++) {
        const char *bad;
        if (!cJSON_IsObject(e)) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d]: not an object; allowed: "
                           "{\"Type\":\"BASIC_AUTH\",\"URI\":\"file:///etc/sluice/kafka.json\"}",
                           i);
            return SL_ECONFIG;
        }
        if ((bad = kafka_unknown_member(e, "Type|URI"))) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].%s: unknown key; allowed: Type, URI", i,
                           bad);
            return SL_ECONFIG;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "Type");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "URI");
        int type = cJSON_IsString(t) ? kafka_conf_sac_type(t->valuestring) : -1;
        if (type < 0) {
            bool vh = cJSON_IsString(t) && strcmp(t->valuestring, "VIRTUAL_HOST") == 0;
            (void)snprintf(
                errbuf, errlen,
                "SourceAccessConfigurations[%d].Type: %s%.40s%s%s; "
                "allowed: %s",
                i, cJSON_IsString(t) ? "\"" : "", cJSON_IsString(t) ? t->valuestring : "missing",
                cJSON_IsString(t) ? "\"" : "", vh ? " is for RabbitMQ, not Kafka" : "", types);
            return SL_ECONFIG;
        }
        if (!cJSON_IsString(u) || !u->valuestring[0]) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].URI: missing or not a string; "
                           "allowed: file:///path/to/secret.json or env://NAME",
                           i);
            return SL_ECONFIG;
        }
        if (seen[type]) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d]: %s appears twice; allowed: each type "
                           "once",
                           i, kafka_conf_sac_names[type]);
            return SL_ECONFIG;
        }
        seen[type] = true;
        if (type <= KAFKA_SAC_SCRAM512) {
            if (sasl >= 0) {
                (void)snprintf(errbuf, errlen,
                               "SourceAccessConfigurations[%d]: %s and %s both set; allowed: one "
                               "of BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH",
                               i, kafka_conf_sac_names[sasl], kafka_conf_sac_names[type]);
                return SL_ECONFIG;
            }
            sasl = type;
        }
        if (!kafka_conf_sac_is_secret(type)) {
            continue;
        }
        const char *uri = u->valuestring;
        if (strncmp(uri, "arn:", 4) == 0) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].URI: Secrets Manager ARNs cannot be "
                           "read here; allowed: file:///path/to/secret.json or env://NAME holding "
                           "the secret's JSON",
                           i);
            return SL_ECONFIG;
        }
        if (!(strncmp(uri, "file:///", 8) == 0 && uri[8]) &&
            !(strncmp(uri, "env://", 6) == 0 && uri[6])) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].URI: \"%.80s\" is not a secret "
                           "location; allowed: file:///path/to/secret.json or env://NAME",
                           i, uri);
            return SL_ECONFIG;
        }
    }
    if (seen[KAFKA_SAC_CLIENT_CERT] && sasl >= 0) {
        (void)snprintf(errbuf, errlen,
                       "SourceAccessConfigurations: CLIENT_CERTIFICATE_TLS_AUTH and %s both set; "
                       "allowed: one authentication method",
                       kafka_conf_sac_names[sasl]);
        return SL_ECONFIG;
    }
    return 0;
}

int kafka_check(void *vctx, const char *arn, char *errbuf, size_t errlen)
{
    struct kafka_ctx *ctx = vctx;
    bool msk = arn && strncmp(arn, KAFKA_MSK_PREFIX, strlen(KAFKA_MSK_PREFIX)) == 0;
    bool smk = arn && strncmp(arn, KAFKA_SCHEME, KAFKA_SCHEME_LEN) == 0;
    if (!msk && !smk) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\" is not a Kafka source; allowed: an arn:aws:kafka: cluster ARN with "
                       "bootstrap_servers, or SelfManagedEventSource.Endpoints."
                       "KAFKA_BOOTSTRAP_SERVERS without EventSourceArn",
                       arn ? arn : "");
        return SL_ECONFIG;
    }
    if (msk && !strstr(arn, ":cluster/")) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\" is not an MSK cluster ARN; allowed: "
                       "arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID",
                       arn);
        return SL_ECONFIG;
    }
    const cJSON *servers = NULL;
    int r;
    if (ctx->self_managed) {
        if (msk) {
            (void)snprintf(errbuf, errlen,
                           "SelfManagedEventSource: not allowed with an MSK EventSourceArn; "
                           "allowed: bootstrap_servers for MSK, or SelfManagedEventSource "
                           "without EventSourceArn");
            return SL_ECONFIG;
        }
        if ((r = kafka_check_sme(ctx->self_managed, &servers, errbuf, errlen)) < 0) {
            return r;
        }
    }
    if (smk && !servers) {
        /* kafka://h:p,h:p written directly (our extension) */
        const char *p = arn + KAFKA_SCHEME_LEN;
        if (!*p) {
            (void)snprintf(errbuf, errlen,
                           "no bootstrap servers; allowed: SelfManagedEventSource.Endpoints."
                           "KAFKA_BOOTSTRAP_SERVERS with 1 to 10 host:port");
            return SL_ECONFIG;
        }
        char one[320];
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len >= sizeof(one)) {
                len = sizeof(one) - 1;
            }
            memcpy(one, p, len);
            one[len] = '\0';
            if (!sl_kafka_conf_is_server(one)) {
                (void)snprintf(errbuf, errlen,
                               "EventSourceArn: \"%s\" is not host:port; allowed: kafka://host:"
                               "port[,host:port...]",
                               one);
                return SL_ECONFIG;
            }
            p += len + (comma ? 1 : 0);
        }
    }
    if (smk && ctx->bootstrap.n) {
        (void)snprintf(errbuf, errlen,
                       "bootstrap_servers: only for an MSK EventSourceArn; allowed: "
                       "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS for "
                       "self-managed Kafka");
        return SL_ECONFIG;
    }
    if (msk && !ctx->bootstrap.n) {
        (void)snprintf(errbuf, errlen,
                       "bootstrap_servers: missing; an MSK EventSourceArn needs the cluster's "
                       "bootstrap servers (sluice does not call the MSK API); allowed: a list of "
                       "host:port, such as [\"b-1.c.kafka.us-east-1.amazonaws.com:9092\"]");
        return SL_ECONFIG;
    }
    for (size_t i = 0; i < ctx->bootstrap.n; i++) {
        if (!sl_kafka_conf_is_server(ctx->bootstrap.items[i])) {
            (void)snprintf(errbuf, errlen,
                           "bootstrap_servers[%zu]: \"%.80s\" is not host:port; allowed: a host "
                           "and a port 1 to 65535",
                           i, ctx->bootstrap.items[i]);
            return SL_ECONFIG;
        }
    }
    for (size_t i = 0; i < ctx->topics.n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ctx->topics.items[i], ctx->topics.items[j]) == 0) {
                (void)snprintf(errbuf, errlen, "Topics[%zu]: \"%s\" is listed twice", i,
                               ctx->topics.items[i]);
                return SL_ECONFIG;
            }
        }
        if (!kafka_valid_topic(ctx->topics.items[i])) {
            (void)snprintf(errbuf, errlen,
                           "Topics[%zu]: \"%.80s\" is not a topic name; allowed: 1 to 249 "
                           "characters of a-z A-Z 0-9 . _ -, not starting with '.'",
                           i, ctx->topics.items[i]);
            return SL_ECONFIG;
        }
    }
    const char *group = NULL;
    if (ctx->smk_config && msk) {
        (void)snprintf(errbuf, errlen,
                       "SelfManagedKafkaEventSourceConfig: not allowed with an MSK "
                       "EventSourceArn; allowed: AmazonManagedKafkaEventSourceConfig");
        return SL_ECONFIG;
    }
    if (ctx->msk_config && smk) {
        (void)snprintf(errbuf, errlen,
                       "AmazonManagedKafkaEventSourceConfig: only for an MSK EventSourceArn; "
                       "allowed: SelfManagedKafkaEventSourceConfig");
        return SL_ECONFIG;
    }
    if (ctx->smk_config &&
        (r = kafka_check_group_config(ctx->smk_config, "SelfManagedKafkaEventSourceConfig", &group,
                                      errbuf, errlen)) < 0) {
        return r;
    }
    if (ctx->msk_config &&
        (r = kafka_check_group_config(ctx->msk_config, "AmazonManagedKafkaEventSourceConfig",
                                      &group, errbuf, errlen)) < 0) {
        return r;
    }
    if (ctx->sac && (r = kafka_check_sac(ctx->sac, errbuf, errlen)) < 0) {
        return r;
    }
    /* rd_kafka_conf_set is pure: librdkafka's own checks run here, before anything starts. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return SL_ENOMEM;
    }
    r = kafka_conf_passthrough(ctx, conf, errbuf, errlen);
    rd_kafka_conf_destroy(conf);
    return r;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_conf.c: the librdkafka client configuration: sluice's reserved properties, the
 * "rdkafka" pass-through, the SourceAccessConfigurations with their secrets (read from file://
 * or env://, wiped after use, never logged) and the per-partition queue limits in force. Shared
 * by the check (the same rules), by init (the consumer's configuration) and by client_props (the
 * kafka:// destination's connection settings); and, through kafka_conf.h, by any other client of
 * the cluster, which builds its configuration from those settings with sl_kafka_conf_client
 * (the kafka:// sink's producer). It calls nothing but librdkafka and the log.
 */
#include "kafka_conf.h"
#include "kafka_int.h"
#include "secret.h"

static bool kafka_is_secret_key(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, ".pem") ||
           strstr(key, "sasl.oauthbearer.config") || strstr(key, "ssl.key");
}

const char *const kafka_conf_sac_names[KAFKA_SAC_COUNT] = {
    "BASIC_AUTH",
    "SASL_SCRAM_256_AUTH",
    "SASL_SCRAM_512_AUTH",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "SERVER_ROOT_CA_CERTIFICATE",
    "VPC_SUBNET",
    "VPC_SECURITY_GROUP",
};

int kafka_conf_sac_type(const char *s)
{
    for (int i = 0; i < KAFKA_SAC_COUNT; i++) {
        if (strcmp(s, kafka_conf_sac_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

bool kafka_conf_sac_is_secret(int type)
{
    return type <= KAFKA_SAC_ROOT_CA;
}

/* Properties sluice sets itself: the AWS key to use instead, for the error. */
static const char *kafka_reserved_prop(const char *key)
{
    static const char *const keys[][2] = {
        {"group.id", "SelfManagedKafkaEventSourceConfig.ConsumerGroupId"},
        {"bootstrap.servers", "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"},
        {"metadata.broker.list", "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"},
        {"enable.auto.commit", "nothing: sluice commits after success"},
        {"enable.auto.offset.store", "nothing: sluice commits after success"},
        {"auto.offset.reset", "StartingPosition"},
        {"enable.partition.eof", "nothing"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++) {
        if (strcmp(key, keys[i][0]) == 0) {
            return keys[i][1];
        }
    }
    return NULL;
}

/* host:port, as bootstrap.servers takes one server: a name or address (IPv6 in brackets) without
 * a comma, space or slash, and a port 1 to 65535. */
bool sl_kafka_conf_is_server(const char *s)
{
    size_t len = strlen(s);
    const char *colon = strrchr(s, ':');
    if (len == 0 || len > 300 || !colon || colon == s || colon[1] == '\0') {
        return false;
    }
    if (s[0] == '[' && colon[-1] != ']') {
        return false;
    }
    for (const char *p = s; p < colon; p++) {
        if (*p == ',' || *p == ' ' || *p == '/' || (unsigned char)*p < 0x21) {
            return false;
        }
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && colon[1] != '-' && colon[1] != '+' && port >= 1 &&
           port <= 65535;
}

/* Sets one property; on failure fills errbuf with librdkafka's text (the value is shown only
 * when it is not a secret). */
int kafka_conf_set(rd_kafka_conf_t *conf,
                   const char *what,
                   const char *key,
                   const char *value,
                   bool secret,
                   char *errbuf,
                   size_t errlen)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) == RD_KAFKA_CONF_OK) {
        return 0;
    }
    if (secret || kafka_is_secret_key(key)) {
        (void)snprintf(errbuf, errlen, "%s: librdkafka rejects the value of %s", what, key);
    } else {
        (void)snprintf(errbuf, errlen, "%s: %s", what, err);
    }
    return SL_ECONFIG;
}

int sl_kafka_conf_client(const struct sl_strmap *cluster,
                         const char *const (*settings)[2],
                         size_t n_settings,
                         const char *what,
                         rd_kafka_conf_t **ret_conf,
                         char *errbuf,
                         size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return SL_ENOMEM;
    }
    int r = 0;
    /* Any of the cluster's values may be a secret, and librdkafka's text may quote it. */
    for (size_t i = 0; i < cluster->n && r == 0; i++) {
        r = kafka_conf_set(conf, what, cluster->keys[i], cluster->values[i], true, errbuf, errlen);
    }
    for (size_t i = 0; i < n_settings && r == 0; i++) {
        if (settings[i][1]) {
            r = kafka_conf_set(conf, what, settings[i][0], settings[i][1], false, errbuf, errlen);
        }
    }
    if (r < 0) {
        rd_kafka_conf_destroy(conf);
        return r;
    }
    *ret_conf = conf;
    return 0;
}

/* kafka_conf_set for either destination; the pairs were already accepted by librdkafka at init. */
static int kafka_dst_set(const struct kafka_dst *d,
                         const char *what,
                         const char *key,
                         const char *value,
                         bool secret,
                         char *errbuf,
                         size_t errlen)
{
    if (d->conf) {
        return kafka_conf_set(d->conf, what, key, value, secret, errbuf, errlen);
    }
    return sl_strmap_put(d->props, key, value);
}

/* True for the pass-through properties that say how to connect to the cluster (security),
 * which another client of it needs as well: security.protocol, sasl.*, ssl.*, ssl_*,
 * enable.ssl.* and enable.sasl.*. */
bool kafka_conf_is_security_prop(const char *key)
{
    static const char *const prefixes[] = {"security.protocol", "sasl.",       "ssl.", "ssl_",
                                           "enable.ssl.",       "enable.sasl."};
    for (size_t i = 0; i < SL_ARRAY_LEN(prefixes); i++) {
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* Applies the rdkafka pass-through onto conf. */
int kafka_conf_passthrough(const struct kafka_ctx *ctx,
                           rd_kafka_conf_t *conf,
                           char *errbuf,
                           size_t errlen)
{
    for (size_t i = 0; i < ctx->rdkafka.n; i++) {
        const char *key = ctx->rdkafka.keys[i];
        const char *value = ctx->rdkafka.values[i];
        const char *instead = kafka_reserved_prop(key);
        char what[160];
        if (instead) {
            (void)snprintf(errbuf, errlen,
                           "rdkafka.%s: set by sluice; allowed: any other librdkafka consumer "
                           "property (use %s)",
                           key, instead);
            return SL_ECONFIG;
        }
        if (strcmp(key, "partition.assignment.strategy") == 0 && strstr(value, "cooperative")) {
            (void)snprintf(errbuf, errlen,
                           "rdkafka.partition.assignment.strategy: \"%s\" is not supported; "
                           "allowed: range, roundrobin (eager assignors)",
                           value);
            return SL_ECONFIG;
        }
        (void)snprintf(what, sizeof(what), "rdkafka.%s", key);
        int r = kafka_conf_set(conf, what, key, value, false, errbuf, errlen);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* ---- secrets and the configuration ---- */

/* Gets string member key of a secret's JSON, or NULL. */
static const char *kafka_secret_str(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* Applies one SourceAccessConfiguration (with its secret read) to conf. */
static int kafka_apply_sac_entry(const struct kafka_dst *conf,
                                 int type,
                                 const char *uri,
                                 size_t idx,
                                 char *errbuf,
                                 size_t errlen)
{
    char what[96];
    (void)snprintf(what, sizeof(what), "SourceAccessConfigurations[%zu] (%s)", idx,
                   kafka_conf_sac_names[type]);
    char *text = NULL;
    int r = sl_secret_read(uri, what, &text, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    cJSON *j = text[0] == '{' || text[0] == ' ' || text[0] == '\n' ? cJSON_Parse(text) : NULL;
    if (type == KAFKA_SAC_ROOT_CA) {
        const char *pem = j ? kafka_secret_str(j, "certificate") : text;
        if (!pem || !strstr(pem, "-----BEGIN")) {
            (void)snprintf(errbuf, errlen,
                           "%s: no PEM certificate; allowed: a PEM file, or JSON "
                           "{\"certificate\":\"-----BEGIN CERTIFICATE-----...\"}",
                           what);
            r = SL_ECONFIG;
        } else {
            r = kafka_dst_set(conf, what, "ssl.ca.pem", pem, true, errbuf, errlen);
        }
    } else if (!cJSON_IsObject(j)) {
        (void)snprintf(errbuf, errlen, "%s: the secret is not a JSON object; allowed: %s", what,
                       type == KAFKA_SAC_CLIENT_CERT
                           ? "{\"certificate\":\"PEM\",\"privateKey\":\"PEM\","
                             "\"privateKeyPassword\":\"...\"}"
                           : "{\"username\":\"...\",\"password\":\"...\"}");
        r = SL_ECONFIG;
    } else if (type == KAFKA_SAC_CLIENT_CERT) {
        const char *cert = kafka_secret_str(j, "certificate");
        const char *key = kafka_secret_str(j, "privateKey");
        const char *pass = kafka_secret_str(j, "privateKeyPassword");
        if (!cert || !key) {
            (void)snprintf(errbuf, errlen,
                           "%s: the secret needs certificate and privateKey (PEM), and "
                           "privateKeyPassword if the key is encrypted",
                           what);
            r = SL_ECONFIG;
        } else {
            r = kafka_dst_set(conf, what, "ssl.certificate.pem", cert, true, errbuf, errlen);
            r = r < 0 ? r : kafka_dst_set(conf, what, "ssl.key.pem", key, true, errbuf, errlen);
            if (r == 0 && pass) {
                r = kafka_dst_set(conf, what, "ssl.key.password", pass, true, errbuf, errlen);
            }
        }
    } else {
        const char *user = kafka_secret_str(j, "username");
        const char *pass = kafka_secret_str(j, "password");
        const char *mech = type == KAFKA_SAC_BASIC      ? "PLAIN"
                           : type == KAFKA_SAC_SCRAM256 ? "SCRAM-SHA-256"
                                                        : "SCRAM-SHA-512";
        if (!user || !pass) {
            (void)snprintf(errbuf, errlen, "%s: the secret needs username and password", what);
            r = SL_ECONFIG;
        } else {
            r = kafka_dst_set(conf, what, "sasl.mechanisms", mech, false, errbuf, errlen);
            r = r < 0 ? r : kafka_dst_set(conf, what, "sasl.username", user, true, errbuf, errlen);
            r = r < 0 ? r : kafka_dst_set(conf, what, "sasl.password", pass, true, errbuf, errlen);
        }
    }
    sl_secret_json_delete(j); /* the parsed copies of the secret too */
    sl_secret_free(text);
    return r;
}

/* Applies SourceAccessConfigurations (their secrets read from where the URIs say) and the
 * security.protocol they imply to d. Logs the entries it ignores only when d is the consumer's
 * configuration (once per mapping). */
int kafka_conf_apply_sac(const struct kafka_ctx *ctx,
                         const struct kafka_dst *d,
                         char *errbuf,
                         size_t errlen)
{
    bool sasl = false;
    bool tls = false;
    int i = 0;
    int r = 0;
    for (const cJSON *e = ctx->sac ? ctx->sac->child : NULL; e && r == 0; e = e->next, i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "Type");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "URI");
        int type = kafka_conf_sac_type(t->valuestring);
        if (!kafka_conf_sac_is_secret(type)) {
            if (d->conf) {
                sl_log_info(KAFKA_COMP, ctx->env.inst,
                            "SourceAccessConfigurations[%d]: %s has no meaning here, ignoring it",
                            i, kafka_conf_sac_names[type]);
            }
            continue;
        }
        sasl = sasl || type <= KAFKA_SAC_SCRAM512;
        tls = true;
        r = kafka_apply_sac_entry(d, type, u->valuestring, (size_t)i, errbuf, errlen);
    }
    if (r == 0 && (sasl || tls)) {
        /* As AWS: SASL over TLS, or TLS; the rdkafka pass-through can say SASL_PLAINTEXT. */
        r = kafka_dst_set(d, "SourceAccessConfigurations", "security.protocol",
                          sasl ? "SASL_SSL" : "SSL", false, errbuf, errlen);
    }
    return r;
}

/* The per-partition queue limits in force (sluice's or the "rdkafka" pass-through's), for
 * kafka_fetch_kick_if_stalled. */
void kafka_conf_queue_limits(struct kafka_ctx *ctx, const rd_kafka_conf_t *conf)
{
    char v[32];
    size_t len = sizeof(v);
    ctx->stall_msgs = rd_kafka_conf_get(conf, "queued.min.messages", v, &len) == RD_KAFKA_CONF_OK
                          ? strtoull(v, NULL, 10)
                          : 100000;
    len = sizeof(v);
    ctx->stall_bytes =
        rd_kafka_conf_get(conf, "queued.max.messages.kbytes", v, &len) == RD_KAFKA_CONF_OK
            ? strtoull(v, NULL, 10) * 1024
            : 65536 * 1024ULL;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* fh_http_conf.c: a delivery stream's HttpEndpointDestinationConfiguration read from the
 * configuration's cJSON into struct sl_fh_http_conf (fh_http.h), with Firehose's ranges and
 * defaults (CreateDeliveryStream's API reference: EndpointConfiguration, RequestConfiguration,
 * BufferingHints, RetryOptions, S3BackupMode) and sluice's own response_timeout. It owns the
 * validation: every error names the JSON path and what is allowed, as src/config_*.c do, so a
 * file written for `aws firehose create-delivery-stream --cli-input-json` either works or says
 * exactly which key is wrong. It also builds the Common-Attributes header value once, so the
 * delivery path only copies it. The keys the stream core reads itself (S3Configuration,
 * ProcessingConfiguration, ...) are let through unread. Pure; any thread; nothing logs. */
#include "fh_http.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "opt.h"
#include "url.h"

#define FH_CONF_DEFAULT_SIZE_MB    5
#define FH_CONF_DEFAULT_INTERVAL_S 300
#define FH_CONF_DEFAULT_RETRY_S    300
#define FH_CONF_DEFAULT_TIMEOUT    "3m"
#define FH_CONF_MIN_TIMEOUT_MS     100
#define FH_CONF_MAX_TIMEOUT_MS     3600000

/* One parse: where errors go. */
struct fh_conf_ctx {
    char *errbuf;
    size_t errlen;
};

static int fh_conf_error(struct fh_conf_ctx *c, const char *path, const char *key, const char *msg)
{
    (void)snprintf(c->errbuf, c->errlen, "%s%s%s: %s", path, key ? "." : "", key ? key : "", msg);
    return SL_ECONFIG;
}

/* Refuses a key of obj not in allowed (NULL-terminated); the message lists them. */
static int
fh_conf_keys(struct fh_conf_ctx *c, const cJSON *obj, const char *path, const char *const *allowed)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++) {
            known = strcmp(it->string, *a) == 0;
        }
        if (!known) {
            char msg[512];
            size_t off = (size_t)snprintf(msg, sizeof msg, "unknown key; allowed:");
            for (const char *const *a = allowed; *a && off < sizeof msg; a++) {
                off += (size_t)snprintf(msg + off, sizeof msg - off, " %s", *a);
            }
            return fh_conf_error(c, path, it->string, msg);
        }
    }
    return 0;
}

/* An optional object member: 0 with *ret (NULL when absent), or SL_ECONFIG when not an object. */
static int fh_conf_object(
    struct fh_conf_ctx *c, const cJSON *obj, const char *path, const char *key, const cJSON **ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v && !cJSON_IsObject(v)) {
        return fh_conf_error(c, path, key, "must be an object");
    }
    *ret = v;
    return 0;
}

/* An optional string member of min..max bytes: 0 with *ret (borrowed; NULL when absent). */
static int fh_conf_string(struct fh_conf_ctx *c,
                          const cJSON *obj,
                          const char *path,
                          const char *key,
                          size_t min,
                          size_t max,
                          const char **ret)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *ret = NULL;
    if (!v) {
        return 0;
    }
    if (!cJSON_IsString(v)) {
        return fh_conf_error(c, path, key, "must be a string");
    }
    size_t len = strlen(v->valuestring);
    if (len < min || len > max) {
        char msg[96];
        (void)snprintf(msg, sizeof msg, "must be %zu to %zu characters long, not %zu", min, max,
                       len);
        return fh_conf_error(c, path, key, msg);
    }
    *ret = v->valuestring;
    return 0;
}

/* An optional integer member in min..max, def when absent. */
static int fh_conf_int(struct fh_conf_ctx *c,
                       const cJSON *obj,
                       const char *path,
                       const char *key,
                       int64_t min,
                       int64_t max,
                       int64_t def,
                       int64_t *ret)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (!v) {
        *ret = def;
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d >= (double)min && d <= (double)max) || floor(d) != d) {
        char msg[96];
        (void)snprintf(msg, sizeof msg, "must be a whole number from %lld to %lld", (long long)min,
                       (long long)max);
        return fh_conf_error(c, path, key, msg);
    }
    *ret = (int64_t)d;
    return 0;
}

/* A header value: no control characters (CR or LF would end the header). */
static bool fh_conf_is_header_safe(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            return false;
        }
    }
    return true;
}

static int fh_conf_endpoint(struct fh_conf_ctx *c,
                            const cJSON *dest,
                            const char *path,
                            struct sl_fh_http_conf *conf)
{
    static const char *const keys[] = {"Url", "Name", "AccessKey", NULL};
    char sub[512];
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(dest, "EndpointConfiguration");
    if (!cJSON_IsObject(ep)) {
        return fh_conf_error(c, path, "EndpointConfiguration",
                             ep ? "must be an object" : "is required: {\"Url\": \"https://...\"}");
    }
    (void)snprintf(sub, sizeof sub, "%s.EndpointConfiguration", path);
    int r = fh_conf_keys(c, ep, sub, keys);
    if (r < 0) {
        return r;
    }
    const char *url, *name, *key;
    r = fh_conf_string(c, ep, sub, "Url", 1, 1000, &url);
    if (r < 0) {
        return r;
    }
    if (!url) {
        return fh_conf_error(c, sub, "Url", "is required: the endpoint's http:// or https:// URL");
    }
    static const char *const schemes[] = {"http", "https", NULL};
    char why[256];
    r = sl_url_check(url, schemes, false, why, sizeof why);
    if (r < 0) {
        return r == SL_ENOMEM ? r : fh_conf_error(c, sub, "Url", why);
    }
    r = fh_conf_string(c, ep, sub, "Name", 1, 256, &name);
    if (r < 0) {
        return r;
    }
    r = fh_conf_string(c, ep, sub, "AccessKey", 0, SL_FH_HTTP_MAX_ACCESS_KEY, &key);
    if (r < 0) {
        return r;
    }
    /* The key is never quoted back: it is a secret. */
    if (key && !fh_conf_is_header_safe(key)) {
        return fh_conf_error(c, sub, "AccessKey",
                             "must not hold control characters (it is sent as a header value)");
    }
    conf->url = sl_strdup(url);
    conf->name = name ? sl_strdup(name) : NULL;
    conf->access_key = key ? sl_strdup(key) : NULL;
    if (!conf->url || (name && !conf->name) || (key && !conf->access_key)) {
        return SL_ENOMEM;
    }
    return 0;
}

/* CommonAttributes: [{"AttributeName": ..., "AttributeValue": ...}] becomes the header value
 * {"commonAttributes":{"name":"value",...}} (names unique, in the order given). */
static int fh_conf_attrs(struct fh_conf_ctx *c,
                         const cJSON *arr,
                         const char *path,
                         struct sl_fh_http_conf *conf)
{
    static const char *const keys[] = {"AttributeName", "AttributeValue", NULL};
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > SL_FH_HTTP_MAX_ATTRS) {
        return fh_conf_error(c, path, NULL,
                             "must be an array of at most 50 {\"AttributeName\": ..., "
                             "\"AttributeValue\": ...} objects");
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *inner = out ? cJSON_AddObjectToObject(out, "commonAttributes") : NULL;
    if (!inner) {
        cJSON_Delete(out);
        return SL_ENOMEM;
    }
    int r = 0;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        char sub[700];
        (void)snprintf(sub, sizeof sub, "%s[%zu]", path, i++);
        const char *name, *value;
        if (!cJSON_IsObject(it)) {
            r = fh_conf_error(
                c, sub, NULL,
                "must be an object {\"AttributeName\": ..., \"AttributeValue\": ...}");
            goto done;
        }
        r = fh_conf_keys(c, it, sub, keys);
        if (r < 0) {
            goto done;
        }
        r = fh_conf_string(c, it, sub, "AttributeName", 1, 256, &name);
        if (r < 0) {
            goto done;
        }
        r = fh_conf_string(c, it, sub, "AttributeValue", 0, 1024, &value);
        if (r < 0) {
            goto done;
        }
        if (!name || !value) {
            r = fh_conf_error(c, sub, name ? "AttributeValue" : "AttributeName",
                              "is required (a string)");
            goto done;
        }
        if (cJSON_GetObjectItemCaseSensitive(inner, name)) {
            r = fh_conf_error(c, sub, "AttributeName", "names an attribute already given");
            goto done;
        }
        if (!cJSON_AddStringToObject(inner, name, value)) {
            r = SL_ENOMEM;
            goto done;
        }
    }
    conf->n_attrs = i;
    conf->common_attributes = cJSON_PrintUnformatted(out);
    r = conf->common_attributes ? 0 : SL_ENOMEM;
done:
    cJSON_Delete(out);
    return r;
}

static int fh_conf_request(struct fh_conf_ctx *c,
                           const cJSON *dest,
                           const char *path,
                           struct sl_fh_http_conf *conf)
{
    static const char *const keys[] = {"ContentEncoding", "CommonAttributes", NULL};
    const cJSON *rq;
    char sub[512];
    (void)snprintf(sub, sizeof sub, "%s.RequestConfiguration", path);
    int r = fh_conf_object(c, dest, path, "RequestConfiguration", &rq);
    if (r < 0 || !rq) {
        return r;
    }
    r = fh_conf_keys(c, rq, sub, keys);
    if (r < 0) {
        return r;
    }
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(rq, "ContentEncoding");
    if (enc) {
        const char *s = cJSON_GetStringValue(enc);
        if (!s || (strcmp(s, "NONE") != 0 && strcmp(s, "GZIP") != 0)) {
            return fh_conf_error(c, sub, "ContentEncoding", "must be \"NONE\" or \"GZIP\"");
        }
        conf->gzip = strcmp(s, "GZIP") == 0;
    }
    const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(rq, "CommonAttributes");
    if (!attrs) {
        return 0;
    }
    char apath[600];
    (void)snprintf(apath, sizeof apath, "%s.CommonAttributes", sub);
    return fh_conf_attrs(c, attrs, apath, conf);
}

static int fh_conf_numbers(struct fh_conf_ctx *c,
                           const cJSON *dest,
                           const char *path,
                           struct sl_fh_http_conf *conf)
{
    static const char *const bh_keys[] = {"SizeInMBs", "IntervalInSeconds", NULL};
    static const char *const ro_keys[] = {"DurationInSeconds", NULL};
    const cJSON *bh, *ro;
    char sub[512];
    int64_t size_mb, interval_s, retry_s;
    int r = fh_conf_object(c, dest, path, "BufferingHints", &bh);
    if (r < 0) {
        return r;
    }
    (void)snprintf(sub, sizeof sub, "%s.BufferingHints", path);
    if (bh) {
        r = fh_conf_keys(c, bh, sub, bh_keys);
        if (r < 0) {
            return r;
        }
    }
    r = fh_conf_int(c, bh, sub, "SizeInMBs", 1, 64, FH_CONF_DEFAULT_SIZE_MB, &size_mb);
    if (r < 0) {
        return r;
    }
    r = fh_conf_int(c, bh, sub, "IntervalInSeconds", 0, 900, FH_CONF_DEFAULT_INTERVAL_S,
                    &interval_s);
    if (r < 0) {
        return r;
    }
    r = fh_conf_object(c, dest, path, "RetryOptions", &ro);
    if (r < 0) {
        return r;
    }
    (void)snprintf(sub, sizeof sub, "%s.RetryOptions", path);
    if (ro) {
        r = fh_conf_keys(c, ro, sub, ro_keys);
        if (r < 0) {
            return r;
        }
    }
    r = fh_conf_int(c, ro, sub, "DurationInSeconds", 0, 7200, FH_CONF_DEFAULT_RETRY_S, &retry_s);
    if (r < 0) {
        return r;
    }
    conf->size_bytes = size_mb * 1024 * 1024;
    conf->interval_ms = interval_s * 1000;
    conf->retry_duration_ms = retry_s * 1000;

    const cJSON *to = cJSON_GetObjectItemCaseSensitive(dest, "response_timeout");
    const char *text = to ? cJSON_GetStringValue(to) : FH_CONF_DEFAULT_TIMEOUT;
    int64_t ms = 0;
    if (!text || sl_opt_parse_duration(text, &ms) < 0 || ms < FH_CONF_MIN_TIMEOUT_MS ||
        ms > FH_CONF_MAX_TIMEOUT_MS) {
        return fh_conf_error(c, path, "response_timeout",
                             "must be a duration from \"100ms\" to \"1h\" (default \"3m\")");
    }
    conf->response_timeout_ms = ms;

    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(dest, "S3BackupMode");
    if (bm) {
        const char *s = cJSON_GetStringValue(bm);
        if (!s || (strcmp(s, "FailedDataOnly") != 0 && strcmp(s, "AllData") != 0)) {
            return fh_conf_error(c, path, "S3BackupMode",
                                 "must be \"FailedDataOnly\" (default) or \"AllData\"");
        }
        conf->backup_all = strcmp(s, "AllData") == 0;
    }
    return 0;
}

int sl_fh_http_conf_parse(const cJSON *obj,
                          const char *path,
                          struct sl_fh_http_conf *ret_conf,
                          char *errbuf,
                          size_t errlen)
{
    static const char *const keys[] = {
        "EndpointConfiguration", "RequestConfiguration", "BufferingHints", "RetryOptions",
        "S3BackupMode", "response_timeout",
        /* read by the stream core */
        "S3Configuration", "ProcessingConfiguration", "RoleARN", "CloudWatchLoggingOptions",
        "SecretsManagerConfiguration", NULL};
    struct fh_conf_ctx c = {errbuf, errlen};
    memset(ret_conf, 0, sizeof(*ret_conf));
    if (errlen) {
        errbuf[0] = '\0';
    }
    if (!cJSON_IsObject(obj)) {
        return fh_conf_error(&c, path, NULL, "must be an object");
    }
    int r = fh_conf_keys(&c, obj, path, keys);
    if (r < 0) {
        return r;
    }
    r = fh_conf_endpoint(&c, obj, path, ret_conf);
    if (r < 0) {
        return r;
    }
    r = fh_conf_request(&c, obj, path, ret_conf);
    if (r < 0) {
        return r;
    }
    return fh_conf_numbers(&c, obj, path, ret_conf);
}

void sl_fh_http_conf_fini(struct sl_fh_http_conf *conf)
{
    sl_free(conf->url);
    sl_free(conf->name);
    if (conf->access_key) {
        /* A secret: not left behind in freed memory. */
        volatile char *p = conf->access_key;
        while (*p) {
            *p++ = '\0';
        }
    }
    sl_free(conf->access_key);
    cJSON_free(conf->common_attributes);
    memset(conf, 0, sizeof(*conf));
}

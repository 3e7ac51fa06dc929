/* SPDX-License-Identifier: Apache-2.0 */
/* s3_keys.c: a delivery stream's Prefix and ErrorOutputPrefix (s3_keys.h). It owns Firehose's
 * semantic rules for the two (checked once, at config time, so delivery never meets a template
 * it cannot render), their compiled form (a list of segments: text, a timestamp pattern,
 * random-string, error-output-type, a partition key) and their evaluation per object.
 *
 * Firehose's rules (AWS's "Custom Prefixes for Amazon S3 Objects", semantic rules; dynamic
 * partitioning guide), and where sluice had to choose:
 *  - namespaces: timestamp, firehose (random-string, error-output-type), partitionKeyFromQuery,
 *    partitionKeyFromLambda; "!{" may only start such an expression;
 *  - a Prefix without a timestamp expression gets !{timestamp:yyyy/MM/dd/HH/} appended. Not
 *    with dynamic partitioning: AWS's own dynamic-partitioning example key carries no time
 *    after the partition keys;
 *  - Prefix may not hold error-output-type; an ErrorOutputPrefix with expressions must hold it;
 *  - ErrorOutputPrefix is required when Prefix has expressions and with dynamic partitioning;
 *  - without ErrorOutputPrefix the error prefix is <Prefix><type>/yyyy/MM/dd/HH/; an
 *    ErrorOutputPrefix without expressions is used the same way, <ErrorOutputPrefix><type>/
 *    yyyy/MM/dd/HH/ (the AWS text writes <type>YYYY without the slash, but its own example
 *    and the keys seen in the wild, processing-failed/2024/..., have it);
 *  - an ErrorOutputPrefix with expressions is used as written (nothing appended: AWS's example
 *    myFirehoseFailures/!{firehose:error-output-type}/ evaluates to
 *    myFirehoseFailures/processing-failed/);
 *  - partition keys need dynamic partitioning, and are refused in ErrorOutputPrefix (the
 *    records whose keys cannot be extracted go there);
 *  - evaluated prefixes are at most 512 characters, configured ones 1024. */
#include "s3_keys.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "s3_keys_int.h"

#define KEYS_DEFAULT_TIME "yyyy/MM/dd/HH/"

enum seg_kind { SEG_TEXT, SEG_TIME, SEG_RANDOM, SEG_ERROR_TYPE, SEG_KEY };

struct seg {
    enum seg_kind kind;
    enum sl_s3_key_ns ns; /* SEG_KEY */
    char *text;           /* SEG_TEXT: the text; SEG_TIME: the pattern; SEG_KEY: the key */
    size_t len;
};

struct tmpl {
    struct seg *segs;
    size_t n;
    bool has_expr, has_time, has_error_type, has_key;
};

struct sl_s3_layout {
    struct tmpl prefix, error;
    char **keys; /* borrowed from prefix's segments */
    enum sl_s3_key_ns *key_ns;
    size_t nkeys;
};

static const char *const keys_ns_names[SL_S3_KEY_NS_COUNT] = {"partitionKeyFromQuery",
                                                              "partitionKeyFromLambda"};

static void tmpl_fini(struct tmpl *t)
{
    for (size_t i = 0; i < t->n; i++) {
        sl_free(t->segs[i].text);
    }
    sl_free(t->segs);
    memset(t, 0, sizeof *t);
}

static int tmpl_add(struct tmpl *t, enum seg_kind kind, const char *text, size_t len)
{
    struct seg *segs = sl_realloc(t->segs, (t->n + 1) * sizeof *segs);
    if (!segs) {
        return SL_ENOMEM;
    }
    t->segs = segs;
    struct seg *s = &segs[t->n];
    *s = (struct seg){.kind = kind, .len = len};
    if (text) {
        s->text = sl_strndup(text, len);
        if (!s->text) {
            return SL_ENOMEM;
        }
    }
    t->n++;
    return 0;
}

static int
keys_fail(char *errbuf, size_t errlen, const char *path, const char *field, const char *fmt, ...)
    SL_PRINTF(5, 6);

static int
keys_fail(char *errbuf, size_t errlen, const char *path, const char *field, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    (void)snprintf(errbuf, errlen, "%s%s%s: %s", path ? path : "", path ? "." : "", field, what);
    return SL_ECONFIG;
}

/* One !{namespace:value} (ns and value without the braces) into t. */
static int keys_expr(struct tmpl *t,
                     const char *ns,
                     size_t nslen,
                     const char *val,
                     size_t vlen,
                     const char *path,
                     const char *field,
                     char *errbuf,
                     size_t errlen)
{
    char why[256];
    if (vlen == 0) {
        return keys_fail(errbuf, errlen, path, field, "!{%.*s:} has no value", (int)nslen, ns);
    }
    t->has_expr = true;
    if (nslen == 9 && memcmp(ns, "timestamp", 9) == 0) {
        if (sl_s3_keys_format_time(NULL, val, vlen, 0, why, sizeof why) < 0) {
            return keys_fail(errbuf, errlen, path, field, "%s", why);
        }
        t->has_time = true;
        return tmpl_add(t, SEG_TIME, val, vlen);
    }
    if (nslen == 8 && memcmp(ns, "firehose", 8) == 0) {
        if (vlen == 13 && memcmp(val, "random-string", 13) == 0) {
            return tmpl_add(t, SEG_RANDOM, NULL, 0);
        }
        if (vlen == 17 && memcmp(val, "error-output-type", 17) == 0) {
            t->has_error_type = true;
            return tmpl_add(t, SEG_ERROR_TYPE, NULL, 0);
        }
        return keys_fail(errbuf, errlen, path, field,
                         "unknown !{firehose:%.*s}; allowed: !{firehose:random-string}, "
                         "!{firehose:error-output-type}",
                         (int)vlen, val);
    }
    for (int ns_i = 0; ns_i < SL_S3_KEY_NS_COUNT; ns_i++) {
        if (nslen == strlen(keys_ns_names[ns_i]) && memcmp(ns, keys_ns_names[ns_i], nslen) == 0) {
            int r = tmpl_add(t, SEG_KEY, val, vlen);
            if (r == 0) {
                t->segs[t->n - 1].ns = (enum sl_s3_key_ns)ns_i;
                t->has_key = true;
            }
            return r;
        }
    }
    return keys_fail(errbuf, errlen, path, field,
                     "unknown namespace \"%.*s\"; allowed: !{timestamp:<pattern>}, "
                     "!{firehose:random-string|error-output-type}, "
                     "!{partitionKeyFromQuery:<key>}, !{partitionKeyFromLambda:<key>}",
                     (int)nslen, ns);
}

/* Compiles s into t (t zeroed). */
static int keys_parse(
    struct tmpl *t, const char *s, const char *path, const char *field, char *errbuf, size_t errlen)
{
    size_t len = strlen(s);
    if (len > SL_S3_PREFIX_CONF_MAX) {
        return keys_fail(errbuf, errlen, path, field, "%zu characters; allowed: at most %d", len,
                         SL_S3_PREFIX_CONF_MAX);
    }
    size_t i = 0;
    while (i < len) {
        const char *open = strstr(s + i, "!{");
        size_t text_end = open ? (size_t)(open - s) : len;
        if (text_end > i) {
            int r = tmpl_add(t, SEG_TEXT, s + i, text_end - i);
            if (r < 0) {
                return r;
            }
        }
        if (!open) {
            break;
        }
        const char *body = open + 2;
        const char *close = strchr(body, '}');
        const char *colon = memchr(body, ':', close ? (size_t)(close - body) : 0);
        if (!close || !colon) {
            return keys_fail(errbuf, errlen, path, field,
                             "\"%.*s\" is not an expression; \"!{\" may only start "
                             "!{namespace:value}",
                             close ? (int)(close - open + 1) : (int)strlen(open), open);
        }
        int r = keys_expr(t, body, (size_t)(colon - body), colon + 1, (size_t)(close - colon - 1),
                          path, field, errbuf, errlen);
        if (r < 0) {
            return r;
        }
        i = (size_t)(close - s) + 1;
    }
    return 0;
}

static int keys_collect(struct sl_s3_layout *l)
{
    for (size_t i = 0; i < l->prefix.n; i++) {
        struct seg *s = &l->prefix.segs[i];
        if (s->kind != SEG_KEY) {
            continue;
        }
        bool seen = false;
        for (size_t k = 0; k < l->nkeys; k++) {
            seen = seen || (l->key_ns[k] == s->ns && strcmp(l->keys[k], s->text) == 0);
        }
        if (seen) {
            continue;
        }
        char **keys = sl_realloc(l->keys, (l->nkeys + 1) * sizeof *keys);
        if (!keys) {
            return SL_ENOMEM;
        }
        l->keys = keys;
        enum sl_s3_key_ns *ns = sl_realloc(l->key_ns, (l->nkeys + 1) * sizeof *ns);
        if (!ns) {
            return SL_ENOMEM;
        }
        l->key_ns = ns;
        l->keys[l->nkeys] = s->text;
        l->key_ns[l->nkeys++] = s->ns;
    }
    return 0;
}

/* The checks that need both prefixes, then the defaults. */
static int keys_rules(struct sl_s3_layout *l,
                      const struct sl_s3_layout_conf *conf,
                      bool has_error_prefix,
                      char *errbuf,
                      size_t errlen)
{
    const char *path = conf->path;
    if (l->prefix.has_error_type) {
        return keys_fail(errbuf, errlen, path, "Prefix",
                         "!{firehose:error-output-type} is allowed only in ErrorOutputPrefix");
    }
    if (l->prefix.has_key && !conf->dynamic_partitioning) {
        return keys_fail(errbuf, errlen, path, "Prefix",
                         "!{partitionKeyFromQuery:...} and !{partitionKeyFromLambda:...} need "
                         "dynamic partitioning (DynamicPartitioningConfiguration.Enabled: "
                         "true)");
    }
    if (conf->dynamic_partitioning && !l->prefix.has_key) {
        return keys_fail(errbuf, errlen, path, "Prefix",
                         "dynamic partitioning needs at least one !{partitionKeyFromQuery:<key>} "
                         "or !{partitionKeyFromLambda:<key>}");
    }
    if (l->error.has_key) {
        return keys_fail(errbuf, errlen, path, "ErrorOutputPrefix",
                         "partition keys are not allowed here (records whose keys cannot be "
                         "extracted are written under it); allowed: !{timestamp:<pattern>}, "
                         "!{firehose:random-string}, !{firehose:error-output-type}");
    }
    if (l->error.has_expr && !l->error.has_error_type) {
        return keys_fail(errbuf, errlen, path, "ErrorOutputPrefix",
                         "an ErrorOutputPrefix with expressions must include "
                         "!{firehose:error-output-type}");
    }
    if (!has_error_prefix && (l->prefix.has_expr || conf->dynamic_partitioning)) {
        return keys_fail(errbuf, errlen, path, "ErrorOutputPrefix",
                         "required when Prefix has expressions or dynamic partitioning is "
                         "enabled; e.g. \"errors/!{firehose:error-output-type}/"
                         "!{timestamp:yyyy/MM/dd/HH}/\"");
    }
    int r = 0;
    if (!l->prefix.has_time && !conf->dynamic_partitioning) {
        r = tmpl_add(&l->prefix, SEG_TIME, KEYS_DEFAULT_TIME, strlen(KEYS_DEFAULT_TIME));
    }
    if (r == 0 && !l->error.has_expr) {
        /* <ErrorOutputPrefix or Prefix><type>/yyyy/MM/dd/HH/ (both plain text here) */
        const char *base = has_error_prefix ? conf->error_prefix : conf->prefix;
        tmpl_fini(&l->error);
        if (base && *base) {
            r = tmpl_add(&l->error, SEG_TEXT, base, strlen(base));
        }
        if (r == 0) {
            r = tmpl_add(&l->error, SEG_ERROR_TYPE, NULL, 0);
        }
        if (r == 0) {
            r = tmpl_add(&l->error, SEG_TEXT, "/", 1);
        }
        if (r == 0) {
            r = tmpl_add(&l->error, SEG_TIME, KEYS_DEFAULT_TIME, strlen(KEYS_DEFAULT_TIME));
        }
    }
    return r;
}

int sl_s3_layout_new(const struct sl_s3_layout_conf *conf,
                     struct sl_s3_layout **ret_layout,
                     char *errbuf,
                     size_t errlen)
{
    struct sl_s3_layout *l = sl_calloc(1, sizeof *l);
    if (!l) {
        return SL_ENOMEM;
    }
    bool has_error_prefix = conf->error_prefix && *conf->error_prefix;
    int r = 0;
    if (conf->prefix && *conf->prefix) {
        r = keys_parse(&l->prefix, conf->prefix, conf->path, "Prefix", errbuf, errlen);
    }
    if (r == 0 && has_error_prefix) {
        r = keys_parse(&l->error, conf->error_prefix, conf->path, "ErrorOutputPrefix", errbuf,
                       errlen);
    }
    if (r == 0) {
        r = keys_rules(l, conf, has_error_prefix, errbuf, errlen);
    }
    if (r == 0) {
        r = keys_collect(l);
    }
    if (r < 0) {
        if (r == SL_ENOMEM) {
            (void)snprintf(errbuf, errlen, "out of memory");
        }
        sl_s3_layout_free(l);
        return r;
    }
    *ret_layout = l;
    return 0;
}

void sl_s3_layout_free(struct sl_s3_layout *l)
{
    if (!l) {
        return;
    }
    tmpl_fini(&l->prefix);
    tmpl_fini(&l->error);
    sl_free(l->keys);
    sl_free(l->key_ns);
    sl_free(l);
}

size_t sl_s3_layout_key_count(const struct sl_s3_layout *l)
{
    return l->nkeys;
}

const char *sl_s3_layout_key(const struct sl_s3_layout *l, size_t i, enum sl_s3_key_ns *ret_ns)
{
    assert(i < l->nkeys);
    *ret_ns = l->key_ns[i];
    return l->keys[i];
}

static int keys_seg(const struct seg *s,
                    const struct sl_s3_vars *v,
                    struct sl_buf *out,
                    char *errbuf,
                    size_t errlen)
{
    switch (s->kind) {
    case SEG_TEXT:
        return sl_buf_append(out, s->text, s->len);
    case SEG_TIME:
        return sl_s3_keys_format_time(out, s->text, s->len, v->time_ms, errbuf, errlen);
    case SEG_RANDOM:
        return sl_s3_keys_time_random(out, v->rand, v->rand_arg);
    case SEG_ERROR_TYPE:
        if (!v->error_type) {
            (void)snprintf(errbuf, errlen, "error prefix evaluated without an error-output-type");
            return SL_EINVAL;
        }
        return sl_buf_puts(out, v->error_type);
    default: {
        const struct sl_strmap *m = s->ns == SL_S3_KEY_QUERY ? v->query : v->lambda;
        const char *val = m ? sl_strmap_get(m, s->text) : NULL;
        if (!val) {
            (void)snprintf(errbuf, errlen, "!{%s:%s}: the record has no such partition key",
                           keys_ns_names[s->ns], s->text);
            return SL_ENOTFOUND;
        }
        return sl_buf_puts(out, val);
    }
    }
}

int sl_s3_layout_prefix(const struct sl_s3_layout *l,
                        const struct sl_s3_vars *vars,
                        bool error,
                        struct sl_buf *out,
                        char *errbuf,
                        size_t errlen)
{
    const struct tmpl *t = error ? &l->error : &l->prefix;
    size_t start = out->len;
    int r = 0;
    for (size_t i = 0; i < t->n && r == 0; i++) {
        r = keys_seg(&t->segs[i], vars, out, errbuf, errlen);
    }
    if (r == 0 && out->len - start > SL_S3_PREFIX_MAX) {
        (void)snprintf(errbuf, errlen, "%s evaluates to %zu characters; allowed: at most %d",
                       error ? "ErrorOutputPrefix" : "Prefix", out->len - start, SL_S3_PREFIX_MAX);
        r = SL_EINVAL;
    }
    if (r == SL_ENOMEM) {
        (void)snprintf(errbuf, errlen, "out of memory");
    }
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

int sl_s3_layout_partition(const struct sl_s3_layout *l,
                           const struct sl_s3_vars *vars,
                           struct sl_buf *out,
                           char *errbuf,
                           size_t errlen)
{
    size_t start = out->len;
    for (size_t i = 0; i < l->nkeys; i++) {
        const struct sl_strmap *m = l->key_ns[i] == SL_S3_KEY_QUERY ? vars->query : vars->lambda;
        const char *val = m ? sl_strmap_get(m, l->keys[i]) : NULL;
        if (!val) {
            (void)snprintf(errbuf, errlen, "!{%s:%s}: the record has no such partition key",
                           keys_ns_names[l->key_ns[i]], l->keys[i]);
            sl_buf_truncate(out, start);
            return SL_ENOTFOUND;
        }
        if (sl_buf_printf(out, "%zu:%s", strlen(val), val) < 0) {
            sl_buf_truncate(out, start);
            return SL_ENOMEM;
        }
    }
    return 0;
}

int sl_s3_layout_key_of(const struct sl_s3_layout *l,
                        const struct sl_s3_vars *vars,
                        bool error,
                        const char *stream,
                        unsigned version,
                        const char *ext,
                        struct sl_buf *out,
                        char *errbuf,
                        size_t errlen)
{
    size_t start = out->len;
    int r = sl_s3_layout_prefix(l, vars, error, out, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    r = sl_s3_keys_object_name(out, stream, version, vars->time_ms, ext, vars->rand,
                               vars->rand_arg);
    if (r < 0) {
        (void)snprintf(errbuf, errlen, "out of memory");
        sl_buf_truncate(out, start);
    }
    return r;
}

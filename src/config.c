/* SPDX-License-Identifier: Apache-2.0 */
/* config.c: the configuration file. It owns reading one JSON file, refusing strings that hold
 * \u0000 (cJSON would cut them short), expanding ${VAR} from the environment in every string
 * value, and validating everything a run would check short of I/O: the daemon keys, each function
 * (its type's table and check), each mapping (the shared AWS-named table plus its source's table,
 * the source's check, limits that depend on the source kind), references from mappings to
 * functions, and UUIDs (given or derived). Every problem is collected, never only the first, so
 * `sluice validate` lists them all; each names the file, the JSON path, the bad value and what is
 * allowed. It builds struct sl_config and nothing else: no logging (the CLI prints the errors), no
 * state beyond the returned config. Called once at start-up, from the main thread, before the loop
 * runs. */
#include "config.h"
#include "filter.h"
#include "sink.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "buf.h"
#include "function.h"
#include "registry.h"
#include "sl_adapters.h"
#include "source.h"
#include "url.h"

/* The "allowed" of the errors about EventSourceArn and destinations names only what this build
 * has (meson feature options, sl_adapters.h). */
#if SL_HAVE_KAFKA
#define CONFIG_KAFKA_SOURCES                                                                    \
    ", an arn:aws:kafka: ARN, or SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS for " \
    "self-managed Kafka"
#define CONFIG_KAFKA_DESTINATIONS ", kafka://TOPIC"
#else
#define CONFIG_KAFKA_SOURCES      ""
#define CONFIG_KAFKA_DESTINATIONS ""
#endif
#define CONFIG_DESTINATIONS                                                         \
    "file:///dir, http(s)://..., arn:aws:sqs:REGION:ACCOUNT:QUEUE or an SQS queue " \
    "URL" CONFIG_KAFKA_DESTINATIONS

#define CONFIG_MAX_FILE_BYTES (16u * 1024u * 1024u) /* a config bigger than this is a mistake */
#define CONFIG_UUID_MAX       128

const struct sl_opt sl_config_daemon_opts[] = {
    {"state_dir", SL_OPT_STR, "./sluice-state", 0, -1, offsetof(struct sl_config, state_dir), 0,
     NULL, "Directory for checkpoints, one file per mapping; created if missing."},
    {"region", SL_OPT_STR, "us-east-1", 0, -1, offsetof(struct sl_config, region), 0, NULL,
     "AWS region written into events and used to sign requests; when absent, AWS_REGION, then "
     "AWS_DEFAULT_REGION, then the default."},
    {"stats_interval", SL_OPT_DURATION, "10s", 100, 86400 * 1000,
     offsetof(struct sl_config, stats_interval_ms), 0, NULL,
     "How often each mapping logs its counters (also logged at exit)."},
    {"drain_timeout", SL_OPT_DURATION, "30s", 0, 3600 * 1000,
     offsetof(struct sl_config, drain_timeout_ms), 0, NULL,
     "On SIGTERM or SIGINT, how long in-flight invocations may take to finish before sluice "
     "exits; their records are repeated at the next start."},
    {0},
};

#define CORE_OFF(f) offsetof(struct sl_mapping_core, f)

const struct sl_opt sl_config_mapping_opts[] = {
    {"UUID", SL_OPT_STR, NULL, 0, -1, CORE_OFF(uuid), 0, NULL,
     "Identifies the mapping and its checkpoints ([A-Za-z0-9._-], up to 128 characters); when "
     "absent, derived from EventSourceArn and FunctionName, so other settings can change "
     "without losing the checkpoints."},
    {"EventSourceArn", SL_OPT_STR, NULL, 0, -1, CORE_OFF(event_source_arn), 0, NULL,
     "The source to read; its scheme picks the source kind (file:///path/*.log)."},
    {"FunctionName", SL_OPT_STR, NULL, 0, -1, CORE_OFF(function_name), SL_OPT_REQUIRED, NULL,
     "A key of \"functions\", or a Lambda function name or ARN invoked through the Lambda API at "
     "AWS_ENDPOINT_URL_LAMBDA or AWS_ENDPOINT_URL."},
    {"BatchSize", SL_OPT_INT, NULL, 1, 10000, CORE_OFF(batch_size), 0, NULL,
     "Most records per invocation; default and maximum depend on the source kind (file: 100, "
     "at most 10000)."},
    {"MaximumBatchingWindowInSeconds", SL_OPT_SECONDS, "0", 0, 300 * 1000, CORE_OFF(window_ms), 0,
     NULL, "How long to gather records before invoking with a batch that is not full."},
    {"StartingPosition", SL_OPT_ENUM, NULL, 0, -1, CORE_OFF(starting_position), 0,
     "TRIM_HORIZON|LATEST|AT_TIMESTAMP",
     "Where to start reading a partition that has no checkpoint; required for stream sources "
     "(file)."},
    {"StartingPositionTimestamp", SL_OPT_INT, NULL, 0, INT64_MAX, CORE_OFF(starting_position_ts_s),
     0, NULL,
     "With AT_TIMESTAMP: the time to start from, in seconds since the epoch; not in the future."},
    {"Enabled", SL_OPT_BOOL, "true", 0, -1, CORE_OFF(enabled), 0, NULL,
     "false keeps the mapping configured but does not run it."},
    {"MaximumRetryAttempts", SL_OPT_INT, "-1", -1, 10000, CORE_OFF(max_retry_attempts), 0, NULL,
     "Function errors (and partial failures) a batch may have before its records go to the "
     "on-failure destination: N means at most N+1 invocations of the same records. -1: retry "
     "until the records expire. Throttles and transport errors do not count."},
    {"MaximumRecordAgeInSeconds", SL_OPT_INT, "-1", -1, 604800, CORE_OFF(max_record_age_s), 0, NULL,
     "Records older than this (by arrival time) are not invoked again but go to the on-failure "
     "destination; -1 or 60 to 604800."},
    {"BisectBatchOnFunctionError", SL_OPT_BOOL, "false", 0, -1, CORE_OFF(bisect), 0, NULL,
     "On a function error, split the batch in two and retry each half, so one bad record ends "
     "up alone; splits do not count as retries."},
    {"FunctionResponseTypes", SL_OPT_STRLIST, NULL, 0, 1, CORE_OFF(response_types), 0, NULL,
     "[\"ReportBatchItemFailures\"] makes the function's {\"batchItemFailures\": [...]} "
     "response count: streams resume from the lowest failed record."},
    {"DestinationConfig", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(destination_config), 0, NULL,
     "{\"OnFailure\": {\"Destination\": D}}: where records that cannot be delivered go, as "
     "AWS invocation records: file:///dir (NDJSON per day, with the payload), an http(s) URL, "
     "an SQS queue ARN or URL, or kafka://TOPIC for Kafka mappings (one message per record)."},
    {"FilterCriteria", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(filter_criteria), 0, NULL,
     "{\"Filters\": [{\"Pattern\": \"...\"}]}: EventBridge patterns, up to 5, ORed; records "
     "that match none are not delivered and still pass the checkpoint."},
    {"ParallelizationFactor", SL_OPT_INT, "1", 1, 10, CORE_OFF(parallelization_factor), 0, NULL,
     "Batches in flight per partition; records with the same partition key stay in order."},
    {"ScalingConfig", SL_OPT_JSON, NULL, 0, -1, CORE_OFF(scaling_config), 0, NULL,
     "{\"MaximumConcurrency\": N}: at most N invocations in flight for this mapping, 1 to "
     "1000 (AWS's minimum is 2; sluice accepts 1)."},
    {"TumblingWindowInSeconds", SL_OPT_INT, "0", 0, 900, CORE_OFF(tumbling_window_s), 0, NULL,
     "Groups records into windows of this many seconds by arrival time; each invocation gets "
     "the state the previous one of its window returned, and a final invocation closes the "
     "window. 0 is off."},
    {"max_records_buffered", SL_OPT_INT, "10000", 1, 10000000, CORE_OFF(max_records_buffered), 0,
     NULL, "Records a mapping may hold (fetched, not yet acknowledged); fetching pauses there."},
    {"max_bytes_buffered", SL_OPT_SIZE, "16MiB", 64 * 1024, INT64_C(4) * 1024 * 1024 * 1024,
     CORE_OFF(max_bytes_buffered), 0, NULL,
     "Bytes of records a mapping may hold; fetching pauses there."},
    {"max_unsaved_batches", SL_OPT_INT, "16", 1, 1000, CORE_OFF(max_unsaved_batches), 0, NULL,
     "Delivered batches per partition whose checkpoint may still be on its way to the disk "
     "before the partition waits for it; a crash repeats at most these and the batch in flight. "
     "1 repeats least; more keeps throughput when fsync is slower than an invocation."},
    {0},
};

/* The structural top-level keys, applied with the daemon table so that unknown top-level keys
 * are reported against all of them. Not printed as options (see sl_config_print_options). */
struct config_top {
    cJSON *functions;
    cJSON *mappings;
};

static const struct sl_opt config_top_opts[] = {
    {"functions", SL_OPT_JSON, NULL, 0, -1, offsetof(struct config_top, functions), 0, NULL,
     "Functions by name."},
    {"mappings", SL_OPT_JSON, NULL, 0, -1, offsetof(struct config_top, mappings), SL_OPT_REQUIRED,
     NULL, "Event source mappings."},
    {0},
};

/* Everything one load carries around. */
struct config_ctx {
    const char *file;
    struct sl_errlist *errs;
    struct sl_config *cfg;
    size_t cap_functions;
    size_t *fn_index;       /* per mapping: index into cfg->functions, or SIZE_MAX */
    const cJSON *functions; /* the "functions" object, or NULL */
    bool failed;            /* an error was found (even if OOM kept its message out of errs) */
};

static void config_err(struct config_ctx *cc, const char *fmt, ...) SL_PRINTF(2, 3);

/* Adds one error line; the load fails even if there is no memory left to keep the line. */
static void config_err(struct config_ctx *cc, const char *fmt, ...)
{
    cc->failed = true;
    va_list ap;
    va_start(ap, fmt);
    struct sl_buf b;
    sl_buf_init(&b);
    char tmp[1024];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(tmp)) {
        sl_errlist_add(cc->errs, "%s", tmp);
    } else if (n >= 0 && sl_buf_reserve(&b, (size_t)n) == 0) {
        va_start(ap, fmt);
        (void)vsnprintf(b.data, (size_t)n + 1, fmt, ap);
        va_end(ap);
        sl_errlist_add(cc->errs, "%s", b.data);
    }
    sl_buf_fini(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* Reading and parsing */

static int config_read(const char *file, char **ret_text, struct sl_errlist *errs)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        sl_errlist_add(errs, "%s: cannot open: %s; allowed: a readable JSON file", file,
                       strerror(errno));
        return SL_ECONFIG;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = 0;
    for (;;) {
        if (sl_buf_reserve(&b, 65536) < 0) {
            r = SL_ENOMEM;
            break;
        }
        size_t n = fread(b.data + b.len, 1, b.cap - b.len - 1, f);
        b.len += n;
        b.data[b.len] = '\0';
        if (b.len > CONFIG_MAX_FILE_BYTES) {
            sl_errlist_add(errs, "%s: file is larger than %u bytes; allowed: a smaller file", file,
                           CONFIG_MAX_FILE_BYTES);
            r = SL_ECONFIG;
            break;
        }
        if (n == 0) {
            if (ferror(f)) {
                sl_errlist_add(errs, "%s: cannot read: %s; allowed: a readable JSON file", file,
                               strerror(errno));
                r = SL_ECONFIG;
            }
            break;
        }
    }
    (void)fclose(f);
    if (r < 0) {
        sl_buf_fini(&b);
        return r;
    }
    if (memchr(b.data, '\0', b.len)) {
        sl_buf_fini(&b);
        sl_errlist_add(errs, "%s: contains a NUL byte; allowed: a JSON text", file);
        return SL_ECONFIG;
    }
    *ret_text = sl_buf_steal(&b);
    return *ret_text ? 0 : SL_ENOMEM;
}

static cJSON *config_parse(const char *file, const char *text, struct sl_errlist *errs)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (root) {
        return root;
    }
    /* cJSON reports where it stopped (the same pointer cJSON_GetErrorPtr() returns). */
    if (!end || end < text) {
        end = text;
    }
    unsigned line = 1, col = 1;
    for (const char *p = text; p < end && *p; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char near[24];
    size_t n = 0;
    for (const char *p = end; *p && *p != '\n' && n < sizeof(near) - 1; p++) {
        near[n++] = isprint((unsigned char)*p) ? *p : '?';
    }
    near[n] = '\0';
    if (n == 0) {
        sl_errlist_add(errs,
                       "%s: line %u, column %u: invalid JSON at end of input; allowed: "
                       "one complete JSON object",
                       file, line, col);
    } else {
        sl_errlist_add(errs,
                       "%s: line %u, column %u: invalid JSON near \"%s\"; allowed: one "
                       "complete JSON object",
                       file, line, col, near);
    }
    return NULL;
}

/* One open object or array while config_find_nul walks the text. */
struct config_level {
    size_t path_len; /* length of the path of this container in the path buffer */
    int index;       /* arrays: the element being read */
    bool array;
};

/* Reads the JSON string token at *p (its opening quote): returns whether it holds the escape
 * \u0000, and appends its text (escapes kept as written, NUL cut) to key when key is not NULL.
 * Leaves *p past the closing quote. The text is valid JSON (cJSON parsed it). */
static bool config_scan_string(const char **p, struct sl_buf *key, int *r)
{
    const char *s = *p + 1;
    bool nul = false;
    bool cut = false;
    while (*s && *s != '"') {
        size_t n = *s == '\\' && s[1] ? 2 : 1;
        if (n == 2 && s[1] == 'u' && strncmp(s + 2, "0000", 4) == 0) {
            nul = true;
            cut = true;
            n = 6;
        }
        if (key && !cut) {
            *r |= sl_buf_append(key, s, n);
        }
        s += n;
    }
    *p = *s ? s + 1 : s;
    return nul;
}

/* cJSON ends a string at "\u0000" and silently drops the rest, so a value would be cut short
 * (a password, a path, a header): refuse it, naming the string by its JSON path. Walks the raw
 * text, which cJSON already found valid. Returns 0, SL_ECONFIG (errors added) or SL_ENOMEM. */
static int config_find_nul(const char *file, const char *text, struct sl_errlist *errs)
{
    if (!strstr(text, "\\u0000")) {
        return 0;
    }
    struct config_level *st = sl_calloc(CJSON_NESTING_LIMIT + 2, sizeof(*st));
    struct sl_buf path, key;
    sl_buf_init(&path);
    sl_buf_init(&key);
    int r = st ? sl_buf_puts(&path, "$") : SL_ENOMEM;
    int depth = 0;
    bool want_key = false;
    int result = 0;
    for (const char *p = text; r == 0 && *p;) {
        char c = *p;
        if (c == '{' || c == '[') {
            if (depth > CJSON_NESTING_LIMIT) {
                break;
            }
            st[++depth] = (struct config_level){.path_len = path.len, .array = c == '['};
            want_key = c == '{';
            if (c == '[') {
                r |= sl_buf_puts(&path, "[0]");
            }
            p++;
        } else if (c == '}' || c == ']') {
            sl_buf_truncate(&path, st[depth].path_len);
            depth--;
            want_key = false;
            p++;
        } else if (c == ',') {
            sl_buf_truncate(&path, st[depth].path_len);
            if (st[depth].array) {
                r |= sl_buf_printf(&path, "[%d]", ++st[depth].index);
            }
            want_key = !st[depth].array;
            p++;
        } else if (c == '"' && want_key) {
            sl_buf_truncate(&key, 0);
            bool nul = config_scan_string(&p, &key, &r);
            r |= sl_buf_printf(&path, ".%s", key.len ? key.data : "");
            if (nul && r == 0) {
                sl_errlist_add(errs,
                               "%s: %s: the key contains \\u0000 (a NUL character), which would "
                               "cut it short; allowed: keys without \\u0000",
                               file, path.data);
                result = SL_ECONFIG;
            }
            want_key = false;
        } else if (c == '"') {
            if (config_scan_string(&p, NULL, &r) && r == 0) {
                sl_errlist_add(errs,
                               "%s: %s: the string contains \\u0000 (a NUL character), which "
                               "would cut the value short; allowed: strings without \\u0000",
                               file, path.data);
                result = SL_ECONFIG;
            }
        } else {
            p++;
        }
    }
    sl_buf_fini(&path);
    sl_buf_fini(&key);
    sl_free(st);
    return r ? SL_ENOMEM : result;
}

/* ------------------------------------------------------------------------------------------ */
/* ${VAR} expansion */

/* Appends the JSON path of child (a member of object parent, or element i of an array) to b. */
static int config_path_child(
    struct sl_buf *b, const char *path, const cJSON *parent, const cJSON *child, int i)
{
    if (cJSON_IsArray(parent)) {
        return sl_buf_printf(b, "%s[%d]", path, i);
    }
    return sl_buf_printf(b, "%s.%s", path, child->string);
}

/* Expands ${NAME} in s into out. "$${" writes a literal "${". Returns 0, SL_ECONFIG (error
 * added, naming path and variable) or SL_ENOMEM. */
static int config_expand_str(
    const char *s, struct sl_buf *out, const char *file, const char *path, struct sl_errlist *errs)
{
    int result = 0;
    const char *p = s;
    while (*p) {
        const char *d = strchr(p, '$');
        if (!d) {
            if (sl_buf_puts(out, p) < 0) {
                return SL_ENOMEM;
            }
            break;
        }
        if (sl_buf_append(out, p, (size_t)(d - p)) < 0) {
            return SL_ENOMEM;
        }
        if (d[1] == '$' && d[2] == '{') {
            if (sl_buf_puts(out, "${") < 0) {
                return SL_ENOMEM;
            }
            p = d + 3;
            continue;
        }
        if (d[1] != '{') {
            if (sl_buf_append(out, d, 1) < 0) {
                return SL_ENOMEM;
            }
            p = d + 1;
            continue;
        }
        const char *name = d + 2;
        const char *close = strchr(name, '}');
        size_t len = close ? (size_t)(close - name) : 0;
        bool ok = close && len > 0 && (isalpha((unsigned char)name[0]) || name[0] == '_');
        for (size_t i = 0; ok && i < len; i++) {
            ok = isalnum((unsigned char)name[i]) || name[i] == '_';
        }
        if (!ok) {
            sl_errlist_add(errs,
                           "%s: %s: bad variable reference \"%.*s\"; allowed: ${NAME} with "
                           "NAME of letters, digits and _, or $${ for a literal ${",
                           file, path, close ? (int)(close - d + 1) : 2, d);
            result = SL_ECONFIG;
            if (!close) {
                break;
            }
            p = close + 1;
            continue;
        }
        char var[256];
        if (len >= sizeof(var)) {
            sl_errlist_add(errs, "%s: %s: variable name too long; allowed: up to %zu characters",
                           file, path, sizeof(var) - 1);
            result = SL_ECONFIG;
            p = close + 1;
            continue;
        }
        memcpy(var, name, len);
        var[len] = '\0';
        const char *val = getenv(var);
        if (!val) {
            sl_errlist_add(errs,
                           "%s: %s: environment variable %s is not set; allowed: set %s, "
                           "or write $${%s} for a literal ${%s}",
                           file, path, var, var, var, var);
            result = SL_ECONFIG;
        } else if (sl_buf_puts(out, val) < 0) {
            return SL_ENOMEM;
        }
        p = close + 1;
    }
    return result;
}

static int config_expand(cJSON *node, const char *path, const char *file, struct sl_errlist *errs)
{
    if (cJSON_IsString(node)) {
        if (!strchr(node->valuestring, '$')) {
            return 0;
        }
        struct sl_buf out;
        sl_buf_init(&out);
        int r = config_expand_str(node->valuestring, &out, file, path, errs);
        if (r == 0 && sl_buf_reserve(&out, 0) < 0) {
            r = SL_ENOMEM;
        }
        if (r == 0 && !cJSON_SetValuestring(node, out.data)) {
            r = SL_ENOMEM;
        }
        sl_buf_fini(&out);
        return r;
    }
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) {
        return 0;
    }
    int result = 0;
    int i = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, node)
    {
        struct sl_buf p;
        sl_buf_init(&p);
        if (config_path_child(&p, path, node, c, i++) < 0) {
            return SL_ENOMEM;
        }
        int r = config_expand(c, p.data, file, errs);
        sl_buf_fini(&p);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Functions */

static void config_function_fini(struct sl_function_conf *fc)
{
    sl_free(fc->name);
    sl_free(fc->path);
    cJSON_Delete(fc->json);
}

/* Adds an empty entry to cfg->functions and returns it, or NULL on OOM. */
static struct sl_function_conf *config_function_add(struct config_ctx *cc)
{
    struct sl_config *cfg = cc->cfg;
    if (cfg->n_functions == cc->cap_functions) {
        size_t cap = cc->cap_functions ? cc->cap_functions * 2 : 4;
        struct sl_function_conf *fns = sl_realloc(cfg->functions, cap * sizeof(*fns));
        if (!fns) {
            return NULL;
        }
        cfg->functions = fns;
        cc->cap_functions = cap;
    }
    struct sl_function_conf *fc = &cfg->functions[cfg->n_functions++];
    memset(fc, 0, sizeof(*fc));
    return fc;
}

/* Adds an adapter's check() message, one error per line of it. When a line starts with one of
 * the adapter's keys, or of extra's ("url: must be ..."), the key joins the JSON path
 * ("$.functions.hook.url: must be ..."). */
static void config_add_check_error(struct config_ctx *cc,
                                   const char *path,
                                   const struct sl_opt *table,
                                   const struct sl_opt *extra,
                                   const char *errbuf,
                                   int r)
{
    const char *msg = errbuf[0] ? errbuf : sl_strerror(r);
    while (*msg) {
        size_t n = strcspn(msg, "\n");
        bool keyed = false;
        const struct sl_opt *tables[] = {table, extra};
        for (size_t t = 0; t < SL_ARRAY_LEN(tables) && !keyed; t++) {
            for (const struct sl_opt *o = tables[t]; o && o->name && !keyed; o++) {
                size_t len = strlen(o->name);
                keyed = len < n && strncmp(msg, o->name, len) == 0 &&
                        (msg[len] == ':' || msg[len] == '.');
            }
        }
        config_err(cc, keyed ? "%s: %s.%.*s" : "%s: %s: %.*s", cc->file, path, (int)n, msg);
        msg += n;
        msg += *msg == '\n';
    }
}

static void config_append_types(struct sl_buf *b, int *r)
{
    size_t n;
    const struct sl_function_ops *const *types = sl_function_types(&n);
    for (size_t i = 0; i < n; i++) {
        *r |= sl_buf_printf(b, "%s%s", i ? ", " : "", types[i]->name);
    }
}

/* Applies obj (the function's object; "type" is skipped) to a scratch ctx of ops and runs
 * ops->check. Returns 0, SL_ECONFIG (errors added) or SL_ENOMEM. */
static int config_function_check(struct config_ctx *cc,
                                 const struct sl_function_ops *ops,
                                 const cJSON *obj,
                                 const char *path)
{
    cJSON *opts = cJSON_Duplicate(obj, 1);
    void *ctx = sl_calloc(1, ops->ctx_size);
    int r = (opts && ctx) ? 0 : SL_ENOMEM;
    if (r == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(opts, "type");
        struct sl_opt_target t = {.table = ops->opts, .base = ctx};
        r = sl_opt_apply(&t, 1, opts, cc->file, path, cc->errs);
        cc->failed = cc->failed || r < 0;
        if (r == 0) {
            char errbuf[4096] = "";
            r = ops->check(ctx, errbuf, sizeof(errbuf));
            if (r == SL_ENOMEM) {
                /* reported below */
            } else if (r < 0) {
                config_add_check_error(cc, path, ops->opts, NULL, errbuf, r);
                r = SL_ECONFIG;
            }
        }
        sl_opt_free(ops->opts, ctx);
    }
    sl_free(ctx);
    cJSON_Delete(opts);
    return r;
}

static int config_load_function(struct config_ctx *cc, const cJSON *obj)
{
    struct sl_buf path;
    sl_buf_init(&path);
    int r = sl_buf_printf(&path, "$.functions.%s", obj->string);
    if (r < 0) {
        return SL_ENOMEM;
    }
    const struct sl_function_ops *ops = NULL;
    if (!cJSON_IsObject(obj)) {
        config_err(cc, "%s: %s: not an object; allowed: an object with \"type\"", cc->file,
                   path.data);
        r = SL_ECONFIG;
        goto done;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (cJSON_IsString(type)) {
        ops = sl_function_type(type->valuestring);
    }
    if (!ops) {
        struct sl_buf b;
        int e = 0;
        sl_buf_init(&b);
        e |= sl_buf_printf(&b, "%s: %s.type: ", cc->file, path.data);
        if (!type) {
            e |= sl_buf_puts(&b, "missing required key");
        } else {
            char *v = cJSON_PrintUnformatted(type);
            e |= v ? sl_buf_printf(&b, "%s is not a function type", v) : SL_ENOMEM;
            cJSON_free(v);
        }
        e |= sl_buf_puts(&b, "; allowed: ");
        config_append_types(&b, &e);
        if (e == 0) {
            config_err(cc, "%s", b.data);
        }
        sl_buf_fini(&b);
        r = e ? SL_ENOMEM : SL_ECONFIG;
        goto done;
    }
    r = config_function_check(cc, ops, obj, path.data);
    if (r == SL_ENOMEM) {
        goto done;
    }
    struct sl_function_conf *fc = config_function_add(cc);
    if (!fc) {
        r = SL_ENOMEM;
        goto done;
    }
    fc->ops = ops;
    fc->name = sl_strdup(obj->string);
    fc->json = cJSON_Duplicate(obj, 1);
    fc->path = sl_buf_steal(&path);
    if (!fc->name || !fc->json || !fc->path) {
        r = SL_ENOMEM;
    }
done:
    sl_buf_fini(&path);
    return r;
}

static int config_load_functions(struct config_ctx *cc, const cJSON *fns)
{
    if (!fns) {
        return 0;
    }
    if (!cJSON_IsObject(fns)) {
        config_err(cc,
                   "%s: $.functions: not an object; allowed: an object of "
                   "functions by name",
                   cc->file);
        return SL_ECONFIG;
    }
    int result = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, fns)
    {
        bool dup = false;
        for (const cJSON *d = fns->child; d != c; d = d->next) {
            dup = dup || strcmp(d->string, c->string) == 0;
        }
        int r;
        if (dup) {
            config_err(cc, "%s: $.functions.%s: duplicate key; allowed: each name once", cc->file,
                       c->string);
            r = SL_ECONFIG;
        } else if (c->string[0] == '\0') {
            config_err(cc,
                       "%s: $.functions: empty function name; allowed: a "
                       "non-empty name",
                       cc->file);
            r = SL_ECONFIG;
        } else {
            r = config_load_function(cc, c);
        }
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }
    return result;
}

static size_t config_function_find(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_functions; i++) {
        if (strcmp(cfg->functions[i].name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

/* Finds the function a mapping names, synthesizing a lambda function when FunctionName is not
 * in "functions" and a Lambda endpoint is set. Returns 0 with *ret_index, SL_ECONFIG or
 * SL_ENOMEM. */
static int config_resolve_function(struct config_ctx *cc,
                                   const char *name,
                                   const char *mapping_path,
                                   size_t *ret_index)
{
    struct sl_config *cfg = cc->cfg;
    size_t i = config_function_find(cfg, name);
    if (i != SIZE_MAX) {
        *ret_index = i;
        return 0;
    }
    /* Declared but invalid, or "functions" itself is invalid: those errors say why. */
    if (cc->functions &&
        (!cJSON_IsObject(cc->functions) || cJSON_GetObjectItemCaseSensitive(cc->functions, name))) {
        return SL_ECONFIG;
    }
    const char *endpoint = getenv("AWS_ENDPOINT_URL_LAMBDA");
    if (!endpoint || !*endpoint) {
        endpoint = getenv("AWS_ENDPOINT_URL");
    }
    if (!endpoint || !*endpoint) {
        struct sl_buf b;
        int e = 0;
        sl_buf_init(&b);
        cJSON *qs = cJSON_CreateString(name);
        char *q = qs ? cJSON_PrintUnformatted(qs) : NULL;
        cJSON_Delete(qs);
        e |= q ? 0 : SL_ENOMEM;
        e |= sl_buf_printf(&b,
                           "%s: %s.FunctionName: %s is not in \"functions\" and neither "
                           "AWS_ENDPOINT_URL_LAMBDA nor AWS_ENDPOINT_URL is set; allowed: ",
                           cc->file, mapping_path, q ? q : "");
        cJSON_free(q);
        int k = 0;
        const cJSON *fn;
        const cJSON *declared = cc->functions;
        cJSON_ArrayForEach(fn, declared)
        {
            e |= sl_buf_printf(&b, "%s%s", k++ ? ", " : "one of ", fn->string);
        }
        if (k == 0) {
            e |= sl_buf_puts(&b, "a key of \"functions\" (there are none)");
        }
        e |= sl_buf_puts(&b, ", or a Lambda function with AWS_ENDPOINT_URL_LAMBDA set");
        if (e == 0) {
            config_err(cc, "%s", b.data);
        }
        sl_buf_fini(&b);
        return e ? SL_ENOMEM : SL_ECONFIG;
    }
    const struct sl_function_ops *ops = sl_function_type("lambda");
    assert(ops);
    cJSON *json = cJSON_CreateObject();
    int r = json ? 0 : SL_ENOMEM;
    if (r == 0 && (!cJSON_AddStringToObject(json, "type", "lambda") ||
                   !cJSON_AddStringToObject(json, "endpoint", endpoint) ||
                   !cJSON_AddStringToObject(json, "function_name", name))) {
        r = SL_ENOMEM;
    }
    struct sl_buf path;
    sl_buf_init(&path);
    if (r == 0 && sl_buf_printf(&path, "%s.FunctionName", mapping_path) < 0) {
        r = SL_ENOMEM;
    }
    if (r == 0) {
        r = config_function_check(cc, ops, json, path.data);
    }
    struct sl_function_conf *fc = r == SL_ENOMEM ? NULL : config_function_add(cc);
    if (fc) {
        fc->ops = ops;
        fc->name = sl_strdup(name);
        fc->json = json;
        json = NULL;
        fc->path = sl_buf_steal(&path);
        if (!fc->name || !fc->path) {
            r = SL_ENOMEM;
        }
        *ret_index = cfg->n_functions - 1;
    } else {
        r = SL_ENOMEM;
    }
    cJSON_Delete(json);
    sl_buf_fini(&path);
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Mappings */

static uint64_t config_fnv1a(const char *s, uint64_t h)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static uint64_t config_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* Derives a UUID-shaped id from what identifies a mapping: its EventSourceArn and its
 * FunctionName (AWS maps a function to a source once, and keeps the UUID when other settings
 * change, so editing BatchSize must not start a new mapping from its StartingPosition). Hashed
 * by two FNV-1a passes with different bases, each finished with a 64-bit mixer. Version nibble
 * 8 and variant 10 mark it as a custom (RFC 9562 version 8) UUID. Not a cryptographic hash; it
 * only has to be stable and to tell mappings apart. */
static int config_derive_uuid(const struct sl_mapping_core *core, char **ret_uuid)
{
    struct sl_buf text;
    sl_buf_init(&text);
    if (sl_buf_printf(&text, "%s\n%s", core->event_source_arn ? core->event_source_arn : "",
                      core->function_name ? core->function_name : "") < 0) {
        sl_buf_fini(&text);
        return SL_ENOMEM;
    }
    uint64_t h1 = config_mix(config_fnv1a(text.data, UINT64_C(0xcbf29ce484222325)));
    uint64_t h2 = config_mix(config_fnv1a(text.data, UINT64_C(0x84222325cbf29ce4)) ^ h1);
    sl_buf_fini(&text);
    h1 = (h1 & ~(UINT64_C(0xf) << 12)) | (UINT64_C(0x8) << 12);
    h2 = (h2 & ~(UINT64_C(0x3) << 62)) | (UINT64_C(0x2) << 62);
    char buf[37];
    (void)snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", (unsigned)(h1 >> 32),
                   (unsigned)((h1 >> 16) & 0xffff), (unsigned)(h1 & 0xffff), (unsigned)(h2 >> 48),
                   (unsigned long long)(h2 & UINT64_C(0xffffffffffff)));
    *ret_uuid = sl_strdup(buf);
    return *ret_uuid ? 0 : SL_ENOMEM;
}

static bool config_uuid_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > CONFIG_UUID_MAX || s[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') {
            return false;
        }
    }
    return true;
}

static void config_append_schemes(struct sl_buf *b, int *r)
{
    size_t n;
    const struct sl_source_ops *const *all = sl_source_all(&n);
    for (size_t i = 0; i < n; i++) {
        *r |= sl_buf_printf(b, "%s%s...", i ? ", " : "", all[i]->scheme);
        if (all[i]->arn_prefix) {
            *r |= sl_buf_printf(b, ", %s...", all[i]->arn_prefix);
        }
    }
}

/* When uri is served by an adapter this build left out (its meson feature option was off),
 * reports that at path.key, with what is allowed instead (a source's schemes, or the
 * destinations), and returns SL_ECONFIG. Returns 0 when uri is not such a one, SL_ENOMEM. */
static int config_left_out(
    struct config_ctx *cc, const char *path, const char *key, const char *uri, bool source)
{
    const struct sl_registry_feature *f = sl_registry_left_out(uri);
    if (!f) {
        return 0;
    }
    char shown[SL_URL_REDACTED_MAX];
    struct sl_buf b;
    sl_buf_init(&b);
    int r =
        sl_buf_printf(&b,
                      "%s: %s.%s: \"%s\" is a %s %s and this sluice was built without %s (%s "
                      "is built in by meson setup -D%s=enabled, which needs %s); allowed: ",
                      cc->file, path, key, sl_url_redact(uri, shown, sizeof(shown)), f->title,
                      source ? "source" : "destination", f->title, f->title, f->option, f->library);
    if (source) {
        config_append_schemes(&b, &r);
    } else {
        r |= sl_buf_puts(&b, CONFIG_DESTINATIONS);
    }
    if (r == 0) {
        config_err(cc, "%s", b.data);
    }
    sl_buf_fini(&b);
    cc->failed = true; /* the load fails even without memory for the message */
    return r ? SL_ENOMEM : SL_ECONFIG;
}

/* True when destination is kafka://T and T is one of the mapping's Topics. */
static bool config_is_source_topic(const cJSON *mapping, const char *destination)
{
    if (strncmp(destination, "kafka://", 8) != 0) {
        return false;
    }
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(mapping, "Topics");
    for (const cJSON *t = topics ? topics->child : NULL; t; t = t->next) {
        if (cJSON_IsString(t) && strcmp(t->valuestring, destination + 8) == 0) {
            return true;
        }
    }
    return false;
}

/* Checks DestinationConfig: only OnFailure, whose Destination a sink serves. */
static void config_destination(struct config_ctx *cc, struct sl_mapping_conf *mc, const char *path)
{
    const char *file = cc->file;
    const cJSON *dc = mc->core.destination_config;
    if (!dc) {
        return;
    }
    if (!cJSON_IsObject(dc)) {
        config_err(cc,
                   "%s: %s.DestinationConfig: not an object; allowed: {\"OnFailure\": "
                   "{\"Destination\": \"...\"}}",
                   file, path);
        return;
    }
    for (const cJSON *c = dc->child; c; c = c->next) {
        if (strcmp(c->string, "OnFailure") != 0) {
            config_err(
                cc,
                "%s: %s.DestinationConfig.%s: unsupported DestinationConfig parameter "
                "(AWS supports only OnFailure for event source mappings); allowed: OnFailure",
                file, path, c->string);
        }
    }
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(dc, "OnFailure");
    if (!of) {
        return;
    }
    if (!cJSON_IsObject(of)) {
        config_err(cc,
                   "%s: %s.DestinationConfig.OnFailure: not an object; allowed: "
                   "{\"Destination\": \"...\"} or {}",
                   file, path);
        return;
    }
    for (const cJSON *c = of->child; c; c = c->next) {
        if (strcmp(c->string, "Destination") != 0) {
            config_err(cc,
                       "%s: %s.DestinationConfig.OnFailure.%s: unknown key; allowed: "
                       "Destination",
                       file, path, c->string);
        }
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(of, "Destination");
    if (!d) {
        return;
    }
    if (!cJSON_IsString(d) || !d->valuestring[0]) {
        config_err(cc,
                   "%s: %s.DestinationConfig.OnFailure.Destination: not a non-empty string; "
                   "allowed: file:///dir, http(s)://..., an SQS queue ARN or URL",
                   file, path);
        return;
    }
    const struct sl_sink_ops *sink = sl_sink_for(d->valuestring);
    char errbuf[1024] = "";
    /* Shown redacted: a destination URL may carry a password or a token (url.h). */
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(d->valuestring, shown, sizeof(shown));
    if (!sink && config_left_out(cc, path, "DestinationConfig.OnFailure.Destination",
                                 d->valuestring, false) < 0) {
        return; /* reported; the load fails */
    } else if (!sink) {
        config_err(cc,
                   "%s: %s.DestinationConfig.OnFailure.Destination: \"%s\" is not a "
                   "destination sluice can write; allowed: " CONFIG_DESTINATIONS,
                   file, path, shown);
    } else if (sink->check(d->valuestring, errbuf, sizeof(errbuf)) < 0) {
        config_err(cc, "%s: %s.DestinationConfig.OnFailure.Destination: %s", file, path, errbuf);
    } else if (sink->uses_source_cluster && !mc->source->shares_cluster) {
        config_err(cc,
                   "%s: %s.DestinationConfig.OnFailure.Destination: \"%s\": kafka:// "
                   "destinations are for Kafka mappings (the topic is in the source's "
                   "cluster); allowed: file:///dir, http(s)://..., an SQS queue ARN or URL",
                   file, path, shown);
    } else if (config_is_source_topic(mc->json, d->valuestring)) {
        config_err(cc,
                   "%s: %s.DestinationConfig.OnFailure.Destination: \"%s\" is the source "
                   "topic; allowed: another topic of the same cluster",
                   file, path, shown);
    } else {
        mc->on_failure = d->valuestring;
    }
}

/* Checks the failure controls, filters and scaling keys whose rules go beyond the table. */
static void
config_failure_rules(struct config_ctx *cc, struct sl_mapping_conf *mc, const char *path)
{
    struct sl_mapping_core *core = &mc->core;
    const char *file = cc->file;
    if (core->max_record_age_s != -1 && core->max_record_age_s < 60) {
        config_err(cc,
                   "%s: %s.MaximumRecordAgeInSeconds: %lld is out of range; allowed: -1 or "
                   "60 to 604800",
                   file, path, (long long)core->max_record_age_s);
    }
    for (size_t i = 0; i < core->response_types.n; i++) {
        if (strcmp(core->response_types.items[i], "ReportBatchItemFailures") == 0) {
            mc->report_item_failures = true;
        } else {
            config_err(cc,
                       "%s: %s.FunctionResponseTypes[%zu]: \"%s\" is not a response type; "
                       "allowed: ReportBatchItemFailures",
                       file, path, i, core->response_types.items[i]);
        }
    }
    config_destination(cc, mc, path);
    if (core->filter_criteria) {
        struct sl_filter *f = NULL;
        char errbuf[512] = "";
        if (sl_filter_compile(core->filter_criteria, &f, errbuf, sizeof(errbuf)) < 0) {
            config_err(cc, "%s: %s.FilterCriteria.%s", file, path,
                       errbuf[0] ? errbuf : "invalid filter criteria");
        }
        sl_filter_free(f);
    }
    const cJSON *sc = core->scaling_config;
    if (sc) {
        const cJSON *mcy = cJSON_GetObjectItemCaseSensitive(sc, "MaximumConcurrency");
        if (!cJSON_IsObject(sc)) {
            config_err(cc,
                       "%s: %s.ScalingConfig: not an object; allowed: "
                       "{\"MaximumConcurrency\": 1 to 1000}",
                       file, path);
        } else {
            for (const cJSON *c = sc->child; c; c = c->next) {
                if (strcmp(c->string, "MaximumConcurrency") != 0) {
                    config_err(cc,
                               "%s: %s.ScalingConfig.%s: unknown key; allowed: "
                               "MaximumConcurrency",
                               file, path, c->string);
                }
            }
            if (mcy && (!cJSON_IsNumber(mcy) || mcy->valuedouble != (double)(int)mcy->valuedouble ||
                        mcy->valuedouble < 1 || mcy->valuedouble > 1000)) {
                char *v = cJSON_PrintUnformatted(mcy);
                config_err(cc,
                           "%s: %s.ScalingConfig.MaximumConcurrency: %s is not an integer "
                           "from 1 to 1000; allowed: 1 to 1000",
                           file, path, v ? v : "?");
                cJSON_free(v);
            } else if (mcy) {
                mc->max_concurrency = (int64_t)mcy->valuedouble;
            }
        }
    }
    if (core->tumbling_window_s != 0 && core->parallelization_factor != 1) {
        config_err(cc,
                   "%s: %s.TumblingWindowInSeconds: tumbling windows keep one state per "
                   "partition, so they need ParallelizationFactor 1 (it is %lld); allowed: "
                   "TumblingWindowInSeconds 0, or ParallelizationFactor 1",
                   file, path, (long long)core->parallelization_factor);
    }
}

/* Checks the keys whose rules depend on the source kind or on other keys. */
static void config_mapping_rules(struct config_ctx *cc,
                                 struct sl_mapping_conf *mc,
                                 const cJSON *obj,
                                 const char *path)
{
    const struct sl_source_ops *src = mc->source;
    struct sl_mapping_core *core = &mc->core;
    const char *file = cc->file;
    if (!cJSON_GetObjectItemCaseSensitive(obj, "MaximumBatchingWindowInSeconds")) {
        core->window_ms = src->caps->window_ms_default;
    }
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(obj, "BatchSize");
    if (!bs) {
        core->batch_size = src->caps->batch_size_default;
    } else if (core->batch_size > src->caps->batch_size_max) {
        config_err(cc, "%s: %s.BatchSize: %lld is out of range; allowed: 1 to %lld", file, path,
                   (long long)core->batch_size, (long long)src->caps->batch_size_max);
    }
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(obj, "StartingPosition");
    if (!sp && src->caps->starting_position_required) {
        config_err(cc,
                   "%s: %s.StartingPosition: missing required key (for %s "
                   "sources); allowed: one of TRIM_HORIZON, LATEST, AT_TIMESTAMP",
                   file, path, src->name);
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(obj, "StartingPositionTimestamp");
    bool at_ts = sp && core->starting_position == SL_START_AT_TIMESTAMP;
    if (at_ts && !ts) {
        config_err(cc,
                   "%s: %s.StartingPositionTimestamp: missing required key (with "
                   "StartingPosition AT_TIMESTAMP); allowed: seconds since the epoch",
                   file, path);
    } else if (ts && sp && !at_ts) {
        config_err(cc,
                   "%s: %s.StartingPositionTimestamp: only used with "
                   "StartingPosition AT_TIMESTAMP; allowed: remove it, or set "
                   "StartingPosition to AT_TIMESTAMP",
                   file, path);
    } else if (ts && at_ts && core->starting_position_ts_s > (int64_t)time(NULL)) {
        config_err(cc,
                   "%s: %s.StartingPositionTimestamp: %lld is in the future; "
                   "allowed: a time up to now, in seconds since the epoch",
                   file, path, (long long)core->starting_position_ts_s);
    } else if (at_ts && !src->caps->at_timestamp_supported) {
        config_err(cc,
                   "%s: %s.StartingPosition: AT_TIMESTAMP is not supported by %s sources; "
                   "allowed: TRIM_HORIZON or LATEST",
                   file, path, src->name);
    }
    config_failure_rules(cc, mc, path);
}

/* For a mapping without EventSourceArn: when it has SelfManagedEventSource.Endpoints.
 * KAFKA_BOOTSTRAP_SERVERS, *ret_arn is "kafka://" and the servers joined by commas (owned);
 * else NULL. The Kafka source checks the shape itself. Returns 0 or SL_ENOMEM. */
static int config_self_managed_arn(const cJSON *obj, char **ret_arn)
{
    *ret_arn = NULL;
    const cJSON *sme = cJSON_GetObjectItemCaseSensitive(obj, "SelfManagedEventSource");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(sme, "Endpoints");
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive(ep, "KAFKA_BOOTSTRAP_SERVERS");
    if (!cJSON_IsArray(servers) || !servers->child) {
        return 0;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, "kafka://");
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

static int config_load_mapping(struct config_ctx *cc, const cJSON *obj, size_t idx)
{
    struct sl_config *cfg = cc->cfg;
    struct sl_mapping_conf *mc = &cfg->mappings[idx];
    cc->fn_index[idx] = SIZE_MAX;
    struct sl_buf pb;
    sl_buf_init(&pb);
    if (sl_buf_printf(&pb, "$.mappings[%zu]", idx) < 0) {
        return SL_ENOMEM;
    }
    mc->path = sl_buf_steal(&pb);
    mc->json = cJSON_Duplicate(obj, 1);
    if (!mc->path || !mc->json) {
        return SL_ENOMEM;
    }
    const char *path = mc->path;
    if (!cJSON_IsObject(obj)) {
        config_err(cc,
                   "%s: %s: not an object; allowed: an object with EventSourceArn "
                   "and FunctionName",
                   cc->file, path);
        return SL_ECONFIG;
    }

    /* The source comes from the ARN; without one, keys are checked against every source's
     * table so that only keys no table knows are reported. */
    const cJSON *arn = cJSON_GetObjectItemCaseSensitive(obj, "EventSourceArn");
    const struct sl_source_ops *src = NULL;
    int result = 0;
    char *smk_arn = NULL;
    if (!arn) {
        /* Self-managed Kafka has no ARN: AWS names the cluster by its bootstrap servers. */
        int r = config_self_managed_arn(obj, &smk_arn);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (smk_arn) {
            r = config_left_out(cc, path, "SelfManagedEventSource", smk_arn, true);
            if (r < 0) {
                sl_free(smk_arn);
                return r; /* the one error a mapping of a left-out source gets */
            }
            src = sl_source_for_arn(smk_arn);
        } else {
            config_err(cc,
                       "%s: %s.EventSourceArn: missing required key; allowed: file:///path or "
                       "glob" CONFIG_KAFKA_SOURCES,
                       cc->file, path);
            result = SL_ECONFIG;
        }
    } else if (cJSON_IsString(arn)) {
        int r = config_left_out(cc, path, "EventSourceArn", arn->valuestring, true);
        if (r < 0) {
            return r; /* the one error a mapping of a left-out source gets */
        }
        src = sl_source_for_arn(arn->valuestring);
        if (!src) {
            struct sl_buf b;
            int e = 0;
            sl_buf_init(&b);
            /* Shown redacted: a URL of a source to come may carry credentials (url.h). */
            char shown[SL_URL_REDACTED_MAX];
            cJSON *qs = cJSON_CreateString(sl_url_redact(arn->valuestring, shown, sizeof(shown)));
            char *q = qs ? cJSON_PrintUnformatted(qs) : NULL;
            cJSON_Delete(qs);
            e |= q ? 0 : SL_ENOMEM;
            e |= sl_buf_printf(&b, "%s: %s.EventSourceArn: %s has an unknown scheme; allowed: ",
                               cc->file, path, q ? q : "");
            cJSON_free(q);
            config_append_schemes(&b, &e);
            if (e == 0) {
                config_err(cc, "%s", b.data);
            }
            sl_buf_fini(&b);
            if (e) {
                return SL_ENOMEM;
            }
            result = SL_ECONFIG;
        }
    }
    size_t n_src;
    const struct sl_source_ops *const *all = sl_source_all(&n_src);
    const struct sl_source_ops *const *use = src ? &src : all;
    size_t n_use = src ? 1 : n_src;
    struct sl_opt_target *targets = sl_calloc(n_use + 1, sizeof(*targets));
    if (!targets) {
        return SL_ENOMEM;
    }
    targets[0] = (struct sl_opt_target){.table = sl_config_mapping_opts, .base = &mc->core};
    int r = 0;
    for (size_t i = 0; i < n_use; i++) {
        targets[i + 1].table = use[i]->opts;
        targets[i + 1].lenient = src == NULL;
        targets[i + 1].base = sl_calloc(1, use[i]->ctx_size);
        if (!targets[i + 1].base) {
            r = SL_ENOMEM;
        }
    }
    if (r == 0) {
        r = sl_opt_apply(targets, n_use + 1, obj, cc->file, path, cc->errs);
        cc->failed = cc->failed || r < 0;
    }
    if (r == 0 && smk_arn && !mc->core.event_source_arn) {
        mc->core.event_source_arn = smk_arn;
        smk_arn = NULL;
    }
    sl_free(smk_arn);
    if (r == 0 && src) {
        char errbuf[1024] = "";
        r = src->check(targets[1].base, mc->core.event_source_arn, errbuf, sizeof(errbuf));
        if (r < 0 && r != SL_ENOMEM) {
            config_add_check_error(cc, path, src->opts, sl_config_mapping_opts, errbuf, r);
            r = SL_ECONFIG;
        }
    }
    for (size_t i = 0; i < n_use; i++) {
        if (targets[i + 1].base) {
            sl_opt_free(use[i]->opts, targets[i + 1].base);
            sl_free(targets[i + 1].base);
        }
    }
    sl_free(targets);
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r < 0) {
        result = r;
    }
    mc->source = src;
    if (src) {
        bool before = cc->failed;
        cc->failed = false;
        config_mapping_rules(cc, mc, obj, path);
        if (cc->failed) {
            result = SL_ECONFIG;
        }
        cc->failed = cc->failed || before;
    }

    if (mc->core.function_name) {
        r = config_resolve_function(cc, mc->core.function_name, path, &cc->fn_index[idx]);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }

    if (!cJSON_GetObjectItemCaseSensitive(obj, "UUID")) {
        sl_free(mc->core.uuid);
        mc->core.uuid = NULL;
        if (config_derive_uuid(&mc->core, &mc->core.uuid) < 0) {
            return SL_ENOMEM;
        }
        mc->uuid_derived = true;
    } else if (mc->core.uuid && !config_uuid_valid(mc->core.uuid)) {
        config_err(cc,
                   "%s: %s.UUID: \"%s\" is not a valid id; allowed: 1 to %d of "
                   "A-Z a-z 0-9 . _ - (not starting with .)",
                   cc->file, path, mc->core.uuid, CONFIG_UUID_MAX);
        result = SL_ECONFIG;
    }
    return result;
}

static int config_check_uuids(struct config_ctx *cc)
{
    const struct sl_config *cfg = cc->cfg;
    int result = 0;
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        const struct sl_mapping_conf *a = &cfg->mappings[i];
        for (size_t j = 0; a->core.uuid && j < i; j++) {
            const struct sl_mapping_conf *b = &cfg->mappings[j];
            if (!b->core.uuid || strcmp(a->core.uuid, b->core.uuid) != 0) {
                continue;
            }
            if (a->uuid_derived && b->uuid_derived) {
                config_err(cc,
                           "%s: %s: same EventSourceArn and FunctionName as %s (derived UUID %s); "
                           "allowed: a different UUID for each",
                           cc->file, a->path, b->path, a->core.uuid);
            } else {
                config_err(cc,
                           "%s: %s.UUID: \"%s\" is also the UUID of %s; allowed: "
                           "a UUID no other mapping has",
                           cc->file, a->path, a->core.uuid, b->path);
            }
            result = SL_ECONFIG;
            break;
        }
    }
    return result;
}

static int config_load_mappings(struct config_ctx *cc, const cJSON *maps)
{
    struct sl_config *cfg = cc->cfg;
    if (!cJSON_IsArray(maps) || cJSON_GetArraySize(maps) < 1) {
        config_err(cc,
                   "%s: $.mappings: %s; allowed: an array of at least one "
                   "mapping object",
                   cc->file, cJSON_IsArray(maps) ? "is empty" : "is not an array");
        return SL_ECONFIG;
    }
    size_t n = (size_t)cJSON_GetArraySize(maps);
    cfg->mappings = sl_calloc(n, sizeof(*cfg->mappings));
    cc->fn_index = sl_calloc(n, sizeof(*cc->fn_index));
    if (!cfg->mappings || !cc->fn_index) {
        return SL_ENOMEM;
    }
    int result = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, maps)
    {
        size_t idx = cfg->n_mappings++;
        int r = config_load_mapping(cc, m, idx);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }
    /* cfg->functions may have moved while lambda functions were added; link only now. */
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        if (cc->fn_index[i] != SIZE_MAX) {
            cfg->mappings[i].function = &cfg->functions[cc->fn_index[i]];
        }
    }
    int r = config_check_uuids(cc);
    return r < 0 ? r : result;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading */

int sl_config_load(const char *file, struct sl_config **ret_cfg, struct sl_errlist *errs)
{
    size_t errs_before = errs->n;
    char *text = NULL;
    cJSON *root = NULL;
    struct config_top top = {0};
    struct config_ctx cc = {.file = file, .errs = errs};
    int r;

    cc.cfg = sl_calloc(1, sizeof(*cc.cfg));
    if (!cc.cfg) {
        return SL_ENOMEM;
    }
    cc.cfg->file = sl_strdup(file);
    if (!cc.cfg->file) {
        r = SL_ENOMEM;
        goto fail;
    }
    r = config_read(file, &text, errs);
    if (r < 0) {
        goto fail;
    }
    root = config_parse(file, text, errs);
    if (!root) {
        r = SL_ECONFIG;
        goto fail;
    }
    r = config_find_nul(file, text, errs);
    if (r == SL_ENOMEM) {
        goto fail;
    }
    cc.failed = r < 0;
    r = config_expand(root, "$", file, errs);
    cc.failed = cc.failed || r < 0;
    if (r == SL_ENOMEM) {
        goto fail;
    }
    /* Validation goes on after expansion errors: a variable that is not set leaves its
     * "${...}" text in place, which is still a string of the expected type. */
    struct sl_opt_target targets[] = {
        {.table = sl_config_daemon_opts, .base = cc.cfg},
        {.table = config_top_opts, .base = &top},
    };
    r = sl_opt_apply(targets, SL_ARRAY_LEN(targets), root, file, "$", errs);
    cc.failed = cc.failed || r < 0;
    if (r == SL_ENOMEM) {
        goto fail;
    }
    if (!cJSON_GetObjectItemCaseSensitive(root, "region")) {
        const char *env_region = getenv("AWS_REGION");
        if (!env_region || !*env_region) {
            env_region = getenv("AWS_DEFAULT_REGION");
        }
        if (env_region && *env_region) {
            char *s = sl_strdup(env_region);
            if (!s) {
                r = SL_ENOMEM;
                goto fail;
            }
            sl_free(cc.cfg->region);
            cc.cfg->region = s;
        }
    }
    if (cJSON_IsObject(root)) {
        cc.functions = top.functions;
        r = config_load_functions(&cc, top.functions);
        if (r == SL_ENOMEM) {
            goto fail;
        }
        if (top.mappings) {
            r = config_load_mappings(&cc, top.mappings);
            if (r == SL_ENOMEM) {
                goto fail;
            }
        }
    }
    r = (cc.failed || errs->n > errs_before) ? SL_ECONFIG : 0;
    if (r < 0) {
        goto fail;
    }
    sl_free(cc.fn_index);
    sl_opt_free(config_top_opts, &top);
    cJSON_Delete(root);
    sl_free(text);
    *ret_cfg = cc.cfg;
    return 0;

fail:
    sl_free(cc.fn_index);
    sl_opt_free(config_top_opts, &top);
    cJSON_Delete(root);
    sl_free(text);
    sl_config_free(cc.cfg);
    return r == SL_ENOMEM ? SL_ENOMEM : SL_ECONFIG;
}

void sl_config_free(struct sl_config *cfg)
{
    if (!cfg) {
        return;
    }
    for (size_t i = 0; i < cfg->n_mappings; i++) {
        struct sl_mapping_conf *mc = &cfg->mappings[i];
        sl_opt_free(sl_config_mapping_opts, &mc->core);
        cJSON_Delete(mc->json);
        sl_free(mc->path);
    }
    sl_free(cfg->mappings);
    for (size_t i = 0; i < cfg->n_functions; i++) {
        config_function_fini(&cfg->functions[i]);
    }
    sl_free(cfg->functions);
    sl_opt_free(sl_config_daemon_opts, cfg);
    sl_free(cfg->file);
    sl_free(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* `sluice options` */

void sl_config_print_options(FILE *out, bool markdown)
{
    if (markdown) {
        fputs("# sluice configuration options\n\n"
              "Generated by `sluice options --markdown`; do not edit by hand.\n\n"
              "A configuration file is one JSON object: the daemon keys below, `functions` (an "
              "object of functions by name) and `mappings` (an array of at least one mapping). "
              "Every string value may use `${VAR}` to take text from the environment (`$${` "
              "writes a literal `${`). Sizes take `KB`/`MB`/`GB` (powers of 1000) or "
              "`KiB`/`MiB`/`GiB` (powers of 1024); durations take a number of seconds or `ms`, "
              "`s`, `m`, `h`, `d`.\n\n",
              out);
    } else {
        fputs("sluice configuration options\n\n"
              "A configuration file is one JSON object: the daemon keys, \"functions\" (by name) "
              "and \"mappings\" (at least one). String values may use ${VAR} from the "
              "environment.\n"
              "Sizes: KB/MB/GB = powers of 1000, KiB/MiB/GiB = powers of 1024. Durations: "
              "seconds, or ms, s, m, h, d.\n\n",
              out);
    }
    sl_opt_print(out, "Daemon", "Top-level keys of the configuration file.", sl_config_daemon_opts,
                 markdown);
    sl_opt_print(out, "Mapping",
                 "Keys of each entry of \"mappings\": AWS CreateEventSourceMapping names, plus "
                 "sluice's own in snake_case. The source's keys (below) go in the same object.",
                 sl_config_mapping_opts, markdown);
    size_t n;
    const struct sl_function_ops *const *types = sl_function_types(&n);
    for (size_t i = 0; i < n; i++) {
        char heading[128], intro[256];
        (void)snprintf(heading, sizeof(heading), "Function type %s", types[i]->name);
        (void)snprintf(intro, sizeof(intro),
                       "Keys of a function object with \"type\": \"%s\" in \"functions\".",
                       types[i]->name);
        sl_opt_print(out, heading, intro, types[i]->opts, markdown);
    }
    const struct sl_source_ops *const *srcs = sl_source_all(&n);
    for (size_t i = 0; i < n; i++) {
        char heading[128], intro[320];
        (void)snprintf(heading, sizeof(heading), "Source %s", srcs[i]->name);
        (void)snprintf(intro, sizeof(intro),
                       "Extra mapping keys when EventSourceArn starts with %s (BatchSize default "
                       "%lld, at most %lld; StartingPosition %s).",
                       srcs[i]->scheme, (long long)srcs[i]->caps->batch_size_default,
                       (long long)srcs[i]->caps->batch_size_max,
                       srcs[i]->caps->starting_position_required ? "required" : "optional");
        sl_opt_print(out, heading, intro, srcs[i]->opts, markdown);
    }
}

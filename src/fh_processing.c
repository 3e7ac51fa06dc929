/* SPDX-License-Identifier: Apache-2.0 */
/* fh_processing.c: a delivery stream's ProcessingConfiguration read from its JSON: the list of
 * processors and their Parameters lists, each value checked where it is (errors name the JSON
 * path and what is allowed), into the Lambda transform's settings (fh_transform.h), the
 * compiled MetadataExtractionQuery (fh_partition.h) and AppendDelimiterToRecord. It decides
 * nothing at run time. Main thread, at config time; nothing logs. */
#include "fh_processing.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define FHP_VALUE_MAX 5120
#define FHP_TYPES     "Lambda, MetadataExtraction, AppendDelimiterToRecord"

struct fhp_ctx {
    const char *file;
    struct sl_errlist *errs;
    int r; /* SL_ECONFIG or SL_ENOMEM once something failed */
};

static void fhp_fail(struct fhp_ctx *x, int r)
{
    if (x->r != SL_ENOMEM) {
        x->r = r;
    }
}

/* The parameter names each type takes (NULL-ended), and which is required. */
static const char *const fhp_lambda_params[] = {
    "LambdaArn", "NumberOfRetries", "BufferSizeInMBs", "BufferIntervalInSeconds", "RoleArn", NULL};
static const char *const fhp_meta_params[] = {"MetadataExtractionQuery", "JsonParsingEngine", NULL};
static const char *const fhp_delim_params[] = {"Delimiter", NULL};

static void fhp_allowed(struct sl_buf *b, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        if (sl_buf_printf(b, "%s%s", i ? ", " : "", names[i]) < 0) {
            return;
        }
    }
    if (!names[0] && sl_buf_puts(b, "none (this processor takes no parameters)") < 0) {
        return;
    }
}

/* Reads an integer string in [min, max] at path. */
static bool
fhp_int(struct fhp_ctx *x, const char *path, const char *v, long min, long max, long *ret)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        sl_errlist_add(x->errs, "%s: %s: \"%s\"; allowed: an integer from %ld to %ld, as a string",
                       x->file, path, v, min, max);
        fhp_fail(x, SL_ECONFIG);
        return false;
    }
    *ret = n;
    return true;
}

/* AppendDelimiterToRecord's Delimiter: \n \t \r \\ decoded, other bytes as they are. */
static void
fhp_delimiter(struct fhp_ctx *x, const char *path, const char *v, struct sl_fh_processing *p)
{
    size_t len = strlen(v);
    char *d = sl_malloc(len + 1);
    if (!d) {
        fhp_fail(x, SL_ENOMEM);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '\\' && i + 1 < len) {
            char e = v[++i];
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == '\\' ? '\\' : 0;
            if (!c) {
                sl_errlist_add(x->errs,
                               "%s: %s: unknown escape \\%c; allowed: \\n \\t \\r \\\\ and other "
                               "characters as they are",
                               x->file, path, e);
                fhp_fail(x, SL_ECONFIG);
                sl_free(d);
                return;
            }
        }
        d[n++] = c;
    }
    d[n] = '\0';
    sl_free(p->delimiter);
    p->delimiter = d;
    p->delimiter_len = n;
}

/* One Parameters entry of a processor of type; values land in p. */
static void fhp_param(struct fhp_ctx *x,
                      const char *type,
                      const char *const *names,
                      const cJSON *e,
                      const char *ppath,
                      bool *seen,
                      struct sl_fh_processing *p)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "ParameterName");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(e, "ParameterValue");
    size_t k = 0;
    while (names[k] && !(cJSON_IsString(name) && strcmp(names[k], name->valuestring) == 0)) {
        k++;
    }
    if (!cJSON_IsObject(e) || !cJSON_IsString(name) || !names[k] || cJSON_GetArraySize(e) != 2) {
        struct sl_buf b;
        sl_buf_init(&b);
        fhp_allowed(&b, names);
        sl_errlist_add(x->errs,
                       "%s: %s%s: %s%s%s; allowed: {\"ParameterName\": NAME, \"ParameterValue\": "
                       "\"...\"} with NAME one of %s for a %s processor",
                       x->file, ppath, cJSON_IsString(name) ? ".ParameterName" : "",
                       cJSON_IsString(name) ? "\"" : "not a parameter",
                       cJSON_IsString(name) ? name->valuestring : "",
                       cJSON_IsString(name) ? "\" is not a parameter of this type" : "",
                       b.data ? b.data : "", type);
        sl_buf_fini(&b);
        fhp_fail(x, SL_ECONFIG);
        return;
    }
    struct sl_buf vpath;
    sl_buf_init(&vpath);
    if (sl_buf_printf(&vpath, "%s.ParameterValue", ppath) < 0) {
        sl_buf_fini(&vpath);
        fhp_fail(x, SL_ENOMEM);
        return;
    }
    const char *v = cJSON_IsString(value) ? value->valuestring : NULL;
    size_t len = v ? strlen(v) : 0;
    if (seen[k]) {
        sl_errlist_add(x->errs, "%s: %s.ParameterName: %s given twice; allowed: each once", x->file,
                       ppath, names[k]);
        fhp_fail(x, SL_ECONFIG);
    } else if (!v || len == 0 || len > FHP_VALUE_MAX || strspn(v, " \t\r\n") == len) {
        sl_errlist_add(x->errs, "%s: %s: %s; allowed: a string of 1 to %d characters, not blank",
                       x->file, vpath.data, v ? "empty, blank or too long" : "not a string",
                       FHP_VALUE_MAX);
        fhp_fail(x, SL_ECONFIG);
    } else if (strcmp(names[k], "LambdaArn") == 0) {
        p->lambda.lambda_arn = sl_strdup(v);
        p->lambda.lambda_arn_path = sl_strdup(vpath.data);
        if (!p->lambda.lambda_arn || !p->lambda.lambda_arn_path) {
            fhp_fail(x, SL_ENOMEM);
        }
    } else if (strcmp(names[k], "RoleArn") == 0) {
        p->lambda.role_arn = sl_strdup(v);
        if (!p->lambda.role_arn) {
            fhp_fail(x, SL_ENOMEM);
        }
    } else if (strcmp(names[k], "NumberOfRetries") == 0) {
        long n;
        if (fhp_int(x, vpath.data, v, 0, SL_FH_RETRIES_MAX, &n)) {
            p->lambda.number_of_retries = n;
        }
    } else if (strcmp(names[k], "BufferIntervalInSeconds") == 0) {
        long n;
        if (fhp_int(x, vpath.data, v, 0, SL_FH_BUFFER_INTERVAL_MAX, &n)) {
            p->lambda.buffer_interval_ms = n * 1000;
        }
    } else if (strcmp(names[k], "BufferSizeInMBs") == 0) {
        char *end;
        double mb = strtod(v, &end);
        double bytes = floor(mb * 1024 * 1024);
        if (end == v || *end || !isfinite(mb) || bytes < SL_FH_BUFFER_BYTES_MIN ||
            bytes > SL_FH_BUFFER_BYTES_MAX) {
            sl_errlist_add(x->errs,
                           "%s: %s: \"%s\"; allowed: a number of MB from 0.2 to 3, as a string",
                           x->file, vpath.data, v);
            fhp_fail(x, SL_ECONFIG);
        } else {
            p->lambda.buffer_bytes = (int64_t)bytes;
        }
    } else if (strcmp(names[k], "JsonParsingEngine") == 0) {
        if (strcmp(v, "JQ-1.6") != 0) {
            sl_errlist_add(x->errs, "%s: %s: \"%s\"; allowed: JQ-1.6", x->file, vpath.data, v);
            fhp_fail(x, SL_ECONFIG);
        }
    } else if (strcmp(names[k], "Delimiter") == 0) {
        fhp_delimiter(x, vpath.data, v, p);
    } else if (strcmp(names[k], "MetadataExtractionQuery") == 0) {
        int r = sl_fh_query_new(v, x->file, vpath.data, &p->query, x->errs);
        if (r < 0) {
            fhp_fail(x, r);
        }
    }
    seen[k] = true;
    sl_buf_fini(&vpath);
}

/* One entry of Processors. done: the types seen so far (by index in the known list). */
static void fhp_processor(
    struct fhp_ctx *x, const cJSON *proc, const char *ppath, bool *done, struct sl_fh_processing *p)
{
    static const char *const known[] = {"Lambda", "MetadataExtraction", "AppendDelimiterToRecord"};
    static const char *const refused[] = {"RecordDeAggregation", "Decompression",
                                          "CloudWatchLogProcessing"};
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(proc, "Type");
    const char *t = cJSON_IsString(type) ? type->valuestring : NULL;
    size_t k = 0;
    while (t && k < SL_ARRAY_LEN(known) && strcmp(known[k], t) != 0) {
        k++;
    }
    bool not_built = false;
    for (size_t i = 0; t && i < SL_ARRAY_LEN(refused); i++) {
        not_built = not_built || strcmp(refused[i], t) == 0;
    }
    if (!cJSON_IsObject(proc) || !t || k == SL_ARRAY_LEN(known)) {
        sl_errlist_add(x->errs, "%s: %s.Type: %s%s%s%s; allowed: " FHP_TYPES, x->file, ppath,
                       t ? "\"" : "missing or not a string", t ? t : "", t ? "\"" : "",
                       not_built ? " is not built"
                       : t       ? " is not a processor type"
                                 : "");
        fhp_fail(x, SL_ECONFIG);
        return;
    }
    if (done[k]) {
        sl_errlist_add(x->errs, "%s: %s.Type: a second %s processor; allowed: one of each type",
                       x->file, ppath, t);
        fhp_fail(x, SL_ECONFIG);
        return;
    }
    done[k] = true;
    const char *const *names = k == 0   ? fhp_lambda_params
                               : k == 1 ? fhp_meta_params
                                        : fhp_delim_params;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, proc)
    {
        if (strcmp(kv->string, "Type") != 0 && strcmp(kv->string, "Parameters") != 0) {
            sl_errlist_add(x->errs, "%s: %s.%s: unknown key; allowed: Type, Parameters", x->file,
                           ppath, kv->string);
            fhp_fail(x, SL_ECONFIG);
        }
    }
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(proc, "Parameters");
    if (params && !cJSON_IsArray(params)) {
        sl_errlist_add(x->errs,
                       "%s: %s.Parameters: not a list; allowed: a list of "
                       "{\"ParameterName\", \"ParameterValue\"}",
                       x->file, ppath);
        fhp_fail(x, SL_ECONFIG);
        return;
    }
    bool seen[8] = {false};
    int j = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, params)
    {
        struct sl_buf pp;
        sl_buf_init(&pp);
        if (sl_buf_printf(&pp, "%s.Parameters[%d]", ppath, j++) < 0) {
            fhp_fail(x, SL_ENOMEM);
            return;
        }
        fhp_param(x, t, names, e, pp.data, seen, p);
        sl_buf_fini(&pp);
    }
    const char *required = k == 0 ? "LambdaArn" : k == 1 ? "MetadataExtractionQuery" : NULL;
    if (required && !seen[0]) {
        sl_errlist_add(x->errs, "%s: %s.Parameters: no %s; allowed: a %s processor needs one",
                       x->file, ppath, required, t);
        fhp_fail(x, SL_ECONFIG);
    }
    if (k == 0) {
        p->lambda.enabled = true;
    } else if (k == 2) {
        p->append_delimiter = true;
        if (!p->delimiter) {
            p->delimiter = sl_strdup("\n");
            p->delimiter_len = 1;
            if (!p->delimiter) {
                fhp_fail(x, SL_ENOMEM);
            }
        }
    }
}

int sl_fh_processing_parse(const cJSON *pc,
                           const char *file,
                           const char *path,
                           struct sl_fh_processing *ret,
                           struct sl_errlist *errs)
{
    struct sl_fh_processing p = {0};
    p.lambda.number_of_retries = SL_FH_RETRIES_DEFAULT;
    p.lambda.buffer_bytes = SL_FH_BUFFER_BYTES_DEFAULT;
    p.lambda.buffer_interval_ms = SL_FH_BUFFER_INTERVAL_DEFAULT * 1000;
    struct fhp_ctx x = {.file = file, .errs = errs};
    if (pc && !cJSON_IsNull(pc) && !cJSON_IsObject(pc)) {
        sl_errlist_add(errs,
                       "%s: %s: not an object; allowed: {\"Enabled\": true|false, "
                       "\"Processors\": [...]}",
                       file, path);
        fhp_fail(&x, SL_ECONFIG);
    }
    const cJSON *top = cJSON_IsObject(pc) ? pc : NULL;
    const cJSON *kv;
    cJSON_ArrayForEach(kv, top)
    {
        if (strcmp(kv->string, "Enabled") == 0) {
            if (!cJSON_IsBool(kv)) {
                sl_errlist_add(errs, "%s: %s.Enabled: not a boolean; allowed: true or false", file,
                               path);
                fhp_fail(&x, SL_ECONFIG);
            }
            p.enabled = cJSON_IsTrue(kv);
        } else if (strcmp(kv->string, "Processors") == 0) {
            if (!cJSON_IsArray(kv)) {
                sl_errlist_add(errs,
                               "%s: %s.Processors: not a list; allowed: a list of "
                               "{\"Type\", \"Parameters\"}",
                               file, path);
                fhp_fail(&x, SL_ECONFIG);
                continue;
            }
            bool done[3] = {false};
            int i = 0;
            const cJSON *proc;
            cJSON_ArrayForEach(proc, kv)
            {
                struct sl_buf pp;
                sl_buf_init(&pp);
                if (sl_buf_printf(&pp, "%s.Processors[%d]", path, i++) < 0) {
                    fhp_fail(&x, SL_ENOMEM);
                    break;
                }
                fhp_processor(&x, proc, pp.data, done, &p);
                sl_buf_fini(&pp);
            }
        } else {
            sl_errlist_add(errs, "%s: %s.%s: unknown key; allowed: Enabled, Processors", file, path,
                           kv->string);
            fhp_fail(&x, SL_ECONFIG);
        }
    }
    const cJSON *procs = top ? cJSON_GetObjectItemCaseSensitive(top, "Processors") : NULL;
    if (cJSON_GetArraySize(procs) > 0 && !cJSON_GetObjectItemCaseSensitive(top, "Enabled")) {
        /* AWS's default is not written down: say it rather than guess */
        sl_errlist_add(errs, "%s: %s.Enabled: missing beside Processors; allowed: true or false",
                       file, path);
        fhp_fail(&x, SL_ECONFIG);
    }
    if (x.r < 0) {
        sl_fh_processing_fini(&p);
        return x.r;
    }
    if (!p.enabled) {
        /* checked, not run */
        sl_fh_processing_fini(&p);
        p.lambda.number_of_retries = SL_FH_RETRIES_DEFAULT;
        p.lambda.buffer_bytes = SL_FH_BUFFER_BYTES_DEFAULT;
        p.lambda.buffer_interval_ms = SL_FH_BUFFER_INTERVAL_DEFAULT * 1000;
    }
    *ret = p;
    return 0;
}

void sl_fh_processing_fini(struct sl_fh_processing *p)
{
    sl_fh_transform_conf_fini(&p->lambda);
    sl_fh_query_free(p->query);
    sl_free(p->delimiter);
    memset(p, 0, sizeof(*p));
}

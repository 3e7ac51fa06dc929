/* SPDX-License-Identifier: Apache-2.0 */
/* opt.c: applying option tables. It owns turning a JSON object into the fields of a struct as
 * one or more tables of struct sl_opt describe them: defaults (parsed from the same text a user
 * would write, by the same code), types, ranges, required keys, unknown keys (with the nearest
 * known key suggested), and freeing what it allocated. Every problem becomes one line in a
 * struct sl_errlist, "FILE: PATH.KEY: what is wrong; allowed: what is allowed", so a user sees
 * every mistake of a file at once; values of SL_OPT_SECRET options are never formatted, not
 * even in errors. Reading sizes and durations and describing options is opt_text.c's (below
 * this file); printing the tables is opt_print.c's. It must not log (the caller reports) and
 * does no I/O. Any thread; no global state. */
#include "opt_int.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Adds "file: path.key: <what> [value]; allowed: <allowed of o>" to errs. what is a printf
 * format; value (may be NULL) is quoted after it. Returns SL_ECONFIG, or SL_ENOMEM. */
static int opt_fail(struct sl_errlist *errs,
                    const char *file,
                    const char *path,
                    const char *key,
                    const struct sl_opt *o,
                    const cJSON *value,
                    const char *what)
{
    struct sl_buf b;
    int r = 0;
    sl_buf_init(&b);
    r |= sl_buf_printf(&b, "%s: %s%s%s: ", file, path, key ? "." : "", key ? key : "");
    if (value) {
        opt_text_value(&b, o, value, &r);
        r |= sl_buf_puts(&b, " ");
    }
    r |= sl_buf_puts(&b, what);
    r |= sl_buf_puts(&b, "; allowed: ");
    opt_text_allowed(&b, o, &r);
    if (r == 0) {
        sl_errlist_add(errs, "%s", b.data);
    }
    sl_buf_fini(&b);
    return r ? SL_ENOMEM : SL_ECONFIG;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing one value */

static bool opt_json_int(const cJSON *v, int64_t *ret)
{
    if (!cJSON_IsNumber(v)) {
        return false;
    }
    double d = v->valuedouble;
    /* 2^63 is exactly representable; anything at or above it does not fit. */
    if (!isfinite(d) || d != floor(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
        return false;
    }
    *ret = (int64_t)d;
    return true;
}

static int opt_check_range(const struct sl_opt *o,
                           int64_t v,
                           const cJSON *value,
                           const char *file,
                           const char *path,
                           struct sl_errlist *errs)
{
    if (!opt_text_has_range(o) || (v >= o->min && v <= o->max)) {
        return 0;
    }
    struct sl_buf b;
    int r = 0;
    sl_buf_init(&b);
    r |= sl_buf_printf(&b, "%s: %s.%s: ", file, path, o->name);
    if (o->flags & SL_OPT_SECRET) {
        r |= sl_buf_puts(&b, "<hidden>");
    } else if (o->type == SL_OPT_STRLIST) {
        r |= sl_buf_printf(&b, "%" PRId64 " items", v);
    } else {
        opt_text_value(&b, o, value, &r);
        if (o->type == SL_OPT_SIZE || o->type == SL_OPT_DURATION) {
            if (cJSON_IsString(value)) {
                r |= sl_buf_puts(&b, " (");
                opt_text_bound(&b, o, v, &r);
                r |= sl_buf_puts(&b, ")");
            }
        }
    }
    r |= sl_buf_puts(&b, " is out of range; allowed: ");
    opt_text_range(&b, o, &r);
    if (r == 0) {
        sl_errlist_add(errs, "%s", b.data);
    }
    sl_buf_fini(&b);
    return r ? SL_ENOMEM : SL_ECONFIG;
}

static int opt_set_strlist(const struct sl_opt *o,
                           struct sl_strlist *l,
                           const cJSON *v,
                           const char *file,
                           const char *path,
                           struct sl_errlist *errs)
{
    if (!cJSON_IsArray(v)) {
        return opt_fail(errs, file, path, o->name, o, v, "is not an array of strings");
    }
    int n = cJSON_GetArraySize(v);
    int r = 0;
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            char key[256];
            (void)snprintf(key, sizeof(key), "%s[%d]", o->name, i);
            int e = opt_fail(errs, file, path, key, o, it, "is not a string");
            if (e == SL_ENOMEM) {
                return e;
            }
            r = e;
        }
        i++;
    }
    if (r < 0) {
        return r;
    }
    r = opt_check_range(o, n, v, file, path, errs);
    if (r < 0) {
        return r;
    }
    char **items = sl_calloc((size_t)n ? (size_t)n : 1, sizeof(*items));
    if (!items) {
        return SL_ENOMEM;
    }
    i = 0;
    cJSON_ArrayForEach(it, v)
    {
        items[i] = sl_strdup(it->valuestring);
        if (!items[i]) {
            for (int j = 0; j < i; j++) {
                sl_free(items[j]);
            }
            sl_free(items);
            return SL_ENOMEM;
        }
        i++;
    }
    for (size_t j = 0; j < l->n; j++) {
        sl_free(l->items[j]);
    }
    sl_free(l->items);
    l->items = items;
    l->n = (size_t)n;
    return 0;
}

static int opt_set_strmap(const struct sl_opt *o,
                          struct sl_strmap *m,
                          const cJSON *v,
                          const char *file,
                          const char *path,
                          struct sl_errlist *errs)
{
    if (!cJSON_IsObject(v)) {
        return opt_fail(errs, file, path, o->name, o, v, "is not an object of strings");
    }
    int r = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            char key[512];
            (void)snprintf(key, sizeof(key), "%s.%s", o->name, it->string);
            int e = opt_fail(errs, file, path, key, o, it, "is not a string");
            if (e == SL_ENOMEM) {
                return e;
            }
            r = e;
        }
    }
    if (r < 0) {
        return r;
    }
    struct sl_strmap nm = {0};
    size_t n = (size_t)cJSON_GetArraySize(v);
    nm.keys = sl_calloc(n ? n : 1, sizeof(char *));
    nm.values = sl_calloc(n ? n : 1, sizeof(char *));
    if (!nm.keys || !nm.values) {
        sl_strmap_clear(&nm, false);
        return SL_ENOMEM;
    }
    cJSON_ArrayForEach(it, v)
    {
        nm.keys[nm.n] = sl_strdup(it->string);
        nm.values[nm.n] = sl_strdup(it->valuestring);
        nm.n++;
        if (!nm.keys[nm.n - 1] || !nm.values[nm.n - 1]) {
            sl_strmap_clear(&nm, false);
            return SL_ENOMEM;
        }
    }
    sl_strmap_clear(m, false);
    *m = nm;
    return 0;
}

/* Parses v into o's field in base. Returns 0, SL_ECONFIG (one error added) or SL_ENOMEM. On
 * error the field keeps its previous value. */
static int opt_set(const struct sl_opt *o,
                   void *base,
                   const cJSON *v,
                   const char *file,
                   const char *path,
                   struct sl_errlist *errs)
{
    char *field = (char *)base + o->off;
    int64_t iv = 0;
    int r;

    switch (o->type) {
    case SL_OPT_STR: {
        if (!cJSON_IsString(v)) {
            return opt_fail(errs, file, path, o->name, o, v, "is not a string");
        }
        char *s = sl_strdup(v->valuestring);
        if (!s) {
            return SL_ENOMEM;
        }
        char **dst = (char **)(void *)field;
        sl_free(*dst);
        *dst = s;
        return 0;
    }
    case SL_OPT_BOOL:
        if (!cJSON_IsBool(v)) {
            return opt_fail(errs, file, path, o->name, o, v, "is not a boolean");
        }
        *(bool *)(void *)field = cJSON_IsTrue(v);
        return 0;
    case SL_OPT_INT:
        if (!opt_json_int(v, &iv)) {
            return opt_fail(errs, file, path, o->name, o, v, "is not an integer");
        }
        break;
    case SL_OPT_SIZE:
        if (cJSON_IsString(v)) {
            if (sl_opt_parse_size(v->valuestring, &iv) < 0) {
                return opt_fail(errs, file, path, o->name, o, v, "is not a size");
            }
        } else if (!opt_json_int(v, &iv) || iv < 0) {
            return opt_fail(errs, file, path, o->name, o, v, "is not a size");
        }
        break;
    case SL_OPT_DURATION:
        if (cJSON_IsString(v)) {
            if (sl_opt_parse_duration(v->valuestring, &iv) < 0) {
                return opt_fail(errs, file, path, o->name, o, v, "is not a duration");
            }
        } else if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
                   v->valuedouble > (double)(INT64_MAX / 1000)) {
            return opt_fail(errs, file, path, o->name, o, v, "is not a duration");
        } else {
            iv = (int64_t)llround(v->valuedouble * 1000.0);
        }
        break;
    case SL_OPT_SECONDS:
        if (!opt_json_int(v, &iv) || iv > INT64_MAX / 1000 || iv < INT64_MIN / 1000) {
            return opt_fail(errs, file, path, o->name, o, v, "is not a whole number of seconds");
        }
        iv *= 1000;
        break;
    case SL_OPT_ENUM: {
        int idx = 0;
        if (cJSON_IsString(v)) {
            size_t len = strlen(v->valuestring);
            for (const char *c = o->choices; *c; idx++) {
                const char *end = strchr(c, '|');
                size_t clen = end ? (size_t)(end - c) : strlen(c);
                if (clen == len && strncmp(c, v->valuestring, len) == 0) {
                    *(int *)(void *)field = idx;
                    return 0;
                }
                c += clen + (end ? 1 : 0);
            }
        }
        return opt_fail(errs, file, path, o->name, o, v, "is not a valid choice");
    }
    case SL_OPT_STRLIST:
        return opt_set_strlist(o, (struct sl_strlist *)(void *)field, v, file, path, errs);
    case SL_OPT_STRMAP:
        return opt_set_strmap(o, (struct sl_strmap *)(void *)field, v, file, path, errs);
    case SL_OPT_JSON: {
        cJSON *dup = cJSON_Duplicate(v, 1);
        if (!dup) {
            return SL_ENOMEM;
        }
        cJSON **dst = (cJSON **)(void *)field;
        cJSON_Delete(*dst);
        *dst = dup;
        return 0;
    }
    case SL_OPT_TYPE_COUNT:
        break;
    }
    assert(o->type == SL_OPT_INT || o->type == SL_OPT_SIZE || o->type == SL_OPT_DURATION ||
           o->type == SL_OPT_SECONDS);
    r = opt_check_range(o, iv, v, file, path, errs);
    if (r < 0) {
        return r;
    }
    *(int64_t *)(void *)field = iv;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Tables */

static void opt_field_clear(const struct sl_opt *o, void *base)
{
    char *field = (char *)base + o->off;
    switch (o->type) {
    case SL_OPT_STR: {
        char **s = (char **)(void *)field;
        sl_free(*s);
        *s = NULL;
        break;
    }
    case SL_OPT_STRLIST: {
        struct sl_strlist *l = (struct sl_strlist *)(void *)field;
        for (size_t i = 0; i < l->n; i++) {
            sl_free(l->items[i]);
        }
        sl_free(l->items);
        l->items = NULL;
        l->n = 0;
        break;
    }
    case SL_OPT_STRMAP:
        sl_strmap_clear((struct sl_strmap *)(void *)field, false);
        break;
    case SL_OPT_JSON: {
        cJSON **j = (cJSON **)(void *)field;
        cJSON_Delete(*j);
        *j = NULL;
        break;
    }
    case SL_OPT_BOOL:
        *(bool *)(void *)field = false;
        break;
    case SL_OPT_ENUM:
        *(int *)(void *)field = 0;
        break;
    default:
        *(int64_t *)(void *)field = 0;
        break;
    }
}

void sl_opt_free(const struct sl_opt *table, void *base)
{
    for (const struct sl_opt *o = table; o && o->name; o++) {
        opt_field_clear(o, base);
    }
}

/* About the textual default: STR and ENUM defaults are the string itself; other types are read
 * as JSON ("100", "true", "[\"a\"]") and, when that fails, as a JSON string ("16MiB", "10s"),
 * then go through opt_set like a user's value. */
int sl_opt_defaults(const struct sl_opt *table, void *base)
{
    for (const struct sl_opt *o = table; o && o->name; o++) {
        opt_field_clear(o, base);
        if (!o->def) {
            continue;
        }
        cJSON *v = NULL;
        if (o->type != SL_OPT_STR && o->type != SL_OPT_ENUM) {
            v = cJSON_ParseWithOpts(o->def, NULL, 1);
        }
        if (!v) {
            v = cJSON_CreateString(o->def);
        }
        if (!v) {
            return SL_ENOMEM;
        }
        struct sl_errlist errs;
        sl_errlist_init(&errs);
        int r = opt_set(o, base, v, "<default>", "$", &errs);
        cJSON_Delete(v);
        sl_errlist_fini(&errs);
        if (r == SL_ENOMEM) {
            return r;
        }
        /* A default the table's own parser rejects is a bug in the table. */
        assert(r == 0);
    }
    return 0;
}

/* Case-insensitive Levenshtein distance, capped: keys longer than 63 characters count as far. */
static size_t opt_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) {
        return SIZE_MAX;
    }
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best) {
                best = prev[j] + 1;
            }
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            cur[j] = best;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

static int opt_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int opt_unknown_key(const struct sl_opt_target *targets,
                           size_t n_targets,
                           const char *key,
                           const char *file,
                           const char *path,
                           struct sl_errlist *errs)
{
    size_t n = 0;
    for (size_t t = 0; t < n_targets; t++) {
        for (const struct sl_opt *o = targets[t].table; o && o->name; o++) {
            n++;
        }
    }
    const char **names = sl_calloc(n ? n : 1, sizeof(*names));
    if (!names) {
        return SL_ENOMEM;
    }
    const char *guess = NULL;
    size_t guess_d = 3; /* suggest only within two edits (or a case difference) */
    n = 0;
    for (size_t t = 0; t < n_targets; t++) {
        for (const struct sl_opt *o = targets[t].table; o && o->name; o++) {
            names[n++] = o->name;
            size_t d = opt_distance(key, o->name);
            if (d < guess_d && d < strlen(o->name)) {
                guess = o->name;
                guess_d = d;
            }
        }
    }
    qsort(names, n, sizeof(*names), opt_cmp_str);
    struct sl_buf b;
    int r = 0;
    sl_buf_init(&b);
    r |= sl_buf_printf(&b, "%s: %s.%s: unknown key", file, path, key);
    if (guess) {
        r |= sl_buf_printf(&b, " (did you mean %s?)", guess);
    }
    r |= sl_buf_puts(&b, "; allowed: ");
    for (size_t i = 0; i < n; i++) {
        r |= sl_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    }
    if (n == 0) {
        r |= sl_buf_puts(&b, "no keys");
    }
    if (r == 0) {
        sl_errlist_add(errs, "%s", b.data);
    }
    sl_buf_fini(&b);
    sl_free(names);
    return r ? SL_ENOMEM : SL_ECONFIG;
}

int sl_opt_apply(const struct sl_opt_target *targets,
                 size_t n_targets,
                 const cJSON *obj,
                 const char *file,
                 const char *path,
                 struct sl_errlist *errs)
{
    int result = 0;
    for (size_t t = 0; t < n_targets; t++) {
        int r = sl_opt_defaults(targets[t].table, targets[t].base);
        if (r < 0) {
            return r;
        }
    }
    if (!cJSON_IsObject(obj)) {
        struct sl_buf b;
        int r = 0;
        sl_buf_init(&b);
        r |= sl_buf_printf(&b, "%s: %s: ", file, path);
        opt_text_value(&b, NULL, obj, &r);
        r |= sl_buf_puts(&b, " is not an object; allowed: an object");
        if (r == 0) {
            sl_errlist_add(errs, "%s", b.data);
        }
        sl_buf_fini(&b);
        return r ? SL_ENOMEM : SL_ECONFIG;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, obj)
    {
        int r = 0;
        bool dup = false;
        for (const cJSON *d = obj->child; d != c; d = d->next) {
            if (strcmp(d->string, c->string) == 0) {
                dup = true;
                break;
            }
        }
        if (dup) {
            sl_errlist_add(errs, "%s: %s.%s: duplicate key; allowed: each key once", file, path,
                           c->string);
            result = SL_ECONFIG;
            continue;
        }
        const struct sl_opt *found = NULL;
        void *base = NULL;
        for (size_t t = 0; t < n_targets && !found; t++) {
            for (const struct sl_opt *o = targets[t].table; o && o->name; o++) {
                if (strcmp(o->name, c->string) == 0) {
                    found = o;
                    base = targets[t].base;
                    break;
                }
            }
        }
        if (!found) {
            r = opt_unknown_key(targets, n_targets, c->string, file, path, errs);
        } else {
            r = opt_set(found, base, c, file, path, errs);
        }
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = SL_ECONFIG;
        }
    }
    for (size_t t = 0; t < n_targets; t++) {
        for (const struct sl_opt *o = targets[t].table; o && o->name && !targets[t].lenient; o++) {
            if ((o->flags & SL_OPT_REQUIRED) && !cJSON_GetObjectItemCaseSensitive(obj, o->name)) {
                int r = opt_fail(errs, file, path, o->name, o, NULL, "missing required key");
                if (r == SL_ENOMEM) {
                    return r;
                }
                result = SL_ECONFIG;
            }
        }
    }
    return result;
}

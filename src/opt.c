/* SPDX-License-Identifier: Apache-2.0 */
/* opt.c: option tables. It owns turning a JSON object into the fields of a struct as one or
 * more tables of struct sl_opt describe them: defaults (parsed from the same text a user would
 * write, by the same code), types, ranges, required keys, unknown keys, and freeing what it
 * allocated. It also prints tables for `sluice options` and config/OPTIONS.md. Every problem
 * becomes one line in a struct sl_errlist, "FILE: PATH.KEY: what is wrong; allowed: what is
 * allowed", so a user sees every mistake of a file at once; values of SL_OPT_SECRET options
 * are never formatted, not even in errors. It must not log (the caller reports) and does no
 * I/O besides the FILE * it is given to print to. Any thread; no global state.
 *
 * Units: sizes accept KB/MB/GB/TB as powers of 1000 and KiB/MiB/GiB/TiB as powers of 1024 (as
 * IEC and SI define them; case-insensitive, optional "B" for bytes); a bare number is bytes.
 * Durations accept ms, s, m, h, d, may be chained ("1m30s") and fractional ("1.5s"); a bare
 * number (JSON number or string) is seconds. SECONDS options take whole seconds only, as AWS's
 * *InSeconds keys do, and store milliseconds like DURATION. */
#include "opt.h"

#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"

#define OPT_SHOW_MAX 60 /* bad values longer than this are cut in messages */

/* ------------------------------------------------------------------------------------------ */
/* Error lists */

void sl_errlist_init(struct sl_errlist *e)
{
    e->items = NULL;
    e->n = 0;
    e->cap = 0;
}

void sl_errlist_fini(struct sl_errlist *e)
{
    for (size_t i = 0; i < e->n; i++) {
        sl_free(e->items[i]);
    }
    sl_free(e->items);
    sl_errlist_init(e);
}

/* About OOM: a message that cannot be stored is dropped; the caller still fails with
 * SL_ECONFIG, so nothing invalid is accepted, it is only described less. */
void sl_errlist_add(struct sl_errlist *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 8;
        char **items = sl_realloc(e->items, cap * sizeof(*items));
        if (!items) {
            return;
        }
        e->items = items;
        e->cap = cap;
    }
    char *s = sl_malloc((size_t)n + 1);
    if (!s) {
        return;
    }
    va_start(ap, fmt);
    (void)vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    e->items[e->n++] = s;
}

/* ------------------------------------------------------------------------------------------ */
/* Sizes and durations as text */

struct opt_unit {
    const char *name;
    int64_t mult;
};

static const struct opt_unit size_units[] = {
    {"", 1},
    {"b", 1},
    {"kb", 1000},
    {"mb", 1000 * 1000},
    {"gb", 1000 * 1000 * 1000},
    {"tb", INT64_C(1000) * 1000 * 1000 * 1000},
    {"kib", 1024},
    {"mib", 1024 * 1024},
    {"gib", INT64_C(1024) * 1024 * 1024},
    {"tib", INT64_C(1024) * 1024 * 1024 * 1024},
};

static const struct opt_unit duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
};

/* Reads "123" or "1.25" at *s into an integer part and a fraction; advances *s. Returns false
 * when there is no digit or the integer part overflows. */
static bool opt_scan_number(const char **s, int64_t *ret_int, double *ret_frac)
{
    const char *p = *s;
    int64_t v = 0;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        digits = true;
        p++;
    }
    double frac = 0.0;
    if (*p == '.') {
        double scale = 0.1;
        p++;
        while (*p >= '0' && *p <= '9') {
            frac += (*p - '0') * scale;
            scale /= 10.0;
            digits = true;
            p++;
        }
    }
    if (!digits) {
        return false;
    }
    *s = p;
    *ret_int = v;
    *ret_frac = frac;
    return true;
}

/* Multiplies int + frac by mult into *acc (adding), rounding to the nearest unit. Returns
 * false on overflow. */
static bool opt_scale_add(int64_t ival, double frac, int64_t mult, int64_t *acc)
{
    if (ival > INT64_MAX / mult) {
        return false;
    }
    int64_t v = ival * mult;
    double extra = frac * (double)mult;
    if (extra > (double)(INT64_MAX - v)) {
        return false;
    }
    v += (int64_t)llround(extra);
    if (v > INT64_MAX - *acc) {
        return false;
    }
    *acc += v;
    return true;
}

/* Matches the unit letters at s (up to the end of the letters) against units,
 * case-insensitively. */
static const struct opt_unit *
opt_match_unit(const char *s, size_t len, const struct opt_unit *u, size_t n_units)
{
    for (size_t i = 0; i < n_units; i++) {
        if (strlen(u[i].name) == len && strncasecmp(s, u[i].name, len) == 0) {
            return &u[i];
        }
    }
    return NULL;
}

int sl_opt_parse_size(const char *s, int64_t *ret_bytes)
{
    const char *p = s;
    int64_t ival;
    double frac;
    if (!opt_scan_number(&p, &ival, &frac)) {
        return SL_EINVAL;
    }
    while (*p == ' ') {
        p++;
    }
    size_t len = strlen(p);
    const struct opt_unit *u = opt_match_unit(p, len, size_units, SL_ARRAY_LEN(size_units));
    if (!u) {
        return SL_EINVAL;
    }
    int64_t v = 0;
    if (!opt_scale_add(ival, frac, u->mult, &v)) {
        return SL_EINVAL;
    }
    *ret_bytes = v;
    return 0;
}

int sl_opt_parse_duration(const char *s, int64_t *ret_ms)
{
    const char *p = s;
    int64_t total = 0;
    int parts = 0;
    while (*p) {
        int64_t ival;
        double frac;
        if (!opt_scan_number(&p, &ival, &frac)) {
            return SL_EINVAL;
        }
        const char *unit = p;
        while (isalpha((unsigned char)*p)) {
            p++;
        }
        size_t len = (size_t)(p - unit);
        const struct opt_unit *u;
        if (len == 0) {
            /* A bare number is seconds, like a JSON number; only on its own. */
            if (parts > 0 || *p) {
                return SL_EINVAL;
            }
            u = &duration_units[1];
        } else {
            u = opt_match_unit(unit, len, duration_units, SL_ARRAY_LEN(duration_units));
            if (!u) {
                return SL_EINVAL;
            }
        }
        if (!opt_scale_add(ival, frac, u->mult, &total)) {
            return SL_EINVAL;
        }
        parts++;
    }
    if (parts == 0) {
        return SL_EINVAL;
    }
    *ret_ms = total;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Describing options: values, ranges, what is allowed */

static void opt_fmt_size(struct sl_buf *b, int64_t v, int *r)
{
    static const struct {
        const char *name;
        int64_t mult;
    } u[] = {
        {"TiB", INT64_C(1024) * 1024 * 1024 * 1024},
        {"GiB", INT64_C(1024) * 1024 * 1024},
        {"MiB", 1024 * 1024},
        {"KiB", 1024},
        {"TB", INT64_C(1000) * 1000 * 1000 * 1000},
        {"GB", 1000 * 1000 * 1000},
        {"MB", 1000 * 1000},
        {"KB", 1000},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(u); i++) {
        if (v != 0 && v % u[i].mult == 0) {
            *r |= sl_buf_printf(b, "%" PRId64 "%s", v / u[i].mult, u[i].name);
            return;
        }
    }
    *r |= sl_buf_printf(b, "%" PRId64 " bytes", v);
}

static void opt_fmt_duration(struct sl_buf *b, int64_t ms, int *r)
{
    if (ms != 0 && ms % (86400 * 1000) == 0) {
        *r |= sl_buf_printf(b, "%" PRId64 "d", ms / (86400 * 1000));
    } else if (ms != 0 && ms % (3600 * 1000) == 0) {
        *r |= sl_buf_printf(b, "%" PRId64 "h", ms / (3600 * 1000));
    } else if (ms != 0 && ms % (60 * 1000) == 0) {
        *r |= sl_buf_printf(b, "%" PRId64 "m", ms / (60 * 1000));
    } else if (ms % 1000 == 0) {
        *r |= sl_buf_printf(b, "%" PRId64 "s", ms / 1000);
    } else {
        *r |= sl_buf_printf(b, "%" PRId64 "ms", ms);
    }
}

/* One bound of o's range, in o's own unit. */
static void opt_fmt_bound(struct sl_buf *b, const struct sl_opt *o, int64_t v, int *r)
{
    switch (o->type) {
    case SL_OPT_SIZE:
        opt_fmt_size(b, v, r);
        break;
    case SL_OPT_DURATION:
        opt_fmt_duration(b, v, r);
        break;
    case SL_OPT_SECONDS:
        if (v % 1000 == 0) {
            *r |= sl_buf_printf(b, "%" PRId64, v / 1000);
        } else {
            *r |= sl_buf_printf(b, "%.3f", (double)v / 1000.0);
        }
        break;
    default:
        *r |= sl_buf_printf(b, "%" PRId64, v);
        break;
    }
}

static bool opt_has_range(const struct sl_opt *o)
{
    switch (o->type) {
    case SL_OPT_INT:
    case SL_OPT_SIZE:
    case SL_OPT_DURATION:
    case SL_OPT_SECONDS:
    case SL_OPT_STRLIST:
        return o->min <= o->max;
    default:
        return false;
    }
}

/* "1 to 10000", "0 to 300 seconds", "at least 100ms", "1 to 5 items". */
static void opt_fmt_range(struct sl_buf *b, const struct sl_opt *o, int *r)
{
    if (o->max == INT64_MAX) {
        *r |= sl_buf_puts(b, "at least ");
        opt_fmt_bound(b, o, o->min, r);
    } else if (o->min == INT64_MIN) {
        *r |= sl_buf_puts(b, "at most ");
        opt_fmt_bound(b, o, o->max, r);
    } else {
        opt_fmt_bound(b, o, o->min, r);
        *r |= sl_buf_puts(b, " to ");
        opt_fmt_bound(b, o, o->max, r);
    }
    if (o->type == SL_OPT_SECONDS) {
        *r |= sl_buf_puts(b, " seconds");
    } else if (o->type == SL_OPT_STRLIST) {
        *r |= sl_buf_puts(b, " items");
    }
}

/* Appends choices "A|B|C" as "A, B, C". */
static void opt_fmt_choices(struct sl_buf *b, const char *choices, int *r)
{
    for (const char *c = choices; *c; c++) {
        if (*c == '|') {
            *r |= sl_buf_puts(b, ", ");
        } else {
            *r |= sl_buf_append(b, c, 1);
        }
    }
}

static const char *const opt_type_names[SL_OPT_TYPE_COUNT] = {
    "string", "boolean",         "integer",           "size", "duration", "seconds",
    "enum",   "list of strings", "object of strings", "JSON",
};

/* What a value of o may be: "an integer from 1 to 10000", "one of A, B". */
static void opt_fmt_allowed(struct sl_buf *b, const struct sl_opt *o, int *r)
{
    switch (o->type) {
    case SL_OPT_STR:
        *r |= sl_buf_puts(b, "a string");
        break;
    case SL_OPT_BOOL:
        *r |= sl_buf_puts(b, "true or false");
        break;
    case SL_OPT_INT:
        *r |= sl_buf_puts(b, "an integer");
        break;
    case SL_OPT_SIZE:
        *r |= sl_buf_puts(b, "a byte count, or a string like \"512KiB\" or \"6MB\" (KB=1000, "
                             "KiB=1024)");
        break;
    case SL_OPT_DURATION:
        *r |= sl_buf_puts(b, "seconds as a number, or a string like \"500ms\", \"1.5s\", \"2m\", "
                             "\"1h\"");
        break;
    case SL_OPT_SECONDS:
        *r |= sl_buf_puts(b, "a whole number of seconds");
        break;
    case SL_OPT_ENUM:
        *r |= sl_buf_puts(b, "one of ");
        opt_fmt_choices(b, o->choices, r);
        break;
    case SL_OPT_STRLIST:
        *r |= sl_buf_puts(b, "an array of strings");
        break;
    case SL_OPT_STRMAP:
        *r |= sl_buf_puts(b, "an object whose values are strings");
        break;
    case SL_OPT_JSON:
    case SL_OPT_TYPE_COUNT:
        *r |= sl_buf_puts(b, "any JSON value");
        break;
    }
    if (opt_has_range(o)) {
        *r |= sl_buf_puts(b, o->type == SL_OPT_STRLIST ? " of " : ", ");
        opt_fmt_range(b, o, r);
    }
}

/* Appends v as compact JSON, cut after OPT_SHOW_MAX characters, or "<hidden>" for secrets. */
static void opt_fmt_value(struct sl_buf *b, const struct sl_opt *o, const cJSON *v, int *r)
{
    if (o && (o->flags & SL_OPT_SECRET)) {
        *r |= sl_buf_puts(b, "<hidden>");
        return;
    }
    char *text = cJSON_PrintUnformatted(v);
    if (!text) {
        *r |= SL_ENOMEM;
        return;
    }
    size_t len = strlen(text);
    if (len > OPT_SHOW_MAX) {
        *r |= sl_buf_append(b, text, OPT_SHOW_MAX);
        *r |= sl_buf_puts(b, "...");
    } else {
        *r |= sl_buf_append(b, text, len);
    }
    cJSON_free(text);
}

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
        opt_fmt_value(&b, o, value, &r);
        r |= sl_buf_puts(&b, " ");
    }
    r |= sl_buf_puts(&b, what);
    r |= sl_buf_puts(&b, "; allowed: ");
    opt_fmt_allowed(&b, o, &r);
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
    if (!opt_has_range(o) || (v >= o->min && v <= o->max)) {
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
        opt_fmt_value(&b, o, value, &r);
        if (o->type == SL_OPT_SIZE || o->type == SL_OPT_DURATION) {
            if (cJSON_IsString(value)) {
                r |= sl_buf_puts(&b, " (");
                opt_fmt_bound(&b, o, v, &r);
                r |= sl_buf_puts(&b, ")");
            }
        }
    }
    r |= sl_buf_puts(&b, " is out of range; allowed: ");
    opt_fmt_range(&b, o, &r);
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

static void opt_strmap_clear(struct sl_strmap *m)
{
    for (size_t j = 0; j < m->n; j++) {
        sl_free(m->keys[j]);
        sl_free(m->values[j]);
    }
    sl_free(m->keys);
    sl_free(m->values);
    m->keys = NULL;
    m->values = NULL;
    m->n = 0;
}

static void opt_wipe(char *s)
{
    volatile char *p = s;
    while (p && *p) {
        *p++ = '\0';
    }
}

int sl_strmap_put(struct sl_strmap *m, const char *key, const char *value)
{
    char *v = sl_strdup(value);
    if (!v) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            opt_wipe(m->values[i]);
            sl_free(m->values[i]);
            m->values[i] = v;
            return 0;
        }
    }
    char *k = sl_strdup(key);
    char **keys = k ? sl_realloc(m->keys, (m->n + 1) * sizeof(*keys)) : NULL;
    if (keys) {
        m->keys = keys;
    }
    char **values = keys ? sl_realloc(m->values, (m->n + 1) * sizeof(*values)) : NULL;
    if (!values) {
        opt_wipe(v);
        sl_free(v);
        sl_free(k);
        return SL_ENOMEM;
    }
    m->values = values;
    m->keys[m->n] = k;
    m->values[m->n] = v;
    m->n++;
    return 0;
}

const char *sl_strmap_get(const struct sl_strmap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            return m->values[i];
        }
    }
    return NULL;
}

void sl_strmap_clear(struct sl_strmap *m, bool wipe)
{
    if (wipe) {
        for (size_t i = 0; i < m->n; i++) {
            opt_wipe(m->values[i]);
        }
    }
    opt_strmap_clear(m);
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
        opt_strmap_clear(&nm);
        return SL_ENOMEM;
    }
    cJSON_ArrayForEach(it, v)
    {
        nm.keys[nm.n] = sl_strdup(it->string);
        nm.values[nm.n] = sl_strdup(it->valuestring);
        nm.n++;
        if (!nm.keys[nm.n - 1] || !nm.values[nm.n - 1]) {
            opt_strmap_clear(&nm);
            return SL_ENOMEM;
        }
    }
    opt_strmap_clear(m);
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
        opt_strmap_clear((struct sl_strmap *)(void *)field);
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
        opt_fmt_value(&b, NULL, obj, &r);
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

/* ------------------------------------------------------------------------------------------ */
/* Printing */

/* Appends text with '|' escaped, for markdown table cells. */
static void opt_md_cell(struct sl_buf *b, const char *text, int *r)
{
    for (const char *c = text; *c; c++) {
        if (*c == '|') {
            *r |= sl_buf_puts(b, "\\|");
        } else if (*c == '\n') {
            *r |= sl_buf_puts(b, " ");
        } else {
            *r |= sl_buf_append(b, c, 1);
        }
    }
}

static void opt_fmt_default(struct sl_buf *b, const struct sl_opt *o, int *r)
{
    if (o->def) {
        *r |= sl_buf_puts(b, o->def);
    } else if (o->flags & SL_OPT_REQUIRED) {
        *r |= sl_buf_puts(b, "required");
    } else {
        *r |= sl_buf_puts(b, "none");
    }
}

static void opt_fmt_limits(struct sl_buf *b, const struct sl_opt *o, int *r)
{
    if (o->type == SL_OPT_ENUM) {
        opt_fmt_choices(b, o->choices, r);
    } else if (opt_has_range(o)) {
        opt_fmt_range(b, o, r);
    }
}

void sl_opt_print(
    FILE *out, const char *heading, const char *intro, const struct sl_opt *table, bool markdown)
{
    struct sl_buf b;
    int r = 0;
    sl_buf_init(&b);
    if (markdown) {
        r |= sl_buf_printf(&b, "## %s\n\n", heading);
        if (intro) {
            r |= sl_buf_printf(&b, "%s\n\n", intro);
        }
        r |= sl_buf_puts(&b, "| Key | Type | Default | Allowed | Description |\n"
                             "| --- | --- | --- | --- | --- |\n");
    } else {
        r |= sl_buf_printf(&b, "%s\n", heading);
        if (intro) {
            r |= sl_buf_printf(&b, "  %s\n", intro);
        }
        r |= sl_buf_puts(&b, "\n");
    }
    for (const struct sl_opt *o = table; o && o->name; o++) {
        const char *type = opt_type_names[o->type < SL_OPT_TYPE_COUNT ? o->type : SL_OPT_JSON];
        const char *secret = (o->flags & SL_OPT_SECRET) ? ", secret" : "";
        struct sl_buf cell;
        sl_buf_init(&cell);
        if (markdown) {
            r |= sl_buf_printf(&b, "| `%s` | %s%s | ", o->name, type, secret);
            opt_fmt_default(&cell, o, &r);
            if (o->def) {
                r |= sl_buf_puts(&b, "`");
            }
            opt_md_cell(&b, cell.data ? cell.data : "", &r);
            if (o->def) {
                r |= sl_buf_puts(&b, "`");
            }
            r |= sl_buf_puts(&b, " | ");
            sl_buf_truncate(&cell, 0);
            opt_fmt_limits(&cell, o, &r);
            if (cell.len) {
                opt_md_cell(&b, cell.data, &r);
            }
            r |= sl_buf_puts(&b, " | ");
            opt_md_cell(&b, o->desc ? o->desc : "", &r);
            r |= sl_buf_puts(&b, " |\n");
        } else {
            r |= sl_buf_printf(&b, "  %s (%s%s), default: ", o->name, type, secret);
            opt_fmt_default(&b, o, &r);
            opt_fmt_limits(&cell, o, &r);
            if (cell.len) {
                r |= sl_buf_printf(&b, ", %s: %s", o->type == SL_OPT_ENUM ? "one of" : "range",
                                   cell.data);
            }
            r |= sl_buf_printf(&b, "\n      %s\n", o->desc ? o->desc : "");
        }
        sl_buf_fini(&cell);
    }
    r |= sl_buf_puts(&b, "\n");
    if (r == 0) {
        (void)fwrite(b.data, 1, b.len, out);
    }
    sl_buf_fini(&b);
}

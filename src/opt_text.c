/* SPDX-License-Identifier: Apache-2.0 */
/* opt_text.c: options as text, both ways. It reads sizes and durations written as a user writes
 * them ("6MB", "512KiB", "1m30s"), and describes an option for people: its range in its own
 * unit, what a value may be ("an integer from 1 to 10000", "one of A, B"), and a bad value cut
 * short or hidden when it is a secret. The lowest layer of the option code: opt.c (applying
 * tables, whose errors quote these descriptions) and opt_print.c (`sluice options`) call it; it
 * calls neither. No I/O, no logging, no state; any thread.
 *
 * Units: sizes accept KB/MB/GB/TB as powers of 1000 and KiB/MiB/GiB/TiB as powers of 1024 (as
 * IEC and SI define them; case-insensitive, optional "B" for bytes); a bare number is bytes.
 * Durations accept ms, s, m, h, d, may be chained ("1m30s") and fractional ("1.5s"); a bare
 * number (JSON number or string) is seconds. SECONDS options take whole seconds only, as AWS's
 * *InSeconds keys do, and store milliseconds like DURATION. */
#include "opt_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#define OPT_SHOW_MAX 60 /* bad values longer than this are cut in messages */

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

static void opt_text_size(struct sl_buf *b, int64_t v, int *r)
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

static void opt_text_duration(struct sl_buf *b, int64_t ms, int *r)
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
void opt_text_bound(struct sl_buf *b, const struct sl_opt *o, int64_t v, int *r)
{
    switch (o->type) {
    case SL_OPT_SIZE:
        opt_text_size(b, v, r);
        break;
    case SL_OPT_DURATION:
        opt_text_duration(b, v, r);
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

bool opt_text_has_range(const struct sl_opt *o)
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
void opt_text_range(struct sl_buf *b, const struct sl_opt *o, int *r)
{
    if (o->max == INT64_MAX) {
        *r |= sl_buf_puts(b, "at least ");
        opt_text_bound(b, o, o->min, r);
    } else if (o->min == INT64_MIN) {
        *r |= sl_buf_puts(b, "at most ");
        opt_text_bound(b, o, o->max, r);
    } else {
        opt_text_bound(b, o, o->min, r);
        *r |= sl_buf_puts(b, " to ");
        opt_text_bound(b, o, o->max, r);
    }
    if (o->type == SL_OPT_SECONDS) {
        *r |= sl_buf_puts(b, " seconds");
    } else if (o->type == SL_OPT_STRLIST) {
        *r |= sl_buf_puts(b, " items");
    }
}

/* Appends choices "A|B|C" as "A, B, C". */
void opt_text_choices(struct sl_buf *b, const char *choices, int *r)
{
    for (const char *c = choices; *c; c++) {
        if (*c == '|') {
            *r |= sl_buf_puts(b, ", ");
        } else {
            *r |= sl_buf_append(b, c, 1);
        }
    }
}

const char *const opt_text_type_names[SL_OPT_TYPE_COUNT] = {
    "string", "boolean",         "integer",           "size", "duration", "seconds",
    "enum",   "list of strings", "object of strings", "JSON",
};

/* What a value of o may be: "an integer from 1 to 10000", "one of A, B". */
void opt_text_allowed(struct sl_buf *b, const struct sl_opt *o, int *r)
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
        opt_text_choices(b, o->choices, r);
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
    if (opt_text_has_range(o)) {
        *r |= sl_buf_puts(b, o->type == SL_OPT_STRLIST ? " of " : ", ");
        opt_text_range(b, o, r);
    }
}

/* Appends v as compact JSON, cut after OPT_SHOW_MAX characters, or "<hidden>" for secrets. */
void opt_text_value(struct sl_buf *b, const struct sl_opt *o, const cJSON *v, int *r)
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

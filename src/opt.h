/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_OPT_H
#define SL_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "errlist.h"
#include "strmap.h"

/* Option tables: every configurable key of the daemon, a mapping, a function type or an
 * adapter is one row. The core parses, defaults, range-checks and frees from the table, and
 * `sluice options` prints it; defaults live nowhere else. */
enum sl_opt_type {
    SL_OPT_STR,      /* char * (owned) */
    SL_OPT_BOOL,     /* bool */
    SL_OPT_INT,      /* int64_t; JSON integer */
    SL_OPT_SIZE,     /* int64_t bytes; a JSON integer or a string "6MB", "512KiB" */
    SL_OPT_DURATION, /* int64_t milliseconds; a JSON number of seconds or "500ms", "10s", "2m" */
    SL_OPT_SECONDS,  /* int64_t milliseconds; a JSON integer of seconds only (AWS keys) */
    SL_OPT_ENUM,     /* int: index of the value in choices */
    SL_OPT_STRLIST,  /* struct sl_strlist; a JSON array of strings */
    SL_OPT_STRMAP,   /* struct sl_strmap; a JSON object of string values */
    SL_OPT_JSON,     /* cJSON * (owned duplicate); checked by its consumer */
    SL_OPT_TYPE_COUNT
};

#define SL_OPT_REQUIRED 0x1u /* no default: the key must be present */
#define SL_OPT_SECRET   0x2u /* never printed, not even in errors */

struct sl_opt {
    const char *name; /* the JSON key: AWS's name for mapping keys, snake_case otherwise */
    enum sl_opt_type type;
    const char *def;     /* textual default as a user would write it, or NULL */
    int64_t min, max;    /* inclusive range for INT, SIZE, DURATION, SECONDS (ms for the latter
                            two); min > max means unchecked. STRLIST: item count range */
    size_t off;          /* offsetof(struct x, field) */
    unsigned flags;      /* SL_OPT_REQUIRED | SL_OPT_SECRET */
    const char *choices; /* ENUM: values separated by '|' ("TRIM_HORIZON|LATEST") */
    const char *desc;    /* one sentence for `sluice options` */
};

struct sl_strlist {
    char **items;
    size_t n;
};

/* One table and the struct it fills. */
struct sl_opt_target {
    const struct sl_opt *table;
    void *base;
    bool lenient; /* only check the keys present: no "missing required key" for this table
                     (used to find unknown keys when it is not yet known which table applies) */
};

/* Sets every field of the table to its default (zero when there is none). Returns 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_opt_defaults(const struct sl_opt *table, void *base);

/* Applies the members of obj (a JSON object at JSON path `path` in `file`) to the targets:
 * each member must be a key of one of the tables. Every problem (unknown key, wrong type, out
 * of range, missing required key) is added to errs as "file: path.key: problem; allowed: ...".
 * Fields are defaulted first. Returns 0 if no error was added, else SL_ECONFIG. */
SL_NODISCARD int sl_opt_apply(const struct sl_opt_target *targets,
                              size_t n_targets,
                              const cJSON *obj,
                              const char *file,
                              const char *path,
                              struct sl_errlist *errs);

/* Frees what sl_opt_defaults/sl_opt_apply allocated in base. */
void sl_opt_free(const struct sl_opt *table, void *base);

/* Parses a size ("6MB", "512KiB", "100") or a duration ("500ms", "1.5s", "2m", "1h") given as
 * text. Return 0 or SL_EINVAL. */
SL_NODISCARD int sl_opt_parse_size(const char *s, int64_t *ret_bytes);
SL_NODISCARD int sl_opt_parse_duration(const char *s, int64_t *ret_ms);

/* Prints one table for `sluice options`: a heading, then one entry per option with type,
 * default, range and description. markdown selects the OPTIONS.md form. */
void sl_opt_print(
    FILE *out, const char *heading, const char *intro, const struct sl_opt *table, bool markdown);

#endif

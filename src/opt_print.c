/* SPDX-License-Identifier: Apache-2.0 */
/* opt_print.c: the option tables as documentation, for `sluice options` and the generated
 * config/OPTIONS.md (a markdown table per option table: key, type, default, allowed values,
 * description). Kept apart from applying tables (opt.c) because nothing at run time needs it;
 * both describe values through opt_text.c. It writes only to the FILE * it is given and never
 * formats a value of an SL_OPT_SECRET option (secret options have no default to show). */
#include "opt_int.h"

#include <stdio.h>

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
        opt_text_choices(b, o->choices, r);
    } else if (opt_text_has_range(o)) {
        opt_text_range(b, o, r);
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
        const char *type = opt_text_type_names[o->type < SL_OPT_TYPE_COUNT ? o->type : SL_OPT_JSON];
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

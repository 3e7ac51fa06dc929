/* SPDX-License-Identifier: Apache-2.0 */
/* config_error.c: the configuration errors and what they list as allowed. It owns adding one
 * error line (the load fails even when memory for the line is gone), splitting an adapter's
 * check() message into lines keyed by JSON path, the list of source schemes a build has and of
 * the destinations it can write (the registry's), and the one error a mapping of an adapter the
 * build left out gets. The lowest layer of the configuration loader: every other config_*.c
 * reports through it, it calls none of them. */
#include "config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "registry.h"
#include "source.h"
#include "url.h"

/* Adds one error line; the load fails even if there is no memory left to keep the line. */
void config_error(struct config_ctx *cc, const char *fmt, ...)
{
    cc->failed = true;
    va_list ap;
    va_start(ap, fmt);
    sl_errlist_vadd(cc->errs, fmt, ap);
    va_end(ap);
}

/* Adds an adapter's check() message, one error per line of it. When a line starts with one of
 * the adapter's keys, or of extra's ("url: must be ..."), the key joins the JSON path
 * ("$.functions.hook.url: must be ..."). */
void config_error_check_lines(struct config_ctx *cc,
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
        config_error(cc, keyed ? "%s: %s.%.*s" : "%s: %s: %.*s", cc->file, path, (int)n, msg);
        msg += n;
        msg += *msg == '\n';
    }
}

void config_error_schemes(struct sl_buf *b, int *r)
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
int config_error_left_out(
    struct config_ctx *cc, const char *path, const char *key, const char *uri, bool source)
{
    const struct sl_registry_feature *f = sl_registry_left_out(uri);
    if (!f || (source && !f->has_source)) {
        return 0; /* a destination-only feature says nothing of a source */
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
        config_error_schemes(&b, &r);
    } else {
        r |= sl_buf_puts(&b, config_error_destinations());
    }
    if (r == 0) {
        config_error(cc, "%s", b.data);
    }
    sl_buf_fini(&b);
    cc->failed = true; /* the load fails even without memory for the message */
    return r ? SL_ENOMEM : SL_ECONFIG;
}

const char *config_error_destinations(void)
{
    return sl_registry_destinations();
}

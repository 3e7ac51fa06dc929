/* SPDX-License-Identifier: Apache-2.0 */
/* file_watch.c: when the file source looks: the watch of the files' directory (inotify through
 * uv_fs_event), which shows a change at once, and the poll timer's tick, which checks the open
 * files every poll_interval and re-runs the glob every rescan_interval (or every tick when
 * nothing is watched). It owns the watch handle; what a change means is decided by
 * file_scan.c and file_check.c. Loop thread only.
 *
 * About watching: the directory of the pattern is watched with uv_fs_event (inotify: one watch
 * for the directory, not one per file), so a file created, written, renamed or deleted there is
 * looked at as soon as the event arrives (file_watch_cb). The full rescan (the glob, and a stat
 * of every matched file) is then only a fallback every rescan_interval, for what events miss
 * (network file systems, a lost event); every poll_interval only the open files are checked
 * (one fstat each). A pattern with a wildcard in a directory component, a directory that does
 * not exist yet, or one that cannot be watched (no inotify, out of watches) falls back to the
 * glob at every poll_interval; the watch is tried again at each rescan and follows a directory
 * replaced by another. So idle files cost nothing but their share of the rare rescan. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "file_int.h"

static void file_handle_closed(uv_handle_t *h)
{
    sl_free(h);
}

void file_watch_stop(struct file_ctx *ctx)
{
    if (ctx->watch) {
        (void)uv_fs_event_stop(ctx->watch);
        uv_close((uv_handle_t *)ctx->watch, file_handle_closed);
        ctx->watch = NULL;
    }
}

/* A change in the watched directory: name was created, written, renamed or deleted there. A
 * file the pattern matches is looked at now (a new one opened, a known one checked); what
 * cannot be stat()ed any more is left to the open descriptor's check and the next rescan. */
static void file_watch_cb(uv_fs_event_t *w, const char *name, int events, int status)
{
    (void)events;
    struct file_ctx *ctx = w->data;
    if (status < 0 || !name) {
        sl_log_debug("file", ctx->env.inst, "watch of %s: %s, rescanning", ctx->watch_dir,
                     status < 0 ? uv_strerror(status) : "events lost");
        ctx->scan_due = true;
        if (status < 0) {
            file_watch_stop(ctx);
        }
        return;
    }
    if (ctx->watch_literal ? strcmp(name, ctx->watch_base) != 0
                           : fnmatch(ctx->watch_base, name, FNM_PERIOD) != 0) {
        return;
    }
    char path[4096 + 256];
    int n = snprintf(path, sizeof(path), "%s/%s", strcmp(ctx->watch_dir, "/") ? ctx->watch_dir : "",
                     name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return;
    }
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        return; /* gone, or not a file: the next rescan notes it */
    }
    struct file_part *fp = file_find(ctx, st.st_dev, st.st_ino);
    if (fp) {
        file_seen(fp, path, &st);
        file_check_one(ctx, fp, sl_clock_now_ms(ctx->env.clock), false);
        return;
    }
    int e = file_open(ctx, path, false);
    if (e == SL_ENOMEM) {
        sl_log_warn("file", ctx->env.inst, "%s: out of memory opening it, retrying", path);
        ctx->scan_due = true;
    } else if (e < 0 && e != SL_EAGAIN) { /* EAGAIN: leased to another process */
        ctx->scan_due = true;             /* the rescan notes it (once) */
    }
}

/* Watches the pattern's directory if it can be and is not watched yet (or was replaced). On
 * success a rescan follows, for what changed before the watch began. */
void file_watch_start(struct file_ctx *ctx)
{
    if (!ctx->watch_dir) {
        return;
    }
    struct stat st;
    if (stat(ctx->watch_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        file_watch_stop(ctx);
        return;
    }
    if (ctx->watch && st.st_dev == ctx->watch_dev && st.st_ino == ctx->watch_ino) {
        return;
    }
    file_watch_stop(ctx); /* the directory was replaced: watch the new one */
    uv_fs_event_t *w = sl_malloc(sizeof(*w));
    if (!w) {
        return;
    }
    (void)uv_fs_event_init(ctx->env.loop, w);
    w->data = ctx;
    int r = uv_fs_event_start(w, file_watch_cb, ctx->watch_dir, 0);
    if (r < 0) {
        uv_close((uv_handle_t *)w, file_handle_closed);
        if (!ctx->watch_err_logged) {
            ctx->watch_err_logged = true;
            sl_log_info("file", ctx->env.inst,
                        "cannot watch %s for changes (%s): checking every poll_interval",
                        ctx->watch_dir, uv_strerror(r));
        }
        return;
    }
    ctx->watch = w;
    ctx->watch_dev = st.st_dev;
    ctx->watch_ino = st.st_ino;
    ctx->scan_due = true;
    sl_log_debug("file", ctx->env.inst, "watching %s for changes", ctx->watch_dir);
}

/* Where the pattern's files are, if that can be watched: a directory path without wildcards
 * (or escapes). Returns 0 or SL_ENOMEM. */
int file_watch_init(struct file_ctx *ctx)
{
    char *slash = strrchr(ctx->pattern, '/');
    bool wild = strpbrk(ctx->pattern, "*?[") != NULL;
    size_t dlen = (size_t)(slash - ctx->pattern);
    if (wild && (memchr(ctx->pattern, '*', dlen) || memchr(ctx->pattern, '?', dlen) ||
                 memchr(ctx->pattern, '[', dlen) || memchr(ctx->pattern, '\\', dlen))) {
        return 0; /* a wildcard in a directory: the glob at every poll */
    }
    ctx->watch_dir = dlen ? sl_strndup(ctx->pattern, dlen) : sl_strdup("/");
    if (!ctx->watch_dir) {
        return SL_ENOMEM;
    }
    ctx->watch_base = slash + 1;
    ctx->watch_literal = !wild;
    return 0;
}

/* Every poll_interval: the open files are checked; the glob is re-run (stat of every matched
 * file) only every rescan_interval while the directory is watched, else every time. */
void file_tick(uv_timer_t *t)
{
    struct file_ctx *ctx = t->data;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!ctx->watch || ctx->scan_due || now - ctx->last_scan_ms >= ctx->rescan_interval_ms) {
        file_watch_start(ctx);
        ctx->scan_due = false;
        ctx->last_scan_ms = now;
        file_scan(ctx, false);
    }
    file_check_parts(ctx);
}

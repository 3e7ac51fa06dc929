/* SPDX-License-Identifier: Apache-2.0 */
/* file_check.c: the poll of the file source's known files: growth, truncation, a rewrite (its
 * head changed), rotation by rename or deletion, and giving back descriptors of idle files. It
 * owns the decisions that change a partition's life (part_wake, part_gone, a restart from 0
 * after a truncation) and calls them from the poll timer or a directory event, never from
 * fetch() (except file_try_restart, which fetch calls once the old content is delivered).
 * Loop thread only.
 *
 * About rotation: each rescan (or directory event) re-runs the match. An open file whose inode no
 * longer matches any path of the glob (renamed out of it, or deleted) is still read to its end;
 * once it has not grown for rotate_wait (at once if deleted), part_gone tells the mapping. A file
 * whose size drops below our read offset was truncated (copytruncate): it restarts at 0 in the same
 * partition, so positions go backwards there. The lines already read into the buffer are
 * records first (an unfinished last one as it is), and the restart waits until the mapping
 * holds none of the old content's records, so the queue and the checkpoint never mix two
 * contents (file_try_restart). With copytruncate the glob must not match the copies, or they
 * are read as new files. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "log.h"
#include "file_int.h"

/* Notes that the file was truncated or rewritten. What was read before it stays records: the
 * next fetches deliver the complete lines in the buffer and then the unfinished last one, and
 * file_try_restart goes back to 0 once they are all acknowledged. */
static void file_restart_due(struct file_part *fp, const char *why, uint64_t size)
{
    fp->restart_due = true;
    fp->restart_flushed = !fp->skipping && fp->buf_len == fp->buf_start;
    fp->restart_why = why;
    sl_log_info("file", fp->ctx->env.inst,
                "%s: %s (size %" PRIu64 ", read up to %" PRIu64
                "), reading again from 0 once the %zu bytes read before are delivered",
                fp->part->name, why, size, fp->read_off, fp->buf_len - fp->buf_start);
}

/* Back to offset 0 after a truncation or a rewrite, in the same partition, once nothing of
 * the old content is left: its lines all delivered (restart_flushed) and none of its records
 * held by the mapping. So positions go backwards only between two contents, never inside the
 * mapping's queue, and the checkpoint of an old record is always written with the old
 * fingerprint; the new start (0 and the new fingerprint) is recorded at once. Returns true if
 * it restarted. May be called from fetch. */
bool file_try_restart(struct file_part *fp)
{
    if (fp->fd < 0 || !fp->restart_due || !fp->restart_flushed || sl_recq_count(&fp->part->q) > 0) {
        return false;
    }
    struct stat st;
    uint64_t size = fstat(fp->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    sl_log_debug("file", fp->ctx->env.inst, "%s: %s, reading from 0 now", fp->part->name,
                 fp->restart_why);
    fp->restart_due = fp->restart_flushed = false;
    file_buf_clear(fp);
    fp->skipping = fp->skip_silent = false;
    fp->line_off = fp->read_off = 0;
    fp->final = false;
    ssize_t hn = file_pread_head(fp->fd, fp->head, size);
    fp->head_n = hn > 0 ? (size_t)hn : 0;
    fp->gen = file_new_gen(fp->ctx);
    if (file_set_meta(fp) < 0 || file_record_start(fp) < 0) {
        /* the stored checkpoint stays as it was: at worst lines are read again */
        sl_log_warn("file", fp->ctx->env.inst, "%s: out of memory recording where it starts",
                    fp->part->name);
    }
    return true;
}

/* Checks one open file (st: its fstat): truncation, growth, rotation, closing. pressure: other
 * files wait for a descriptor, so one read to its end is closed at once. */
static void file_check_open(
    struct file_ctx *ctx, struct file_part *fp, const struct stat *st, int64_t now, bool pressure)
{
    uint64_t size = (uint64_t)st->st_size;
    bool more = false;
    bool changed = size != fp->size || st->st_mtim.tv_sec != fp->mtime.tv_sec ||
                   st->st_mtim.tv_nsec != fp->mtime.tv_nsec;
    if (fp->restart_due) {
        /* the content read before is being delivered, or waits for its acknowledgement */
        bool restarted = file_try_restart(fp);
        fp->size = size;
        fp->mtime = st->st_mtim;
        fp->growth_ms = now;
        if (fp->waiting && (restarted || !fp->restart_flushed)) {
            fp->waiting = false;
            ctx->env.part_wake(ctx->env.owner, fp->part);
        }
        return;
    }
    if (size < fp->read_off) {
        file_restart_due(fp, "truncated", size);
        more = true;
    } else if (changed && file_head_changed(fp, size)) {
        file_restart_due(fp, "rewritten (its head changed)", size);
        more = true;
    }
    if (changed) {
        fp->growth_ms = now;
    }
    fp->size = size;
    fp->mtime = st->st_mtim;
    more = more || size > fp->read_off;
    bool matched = fp->seen_gen == ctx->gen && st->st_nlink > 0;
    if (!fp->restart_due && !matched && !more) {
        /* renamed out of the glob or deleted, and read to its end */
        bool idle = st->st_nlink == 0 || now - fp->growth_ms >= ctx->rotate_wait_ms;
        if (idle && (fp->skipping || fp->buf_len > fp->buf_start)) {
            if (!fp->final) {
                fp->final = true;
                more = true;
            }
        } else if (idle) {
            fp->gone = true;
            sl_log_info("file", ctx->env.inst, "%s: %s and read to its end, closing",
                        fp->part->name, st->st_nlink == 0 ? "deleted" : "rotated");
            file_fd_close(fp);
            ctx->env.part_gone(ctx->env.owner, fp->part);
            return;
        }
    }
    if (more && fp->waiting) {
        fp->waiting = false;
        ctx->env.part_wake(ctx->env.owner, fp->part);
    }
    /* Read to its end and still where the glob finds it: the descriptor goes back (changes
     * are seen through the path; file_seen). */
    if (!more && matched && fp->waiting && !fp->restart_due && !fp->final &&
        (pressure || now - fp->growth_ms >= FILE_IDLE_CLOSE_MS)) {
        file_fd_close(fp);
    }
}

/* A closed file the glob no longer matches. Found again in its directory (a rotation by
 * rename there), it is opened to read what was written before the rename; otherwise, once
 * rotate_wait passed, what is buffered is delivered and the mapping is told it is gone.
 * Returns true when the file should be opened. */
static bool file_check_closed_unmatched(struct file_ctx *ctx, struct file_part *fp, int64_t now)
{
    if (fp->moved_gen != ctx->gen) {
        fp->moved_gen = ctx->gen;
        fp->moved_found = file_find_moved(fp);
        if (fp->moved_found) {
            fp->want_open = true;
        }
    }
    if (fp->moved_found) {
        return true;
    }
    if (now - fp->growth_ms < ctx->rotate_wait_ms) {
        return false;
    }
    if (fp->skipping || fp->buf_len > fp->buf_start) {
        if (!fp->final) {
            fp->final = true;
            if (fp->waiting) {
                fp->waiting = false;
                ctx->env.part_wake(ctx->env.owner, fp->part);
            }
        }
        return false;
    }
    fp->gone = true;
    sl_log_info("file", ctx->env.inst, "%s: renamed away or deleted and read, closing",
                fp->part->name);
    ctx->env.part_gone(ctx->env.owner, fp->part);
    return false;
}

/* One known file: an open one is checked (fstat); a closed one that changed is opened again if
 * a descriptor is free, and one that left the glob is looked for (file_check_closed_unmatched).
 * pressure: other files wait for a descriptor. */
void file_check_one(struct file_ctx *ctx, struct file_part *fp, int64_t now, bool pressure)
{
    if (fp->gone) {
        return;
    }
    struct stat st;
    if (fp->fd < 0) {
        if (fp->seen_gen != ctx->gen && !file_check_closed_unmatched(ctx, fp, now)) {
            return;
        }
        if (!fp->want_open || ctx->n_open >= ctx->hold_cap) {
            return;
        }
        int r = file_fd_reopen(fp, &st);
        if (r == 1 || r == -ENOENT) {
            fp->seen_gen = ctx->gen - 1; /* not at its path: look for it (above) */
            fp->moved_gen = ctx->gen - 1;
            return;
        }
        if (r < 0) {
            if (!fp->read_err_logged) {
                fp->read_err_logged = true;
                sl_log_warn("file", ctx->env.inst, "%s: opening it again: %s, retrying", fp->path,
                            strerror(-r));
            }
            return;
        }
        fp->want_open = false;
        fp->read_err_logged = false;
    } else if (fstat(fp->fd, &st) < 0) {
        return;
    }
    file_check_open(ctx, fp, &st, now, pressure);
}

/* Per poll: each open file is checked; closed files that changed are opened again while
 * descriptors are free. Closed files cost nothing here: their changes come from the directory
 * watch and the glob (file_seen). */
void file_check_parts(struct file_ctx *ctx)
{
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    bool pressure = false;
    for (struct file_part *fp = ctx->parts; fp && !pressure; fp = fp->next) {
        pressure = fp->fd < 0 && fp->want_open && !fp->gone;
    }
    struct file_part *next;
    for (struct file_part *fp = ctx->parts; fp; fp = next) {
        next = fp->next;
        file_check_one(ctx, fp, now, pressure);
    }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* file_scan.c: discovery of the file source: the glob run over the pattern, the table of known
 * files by dev:ino, opening a newly matched file as a partition (where it starts, from its
 * checkpoint or StartingPosition, recorded with part_set_start), the descriptors and their cap,
 * and the search for a closed file that left the glob. It owns the parts table, the list of
 * paths that could not be used (logged once) and the open-descriptor count; it must not read
 * lines (file_read.c does) nor decide that a file rotated (file_check.c does). Loop thread only.
 *
 * About descriptors: a file is held open only while it has something to read. Once read to its
 * end and idle (FILE_IDLE_CLOSE_MS, or at once when other files wait for a descriptor) it is
 * closed, and opened again by its path when the directory watch or the rescan sees it change
 * (size or mtime); it is the same file when the path still holds its dev:ino, and
 * file_check_open (file_check.c) compares the head as for an open file, so a truncation or
 * rewrite while closed is seen too. At most max_open_files are open at once (by default a quarter
 * of the soft RLIMIT_NOFILE, so that functions and connections keep their headroom); files with
 * unread data beyond that wait for a slot, and the source reports settling meanwhile so
 * --until-idle does not stop. Limits: a closed file that leaves the glob is looked for by inode in
 * the directory it was in (a rotation by rename there is followed, and what was written before the
 * rename is read); one moved to another directory, or deleted, is not, so lines appended after its
 * last read and before the move are lost, where an open descriptor would have read them. A closed
 * file deleted and its inode reused by a new file under the glob is taken for a rewrite of the old
 * one (read from 0 in the old partition, under the old path's name), or, when the two heads
 * are equal, for the old file itself.
 *
 * About StartingPosition: it applies only to files without a checkpoint. TRIM_HORIZON reads
 * from 0. LATEST starts at the end of the files present at start(), more exactly after their
 * last newline, so a line being written at that moment is delivered whole; files that appear
 * later (the new file after a rotation, a new match of the glob) are read from 0 even under
 * LATEST, as a tail does, or their first lines would be lost. AT_TIMESTAMP is rejected: a file
 * has no index by time to start from (arrival_time_field is known only once a line is read). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "log.h"
#include "file_int.h"

static size_t file_hash_of(const struct file_ctx *ctx, dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15u) ^ ((uint64_t)dev * 0xC2B2AE3D27D4EB4Fu);
    return (size_t)(h >> 17) & (ctx->hash_cap - 1);
}

struct file_part *file_find(struct file_ctx *ctx, dev_t dev, ino_t ino)
{
    if (ctx->hash_cap == 0) {
        return NULL;
    }
    for (struct file_part *fp = ctx->hash[file_hash_of(ctx, dev, ino)]; fp; fp = fp->hnext) {
        if (fp->dev == dev && fp->ino == ino) {
            return fp;
        }
    }
    return NULL;
}

/* Adds fp to the table, growing it to keep about one part per bucket. Returns 0 or
 * SL_ENOMEM. */
static int file_hash_add(struct file_ctx *ctx, struct file_part *fp)
{
    if (ctx->n_parts + 1 > ctx->hash_cap) {
        size_t cap = ctx->hash_cap ? ctx->hash_cap * 2 : 64;
        struct file_part **h = sl_calloc(cap, sizeof(*h));
        if (!h) {
            return SL_ENOMEM;
        }
        struct file_part **old = ctx->hash;
        size_t old_cap = ctx->hash_cap;
        ctx->hash = h;
        ctx->hash_cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            for (struct file_part *q = old[i], *nx; q; q = nx) {
                nx = q->hnext;
                size_t b = file_hash_of(ctx, q->dev, q->ino);
                q->hnext = h[b];
                h[b] = q;
            }
        }
        sl_free(old);
    }
    size_t b = file_hash_of(ctx, fp->dev, fp->ino);
    fp->hnext = ctx->hash[b];
    ctx->hash[b] = fp;
    ctx->n_parts++;
    return 0;
}

void file_hash_del(struct file_ctx *ctx, struct file_part *fp)
{
    for (struct file_part **pp = &ctx->hash[file_hash_of(ctx, fp->dev, fp->ino)]; *pp;
         pp = &(*pp)->hnext) {
        if (*pp == fp) {
            *pp = fp->hnext;
            ctx->n_parts--;
            return;
        }
    }
}

void file_fd_close(struct file_part *fp)
{
    if (fp->fd >= 0) {
        (void)close(fp->fd);
        fp->fd = -1;
        fp->ctx->n_open--;
    }
}

/* Opens fp->path again for a known file. Returns 0, 1 when the path holds another file now
 * (fp stays closed), or -errno. */
int file_fd_reopen(struct file_part *fp, struct stat *ret_st)
{
    int fd = open(fp->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return -errno;
    }
    if (fstat(fd, ret_st) < 0) {
        int e = errno;
        (void)close(fd);
        return -e;
    }
    if (ret_st->st_dev != fp->dev || ret_st->st_ino != fp->ino) {
        (void)close(fd);
        return 1;
    }
    fp->fd = fd;
    fp->ctx->n_open++;
    return 0;
}

/* Where a closed file that left the glob (renamed, or deleted) is now: the directory it was in
 * is searched for its inode, so a rotation by rename within that directory is followed and the
 * lines written before it are read. Returns true and updates fp->path if found. */
bool file_find_moved(struct file_part *fp)
{
    char *slash = strrchr(fp->path, '/');
    if (!slash) {
        return false;
    }
    size_t dlen = (size_t)(slash - fp->path);
    char dir[4096];
    if (dlen + 1 >= sizeof(dir)) {
        return false;
    }
    memcpy(dir, fp->path, dlen);
    dir[dlen] = '\0';
    DIR *d = opendir(dlen ? dir : "/");
    if (!d) {
        return false;
    }
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_ino != fp->ino) {
            continue;
        }
        char path[4096 + 256];
        (void)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) == 0 && st.st_dev == fp->dev && st.st_ino == fp->ino) {
            char *p = sl_strdup(path);
            if (p) {
                sl_free(fp->path);
                fp->path = p;
                found = true;
            }
        }
    }
    (void)closedir(d);
    return found;
}

/* Remembers that path could not be used, logging it the first time (and again only after it
 * was fine or gone for a poll). */
static void file_bad_note(struct file_ctx *ctx, const char *path, int err)
{
    for (struct file_bad *b = ctx->bad; b; b = b->next) {
        if (strcmp(b->path, path) == 0) {
            b->seen_gen = ctx->gen;
            if (b->err == err) {
                return;
            }
            b->err = err;
            goto log;
        }
    }
    struct file_bad *b = sl_calloc(1, sizeof(*b));
    if (b && !(b->path = sl_strdup(path))) {
        sl_free(b);
        b = NULL;
    }
    if (b) {
        b->err = err;
        b->seen_gen = ctx->gen;
        b->next = ctx->bad;
        ctx->bad = b;
    }
log:
    if (err == FILE_BAD_STAT) {
        sl_log_warn("file", ctx->env.inst, "%s: not a regular file, skipping", path);
    } else {
        sl_log_warn("file", ctx->env.inst, "%s: %s, retrying", path, strerror(err));
    }
}

/* Forgets the paths that were not bad in the last glob run. */
static void file_bad_sweep(struct file_ctx *ctx)
{
    struct file_bad **pb = &ctx->bad;
    while (*pb) {
        struct file_bad *b = *pb;
        if (b->seen_gen != ctx->gen) {
            *pb = b->next;
            sl_free(b->path);
            sl_free(b);
        } else {
            pb = &b->next;
        }
    }
}

/* LATEST for a file present at start: just after its last newline (so an unfinished last line
 * is delivered whole once finished). If none is found in the last FILE_LATEST_SCAN bytes, start
 * at the end and silently drop the rest of the line in progress. */
static uint64_t file_latest_start(struct file_part *fp, uint64_t size)
{
    if (size == 0) {
        return 0;
    }
    char tail[4096];
    uint64_t end = size;
    uint64_t floor = size > FILE_LATEST_SCAN ? size - FILE_LATEST_SCAN : 0;
    while (end > floor) {
        size_t n = end - floor < sizeof(tail) ? (size_t)(end - floor) : sizeof(tail);
        ssize_t got = file_pread(fp->fd, tail, n, end - n);
        if (got != (ssize_t)n) {
            break;
        }
        for (size_t i = n; i > 0; i--) {
            if (tail[i - 1] == '\n') {
                return end - n + i;
            }
        }
        end -= n;
    }
    if (floor == 0 && end == 0) {
        return 0; /* the whole file is one unfinished line */
    }
    fp->skipping = fp->skip_silent = true;
    fp->skip_from = size;
    return size;
}

/* Where a newly opened file starts; see "About StartingPosition" and "About identity". */
static uint64_t file_start_pos(struct file_part *fp, uint64_t size, bool initial)
{
    struct file_ctx *ctx = fp->ctx;
    struct sl_part *part = fp->part;
    if (part->ckpt_pos) {
        char *end;
        errno = 0;
        unsigned long long pos = strtoull(part->ckpt_pos, &end, 10);
        if (errno || end == part->ckpt_pos || *end != '\0' || part->ckpt_pos[0] == '-') {
            sl_log_warn("file", ctx->env.inst,
                        "%s: checkpoint \"%s\" is not an offset, reading from 0", part->name,
                        part->ckpt_pos);
            return 0;
        }
        uint64_t gen = 0;
        if (part->ckpt_meta && !file_meta_matches(fp, part->ckpt_meta, &gen)) {
            sl_log_info("file", ctx->env.inst,
                        "%s: head differs from the checkpoint's (%s): a new file on a reused inode "
                        "or rewritten, reading from 0",
                        part->name, part->ckpt_meta);
            return 0;
        }
        if (pos > size) {
            sl_log_info("file", ctx->env.inst,
                        "%s: checkpoint offset %llu is past the end (%" PRIu64
                        "): truncated, reading from 0",
                        part->name, pos, size);
            return 0;
        }
        fp->gen = gen; /* the same content: its lines keep their eventIDs */
        return pos;
    }
    if (ctx->env.starting_position == SL_START_LATEST && initial) {
        return file_latest_start(fp, size);
    }
    return 0;
}

/* Records where the file starts (with its fingerprint) as its checkpoint unless the stored one
 * says the same already, so a run stopped before any of its lines is done resumes there: a
 * LATEST start is not chosen again at the next start (the lines appended meanwhile would be
 * skipped), and after a truncation the old offset is not taken for one in the new content.
 * Returns 0 or SL_ENOMEM. */
int file_record_start(struct file_part *fp)
{
    struct sl_part *part = fp->part;
    char pos[24];
    (void)snprintf(pos, sizeof(pos), "%" PRIu64, fp->line_off);
    if (part->ckpt_pos && strcmp(part->ckpt_pos, pos) == 0 && part->ckpt_meta && part->meta &&
        strcmp(part->ckpt_meta, part->meta) == 0) {
        return 0;
    }
    return fp->ctx->env.part_set_start(fp->ctx->env.owner, part, pos);
}

/* Opens path (whose stat is st) as a new partition. Returns 0, or -errno when it cannot be
 * opened (the caller logs once), SL_EAGAIN (another process holds its lease) or SL_ENOMEM. */
int file_open(struct file_ctx *ctx, const char *path, bool initial)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        (void)close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || file_find(ctx, st.st_dev, st.st_ino)) {
        (void)close(fd); /* replaced between stat and open: the next poll sees the truth */
        return 0;
    }
    struct file_part *fp = sl_calloc(1, sizeof(*fp));
    if (!fp) {
        (void)close(fd);
        return SL_ENOMEM;
    }
    fp->ctx = ctx;
    fp->fd = fd;
    ctx->n_open++;
    fp->dev = st.st_dev;
    fp->ino = st.st_ino;
    fp->size = (uint64_t)st.st_size;
    fp->mtime = st.st_mtim;
    fp->growth_ms = sl_clock_now_ms(ctx->env.clock);
    fp->seen_gen = ctx->gen;
    fp->waiting = true; /* wake the mapping at the next poll if it has not fetched by then */
    ssize_t hn = file_pread_head(fd, fp->head, fp->size);
    fp->head_n = hn > 0 ? (size_t)hn : 0;
    if (!(fp->path = sl_strdup(path)) || file_event_prepare(fp, path, ctx->env.region) < 0 ||
        file_hash_add(ctx, fp) < 0) {
        goto oom;
    }
    char id[64];
    (void)snprintf(id, sizeof(id), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    struct sl_part *part = NULL;
    int ar = ctx->env.part_add(ctx->env.owner, id, path, &part);
    if (ar < 0) {
        file_hash_del(ctx, fp);
        if (ar == SL_EAGAIN) {
            /* another process holds its lease: offered again at the next scan */
            (void)close(fd);
            ctx->n_open--;
            sl_free(fp->path);
            sl_event_kinesis_tmpl_fini(&fp->tmpl);
            sl_free(fp);
            return SL_EAGAIN;
        }
        goto oom;
    }
    fp->part = part;
    part->src = fp;
    part->event = &fp->tmpl;
    fp->next = ctx->parts;
    if (ctx->parts) {
        ctx->parts->prev = fp;
    }
    ctx->parts = fp;
    fp->line_off = fp->read_off = file_start_pos(fp, fp->size, initial);
    if (fp->gen == 0) {
        fp->gen = file_new_gen(ctx);
    }
    if (file_set_meta(fp) < 0 || file_record_start(fp) < 0) {
        sl_log_warn("file", ctx->env.inst, "%s: out of memory recording where it starts", path);
    }
    sl_log_info("file", ctx->env.inst,
                "%s: reading from offset %" PRIu64 " (id %s, size %" PRIu64 ")", path, fp->read_off,
                id, fp->size);
    if (ctx->n_open > ctx->hold_cap || fp->read_off >= fp->size) {
        /* nothing to read yet, or no slot: opened again when it changes or a slot is free */
        file_fd_close(fp);
        fp->want_open = fp->size > fp->read_off;
    }
    return 0;
oom:
    (void)close(fd);
    ctx->n_open--;
    sl_free(fp->path);
    sl_event_kinesis_tmpl_fini(&fp->tmpl);
    sl_free(fp);
    return SL_ENOMEM;
}

/* A known file was seen at path (whose stat is st) by the glob or a directory event: it is
 * still matched, and a closed one that changed wants to be opened again. */
void file_seen(struct file_part *fp, const char *path, const struct stat *st)
{
    fp->seen_gen = fp->ctx->gen;
    if (strcmp(fp->path, path) != 0) {
        char *p = sl_strdup(path);
        if (p) {
            sl_free(fp->path);
            fp->path = p;
        }
    }
    if (fp->fd < 0 && !fp->gone &&
        ((uint64_t)st->st_size != fp->size || st->st_mtim.tv_sec != fp->mtime.tv_sec ||
         st->st_mtim.tv_nsec != fp->mtime.tv_nsec)) {
        fp->want_open = true;
    }
}

/* Runs the glob: opens files not seen before and marks the known ones still matched. */
void file_scan(struct file_ctx *ctx, bool initial)
{
    ctx->gen++;
    glob_t g;
    memset(&g, 0, sizeof(g));
    char **pathv = &ctx->pattern;
    size_t pathc = 1;
    int r = 0;
    if (strpbrk(ctx->pattern, "*?[")) {
        r = glob(ctx->pattern, 0, NULL, &g);
        pathv = g.gl_pathv;
        pathc = r == 0 ? g.gl_pathc : 0;
    } else {
        /* No pattern: the path as it is (glob would take its backslashes for escapes). */
        struct stat st;
        if (stat(ctx->pattern, &st) < 0 && (errno == ENOENT || errno == ENOTDIR)) {
            r = GLOB_NOMATCH;
        }
    }
    if (r == GLOB_NOMATCH || (r == 0 && pathc == 0)) {
        if (!ctx->no_match_logged) {
            ctx->no_match_logged = true;
            sl_log_info("file", ctx->env.inst, "no file matches %s yet, watching", ctx->pattern);
        }
    } else if (r != 0) {
        /* Not "no file": keep every open file as matched rather than take it for rotated. */
        sl_log_debug("file", ctx->env.inst, "glob %s failed (%d), retrying", ctx->pattern, r);
        for (struct file_part *fp = ctx->parts; fp; fp = fp->next) {
            fp->seen_gen = ctx->gen;
        }
    } else {
        ctx->no_match_logged = false;
        for (size_t i = 0; i < pathc; i++) {
            const char *path = pathv[i];
            struct stat st;
            if (stat(path, &st) < 0) {
                file_bad_note(ctx, path, errno);
                continue;
            }
            if (!S_ISREG(st.st_mode)) {
                file_bad_note(ctx, path, FILE_BAD_STAT);
                continue;
            }
            struct file_part *fp = file_find(ctx, st.st_dev, st.st_ino);
            if (fp) {
                file_seen(fp, path, &st);
                continue;
            }
            int e = file_open(ctx, path, initial);
            if (e == SL_EAGAIN) {
                continue; /* leased to another process (caps.leases) */
            }
            if (e == SL_ENOMEM) {
                sl_log_warn("file", ctx->env.inst, "%s: out of memory opening it, retrying", path);
            } else if (e < 0) {
                file_bad_note(ctx, path, -e);
            }
        }
    }
    globfree(&g);
    file_bad_sweep(ctx);
}

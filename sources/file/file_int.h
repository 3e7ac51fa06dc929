/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FILE_INT_H
#define SL_FILE_INT_H

/* The file source's state, shared by its modules (the .c files beside this header) and by
 * nothing else: the core sees only sl_source_file. Each group of functions below is defined by
 * the module named above it. The modules are layered and call only downwards, never back up
 * (what a lower one must tell a higher one goes through the mapping's callbacks in env):
 *   file.c (the adapter)
 *   file_watch.c, file_read.c
 *   file_check.c
 *   file_scan.c
 *   file_head.c, file_event.c, file_fields.c
 * Loop thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "event_kinesis.h"
#include "source.h"

#define FILE_SCHEME        "file://"
#define FILE_SCHEME_LEN    7
#define FILE_HEAD_MAX      256         /* bytes of a file's head in its fingerprint */
#define FILE_LATEST_SCAN   (64 * 1024) /* LATEST looks this far back for the last newline */
#define FILE_BAD_STAT      (-1)        /* file_bad.err: matched something that is not a file */
#define FILE_IDLE_CLOSE_MS 2000        /* a file read to its end is closed after this long idle */
#define FILE_OPEN_MIN      8           /* max_open_files: the least the automatic cap gives */
#define FILE_OPEN_AUTO_MAX 4096        /* ... and the most */

struct file_ctx;

/* One open file: the source's state of one partition (part->src). */
struct file_part {
    struct file_ctx *ctx;
    struct sl_part *part;
    struct file_part *prev, *next;
    struct file_part *hnext; /* in ctx->hash, by dev:ino */
    char *path;              /* where the file was last seen (owned) */
    int fd;                  /* -1 while closed (see "About descriptors") */
    bool want_open;          /* closed with something to read: open it when a slot is free */
    bool moved_found;        /* closed, left the glob, and found again in its directory */
    unsigned moved_gen;      /* ctx->gen of the last search for it there */
    dev_t dev;
    ino_t ino;

    /* buf[buf_start, buf_len) holds the file's bytes [line_off, read_off): what was read but is
     * not a record yet, at most one unfinished line (longer ones switch to skipping). */
    char *buf;
    size_t buf_start, buf_len, buf_cap;
    size_t scan;       /* buf index up to which no '\n' was found */
    uint64_t line_off; /* the next record's pos */
    uint64_t read_off; /* the next byte to read */
    bool skipping;     /* inside an overlong line: dropping bytes until its '\n' */
    bool skip_silent;  /* ... and emitting no record for it (LATEST started mid-line) */
    uint64_t skip_from;

    unsigned char head[FILE_HEAD_MAX]; /* the file's first head_n bytes */
    size_t head_n;
    uint64_t gen; /* the content's generation, in its eventIDs (see "About event ids") */

    uint64_t size; /* at the last poll */
    struct timespec mtime;
    int64_t growth_ms; /* monotonic time of the last change of size (or of discovery) */
    unsigned seen_gen; /* ctx->gen of the last glob run that matched this inode */
    bool waiting;      /* no fetch since the last one returned 0: owe the mapping a wake */
    bool final;        /* rotated and idle: deliver an unfinished last line as it is */
    /* Truncated or rewritten: what was read before is delivered first (restart_flushed once
     * it is all records), and the file is read again from 0 once the mapping holds none of
     * its records (see file_try_restart). */
    bool restart_due;
    bool restart_flushed;
    const char *restart_why;
    bool gone; /* part_gone was called */
    bool read_err_logged;

    /* The constant pieces of this file's events (file_event.c). */
    struct sl_event_kinesis_tmpl tmpl;
};

/* A path the glob matched that could not be used; remembered so it is logged once. */
struct file_bad {
    struct file_bad *next;
    char *path;
    int err; /* errno, or FILE_BAD_STAT */
    unsigned seen_gen;
};

struct file_ctx {
    /* options (file_opts) */
    int64_t max_line_bytes;
    int64_t poll_interval_ms;
    int64_t rotate_wait_ms;
    int64_t read_chunk;
    int64_t max_open_files;
    int64_t rescan_interval_ms;
    char *partition_key_field; /* NULL: the key is the path */
    char *arrival_time_field;  /* NULL: arrival is the read time */

    struct sl_source_env env;
    char *pattern; /* the ARN without "file://" */
    uv_timer_t *timer;
    struct file_part *parts;
    struct file_part **hash; /* the parts by dev:ino, hash_cap buckets (a power of 2) */
    size_t hash_cap;
    size_t n_parts;
    size_t n_open;   /* descriptors held */
    size_t open_cap; /* at most this many (max_open_files, or derived from RLIMIT_NOFILE) */
    size_t hold_cap; /* held between polls: open_cap less the one a new file is looked at with
                        (its fingerprint is read before a slot is known to be free) */
    struct file_bad *bad;
    unsigned gen;
    /* The directory the pattern's files are in, watched for changes (inotify through
     * uv_fs_event) when its path has no wildcard: a change wakes the source at once and the
     * full rescan is needed only every rescan_interval. NULL dir: not watchable, the glob is
     * run at every poll. */
    char *watch_dir;
    const char *watch_base; /* the last component of the pattern (in pattern) */
    bool watch_literal;     /* ... matched by name, not as a glob */
    uv_fs_event_t *watch;
    dev_t watch_dev;
    ino_t watch_ino;
    bool watch_err_logged;
    bool scan_due; /* run the glob at the next poll */
    int64_t last_scan_ms;
    uint64_t last_content_gen; /* the last generation given out (file_new_gen) */
    bool no_match_logged;
};

static inline void file_buf_clear(struct file_part *fp)
{
    fp->buf_start = fp->buf_len = fp->scan = 0;
}

/* ---- file_watch.c: the directory watch and the poll timer ---- */

/* Where the pattern's files are, if that can be watched. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int file_watch_init(struct file_ctx *ctx);
/* Watches the pattern's directory if it can be and is not watched yet (or was replaced). */
void file_watch_start(struct file_ctx *ctx);
void file_watch_stop(struct file_ctx *ctx);
/* The poll timer's callback (t->data is the ctx). */
void file_tick(uv_timer_t *t);

/* ---- file_read.c: fetch ---- */

/* sl_source_ops.fetch. */
int file_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes);

/* ---- file_check.c: the poll of known files ---- */

/* Back to offset 0 after a truncation or rewrite once nothing of the old content is left.
 * Returns true if it restarted. May be called from fetch. */
bool file_try_restart(struct file_part *fp);
/* Checks one known file; pressure: other files wait for a descriptor. */
void file_check_one(struct file_ctx *ctx, struct file_part *fp, int64_t now, bool pressure);
/* Checks every known file (each poll). */
void file_check_parts(struct file_ctx *ctx);

/* ---- file_scan.c: discovery, the parts table, descriptors ---- */

struct file_part *file_find(struct file_ctx *ctx, dev_t dev, ino_t ino);
void file_hash_del(struct file_ctx *ctx, struct file_part *fp);
void file_fd_close(struct file_part *fp);
/* Opens fp->path again for a known file. Returns 0, 1 when the path holds another file now, or
 * -errno. */
int file_fd_reopen(struct file_part *fp, struct stat *ret_st);
/* Looks for a closed file that left the glob in its directory; true (fp->path updated) if
 * found. */
bool file_find_moved(struct file_part *fp);
/* Records where the file starts as its checkpoint (part_set_start). Returns 0 or SL_ENOMEM. */
int file_record_start(struct file_part *fp);
/* Opens path as a new partition. Returns 0, -errno, or SL_ENOMEM. */
int file_open(struct file_ctx *ctx, const char *path, bool initial);
/* A known file was seen at path (whose stat is st). */
void file_seen(struct file_part *fp, const char *path, const struct stat *st);
/* Runs the glob: opens files not seen before and marks the known ones still matched. */
void file_scan(struct file_ctx *ctx, bool initial);

/* ---- file_head.c: fingerprints, generations, reads at an offset ---- */

/* Reads up to FILE_HEAD_MAX bytes from offset 0; returns the count or -errno. */
ssize_t file_pread_head(int fd, unsigned char *out, uint64_t size);
/* pread that retries EINTR; returns bytes, 0 at end of file, or -errno. */
ssize_t file_pread(int fd, char *p, size_t n, uint64_t off);
/* Sets part->meta to the fingerprint and generation. Returns 0 or SL_ENOMEM. */
int file_set_meta(struct file_part *fp);
uint64_t file_new_gen(struct file_ctx *ctx);
bool file_meta_matches(const struct file_part *fp, const char *meta, uint64_t *ret_gen);
/* True if the known head bytes changed (the file was rewritten); extends the known head. */
bool file_head_changed(struct file_part *fp, uint64_t size);

/* ---- file_fields.c: keys and times of JSON lines ---- */

bool file_arrival_of(const cJSON *v, int64_t *ret_ms);
size_t file_key_of(const cJSON *v, char *num, size_t num_len, const char **ret_key);

/* ---- file_event.c: the events (sl_source_ops members but the first) ---- */

/* Builds fp->tmpl for the file at path. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int file_event_prepare(struct file_part *fp, const char *path, const char *region);
int file_encode_record(void *vctx,
                       struct sl_part *part,
                       const struct sl_record *rec,
                       struct sl_buf *out);
size_t file_record_key(void *vctx,
                       struct sl_part *part,
                       const struct sl_record *rec,
                       const char **ret_key);
int file_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
int file_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);

/* A record's position is {offset of its line, offset of the next line}: 0 or 1 picks one. */
static inline uint64_t
file_rec_pos(const struct sl_part *part, const struct sl_record *rec, size_t i)
{
    return sl_recq_pos_u64(&part->q, rec, i);
}
cJSON *file_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec);

#endif

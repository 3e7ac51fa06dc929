/* SPDX-License-Identifier: Apache-2.0 */
/* file.c: the file source. EventSourceArn "file://" + an absolute path or glob(3) pattern; each
 * matching regular file is a partition and each line a record, read as Fluent Bit's tail input
 * reads: follow growth, pick up new files, survive rotation by rename and by truncation.
 *
 * It owns, per mapping, the glob pattern, one poll timer, one watch of the files' directory, and
 * per file a descriptor while it is being read (see "About descriptors"), a read buffer (at most
 * one unfinished line plus one read chunk), the head of the file (for the fingerprint) and the
 * constant pieces of the event JSON (records carry only what varies: their bytes, and a partition
 * key from the line when one is configured). It must not block on anything but regular-file reads
 * (pread of read_chunk bytes), must not call the mapping's callbacks from inside fetch() (but
 * part_set_start, which is meant for it), and must not lose or repeat a line across rotation.
 * Loop thread only.
 *
 * About identity: a partition is an inode, "<st_dev>:<st_ino>", so a renamed file keeps its
 * checkpoint and a rotated file is never read twice. An inode can be reused (a deleted file's
 * number given to a new one, while we hold no descriptor on it), so the checkpoint carries
 * a fingerprint of the file's head in part->meta: "head=<n>:<fnv1a64 hex>" over the first n =
 * min(size, 256) bytes when it was written. On resume the checkpoint is trusted only when the
 * file has at least n bytes whose hash matches and the offset is within the file; otherwise the
 * file is new (or was truncated and rewritten) and is read from 0. While running, the first n
 * bytes are compared on every poll that sees the size or mtime change, so a file truncated and
 * rewritten past our offset between two polls is also read again from 0. Limit: a new file
 * whose first 256 bytes equal the old one's cannot be told apart (timestamped log lines make
 * that unlikely); the fallback is always to re-read, never to skip.
 *
 * About watching: the directory of the pattern is watched with uv_fs_event (inotify: one watch
 * for the directory, not one per file), so a file created, written, renamed or deleted there is
 * looked at as soon as the event arrives (file_watch_cb). The full rescan (the glob, and a stat
 * of every matched file) is then only a fallback every rescan_interval, for what events miss
 * (network file systems, a lost event); every poll_interval only the open files are checked
 * (one fstat each). A pattern with a wildcard in a directory component, a directory that does
 * not exist yet, or one that cannot be watched (no inotify, out of watches) falls back to the
 * glob at every poll_interval; the watch is tried again at each rescan and follows a directory
 * replaced by another. So idle files cost nothing but their share of the rare rescan.
 *
 * About descriptors: a file is held open only while it has something to read. Once read to its
 * end and idle (FILE_IDLE_CLOSE_MS, or at once when other files wait for a descriptor) it is
 * closed, and opened again by its path when the directory watch or the rescan sees it change
 * (size or mtime); it is the same file when the path still holds its dev:ino, and
 * file_check_open compares the head as for an open file, so a truncation or rewrite while
 * closed is seen too. At most
 * max_open_files are open at once (by default a quarter of the soft RLIMIT_NOFILE, so that
 * functions and connections keep their headroom); files with unread data beyond that wait for
 * a slot, and the source reports settling meanwhile so --until-idle does not stop. Limits: a
 * closed file that leaves the glob is looked for by inode in the directory it was in (a
 * rotation by rename there is followed, and what was written before the rename is read); one
 * moved to another directory, or deleted, is not, so lines appended after its last read and
 * before the move are lost, where an open descriptor would have read them. A closed file
 * deleted and its inode reused by a new file under the glob is taken for a rewrite of the old
 * one (read from 0 in the old partition, under the old path's name), or, when the two heads
 * are equal, for the old file itself.
 *
 * About event ids: a record's eventID is "<path>:<generation>:<offset>", its sequenceNumber the
 * offset alone (the checkpoint and the itemIdentifier). The generation names one content of
 * one file: a number (the wall clock in microseconds when the content was first seen) kept in
 * the checkpoint meta beside the fingerprint ("head=<n>:<hash> gen=<g>"). A file seen without
 * a usable checkpoint (new, rotated in, an inode reused, a fingerprint that does not match)
 * and a truncated or rewritten one get a new generation; a file resumed from its checkpoint
 * keeps the stored one, so a line delivered again after a crash keeps its eventID (the start
 * is recorded before anything of the file is invoked, see file_record_start). Two different
 * lines at one offset of one path therefore never share an eventID.
 *
 * About StartingPosition: it applies only to files without a checkpoint. TRIM_HORIZON reads
 * from 0. LATEST starts at the end of the files present at start(), more exactly after their
 * last newline, so a line being written at that moment is delivered whole; files that appear
 * later (the new file after a rotation, a new match of the glob) are read from 0 even under
 * LATEST, as a tail does, or their first lines would be lost. AT_TIMESTAMP is rejected: a file
 * has no index by time to start from (arrival_time_field is known only once a line is read).
 *
 * About the ARN: "file://" + an absolute path. If it contains * ? or [ it is a glob(3) pattern
 * (where a backslash escapes the next character); otherwise it is taken literally.
 *
 * About line ends: a record is the bytes before '\n'; a "\r\n" line keeps its '\r' (the source
 * does not guess encodings). A last line without '\n' is held until its newline arrives, except
 * when a rotated or deleted file is closed: then the unfinished line is delivered as it is,
 * since no newline will ever come.
 *
 * About keys and times: by default a record's partitionKey is the file's path and its arrival
 * time the wall clock when it was read. With partition_key_field or arrival_time_field set,
 * each line is parsed once with cJSON at fetch time (only then; the encoder itself never parses)
 * and, when it is a JSON object holding the field, the key is copied into the record's meta
 * bytes (empty meta means "the path") and the time replaces arrival_ms, so the event's
 * approximateArrivalTimestamp and the record's age (MaximumRecordAgeInSeconds) follow the line.
 * Lines that are not JSON objects, or lack the field, or hold an unusable value, keep the
 * defaults; they are not errors. The events stay Kinesis-shaped; filter_doc and
 * encode_batch_info give the Kinesis filter document and KinesisBatchInfo (the file is the
 * shard, the offset the sequence number).
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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "config.h"
#include "encoder.h"
#include "log.h"
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

    /* Constant pieces of this file's events (see file_encode_record). */
    char *enc;
    size_t enc_head_len, enc_id_len, enc_tail_len;
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

static const struct sl_opt file_opts[] = {
    {"max_line_bytes", SL_OPT_SIZE, "1MiB", 1, 64 * 1024 * 1024,
     offsetof(struct file_ctx, max_line_bytes), 0, NULL,
     "A longer line is delivered as a failed record without its bytes."},
    {"poll_interval", SL_OPT_DURATION, "250ms", 10, 60000,
     offsetof(struct file_ctx, poll_interval_ms), 0, NULL,
     "How often the open files are checked for growth, rotation and truncation (and the glob "
     "re-run when the directory cannot be watched; see rescan_interval)."},
    {"rotate_wait", SL_OPT_DURATION, "5s", 0, 3600000, offsetof(struct file_ctx, rotate_wait_ms), 0,
     NULL,
     "How long a file renamed away or deleted keeps being read after it last grew before it is "
     "closed."},
    {"read_chunk", SL_OPT_SIZE, "256KiB", 1, 64 * 1024 * 1024,
     offsetof(struct file_ctx, read_chunk), 0, NULL, "Bytes read from a file at a time."},
    {"rescan_interval", SL_OPT_DURATION, "10s", 0, 3600000,
     offsetof(struct file_ctx, rescan_interval_ms), 0, NULL,
     "How often the glob is re-run and every matched file checked when the files' directory is "
     "watched for changes (inotify), which show changes at once. 0, or a directory that "
     "cannot be watched (a wildcard in it, or no inotify): every poll_interval."},
    {"max_open_files", SL_OPT_INT, "0", 0, 1000000, offsetof(struct file_ctx, max_open_files), 0,
     NULL,
     "How many files the mapping holds open at once; files read to their end are closed and "
     "reopened when they change, others wait for a slot. 0: a quarter of the soft RLIMIT_NOFILE "
     "(between 8 and 4096)."},
    {"partition_key_field", SL_OPT_STR, NULL, 1, 0, offsetof(struct file_ctx, partition_key_field),
     0, NULL,
     "Top-level field of JSON-object lines whose value (a string, or a number or boolean as "
     "JSON text) is the record's partitionKey; other lines keep the file's path."},
    {"arrival_time_field", SL_OPT_STR, NULL, 1, 0, offsetof(struct file_ctx, arrival_time_field), 0,
     NULL,
     "Top-level field of JSON-object lines holding their arrival time (epoch seconds, or ISO 8601 "
     "such as 2026-11-26T09:00:00Z); other lines arrive when read."},
    {0},
};

/* ---- fingerprint ---- */

static uint64_t file_fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3u;
    }
    return h;
}

/* Reads up to FILE_HEAD_MAX bytes from offset 0 into out; returns the count or -errno. */
static ssize_t file_pread_head(int fd, unsigned char *out, uint64_t size)
{
    size_t want = size < FILE_HEAD_MAX ? (size_t)size : FILE_HEAD_MAX;
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, out + got, want - got, (off_t)got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int file_set_meta(struct file_part *fp)
{
    char meta[96];
    (void)snprintf(meta, sizeof(meta), "head=%zu:%016" PRIx64 " gen=%" PRIu64, fp->head_n,
                   file_fnv1a(fp->head, fp->head_n), fp->gen);
    return sl_part_set_meta(fp->part, meta);
}

/* A new content generation: the wall clock in microseconds, above every one given out before
 * by this source, so two contents of one path never share one. */
static uint64_t file_new_gen(struct file_ctx *ctx)
{
    int64_t wall_ms = sl_clock_wall_ms(ctx->env.clock);
    uint64_t g = wall_ms > 0 ? (uint64_t)wall_ms * 1000u : 1;
    if (g <= ctx->last_content_gen) {
        g = ctx->last_content_gen + 1;
    }
    ctx->last_content_gen = g;
    return g;
}

/* Is the stored fingerprint meta ("head=<n>:<hash>[ gen=<g>]") that of this file? Unparsable
 * meta counts as a mismatch: the safe side is to read again. On a match, *ret_gen is the
 * stored generation, or 0 when the meta has none (written before generations existed). */
static bool file_meta_matches(const struct file_part *fp, const char *meta, uint64_t *ret_gen)
{
    *ret_gen = 0;
    if (strncmp(meta, "head=", 5) != 0) {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(meta + 5, &end, 10);
    if (errno || end == meta + 5 || *end != ':' || n > FILE_HEAD_MAX) {
        return false;
    }
    const char *hex = end + 1;
    uint64_t want = strtoull(hex, &end, 16);
    if (errno || end == hex || (*end != '\0' && *end != ' ')) {
        return false;
    }
    uint64_t gen = 0;
    if (*end == ' ') {
        if (strncmp(end, " gen=", 5) != 0 || end[5] < '0' || end[5] > '9') {
            return false;
        }
        const char *g = end + 5;
        gen = strtoull(g, &end, 10);
        if (errno || *end != '\0') {
            return false;
        }
    }
    if (n > fp->head_n) {
        return false; /* the file is shorter than the head we saw: not the same content */
    }
    if (file_fnv1a(fp->head, (size_t)n) != want) {
        return false;
    }
    *ret_gen = gen;
    return true;
}

/* ---- the read path ---- */

struct file_fetch_state {
    size_t n, bytes;
    size_t max_records, max_bytes;
    int64_t wall_ms;
};

static bool file_fetch_full(const struct file_fetch_state *fs)
{
    return fs->n >= fs->max_records || fs->bytes >= fs->max_bytes;
}

static void file_buf_clear(struct file_part *fp)
{
    fp->buf_start = fp->buf_len = fp->scan = 0;
}

static int file_push_oversize(struct file_part *fp,
                              struct file_fetch_state *fs,
                              uint64_t from,
                              uint64_t line_end,
                              uint64_t next)
{
    int r = sl_recq_push(&fp->part->q, NULL, 0, NULL, 0, from, next, fs->wall_ms, SL_REC_OVERSIZE);
    if (r < 0) {
        return r;
    }
    sl_log_warn("file", fp->ctx->env.inst,
                "%s: line at offset %" PRIu64 " is %" PRIu64 " bytes, over max_line_bytes (%" PRId64
                "): delivered as a failed record, "
                "skipping its bytes",
                fp->part->name, from, line_end - from, fp->ctx->max_line_bytes);
    fs->n++;
    return 0;
}

/* ---- keys and times from JSON lines ---- */

/* Parses a line as one JSON value with nothing but whitespace after it (cJSON alone would
 * accept "12 apples" as 12). Returns the value (owned; cJSON_Delete it) or NULL when the line
 * is not JSON (or on OOM, which the callers cannot tell apart and treat the same way). */
static cJSON *file_parse_json(const char *data, size_t len)
{
    if (len == 0) {
        return NULL;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!v) {
        return NULL;
    }
    for (const char *p = end; p && p < data + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(v);
            return NULL;
        }
    }
    return v;
}

#define FILE_TIME_MIN_S (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define FILE_TIME_MAX_S 253402300799LL   /* 9999-12-31T23:59:59Z */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t file_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Reads n decimal digits at *p (advancing it); false if any is not a digit. */
static bool file_digits(const char **p, int n, unsigned *ret)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *ret = v;
    return true;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into Unix epoch milliseconds
 * (fraction truncated to milliseconds; 't', 'z' and a decimal comma as ISO 8601 allows). An offset
 * other than zero is applied, so any correct ISO 8601 time with an offset gives its UTC instant.
 * Returns false if s is not one. */
static bool file_parse_iso8601(const char *s, int64_t *ret_ms)
{
    const char *p = s;
    unsigned y, mo, d, h, mi, sec, ms = 0;
    if (!file_digits(&p, 4, &y) || *p++ != '-' || !file_digits(&p, 2, &mo) || *p++ != '-' ||
        !file_digits(&p, 2, &d)) {
        return false;
    }
    if (*p != 'T' && *p != 't') {
        return false;
    }
    p++;
    if (!file_digits(&p, 2, &h) || *p++ != ':' || !file_digits(&p, 2, &mi) || *p++ != ':' ||
        !file_digits(&p, 2, &sec)) {
        return false;
    }
    if (*p == '.' || *p == ',') {
        p++;
        if (*p < '0' || *p > '9') {
            return false;
        }
        unsigned scale = 100;
        for (; *p >= '0' && *p <= '9'; p++) {
            ms += (unsigned)(*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        unsigned oh, om;
        if (!file_digits(&p, 2, &oh) || *p++ != ':' || !file_digits(&p, 2, &om) || oh > 23 ||
            om > 59) {
            return false;
        }
        off_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return false;
    }
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59) {
        return false;
    }
    int64_t t = file_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    if (t < FILE_TIME_MIN_S || t > FILE_TIME_MAX_S) {
        return false;
    }
    *ret_ms = t * 1000 + ms;
    return true;
}

/* The arrival time a JSON value gives: epoch seconds (a number, maybe fractional) or an ISO
 * 8601 string. Returns false if it is neither (or out of years 0000..9999). */
static bool file_arrival_of(const cJSON *v, int64_t *ret_ms)
{
    if (cJSON_IsNumber(v)) {
        double s = v->valuedouble;
        if (!(s >= (double)FILE_TIME_MIN_S && s < (double)FILE_TIME_MAX_S + 1.0)) {
            return false; /* also NaN */
        }
        double ms = s * 1000.0;
        int64_t t = (int64_t)(ms >= 0 ? ms + 0.5 : ms - 0.5);
        *ret_ms = t > FILE_TIME_MAX_S * 1000 + 999 ? FILE_TIME_MAX_S * 1000 + 999 : t;
        return true;
    }
    if (cJSON_IsString(v)) {
        return file_parse_iso8601(v->valuestring, ret_ms);
    }
    return false;
}

/* The partition key a JSON value gives: a string as it is, a number or boolean as its JSON
 * text (numbers as cJSON prints them: integers exactly up to 2^53), written into num when it
 * is needed. An empty string, null, an object or an array gives none (the path is used). */
static size_t file_key_of(const cJSON *v, char *num, size_t num_len, const char **ret_key)
{
    if (cJSON_IsString(v)) {
        *ret_key = v->valuestring;
        return strlen(v->valuestring);
    }
    if ((cJSON_IsNumber(v) || cJSON_IsBool(v)) &&
        cJSON_PrintPreallocated((cJSON *)(uintptr_t)v, num, (int)num_len, 0)) {
        *ret_key = num;
        return strlen(num);
    }
    return 0;
}

/* Appends one line as a record. With partition_key_field or arrival_time_field set, the line
 * is parsed once as JSON: the key goes into the record's meta bytes (none: the path) and the
 * time into arrival_ms (none: the read time). Returns 0 or SL_ENOMEM. */
static int file_push_line(struct file_part *fp,
                          struct file_fetch_state *fs,
                          const char *data,
                          size_t len,
                          uint64_t pos,
                          uint64_t next)
{
    struct file_ctx *ctx = fp->ctx;
    const char *key = NULL;
    size_t key_len = 0;
    int64_t arrival_ms = fs->wall_ms;
    char num[64];
    cJSON *doc = NULL;
    if (ctx->partition_key_field || ctx->arrival_time_field) {
        doc = file_parse_json(data, len);
    }
    if (cJSON_IsObject(doc)) {
        if (ctx->partition_key_field) {
            key_len = file_key_of(cJSON_GetObjectItemCaseSensitive(doc, ctx->partition_key_field),
                                  num, sizeof(num), &key);
        }
        if (ctx->arrival_time_field) {
            int64_t t;
            if (file_arrival_of(cJSON_GetObjectItemCaseSensitive(doc, ctx->arrival_time_field),
                                &t)) {
                arrival_ms = t;
            }
        }
    }
    int r = sl_recq_push(&fp->part->q, data, (uint32_t)len, key, (uint32_t)key_len, pos, next,
                         arrival_ms, 0);
    cJSON_Delete(doc);
    if (r == 0) {
        fs->n++;
        fs->bytes += len + key_len;
    }
    return r;
}

/* Turns the complete lines in the buffer into records, until the limits. A buffered unfinished
 * line longer than max_line_bytes switches to skipping. Returns 0 or SL_ENOMEM. */
static int file_drain(struct file_part *fp, struct file_fetch_state *fs)
{
    size_t max_line = (size_t)fp->ctx->max_line_bytes;
    while (!file_fetch_full(fs)) {
        char *nl = NULL;
        if (fp->scan < fp->buf_len) {
            nl = memchr(fp->buf + fp->scan, '\n', fp->buf_len - fp->scan);
        }
        if (!nl) {
            fp->scan = fp->buf_len;
            if (fp->buf_len - fp->buf_start > max_line) {
                fp->skipping = true;
                fp->skip_silent = false;
                fp->skip_from = fp->line_off;
                fp->line_off = fp->read_off;
                file_buf_clear(fp);
            }
            return 0;
        }
        size_t i = (size_t)(nl - fp->buf);
        size_t len = i - fp->buf_start;
        uint64_t next = fp->line_off + len + 1;
        int r;
        if (len > max_line) {
            r = file_push_oversize(fp, fs, fp->line_off, fp->line_off + len, next);
        } else {
            r = file_push_line(fp, fs, fp->buf + fp->buf_start, len, fp->line_off, next);
        }
        if (r < 0) {
            return r;
        }
        fp->buf_start = fp->scan = i + 1;
        fp->line_off = next;
    }
    return 0;
}

/* pread that retries EINTR; returns bytes, 0 at end of file, or -errno. */
static ssize_t file_pread(int fd, char *p, size_t n, uint64_t off)
{
    for (;;) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r >= 0) {
            return r;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

/* Reads one chunk. Normally appends it to the buffer (after moving the unfinished line to the
 * front); while skipping, looks for the overlong line's '\n' without keeping its bytes and
 * pushes its failed record when found. Returns bytes read, 0 at end of file, or -errno /
 * SL_ENOMEM (as -ENOMEM). */
static ssize_t file_read_chunk(struct file_part *fp, struct file_fetch_state *fs)
{
    size_t chunk = (size_t)fp->ctx->read_chunk;
    if (fp->buf_start > 0) {
        size_t keep = fp->buf_len - fp->buf_start;
        memmove(fp->buf, fp->buf + fp->buf_start, keep);
        fp->scan -= fp->buf_start;
        fp->buf_len = keep;
        fp->buf_start = 0;
    }
    if (fp->buf_cap - fp->buf_len < chunk) {
        size_t cap = fp->buf_len + chunk;
        char *b = sl_realloc(fp->buf, cap);
        if (!b) {
            return -ENOMEM;
        }
        fp->buf = b;
        fp->buf_cap = cap;
    }
    ssize_t got = file_pread(fp->fd, fp->buf + fp->buf_len, chunk, fp->read_off);
    if (got <= 0) {
        return got;
    }
    if (!fp->skipping) {
        fp->buf_len += (size_t)got;
        fp->read_off += (uint64_t)got;
        return got;
    }
    /* skipping: the buffer is empty, the chunk sits at its start */
    char *nl = memchr(fp->buf, '\n', (size_t)got);
    if (!nl) {
        fp->read_off += (uint64_t)got;
        fp->line_off = fp->read_off;
        return got;
    }
    size_t i = (size_t)(nl - fp->buf);
    uint64_t line_end = fp->read_off + i;
    if (!fp->skip_silent) {
        if (file_push_oversize(fp, fs, fp->skip_from, line_end, line_end + 1) < 0) {
            return -ENOMEM; /* nothing changed: the chunk is read again next time */
        }
    }
    fp->skipping = fp->skip_silent = false;
    fp->buf_start = fp->scan = i + 1;
    fp->buf_len = (size_t)got;
    fp->line_off = line_end + 1;
    fp->read_off += (uint64_t)got;
    return got;
}

/* At the end of a file being closed: what is left (an unfinished line, or the start of an
 * overlong one) becomes a record, since its newline will never come. */
static int file_flush_final(struct file_part *fp, struct file_fetch_state *fs)
{
    if (fp->skipping) {
        if (!fp->skip_silent &&
            file_push_oversize(fp, fs, fp->skip_from, fp->read_off, fp->read_off) < 0) {
            return SL_ENOMEM;
        }
        fp->skipping = fp->skip_silent = false;
    } else if (fp->buf_len > fp->buf_start) {
        size_t len = fp->buf_len - fp->buf_start;
        if (file_push_line(fp, fs, fp->buf + fp->buf_start, len, fp->line_off, fp->read_off) < 0) {
            return SL_ENOMEM;
        }
    }
    file_buf_clear(fp);
    fp->line_off = fp->read_off;
    return 0;
}

static bool file_try_restart(struct file_part *fp);

static int file_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct file_ctx *ctx = vctx;
    struct file_part *fp = part->src;
    struct file_fetch_state fs = {0, 0, max_records ? max_records : 1, max_bytes ? max_bytes : 1,
                                  sl_clock_wall_ms(ctx->env.clock)};
    fp->waiting = false;
    int r = 0;
    if (fp->fd < 0 && fp->final && !fp->gone) {
        /* left the glob and cannot be read any more: its unfinished line is a record */
        r = file_flush_final(fp, &fs);
        if (fs.n > 0) {
            return (int)fs.n;
        }
    }
    if (fp->gone || fp->fd < 0) {
        fp->waiting = true;
        return r;
    }
    if (fp->restart_due && !fp->restart_flushed) {
        /* The lines read before the truncation are records: deliver them, and the unfinished
         * last line as it is (its newline is gone with the rest of the file). */
        if ((r = file_drain(fp, &fs)) == 0 && !file_fetch_full(&fs) &&
            (r = file_flush_final(fp, &fs)) == 0) {
            fp->restart_flushed = true;
        }
    }
    if (fp->restart_due && fp->restart_flushed) {
        file_try_restart(fp);
    }
    for (; !fp->restart_due;) {
        if ((r = file_drain(fp, &fs)) < 0 || file_fetch_full(&fs)) {
            break;
        }
        ssize_t got = file_read_chunk(fp, &fs);
        if (got == 0) {
            if (fp->final) {
                r = file_flush_final(fp, &fs);
            }
            break;
        }
        if (got < 0) {
            r = got == -ENOMEM ? SL_ENOMEM : SL_EIO;
            if (r == SL_EIO && !fp->read_err_logged) {
                fp->read_err_logged = true;
                sl_log_warn("file", ctx->env.inst, "%s: read at offset %" PRIu64 ": %s, retrying",
                            part->name, fp->read_off, strerror((int)-got));
            }
            break;
        }
        fp->read_err_logged = false;
    }
    if (fs.n > 0) {
        return (int)fs.n; /* an error after some records: report them; it recurs next time */
    }
    if (r < 0) {
        return r;
    }
    fp->waiting = true;
    return 0;
}

/* ---- encoding ---- */

#define FILE_ENC_HEAD "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":"
#define FILE_ENC_SEQ  ",\"sequenceNumber\":\""
#define FILE_ENC_DATA "\",\"data\":\""
#define FILE_ENC_TS   "\",\"approximateArrivalTimestamp\":"
#define FILE_ENC_ID   "},\"eventSource\":\"sluice:file\",\"eventVersion\":\"1.0\",\"eventID\":\""
#define FILE_ENC_NAME "\",\"eventName\":\"sluice:file:record\",\"eventSourceARN\":\"file://"
#define FILE_ENC_REG  "\",\"awsRegion\":"

/* Builds fp->enc: three constant pieces of every event of this file, so that per record only
 * the offset (twice), the base64, the timestamp and the generation (which changes when the
 * file is truncated) are written:
 *   head = {"kinesis":{...,"partitionKey":"<path>","sequenceNumber":"
 *   id   = "},...,"eventID":"<path>:
 *   tail = ","eventName":...,"eventSourceARN":"file://<path>","awsRegion":"<region>"} */
static int file_build_enc(struct file_part *fp, const char *path, const char *region)
{
    struct sl_buf esc, b;
    sl_buf_init(&esc);
    sl_buf_init(&b);
    int r = sl_enc_json_str(&esc, path, strlen(path));
    if (r < 0) {
        goto fail;
    }
    const char *inner = esc.data + 1; /* without the quotes */
    size_t inner_len = esc.len - 2;
    if ((r = sl_buf_puts(&b, FILE_ENC_HEAD)) < 0 ||
        (r = sl_buf_append(&b, esc.data, esc.len)) < 0 || (r = sl_buf_puts(&b, FILE_ENC_SEQ)) < 0) {
        goto fail;
    }
    fp->enc_head_len = b.len;
    if ((r = sl_buf_puts(&b, FILE_ENC_ID)) < 0 || (r = sl_buf_append(&b, inner, inner_len)) < 0 ||
        (r = sl_buf_puts(&b, ":")) < 0) {
        goto fail;
    }
    fp->enc_id_len = b.len - fp->enc_head_len;
    if ((r = sl_buf_puts(&b, FILE_ENC_NAME)) < 0 || (r = sl_buf_append(&b, inner, inner_len)) < 0 ||
        (r = sl_buf_puts(&b, FILE_ENC_REG)) < 0 ||
        (r = sl_enc_json_str(&b, region ? region : "", region ? strlen(region) : 0)) < 0 ||
        (r = sl_buf_puts(&b, "}")) < 0) {
        goto fail;
    }
    fp->enc_tail_len = b.len - fp->enc_head_len - fp->enc_id_len;
    fp->enc = sl_buf_steal(&b);
    sl_buf_fini(&esc);
    return fp->enc ? 0 : SL_ENOMEM;
fail:
    sl_buf_fini(&esc);
    sl_buf_fini(&b);
    return r;
}

static int file_encode_record(void *vctx,
                              struct sl_part *part,
                              const struct sl_record *rec,
                              struct sl_buf *out)
{
    (void)vctx;
    const struct file_part *fp = part->src;
    /* an oversize record has no bytes (and maybe no arena to point into) */
    const char *data = rec->len ? sl_recq_data(&part->q, rec) : "";
    size_t start = out->len;
    size_t need = fp->enc_head_len + 20 + sizeof(FILE_ENC_DATA) + sl_enc_base64_len(rec->len) +
                  sizeof(FILE_ENC_TS) + 25 + fp->enc_id_len + 20 + 1 + 20 + fp->enc_tail_len;
    int r;
    if (rec->meta_len > 0) {
        /* a key from the line (partition_key_field) instead of the path */
        if ((r = sl_buf_puts(out, FILE_ENC_HEAD)) < 0 ||
            (r = sl_enc_json_str(out, sl_recq_meta(&part->q, rec), rec->meta_len)) < 0 ||
            (r = sl_buf_puts(out, FILE_ENC_SEQ)) < 0) {
            sl_buf_truncate(out, start);
            return r;
        }
        need -= fp->enc_head_len;
    }
    if (sl_buf_reserve(out, need) < 0) {
        sl_buf_truncate(out, start);
        return SL_ENOMEM;
    }
    /* Room is reserved: none of these can fail now (results are still combined, since GCC's
     * warn_unused_result cannot be silenced by a cast). */
    r = rec->meta_len > 0 ? 0 : sl_buf_append(out, fp->enc, fp->enc_head_len);
    r |= sl_enc_u64(out, rec->pos);
    r |= sl_buf_append(out, FILE_ENC_DATA, sizeof(FILE_ENC_DATA) - 1);
    r |= sl_enc_base64(out, data, rec->len);
    r |= sl_buf_append(out, FILE_ENC_TS, sizeof(FILE_ENC_TS) - 1);
    r |= sl_enc_epoch_seconds(out, rec->arrival_ms);
    r |= sl_buf_append(out, fp->enc + fp->enc_head_len, fp->enc_id_len);
    r |= sl_enc_u64(out, fp->gen);
    r |= sl_buf_append(out, ":", 1);
    r |= sl_enc_u64(out, rec->pos);
    r |= sl_buf_append(out, fp->enc + fp->enc_head_len + fp->enc_id_len, fp->enc_tail_len);
    return r < 0 ? SL_ENOMEM : 0;
}

/* About the four operations below: they see a record the way a Kinesis consumer would. Its
 * partitionKey is the key partition_key_field found in the line (stored as the record's meta
 * bytes at fetch time) or else the file's path, its sequenceNumber is its byte offset, the
 * shard is the file. */

static size_t
file_record_key(void *vctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key)
{
    (void)vctx;
    if (rec->meta_len > 0) {
        *ret_key = sl_recq_meta(&part->q, rec);
        return rec->meta_len;
    }
    *ret_key = part->name;
    return strlen(part->name);
}

static int file_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    (void)part;
    int n = snprintf(buf, len, "%" PRIu64, rec->pos);
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

/* {"partitionKey":..., "sequenceNumber":"<pos>", "approximateArrivalTimestamp":<s>,
 *  "data":<the line as JSON, or as a string when it is not JSON; null when oversize>}.
 * About data as a string: cJSON strings end at a NUL byte, so a line holding one is matched
 * only up to it. */
static cJSON *file_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    char seq[24];
    (void)snprintf(seq, sizeof(seq), "%" PRIu64, rec->pos);
    const char *data = rec->len ? sl_recq_data(&part->q, rec) : "";
    char *tmp = NULL;
    cJSON *doc = cJSON_CreateObject();
    if (!doc) {
        return NULL;
    }
    const char *key = part->name;
    if (rec->meta_len > 0) {
        if (!(tmp = sl_malloc((size_t)rec->meta_len + 1))) {
            goto fail;
        }
        memcpy(tmp, sl_recq_meta(&part->q, rec), rec->meta_len);
        tmp[rec->meta_len] = '\0';
        key = tmp;
    }
    if (!cJSON_AddStringToObject(doc, "partitionKey", key) ||
        !cJSON_AddStringToObject(doc, "sequenceNumber", seq) ||
        !cJSON_AddNumberToObject(doc, "approximateArrivalTimestamp",
                                 (double)rec->arrival_ms / 1000.0)) {
        goto fail;
    }
    sl_free(tmp);
    tmp = NULL;
    if (rec->flags & SL_REC_OVERSIZE) {
        if (!cJSON_AddNullToObject(doc, "data")) {
            goto fail;
        }
        return doc;
    }
    cJSON *v = file_parse_json(data, rec->len);
    if (!v) {
        if (!(tmp = sl_malloc((size_t)rec->len + 1))) {
            goto fail;
        }
        memcpy(tmp, data, rec->len);
        tmp[rec->len] = '\0';
        v = cJSON_CreateString(tmp);
        sl_free(tmp);
        tmp = NULL;
        if (!v) {
            goto fail;
        }
    }
    if (!cJSON_AddItemToObject(doc, "data", v)) {
        cJSON_Delete(v);
        goto fail;
    }
    return doc;
fail:
    sl_free(tmp);
    cJSON_Delete(doc);
    return NULL;
}

/* "KinesisBatchInfo":{"shardId":"<path>","startSequenceNumber":"<pos>",...,
 * "streamArn":"file://<path>"}, in AWS's key order. A file's batches never span files: one
 * run. */
static int file_encode_batch_info(void *vctx,
                                  const struct sl_batch_run *runs,
                                  size_t n_runs,
                                  struct sl_buf *out)
{
    (void)vctx;
    (void)n_runs;
    struct sl_part *part = runs[0].part;
    const struct sl_record *first = runs[0].first;
    const struct sl_record *last = runs[0].last;
    size_t n = runs[0].n;
    size_t start = out->len;
    struct sl_buf esc;
    sl_buf_init(&esc);
    int r = sl_enc_json_str(&esc, part->name, strlen(part->name));
    if (r < 0 || (r = sl_buf_puts(out, "\"KinesisBatchInfo\":{\"shardId\":")) < 0 ||
        (r = sl_buf_append(out, esc.data, esc.len)) < 0 ||
        (r = sl_buf_puts(out, ",\"startSequenceNumber\":\"")) < 0 ||
        (r = sl_enc_u64(out, first->pos)) < 0 ||
        (r = sl_buf_puts(out, "\",\"endSequenceNumber\":\"")) < 0 ||
        (r = sl_enc_u64(out, last->pos)) < 0 ||
        (r = sl_buf_puts(out, "\",\"approximateArrivalOfFirstRecord\":\"")) < 0 ||
        (r = sl_enc_iso8601_ms(out, first->arrival_ms)) < 0 ||
        (r = sl_buf_puts(out, "\",\"approximateArrivalOfLastRecord\":\"")) < 0 ||
        (r = sl_enc_iso8601_ms(out, last->arrival_ms)) < 0 ||
        (r = sl_buf_puts(out, "\",\"batchSize\":")) < 0 || (r = sl_enc_u64(out, n)) < 0 ||
        (r = sl_buf_puts(out, ",\"streamArn\":\"file://")) < 0 ||
        (r = sl_buf_append(out, esc.data + 1, esc.len - 1)) < 0 ||
        (r = sl_buf_puts(out, "}")) < 0) {
        sl_buf_truncate(out, start);
    }
    sl_buf_fini(&esc);
    return r;
}

/* ---- discovery ---- */

static size_t file_hash_of(const struct file_ctx *ctx, dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9E3779B97F4A7C15u) ^ ((uint64_t)dev * 0xC2B2AE3D27D4EB4Fu);
    return (size_t)(h >> 17) & (ctx->hash_cap - 1);
}

static struct file_part *file_find(struct file_ctx *ctx, dev_t dev, ino_t ino)
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

static void file_hash_del(struct file_ctx *ctx, struct file_part *fp)
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

/* ---- descriptors ---- */

static void file_fd_close(struct file_part *fp)
{
    if (fp->fd >= 0) {
        (void)close(fp->fd);
        fp->fd = -1;
        fp->ctx->n_open--;
    }
}

/* Opens fp->path again for a known file. Returns 0, 1 when the path holds another file now
 * (fp stays closed), or -errno. */
static int file_fd_reopen(struct file_part *fp, struct stat *ret_st)
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
static bool file_find_moved(struct file_part *fp)
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
static int file_record_start(struct file_part *fp)
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
 * opened (the caller logs once), or SL_ENOMEM. */
static int file_open(struct file_ctx *ctx, const char *path, bool initial)
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
    if (!(fp->path = sl_strdup(path)) || file_build_enc(fp, path, ctx->env.region) < 0 ||
        file_hash_add(ctx, fp) < 0) {
        goto oom;
    }
    char id[64];
    (void)snprintf(id, sizeof(id), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    struct sl_part *part = NULL;
    if (ctx->env.part_add(ctx->env.owner, id, path, &part) < 0) {
        file_hash_del(ctx, fp);
        goto oom;
    }
    fp->part = part;
    part->src = fp;
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
    if (ctx->n_open > ctx->open_cap || fp->read_off >= fp->size) {
        /* nothing to read yet, or no slot: opened again when it changes or a slot is free */
        file_fd_close(fp);
        fp->want_open = fp->size > fp->read_off;
    }
    return 0;
oom:
    (void)close(fd);
    ctx->n_open--;
    sl_free(fp->path);
    sl_free(fp->enc);
    sl_free(fp);
    return SL_ENOMEM;
}

/* A known file was seen at path (whose stat is st) by the glob or a directory event: it is
 * still matched, and a closed one that changed wants to be opened again. */
static void file_seen(struct file_part *fp, const char *path, const struct stat *st)
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
static void file_scan(struct file_ctx *ctx, bool initial)
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
static bool file_try_restart(struct file_part *fp)
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

/* Compares the head we know with the file's; extends it while the file is under
 * FILE_HEAD_MAX bytes. Returns true if the known bytes changed (the file was rewritten). */
static bool file_head_changed(struct file_part *fp, uint64_t size)
{
    unsigned char now[FILE_HEAD_MAX];
    ssize_t hn = file_pread_head(fp->fd, now, size);
    if (hn < 0) {
        return false;
    }
    if ((size_t)hn < fp->head_n || memcmp(now, fp->head, fp->head_n) != 0) {
        return true;
    }
    if ((size_t)hn > fp->head_n) {
        memcpy(fp->head, now, (size_t)hn);
        fp->head_n = (size_t)hn;
        (void)file_set_meta(fp);
    }
    return false;
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
static void file_check_one(struct file_ctx *ctx, struct file_part *fp, int64_t now, bool pressure)
{
    if (fp->gone) {
        return;
    }
    struct stat st;
    if (fp->fd < 0) {
        if (fp->seen_gen != ctx->gen && !file_check_closed_unmatched(ctx, fp, now)) {
            return;
        }
        if (!fp->want_open || ctx->n_open >= ctx->open_cap) {
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
static void file_check_parts(struct file_ctx *ctx)
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

/* ---- the directory watch ---- */

static void file_handle_closed(uv_handle_t *h)
{
    sl_free(h);
}

static void file_watch_stop(struct file_ctx *ctx)
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
    } else if (e < 0) {
        ctx->scan_due = true; /* the rescan notes it (once) */
    }
}

/* Watches the pattern's directory if it can be and is not watched yet (or was replaced). On
 * success a rescan follows, for what changed before the watch began. */
static void file_watch_start(struct file_ctx *ctx)
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
static int file_watch_init(struct file_ctx *ctx)
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
static void file_tick(uv_timer_t *t)
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

/* ---- the adapter ---- */

static int file_check(void *vctx, const char *arn, char *errbuf, size_t errlen)
{
    struct file_ctx *ctx = vctx;
    if (!arn || strncmp(arn, FILE_SCHEME, FILE_SCHEME_LEN) != 0) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%s\" is not a file source; allowed: file:// followed by "
                       "an absolute path or glob pattern, such as file:///var/log/app/*.log",
                       arn ? arn : "");
        return SL_ECONFIG;
    }
    const char *path = arn + FILE_SCHEME_LEN;
    size_t len = strlen(path);
    if (path[0] != '/') {
        (void)snprintf(
            errbuf, errlen,
            "EventSourceArn: \"%s\": the path must be absolute; allowed: file:// followed by an "
            "absolute path or glob pattern (* ? [...]), such as file:///var/log/app/*.log",
            arn);
        return SL_ECONFIG;
    }
    if (path[len - 1] == '/') {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%s\" names a directory; allowed: a file path or a "
                       "pattern of files, such as %s*.log",
                       arn, arn);
        return SL_ECONFIG;
    }
    if (len >= 4096) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: the path of \"%.64s...\" is too long (%zu bytes; at most "
                       "4095)",
                       arn, len);
        return SL_ECONFIG;
    }
    if (ctx->max_line_bytes < 1 || ctx->read_chunk < 1 || ctx->poll_interval_ms < 1 ||
        ctx->rotate_wait_ms < 0) {
        (void)snprintf(errbuf, errlen,
                       "max_line_bytes, read_chunk and poll_interval must be positive, rotate_wait "
                       "not negative");
        return SL_ECONFIG;
    }
    if ((ctx->partition_key_field && !ctx->partition_key_field[0]) ||
        (ctx->arrival_time_field && !ctx->arrival_time_field[0])) {
        (void)snprintf(errbuf, errlen,
                       "partition_key_field and arrival_time_field must name a field; allowed: a "
                       "top-level key of the JSON lines, such as \"user_id\", or leave it out");
        return SL_ECONFIG;
    }
    return 0;
}

static int file_init(void *vctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    struct file_ctx *ctx = vctx;
    ctx->env = *env;
    if (env->starting_position == SL_START_AT_TIMESTAMP) {
        (void)snprintf(errbuf, errlen,
                       "StartingPosition AT_TIMESTAMP is not supported by file sources (lines "
                       "carry no time); allowed: TRIM_HORIZON, LATEST");
        return SL_ECONFIG;
    }
    int r = file_check(ctx, env->arn, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ctx->open_cap = (size_t)ctx->max_open_files;
    if (ctx->open_cap == 0) {
        struct rlimit rl;
        rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        ctx->open_cap = soft == RLIM_INFINITY || soft / 4 > FILE_OPEN_AUTO_MAX ? FILE_OPEN_AUTO_MAX
                                                                               : (size_t)(soft / 4);
        if (ctx->open_cap < FILE_OPEN_MIN) {
            ctx->open_cap = FILE_OPEN_MIN;
        }
    }
    ctx->pattern = sl_strdup(env->arn + FILE_SCHEME_LEN);
    if (!ctx->pattern) {
        return SL_ENOMEM;
    }
    return file_watch_init(ctx);
}

static void file_timer_closed(uv_handle_t *h)
{
    sl_free(h);
}

static int file_start(void *vctx)
{
    struct file_ctx *ctx = vctx;
    ctx->timer = sl_malloc(sizeof(*ctx->timer));
    if (!ctx->timer) {
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, ctx->timer);
    ctx->timer->data = ctx;
    file_watch_start(ctx); /* before the first glob, so that no change falls between them */
    ctx->scan_due = false;
    ctx->last_scan_ms = sl_clock_now_ms(ctx->env.clock);
    file_scan(ctx, true);
    (void)uv_timer_start(ctx->timer, file_tick, (uint64_t)ctx->poll_interval_ms,
                         (uint64_t)ctx->poll_interval_ms);
    return 0;
}

static int64_t file_lag(void *vctx, struct sl_part *part)
{
    (void)vctx;
    const struct file_part *fp = part->src;
    struct stat st;
    if (!fp) {
        return -1;
    }
    uint64_t size = fp->size;
    if (fp->fd >= 0 && fstat(fp->fd, &st) == 0) {
        size = (uint64_t)st.st_size;
    }
    return size > fp->line_off ? (int64_t)(size - fp->line_off) : 0;
}

/* True while a file waits to be read again from 0 after a truncation (its old lines are
 * delivered and acknowledged first), or waits for a descriptor to read what it has: both are
 * bounded by the delivery of what is held. */
static bool file_settling(void *vctx)
{
    struct file_ctx *ctx = vctx;
    for (struct file_part *fp = ctx->parts; fp; fp = fp->next) {
        if (fp->gone) {
            continue;
        }
        if (fp->restart_due ||
            (fp->fd < 0 && fp->want_open && !fp->read_err_logged && fp->seen_gen == ctx->gen)) {
            return true;
        }
    }
    return false;
}

static void file_part_free(struct file_part *fp)
{
    file_fd_close(fp);
    sl_free(fp->path);
    sl_free(fp->buf);
    sl_free(fp->enc);
    sl_free(fp);
}

static void file_part_release(void *vctx, struct sl_part *part)
{
    struct file_ctx *ctx = vctx;
    struct file_part *fp = part->src;
    if (!fp) {
        return;
    }
    if (fp->prev) {
        fp->prev->next = fp->next;
    } else {
        ctx->parts = fp->next;
    }
    if (fp->next) {
        fp->next->prev = fp->prev;
    }
    part->src = NULL;
    file_hash_del(ctx, fp);
    file_part_free(fp);
}

static void file_stop(void *vctx)
{
    struct file_ctx *ctx = vctx;
    if (ctx->timer) {
        (void)uv_timer_stop(ctx->timer);
        uv_close((uv_handle_t *)ctx->timer, file_timer_closed);
        ctx->timer = NULL;
    }
    file_watch_stop(ctx);
}

static void file_fini(void *vctx)
{
    struct file_ctx *ctx = vctx;
    file_stop(ctx);
    while (ctx->parts) {
        struct file_part *fp = ctx->parts;
        ctx->parts = fp->next;
        file_part_free(fp); /* not fp->part: the mapping may have freed it already */
    }
    sl_free(ctx->hash);
    ctx->hash = NULL;
    ctx->hash_cap = ctx->n_parts = 0;
    while (ctx->bad) {
        struct file_bad *b = ctx->bad;
        ctx->bad = b->next;
        sl_free(b->path);
        sl_free(b);
    }
    sl_free(ctx->watch_dir);
    ctx->watch_dir = NULL;
    sl_free(ctx->pattern);
    ctx->pattern = NULL;
}

const struct sl_source_ops sl_source_file = {
    .abi = SL_SOURCE_ABI,
    .name = "file",
    .scheme = FILE_SCHEME,
    .opts = file_opts,
    .ctx_size = sizeof(struct file_ctx),
    .event_open = "{\"Records\":[",
    .event_sep = ",",
    .event_close = "]}",
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .at_timestamp_supported = false,
    .filter_payload_fields = (const char *const[]){"data", NULL},
    .check = file_check,
    .init = file_init,
    .start = file_start,
    .fetch = file_fetch,
    .encode_record = file_encode_record,
    .format_pos = NULL,
    .format_item_id = file_format_item_id,
    .record_key = file_record_key,
    .filter_doc = file_filter_doc,
    .encode_batch_info = file_encode_batch_info,
    .lag = file_lag,
    .settling = file_settling,
    .part_release = file_part_release,
    .stop = file_stop,
    .fini = file_fini,
};

/* SPDX-License-Identifier: Apache-2.0 */
/* file_read.c: the read path of the file source: fetch() reads a file in read_chunk preads,
 * cuts lines and turns them into records in the partition's queue, until the mapping's limits.
 * It owns the partition's read buffer (at most one unfinished line plus one chunk) and the
 * offsets of the next line and the next byte; it must not block on anything but those preads,
 * and must not call the mapping's callbacks from fetch() (but part_set_start, through
 * file_try_restart after a truncation). Loop thread only.
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
 * defaults; they are not errors (file_fields.c reads the fields; file_event.c writes the
 * events). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "json.h"
#include "log.h"
#include "file_int.h"

struct file_fetch_state {
    size_t n, bytes;
    size_t max_records, max_bytes;
    int64_t wall_ms;
};

static bool file_fetch_full(const struct file_fetch_state *fs)
{
    return fs->n >= fs->max_records || fs->bytes >= fs->max_bytes;
}

static int file_push_oversize(struct file_part *fp,
                              struct file_fetch_state *fs,
                              uint64_t from,
                              uint64_t line_end,
                              uint64_t next)
{
    const uint64_t pos[2] = {from, next};
    int r = sl_recq_push(&fp->part->q, NULL, 0, NULL, 0, pos, sizeof(pos), fs->wall_ms,
                         SL_REC_OVERSIZE);
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
        doc = sl_json_parse_exact(data, len);
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
    const uint64_t at[2] = {pos, next};
    int r = sl_recq_push(&fp->part->q, data, (uint32_t)len, key, (uint32_t)key_len, at, sizeof(at),
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

int file_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
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

/* SPDX-License-Identifier: Apache-2.0 */
/* file.c: the file source. EventSourceArn "file://" + an absolute path or glob(3) pattern; each
 * matching regular file is a partition and each line a record, read as Fluent Bit's tail input
 * reads: follow growth, pick up new files, survive rotation by rename and by truncation.
 *
 * This file is the adapter: its options, the checks of the ARN and options, start and stop,
 * and the operations table; the work is done by one module per concern, called from here and
 * calling only downwards (file_int.h has the state they share):
 *   file_watch.c   when to look: the directory watch and the poll timer;
 *   file_check.c   the poll of known files: growth, truncation, rotation, closing;
 *   file_scan.c    discovery: the glob, the parts table, opening, where a file starts;
 *   file_read.c    fetch: lines into records (file_fields.c: keys and times of JSON lines);
 *   file_head.c    fingerprints and generations (what tells two contents apart);
 *   file_event.c   the events, through the shared Kinesis-shaped event (event_kinesis.c).
 *
 * It owns, per mapping, the glob pattern, one poll timer, one watch of the files' directory, and
 * per file a descriptor while it is being read, a read buffer (at most one unfinished line plus
 * one read chunk), the head of the file (for the fingerprint) and the prepared template of its
 * events (records carry only what varies: their bytes, and a partition key from the line when
 * one is configured). It must not block on anything but regular-file reads (pread of read_chunk
 * bytes), must not call the mapping's callbacks from inside fetch() (but part_set_start, which
 * is meant for it), and must not lose or repeat a line across rotation. Loop thread only.
 *
 * About the ARN: "file://" + an absolute path. If it contains * ? or [ it is a glob(3) pattern
 * (where a backslash escapes the next character); otherwise it is taken literally. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "alloc.h"
#include "config.h"
#include "file_int.h"

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
    ctx->hold_cap = ctx->open_cap > 1 ? ctx->open_cap - 1 : 1;
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
    sl_event_kinesis_tmpl_fini(&fp->tmpl);
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
    part->event = NULL;
    file_hash_del(ctx, fp);
    file_part_free(fp);
    ctx->scan_due = true; /* a file released with its lease lost is offered again */
}

/* A lease was taken: scan at the next tick, so that the file is offered (part_add) again. */
static void file_offer_again(void *vctx)
{
    struct file_ctx *ctx = vctx;
    ctx->scan_due = true;
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

static const struct sl_source_caps file_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .at_timestamp_supported = false,
    .window_ms_default = 0,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .lag_unit = SL_LAG_BYTES,
    .leases = true, /* files on a shared file system are shared by leases (src/lease.c) */
};

const struct sl_source_ops sl_source_file = {
    .abi = SL_SOURCE_ABI,
    .name = "file",
    .scheme = FILE_SCHEME,
    .arn_forms = "file:///path or glob",
    .opts = file_opts,
    .ctx_size = sizeof(struct file_ctx),
    .event = &sl_event_kinesis,
    .caps = &file_caps,
    .check = file_check,
    .init = file_init,
    .start = file_start,
    .fetch = file_fetch,
    .encode_record = file_encode_record,
    .compare_pos = sl_recq_pos_compare_u64,
    .format_pos = file_format_pos,
    .format_item_id = file_format_item_id,
    .record_key = file_record_key,
    .filter_doc = file_filter_doc,
    .lag = file_lag,
    .settling = file_settling,
    .part_release = file_part_release,
    .offer_again = file_offer_again,
    .stop = file_stop,
    .fini = file_fini,
};

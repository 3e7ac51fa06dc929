/* SPDX-License-Identifier: Apache-2.0 */
/* sink_file.c: the `file:///absolute/dir` destination. It owns the directory's NDJSON files, one
 * per UTC day of the document's time (<dir>/YYYY-MM-DD.ndjson), each document one line. A write
 * is acknowledged only once its line is on disk: the thread pool (uv_queue_work) opens the file
 * with O_APPEND, writes the line with one writev, fsyncs it (and the directory when the file or
 * the directory was just created), closes it, and only then the loop thread calls back with 0.
 *
 * Writes to one file are serialized: each day's file has a queue of writes, and only its head is
 * on the thread pool, so lines never interleave and a failed write can be undone (ftruncate to
 * the size before it) without touching a neighbour's line. Writes to different days run in
 * parallel.
 *
 * About torn lines: a crash in the middle of a write can leave a last line without its '\n'.
 * Before appending, the worker reads the file's last byte; if it is not '\n' it writes a '\n'
 * first, so the torn line stays a (broken) line of its own and every later line parses. Readers
 * should skip lines that are not valid JSON.
 *
 * The sink never drops a document: any error (the directory cannot be created, ENOSPC, EACCES)
 * calls back with SL_EIO and a detail naming the file, and the caller retries. It does not log
 * above debug; the caller logs the outcome. Loop thread, except file_work (a pool thread, which
 * touches only its own op and the borrowed document). */
#include "sink.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"
#include "url.h"

#define FILE_SCHEME     "file://"
#define FILE_SCHEME_LEN 7
#define FILE_DAY_LEN    10 /* YYYY-MM-DD */

struct file_ctx;
struct file_day;

struct file_op {
    struct file_op *prev, *next; /* in ctx->ops (every op not yet called back) */
    struct file_op *qnext;       /* in day->queue */
    struct file_ctx *ctx;
    struct file_day *day;
    uv_work_t work;
    const char *body; /* borrowed until the callback */
    size_t len;
    sl_sink_cb cb;
    void *arg;
    bool submitted; /* on the thread pool */
    bool canceled;  /* set only before submission: report SL_ECANCELED without writing */
    /* results, written by file_work */
    int err_no;         /* errno of the failed step, or 0 */
    const char *failed; /* the failed step: "open", "write", ... */
};

/* One day's file and its queue of writes; exists while writes to it are pending. */
struct file_day {
    struct file_day *next;
    char day[FILE_DAY_LEN + 1];
    char *path;             /* <dir>/<day>.ndjson, owned */
    struct file_op *head;   /* the write on the thread pool, or about to be */
    struct file_op **ptail; /* where the next write is linked */
};

struct file_ctx {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    const char *inst;
    char *dir; /* absolute, no trailing '/' (except "/" itself), owned */
    struct file_day *days;
    struct file_op *ops;
    bool stopped;
};

/* Parses "file:///abs/dir" into an owned, percent-decoded directory path without trailing
 * slashes. Returns 0, SL_ECONFIG (errbuf says why) or SL_ENOMEM. */
static int file_parse(const char *destination, char **ret_dir, char *errbuf, size_t errlen)
{
    /* Shown redacted (url.h): a mistyped destination may carry credentials. */
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(destination, shown, sizeof(shown));
    if (strncasecmp(destination, FILE_SCHEME, FILE_SCHEME_LEN) != 0) {
        (void)snprintf(errbuf, errlen,
                       "'%s' is not a file destination: expected file:///absolute/dir", shown);
        return SL_ECONFIG;
    }
    const char *p = destination + FILE_SCHEME_LEN;
    if (*p != '/') {
        (void)snprintf(errbuf, errlen,
                       "'%s': a file destination needs an absolute path and no host: "
                       "file:///absolute/dir (three slashes)",
                       shown);
        return SL_ECONFIG;
    }
    const char *q = strpbrk(p, "?#");
    if (q) {
        (void)snprintf(errbuf, errlen,
                       "'%.*s%s': a file destination takes no query or fragment; allowed: "
                       "file:///absolute/dir",
                       (int)(q - destination), destination, *q == '?' ? "?***" : "#***");
        return SL_ECONFIG;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    for (; *p; p++) {
        char c = *p;
        if (c == '%') {
            static const char hex[] = "0123456789abcdef";
            const char *hi = p[1] ? strchr(hex, p[1] | 0x20) : NULL;
            const char *lo = hi && p[2] ? strchr(hex, p[2] | 0x20) : NULL;
            if (!hi || !lo || (hi == hex && lo == hex)) {
                sl_buf_fini(&b);
                (void)snprintf(errbuf, errlen, "'%s': bad percent escape in the path", destination);
                return SL_ECONFIG;
            }
            c = (char)((hi - hex) << 4 | (lo - hex));
            p += 2;
        }
        if (sl_buf_append(&b, &c, 1) < 0) {
            sl_buf_fini(&b);
            return SL_ENOMEM;
        }
    }
    while (b.len > 1 && b.data[b.len - 1] == '/') {
        sl_buf_truncate(&b, b.len - 1);
    }
    char *dir = sl_buf_steal(&b);
    if (!dir) {
        return SL_ENOMEM;
    }
    *ret_dir = dir;
    return 0;
}

static bool file_handles(const char *destination)
{
    return strncasecmp(destination, FILE_SCHEME, FILE_SCHEME_LEN) == 0;
}

static int file_check(const char *destination, char *errbuf, size_t errlen)
{
    char *dir = NULL;
    int r = file_parse(destination, &dir, errbuf, errlen);
    sl_free(dir);
    return r;
}

static int file_init(
    void *ctx_, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct file_ctx *ctx = ctx_;
    ctx->loop = env->loop;
    ctx->clock = env->clock ? env->clock : &sl_clock_system;
    ctx->inst = env->inst;
    return file_parse(destination, &ctx->dir, errbuf, errlen);
}

static int file_sync_parent(const char *path);

/* Creates dir and its missing parents with mode 0700, fsyncing the parent of each one made.
 * Returns 0 or an errno. */
static int file_mkdirs(const char *dir)
{
    char *copy = sl_strdup(dir);
    if (!copy) {
        return ENOMEM;
    }
    int e = 0;
    for (char *p = copy + 1;; p++) {
        if (*p != '/' && *p != '\0') {
            continue;
        }
        char saved = *p;
        *p = '\0';
        if (mkdir(copy, 0700) == 0) {
            e = file_sync_parent(copy);
            if (e) {
                break;
            }
        } else if (errno != EEXIST) {
            e = errno;
            break;
        }
        *p = saved;
        if (saved == '\0') {
            break;
        }
    }
    sl_free(copy);
    return e;
}

/* fsyncs the directory holding path, so a newly created entry survives a crash. */
static int file_sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *parent = slash == path ? sl_strdup("/") : sl_strndup(path, (size_t)(slash - path));
    if (!parent) {
        return ENOMEM;
    }
    int e = 0;
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0) {
        e = errno;
    }
    if (fd >= 0) {
        (void)close(fd);
    }
    sl_free(parent);
    return e;
}

static bool file_write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return false;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

#define FILE_FAIL(step)     \
    do {                    \
        op->failed = step;  \
        op->err_no = errno; \
        goto fail;          \
    } while (0)

/* Pool thread: appends op's line to its day's file and makes it durable. */
static void file_work(uv_work_t *w)
{
    struct file_op *op = w->data;
    if (op->canceled) {
        return;
    }
    const char *path = op->day->path;
    bool created = false;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        const char *slash = strrchr(path, '/');
        int e = 0;
        if (slash != path) {
            char *dir = sl_strndup(path, (size_t)(slash - path));
            e = dir ? file_mkdirs(dir) : ENOMEM;
            sl_free(dir);
        }
        if (e) {
            op->failed = "create directory for";
            op->err_no = e;
            return;
        }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        created = true;
    }
    if (fd < 0) {
        FILE_FAIL("open");
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        FILE_FAIL("stat");
    }
    char last = '\n';
    if (st.st_size > 0) {
        /* O_APPEND does not affect pread's offset; the descriptor is write-only, so read
         * through a second one. */
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (rfd < 0) {
            FILE_FAIL("open");
        }
        ssize_t n = pread(rfd, &last, 1, st.st_size - 1);
        int e = errno;
        (void)close(rfd);
        if (n != 1) {
            errno = n < 0 ? e : EIO;
            FILE_FAIL("read");
        }
    }
    char nl = '\n';
    struct iovec iov[3] = {{&nl, 1}, {(void *)op->body, op->len}, {&nl, 1}};
    struct iovec *v = last == '\n' ? iov + 1 : iov;
    if (!file_write_all(fd, v, last == '\n' ? 2 : 3)) {
        op->failed = "write";
        op->err_no = errno;
        /* Leave no partial line behind; best effort (the next write repairs it otherwise). */
        (void)ftruncate(fd, st.st_size);
        goto fail;
    }
    if (fsync(fd) < 0) {
        FILE_FAIL("fsync");
    }
    if (close(fd) < 0) {
        fd = -1;
        FILE_FAIL("close");
    }
    fd = -1;
    if (created) {
        int e = file_sync_parent(path);
        if (e) {
            op->failed = "fsync the directory of";
            op->err_no = e;
        }
    }
    return;
fail:
    if (fd >= 0) {
        (void)close(fd);
    }
}

static void file_start(struct file_day *day);

static void file_day_free(struct file_ctx *ctx, struct file_day *day)
{
    for (struct file_day **pp = &ctx->days; *pp; pp = &(*pp)->next) {
        if (*pp == day) {
            *pp = day->next;
            break;
        }
    }
    sl_free(day->path);
    sl_free(day);
}

/* Loop thread: reports op, then starts the next write of its day. */
static void file_after_work(uv_work_t *w, int status)
{
    struct file_op *op = w->data;
    struct file_ctx *ctx = op->ctx;
    struct file_day *day = op->day;
    assert(day->head == op);
    day->head = op->qnext;
    if (!day->head) {
        day->ptail = &day->head;
    }
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        ctx->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }

    int err = 0;
    char detail[4200];
    detail[0] = '\0';
    if (status == UV_ECANCELED || op->canceled) {
        err = SL_ECANCELED;
        (void)snprintf(detail, sizeof(detail), "write to %s canceled", day->path);
    } else if (op->failed) {
        err = SL_EIO;
        (void)snprintf(detail, sizeof(detail), "%s %s: %s", op->failed, day->path,
                       uv_strerror(-op->err_no));
        sl_log_debug("sink_file", ctx->inst, "%s", detail);
    }
    sl_sink_cb cb = op->cb;
    void *arg = op->arg;
    sl_free(op);

    if (day->head) {
        file_start(day);
    } else {
        file_day_free(ctx, day);
    }
    cb(arg, err, err ? detail : NULL);
}

/* Puts the head write of day on the thread pool. If that fails (it cannot, short of a broken
 * loop), the write is reported as canceled through the same path on the next turn. */
static void file_start(struct file_day *day)
{
    struct file_op *op = day->head;
    assert(op && !op->submitted);
    op->submitted = true;
    if (op->ctx->stopped) {
        op->canceled = true;
    }
    op->work.data = op;
    int r = uv_queue_work(op->ctx->loop, &op->work, file_work, file_after_work);
    assert(r == 0);
    (void)r;
}

/* Formats the UTC day of ms (Unix epoch milliseconds) as YYYY-MM-DD. */
static void file_day_of(int64_t ms, char out[FILE_DAY_LEN + 1])
{
    int64_t s = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = 70;
        tm.tm_mday = 1;
    }
    unsigned y = (unsigned)(tm.tm_year + 1900) % 10000u, m = (unsigned)tm.tm_mon % 12u + 1u,
             d = (unsigned)tm.tm_mday % 32u;
    unsigned v[8] = {y / 1000, y / 100 % 10, y / 10 % 10, y % 10, m / 10, m % 10, d / 10, d % 10};
    static const int pos[8] = {0, 1, 2, 3, 5, 6, 8, 9};
    out[4] = out[7] = '-';
    for (int i = 0; i < 8; i++) {
        out[pos[i]] = (char)('0' + v[i]);
    }
    out[FILE_DAY_LEN] = '\0';
}

/* About doc: its body must be one line (no '\n'); our documents are compact JSON, so a newline
 * is a caller's bug and the write is refused with SL_EINVAL rather than splitting the line. */
static int file_write(void *ctx_, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct file_ctx *ctx = ctx_;
    if (ctx->stopped) {
        return SL_ECANCELED;
    }
    if (doc->len == 0 || memchr(doc->body, '\n', doc->len)) {
        return SL_EINVAL;
    }
    char dayname[FILE_DAY_LEN + 1];
    file_day_of(doc->time_ms > 0 ? doc->time_ms : sl_clock_wall_ms(ctx->clock), dayname);

    struct file_op *op = sl_calloc(1, sizeof(*op));
    if (!op) {
        return SL_ENOMEM;
    }
    struct file_day *day = ctx->days;
    while (day && strcmp(day->day, dayname) != 0) {
        day = day->next;
    }
    if (!day) {
        day = sl_calloc(1, sizeof(*day));
        struct sl_buf b;
        sl_buf_init(&b);
        if (!day || sl_buf_printf(&b, "%s%s%s.ndjson", ctx->dir,
                                  strcmp(ctx->dir, "/") == 0 ? "" : "/", dayname) < 0) {
            sl_buf_fini(&b);
            sl_free(day);
            sl_free(op);
            return SL_ENOMEM;
        }
        day->path = sl_buf_steal(&b);
        memcpy(day->day, dayname, sizeof(day->day));
        day->ptail = &day->head;
        day->next = ctx->days;
        ctx->days = day;
    }
    op->ctx = ctx;
    op->day = day;
    op->body = doc->body;
    op->len = doc->len;
    op->cb = cb;
    op->arg = arg;
    op->next = ctx->ops;
    if (ctx->ops) {
        ctx->ops->prev = op;
    }
    ctx->ops = op;
    *day->ptail = op;
    day->ptail = &op->qnext;
    if (day->head == op) {
        file_start(day);
    }
    return 0;
}

/* Writes not yet on the thread pool, or queued there but not started, are reported as
 * SL_ECANCELED. A write already running completes with its real result (0 when the line is
 * on disk), because a finished write is better reported than repeated. */
static void file_stop(void *ctx_)
{
    struct file_ctx *ctx = ctx_;
    ctx->stopped = true;
    for (struct file_op *op = ctx->ops; op; op = op->next) {
        if (op->submitted) {
            /* Succeeds only while the work has not started; after_work then sees
             * UV_ECANCELED. op->canceled must not change now: file_work may be reading it. */
            (void)uv_cancel((uv_req_t *)&op->work);
        } else {
            op->canceled = true;
        }
    }
}

static void file_fini(void *ctx_)
{
    struct file_ctx *ctx = ctx_;
    assert(!ctx->ops);
    while (ctx->days) {
        file_day_free(ctx, ctx->days);
    }
    sl_free(ctx->dir);
    ctx->dir = NULL;
}

const struct sl_sink_ops sl_sink_file = {
    .abi = SL_SINK_ABI,
    .name = "file",
    .handles = file_handles,
    .ctx_size = sizeof(struct file_ctx),
    .keeps_payload = true,
    .check = file_check,
    .init = file_init,
    .write = file_write,
    .stop = file_stop,
    .fini = file_fini,
};

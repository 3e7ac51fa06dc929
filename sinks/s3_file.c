/* SPDX-License-Identifier: Apache-2.0 */
/* s3_file.c: the `file:///dir` object writer of delivery streams (s3_file.h). It owns the
 * directory tree under dir and every file in it it creates: per object a temporary file in the
 * final directory, written through the object encoder (s3_object.c), fsynced, renamed onto the
 * key and the directory fsynced, so a reader sees a whole object or none; on failure the
 * temporary file is removed. The disk work runs on libuv's thread pool: s3_file_work touches
 * only its own op (and the borrowed records); everything else is the loop thread's. A GZIP
 * object's body comes from the parallel compressor (sl_s3_gz) in pieces, each written by a job
 * of its own while the next blocks compress; one job of an op runs at a time, in order. */
#include "s3_file.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "s3_keys_int.h"

#define S3_FILE_SCHEME     "file://"
#define S3_FILE_SCHEME_LEN 7

/* The steps of a put, each a job on the pool. An uncompressed object or a backup is one job
 * (S3F_WHOLE); a GZIP object is compressed in parallel (sl_s3_gz) between S3F_OPEN and
 * S3F_COMMIT, its blocks written in order by S3F_WRITE jobs as they come; S3F_ABORT removes
 * the temporary file of a put that failed half way. */
enum s3_file_stage { S3F_WHOLE = 0, S3F_OPEN, S3F_WRITE, S3F_COMMIT, S3F_ABORT };

struct s3_file_op {
    struct s3_file_op *prev, *next; /* in f->ops until called back */
    struct sl_s3_file *f;
    uv_work_t work;
    enum s3_file_stage stage;
    bool job;                 /* work is queued or running */
    char *path;               /* dir/key */
    const struct iovec *recs; /* the records, or NULL with errs */
    const struct sl_s3_error_rec *errs;
    size_t n;
    enum sl_s3_compression comp;
    sl_s3_file_cb cb;
    void *arg;
    sl_s3_file_hook hook; /* copied at submission: the pool thread reads only the op */
    void *hook_arg;
    struct sl_s3_gz *gz;                    /* S3F_OPEN..: the parallel compressor */
    struct iovec wiov[SL_S3_GZ_WINDOW + 2]; /* what the S3F_WRITE job writes */
    size_t wn;
    int fd;            /* the temporary file, or -1 */
    struct sl_buf tmp; /* its path; empty until it exists */
    /* results, written by the jobs */
    int err;
    char detail[512];
};

struct sl_s3_file {
    uv_loop_t *loop;
    char *dir;
    struct s3_file_op *ops;
    size_t inflight;
    sl_s3_file_hook hook;
    void *hook_arg;
};

int sl_s3_file_check(const char *destination, char *errbuf, size_t errlen)
{
    if (strncasecmp(destination, S3_FILE_SCHEME, S3_FILE_SCHEME_LEN) != 0) {
        (void)snprintf(errbuf, errlen, "not a file destination: expected file:///absolute/dir");
        return SL_ECONFIG;
    }
    const char *p = destination + S3_FILE_SCHEME_LEN;
    if (*p != '/') {
        (void)snprintf(errbuf, errlen,
                       "'%s': needs an absolute path and no host: file:///absolute/dir (three "
                       "slashes)",
                       destination);
        return SL_ECONFIG;
    }
    if (strpbrk(p, "?#%")) {
        (void)snprintf(errbuf, errlen,
                       "'%s': no query, fragment or percent escape; allowed: "
                       "file:///absolute/dir",
                       destination);
        return SL_ECONFIG;
    }
    return 0;
}

int sl_s3_file_new(uv_loop_t *loop,
                   const char *destination,
                   struct sl_s3_file **ret_f,
                   char *errbuf,
                   size_t errlen)
{
    int r = sl_s3_file_check(destination, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    struct sl_s3_file *f = sl_calloc(1, sizeof *f);
    if (!f) {
        return SL_ENOMEM;
    }
    f->loop = loop;
    f->dir = sl_strdup(destination + S3_FILE_SCHEME_LEN);
    if (!f->dir) {
        sl_free(f);
        return SL_ENOMEM;
    }
    size_t len = strlen(f->dir);
    while (len > 1 && f->dir[len - 1] == '/') {
        f->dir[--len] = '\0';
    }
    *ret_f = f;
    return 0;
}

void sl_s3_file_set_hook(struct sl_s3_file *f, sl_s3_file_hook hook, void *arg)
{
    f->hook = hook;
    f->hook_arg = arg;
}

size_t sl_s3_file_inflight(const struct sl_s3_file *f)
{
    return f->inflight;
}

void sl_s3_file_free(struct sl_s3_file *f)
{
    if (!f) {
        return;
    }
    assert(f->inflight == 0);
    sl_free(f->dir);
    sl_free(f);
}

/* A key is a relative path of non-empty segments other than "." and "..". */
static bool s3_file_key_ok(const char *key)
{
    if (!*key || *key == '/') {
        return false;
    }
    for (const char *s = key; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
            return false;
        }
        if (!e) {
            break;
        }
        s = e + 1;
        if (!*s) {
            return false; /* a key ends in its object name, not a slash */
        }
    }
    return true;
}

static int s3_file_fail(struct s3_file_op *op, const char *step, const char *path, int err_no)
{
    (void)snprintf(op->detail, sizeof op->detail, "%s %s: %s", step, path, strerror(err_no));
    op->err = SL_EIO;
    return SL_EIO;
}

static int s3_file_fsync_dir(struct s3_file_op *op, const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return s3_file_fail(op, "open directory", dir, errno);
    }
    int r = fsync(fd);
    int err_no = errno;
    (void)close(fd);
    return r < 0 ? s3_file_fail(op, "fsync directory", dir, err_no) : 0;
}

/* mkdir -p of path's directory part (path[0..end)); fsyncs the parent of each one created. */
static int s3_file_mkdirs(struct s3_file_op *op, char *path, size_t end)
{
    for (size_t i = 1; i <= end; i++) {
        if (i < end && path[i] != '/') {
            continue;
        }
        char saved = path[i];
        path[i] = '\0';
        int r = 0;
        if (mkdir(path, 0755) == 0) {
            char *slash = strrchr(path, '/');
            if (slash == path) {
                r = s3_file_fsync_dir(op, "/");
            } else {
                *slash = '\0';
                r = s3_file_fsync_dir(op, path);
                *slash = '/';
            }
        } else if (errno != EEXIST) {
            r = s3_file_fail(op, "create directory", path, errno);
        }
        path[i] = saved;
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static void s3_file_after_cb(uv_work_t *w, int status);

static int s3_file_emit(void *arg, const void *p, size_t n)
{
    int fd = *(int *)arg;
    const char *q = p;
    while (n > 0) {
        ssize_t w = write(fd, q, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return SL_EIO; /* errno is kept for the detail */
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Creates the temporary file: ".<name>.tmp-<random>", in the final directory so that the rename
 * stays on one file system. Pool thread. */
static int s3_file_open_tmp(struct s3_file_op *op)
{
    char *path = op->path;
    char *slash = strrchr(path, '/');
    size_t dir_len = (size_t)(slash - path);
    int r = s3_file_mkdirs(op, path, dir_len);
    if (r < 0) {
        return r;
    }
    r = sl_buf_printf(&op->tmp, "%.*s/.%s.tmp-", (int)dir_len, path, slash + 1);
    if (r == 0) {
        r = sl_s3_keys_time_random(&op->tmp, NULL, NULL);
    }
    if (r < 0) {
        sl_buf_truncate(&op->tmp, 0);
        return s3_file_fail(op, "write", path, ENOMEM);
    }
    op->fd = open(op->tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (op->fd < 0) {
        r = s3_file_fail(op, "create", op->tmp.data, errno);
        sl_buf_truncate(&op->tmp, 0);
        return r;
    }
    return 0;
}

/* Writes the whole body into the temporary file through the streaming encoder. */
static int s3_file_body(struct s3_file_op *op)
{
    struct sl_s3_object *o;
    int r = sl_s3_object_new(op->comp, s3_file_emit, &op->fd, &o);
    if (r < 0) {
        return s3_file_fail(op, "compress", op->tmp.data, ENOMEM);
    }
    struct sl_buf line; /* one error record at a time: memory stays one record's */
    sl_buf_init(&line);
    for (size_t i = 0; i < op->n && r == 0; i++) {
        if (op->errs) {
            sl_buf_truncate(&line, 0);
            r = sl_s3_object_error_line(&line, &op->errs[i]);
            if (r < 0) {
                break;
            }
            r = sl_s3_object_add(o, line.data, line.len);
        } else {
            r = sl_s3_object_add(o, op->recs[i].iov_base, op->recs[i].iov_len);
        }
    }
    sl_buf_fini(&line);
    if (r == 0) {
        r = sl_s3_object_finish(o);
    }
    int err_no = errno;
    sl_s3_object_free(o);
    if (r < 0) {
        return s3_file_fail(op, "write", op->tmp.data, r == SL_EIO ? err_no : ENOMEM);
    }
    return 0;
}

/* Writes op->wiov[0..wn) (a GZIP object's next pieces) at the end of the temporary file. */
static int s3_file_writev(struct s3_file_op *op)
{
    for (size_t i = 0; i < op->wn; i++) {
        if (s3_file_emit(&op->fd, op->wiov[i].iov_base, op->wiov[i].iov_len) < 0) {
            return s3_file_fail(op, "write", op->tmp.data, errno);
        }
    }
    return 0;
}

/* The body is written: fsync, close, rename onto the key, fsync the directory. */
static int s3_file_commit(struct s3_file_op *op)
{
    if (fsync(op->fd) < 0) {
        return s3_file_fail(op, "fsync", op->tmp.data, errno);
    }
    int r = close(op->fd);
    op->fd = -1;
    if (r < 0) {
        return s3_file_fail(op, "close", op->tmp.data, errno);
    }
    if (op->hook) {
        op->hook(op->hook_arg, op->tmp.data, op->path);
    }
    if (rename(op->tmp.data, op->path) < 0) {
        return s3_file_fail(op, "rename", op->tmp.data, errno);
    }
    sl_buf_truncate(&op->tmp, 0); /* it is the object now */
    /* Until the directory is on disk the rename may be lost in a crash: a failure here is
     * reported, and the caller's retry writes the object again (Firehose is at-least-once
     * too). */
    char *slash = strrchr(op->path, '/');
    *slash = '\0';
    r = s3_file_fsync_dir(op, slash == op->path ? "/" : op->path);
    *slash = '/';
    return r;
}

/* Never leaves a partial object behind: closes and removes the temporary file. */
static void s3_file_discard(struct s3_file_op *op)
{
    if (op->fd >= 0) {
        (void)close(op->fd);
        op->fd = -1;
    }
    if (op->tmp.len > 0) {
        (void)unlink(op->tmp.data);
        sl_buf_truncate(&op->tmp, 0);
    }
}

static void s3_file_work(uv_work_t *w)
{
    struct s3_file_op *op = w->data;
    switch (op->stage) {
    case S3F_WHOLE:
        if (op->err == 0 && s3_file_open_tmp(op) == 0 && s3_file_body(op) == 0) {
            (void)s3_file_commit(op);
        }
        break;
    case S3F_OPEN:
        if (op->err == 0) { /* else refused at submission */
            (void)s3_file_open_tmp(op);
        }
        break;
    case S3F_WRITE:
        (void)s3_file_writev(op);
        break;
    case S3F_COMMIT:
        (void)s3_file_commit(op);
        break;
    case S3F_ABORT:
        break;
    }
    if (op->err) {
        s3_file_discard(op);
    }
}

static void s3_file_queue(struct s3_file_op *op, enum s3_file_stage stage)
{
    op->stage = stage;
    op->job = true;
    int r = uv_queue_work(op->f->loop, &op->work, s3_file_work, s3_file_after_cb);
    assert(r == 0); /* fails only for a NULL callback */
    (void)r;
}

/* The put is over: called back once, with 0 or the first failure. */
static void s3_file_end(struct s3_file_op *op)
{
    struct sl_s3_file *f = op->f;
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        f->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    f->inflight--;
    sl_s3_file_cb cb = op->cb;
    void *arg = op->arg;
    int err = op->err;
    char detail[sizeof op->detail];
    memcpy(detail, op->detail, sizeof detail);
    sl_s3_gz_free(op->gz);
    sl_buf_fini(&op->tmp);
    sl_free(op->path);
    sl_free(op);
    cb(arg, err, err ? detail : NULL); /* last: the callback may free f */
}

/* A GZIP put's next step, on the loop thread: write what the compressor has ready, commit once
 * it is all written, or (after a failure) remove the temporary file once no job runs. */
static void s3_file_pump(struct s3_file_op *op)
{
    if (op->job) {
        return; /* its completion calls again */
    }
    if (op->stage == S3F_ABORT) {
        if (!sl_s3_gz_busy(op->gz)) {
            s3_file_queue(op, S3F_ABORT);
        }
        return;
    }
    int r = sl_s3_gz_error(op->gz);
    if (r < 0) {
        (void)s3_file_fail(op, "compress", op->tmp.data, r == SL_ENOMEM ? ENOMEM : EIO);
        op->stage = S3F_ABORT;
        sl_s3_gz_cancel(op->gz);
        s3_file_pump(op);
        return;
    }
    if (sl_s3_gz_done(op->gz)) {
        s3_file_queue(op, S3F_COMMIT);
        return;
    }
    op->wn = sl_s3_gz_ready(op->gz, op->wiov, sizeof op->wiov / sizeof op->wiov[0]);
    if (op->wn > 0) {
        s3_file_queue(op, S3F_WRITE);
    }
}

static void s3_file_gz_ready(void *arg)
{
    s3_file_pump(arg);
}

static void s3_file_after_cb(uv_work_t *w, int status)
{
    struct s3_file_op *op = w->data;
    op->job = false;
    if (status == UV_ECANCELED) { /* only a first step is canceled: nothing to clean */
        op->err = SL_ECANCELED;
        (void)snprintf(op->detail, sizeof op->detail, "write %s canceled", op->path);
        s3_file_end(op);
        return;
    }
    switch (op->stage) {
    case S3F_OPEN:
        if (op->err) {
            break;
        }
        if (sl_s3_gz_new(op->f->loop, op->recs, op->n, s3_file_gz_ready, op, &op->gz) < 0) {
            (void)s3_file_fail(op, "compress", op->tmp.data, ENOMEM);
            s3_file_queue(op, S3F_ABORT);
            return;
        }
        op->stage = S3F_WRITE;
        s3_file_pump(op);
        return;
    case S3F_WRITE:
        if (op->err) { /* the job removed the temporary file; the compressor may still run */
            op->stage = S3F_ABORT;
            sl_s3_gz_cancel(op->gz);
            if (sl_s3_gz_busy(op->gz)) {
                return; /* its ready calls s3_file_pump, which ends the put */
            }
            break;
        }
        sl_s3_gz_consumed(op->gz, op->wn);
        op->wn = 0;
        s3_file_pump(op);
        return;
    case S3F_WHOLE:
    case S3F_COMMIT:
    case S3F_ABORT:
        break;
    }
    s3_file_end(op);
}

static int s3_file_start(struct sl_s3_file *f,
                         const char *key,
                         const struct iovec *recs,
                         const struct sl_s3_error_rec *errs,
                         size_t n,
                         enum sl_s3_compression comp,
                         sl_s3_file_cb cb,
                         void *arg)
{
    struct s3_file_op *op = sl_calloc(1, sizeof *op);
    if (!op) {
        return SL_ENOMEM;
    }
    struct sl_buf path;
    sl_buf_init(&path);
    if (sl_buf_printf(&path, "%s/%s", strcmp(f->dir, "/") == 0 ? "" : f->dir, key) < 0) {
        sl_free(op);
        return SL_ENOMEM;
    }
    op->path = sl_buf_steal(&path);
    if (!op->path) {
        sl_free(op);
        return SL_ENOMEM;
    }
    *op = (struct s3_file_op){.f = f,
                              .path = op->path,
                              .recs = recs,
                              .errs = errs,
                              .n = n,
                              .comp = comp,
                              .cb = cb,
                              .arg = arg,
                              .hook = f->hook,
                              .hook_arg = f->hook_arg};
    op->work.data = op;
    op->fd = -1;
    sl_buf_init(&op->tmp);
    /* An object in memory compresses in parallel; a backup's lines are made one at a time. */
    op->stage = comp == SL_S3_GZIP && recs ? S3F_OPEN : S3F_WHOLE;
    if (!s3_file_key_ok(key)) {
        /* answered through the pool like any other put: never from inside put */
        op->err = SL_EINVAL;
        (void)snprintf(op->detail, sizeof op->detail,
                       "key '%s': allowed: a relative path of non-empty segments other than "
                       "\".\" and \"..\", not ending in '/'",
                       key);
        op->n = 0;
    }
    op->next = f->ops;
    if (f->ops) {
        f->ops->prev = op;
    }
    f->ops = op;
    f->inflight++;
    s3_file_queue(op, op->stage);
    return 0;
}

int sl_s3_file_put(struct sl_s3_file *f,
                   const char *key,
                   const struct iovec *recs,
                   size_t n,
                   enum sl_s3_compression comp,
                   sl_s3_file_cb cb,
                   void *arg)
{
    return s3_file_start(f, key, recs, NULL, n, comp, cb, arg);
}

int sl_s3_file_put_errors(struct sl_s3_file *f,
                          const char *key,
                          const struct sl_s3_error_rec *errs,
                          size_t n,
                          enum sl_s3_compression comp,
                          sl_s3_file_cb cb,
                          void *arg)
{
    return s3_file_start(f, key, NULL, errs, n, comp, cb, arg);
}

void sl_s3_file_stop(struct sl_s3_file *f)
{
    for (struct s3_file_op *op = f->ops; op; op = op->next) {
        if (op->stage == S3F_WHOLE || op->stage == S3F_OPEN) {
            /* UV_EBUSY when already running: it finishes */
            (void)uv_cancel((uv_req_t *)&op->work);
        }
    }
}

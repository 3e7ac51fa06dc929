/* SPDX-License-Identifier: Apache-2.0 */
/* s3_file.c: the `file:///dir` object writer of delivery streams (s3_file.h). It owns the
 * directory tree under dir and every file in it it creates: per object a temporary file in the
 * final directory, written through the object encoder (s3_object.c), fsynced, renamed onto the
 * key and the directory fsynced, so a reader sees a whole object or none; on failure the
 * temporary file is removed. The disk work runs on libuv's thread pool: s3_file_work touches
 * only its own op (and the borrowed records); everything else is the loop thread's. */
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

struct s3_file_op {
    struct s3_file_op *prev, *next; /* in f->ops until called back */
    struct sl_s3_file *f;
    uv_work_t work;
    char *path;               /* dir/key */
    const struct iovec *recs; /* the records, or NULL with errs */
    const struct sl_s3_error_rec *errs;
    size_t n;
    enum sl_s3_compression comp;
    sl_s3_file_cb cb;
    void *arg;
    sl_s3_file_hook hook; /* copied at submission: the pool thread reads only the op */
    void *hook_arg;
    /* results, written by s3_file_work */
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

/* Writes the body into the open temporary file fd and fsyncs it. */
static int s3_file_body(struct s3_file_op *op, int fd, const char *tmp)
{
    struct sl_s3_object *o;
    int r = sl_s3_object_new(op->comp, s3_file_emit, &fd, &o);
    if (r < 0) {
        return s3_file_fail(op, "compress", tmp, ENOMEM);
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
        return s3_file_fail(op, "write", tmp, r == SL_EIO ? err_no : ENOMEM);
    }
    if (fsync(fd) < 0) {
        return s3_file_fail(op, "fsync", tmp, errno);
    }
    return 0;
}

static void s3_file_work(uv_work_t *w)
{
    struct s3_file_op *op = w->data;
    if (op->err) {
        return; /* refused at submission */
    }
    char *path = op->path;
    char *slash = strrchr(path, '/');
    size_t dir_len = (size_t)(slash - path);
    if (s3_file_mkdirs(op, path, dir_len) < 0) {
        return;
    }
    /* .<name>.tmp-<random>, in the final directory so the rename stays on one file system */
    struct sl_buf tmp;
    sl_buf_init(&tmp);
    int r = sl_buf_printf(&tmp, "%.*s/.%s.tmp-", (int)dir_len, path, slash + 1);
    if (r == 0) {
        r = sl_s3_keys_time_random(&tmp, NULL, NULL);
    }
    if (r < 0) {
        sl_buf_fini(&tmp);
        (void)s3_file_fail(op, "write", path, ENOMEM);
        return;
    }
    int fd = open(tmp.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        (void)s3_file_fail(op, "create", tmp.data, errno);
        sl_buf_fini(&tmp);
        return;
    }
    r = s3_file_body(op, fd, tmp.data);
    if (close(fd) < 0 && r == 0) {
        r = s3_file_fail(op, "close", tmp.data, errno);
    }
    if (r == 0 && op->hook) {
        op->hook(op->hook_arg, tmp.data, path);
    }
    if (r == 0 && rename(tmp.data, path) < 0) {
        r = s3_file_fail(op, "rename", tmp.data, errno);
    }
    if (r < 0) {
        (void)unlink(tmp.data); /* never leave a partial object behind */
        sl_buf_fini(&tmp);
        return;
    }
    sl_buf_fini(&tmp);
    /* Until the directory is on disk the rename may be lost in a crash: a failure here is
     * reported, and the caller's retry writes the object again under a new name (Firehose is
     * at-least-once too). */
    *slash = '\0';
    (void)s3_file_fsync_dir(op, dir_len ? path : "/");
    *slash = '/';
}

static void s3_file_after(uv_work_t *w, int status)
{
    struct s3_file_op *op = w->data;
    struct sl_s3_file *f = op->f;
    if (status == UV_ECANCELED) {
        op->err = SL_ECANCELED;
        (void)snprintf(op->detail, sizeof op->detail, "write %s canceled", op->path);
    }
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
    sl_free(op->path);
    sl_free(op);
    cb(arg, err, err ? detail : NULL); /* last: the callback may free f */
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
    int r = uv_queue_work(f->loop, &op->work, s3_file_work, s3_file_after);
    assert(r == 0); /* fails only for a NULL callback */
    (void)r;
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
        (void)uv_cancel((uv_req_t *)&op->work); /* UV_EBUSY when already running: it finishes */
    }
}

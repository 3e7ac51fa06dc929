/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_file.c: the checkpoint store's file I/O. It owns the atomic write (open the temp file,
 * write it, fsync it, close it, rename it over the store's file, open the directory, fsync it,
 * close it: in that order, through the injectable struct sl_ckpt_fileops so that tests can
 * watch the order and stop a write part-way as a crash would), creating the state directory,
 * probing that files can be created in it, and reading a store's file whole (capped). It knows
 * nothing of the table, the loop or JSON; checkpoint.c calls it, from a pool thread for writes.
 * Any thread: it reads only its arguments. No logging: errors go back as a step and an errno,
 * or as text in errbuf. */
#include "ckpt_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"

#define CKPT_FILE_MAX_BYTES (256u * 1024 * 1024)

static int ckpt_file_sys_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

const struct sl_ckpt_fileops ckpt_file_sys_ops = {
    .open = ckpt_file_sys_open,
    .write = write,
    .fsync = fsync,
    .close = close,
    .rename = rename,
};

/* Writes data to tmp, fsyncs, renames over path, fsyncs dir, through fops. Any thread: reads
 * only its arguments. On failure the temp file is removed (best effort) and path is
 * untouched. */
struct ckpt_file_result ckpt_file_write(const struct sl_ckpt_fileops *fops,
                                        const char *dir,
                                        const char *path,
                                        const char *tmp,
                                        const char *data,
                                        size_t len)
{
    struct ckpt_file_result res = {NULL, 0};
    int fd = fops->open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        res.step = "open";
        goto fail;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = fops->write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            res.step = "write";
            goto fail;
        }
        off += (size_t)w;
    }
    if (fops->fsync(fd) < 0) {
        res.step = "fsync";
        goto fail;
    }
    int r = fops->close(fd);
    fd = -1;
    if (r < 0) {
        res.step = "close";
        goto fail;
    }
    if (fops->rename(tmp, path) < 0) {
        res.step = "rename";
        goto fail;
    }
    int dfd = fops->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0) {
        res.step = "open directory";
        res.sys_errno = errno;
        return res;
    }
    /* Some file systems refuse fsync on a directory (EINVAL); the rename is then as durable
     * as that file system can make it. */
    if (fops->fsync(dfd) < 0 && errno != EINVAL) {
        res.step = "fsync directory";
        res.sys_errno = errno;
    }
    (void)fops->close(dfd);
    return res;

fail:
    res.sys_errno = errno;
    if (fd >= 0) {
        (void)fops->close(fd);
    }
    (void)unlink(tmp);
    return res;
}

int ckpt_file_mkdirs(const char *dir, char *errbuf, size_t errlen)
{
    char *p = sl_strdup(dir);
    if (!p) {
        return SL_ENOMEM;
    }
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') {
            continue;
        }
        char save = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            snprintf(errbuf, errlen, "state directory %s: cannot create %s: %s", dir, p,
                     strerror(errno));
            sl_free(p);
            return SL_EIO;
        }
        p[i] = save;
    }
    sl_free(p);
    struct stat st;
    if (stat(dir, &st) < 0) {
        snprintf(errbuf, errlen, "state directory %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errlen, "state directory %s: not a directory", dir);
        return SL_EIO;
    }
    return 0;
}

/* Creates and removes the temp file, as every checkpoint write does, so that a state directory
 * sluice cannot write in stops the run before anything is read rather than after records were
 * delivered (they would be delivered again at every start). A real create, not access(2): root
 * passes access() where a read-only mount or an immutable directory still refuses. Returns 0 or
 * SL_EIO with errbuf naming the directory and the reason. */
int ckpt_file_probe(const char *dir, const char *tmp, char *errbuf, size_t errlen)
{
    const char *step = "create";
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    if (ok) {
        (void)close(fd);
        step = "remove";
        ok = unlink(tmp) == 0;
    }
    if (!ok) {
        snprintf(errbuf, errlen,
                 "state directory %s: cannot %s a file in it (%s): %s; allowed: a directory "
                 "sluice can create and remove files in",
                 dir, step, tmp, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

/* Reads the whole file. Returns 0, SL_ENOTFOUND (no file), SL_EIO or SL_ENOMEM. */
int ckpt_file_read(const char *path, struct sl_buf *b, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return SL_ENOTFOUND;
        }
        snprintf(errbuf, errlen, "checkpoint file %s: cannot open: %s", path, strerror(errno));
        return SL_EIO;
    }
    int r = 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(errbuf, errlen, "checkpoint file %s: %s", path, strerror(errno));
        r = SL_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CKPT_FILE_MAX_BYTES) {
        snprintf(errbuf, errlen, "checkpoint file %s: %s", path,
                 S_ISREG(st.st_mode) ? "larger than 256 MiB" : "not a regular file");
        r = SL_EIO;
        goto out;
    }
    for (;;) {
        if (sl_buf_reserve(b, 65536) < 0) {
            r = SL_ENOMEM;
            goto out;
        }
        ssize_t got = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(errbuf, errlen, "checkpoint file %s: read: %s", path, strerror(errno));
            r = SL_EIO;
            goto out;
        }
        if (got == 0) {
            break;
        }
        b->len += (size_t)got;
        b->data[b->len] = '\0';
        if (b->len > CKPT_FILE_MAX_BYTES) {
            snprintf(errbuf, errlen, "checkpoint file %s: larger than 256 MiB", path);
            r = SL_EIO;
            goto out;
        }
    }
out:
    (void)close(fd);
    return r;
}

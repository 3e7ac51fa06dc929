/* SPDX-License-Identifier: Apache-2.0 */
/* stream_file.c: a delivery stream's objects as files: the key of an object (Firehose's
 * default layout, wire.md §4.5) and writing it under a file:///dir destination so that a
 * reader never sees half of it (temporary name, fsync, rename, fsync of the directory). The
 * two functions are the seam where Firehose's key expressions and the S3 object writer take
 * over; stream.c calls nothing else of the destination. sl_stream_file_write blocks and runs
 * on libuv's thread pool; neither function logs (the stream does). */
#include "stream_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "alloc.h"
#include "config.h"

int sl_stream_file_key(const struct sl_stream_conf *sc, int64_t wall_ms, struct sl_buf *key)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    (void)gmtime_r(&t, &tm);
    unsigned char u[16];
    if (uv_random(NULL, NULL, u, sizeof(u), 0, NULL) != 0) {
        /* Not secret, only unique: the time and the address of the buffer will do. */
        int64_t mix = wall_ms ^ (int64_t)(uintptr_t)key;
        for (size_t i = 0; i < sizeof(u); i++) {
            u[i] = (unsigned char)(mix >> (8 * (i % 8))) ^ (unsigned char)i;
        }
    }
    u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
    u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
    return sl_buf_printf(key,
                         "%s%04d/%02d/%02d/%02d/%s-1-%04d-%02d-%02d-%02d-%02d-%02d-"
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         sc->prefix ? sc->prefix : "", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, sc->name, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                         tm.tm_hour, tm.tm_min, tm.tm_sec, u[0], u[1], u[2], u[3], u[4], u[5], u[6],
                         u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* mkdir -p of path's directories below (and including) base. */
static int file_mkdirs(char *path, size_t base_len)
{
    for (char *p = path + base_len + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        int r = mkdir(path, 0755);
        int e = errno;
        *p = '/';
        if (r != 0 && e != EEXIST) {
            errno = e;
            return -1;
        }
    }
    return 0;
}

static int file_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int r = fsync(fd);
    (void)close(fd);
    return r;
}

int sl_stream_file_write(
    const char *dir, const char *key, const char *data, size_t len, char *errbuf, size_t errlen)
{
    struct sl_buf path, tmp;
    sl_buf_init(&path);
    sl_buf_init(&tmp);
    int fd = -1;
    const char *what = "out of memory";
    int e = ENOMEM;
    if (sl_buf_printf(&path, "%s/%s", dir, key) < 0) {
        goto fail;
    }
    const char *slash = strrchr(path.data, '/');
    size_t dir_len = (size_t)(slash - path.data);
    if (sl_buf_printf(&tmp, "%.*s/.%s.tmp", (int)dir_len, path.data, slash + 1) < 0) {
        goto fail;
    }
    what = "mkdir";
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        e = errno;
        goto fail;
    }
    if (file_mkdirs(path.data, strlen(dir)) != 0) {
        e = errno;
        goto fail;
    }
    what = "open";
    fd = open(tmp.data, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        e = errno;
        goto fail;
    }
    what = "write";
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            e = errno;
            goto fail;
        }
        off += (size_t)n;
    }
    what = "fsync";
    if (fsync(fd) != 0) {
        e = errno;
        goto fail;
    }
    (void)close(fd);
    fd = -1;
    what = "rename";
    if (rename(tmp.data, path.data) != 0) {
        e = errno;
        goto fail;
    }
    path.data[dir_len] = '\0';
    what = "fsync of the directory";
    if (file_fsync_dir(path.data) != 0) {
        e = errno;
        goto fail;
    }
    sl_buf_fini(&path);
    sl_buf_fini(&tmp);
    return 0;

fail:
    (void)snprintf(errbuf, errlen, "%s %s: %s", what, tmp.data ? tmp.data : key, strerror(e));
    if (fd >= 0) {
        (void)close(fd);
        (void)unlink(tmp.data);
    }
    sl_buf_fini(&path);
    sl_buf_fini(&tmp);
    return SL_EIO;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* spool_released.c: the spool's released state on disk, so that records delivered before a
 * restart are not delivered again. The file "released" holds the next id and, per segment, its
 * first and end ids and its bitmap (a bit per record: released or absent), then a CRC-32C of it
 * all. It is replaced atomically (a temporary file written, synced, renamed, the directory
 * synced): at a clean close (on the loop), and whenever the caller asks with
 * sl_spool_save_released (on the pool, from a snapshot taken on the loop), which narrows what
 * a crash repeats. At open it is applied to the segments it names; entries of segments since
 * deleted are ignored, and bits only ever mean "released", so an old file is never wrong, only
 * behind. A file that does not parse is ignored and said so (repeats, never loss). Loop thread
 * except released_write (any thread). */
#include "spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "log.h"

#define SPOOL_RELEASED_MAGIC     "SLSPREL1"
#define SPOOL_RELEASED_MAX_BYTES (256u * 1024 * 1024)

static int read_whole(const char *path, unsigned char **ret_data, size_t *ret_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size > SPOOL_RELEASED_MAX_BYTES) {
        (void)close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    unsigned char *d = sl_malloc(len ? len : 1);
    size_t got = 0;
    while (d && got < len) {
        ssize_t n = read(fd, d + got, len - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    (void)close(fd);
    if (!d || got != len) {
        sl_free(d);
        return -1;
    }
    *ret_data = d;
    *ret_len = len;
    return 0;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | p[i];
    }
    return v;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* Sets the bits the released file has for seg's ids; counts the newly released. */
static void
released_apply(struct sl_spool *sp, uint64_t first, uint64_t end, const unsigned char *bits)
{
    size_t i = spool_seg_find(sp, first);
    if (i == sp->nsegs || sp->segs[i]->first_id != first) {
        return; /* deleted since */
    }
    struct spool_seg *seg = sp->segs[i];
    if (end > seg->end_id) {
        end = seg->end_id;
    }
    for (uint64_t id = first; id < end; id++) {
        uint64_t k = id - first;
        if (((bits[k / 8] >> (k % 8)) & 1) && !spool_seg_is_released(seg, id)) {
            spool_seg_mark(seg, id, true);
            seg->live--;
        }
    }
}

/* Reads "released"; returns its next id (0 when absent or unusable). */
uint64_t spool_released_load(struct sl_spool *sp)
{
    char *path = spool_path(sp->o.dir, SPOOL_RELEASED_FILE);
    unsigned char *d = NULL;
    size_t len = 0;
    uint64_t next = 0;
    if (!path || read_whole(path, &d, &len) < 0) {
        if (path && errno != ENOENT) {
            sl_log_warn("spool", sp->o.name,
                        "%s: cannot read: %s; records released before the last stop may be "
                        "delivered again",
                        path, strerror(errno));
        }
        goto done;
    }
    const char *why = NULL;
    if (len < 28 || memcmp(d, SPOOL_RELEASED_MAGIC, 8) != 0) {
        why = "not a released-state file";
    } else {
        uint32_t crc = (uint32_t)d[len - 4] | (uint32_t)d[len - 3] << 8 |
                       (uint32_t)d[len - 2] << 16 | (uint32_t)d[len - 1] << 24;
        if (sl_crc32c(0, d, len - 4) != crc) {
            why = "bad checksum";
        }
    }
    if (!why) {
        next = le64(d + 8);
        uint64_t nsegs = le64(d + 16);
        size_t off = 24;
        for (uint64_t k = 0; k < nsegs && !why; k++) {
            if (off + 16 > len - 4) {
                why = "truncated";
                break;
            }
            uint64_t first = le64(d + off), end = le64(d + off + 8);
            uint64_t nb = end >= first ? (end - first + 7) / 8 : UINT64_MAX;
            if (nb > len - 4 - off - 16) {
                why = "truncated";
                break;
            }
            released_apply(sp, first, end, d + off + 16);
            off += 16 + (size_t)nb;
        }
    }
    if (why) {
        sl_log_warn("spool", sp->o.name,
                    "%s: %s, ignored; records released before the last stop may be delivered "
                    "again",
                    path, why);
    }
done:
    sl_free(d);
    sl_free(path);
    return next;
}

/* The state as it stands now, encoded (owned by the caller). */
static int released_encode(const struct sl_spool *sp, unsigned char **ret_d, size_t *ret_len)
{
    size_t len = 24 + 4;
    for (size_t i = 0; i < sp->nsegs; i++) {
        len += 16 + (size_t)((sp->segs[i]->end_id - sp->segs[i]->first_id + 7) / 8);
    }
    unsigned char *d = sl_calloc(1, len);
    if (!d) {
        return SL_ENOMEM;
    }
    memcpy(d, SPOOL_RELEASED_MAGIC, 8);
    put_le64(d + 8, sp->next_id);
    put_le64(d + 16, sp->nsegs);
    size_t off = 24;
    for (size_t i = 0; i < sp->nsegs; i++) {
        const struct spool_seg *seg = sp->segs[i];
        size_t nb = (size_t)((seg->end_id - seg->first_id + 7) / 8);
        put_le64(d + off, seg->first_id);
        put_le64(d + off + 8, seg->end_id);
        if (nb) {
            memcpy(d + off + 16, seg->bits, nb);
        }
        off += 16 + nb;
    }
    uint32_t crc = sl_crc32c(0, d, off);
    for (int i = 0; i < 4; i++) {
        d[off + (size_t)i] = (unsigned char)(crc >> (8 * i));
    }
    *ret_d = d;
    *ret_len = len;
    return 0;
}

/* Replaces the file with d. Returns NULL, or the step that failed (errno kept). Any thread:
 * reads only sp's options, which do not change after open. */
static const char *released_write(const struct sl_spool *sp, const unsigned char *d, size_t len)
{
    char *path = spool_path(sp->o.dir, SPOOL_RELEASED_FILE);
    char *tmp = spool_path(sp->o.dir, SPOOL_RELEASED_FILE ".tmp");
    const char *step = NULL;
    int fd = -1;
    if (!path || !tmp) {
        errno = ENOMEM;
        step = "allocate";
        goto done;
    }
    fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        step = "open";
        goto done;
    }
    if (write(fd, d, len) != (ssize_t)len) {
        step = "write";
        goto done;
    }
    if (spool_sync_fd(sp, fd) < 0) {
        step = "fdatasync";
        goto done;
    }
    int c = close(fd);
    fd = -1;
    if (c < 0) {
        step = "close";
        goto done;
    }
    if (rename(tmp, path) < 0) {
        step = "rename";
        goto done;
    }
    spool_sync_dir(sp);
done:
    if (step) {
        int e = errno;
        if (fd >= 0) {
            (void)close(fd);
        }
        if (tmp) {
            (void)unlink(tmp);
        }
        errno = e;
    }
    sl_free(path);
    sl_free(tmp);
    return step;
}

static void released_failed(const struct sl_spool *sp, const char *step, int e)
{
    sl_log_error("spool", sp->o.name,
                 "%s/" SPOOL_RELEASED_FILE ": cannot save which records were delivered (%s: %s); "
                 "they may be delivered again after a restart",
                 sp->o.dir, step, strerror(e));
}

int spool_released_save(struct sl_spool *sp)
{
    unsigned char *d;
    size_t len;
    int r = released_encode(sp, &d, &len);
    if (r < 0) {
        released_failed(sp, "encode", ENOMEM);
        return r;
    }
    const char *step = released_write(sp, d, len);
    if (step) {
        released_failed(sp, step, errno);
        r = SL_EIO;
    }
    sl_free(d);
    return r;
}

struct spool_save {
    uv_work_t work;
    struct sl_spool *sp;
    unsigned char *d;
    size_t len;
    const char *step;
    int err;
    void (*done)(struct sl_spool *sp, int status);
};

static void save_work(uv_work_t *req)
{
    struct spool_save *sv = req->data;
    sv->step = released_write(sv->sp, sv->d, sv->len);
    sv->err = errno;
}

static void save_after(uv_work_t *req, int status)
{
    struct spool_save *sv = req->data;
    struct sl_spool *sp = sv->sp;
    void (*done)(struct sl_spool *, int) = sv->done;
    (void)status;
    if (sv->step) {
        released_failed(sp, sv->step, sv->err);
    }
    int st = sv->step ? SL_EIO : 0;
    sl_free(sv->d);
    sl_free(sv);
    done(sp, st);
}

int spool_released_save_start(struct sl_spool *sp, void (*done)(struct sl_spool *sp, int status))
{
    struct spool_save *sv = sl_calloc(1, sizeof(*sv));
    if (!sv) {
        return SL_ENOMEM;
    }
    int r = released_encode(sp, &sv->d, &sv->len);
    if (r < 0) {
        sl_free(sv);
        return r;
    }
    sv->sp = sp;
    sv->done = done;
    sv->work.data = sv;
    r = uv_queue_work(sp->loop, &sv->work, save_work, save_after);
    if (r < 0) {
        sl_free(sv->d);
        sl_free(sv);
        return SL_EIO;
    }
    return 0;
}

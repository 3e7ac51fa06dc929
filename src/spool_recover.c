/* SPDX-License-Identifier: Apache-2.0 */
/* spool_recover.c: what the spool finds on disk at open, and the released state it leaves at
 * close. At open every segment is read once through the scanner (bounded memory) to count its
 * records and check their checksums. Bytes that do not parse are copied to
 * <segment>.quarantine and logged with the file and offset; then a torn tail (bad bytes up to
 * the end: the last write before a crash) is cut off with ftruncate, and a segment with bad
 * bytes in the middle is rewritten (good frames only, to a temporary file renamed over it).
 * Record ids are stored in the frames, so they do not shift. If a repair cannot be written the
 * open still succeeds: the reader skips the same bad bytes. Nothing here makes open fail
 * because of what a file contains; only a directory that cannot be listed does.
 * The released state (file "released", written at a clean close, atomically) holds each
 * segment's bitmap and the next id; at open it is applied to the segments it names. Loop
 * thread (blocking I/O: open and close only). */
#include "spool_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"
#include "log.h"

#define SPOOL_RELEASED_MAGIC     "SLSPREL1"
#define SPOOL_RELEASED_MAX_BYTES (256u * 1024 * 1024)
#define SPOOL_BAD_LOG_MAX        8 /* lines per segment; the rest are summed up */

static bool parse_seg_name(const char *name, uint64_t *ret_id)
{
    size_t pl = strlen(SPOOL_SEG_PREFIX), sl = strlen(SPOOL_SEG_SUFFIX);
    if (strlen(name) != pl + 20 + sl || strncmp(name, SPOOL_SEG_PREFIX, pl) != 0 ||
        strcmp(name + pl + 20, SPOOL_SEG_SUFFIX) != 0) {
        return false;
    }
    uint64_t id = 0;
    for (size_t i = pl; i < pl + 20; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
        id = id * 10 + (uint64_t)(name[i] - '0');
    }
    *ret_id = id;
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sync_dir(const struct sl_spool *sp)
{
    int dfd = open(sp->o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)spool_sync_fd(sp, dfd);
        (void)close(dfd);
    }
}

/* Appends [off, off + len) of fd to the segment's quarantine file. Returns 0 or -1 (errno). */
static int quarantine_copy(const char *qpath, int fd, uint64_t off, uint64_t len)
{
    int qfd = open(qpath, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    if (qfd < 0) {
        return -1;
    }
    unsigned char buf[16384];
    int r = 0;
    while (len > 0 && r == 0) {
        size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t got = pread(fd, buf, n, (off_t)off);
        if (got <= 0 || write(qfd, buf, (size_t)got) != got) {
            r = -1;
            break;
        }
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    if (r == 0 && fdatasync(qfd) < 0) {
        r = -1;
    }
    int e = errno;
    (void)close(qfd);
    errno = e;
    return r;
}

/* Rewrites the segment with its good frames only. Returns 0 and the new size, or -1. */
static int
seg_rewrite(struct sl_spool *sp, struct spool_seg *seg, int fd, uint64_t size, uint64_t *ret_size)
{
    size_t n = strlen(seg->path) + 5;
    char *tmp = sl_malloc(n);
    if (!tmp) {
        return -1;
    }
    (void)snprintf(tmp, n, "%s.tmp", seg->path);
    int out = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    struct spool_scan sc;
    int r = -1;
    bool scanning = false;
    if (out < 0 || write(out, SPOOL_FILE_MAGIC, SPOOL_FILE_HDR) != SPOOL_FILE_HDR) {
        goto done;
    }
    if (spool_scan_init(&sc, fd, seg->first_id, SPOOL_FILE_HDR, size) < 0) {
        goto done;
    }
    scanning = true;
    uint64_t written = SPOOL_FILE_HDR;
    for (;;) {
        struct spool_frame f;
        struct spool_bad bad;
        enum spool_scan_result res = spool_scan_next(&sc, &f, &bad);
        if (res == SPOOL_SCAN_END) {
            break;
        }
        if (res == SPOOL_SCAN_ERR) {
            goto done;
        }
        if (res == SPOOL_SCAN_FRAME) {
            size_t len = SPOOL_FRAME_HDR + f.len;
            if (write(out, f.raw, len) != (ssize_t)len) {
                goto done;
            }
            written += len;
        }
    }
    if (fdatasync(out) < 0 || close(out) < 0) {
        out = -1;
        goto done;
    }
    out = -1;
    if (rename(tmp, seg->path) < 0) {
        goto done;
    }
    sync_dir(sp);
    *ret_size = written;
    r = 0;
done:
    if (scanning) {
        spool_scan_fini(&sc);
    }
    if (out >= 0) {
        (void)close(out);
    }
    if (r < 0) {
        sl_log_error("spool", sp->o.name,
                     "%s: cannot rewrite it without its corrupt bytes: %s; they stay and are "
                     "skipped when read",
                     seg->path, strerror(errno));
        (void)unlink(tmp);
    }
    sl_free(tmp);
    return r;
}

static void report_bad(struct sl_spool *sp,
                       const struct spool_seg *seg,
                       const char *qpath,
                       const struct spool_bad *bad,
                       uint64_t kept,
                       bool tail,
                       bool copied,
                       unsigned nth)
{
    sp->quarantined_frames++;
    sp->quarantined_bytes += bad->len;
    if (nth >= SPOOL_BAD_LOG_MAX) {
        return;
    }
    if (tail) {
        sl_log_error("spool", sp->o.name,
                     "%s: torn tail at offset %" PRIu64 " (%s): %" PRIu64
                     " bytes %s %s (a write cut short by a crash, or damaged on disk); the %" PRIu64
                     " good records before it are kept",
                     seg->path, bad->off, bad->why, bad->len,
                     copied ? "moved to" : "could not be copied to", qpath, kept);
    } else {
        sl_log_error("spool", sp->o.name,
                     "%s: corrupt bytes at offset %" PRIu64 " (%s): %" PRIu64
                     " bytes %s %s, the records in them are lost; reading resumes at offset "
                     "%" PRIu64 " (%" PRIu64 " good records before it kept)",
                     seg->path, bad->off, bad->why, bad->len,
                     copied ? "moved to" : "could not be copied to", qpath, bad->off + bad->len,
                     kept);
    }
}

/* Scans one segment: counts its records into seg, quarantines and repairs bad bytes. */
static int seg_recover(struct sl_spool *sp, struct spool_seg *seg)
{
    int fd = open(seg->path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        sl_log_error("spool", sp->o.name, "%s: cannot open: %s; its records are not replayed",
                     seg->path, strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        return 0; /* left in place for a person to look at */
    }
    uint64_t size = (uint64_t)st.st_size;
    size_t qn = strlen(seg->path) + strlen(SPOOL_QUAR_SUFFIX) + 1;
    char *qpath = sl_malloc(qn);
    if (!qpath) {
        (void)close(fd);
        return SL_ENOMEM;
    }
    (void)snprintf(qpath, qn, "%s%s", seg->path, SPOOL_QUAR_SUFFIX);
    unsigned nbad = 0;
    bool middle = false;
    uint64_t tail_off = size, kept = 0;
    int r = 0;
    char hdr[SPOOL_FILE_HDR];
    if (size < SPOOL_FILE_HDR || pread(fd, hdr, SPOOL_FILE_HDR, 0) != SPOOL_FILE_HDR ||
        memcmp(hdr, SPOOL_FILE_MAGIC, SPOOL_FILE_HDR) != 0) {
        struct spool_bad bad = {0, size < SPOOL_FILE_HDR ? size : SPOOL_FILE_HDR,
                                "bad file header"};
        bool copied = quarantine_copy(qpath, fd, bad.off, bad.len) == 0;
        bool tail = size <= SPOOL_FILE_HDR;
        report_bad(sp, seg, qpath, &bad, 0, tail, copied, nbad++);
        if (tail) {
            tail_off = 0;
        } else {
            middle = true;
        }
    }
    struct spool_scan sc;
    r = spool_scan_init(&sc, fd, seg->first_id, SPOOL_FILE_HDR, size > SPOOL_FILE_HDR ? size : 0);
    if (r < 0) {
        goto done;
    }
    bool pending_bad = false;
    for (;;) {
        struct spool_frame f;
        struct spool_bad bad;
        enum spool_scan_result res = spool_scan_next(&sc, &f, &bad);
        if (res == SPOOL_SCAN_END) {
            break;
        }
        if (res == SPOOL_SCAN_ERR) {
            sl_log_error("spool", sp->o.name,
                         "%s: read failed at offset %" PRIu64 ": %s; the records after it are "
                         "not replayed",
                         seg->path, sc.pos, strerror(errno));
            size = sc.pos;
            break;
        }
        if (res == SPOOL_SCAN_BAD) {
            bool tail = bad.off + bad.len >= size;
            bool copied = quarantine_copy(qpath, fd, bad.off, bad.len) == 0;
            report_bad(sp, seg, qpath, &bad, kept, tail, copied, nbad++);
            if (tail) {
                tail_off = bad.off;
            } else {
                pending_bad = true;
            }
            continue;
        }
        if (pending_bad) {
            middle = true;
        }
        r = spool_seg_grow(seg, f.id + 1);
        if (r < 0) {
            break;
        }
        spool_seg_mark(seg, f.id, false);
        seg->live++;
        kept++;
    }
    spool_scan_fini(&sc);
    if (r < 0) {
        goto done;
    }
    if (nbad > SPOOL_BAD_LOG_MAX) {
        sl_log_error("spool", sp->o.name, "%s: %u corrupt regions in all (the first %u logged)",
                     seg->path, nbad, SPOOL_BAD_LOG_MAX);
    }
    seg->size_bytes = size;
    if (middle) {
        uint64_t nsize;
        if (seg_rewrite(sp, seg, fd, tail_off, &nsize) == 0) {
            seg->size_bytes = nsize;
        }
    } else if (tail_off < size) {
        uint64_t cut = tail_off < SPOOL_FILE_HDR ? 0 : tail_off;
        if (ftruncate(fd, (off_t)cut) < 0 || fdatasync(fd) < 0) {
            sl_log_error("spool", sp->o.name,
                         "%s: cannot cut the torn tail at offset %" PRIu64
                         ": %s; it stays and is skipped when read",
                         seg->path, cut, strerror(errno));
        } else {
            seg->size_bytes = cut;
        }
    }
    seg->durable_bytes = seg->size_bytes;
done:
    (void)close(fd);
    sl_free(qpath);
    return r;
}

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
static uint64_t released_load(struct sl_spool *sp)
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

int spool_released_save(struct sl_spool *sp)
{
    size_t len = 24 + 4;
    for (size_t i = 0; i < sp->nsegs; i++) {
        len += 16 + (size_t)((sp->segs[i]->end_id - sp->segs[i]->first_id + 7) / 8);
    }
    unsigned char *d = sl_calloc(1, len);
    char *path = spool_path(sp->o.dir, SPOOL_RELEASED_FILE);
    char *tmp = spool_path(sp->o.dir, SPOOL_RELEASED_FILE ".tmp");
    int r = SL_EIO;
    int fd = -1;
    if (!d || !path || !tmp) {
        goto done;
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
    fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, d, len) != (ssize_t)len || spool_sync_fd(sp, fd) < 0) {
        goto done;
    }
    int c = close(fd);
    fd = -1;
    if (c < 0 || rename(tmp, path) < 0) {
        goto done;
    }
    sync_dir(sp);
    r = 0;
done:
    if (r < 0) {
        sl_log_error("spool", sp->o.name,
                     "%s: cannot save which records were delivered: %s; they may be delivered "
                     "again after a restart",
                     path ? path : sp->o.dir, strerror(errno));
        if (tmp) {
            (void)unlink(tmp);
        }
    }
    if (fd >= 0) {
        (void)close(fd);
    }
    sl_free(d);
    sl_free(path);
    sl_free(tmp);
    return r;
}

/* Lists the segment files (sorted ids) and removes temporary files a crash left. */
static int
list_segs(struct sl_spool *sp, uint64_t **ret_ids, size_t *ret_n, char *errbuf, size_t errlen)
{
    DIR *dir = opendir(sp->o.dir);
    if (!dir) {
        (void)snprintf(errbuf, errlen, "spool directory %s: cannot list it: %s", sp->o.dir,
                       strerror(errno));
        return SL_EIO;
    }
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        uint64_t id;
        size_t nl = strlen(de->d_name);
        if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
            char *p = spool_path(sp->o.dir, de->d_name);
            if (p) {
                (void)unlink(p);
            }
            sl_free(p);
            continue;
        }
        if (!parse_seg_name(de->d_name, &id)) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *x = sl_realloc(ids, cap * sizeof(*ids));
            if (!x) {
                r = SL_ENOMEM;
                break;
            }
            ids = x;
        }
        ids[n++] = id;
    }
    (void)closedir(dir);
    if (r < 0) {
        sl_free(ids);
        return r;
    }
    if (n) {
        qsort(ids, n, sizeof(*ids), cmp_u64);
    }
    *ret_ids = ids;
    *ret_n = n;
    return 0;
}

int spool_recover(struct sl_spool *sp, char *errbuf, size_t errlen)
{
    uint64_t *ids = NULL;
    size_t n = 0;
    int r = list_segs(sp, &ids, &n, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    uint64_t next = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        struct spool_seg *seg = spool_seg_new(sp->o.dir, ids[i]);
        if (!seg) {
            r = SL_ENOMEM;
            break;
        }
        r = seg_recover(sp, seg);
        if (r == 0 && sp->nsegs == sp->segs_cap) {
            size_t cap = sp->segs_cap ? sp->segs_cap * 2 : 16;
            struct spool_seg **s = sl_realloc(sp->segs, cap * sizeof(*s));
            if (!s) {
                r = SL_ENOMEM;
            } else {
                sp->segs = s;
                sp->segs_cap = cap;
            }
        }
        if (r < 0) {
            spool_seg_free(seg);
            break;
        }
        sp->segs[sp->nsegs++] = seg;
        next = seg->end_id > next ? seg->end_id : next;
        next = seg->first_id > next ? seg->first_id : next;
    }
    sl_free(ids);
    if (r < 0) {
        (void)snprintf(errbuf, errlen, "spool directory %s: out of memory while recovering",
                       sp->o.dir);
        return r;
    }
    uint64_t rel_next = released_load(sp);
    sp->next_id = next > rel_next ? next : rel_next;
    /* Segments with nothing left to deliver go now; the rest count against the quota. */
    for (size_t i = 0; i < sp->nsegs;) {
        struct spool_seg *seg = sp->segs[i];
        if (seg->live == 0) {
            sp->disk_bytes += seg->size_bytes;
            spool_seg_drop(sp, i);
            continue;
        }
        sp->disk_bytes += seg->size_bytes;
        sp->live += seg->live;
        i++;
    }
    sp->durable_next_id = sp->next_id;
    sp->rd_next_id = sp->nsegs ? sp->segs[0]->first_id : sp->next_id;
    if (sp->live) {
        sl_log_info("spool", sp->o.name,
                    "%s: %" PRIu64 " records in %zu segments to deliver from a previous run",
                    sp->o.dir, sp->live, sp->nsegs);
    }
    return 0;
}

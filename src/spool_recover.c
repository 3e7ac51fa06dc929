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
 * The released state is applied by spool_released.c. Loop thread (blocking I/O: at open
 * only). */
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
#include "log.h"

#define SPOOL_BAD_LOG_MAX 8 /* lines per segment; the rest are summed up */

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
            size_t len = (size_t)spool_frame_size(f.len, f.meta_len);
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
    spool_sync_dir(sp);
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

/* Scans one segment: counts its records into seg, quarantines and repairs bad bytes. Fails
 * (SL_EIO, errbuf) only when the file cannot be opened: its records are unknown, so going on
 * could hand their ids out again; what it contains never makes this fail. */
static int seg_recover(struct sl_spool *sp, struct spool_seg *seg, char *errbuf, size_t errlen)
{
    int fd = open(seg->path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS)) {
        fd = open(seg->path, O_RDONLY | O_CLOEXEC); /* readable still: replay, cannot repair */
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        (void)snprintf(errbuf, errlen, "spool segment %s: cannot open it: %s", seg->path,
                       strerror(errno));
        if (fd >= 0) {
            (void)close(fd);
        }
        return SL_EIO;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        (void)close(fd); /* created, and the crash came before its header: nothing in it */
        return 0;
    }
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
        r = seg_recover(sp, seg, errbuf, errlen);
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
    if (r == SL_ENOMEM) {
        (void)snprintf(errbuf, errlen, "spool directory %s: out of memory while recovering",
                       sp->o.dir);
    }
    if (r < 0) {
        return r;
    }
    uint64_t rel_next = spool_released_load(sp);
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

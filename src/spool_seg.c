/* SPDX-License-Identifier: Apache-2.0 */
/* spool_seg.c: the low-level pieces every other spool file uses, and which call none of them:
 * paths in the spool directory, syncing a descriptor (through the options' sync_fn when set)
 * and the directory, and the segment list: a segment's bitmap, finding the segment that holds
 * an id, and dropping a segment (closing the reader if it is on it, and deleting its file now
 * or, while a sync holds its descriptor, when that sync returns). Loop thread, except
 * spool_path, spool_sync_fd and spool_sync_dir (any thread). */
#include "spool_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"

char *spool_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = sl_malloc(n);
    if (p) {
        (void)snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

int spool_sync_fd(const struct sl_spool *sp, int fd)
{
    if (sp->o.sync_fn) {
        return sp->o.sync_fn(fd, sp->o.sync_arg);
    }
    return fdatasync(fd);
}

void spool_sync_dir(const struct sl_spool *sp)
{
    int dfd = open(sp->o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)spool_sync_fd(sp, dfd);
        (void)close(dfd);
    }
}

struct spool_seg *spool_seg_new(const char *dir, uint64_t first_id)
{
    char name[64];
    (void)snprintf(name, sizeof(name), SPOOL_SEG_PREFIX "%020" PRIu64 SPOOL_SEG_SUFFIX, first_id);
    struct spool_seg *seg = sl_calloc(1, sizeof(*seg));
    if (!seg) {
        return NULL;
    }
    seg->path = spool_path(dir, name);
    if (!seg->path) {
        sl_free(seg);
        return NULL;
    }
    seg->first_id = first_id;
    seg->end_id = first_id;
    seg->fd = -1;
    return seg;
}

void spool_seg_free(struct spool_seg *seg)
{
    if (!seg) {
        return;
    }
    if (seg->fd >= 0) {
        (void)close(seg->fd);
    }
    sl_free(seg->bits);
    sl_free(seg->path);
    sl_free(seg);
}

/* New ids start absent (bit set) until a frame or an append clears them. */
int spool_seg_grow(struct spool_seg *seg, uint64_t end_id)
{
    assert(end_id >= seg->end_id);
    size_t need = (size_t)((end_id - seg->first_id + 7) / 8);
    if (need > seg->bits_cap) {
        size_t cap = seg->bits_cap ? seg->bits_cap : 64;
        while (cap < need) {
            cap *= 2;
        }
        uint8_t *b = sl_realloc(seg->bits, cap);
        if (!b) {
            return SL_ENOMEM;
        }
        memset(b + seg->bits_cap, 0xff, cap - seg->bits_cap);
        seg->bits = b;
        seg->bits_cap = cap;
    }
    seg->end_id = end_id;
    return 0;
}

size_t spool_seg_find(const struct sl_spool *sp, uint64_t id)
{
    size_t lo = 0, hi = sp->nsegs; /* first segment with first_id > id */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->segs[mid]->first_id <= id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? sp->nsegs : lo - 1;
}

void spool_seg_unlink(struct sl_spool *sp, struct spool_seg *seg)
{
    if (unlink(seg->path) < 0 && errno != ENOENT) {
        sl_log_warn("spool", sp->o.name, "%s: cannot delete a delivered segment: %s, skipping",
                    seg->path, strerror(errno));
    }
    sp->disk_bytes -= seg->size_bytes;
    spool_seg_free(seg);
}

/* The reader's scan of a segment, closed here when its segment is dropped; spool_read.c opens
 * it. */
void spool_read_fini(struct sl_spool *sp)
{
    if (sp->rd_open) {
        spool_scan_fini(&sp->rd);
        (void)close(sp->rd_fd);
        sp->rd_fd = -1;
        sp->rd_open = false;
    }
}

void spool_read_forget(struct sl_spool *sp, uint64_t first_id)
{
    if (sp->rd_open && sp->rd_seg_id == first_id) {
        spool_read_fini(sp);
    }
}

void spool_seg_drop(struct sl_spool *sp, size_t i)
{
    struct spool_seg *seg = sp->segs[i];
    memmove(sp->segs + i, sp->segs + i + 1, (sp->nsegs - i - 1) * sizeof(*sp->segs));
    sp->nsegs--;
    spool_read_forget(sp, seg->first_id);
    if (seg->busy) {
        seg->doomed = true; /* sync_after frees it */
        return;
    }
    spool_seg_unlink(sp, seg);
}

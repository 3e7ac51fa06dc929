/* SPDX-License-Identifier: Apache-2.0 */
/* spool_read.c: the spool's way out: the reader, a cursor that hands out durable, unreleased
 * records in append order, reading one segment at a time through the scanner's bounded buffer
 * (so memory does not depend on how much is spooled), and release, which marks a record
 * delivered in its segment's bitmap and deletes the segment when nothing in it is left. Bytes
 * the scanner cannot parse were quarantined at open; if the reader still meets some (the
 * quarantine could not rewrite the file) it skips them to the next valid frame. Loop thread. */
#include "spool_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

bool sl_spool_has_unread(const struct sl_spool *sp)
{
    return sp->rd_next_id < sp->durable_next_id;
}

/* Opens the reader on the segment holding rd_next_id (or the first after it). Returns the
 * segment, or NULL when there is none or it cannot be opened (*ret_r SL_EIO). */
static struct spool_seg *read_seg(struct sl_spool *sp, int *ret_r)
{
    *ret_r = 0;
    size_t i = spool_seg_find(sp, sp->rd_next_id);
    if (i == sp->nsegs) {
        i = 0;
    }
    while (i < sp->nsegs && sp->segs[i]->end_id <= sp->rd_next_id && i + 1 < sp->nsegs) {
        i++;
    }
    if (i >= sp->nsegs) {
        return NULL;
    }
    struct spool_seg *seg = sp->segs[i];
    if (sp->rd_open && sp->rd_seg_id == seg->first_id) {
        sp->rd.limit = seg->durable_bytes;
        return seg;
    }
    spool_read_fini(sp);
    int fd = open(seg->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sl_log_error("spool", sp->o.name, "%s: cannot open to read: %s", seg->path,
                     strerror(errno));
        *ret_r = SL_EIO;
        return NULL;
    }
    if (spool_scan_init(&sp->rd, fd, seg->first_id, SPOOL_FILE_HDR, seg->durable_bytes) < 0) {
        (void)close(fd);
        *ret_r = SL_ENOMEM;
        return NULL;
    }
    sp->rd_fd = fd;
    sp->rd_open = true;
    sp->rd_seg_id = seg->first_id;
    return seg;
}

int sl_spool_read(
    struct sl_spool *sp, size_t max_records, size_t max_bytes, sl_spool_read_fn fn, void *arg)
{
    int n = 0;
    size_t bytes = 0;
    while ((size_t)n < max_records && sl_spool_has_unread(sp)) {
        int r;
        struct spool_seg *seg = read_seg(sp, &r);
        if (!seg) {
            return r < 0 ? r : n;
        }
        struct spool_frame f;
        struct spool_bad bad;
        uint64_t prev_id = sp->rd.prev_id;
        bool any = sp->rd.any;
        switch (spool_scan_next(&sp->rd, &f, &bad)) {
        case SPOOL_SCAN_FRAME:
            if (f.id < sp->rd_next_id) {
                break;
            }
            if (spool_seg_is_released(seg, f.id)) {
                sp->rd_next_id = f.id + 1;
                break;
            }
            if (n > 0 && bytes + f.len > max_bytes) {
                /* Leave it for the next call: put the scan back before this frame. */
                sp->rd.pos = f.off;
                sp->rd.prev_id = prev_id;
                sp->rd.any = any;
                return n;
            }
            sp->rd_next_id = f.id + 1;
            struct sl_spool_rec rec = {f.id,  f.data, f.len,     f.arrival_ms,
                                       f.tag, f.meta, f.meta_len};
            fn(arg, &rec);
            n++;
            bytes += f.len;
            break;
        case SPOOL_SCAN_BAD:
            sl_log_warn("spool", sp->o.name,
                        "%s: %" PRIu64 " corrupt bytes at offset %" PRIu64 " (%s), skipping",
                        seg->path, bad.len, bad.off, bad.why);
            break;
        case SPOOL_SCAN_END:
            if (seg == sp->segs[sp->nsegs - 1]) {
                /* Everything durable was passed (ids lost to corruption included). */
                sp->rd_next_id = sp->durable_next_id;
                return n;
            }
            if (seg->durable_bytes < seg->size_bytes) {
                return n; /* the rest is not durable yet */
            }
            if (sp->rd_next_id < seg->end_id) {
                sp->rd_next_id = seg->end_id;
            }
            spool_read_fini(sp);
            break;
        case SPOOL_SCAN_ERR:
            sl_log_error("spool", sp->o.name, "%s: read failed: %s", seg->path, strerror(errno));
            spool_read_fini(sp);
            return SL_EIO;
        }
    }
    return n;
}

int sl_spool_release(struct sl_spool *sp, uint64_t id)
{
    if (id >= sp->next_id) {
        return SL_EINVAL;
    }
    size_t i = spool_seg_find(sp, id);
    if (i == sp->nsegs) {
        return 0;
    }
    struct spool_seg *seg = sp->segs[i];
    if (id >= seg->end_id || spool_seg_is_released(seg, id)) {
        return 0;
    }
    spool_seg_mark(seg, id, true);
    seg->live--;
    sp->live--;
    if (seg->live == 0 && i + 1 < sp->nsegs) {
        spool_seg_drop(sp, i);
    }
    return 0;
}

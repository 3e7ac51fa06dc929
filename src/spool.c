/* SPDX-License-Identifier: Apache-2.0 */
/* spool.c: the spool's life cycle and its write path: open (lock the directory, recover, start a
 * segment), append (quota, frames into the active segment with one write(2), segment roll) and
 * group commit (appends written during a loop turn, or while a sync runs, share one fdatasync
 * on the pool; their callbacks run in order when it returns), the entry of a save of the released
 * state (written by spool_released.c, which hands its completion back here), and close. Recovery
 * at open is in spool_recover.c, reading and releasing in spool_read.c, the frame format in
 * spool_scan.c, paths, syncs and the segment list in spool_seg.c.
 * Nothing here blocks on the disk's flush: write(2) lands in the page cache, the sync runs on
 * libuv's pool. Loop thread, except sync_work (pool). */
#include "spool_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"

#define SPOOL_SEG_MIN_BYTES     (1024u * 1024)
#define SPOOL_SEG_DEFAULT_BYTES (64u * 1024 * 1024)

struct spool_append {
    struct spool_append *next;
    uint64_t seq;
    uint64_t first_id;
    sl_spool_append_cb cb;
    void *arg;
};

/* A sync in flight: the descriptors of the segments written since the last one, and how far
 * each was written when it started. */
struct spool_sync {
    uv_work_t work;
    struct sl_spool *sp;
    struct spool_seg **segs;
    uint64_t *sizes;
    size_t n;
    bool dir;
    uint64_t upto_seq;
    uint64_t upto_next_id;
    const char *failed_step; /* NULL: all synced */
    int failed_errno;
};

static int segs_push(struct sl_spool *sp, struct spool_seg *seg)
{
    if (sp->nsegs == sp->segs_cap) {
        size_t cap = sp->segs_cap ? sp->segs_cap * 2 : 16;
        struct spool_seg **s = sl_realloc(sp->segs, cap * sizeof(*s));
        if (!s) {
            return SL_ENOMEM;
        }
        sp->segs = s;
        sp->segs_cap = cap;
    }
    sp->segs[sp->nsegs++] = seg;
    return 0;
}

/* Creates the segment appends go to from now on, starting at next_id. */
static int seg_start(struct sl_spool *sp)
{
    struct spool_seg *seg = spool_seg_new(sp->o.dir, sp->next_id);
    if (!seg) {
        return SL_ENOMEM;
    }
    seg->fd = open(seg->path, O_CREAT | O_EXCL | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    if (seg->fd < 0 || write(seg->fd, SPOOL_FILE_MAGIC, SPOOL_FILE_HDR) != SPOOL_FILE_HDR) {
        sl_log_error("spool", sp->o.name, "%s: cannot create a segment: %s", seg->path,
                     strerror(errno));
        if (seg->fd >= 0) {
            (void)unlink(seg->path);
        }
        spool_seg_free(seg);
        return SL_EIO;
    }
    seg->size_bytes = SPOOL_FILE_HDR;
    seg->durable_bytes = SPOOL_FILE_HDR;
    seg->dirty = true;
    int r = segs_push(sp, seg);
    if (r < 0) {
        (void)unlink(seg->path);
        spool_seg_free(seg);
        return r;
    }
    sp->disk_bytes += SPOOL_FILE_HDR;
    sp->dir_dirty = true;
    return 0;
}

/* Seals the active segment and starts a new one. The old one keeps its descriptor until a sync
 * has covered it; if everything in it was released it goes at once. */
static int seg_roll(struct sl_spool *sp)
{
    struct spool_seg *old = sp->segs[sp->nsegs - 1];
    int r = seg_start(sp);
    if (r < 0) {
        return r;
    }
    if (old->live == 0) {
        spool_seg_drop(sp, sp->nsegs - 2);
    } else if (!old->dirty && !old->busy) {
        (void)close(old->fd);
        old->fd = -1;
    }
    return 0;
}

/* ---- group commit ---- */

static void sync_work(uv_work_t *req)
{
    struct spool_sync *s = req->data;
    for (size_t i = 0; i < s->n && !s->failed_step; i++) {
        if (spool_sync_fd(s->sp, s->segs[i]->fd) < 0) {
            s->failed_step = "fdatasync";
            s->failed_errno = errno;
        }
    }
    if (s->dir && !s->failed_step) {
        int dfd = open(s->sp->o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || spool_sync_fd(s->sp, dfd) < 0) {
            s->failed_step = "directory fsync";
            s->failed_errno = errno;
        }
        if (dfd >= 0) {
            (void)close(dfd);
        }
    }
}

static void spool_kick(struct sl_spool *sp);
static void spool_maybe_finish_close(struct sl_spool *sp);

static void sync_after(uv_work_t *req, int status)
{
    struct spool_sync *s = req->data;
    struct sl_spool *sp = s->sp;
    assert(status == 0);
    (void)status;
    int st = 0;
    if (s->failed_step) {
        sl_log_error("spool", sp->o.name,
                     "%s: %s failed: %s; appends are refused from now on (records written "
                     "before are replayed after a restart)",
                     sp->o.dir, s->failed_step, strerror(s->failed_errno));
        sp->broken = true;
        st = SL_EIO;
    }
    struct spool_seg *active = sp->nsegs ? sp->segs[sp->nsegs - 1] : NULL;
    for (size_t i = 0; i < s->n; i++) {
        struct spool_seg *seg = s->segs[i];
        seg->busy--;
        if (st == 0 && s->sizes[i] > seg->durable_bytes) {
            seg->durable_bytes = s->sizes[i];
        }
        if (seg->doomed && seg->busy == 0) {
            spool_seg_unlink(sp, seg);
        } else if (seg != active && !seg->dirty && seg->busy == 0 && seg->fd >= 0) {
            (void)close(seg->fd);
            seg->fd = -1;
        }
    }
    if (st == 0 && s->upto_next_id > sp->durable_next_id) {
        sp->durable_next_id = s->upto_next_id;
    }
    sp->syncs++;
    sp->sync = NULL;
    /* Acknowledge every append this sync covered, in order. A callback may append again. Once
     * a sync failed, the appends written after it fail too: a later fdatasync that succeeds
     * says nothing of pages the failed one lost. */
    while (sp->pend_head && (sp->pend_head->seq <= s->upto_seq || sp->broken)) {
        struct spool_append *a = sp->pend_head;
        sp->pend_head = a->next;
        if (!sp->pend_head) {
            sp->pend_tail = NULL;
        }
        a->cb(a->arg, st, a->first_id);
        sl_free(a);
    }
    sl_free(s->segs);
    sl_free(s->sizes);
    sl_free(s);
    spool_kick(sp);
    spool_maybe_finish_close(sp);
}

/* Fails every waiting append with status (the sync could not even start). */
static void pend_fail(struct sl_spool *sp, int status)
{
    while (sp->pend_head) {
        struct spool_append *a = sp->pend_head;
        sp->pend_head = a->next;
        a->cb(a->arg, status, a->first_id);
        sl_free(a);
    }
    sp->pend_tail = NULL;
}

static void sync_start(struct sl_spool *sp)
{
    if (sp->sync || !sp->pend_head) {
        return;
    }
    struct spool_sync *s = sl_calloc(1, sizeof(*s));
    size_t n = 0;
    for (size_t i = 0; i < sp->nsegs; i++) {
        n += sp->segs[i]->dirty;
    }
    if (s) {
        s->segs = sl_calloc(n ? n : 1, sizeof(*s->segs));
        s->sizes = sl_calloc(n ? n : 1, sizeof(*s->sizes));
    }
    if (!s || !s->segs || !s->sizes) {
        if (s) {
            sl_free(s->segs);
            sl_free(s->sizes);
        }
        sl_free(s);
        pend_fail(sp, SL_ENOMEM);
        return;
    }
    for (size_t i = 0; i < sp->nsegs; i++) {
        struct spool_seg *seg = sp->segs[i];
        if (seg->dirty) {
            seg->dirty = false;
            seg->busy++;
            s->segs[s->n] = seg;
            s->sizes[s->n] = seg->size_bytes;
            s->n++;
        }
    }
    s->sp = sp;
    s->dir = sp->dir_dirty;
    sp->dir_dirty = false;
    s->upto_seq = sp->append_seq;
    s->upto_next_id = sp->next_id;
    s->work.data = s;
    sp->sync = s;
    int r = uv_queue_work(sp->loop, &s->work, sync_work, sync_after);
    assert(r == 0); /* fails only for a NULL callback */
    (void)r;
}

static void spool_check_cb(uv_check_t *h)
{
    struct sl_spool *sp = h->data;
    (void)uv_check_stop(&sp->check);
    (void)uv_idle_stop(&sp->idle);
    sync_start(sp);
}

static void spool_idle_cb(uv_idle_t *h)
{
    /* Only here so that poll does not block while the check handle waits for its turn. */
    (void)h;
}

/* Starts a sync at the end of this loop turn, so that every append of the turn shares it; or,
 * while one runs, when it returns. */
static void spool_kick(struct sl_spool *sp)
{
    if (sp->sync || !sp->pend_head) {
        return;
    }
    (void)uv_check_start(&sp->check, spool_check_cb);
    (void)uv_idle_start(&sp->idle, spool_idle_cb);
}

/* ---- append ---- */

static int wbuf_reserve(struct sl_spool *sp, size_t need)
{
    if (need <= sp->wbuf_cap) {
        return 0;
    }
    size_t cap = sp->wbuf_cap ? sp->wbuf_cap : 64 * 1024;
    while (cap < need) {
        cap *= 2;
    }
    unsigned char *b = sl_realloc(sp->wbuf, cap);
    if (!b) {
        return SL_ENOMEM;
    }
    sp->wbuf = b;
    sp->wbuf_cap = cap;
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int sl_spool_append(
    struct sl_spool *sp, const struct sl_spool_in *recs, size_t n, sl_spool_append_cb cb, void *arg)
{
    assert(n > 0 && cb);
    if (sp->closing) {
        return SL_ECANCELED;
    }
    if (sp->broken) {
        return SL_EIO;
    }
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len > SL_SPOOL_RECORD_MAX_BYTES || recs[i].meta_len > SL_SPOOL_META_MAX_BYTES) {
            return SL_EINVAL;
        }
        need += spool_frame_size(recs[i].len, recs[i].meta_len);
    }
    if (need + SPOOL_FILE_HDR > sp->o.max_bytes) {
        return SL_EINVAL;
    }
    struct spool_seg *seg = sp->segs[sp->nsegs - 1];
    bool roll = seg->size_bytes > SPOOL_FILE_HDR &&
                (seg->size_bytes + need > sp->o.segment_bytes ||
                 /* Full but all delivered: a new segment lets the old one go. */
                 (seg->live == 0 && sp->disk_bytes + need > sp->o.max_bytes));
    if (roll) {
        int r = seg_roll(sp);
        if (r < 0) {
            return r;
        }
        seg = sp->segs[sp->nsegs - 1];
    }
    if (sp->disk_bytes + need > sp->o.max_bytes) {
        return SL_ETHROTTLED;
    }
    struct spool_append *a = sl_calloc(1, sizeof(*a));
    if (!a || wbuf_reserve(sp, (size_t)need) < 0 || spool_seg_grow(seg, sp->next_id + n) < 0) {
        sl_free(a);
        return SL_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        spool_frame_encode(sp->wbuf + off, &recs[i], sp->next_id + i);
        off += SPOOL_FRAME_HDR;
        if (recs[i].len) {
            memcpy(sp->wbuf + off, recs[i].data, recs[i].len);
        }
        off += recs[i].len;
        if (recs[i].meta_len) {
            memcpy(sp->wbuf + off, recs[i].meta, recs[i].meta_len);
        }
        off += recs[i].meta_len;
    }
    if (write_all(seg->fd, sp->wbuf, off) < 0) {
        int e = errno;
        sl_free(a);
        /* Take back what part of it landed, so the file stays a run of whole frames. */
        if (ftruncate(seg->fd, (off_t)seg->size_bytes) < 0) {
            sp->broken = true;
        }
        sl_log_error("spool", sp->o.name, "%s: write failed: %s%s", seg->path, strerror(e),
                     sp->broken ? "; appends are refused from now on" : "");
        /* The bits of the ids not written stay set (absent). */
        seg->end_id = sp->next_id;
        return SL_EIO;
    }
    for (size_t i = 0; i < n; i++) {
        spool_seg_mark(seg, sp->next_id + i, false);
    }
    seg->size_bytes += off;
    seg->live += n;
    seg->dirty = true;
    sp->disk_bytes += off;
    sp->live += n;
    a->first_id = sp->next_id;
    sp->next_id += n;
    a->seq = ++sp->append_seq;
    a->cb = cb;
    a->arg = arg;
    if (sp->pend_tail) {
        sp->pend_tail->next = a;
    } else {
        sp->pend_head = a;
    }
    sp->pend_tail = a;
    spool_kick(sp);
    return 0;
}

/* ---- open and close ---- */

static int mkdir_p(const char *dir)
{
    char *p = sl_strdup(dir);
    if (!p) {
        return -1;
    }
    int r = 0;
    for (char *s = p + 1; *s && r == 0; s++) {
        if (*s == '/') {
            *s = '\0';
            if (mkdir(p, 0700) < 0 && errno != EEXIST) {
                r = -1;
            }
            *s = '/';
        }
    }
    if (r == 0 && mkdir(p, 0700) < 0 && errno != EEXIST) {
        r = -1;
    }
    sl_free(p);
    return r;
}

static void spool_free(struct sl_spool *sp)
{
    spool_read_fini(sp);
    for (size_t i = 0; i < sp->nsegs; i++) {
        spool_seg_free(sp->segs[i]);
    }
    sl_free(sp->segs);
    sl_free(sp->wbuf);
    if (sp->lock_fd >= 0) {
        (void)close(sp->lock_fd);
    }
    sl_free((char *)sp->o.dir);
    sl_free((char *)sp->o.name);
    sl_free(sp);
}

static void spool_handle_closed(uv_handle_t *h)
{
    struct sl_spool *sp = h->data;
    if (--sp->handles_open > 0) {
        return;
    }
    sl_spool_close_cb cb = sp->close_cb;
    void *arg = sp->close_arg;
    spool_free(sp);
    if (cb) {
        cb(arg);
    }
}

/* Finishes a close once nothing is in flight. */
static void spool_maybe_finish_close(struct sl_spool *sp)
{
    if (!sp->closing || sp->finishing || sp->sync || sp->pend_head || sp->saving) {
        return;
    }
    sp->finishing = true;
    (void)spool_released_save(sp);
    uv_close((uv_handle_t *)&sp->check, spool_handle_closed);
    uv_close((uv_handle_t *)&sp->idle, spool_handle_closed);
}

/* A save of the released state returned (its failure already logged). */
static void spool_saved(struct sl_spool *sp, int status)
{
    sl_spool_saved_cb cb = sp->save_cb;
    void *arg = sp->save_arg;
    sp->saving = false;
    if (cb) {
        cb(arg, status);
    }
    spool_maybe_finish_close(sp);
}

int sl_spool_save_released(struct sl_spool *sp, sl_spool_saved_cb cb, void *arg)
{
    if (sp->closing) {
        return SL_ECANCELED;
    }
    if (sp->saving) {
        return SL_EAGAIN;
    }
    int r = spool_released_save_start(sp, spool_saved);
    if (r < 0) {
        return r;
    }
    sp->saving = true;
    sp->save_cb = cb;
    sp->save_arg = arg;
    return 0;
}

void sl_spool_close(struct sl_spool *sp, sl_spool_close_cb cb, void *arg)
{
    assert(!sp->closing);
    sp->closing = true;
    sp->close_cb = cb;
    sp->close_arg = arg;
    /* Now, or from sync_after once the last append is acknowledged (spool_kick has already
     * started or scheduled its sync), or when a save of the released state returns. */
    spool_maybe_finish_close(sp);
}

int sl_spool_open(uv_loop_t *loop,
                  const struct sl_spool_opts *o,
                  struct sl_spool **ret_sp,
                  char *errbuf,
                  size_t errlen)
{
    assert(o->dir && o->max_bytes > 0);
    struct sl_spool *sp = sl_calloc(1, sizeof(*sp));
    if (!sp) {
        return SL_ENOMEM;
    }
    sp->loop = loop;
    sp->o = *o;
    sp->lock_fd = -1;
    sp->rd_fd = -1;
    sp->o.dir = sl_strdup(o->dir);
    sp->o.name = sl_strdup(o->name ? o->name : o->dir);
    if (!sp->o.dir || !sp->o.name) {
        spool_free(sp);
        return SL_ENOMEM;
    }
    if (!sp->o.segment_bytes) {
        uint64_t s = o->max_bytes / 16;
        sp->o.segment_bytes = s < SPOOL_SEG_MIN_BYTES       ? SPOOL_SEG_MIN_BYTES
                              : s > SPOOL_SEG_DEFAULT_BYTES ? SPOOL_SEG_DEFAULT_BYTES
                                                            : s;
    }
    int r = SL_EIO;
    if (mkdir_p(sp->o.dir) < 0) {
        (void)snprintf(errbuf, errlen, "spool directory %s: cannot create it: %s", sp->o.dir,
                       strerror(errno));
        goto fail;
    }
    char *lock = spool_path(sp->o.dir, "lock");
    if (!lock) {
        r = SL_ENOMEM;
        goto fail;
    }
    sp->lock_fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    int e = errno;
    sl_free(lock);
    if (sp->lock_fd < 0) {
        (void)snprintf(errbuf, errlen, "spool directory %s: cannot open its lock file: %s",
                       sp->o.dir, strerror(e));
        goto fail;
    }
    if (flock(sp->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        (void)snprintf(errbuf, errlen,
                       "spool directory %s is in use by another process (or stream); each "
                       "delivery stream needs a directory of its own",
                       sp->o.dir);
        r = SL_EINVAL;
        goto fail;
    }
    r = spool_recover(sp, errbuf, errlen);
    if (r < 0) {
        goto fail;
    }
    r = seg_start(sp);
    if (r < 0) {
        (void)snprintf(errbuf, errlen, "spool directory %s: cannot create a segment file: %s",
                       sp->o.dir, strerror(errno));
        goto fail;
    }
    (void)uv_check_init(loop, &sp->check);
    (void)uv_idle_init(loop, &sp->idle);
    sp->check.data = sp;
    sp->idle.data = sp;
    sp->handles_open = 2;
    *ret_sp = sp;
    return 0;
fail:
    spool_free(sp);
    return r;
}

void sl_spool_stats(const struct sl_spool *sp, struct sl_spool_stats *ret_st)
{
    memset(ret_st, 0, sizeof(*ret_st));
    ret_st->disk_bytes = sp->disk_bytes;
    ret_st->records_live = sp->live;
    ret_st->segments = sp->nsegs;
    ret_st->syncs = sp->syncs;
    ret_st->quarantined_bytes = sp->quarantined_bytes;
    ret_st->quarantined_frames = sp->quarantined_frames;
}

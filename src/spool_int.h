/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SPOOL_INT_H
#define SL_SPOOL_INT_H

/* What the spool's files share: the on-disk format, the frame scanner, the segment list and the
 * spool object. Not for use outside spool*.c. Loop thread unless said. */

#include "spool.h"

#define SPOOL_FILE_MAGIC     "SLSPOOL1"
#define SPOOL_FILE_HDR       8u
#define SPOOL_FRAME_MAGIC    0x50534c53u /* "SLSP" as little-endian bytes */
#define SPOOL_FRAME_HDR      SL_SPOOL_FRAME_OVERHEAD
#define SPOOL_SCAN_BUF_BYTES (2u * 1024 * 1024)
/* Most records one segment may hold (a 64 MiB segment holds at most 1.7 million). */
#define SPOOL_SEG_MAX_RECORDS (1u << 26)
#define SPOOL_SEG_PREFIX      "seg-"
#define SPOOL_SEG_SUFFIX      ".spool"
#define SPOOL_QUAR_SUFFIX     ".quarantine"
#define SPOOL_RELEASED_FILE   "released"

/* Frame header, little-endian:
 *   0 magic u32 | 4 crc u32 | 8 len u32 | 12 meta_len u32 | 16 id u64 | 24 arrival_ms i64 |
 *   32 tag u64 | 40 data[len] | meta[meta_len]
 * crc is CRC-32C of bytes 8 .. 40+len+meta_len (everything after itself). meta_len was a
 * reserved 0 before records carried metadata, so files written then read as records without
 * any. */

/* One segment file. Records in it have ids in [first_id, end_id); the bitmap has a bit per id,
 * set when the record is released or absent (lost to corruption). */
struct spool_seg {
    uint64_t first_id;
    uint64_t end_id;
    uint64_t live; /* present and not released */
    uint8_t *bits;
    size_t bits_cap;        /* bytes allocated */
    uint64_t size_bytes;    /* bytes in the file */
    uint64_t durable_bytes; /* bytes covered by a completed sync (or found at open) */
    int fd;                 /* the writer's: the active segment, or sealed and not yet synced */
    unsigned busy;          /* syncs in flight that hold fd */
    bool dirty;             /* written since the last sync snapshot */
    bool doomed;            /* all released: unlink once busy drops to 0 */
    char *path;
};

struct spool_frame {
    uint64_t off; /* file offset of the frame */
    uint64_t id;
    int64_t arrival_ms;
    uint64_t tag;
    const unsigned char *raw; /* the whole frame, header included (into the scanner's buffer) */
    const unsigned char *data;
    uint32_t len;
    const unsigned char *meta; /* after data */
    uint32_t meta_len;
};

/* The bytes a frame takes on disk. */
static inline uint64_t spool_frame_size(uint32_t len, uint32_t meta_len)
{
    return SPOOL_FRAME_HDR + (uint64_t)len + meta_len;
}

/* Reads frames of one segment file in order through a bounded buffer. A region that does not
 * parse (bad magic, length, checksum or id, or cut short by the limit) is returned as bad, and
 * the scan resumes at the next offset where a valid frame starts. Any thread. */
struct spool_scan {
    int fd;
    unsigned char *buf;
    size_t cap;
    uint64_t buf_off; /* file offset of buf[0] */
    size_t len;       /* bytes valid in buf */
    uint64_t pos;     /* where the next frame should start */
    uint64_t limit;   /* nothing at or past this offset is read */
    uint64_t first_id;
    uint64_t prev_id; /* id of the last good frame; first_id - 1 before any */
    bool any;
};

enum spool_scan_result { SPOOL_SCAN_FRAME, SPOOL_SCAN_BAD, SPOOL_SCAN_END, SPOOL_SCAN_ERR };

struct spool_bad {
    uint64_t off;
    uint64_t len;
    const char *why; /* static text: "truncated frame", "bad checksum", ... */
};

/* fd is borrowed. Starts at pos (after the file header). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int
spool_scan_init(struct spool_scan *sc, int fd, uint64_t first_id, uint64_t pos, uint64_t limit);
void spool_scan_fini(struct spool_scan *sc);
/* FRAME: *ret_f valid until the next call; BAD: *ret_bad; END: pos reached limit; ERR: read
 * failed (errno kept). */
enum spool_scan_result
spool_scan_next(struct spool_scan *sc, struct spool_frame *ret_f, struct spool_bad *ret_bad);

/* Encodes a frame header for a record; crc covers data too. */
void spool_frame_encode(unsigned char *hdr, const struct sl_spool_in *in, uint64_t id);

/* Bitmap helpers. */
SL_NODISCARD int spool_seg_grow(struct spool_seg *seg, uint64_t end_id);
static inline bool spool_seg_is_released(const struct spool_seg *seg, uint64_t id)
{
    uint64_t i = id - seg->first_id;
    return (seg->bits[i / 8] >> (i % 8)) & 1;
}
static inline void spool_seg_mark(struct spool_seg *seg, uint64_t id, bool released)
{
    uint64_t i = id - seg->first_id;
    if (released) {
        seg->bits[i / 8] |= (uint8_t)(1u << (i % 8));
    } else {
        seg->bits[i / 8] &= (uint8_t) ~(1u << (i % 8));
    }
}
struct spool_seg *spool_seg_new(const char *dir, uint64_t first_id);
void spool_seg_free(struct spool_seg *seg);

struct spool_append;

struct sl_spool {
    uv_loop_t *loop;
    struct sl_spool_opts o; /* dir and name owned copies */
    int lock_fd;
    struct spool_seg **segs; /* by first_id; the last one is the active segment */
    size_t nsegs, segs_cap;
    uint64_t next_id;
    uint64_t durable_next_id; /* every record below it is durable */
    uint64_t disk_bytes;
    uint64_t live;
    bool broken; /* a write or sync failed: appends refused */
    bool dir_dirty;

    unsigned char *wbuf; /* frames of one append, written with one write(2) */
    size_t wbuf_cap;

    /* Group commit: appends written and waiting for a sync, in order. */
    struct spool_append *pend_head, *pend_tail;
    uint64_t append_seq;     /* of the last append written */
    struct spool_sync *sync; /* in flight, or NULL */
    uv_check_t check;
    uv_idle_t idle;
    unsigned handles_open;
    uint64_t syncs;

    /* The reader: a scan over the segment with first_id rd_seg_id. */
    bool rd_open;
    uint64_t rd_seg_id;
    int rd_fd;
    struct spool_scan rd;
    uint64_t rd_next_id; /* every record below this was handed out */

    uint64_t quarantined_bytes, quarantined_frames;

    bool saving; /* a sl_spool_save_released in flight */
    sl_spool_saved_cb save_cb;
    void *save_arg;
    bool closing, finishing;
    sl_spool_close_cb close_cb;
    void *close_arg;
};

/* spool_seg.c: the pieces the other files share; it calls none of them. */
/* Joins dir and name into an owned path, or NULL. */
char *spool_path(const char *dir, const char *name);
int spool_sync_fd(const struct sl_spool *sp, int fd);
void spool_sync_dir(const struct sl_spool *sp);
/* Index of the segment holding id (largest first_id <= id), or nsegs when none. */
size_t spool_seg_find(const struct sl_spool *sp, uint64_t id);
/* Removes segment i from the list and deletes its file (now or when its sync finishes). */
void spool_seg_drop(struct sl_spool *sp, size_t i);
/* Deletes a segment already out of the list, and frees it. */
void spool_seg_unlink(struct sl_spool *sp, struct spool_seg *seg);
/* Closes the reader if it is on the segment with first_id. */
void spool_read_forget(struct sl_spool *sp, uint64_t first_id);
void spool_read_fini(struct sl_spool *sp);

/* Recovery at open (spool_recover.c): fills sp->segs from the directory, quarantining bad
 * bytes, and sets next_id. Returns 0, or SL_EIO/SL_ENOMEM with errbuf. */
SL_NODISCARD int spool_recover(struct sl_spool *sp, char *errbuf, size_t errlen);
/* spool_released.c: applies the saved released state to the recovered segments and returns
 * the next id it recorded (0 when there is none); writes the state now, on the loop (at close;
 * returns 0 or SL_EIO and logs its own failure); or on the pool from a snapshot taken now,
 * calling done on the loop when it returns, its failure logged (returns 0, or SL_ENOMEM/SL_EIO
 * and done is not called). */
uint64_t spool_released_load(struct sl_spool *sp);
int spool_released_save(struct sl_spool *sp);
SL_NODISCARD int spool_released_save_start(struct sl_spool *sp,
                                           void (*done)(struct sl_spool *sp, int status));

#endif

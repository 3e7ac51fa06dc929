/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SPOOL_H
#define SL_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"

/* The durable spool of one delivery stream: an append-only log of records in a directory of its
 * own (state_dir/<stream>), written before the ingest API answers and deleted only after
 * delivery. Loop thread only, except the fdatasync hook (a pool thread).
 *
 * How the stream core uses it:
 *   1. sl_spool_open() at start; it replays what a previous run left: every record appended and
 *      acknowledged but not released comes back through sl_spool_read().
 *   2. PutRecordBatch: sl_spool_append() the records; answer the client from the callback, which
 *      runs once they are written and fdatasync'ed (status 0), or with SL_EIO. Appends that
 *      arrive while a sync runs share the next one (group commit). SL_ETHROTTLED returned at
 *      once means the quota is full: answer ServiceUnavailableException, nothing was written.
 *   3. Buffering: sl_spool_read() hands out durable records in append order, each once per
 *      open, with its id; the caller groups them per destination partition, holding in memory
 *      only what it read (so memory does not grow with the spool). sl_spool_has_unread() says
 *      whether more is waiting; after an append callback there is.
 *   4. After delivery (or backup) of a record, sl_spool_release(id). A segment file is deleted
 *      when every record in it is released.
 *   5. Optionally, sl_spool_save_released() now and then, to narrow what a crash repeats.
 *   6. sl_spool_close() on shutdown: waits for the sync in flight, saves which records were
 *      released, closes.
 *
 * At-least-once, exactly: after a clean close and reopen nothing released is read again. After a
 * crash (no sl_spool_close), records released since the last save of the released state (a
 * clean close, or sl_spool_save_released) are read again if their segment file was not yet
 * deleted; no acknowledged record is lost (short of damage on disk, below). Records appended
 * but not yet acknowledged when the process died may or may not come back (their client saw no
 * answer).
 *
 * The quota counts the segment files' bytes, so room comes back when a whole segment is deleted:
 * one record held back (a destination partition that does not deliver) keeps its segment, and
 * segment_bytes is the grain of that. The segment appended to is sealed early when all of it is
 * released and an append would not fit otherwise.
 *
 * On disk: files seg-<first id, 20 digits>.spool, each an 8-byte header ("SLSPOOL1") and frames
 * of a 40-byte header (magic, CRC-32C, length, metadata length, id, arrival ms, tag), the
 * record's bytes and its metadata (the metadata length was a reserved 0 before, so older files
 * read as records without metadata);
 * "released", written at close and by sl_spool_save_released; "lock", held (flock) while open.
 * Corrupt bytes found at open (a torn tail after a crash, or a damaged frame in the middle) are
 * moved to seg-<id>.spool.quarantine beside the segment and logged with the file and offset; the
 * good frames before them are kept, and after a damaged frame in the middle reading resumes at the
 * next valid frame (found by its magic and checksum), so the good frames after it are kept too.
 * A damaged frame's record is lost (it cannot be told apart from garbage), and said so. */

/* Largest record (Firehose takes 1,000 KiB). */
#define SL_SPOOL_RECORD_MAX_BYTES (1024u * 1024)
/* Bytes a record takes on disk beyond its data (and its metadata). */
#define SL_SPOOL_FRAME_OVERHEAD 40u
/* Largest metadata a record may carry. */
#define SL_SPOOL_META_MAX_BYTES 4096u

struct sl_spool;

struct sl_spool_opts {
    const char *dir;        /* the stream's own directory; created (with parents) if missing */
    const char *name;       /* the stream's name, for log lines */
    uint64_t max_bytes;     /* quota: bytes of segment files on disk (spool_max_bytes) */
    uint64_t segment_bytes; /* a segment is sealed past this; 0: max_bytes / 16, within
                               [1 MiB, 64 MiB] */
    /* Test hook: replaces fdatasync(2) (segments) and fsync(2) (the directory); NULL for the
     * system's. Called on a pool thread. */
    int (*sync_fn)(int fd, void *arg);
    void *sync_arg;
};

/* One record going in. data is borrowed for the call: append copies it to disk. */
struct sl_spool_in {
    const void *data;
    uint32_t len;
    int64_t arrival_ms; /* kept as given (wall clock ms for Firehose) */
    uint64_t tag;       /* the caller's, kept as given */
    /* The caller's metadata, kept beside the data (copied like it; at most
     * SL_SPOOL_META_MAX_BYTES): a Kinesis source's record metadata (fh_kmeta.h). meta_len 0:
     * none. */
    const void *meta;
    uint32_t meta_len;
};

/* One record coming out; data is borrowed for the callback only. */
struct sl_spool_rec {
    uint64_t id; /* increasing in append order, never reused in this directory */
    const void *data;
    uint32_t len;
    int64_t arrival_ms;
    uint64_t tag;
    const void *meta; /* as appended (meta_len 0: none, also for records of older spools) */
    uint32_t meta_len;
};

struct sl_spool_stats {
    uint64_t disk_bytes;   /* counted against max_bytes */
    uint64_t records_live; /* on disk, not released */
    uint64_t segments;
    uint64_t syncs;              /* group commits completed */
    uint64_t quarantined_bytes;  /* moved to quarantine files by this open */
    uint64_t quarantined_frames; /* bad regions found by this open (each one or more frames) */
};

/* status 0: every record of the append is durable; SL_EIO: the sync failed (the spool then
 * refuses further appends with SL_EIO). first_id: the first record's id; they are consecutive. */
typedef void (*sl_spool_append_cb)(void *arg, int status, uint64_t first_id);
typedef void (*sl_spool_read_fn)(void *arg, const struct sl_spool_rec *rec);
typedef void (*sl_spool_close_cb)(void *arg);

/* Opens the spool in o->dir (o is copied), recovering what is there: quarantines corrupt bytes
 * (never fails because of them), applies the released state of the last clean close, deletes
 * segments with nothing left, and starts a new segment for appends. Returns 0 and *ret_sp, or
 * SL_EIO / SL_ENOMEM / SL_EINVAL with errbuf naming the path and the cause (directory not
 * creatable, in use by another process). Loop thread. Reads every segment once (to check its
 * checksums) in bounded memory. */
SL_NODISCARD int sl_spool_open(uv_loop_t *loop,
                               const struct sl_spool_opts *o,
                               struct sl_spool **ret_sp,
                               char *errbuf,
                               size_t errlen);

/* Appends n records (n >= 1) in order and returns 0; cb(arg, status, first_id) runs later, on the
 * loop, once they are durable, in append order. On a negative return cb is never called and
 * nothing was kept: SL_ETHROTTLED when the quota would be exceeded (backpressure: retry after
 * deliveries), SL_EINVAL for a record over SL_SPOOL_RECORD_MAX_BYTES (or metadata over
 * SL_SPOOL_META_MAX_BYTES) or a batch larger than the
 * quota itself, SL_EIO when writing failed or a sync failed before, SL_ECANCELED after
 * sl_spool_close. The write itself happens
 * here (into the page cache); the fdatasync runs on the pool. Loop thread. */
SL_NODISCARD int sl_spool_append(struct sl_spool *sp,
                                 const struct sl_spool_in *recs,
                                 size_t n,
                                 sl_spool_append_cb cb,
                                 void *arg);

/* Calls fn for the next unreleased durable records in append order (fn may release the record
 * it is given, or any other, and append; nothing else), at most max_records and
 * max_bytes of data (but at least one record when any is waiting, whatever its size). Each record
 * is handed out once per open. Returns the number handed out (0: none waiting) or SL_EIO. Reads the
 * segment files (pread, normally from the page cache) in a bounded buffer. Loop thread. */
SL_NODISCARD int sl_spool_read(
    struct sl_spool *sp, size_t max_records, size_t max_bytes, sl_spool_read_fn fn, void *arg);

/* True when sl_spool_read would hand out a record now. */
bool sl_spool_has_unread(const struct sl_spool *sp);

/* Marks record id delivered. Idempotent (0 for an id already released or whose segment is
 * gone); SL_EINVAL for an id never appended. Deletes the segment once all of it is released
 * (not the one being appended to). Loop thread. */
SL_NODISCARD int sl_spool_release(struct sl_spool *sp, uint64_t id);

/* Saves which records are released now (a snapshot taken here, written, synced and renamed on
 * the pool), so that a crash after it repeats only what is released after it. For the caller's
 * own cadence (a timer on its clock, or after each delivered buffer). Returns 0 and cb(arg,
 * status) runs later (status 0, or SL_EIO, logged); SL_EAGAIN while one is in flight,
 * SL_ECANCELED after close. cb may be NULL. Loop thread. */
typedef void (*sl_spool_saved_cb)(void *arg, int status);
SL_NODISCARD int sl_spool_save_released(struct sl_spool *sp, sl_spool_saved_cb cb, void *arg);

void sl_spool_stats(const struct sl_spool *sp, struct sl_spool_stats *ret_st);

/* Closes: appends already accepted still complete (their callbacks run first; an append from
 * one of them gets SL_ECANCELED), then the released state is saved (written, synced and renamed
 * on the loop thread: this one write blocks, at shutdown) and cb(arg) runs once everything is
 * freed. No other call after this. Loop thread. */
void sl_spool_close(struct sl_spool *sp, sl_spool_close_cb cb, void *arg);

#endif

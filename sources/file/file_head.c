/* SPDX-License-Identifier: Apache-2.0 */
/* file_head.c: what tells one content of a file from another: the fingerprint of its head, kept
 * in the checkpoint meta and compared on resume and on every change, and the generation that
 * names one content in its eventIDs; with the reads at an offset (pread) the rest of the source
 * uses. Kept apart because both the discovery (file_scan.c) and the poll (file_check.c) decide
 * with it whether a file is the one they knew. It owns no state of its own (the head bytes and
 * the generation live in struct file_part); it must not log (its callers do). Loop thread only.
 *
 * About identity: a partition is an inode, "<st_dev>:<st_ino>", so a renamed file keeps its
 * checkpoint and a rotated file is never read twice. An inode can be reused (a deleted file's
 * number given to a new one, while we hold no descriptor on it), so the checkpoint carries
 * a fingerprint of the file's head in part->meta: "head=<n>:<fnv1a64 hex>" over the first n =
 * min(size, 256) bytes when it was written. On resume the checkpoint is trusted only when the
 * file has at least n bytes whose hash matches and the offset is within the file; otherwise the
 * file is new (or was truncated and rewritten) and is read from 0. While running, the first n
 * bytes are compared on every poll that sees the size or mtime change, so a file truncated and
 * rewritten past our offset between two polls is also read again from 0. Limit: a new file
 * whose first 256 bytes equal the old one's cannot be told apart (timestamped log lines make
 * that unlikely); the fallback is always to re-read, never to skip.
 *
 * About event ids: a record's eventID is "<path>:<generation>:<offset>", its sequenceNumber the
 * offset alone (the checkpoint and the itemIdentifier). The generation names one content of
 * one file: a number (the wall clock in microseconds when the content was first seen) kept in
 * the checkpoint meta beside the fingerprint ("head=<n>:<hash> gen=<g>"). A file seen without
 * a usable checkpoint (new, rotated in, an inode reused, a fingerprint that does not match)
 * and a truncated or rewritten one get a new generation; a file resumed from its checkpoint
 * keeps the stored one, so a line delivered again after a crash keeps its eventID (the start
 * is recorded before anything of the file is invoked, see file_record_start in file_scan.c). Two
 * different lines at one offset of one path therefore never share an eventID. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_int.h"
#include "hash.h"

/* Reads up to FILE_HEAD_MAX bytes from offset 0 into out; returns the count or -errno. */
ssize_t file_pread_head(int fd, unsigned char *out, uint64_t size)
{
    size_t want = size < FILE_HEAD_MAX ? (size_t)size : FILE_HEAD_MAX;
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, out + got, want - got, (off_t)got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return -errno;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* pread that retries EINTR; returns bytes, 0 at end of file, or -errno. */
ssize_t file_pread(int fd, char *p, size_t n, uint64_t off)
{
    for (;;) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r >= 0) {
            return r;
        }
        if (errno != EINTR) {
            return -errno;
        }
    }
}

int file_set_meta(struct file_part *fp)
{
    char meta[96];
    (void)snprintf(meta, sizeof(meta), "head=%zu:%016" PRIx64 " gen=%" PRIu64, fp->head_n,
                   sl_hash_fnv1a(fp->head, fp->head_n, SL_HASH_FNV1A_BASIS), fp->gen);
    return sl_part_set_meta(fp->part, meta);
}

/* A new content generation: the wall clock in microseconds, above every one given out before
 * by this source, so two contents of one path never share one. */
uint64_t file_new_gen(struct file_ctx *ctx)
{
    int64_t wall_ms = sl_clock_wall_ms(ctx->env.clock);
    uint64_t g = wall_ms > 0 ? (uint64_t)wall_ms * 1000u : 1;
    if (g <= ctx->last_content_gen) {
        g = ctx->last_content_gen + 1;
    }
    ctx->last_content_gen = g;
    return g;
}

/* Is the stored fingerprint meta ("head=<n>:<hash>[ gen=<g>]") that of this file? Unparsable
 * meta counts as a mismatch: the safe side is to read again. On a match, *ret_gen is the
 * stored generation, or 0 when the meta has none (written before generations existed). */
bool file_meta_matches(const struct file_part *fp, const char *meta, uint64_t *ret_gen)
{
    *ret_gen = 0;
    if (strncmp(meta, "head=", 5) != 0) {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long n = strtoull(meta + 5, &end, 10);
    if (errno || end == meta + 5 || *end != ':' || n > FILE_HEAD_MAX) {
        return false;
    }
    const char *hex = end + 1;
    uint64_t want = strtoull(hex, &end, 16);
    if (errno || end == hex || (*end != '\0' && *end != ' ')) {
        return false;
    }
    uint64_t gen = 0;
    if (*end == ' ') {
        if (strncmp(end, " gen=", 5) != 0 || end[5] < '0' || end[5] > '9') {
            return false;
        }
        const char *g = end + 5;
        gen = strtoull(g, &end, 10);
        if (errno || *end != '\0') {
            return false;
        }
    }
    if (n > fp->head_n) {
        return false; /* the file is shorter than the head we saw: not the same content */
    }
    if (sl_hash_fnv1a(fp->head, (size_t)n, SL_HASH_FNV1A_BASIS) != want) {
        return false;
    }
    *ret_gen = gen;
    return true;
}

/* Compares the head we know with the file's; extends it while the file is under
 * FILE_HEAD_MAX bytes. Returns true if the known bytes changed (the file was rewritten). */
bool file_head_changed(struct file_part *fp, uint64_t size)
{
    unsigned char now[FILE_HEAD_MAX];
    ssize_t hn = file_pread_head(fp->fd, now, size);
    if (hn < 0) {
        return false;
    }
    if ((size_t)hn < fp->head_n || memcmp(now, fp->head, fp->head_n) != 0) {
        return true;
    }
    if ((size_t)hn > fp->head_n) {
        memcpy(fp->head, now, (size_t)hn);
        fp->head_n = (size_t)hn;
        (void)file_set_meta(fp);
    }
    return false;
}

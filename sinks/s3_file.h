/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_S3_FILE_H
#define SL_S3_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include <uv.h>

#include "err.h"
#include "s3_object.h"

/* A `file:///dir` delivery stream destination, beyond Firehose: the objects Firehose would put
 * in a bucket, written as files under dir, the key's slashes as subdirectories
 * (dir/2024/05/01/13/clicks-1-2024-05-01-13-07-42-<uuid>.gz).
 *
 * A reader never sees half an object: each object is written under a temporary name in its
 * final directory (".<name>.tmp-<random>", hidden from `ls` and from globs), fsynced, renamed to
 * its key, and the directory fsynced (and the parent of every directory created on the way), so
 * after the callback reports 0 the object is whole and durable, and before it the key does not
 * exist. A failure removes the temporary file. The work runs on libuv's thread pool
 * (uv_queue_work), so the loop never waits for the disk; a GZIP object of records is compressed
 * there in parallel blocks (s3_object.h's sl_s3_gz), written to the temporary file in order as
 * they come, so memory holds a few blocks of output, never a compressed copy of the object.
 *
 * Usage: sl_s3_file_new once per destination (config time: sl_s3_file_check for the shape);
 * sl_s3_file_put per object with the key (sl_s3_layout_key_of) and the records; the callback
 * says 0 (durable) or SL_EIO with a detail naming the file and the failing step (ENOSPC,
 * EACCES, ...): the caller keeps the records and retries. Loop thread, except the hook. */

struct sl_s3_file;

/* Called on the loop thread once per put: err 0 or SL_EIO / SL_EINVAL (a key that is not a
 * relative path: empty, starting with '/', or with a "." or ".." segment) / SL_ECANCELED
 * (sl_s3_file_stop before the work started); detail (borrowed for the call) names the file and
 * the step, or is NULL. */
typedef void (*sl_s3_file_cb)(void *arg, int err, const char *detail);

/* Checks destination is "file:///absolute/dir" (no host, query or fragment). Returns 0 or
 * SL_ECONFIG with what is allowed in errbuf. No I/O. */
SL_NODISCARD int sl_s3_file_check(const char *destination, char *errbuf, size_t errlen);

/* Returns 0 and *ret_f (owned; sl_s3_file_free), SL_ECONFIG (errbuf) or SL_ENOMEM. The
 * directory is created on the first put, not here. loop is borrowed. */
SL_NODISCARD int sl_s3_file_new(uv_loop_t *loop,
                                const char *destination,
                                struct sl_s3_file **ret_f,
                                char *errbuf,
                                size_t errlen);

/* Starts writing one object: key (copied) under the directory, its body the records (borrowed
 * until the callback: iov and the bytes it points at) concatenated, compressed per comp. Returns
 * 0 and calls cb exactly once, later; or SL_ENOMEM and never calls it. */
SL_NODISCARD int sl_s3_file_put(struct sl_s3_file *f,
                                const char *key,
                                const struct iovec *recs,
                                size_t n,
                                enum sl_s3_compression comp,
                                sl_s3_file_cb cb,
                                void *arg);

/* The same for a backup object: n failed records (errs and everything they point at borrowed
 * until the callback), written as Firehose's error record JSON lines (sl_s3_object_error_line),
 * one record's line in memory at a time. */
SL_NODISCARD int sl_s3_file_put_errors(struct sl_s3_file *f,
                                       const char *key,
                                       const struct sl_s3_error_rec *errs,
                                       size_t n,
                                       enum sl_s3_compression comp,
                                       sl_s3_file_cb cb,
                                       void *arg);

/* Puts not yet started call back with SL_ECANCELED; those running finish. */
void sl_s3_file_stop(struct sl_s3_file *f);

/* Puts in flight (not yet called back). */
size_t sl_s3_file_inflight(const struct sl_s3_file *f);

/* Frees f. Nothing may be in flight (free from the last callback, or after the loop drained). */
void sl_s3_file_free(struct sl_s3_file *f);

/* Tests only: called on the pool thread with the temporary and the final path once the body
 * is written and fsynced, just before the rename. */
typedef void (*sl_s3_file_hook)(void *arg, const char *tmp_path, const char *final_path);
void sl_s3_file_set_hook(struct sl_s3_file *f, sl_s3_file_hook hook, void *arg);

#endif

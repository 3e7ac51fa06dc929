/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_file.h: the checkpoint store's file I/O (ckpt_file.c), for checkpoint.c only. */
#ifndef SL_CKPT_FILE_H
#define SL_CKPT_FILE_H

#include <stddef.h>

#include "buf.h"
#include "checkpoint.h"

/* The outcome of one write. */
struct ckpt_file_result {
    const char *step; /* static: "open", "write", ... ; NULL on success */
    int sys_errno;
};

/* The system's calls. */
extern const struct sl_ckpt_fileops ckpt_file_sys_ops;

/* Writes data to tmp, fsyncs, renames over path, fsyncs dir, through fops. Any thread: reads
 * only its arguments. On failure the temp file is removed (best effort) and path is
 * untouched. */
struct ckpt_file_result ckpt_file_write(const struct sl_ckpt_fileops *fops,
                                        const char *dir,
                                        const char *path,
                                        const char *tmp,
                                        const char *data,
                                        size_t len);

/* mkdir -p dir (0700 for what it creates). Returns 0, SL_EIO (errbuf filled) or SL_ENOMEM. */
SL_NODISCARD int ckpt_file_mkdirs(const char *dir, char *errbuf, size_t errlen);

/* Creates and removes tmp in dir, as every write does. Returns 0 or SL_EIO (errbuf filled). */
SL_NODISCARD int ckpt_file_probe(const char *dir, const char *tmp, char *errbuf, size_t errlen);

/* Reads the whole file at path into b. Returns 0, SL_ENOTFOUND (no file), SL_EIO (errbuf
 * filled) or SL_ENOMEM. */
SL_NODISCARD int ckpt_file_read(const char *path, struct sl_buf *b, char *errbuf, size_t errlen);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_FILE_H
#define SL_STREAM_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct sl_stream_conf;

/* Object naming and writing of a delivery stream, the two steps a richer S3 layout (key
 * expressions, GZIP, the S3 API) replaces. */

/* Appends the object key of records whose oldest arrived at wall_ms (Unix ms) to key:
 * Prefix + YYYY/MM/dd/HH/ (UTC) + <stream>-1-YYYY-MM-dd-HH-mm-ss-<uuid v4> (wire.md §4.5).
 * Returns 0 or SL_ENOMEM. Any thread. */
SL_NODISCARD int
sl_stream_file_key(const struct sl_stream_conf *sc, int64_t wall_ms, struct sl_buf *key);

/* Writes data[0..len) as the file dir/key: a temporary name beside it first, fsynced, then
 * renamed, so a reader never sees half an object; directories are made as needed. Returns 0
 * or SL_EIO with why in errbuf. Blocks: runs on the thread pool. */
SL_NODISCARD int sl_stream_file_write(
    const char *dir, const char *key, const char *data, size_t len, char *errbuf, size_t errlen);

#endif

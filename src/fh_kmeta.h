/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_KMETA_H
#define SL_FH_KMETA_H

#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "fh_transform.h"

/* A Kinesis source's record metadata (struct sl_fh_kinesis_meta: what a transform's
 * kinesisRecordMetadata says) as a delivery stream's spool keeps it beside each record
 * (struct sl_spool_in.meta; read back as struct sl_spool_rec.meta). A versioned, self-checking
 * encoding: a reader of a record without it (meta_len 0, a direct put) gets SL_ENOTFOUND. Any
 * thread; pure. */

/* Longest partition key, sequence number and shard id kept (Kinesis: 256 characters of UTF-8,
 * 128 digits, 128 characters). */
#define SL_FH_KMETA_STR_MAX 1024u

/* Appends m's encoding to out. Returns 0, SL_EINVAL (a string over SL_FH_KMETA_STR_MAX) or
 * SL_ENOMEM. */
SL_NODISCARD int sl_fh_kmeta_encode(struct sl_buf *out, const struct sl_fh_kinesis_meta *m);

/* Reads meta (len bytes, as sl_fh_kmeta_encode wrote them) into *ret, whose strings point into
 * meta (borrowed: valid as long as meta is). Returns 0, SL_ENOTFOUND (len 0: the record has no
 * metadata) or SL_EINVAL (not this encoding). */
SL_NODISCARD int sl_fh_kmeta_decode(const void *meta, size_t len, struct sl_fh_kinesis_meta *ret);

#endif

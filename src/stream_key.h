/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_KEY_H
#define SL_STREAM_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "stream_part.h"
#include "strmap.h"

struct sl_fh_query;
struct sl_s3_layout;

/* The destination partition of a record under dynamic partitioning: its partitionKeyFromQuery
 * values (the MetadataExtraction query on its bytes, transformed or not), its
 * partitionKeyFromLambda values (the function's metadata.partitionKeys), and the partition
 * string the Prefix's keys make of them (s3_keys.h). A record whose keys cannot be had (not
 * JSON, a key missing) gets instead its error record (errorCode
 * DynamicPartitioning.MetadataExtractionFailed, rawData its bytes) for the error partition,
 * partitioning-failed. Any thread, one at a time; nothing logs. */
struct sl_stream_key {
    const struct sl_fh_query *query;   /* borrowed; NULL: no MetadataExtraction processor */
    const struct sl_s3_layout *layout; /* borrowed: the destination's Prefix */
    struct sl_strmap keys;             /* scratch: the query's values of the last record */
    struct sl_buf part;                /* scratch: the partition string of the last record */
    struct sl_buf line;                /* scratch: the error record of the last record */
};

void sl_stream_key_init(struct sl_stream_key *k,
                        const struct sl_fh_query *query,
                        const struct sl_s3_layout *layout);
void sl_stream_key_fini(struct sl_stream_key *k);

/* Keys data[0..len) (arrived at arrival_ms; lambda: the function's keys or NULL). Returns 0 with
 * *ret_key its partition; 1 with *ret_key the partitioning-failed partition and *ret_line,
 * *ret_len its error record (attemptEndingTimestamp now_ms) in place of the record; or
 * SL_ENOMEM. What ret_* point to is k's, valid until the next call. */
SL_NODISCARD int sl_stream_key_of(struct sl_stream_key *k,
                                  const void *data,
                                  size_t len,
                                  int64_t arrival_ms,
                                  int64_t now_ms,
                                  const struct sl_strmap *lambda,
                                  struct sl_stream_part_key *ret_key,
                                  const void **ret_line,
                                  size_t *ret_len);

#endif

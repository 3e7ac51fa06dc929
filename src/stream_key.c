/* SPDX-License-Identifier: Apache-2.0 */
/* stream_key.c: which destination partition a delivery stream's record joins under dynamic
 * partitioning (stream_key.h), or, when its keys cannot be had, the error record Firehose
 * writes for it under ErrorOutputPrefix (partitioning-failed). It owns the per-record scratch
 * and the error record's fields; the query is fh_query.c's, the partition string s3_keys.c's,
 * the buffering stream_part.c's. Nothing logs. */
#include "stream_key.h"

#include <stdio.h>

#include "fh_partition.h"
#include "s3_keys.h"
#include "s3_object.h"

void sl_stream_key_init(struct sl_stream_key *k,
                        const struct sl_fh_query *query,
                        const struct sl_s3_layout *layout)
{
    *k = (struct sl_stream_key){.query = query, .layout = layout};
    sl_buf_init(&k->part);
    sl_buf_init(&k->line);
}

void sl_stream_key_fini(struct sl_stream_key *k)
{
    sl_strmap_clear(&k->keys, false);
    sl_buf_fini(&k->part);
    sl_buf_fini(&k->line);
}

int sl_stream_key_of(struct sl_stream_key *k,
                     const void *data,
                     size_t len,
                     int64_t arrival_ms,
                     int64_t now_ms,
                     const struct sl_strmap *lambda,
                     struct sl_stream_part_key *ret_key,
                     const void **ret_line,
                     size_t *ret_len)
{
    char err[256] = "";
    sl_strmap_clear(&k->keys, false);
    sl_buf_truncate(&k->part, 0);
    int r = k->query ? sl_fh_query_extract(k->query, data, len, &k->keys, err, sizeof(err)) : 0;
    struct sl_s3_vars vars = {.query = &k->keys, .lambda = lambda};
    if (r == 0) {
        r = sl_s3_layout_partition(k->layout, &vars, &k->part, err, sizeof(err));
    }
    if (r == SL_ENOMEM) {
        return r;
    }
    if (r == 0) {
        *ret_key = (struct sl_stream_part_key){k->part.data ? k->part.data : "", k->part.len,
                                               &k->keys, lambda, NULL};
        return 0;
    }
    if (r == SL_EINVAL) {
        (void)snprintf(err, sizeof(err), "Non JSON record provided");
    }
    struct sl_s3_error_rec e = {
        .attempts_made = 1,
        .arrival_ms = arrival_ms,
        .error_code = SL_FH_PARTITION_ERR_CODE,
        .error_message = err,
        .attempt_ending_ms = now_ms,
        .raw = data,
        .raw_len = len,
    };
    sl_buf_truncate(&k->line, 0);
    if (sl_s3_object_error_line(&k->line, &e) < 0) {
        return SL_ENOMEM;
    }
    *ret_key = (struct sl_stream_part_key){.id = "", .error_type = SL_S3_PARTITIONING_FAILED};
    *ret_line = k->line.data;
    *ret_len = k->line.len;
    return 1;
}

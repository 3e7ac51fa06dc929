/* SPDX-License-Identifier: Apache-2.0 */
/* fh_kmeta.c: a Kinesis source's record metadata (shardId, partitionKey, sequenceNumber,
 * subsequenceNumber, approximateArrivalTimestamp) as bytes a delivery stream's spool keeps with
 * each record read from the Kinesis stream, so that a transform after a restart still has it.
 * Layout, little-endian: 'K', version 1, shard id length u16, partition key length u16,
 * sequence number length u16, subsequence number u64, arrival ms i64, then the three strings,
 * each followed by a NUL (so the decoded strings point into the bytes). Pure; any thread. */
#include "fh_kmeta.h"

#include <string.h>

#define KMETA_MAGIC   'K'
#define KMETA_VERSION 1
#define KMETA_HDR     24

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

int sl_fh_kmeta_encode(struct sl_buf *out, const struct sl_fh_kinesis_meta *m)
{
    const char *s[3] = {m->shard_id ? m->shard_id : "", m->partition_key ? m->partition_key : "",
                        m->sequence_number ? m->sequence_number : ""};
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        len[i] = strlen(s[i]);
        if (len[i] > SL_FH_KMETA_STR_MAX) {
            return SL_EINVAL;
        }
    }
    unsigned char hdr[KMETA_HDR] = {KMETA_MAGIC, KMETA_VERSION};
    put_le(hdr + 2, len[0], 2);
    put_le(hdr + 4, len[1], 2);
    put_le(hdr + 6, len[2], 2);
    put_le(hdr + 8, m->subsequence_number, 8);
    put_le(hdr + 16, (uint64_t)m->arrival_ms, 8);
    struct sl_buf *b = out;
    if (sl_buf_append(b, hdr, sizeof(hdr)) < 0) {
        return SL_ENOMEM;
    }
    for (int i = 0; i < 3; i++) {
        if (sl_buf_append(b, s[i], len[i] + 1) < 0) { /* with its NUL */
            return SL_ENOMEM;
        }
    }
    return 0;
}

int sl_fh_kmeta_decode(const void *meta, size_t len, struct sl_fh_kinesis_meta *ret)
{
    const unsigned char *p = meta;
    if (len == 0) {
        return SL_ENOTFOUND;
    }
    if (len < KMETA_HDR || p[0] != KMETA_MAGIC || p[1] != KMETA_VERSION) {
        return SL_EINVAL;
    }
    size_t n[3] = {(size_t)get_le(p + 2, 2), (size_t)get_le(p + 4, 2), (size_t)get_le(p + 6, 2)};
    if (len != KMETA_HDR + n[0] + n[1] + n[2] + 3) {
        return SL_EINVAL;
    }
    const char *s[3];
    size_t off = KMETA_HDR;
    for (int i = 0; i < 3; i++) {
        s[i] = (const char *)p + off;
        if (p[off + n[i]] != '\0' || memchr(s[i], '\0', n[i])) {
            return SL_EINVAL;
        }
        off += n[i] + 1;
    }
    *ret = (struct sl_fh_kinesis_meta){
        .shard_id = s[0],
        .partition_key = s[1],
        .sequence_number = s[2],
        .subsequence_number = get_le(p + 8, 8),
        .arrival_ms = (int64_t)get_le(p + 16, 8),
    };
    return 0;
}

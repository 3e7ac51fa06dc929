/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KINESIS_KPL_H
#define SL_KINESIS_KPL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* KPL aggregated records (wire.md §5): one Kinesis record whose data is the magic F3 89 9A C2,
 * a protobuf AggregatedRecord and the MD5 of the protobuf bytes, holding many user records.
 * Pure; any thread. */

#define KINESIS_KPL_MAGIC_LEN 4
#define KINESIS_KPL_MD5_LEN   16
/* digits of the largest hash key, 2^128 - 1, plus the NUL */
#define KINESIS_HASH_KEY_TEXT_MAX 40

enum kinesis_kpl_kind {
    KINESIS_KPL_PLAIN = 0,     /* no magic (or too short for one): an ordinary record */
    KINESIS_KPL_AGGREGATE = 1, /* the user records are in the result */
    KINESIS_KPL_MALFORMED = 2, /* magic present, but the checksum or the protobuf is wrong */
};

/* One user record. Every pointer borrows from the aggregate's bytes. */
struct kinesis_kpl_record {
    const char *partition_key;
    size_t partition_key_len;
    const char *explicit_hash_key; /* NULL when the record names none */
    size_t explicit_hash_key_len;
    const unsigned char *data;
    size_t len;
};

/* The user records of an aggregate: record i has sub-sequence number i. */
struct kinesis_kpl_agg {
    struct kinesis_kpl_record *records; /* owned: kinesis_kpl_agg_fini */
    size_t n;
};

/* Reads data[0..len) (a record's Data, base64-decoded). Returns KINESIS_KPL_AGGREGATE with
 * *ret filled (at least one record; free with kinesis_kpl_agg_fini), KINESIS_KPL_PLAIN or
 * KINESIS_KPL_MALFORMED with *ret empty (errbuf naming what is wrong for MALFORMED: the record
 * is then delivered as stored, as Lambda delivers every record), or SL_ENOMEM. An aggregate of
 * no user records counts as malformed, so that it is never dropped. Unknown protobuf fields
 * are skipped by wire type; tags are skipped. */
SL_NODISCARD int kinesis_kpl_parse(const unsigned char *data,
                                   size_t len,
                                   struct kinesis_kpl_agg *ret,
                                   char *errbuf,
                                   size_t errlen);

void kinesis_kpl_agg_fini(struct kinesis_kpl_agg *agg);

/* Writes the hash key of a partition key (MD5 of its bytes as a 128-bit big-endian unsigned
 * integer, in decimal, NUL-terminated) into out; the shard whose HashKeyRange holds it owns
 * the record. Compare hash keys with kinesis_seq_compare. */
void kinesis_kpl_hash_key(const char *partition_key, size_t n, char out[KINESIS_HASH_KEY_TEXT_MAX]);

#endif

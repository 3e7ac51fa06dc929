/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_PART_H
#define SL_STREAM_PART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "stream_dest.h"
#include "strmap.h"

/* A delivery stream's buffers, one per destination partition (Firehose applies SizeInMBs and
 * IntervalInSeconds to each partition apart): records join the partition of their key, a
 * partition is sealed into an object when it holds SizeInMBs or its oldest record is
 * IntervalInSeconds old, and the sealed object goes to the caller's emit function. Without
 * dynamic partitioning there is one partition (key ""); error records (processing-failed,
 * partitioning-failed) have partitions of their own, keyed by their error type.
 *
 * At most max_parts partitions are open at once (Firehose's limit is 500 active partitions):
 * a record of a new partition past it seals the partition holding the oldest record first, so
 * that record's object is delivered early; nothing is dropped or sent to the error prefix for
 * it (Firehose writes such records under the error prefix, activePartitionExceeded).
 *
 * No loop, no clock: the caller passes the time and arms its own timer at
 * sl_stream_parts_next_due. Any thread, one at a time; nothing logs. */

/* One object: filled as a partition, then sealed and handed over (owned by the receiver). */
struct sl_stream_obj {
    struct sl_stream_obj *next;      /* the receiver's, e.g. its queue of sealed objects */
    struct sl_buf data;              /* the records' bytes, one after the other */
    struct sl_stream_dest_rec *recs; /* sealed: each record's bytes inside data */
    uint64_t *ids;                   /* each record's caller id (a spool id) */
    size_t n_records;
    size_t recs_cap;
    int64_t oldest_ms;      /* arrival of the oldest record (epoch ms) */
    struct sl_strmap query; /* partitionKeyFromQuery values of the partition */
    struct sl_strmap lambda;
    const char *error_type; /* NULL: under Prefix; else ErrorOutputPrefix with this type */
    char *key;              /* the partition's identity */
    size_t key_len;
    uint64_t hash;
};

void sl_stream_obj_free(struct sl_stream_obj *o);

/* The partition a record joins. Strings and maps borrowed for the call (copied into a new
 * partition). */
struct sl_stream_part_key {
    const char *id; /* sl_s3_layout_partition's string; "" without dynamic partitioning */
    size_t id_len;
    const struct sl_strmap *query;  /* NULL: none */
    const struct sl_strmap *lambda; /* NULL: none */
    const char *error_type;         /* static string: SL_S3_*_FAILED, or NULL */
};

struct sl_stream_parts_conf {
    int64_t size_bytes;   /* SizeInMBs in bytes: a partition is sealed once it holds this */
    int64_t interval_ms;  /* IntervalInSeconds in ms, from the partition's oldest arrival */
    size_t max_parts;     /* open partitions at most (>= 1) */
    size_t reserve_bytes; /* reserved at once for a new partition's bytes (0: grown) */
};

/* Receives a sealed object (owned). */
typedef void (*sl_stream_parts_emit_fn)(void *arg, struct sl_stream_obj *o);

struct sl_stream_parts;

/* Returns 0 and *ret_p (owned: sl_stream_parts_free), or SL_ENOMEM. conf is copied. */
SL_NODISCARD int sl_stream_parts_new(const struct sl_stream_parts_conf *conf,
                                     struct sl_stream_parts **ret_p);
/* Frees p and the partitions still open (their records not delivered). NULL: no-op. */
void sl_stream_parts_free(struct sl_stream_parts *p);

/* Adds one record: data[0..len) then delim[0..delim_len) (AppendDelimiterToRecord; NULL/0:
 * none), arrived at arrival_ms, with the caller's id, to the partition of key (opened if
 * needed, sealing the oldest one when max_parts are open). emit runs, before this returns, for
 * each partition sealed (that one at SizeInMBs, the oldest one past max_parts). Returns 0 or
 * SL_ENOMEM (nothing added; objects sealed before the failure were emitted). */
SL_NODISCARD int sl_stream_parts_add(struct sl_stream_parts *p,
                                     const struct sl_stream_part_key *key,
                                     const void *data,
                                     size_t len,
                                     const void *delim,
                                     size_t delim_len,
                                     int64_t arrival_ms,
                                     uint64_t id,
                                     sl_stream_parts_emit_fn emit,
                                     void *arg);

/* Seals (emit) every partition whose oldest record arrived at least interval_ms before now_ms;
 * INT64_MAX: every partition (drain, IntervalInSeconds 0, the quota). */
void sl_stream_parts_seal_due(struct sl_stream_parts *p,
                              int64_t now_ms,
                              sl_stream_parts_emit_fn emit,
                              void *arg);

/* When the next partition falls due (epoch ms), or INT64_MAX when none is open. */
int64_t sl_stream_parts_next_due(const struct sl_stream_parts *p);
/* The oldest arrival of the records held (epoch ms), or -1 when none. */
int64_t sl_stream_parts_oldest(const struct sl_stream_parts *p);
/* Bytes and records held in open partitions, and how many are open. */
size_t sl_stream_parts_bytes(const struct sl_stream_parts *p);
size_t sl_stream_parts_records(const struct sl_stream_parts *p);
size_t sl_stream_parts_count(const struct sl_stream_parts *p);

#endif

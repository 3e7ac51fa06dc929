/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_KINESIS_PEER_H
#define SL_TEST_KINESIS_PEER_H

/* A scripted Kinesis server for the Kinesis source's unit tests (kinesis_peer.c), on the
 * loopback HTTP peer (http_peer.h): streams of shards holding records, answering ListShards
 * (pages of page_size shards with NextToken), GetShardIterator (all five types), GetRecords
 * (Limit, NextShardIterator absent and ChildShards at a closed shard's end, MillisBehindLatest)
 * as AWS does, and
 * errors scripted per operation (a status and a __type for the next n calls). Iterators are
 * "<shard>/<index>" (stale ones are answered as AWS answers them only when scripted). Every
 * function locks the peer: it runs on the server's thread. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "http_peer.h"

#define KPEER_SHARDS_MAX  8
#define KPEER_RECORDS_MAX 256

struct kpeer_shard {
    char id[32];
    char parent[32];
    char adjacent[32];
    bool closed;
    bool unlisted; /* ListShards leaves it out (a child AWS has not listed yet) */
    bool gone;     /* deleted or expired: left out, and GetShardIterator answers not found */
    char hash_lo[48], hash_hi[48]; /* HashKeyRange; default all of it */
    size_t n;
    char *data[KPEER_RECORDS_MAX]; /* owned */
    size_t len[KPEER_RECORDS_MAX];
    bool stored_b64[KPEER_RECORDS_MAX]; /* data is the Data text itself, sent as it is */
    char key[KPEER_RECORDS_MAX][16];
};

struct kpeer_fail {
    char target[32]; /* "GetRecords" */
    int status;
    char type[64];
    int left;
};

struct kpeer {
    struct http_peer http;
    pthread_mutex_t mu;
    char stream[64];
    bool missing; /* the stream does not exist: ResourceNotFoundException */
    struct kpeer_shard shards[KPEER_SHARDS_MAX];
    size_t n_shards;
    size_t page_size; /* ListShards page; 0: all at once */
    struct kpeer_fail fail[4];
    /* what was asked, for the tests */
    unsigned calls_list, calls_iter, calls_records;
    char last_iter_type[32];
    char last_iter_seq[64];
    int last_limit;
    char endpoint[64];
};

/* Starts p serving stream with one open shard per id of shard_ids (NULL-terminated). */
void kpeer_start(struct kpeer *p, const char *stream, const char *const *shard_ids);
void kpeer_stop(struct kpeer *p);
/* Adds a shard (parents may be "" or NULL). */
void kpeer_add_shard(struct kpeer *p, const char *id, const char *parent, const char *adjacent);
/* Appends a record to shard i. */
void kpeer_put(struct kpeer *p, size_t shard, const char *key, const char *data);
/* Appends a record of len bytes (binary) to shard i. */
void kpeer_put_bin(struct kpeer *p, size_t shard, const char *key, const void *data, size_t len);
/* Appends a record whose Data is text exactly as given (base64 the peer does not make, such
 * as a form a decoder accepts but an encoder never writes). */
void kpeer_put_stored(struct kpeer *p, size_t shard, const char *key, const char *text);
/* Sets the HashKeyRange of shard i. */
void kpeer_set_range(struct kpeer *p, size_t shard, const char *lo, const char *hi);
/* Sets shard i's unlisted or gone flag (see struct kpeer_shard). */
void kpeer_set_flags(struct kpeer *p, size_t shard, bool unlisted, bool gone);
/* Closes shard i: it takes no more records; its end is NextShardIterator absent. */
void kpeer_close(struct kpeer *p, size_t shard);
/* The next n calls of target fail with status and __type type. */
void kpeer_fail(struct kpeer *p, const char *target, int status, const char *type, int n);
/* The sequence number of record idx of shard i (56 digits), into buf (room for 64). */
void kpeer_seq(size_t shard, size_t idx, char *buf);
/* A copy of a counter, under the lock. */
unsigned kpeer_count(struct kpeer *p, const unsigned *counter);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KAFKA_INT_H
#define SL_KAFKA_INT_H

/* The Kafka source's state, shared by its modules (the .c files beside this header) and by
 * nothing else: the core sees only sl_source_kafka. Each group of functions below is defined by
 * the module named above it. The modules are layered and call only downwards, never back up
 * (what a lower one must tell a higher one goes through librdkafka's callbacks, which kafka.c
 * installs, or the mapping's callbacks in env):
 *   kafka.c (the adapter: life cycle, the loop bridge, lag and settling)
 *   kafka_rebalance.c
 *   kafka_check.c, kafka_commit.c, kafka_fetch.c, kafka_event.c
 *   kafka_conf.c, kafka_log.c, kafka_part.c, kafka_record.c
 * Each "About ..." paragraph is in the file it concerns. Loop thread only, except where
 * kafka_rebalance.c says (the lookup's worker) and kafka_log_cb (kafka.c). */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "alloc.h"
#include "batcher.h"
#include "config.h"
#include "encoder.h"
#include "kafka_wake.h"
#include "log.h"
#include "source.h"

#define KAFKA_COMP                 "kafka"
#define KAFKA_SCHEME               "kafka://"
#define KAFKA_SCHEME_LEN           8
#define KAFKA_MSK_PREFIX           "arn:aws:kafka:"
#define KAFKA_TICK_MS              50
#define KAFKA_KICK_MS              50    /* a partition queue empty this long may be stalled */
#define KAFKA_SLICE_MS             100   /* a fetching partition found empty this long yields */
#define KAFKA_MSG_OVERHEAD         300   /* librdkafka's bytes per queued message beyond its own */
#define KAFKA_POLL_CAP             5000  /* consumer queue events per loop turn */
#define KAFKA_CHUNK                256   /* messages taken from a partition queue at once */
#define KAFKA_SETTLE_MS            30000 /* settling ends at the first assignment or after this */
#define KAFKA_COMMIT_RETRY_MS      1000
#define KAFKA_BLOCK_TIMEOUT_MS     10000 /* committed offsets, offsets_for_times, commit on revoke */
#define KAFKA_CLOSE_TIMEOUT_MS     10000 /* final commit + leaving the group */
#define KAFKA_LOG_EVERY_MS         10000 /* the same librdkafka error is logged at most this often */
#define KAFKA_SECFAIL_LOG_EVERY_MS 60000 /* the same kind of authentication/TLS/ACL failure */
#define KAFKA_TOPICS_MAX           64
#define KAFKA_SERVERS_MAX          100
#define KAFKA_SAC_MAX              22

/* Record meta: [flags u8][tstype u8][timestamp i64][key_len u32][key][n_headers u32]
 * then per header [name_len u32][name][value_len u32 or KAFKA_M_NULLHDR][value]. */
#define KAFKA_REVOKE_KEY UINT32_MAX /* the revoke queue's key on the pipe; never a partition's */

#define KAFKA_M_KEY     0x1u /* the key is not null */
#define KAFKA_M_NULLVAL 0x2u /* the value is null (a tombstone) */
#define KAFKA_M_NULLHDR UINT32_MAX
#define KAFKA_M_FIXED   (1 + 1 + 8 + 4)

struct kafka_ctx;

/* The source's state of one topic-partition (part->src). */
struct kafka_part {
    struct kafka_ctx *ctx;
    struct sl_part *part;
    char *topic;
    int32_t partition;
    bool revoked;
    bool waiting;       /* the last fetch returned 0: part_wake is owed */
    int64_t waiting_ms; /* since when (monotonic), or since the last kick */
    int64_t slot_ms;    /* when it last got a fetch slot, or was paused (see "About memory") */
    bool maybe_stalled; /* the queue last seen held enough to stop librdkafka's fetching */
    bool paused;        /* librdkafka does not fetch it: it waits for a slot (see "About memory") */
    uint32_t key;       /* written to the pipe when q becomes non-empty; never 0 */
    rd_kafka_queue_t *q; /* the partition's own queue, or NULL (see "About fetching") */
    /* the stash: messages taken from q (or the consumer queue) not yet fetched, a ring */
    rd_kafka_message_t **stage;
    size_t st_head, st_n, st_cap;
    int64_t acked;       /* next offset to commit (last acknowledged + 1), or -1 */
    int64_t committed;   /* known committed offset, or -1 */
    int64_t start;       /* where reading started (committed, resolved or logical), or -1 */
    int64_t start_by_ms; /* the resolved start's commit is awaited (settling) until then, or 0 */
    int64_t expect;      /* the offset expected next, for gap detection, or -1 */
    int64_t first;       /* the offset of the first message received, or -1 */
    int64_t assigned_ms; /* when it was assigned (monotonic) */
    bool answered;       /* a fetch answer from the broker gave its high watermark */
    bool dirty;          /* acked moved past what was committed or is being committed */
    char *open;          /* {"eventSource":...,"records":{"<topic>-<p>":[ */
    char *rec_head;      /* {"topic":"<topic>","partition":<p>,"offset": */
    size_t open_len, rec_head_len;
};

/* A revoke whose commit is in flight: the partitions are revoked from the mapping, not yet given
 * up to librdkafka (see "About rebalances"). offsets is NULL when none is. */
struct kafka_revoking {
    rd_kafka_topic_partition_list_t *offsets; /* the acknowledged offsets being committed */
    int64_t *committed; /* per element of offsets: the committed offset known before, or -1 */
    uint64_t seq;       /* the commit's opaque, which tells a late answer to an older one apart */
    int64_t started_ms, deadline_ms;
};

/* A rebalance delivered while a commit on revoke was in flight, handled after it (in order). */
struct kafka_deferred {
    struct kafka_deferred *next;
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *parts; /* a copy */
};

struct kafka_ctx {
    /* options (kafka_opts) */
    struct sl_strlist topics;
    cJSON *self_managed;         /* SelfManagedEventSource */
    cJSON *smk_config;           /* SelfManagedKafkaEventSourceConfig */
    cJSON *msk_config;           /* AmazonManagedKafkaEventSourceConfig */
    cJSON *sac;                  /* SourceAccessConfigurations */
    struct sl_strlist bootstrap; /* bootstrap_servers (MSK) */
    struct sl_strmap rdkafka;

    struct sl_source_env env;
    bool msk;
    char *servers; /* "h1:p,h2:p" */
    char *group_id;
    rd_kafka_conf_t *conf; /* built by init, consumed by start */
    rd_kafka_t *rk;
    rd_kafka_queue_t *cq; /* the consumer queue */
    rd_kafka_queue_t *rq; /* the results of commits on revoke (see "About rebalances") */
    struct sl_kafka_wake *io;
    uv_timer_t *timer;
    uv_idle_t *more;
    bool stopped;
    bool commit_inflight;
    bool assigned_once; /* the first assignment arrived (settling ends) */
    int64_t started_ms; /* when start() ran, or 0 */
    uint32_t next_key;  /* the last partition key handed out */
    int64_t commit_retry_at_ms;
    struct kafka_part **parts;
    size_t n_parts, cap_parts;
    struct kafka_part *last_hit;
    struct kafka_lookup *lookups; /* start-offset lookups in flight (newest first) */
    uint64_t assign_gen;          /* bumped by every assignment and revoke */
    /* offsets acknowledged for partitions released after stop(), committed in fini */
    rd_kafka_topic_partition_list_t *final;
    /* acknowledged offsets of revoked partitions whose commit failed (see "About rebalances") */
    rd_kafka_topic_partition_list_t *leftover;
    struct kafka_revoking revoking;  /* the commit on revoke in flight, if any */
    uint64_t revoke_seq;             /* the last commit on revoke sent */
    struct kafka_deferred *deferred; /* rebalances that came meanwhile, oldest first */
    struct sl_log_limit logged;
    uint64_t stall_msgs;   /* queued.min.messages */
    uint64_t stall_bytes;  /* queued.max.messages.kbytes, in bytes */
    uint64_t avg_len;      /* the average message size seen (value + key), for the slots */
    size_t rr;             /* where the next slot's search for a paused partition starts */
    int64_t secfail_at_ms; /* the last authentication/TLS/ACL failure, or 0 */
};

/* Where the partitions of one assignment start (see "About where reading starts"). The worker
 * (kafka_lookup_work, on libuv's thread pool) reads and writes only rk, parts, res, the two
 * errors and, under mu, done; everything else, ctx included, belongs to the loop thread. Freed
 * by its completion callback (kafka_lookup_done), which always runs on the loop. */
struct kafka_lookup {
    uv_work_t req;
    struct kafka_ctx *ctx; /* NULL once fini orphaned it: the completion only frees it */
    struct kafka_lookup *next;
    uint64_t gen; /* ctx->assign_gen when it started; stale when they differ */
    int64_t started_ms;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts; /* a copy of the assignment; the offsets found */
    /* Those without a committed offset, and where StartingPosition puts them (ListOffsets);
     * after kafka_start_offsets, only those that start there (the others' offset is
     * RD_KAFKA_OFFSET_INVALID): their start is committed at once. */
    rd_kafka_topic_partition_list_t *res;
    int starting_position;
    int64_t ts_ms;
    rd_kafka_resp_err_t err;     /* of rd_kafka_committed */
    rd_kafka_resp_err_t res_err; /* of rd_kafka_offsets_for_times */
    uv_mutex_t mu;
    uv_cond_t cv;
    bool done; /* the worker returned (under mu) */
};
/* Where connection settings go: the consumer's configuration (init), or the key/value pairs
 * client_props hands to another client of the cluster. Exactly one is set. */
struct kafka_dst {
    rd_kafka_conf_t *conf;
    struct sl_strmap *props;
};

enum kafka_conf_sac_type {
    KAFKA_SAC_BASIC,
    KAFKA_SAC_SCRAM256,
    KAFKA_SAC_SCRAM512,
    KAFKA_SAC_CLIENT_CERT,
    KAFKA_SAC_ROOT_CA,
    KAFKA_SAC_VPC_SUBNET,
    KAFKA_SAC_VPC_SG,
    KAFKA_SAC_COUNT
};

struct kafka_msgview {
    int64_t offset;
    int64_t ts;
    int tstype; /* rd_kafka_timestamp_type_t */
    const void *key;
    size_t key_len; /* key NULL: null key */
    const void *value;
    size_t value_len; /* value NULL: tombstone */
    const rd_kafka_headers_t *hdrs;
};

/* A record's meta, decoded. Pointers borrow from the queue. */
struct kafka_meta {
    bool has_key;
    bool null_value;
    int tstype;
    int64_t ts;
    const unsigned char *key;
    uint32_t key_len;
    uint32_t n_hdrs;
    const unsigned char *hdrs; /* n_hdrs entries as written by kafka_push_view */
};

/* kafka_log.c */
void kafka_log_limited(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, const char *fmt, ...) SL_PRINTF(4, 5);
bool kafka_log_secfail(struct kafka_ctx *ctx, int err, const char *reason);
void kafka_log_message_error(struct kafka_ctx *ctx, const rd_kafka_message_t *msg);

/* kafka_part.c */
struct kafka_part *kafka_part_find(struct kafka_ctx *ctx, const char *topic, int32_t partition);
void kafka_part_stage_clear(struct kafka_part *kp);
int kafka_part_stash(struct kafka_part *kp, rd_kafka_message_t *msg);
void kafka_part_queue_close(struct kafka_part *kp);
void kafka_part_free(struct kafka_part *kp);
struct kafka_part *
kafka_part_new(struct kafka_ctx *ctx, const char *topic, int32_t partition, int64_t start);

/* kafka_record.c */
int kafka_record_push_message(struct kafka_part *kp,
                              const rd_kafka_message_t *msg,
                              int64_t wall_ms);
void kafka_record_meta_read(const struct sl_part *part,
                            const struct sl_record *rec,
                            struct kafka_meta *m);
const unsigned char *kafka_record_meta_header(const unsigned char *h,
                                              const char **ret_name,
                                              uint32_t *ret_name_len,
                                              const unsigned char **ret_val,
                                              uint32_t *ret_val_len);

/* kafka_conf.c */
extern const char *const kafka_conf_sac_names[KAFKA_SAC_COUNT];
int kafka_conf_sac_type(const char *s);
bool kafka_conf_sac_is_secret(int type);
int kafka_conf_set(rd_kafka_conf_t *conf,
                   const char *what,
                   const char *key,
                   const char *value,
                   bool secret,
                   char *errbuf,
                   size_t errlen);
bool kafka_conf_is_security_prop(const char *key);
int kafka_conf_passthrough(const struct kafka_ctx *ctx,
                           rd_kafka_conf_t *conf,
                           char *errbuf,
                           size_t errlen);
int kafka_conf_apply_sac(const struct kafka_ctx *ctx,
                         const struct kafka_dst *d,
                         char *errbuf,
                         size_t errlen);
void kafka_conf_queue_limits(struct kafka_ctx *ctx, const rd_kafka_conf_t *conf);

/* kafka_commit.c */
rd_kafka_topic_partition_list_t *kafka_commit_list(struct kafka_ctx *ctx,
                                                   const rd_kafka_topic_partition_list_t *only);
void kafka_commit_cb(rd_kafka_t *rk,
                     rd_kafka_resp_err_t err,
                     rd_kafka_topic_partition_list_t *offsets,
                     void *opaque);
void kafka_commit_async(struct kafka_ctx *ctx);
void kafka_commit_bounded(struct kafka_ctx *ctx,
                          rd_kafka_topic_partition_list_t *l,
                          int timeout_ms);
void kafka_ack(void *vctx, struct sl_part *part, const struct sl_record *last);

/* kafka_fetch.c */
void kafka_fetch_kick_if_stalled(struct kafka_ctx *ctx, struct kafka_part *kp, int64_t now);
size_t kafka_fetch_slots(const struct kafka_ctx *ctx);
bool kafka_fetch_caught_up(const struct kafka_ctx *ctx, const struct kafka_part *kp);
size_t kafka_fetch_active(const struct kafka_ctx *ctx, bool *ret_wanted);
void kafka_fetch_slots_fill(struct kafka_ctx *ctx);
void kafka_fetch_slot_yield(struct kafka_ctx *ctx, struct kafka_part *kp);
int kafka_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes);

/* kafka_event.c */
/* Kafka's event shape (esm.md §2): its members are the kafka_encode_* below but encode_record;
 * under sources/kafka/ because they need the source's state (the cluster's bootstrap
 * servers, MSK's ARN, each partition's prepared opening). */
extern const struct sl_event_format kafka_event_format;
int kafka_encode_open(const struct sl_source_ops *ops,
                      void *vctx,
                      struct sl_part *part,
                      struct sl_buf *out);
int kafka_encode_close(const struct sl_source_ops *ops,
                       void *vctx,
                       struct sl_part *part,
                       struct sl_buf *out);
int kafka_encode_next_part(const struct sl_source_ops *ops,
                           void *vctx,
                           struct sl_part *part,
                           struct sl_buf *out);
int kafka_encode_record(void *vctx,
                        struct sl_part *part,
                        const struct sl_record *rec,
                        struct sl_buf *out);
int kafka_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
int kafka_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);

/* A record's offset: its position is that one native 64-bit number (kafka_record.c). */
static inline uint64_t kafka_rec_offset(const struct sl_part *part, const struct sl_record *rec)
{
    return sl_recq_pos_u64(&part->q, rec, 0);
}
size_t kafka_record_key(void *vctx,
                        struct sl_part *part,
                        const struct sl_record *rec,
                        const char **ret_key);
cJSON *kafka_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec);
int kafka_encode_batch_info(const struct sl_source_ops *ops,
                            void *vctx,
                            const struct sl_batch_run *runs,
                            size_t n_runs,
                            struct sl_buf *out);
int kafka_encode_record_info(const struct sl_source_ops *ops,
                             void *vctx,
                             struct sl_part *part,
                             const struct sl_record *rec,
                             struct sl_buf *out);

/* kafka_check.c */
int kafka_check(void *vctx, const char *arn, char *errbuf, size_t errlen);

/* kafka_rebalance.c */
void kafka_rebalance_abandon(struct kafka_ctx *ctx);
void kafka_rebalance_replay(struct kafka_ctx *ctx);
void kafka_rebalance_revoke_end(struct kafka_ctx *ctx,
                                rd_kafka_resp_err_t err,
                                const rd_kafka_topic_partition_list_t *res);
void kafka_rebalance_revoke_event(struct kafka_ctx *ctx, rd_kafka_event_t *ev);
void kafka_rebalance_revoke_poll(struct kafka_ctx *ctx);
void kafka_rebalance_cb(rd_kafka_t *rk,
                        rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t *parts,
                        void *opaque);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_REDIS_SRC_INT_H
#define SL_REDIS_SRC_INT_H

/* The state the Redis Streams source's files share, and what each exports to the others. The
 * layers (each calls only downwards):
 *
 *   redis_src.c        the adapter: options, checks, init/start/stop/fini, the consumer group
 *                      (XGROUP CREATE), the partition's life, the ops table
 *     redis_src_ack.c    XACK of what is done, and the reclaim of dead consumers' entries
 *                        (XAUTOCLAIM, or XPENDING + XCLAIM)
 *     redis_src_read.c   fetch: XREADGROUP (own pending entries first, then new ones; BLOCK
 *                        only outside fetch), replies into records, entries held between
 *                        fetches
 *       redis_src_event.c  records as the function sees them: the shared Kinesis-shaped event,
 *                          positions, item ids, entries' fields as JSON
 *       redis_src_reply.c  hiredis' reader functions for the reading connection: a reply's
 *                          objects in a few blocks
 *
 * Loop thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "buf.h"
#include "event_kinesis.h"
#include "log.h"
#include "redis_conn.h"
#include "redis_url.h"
#include "retry.h"
#include "source.h"

#define RS_COMP "redis_src"

/* An entry id as Redis writes it: "<ms>-<seq>", two decimal 64-bit numbers. */
#define RS_ID_MAX 42

struct redisReply;
struct rs_acker;

/* A stream entry id. */
struct rs_id {
    uint64_t ms;
    uint64_t seq;
};

/* Entries read or claimed while the mapping was not fetching, kept (their fields already
 * written as JSON) until the next fetch takes them: a flat buffer of
 * [ms u64][seq u64][id text length u32][json length u32][id text][json], read from off. */
struct rs_held {
    struct sl_buf b;
    size_t off;
    size_t n; /* entries left */
};

/* The stream's partition (part->src). */
struct rs_part {
    struct rs_ctx *ctx;
    struct sl_part *part;
    struct sl_event_kinesis_tmpl tmpl;
    struct rs_held held;
    struct rs_id own_after; /* own pending entries are read after this id (own phase) */
    struct rs_id read_last; /* the last entry a read of new ones (">") brought */
    size_t last_max;        /* max_records of the last fetch: the COUNT of a blocking read */
    size_t max_bytes;       /* max_bytes of the fetch in progress */
    bool own_done;          /* this consumer's own pending entries were read again */
    bool reading;           /* an XREADGROUP is out */
    bool fetching;          /* fetch answered SL_EINPROGRESS: part_fetched is owed */
    bool waiting;           /* fetch answered 0: part_wake is owed */
    bool gone;              /* part_gone was given */
};

struct rs_ctx {
    /* options (redis_src.c's table) */
    char *consumer_group;
    char *consumer_name;
    int64_t claim_idle_ms;
    int64_t claim_count;
    int64_t block_ms;
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;

    struct sl_source_env env;
    struct sl_redis_url url;
    char *stream;              /* the stream's key */
    char *group;               /* consumer_group, or the mapping's UUID */
    char *consumer;            /* consumer_name, or "<host>-<pid>" */
    char *event_arn;           /* redis://host:port/db/STREAM: the ARN without user and password */
    char *start_id;            /* the id a new group starts after: "0", "$", or AT_TIMESTAMP's */
    struct sl_redis_conn *cmd; /* XGROUP, XACK, XAUTOCLAIM: answered at once */
    struct sl_redis_conn *rd;  /* XREADGROUP, which may BLOCK: a connection of its own */
    struct rs_acker *acker;    /* XACK: open until fini, then until answered */
    struct rs_part *rp;        /* the partition while the mapping has it */
    uv_timer_t *timer;         /* owned: group creation again, the claim round, wakes */
    struct sl_buf scratch;     /* an entry's JSON while it is written */
    struct sl_retry_policy retry;
    uint64_t rng;
    struct sl_log_limit lim;
    int64_t started_ms;
    int64_t claim_next_ms; /* the next claim round, on the env clock */
    int64_t wake_at_ms;    /* a failed read: the waiting mapping is woken at this time */
    int64_t create_at_ms;  /* the next XGROUP CREATE after a failed one */
    int64_t lag;           /* the group's lag (XINFO GROUPS), -1 until known */
    int64_t lag_next_ms;   /* when it is asked for next */
    char claim_cursor[RS_ID_MAX];
    unsigned attempt;   /* group creation attempts that failed in a row */
    unsigned acks_out;  /* XACKs sent and not answered */
    bool reading;       /* an XREADGROUP is out on rd */
    bool read_block;    /* ... and it is a blocking one (outside any fetch) */
    bool group_ready;   /* the group exists (created or found): the partition may read */
    bool creating;      /* an XGROUP CREATE is out */
    bool group_lost;    /* a reply said the group is missing: created again without MKSTREAM */
    bool stream_gone;   /* the key was deleted: wait for it to come back */
    bool claiming;      /* a claim command is out */
    bool lag_asking;    /* an XINFO GROUPS is out */
    bool no_xautoclaim; /* the server has no XAUTOCLAIM (before 6.2): XPENDING + XCLAIM */
    bool stopped;
    /* Calls upwards, set by redis_src.c (a file calls only downwards, so these go through the
     * context): a reply said the group or the stream is missing (NOGROUP, UNBLOCKED):
     * redis_src.c creates the group again, or ends the partition when the stream is gone; */
    void (*group_missing)(struct rs_ctx *ctx);
    /* ... and XACK of entries that cannot be delivered (redis_src_ack.c's rs_ack_ids). */
    void (*ack_gone)(struct rs_ctx *ctx, const struct rs_id *ids, size_t n);
};

/* ---- redis_src_reply.c ---- */

/* hiredis' reader functions for the reading connection: the same redisReply objects as
 * hiredis' own, carved out of a few blocks per reply and freed with it at once. */
extern struct redisReplyObjectFunctions rs_reply_functions;

/* ---- redis_src_event.c ---- */

/* Parses "<ms>-<seq>" (len bytes). Returns false when it is not an id. */
bool rs_id_parse(const char *s, size_t len, struct rs_id *ret);
/* Writes "<ms>-<seq>" and a NUL into buf (RS_ID_MAX bytes); returns its length. */
size_t rs_id_format(const struct rs_id *id, char *buf);
/* The id of a record (its position). */
struct rs_id rs_rec_id(const struct sl_recq *q, const struct sl_record *rec);
/* Appends the fields of an entry (a flat array field, value, ...: n elements) as a JSON object
 * to out. Returns 0, SL_EPROTO (an element is not a string) or SL_ENOMEM. */
SL_NODISCARD int rs_fields_json(struct sl_buf *out, const struct redisReply *fields);
/* Pushes one entry into part's queue: its JSON, its id as the position and as text (text_len
 * bytes, as Redis wrote it) in the meta, its time as arrival. */
SL_NODISCARD int rs_push(struct rs_part *rp,
                         const struct rs_id *id,
                         const char *text,
                         size_t text_len,
                         const char *json,
                         size_t len);
/* A record's id as text (borrowed from the queue; not NUL-terminated): returns its length. */
size_t rs_rec_id_text(const struct sl_recq *q, const struct sl_record *rec, const char **ret);
SL_NODISCARD int rs_event_prepare(struct rs_ctx *ctx, struct rs_part *rp);
int rs_encode_record(void *vctx,
                     struct sl_part *part,
                     const struct sl_record *rec,
                     struct sl_buf *out);
cJSON *rs_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec);
int rs_compare_pos(void *vctx, const void *a, size_t a_len, const void *b, size_t b_len);
int rs_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
int rs_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);

/* ---- redis_src_read.c ---- */

int rs_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes);
/* Keeps the entries of an array reply [[id, [field, value, ...]], ...] (XAUTOCLAIM's or
 * XCLAIM's) that part does not hold already (claimed back from itself), for the next fetch;
 * wakes the mapping when it waits. Entries whose fields are gone (deleted from the stream) are
 * acknowledged and skipped. Returns how many were kept, or SL_ENOMEM / SL_EPROTO. */
int rs_read_keep_claimed(struct rs_part *rp, const struct redisReply *entries);
/* The mapping waits for a wake (fetch answered 0) and there may be something now: give it. */
void rs_read_wake(struct rs_part *rp);
/* From the source's timer: a mapping that waits gets its wake or its blocking read again once
 * a failed read's delay is over. */
void rs_read_tick(struct rs_part *rp);
void rs_part_free(struct rs_part *rp);

/* ---- redis_src_ack.c ---- */

/* Opens the XACK connection (ctx->acker). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int rs_acker_new(struct rs_ctx *ctx, const struct sl_redis_conn_conf *conf);
/* At fini: the XACK connection goes once what is out on it is answered, or after a bound;
 * nothing of it calls the mapping. */
void rs_acker_close(struct rs_ctx *ctx);
/* XACKs the ids of part's records from the front of its queue through last. */
void rs_ack(void *vctx, struct sl_part *part, const struct sl_record *last);
/* XACKs n ids (entries that cannot be delivered: deleted from the stream). */
void rs_ack_ids(struct rs_ctx *ctx, const struct rs_id *ids, size_t n);
/* One claim round when it is due (every claim_idle / 2, at once while a round finds more). */
void rs_claim_tick(struct rs_ctx *ctx);

#endif

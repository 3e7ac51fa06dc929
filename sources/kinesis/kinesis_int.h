/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KINESIS_INT_H
#define SL_KINESIS_INT_H

/* The state the Kinesis source's files share, and the functions each exports to the others.
 * The layers (each calls only downwards):
 *
 *   kinesis.c          the adapter: options, checks, init/start/stop/fini, the ops table
 *     kinesis_shards.c  ListShards (pages, refresh), the shard table, lineage, part_add/release
 *     kinesis_fetch.c   fetch: GetShardIterator, GetRecords, pacing, backoff, wakes
 *       kinesis_event.c   records as the function sees them: the shared Kinesis event,
 *                         positions, item ids
 *       kinesis_http.c    one request to the Kinesis API: endpoint, headers, signing, the
 *                         answer classified
 *         kinesis_arn.c     EventSourceArn parsed (no I/O, no state)
 *
 * Loop thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "aws.h"
#include "buf.h"
#include "event_kinesis.h"
#include "httpc.h"
#include "kinesis_seq.h"
#include "kinesis_wire.h"
#include "log.h"
#include "retry.h"
#include "sigv4.h"
#include "source.h"

#define KIN_COMP "kinesis"

/* AWS's limit: five GetRecords calls per second per shard. */
#define KIN_GET_RECORDS_GAP_MS 200
/* How long a stream that does not exist (or cannot be read) waits before it is asked again. */
#define KIN_SLOW_RETRY_MS 5000
/* How long --until-idle waits at most for every shard's first answer. */
#define KIN_SETTLE_MAX_MS 30000
/* Largest answer read (GetRecords returns at most 10 MB of data, base64 in JSON). */
#define KIN_MAX_RESPONSE_BYTES (32u * 1024 * 1024)
#define KIN_REQUEST_TIMEOUT_MS 30000L

/* ---- kinesis_arn.c ---- */

/* "arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME", parsed into copies owned here. */
struct kin_arn {
    char *partition, *region, *account, *stream;
};

/* Parses arn. Returns 0, SL_ECONFIG (errbuf: "EventSourceArn: ..." and what is allowed) or
 * SL_ENOMEM. ret is zeroed on failure. */
SL_NODISCARD int kin_arn_parse(const char *arn, struct kin_arn *ret, char *errbuf, size_t errlen);
void kin_arn_fini(struct kin_arn *a);

/* ---- the adapter's state ---- */

struct kin_req;

/* One shard known from ListShards (the table outlives the shard's partition, so that the
 * lineage rule knows which parents are done). */
struct kin_shard {
    struct kin_shard *next;
    struct kinesis_shard info;
    struct kin_part *kp;    /* its partition's state while the mapping has it, else NULL */
    bool added;             /* a partition was added for it in this run */
    bool done;              /* read to its end and every record done (or ended in the checkpoint) */
    bool listed;            /* in the latest complete listing */
    bool from_trim_horizon; /* a parent of it was listed: it is read from its start */
    bool named;             /* named by a parent's ChildShards (maybe not listed yet) */
};

/* One shard's partition (part->src). */
struct kin_part {
    struct kin_ctx *ctx;
    struct kin_shard *sh;
    struct sl_part *part;
    struct sl_event_kinesis_tmpl tmpl;
    uv_timer_t *timer;   /* owned; wakes, backoff and the deferred part_gone */
    struct kin_req *req; /* the request in flight, or NULL */
    char *iterator;      /* owned shard iterator, NULL when a new one is needed */
    char last_seq[KINESIS_SEQ_DIGITS_MAX + 1]; /* last record fetched (or the checkpoint's) */
    /* deaggregate: an aggregate of which the user records below resume_next are delivered (a
     * checkpoint inside it, or a push cut short): read AT_SEQUENCE_NUMBER of it, skip those.
     * "" when none. */
    char resume_seq[KINESIS_SEQ_DIGITS_MAX + 1];
    uint64_t resume_next;
    int64_t next_ms;      /* no GetRecords before this (poll_interval, backoff) */
    int64_t last_call_ms; /* when the last GetRecords went out (5 per second) */
    int64_t millis_behind;
    int64_t start_at_ms;  /* the checkpoint's LATEST start: AT_TIMESTAMP of it, else 0 */
    int64_t latest_at_ms; /* a LATEST iterator was asked for at about this time, else 0 */
    size_t limit;         /* Limit of the GetRecords of the fetch in progress */
    unsigned attempt;
    bool fetching;  /* fetch returned SL_EINPROGRESS: part_fetched is owed */
    bool waiting;   /* fetch returned 0: part_wake is owed */
    bool answered;  /* a GetRecords answered (lag is known; --until-idle may count) */
    bool ended;     /* read to its end (NextShardIterator absent): part_gone is owed or given */
    bool gone;      /* part_gone was called */
    bool not_found; /* GetShardIterator said ResourceNotFound: dropped if the listing agrees */
    bool idle;      /* the last page was empty: the timer polls, outside fetch */
    bool has_held;  /* held holds records an idle poll found, from held_i on */
    struct kinesis_records held;
    size_t held_i;
    unsigned fetches;  /* fetch calls so far */
    unsigned woken_at; /* fetches when the last part_wake was given */
    bool woken;        /* a part_wake was given and its follow-up timer is armed */
};

struct kin_ctx {
    /* options (kinesis.c's table) */
    int64_t shard_refresh_ms;
    int64_t poll_ms;
    char *endpoint_url;
    char *invoke_identity_arn;
    bool deaggregate;

    struct sl_source_env env;
    struct kin_arn arn;
    char *url; /* the endpoint the requests go to */
    char *iia; /* invokeIdentityArn written into events */
    struct sl_httpc *httpc;
    struct curl_slist *hdrs[KINESIS_OP_COUNT];
    struct sl_sigv4 *signer; /* NULL: requests go unsigned (no credentials found) */
    struct sl_retry_policy retry;
    uint64_t rng;
    struct sl_log_limit lim;

    /* shards (kinesis_shards.c) */
    struct kin_shard *shards;
    uv_timer_t *list_timer;            /* owned */
    struct kin_req *list_req;          /* the ListShards page in flight */
    struct kinesis_shard_list listing; /* pages gathered so far */
    bool list_again;                   /* a listing was asked for while one ran */
    bool listed;                       /* a listing has completed */
    bool stream_missing_logged;        /* the one line about a missing stream was written */
    unsigned list_attempt;
    int64_t started_ms;
    bool stopped;
    /* A shard was read to its end, or GetShardIterator says it is not found (set by
     * kinesis_shards.c, called by kinesis_fetch.c, which must not call upwards): list again
     * soon, its children appear (or it is found gone). */
    void (*shard_ended)(struct kin_ctx *ctx);
    /* A shard's last GetRecords named its children (ChildShards): they start once their
     * parents are done, without waiting for a listing (kinesis_shards.c). */
    void (*shard_children)(struct kin_ctx *ctx,
                           const struct kinesis_child_shard *children,
                           size_t n);
};

/* ---- kinesis_http.c ---- */

/* The outcome of one request, for the callbacks. */
struct kin_answer {
    bool ok;          /* a 200 answer: body holds it */
    const char *body; /* NUL-terminated */
    size_t len;
    struct kinesis_error err; /* when !ok: what went wrong and what to do */
};

typedef void (*kin_req_cb)(void *arg, const struct kin_answer *a);

/* Prepares ctx for sending: the endpoint (AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, the
 * endpoint_url option, the profile's, the region's), the credentials and the headers. Returns
 * 0, SL_ECONFIG (errbuf) or SL_ENOMEM. */
SL_NODISCARD int kin_http_init(struct kin_ctx *ctx, char *errbuf, size_t errlen);
void kin_http_fini(struct kin_ctx *ctx);

/* Sends op with body (copied) and calls cb(arg, answer) once, on a later loop turn; *ret_req
 * names it for kin_http_cancel. Returns 0 or an error (cb never runs). */
SL_NODISCARD int kin_http_send(struct kin_ctx *ctx,
                               enum kinesis_op op,
                               const struct sl_buf *body,
                               kin_req_cb cb,
                               void *arg,
                               struct kin_req **ret_req);

/* Cancels req: its callback never runs. */
void kin_http_cancel(struct kin_ctx *ctx, struct kin_req *req);

/* ---- kinesis_event.c ---- */

SL_NODISCARD int kin_event_prepare(struct kin_ctx *ctx, struct kin_part *kp);
int kin_encode_record(void *vctx,
                      struct sl_part *part,
                      const struct sl_record *rec,
                      struct sl_buf *out);
cJSON *kin_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec);
size_t
kin_record_key(void *vctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key);
int kin_compare_pos(void *vctx, const void *a, size_t a_len, const void *b, size_t b_len);
int kin_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
int kin_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len);
/* Appends records [from, from + n) of a GetRecords answer to part->q (data decoded from
 * base64, the partition key as meta, the sequence number as position); with deaggregate, a KPL
 * aggregate's user records instead, each with its sub-sequence number in the position (those
 * below kp->resume_next of kp->resume_seq skipped, those outside the shard's hash key range
 * dropped). Returns how many records of recs were consumed, *ret_pushed how many records the
 * queue got; or SL_ENOMEM / SL_EPROTO when nothing was pushed (records pushed before an error
 * stay; an aggregate cut short sets kp->resume_seq so that it is read again from there). */
SL_NODISCARD int kin_event_push(struct kin_part *kp,
                                const struct kinesis_records *recs,
                                size_t from,
                                size_t n,
                                size_t *ret_pushed);

/* ---- kinesis_fetch.c ---- */

/* A new partition state for shard sh (its timer and event template), not yet attached; NULL
 * on OOM. */
struct kin_part *kin_fetch_part_new(struct kin_ctx *ctx, struct kin_shard *sh);
/* Attaches kp to its partition (part->src, part->event) and reads where it starts from the
 * checkpoint (AFTER_SEQUENCE_NUMBER of it, AT_SEQUENCE_NUMBER of an aggregate for "SEQ:SUB";
 * a shard ended and done there is gone at once), else the mapping's starting position. */
void kin_fetch_part_attach(struct kin_part *kp, struct sl_part *part);
int kin_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes);
/* Drops kp's shard, which GetShardIterator said does not exist and the listing no longer has:
 * one log line, then part_gone; its checkpoint is left as it is. */
void kin_fetch_part_drop(struct kin_part *kp);
/* Stops kp's timer and request; no callback of kp after it. */
void kin_fetch_part_stop(struct kin_part *kp);
/* Frees kp (its timer closes on the loop). */
void kin_fetch_part_free(struct kin_part *kp);

/* ---- kinesis_shards.c ---- */

/* Starts listing the shards (now, and every shard_refresh_interval). */
SL_NODISCARD int kin_shards_start(struct kin_ctx *ctx);
void kin_shards_stop(struct kin_ctx *ctx);
void kin_shards_fini(struct kin_ctx *ctx);
void kin_part_release(void *vctx, struct sl_part *part);
/* A lease was taken: list the shards soon, so that part_add is offered it. */
void kin_offer_again(void *vctx);
/* True while a shard of the stream has not answered its first GetRecords. */
bool kin_shards_settling(struct kin_ctx *ctx);

#endif

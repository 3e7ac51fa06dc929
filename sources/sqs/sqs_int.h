/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SQS_INT_H
#define SL_SQS_INT_H

/* The SQS source's insides, shared by its files. Layers (each calls only downward):
 *
 *   sqs.c        the ops: options, check, init, start (GetQueueUrl, GetQueueAttributes), the
 *                record operations (key, item id, event, filter), stop and fini
 *     sqs_recv.c   fetch: ReceiveMessage on the loop, each message a record with a new lease
 *     sqs_lease.c  the lease table; queue_ack/release/hold/idle: DeleteMessageBatch and
 *                  ChangeMessageVisibilityBatch in groups of 10, retries, lost leases, reports
 *       sqs_call.c   one signed AWS JSON 1.0 request on the loop, and the requests in flight
 *
 * What a queue is named by (ARN or URL) is sinks/sqs_dest.c's and the wire's headers and error
 * translation sinks/sqs_wire.c's, shared with the SQS sink. Loop thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "buf.h"
#include "httpc.h"
#include "json_scan.h"
#include "source.h"
#include "sqs_dest.h"

#define SQS_COMP          "sqs"
#define SQS_ENTRIES_MAX   10u /* entries of one batch request, and messages of one receive */
#define SQS_RESPONSE_MAX  (16u * 1024u * 1024u) /* a receive of 10 messages of 1 MiB, and more */
#define SQS_DETAIL        512
#define SQS_RETRY_BASE_MS 200
#define SQS_RETRY_MAX_MS  20000
#define SQS_SLOW_RETRY_MS 30000 /* a missing queue, refused credentials */

enum sqs_call_kind {
    SQS_CALL_GETURL,
    SQS_CALL_ATTRS,
    SQS_CALL_RECEIVE,
    SQS_CALL_DELETE,
    SQS_CALL_EXTEND,  /* a heartbeat: ChangeMessageVisibilityBatch of held leases */
    SQS_CALL_RELEASE, /* ChangeMessageVisibilityBatch of released leases */
    SQS_CALL_KINDS
};

struct sqs_ctx;
struct sqs_call;

typedef void (*sqs_call_cb)(struct sqs_ctx *ctx,
                            struct sqs_call *call,
                            int err,
                            const char *detail,
                            const struct sl_http_resp *resp);

/* One request in flight. Its callback runs once, never after stop (the call is then freed
 * without it). */
struct sqs_call {
    struct sqs_call *prev, *next; /* ctx->calls */
    struct sqs_ctx *ctx;
    enum sqs_call_kind kind;
    sqs_call_cb cb;
    struct sl_buf body;
    int64_t sent_at; /* monotonic ms */
    size_t n;        /* entries */
    uint64_t leases[SQS_ENTRIES_MAX];
    int64_t value[SQS_ENTRIES_MAX]; /* EXTEND: the visibility asked for, ms */
};

enum sqs_lease_state {
    SQS_LEASED,   /* the mapping holds the record */
    SQS_DELETING, /* acked: a delete waits, is in flight, or waits for a retry */
};

/* One lease: one receive of one message. */
struct sqs_lease {
    uint64_t id;
    struct sqs_lease *prev, *next; /* ctx->leases, in receive order */
    char *msg_id;                  /* owned */
    char *handle;                  /* the message's latest receipt handle we know, owned */
    enum sqs_lease_state state;
    bool lost;          /* SL_QUEUE_LEASE_LOST reported */
    bool busy;          /* in a delete or extension request now */
    int64_t expires_at; /* when its visibility runs out, as we know it (monotonic ms) */
    int64_t hold_until; /* queue_hold's until_ms; 0: not held */
    int64_t due_at;     /* DELETING: when to (re)send the delete */
    unsigned attempts;  /* delete attempts made */
};

/* A release's visibility change waiting to be sent (the lease itself is forgotten). */
struct sqs_vis {
    char *handle; /* owned */
    int64_t secs;
};

struct sqs_ctx {
    /* options */
    int64_t wait_ms;        /* WaitTimeSeconds of ReceiveMessage (long polling) */
    int64_t timeout_ms;     /* requests other than ReceiveMessage */
    int64_t delete_retries; /* attempts per delete entry */
    int64_t visibility_ms;  /* 0: the queue's VisibilityTimeout (GetQueueAttributes) */

    struct sl_source_env env;
    struct sqs_dest dest;
    bool inited;
    bool stopped;
    struct sl_httpc *httpc;
    struct sl_sigv4 *signer; /* or NULL: unsigned */
    char *region;            /* the queue's region: signing and awsRegion */
    char *arn;               /* eventSourceARN */
    char *endpoint;          /* where requests are POSTed */
    char *endpoint_shown;    /* redacted, for logs */
    char *queue_url;         /* NULL until resolved */
    char *queue_shown;
    struct curl_slist *headers[SQS_CALL_KINDS];
    struct sqs_call *calls; /* in flight */

    /* the queue, as GetQueueAttributes says (what queue_limits tells the mapping) */
    bool fifo;
    int64_t queue_visibility_ms;
    bool ready;              /* resolved and its attributes read: the partition exists */
    int64_t depth;           /* ApproximateNumberOfMessages as last read, or -1 (lag) */
    int64_t depth_at;        /* when it was asked for (monotonic ms) */
    bool depth_busy;         /* a GetQueueAttributes for it is in flight */
    bool start_tried;        /* the first attempt to resolve it finished */
    uv_timer_t *start_timer; /* retrying the resolution (each timer allocated: closed after fini) */
    struct sl_part *part;

    /* receiving: one long poll at a time, in the background of fetch */
    bool receiving;
    bool recv_paused;       /* a release with visibility 0 came: no new poll until fetch */
    uv_timer_t *recv_timer; /* a receive's backoff after an error */
    unsigned recv_failures;
    int64_t last_recv_warn;
    bool wants_wake;               /* fetch returned 0: part_wake when messages came */
    bool received;                 /* the last answer has messages not yet handed out */
    struct sl_buf recv_text;       /* that answer (kept across receives for its room) */
    struct sl_json_scan recv_scan; /* its tokens */
    size_t msgs;                   /* the token of its Messages array */
    size_t next_msg;               /* the token of the first message not handed out; 0: none */
    int64_t received_at; /* when that receive was sent (its visibility counts from there) */
    size_t poll_max;     /* MaxNumberOfMessages of the polls: min(10, fetch's max_records) */

    /* the lease table */
    uint64_t next_lease;
    struct sqs_lease **slots; /* open addressing by id; NULL: empty */
    size_t n_slots;           /* power of two, or 0 */
    size_t n_leases;
    size_t n_deleting; /* leases in SQS_DELETING */
    struct sqs_lease *leases, *leases_tail;
    struct sqs_vis *vis; /* releases' visibility changes waiting */
    size_t n_vis, cap_vis;
    uv_timer_t *tick; /* the next time-driven work: sends, retries, heartbeats, lost leases */
    bool tick_armed;
    int64_t tick_at;
};

/* sqs_call.c */
/* Starts an AmazonSQS.<kind's action> request with body (moved into the call: b is left
 * empty). Returns 0 and *ret_call (cb runs later, once), or an error (nothing started). */
int sqs_call_start(struct sqs_ctx *ctx,
                   enum sqs_call_kind kind,
                   struct sl_buf *b,
                   sqs_call_cb cb,
                   struct sqs_call **ret_call);
/* The action name of kind ("ReceiveMessage"). */
const char *sqs_call_action(enum sqs_call_kind kind);
/* Cancels every call; none of their callbacks will run. */
void sqs_call_cancel_all(struct sqs_ctx *ctx);
/* The headers of each action (ctx->headers). Returns 0 or SL_ENOMEM. */
int sqs_call_init_headers(struct sqs_ctx *ctx);
/* A backoff for the n-th failure (1, 2, ...): SQS_RETRY_BASE_MS doubling, at most max_ms. */
int64_t sqs_backoff_ms(unsigned n, int64_t max_ms);

/* sqs_lease.c */
int64_t sqs_now(const struct sqs_ctx *ctx);
/* A new lease for a message just received (msg_id and handle copied) whose visibility ends
 * at expires_at; returns it, or NULL on OOM. A message received again (again: its
 * ApproximateReceiveCount is above 1) may still have an older lease here, run out or waiting
 * for its delete: that one takes the new receipt handle. */
struct sqs_lease *sqs_lease_new(
    struct sqs_ctx *ctx, const char *msg_id, const char *handle, int64_t expires_at, bool again);
/* The lease with that id, or NULL. */
struct sqs_lease *sqs_lease_find(struct sqs_ctx *ctx, uint64_t id);
/* Forgets every lease and pending change, reporting nothing. */
void sqs_lease_clear(struct sqs_ctx *ctx);
void sqs_lease_fini(struct sqs_ctx *ctx);
int sqs_queue_ack(void *vctx, struct sl_part *part, const uint64_t *leases, size_t n);
int sqs_queue_release(
    void *vctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t visible_in_ms);
int sqs_queue_hold(
    void *vctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t until_ms);
bool sqs_queue_idle(void *vctx);
/* Returns a received message that was never handed out: its visibility set to 0 (copied).
 * Returns 0 or SL_ENOMEM. */
int sqs_lease_return(struct sqs_ctx *ctx, const char *handle);

/* sqs_recv.c */
int sqs_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes);
/* Drops the messages received and not handed out (they come back after their visibility
 * timeout) and frees what held them. */
void sqs_recv_clear(struct sqs_ctx *ctx);
/* Messages were just returned with visibility 0 (a drain returns what it held): polling pauses
 * until the next fetch, and what the poll in flight brings (it may take those very messages
 * back) is returned with visibility 0 too, then part_wake, so a mapping that is not draining
 * fetches, and polls, again. A drain waits for that poll (queue_idle), at most wait_time. */
void sqs_recv_pause(struct sqs_ctx *ctx);
/* The record's meta as sqs_recv.c writes it: the group, the message id, and the event's head
 * and tail (event_sqs.h). */
struct sqs_meta {
    const char *group;
    size_t group_len;
    const char *msg_id;
    size_t msg_id_len;
    const char *head;
    size_t head_len;
    const char *tail;
    size_t tail_len;
};
void sqs_meta_read(const struct sl_recq *q, const struct sl_record *rec, struct sqs_meta *ret);

#endif

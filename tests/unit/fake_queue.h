/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_FAKE_QUEUE_H
#define SL_TEST_FAKE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* A fake *queue* source for unit tests (caps->model SL_DELIVERY_QUEUE), served for
 * EventSourceArn "fakeq://..." once fake_queue_register() ran. It is two things in one file,
 * kept apart as an SQS adapter and SQS are:
 *
 * - the queue (the "server"): messages in send order, each with an optional group (FIFO's
 *   MessageGroupId; "" for none). A received message is invisible until its visibility runs out
 *   (visibility_ms on the injectable clock), then it can be received again with its receive
 *   count + 1 and a new receipt handle. A receive never hands out a message of a group while an
 *   earlier message of that group is in flight. Deletes and visibility changes name a receipt
 *   handle; one that is not the message's latest is refused (ReceiptHandleIsInvalid), and the
 *   test can make the next deletes of a message fail (retriable, or not).
 * - the adapter: each received message is a record with a new lease (its pos; next_pos = pos +
 *   1), its group as the record's meta and key. queue_ack deletes in requests of at most 10
 *   entries on the next tick, retries failed entries with backoff and the latest receipt handle
 *   (up to max_delete_attempts), and reports each lease once; queue_release forgets the lease
 *   and, with a visibility >= 0, changes it; queue_hold extends a lease before it runs out (at
 *   half the visibility left), by at most visibility_ms, never past the hold; a lease that runs
 *   out while held by the mapping, or whose extension is refused, is reported lost once.
 *
 * A tick timer (every tick_real_ms of real time, reading the fake clock) does the time-driven
 * work: sending deletes and visibility changes, extending, noticing lost leases, and waking the
 * mapping (part_wake) when a message became receivable after fetch returned 0. The test reads a
 * log of every call the mapping made (ack, release, hold: one entry per lease; every fetch) and
 * every entry of every request the adapter sent to the queue (delete, visibility change) with its
 * result. queue_limits tells BatchSize 10 at most in FIFO mode (fifo), and the visibility timeout
 * when the test sets tell_visibility (or later, fake_queue_tell_visibility).
 *
 * The event is {"Records":[{"messageId":"m<i>","receiptHandle":"rh-<i>-<n>","body":"...",
 * "attributes":{"ApproximateReceiveCount":"<n>"[,"MessageGroupId":"g"]}}, ...]}; the item id
 * is the messageId; the filter document is {"body": the body parsed as JSON when it is JSON}.
 * One fake_queue is current at a time. Loop thread. */

#define FAKE_QUEUE_SCHEME "fakeq://"
#define FAKE_QUEUE_BATCH  10 /* entries per delete or visibility request, as SQS allows */

struct fake_queue_msg {
    char *body;
    size_t len;
    char group[16];
    bool deleted;
    int64_t visible_at;  /* monotonic ms from which it can be received */
    uint32_t receives;   /* ApproximateReceiveCount; its latest receipt handle is rh-<i>-<it> */
    size_t fail_deletes; /* the next n delete entries for it fail */
    bool fail_fatal;     /* ... and cannot succeed on a retry (SenderFault) */
};

enum fake_queue_lease_state {
    FAKE_QUEUE_LEASED,   /* the mapping holds it */
    FAKE_QUEUE_DELETING, /* acked: a delete is waiting or being retried */
    FAKE_QUEUE_ENDED,    /* reported, released, or ended by stop */
};

struct fake_queue_lease {
    size_t msg;
    uint32_t handle;    /* the receive it came with: receipt handle rh-<msg>-<handle> */
    int64_t expires_at; /* when its visibility runs out, as the adapter knows it */
    int64_t hold_until; /* queue_hold's until_ms; 0: not held */
    enum fake_queue_lease_state state;
    bool lost; /* SL_QUEUE_LEASE_LOST reported */
    size_t delete_attempts;
    int64_t retry_at; /* DELETING: next attempt */
};

enum fake_queue_call_kind {
    FAKE_QUEUE_CALL_ACK,       /* the mapping's queue_ack, one entry per lease */
    FAKE_QUEUE_CALL_RELEASE,   /* queue_release; value: visible_in_ms */
    FAKE_QUEUE_CALL_HOLD,      /* queue_hold; value: until_ms */
    FAKE_QUEUE_REQ_DELETE,     /* one entry of a delete request the adapter sent */
    FAKE_QUEUE_REQ_VISIBILITY, /* one entry of a visibility change (release or extension);
                                * value: the new visibility in ms */
};

struct fake_queue_call {
    enum fake_queue_call_kind kind;
    int64_t at_ms;  /* fake clock, monotonic */
    uint64_t lease; /* 0 for a release's visibility change after the lease ended */
    size_t msg;
    uint32_t handle; /* REQ_*: the receipt handle's receive number */
    int64_t value;
    size_t request; /* REQ_*: entries of one request share it (1, 2, ...) */
    int result;     /* REQ_*: 0, or the entry's SL_E* */
};

/* One fetch the mapping made. */
struct fake_queue_fetch {
    size_t max_records; /* what the mapping asked for at most */
    size_t given;       /* records appended */
    size_t unheld;      /* leases the mapping held then that no queue_hold had covered yet:
                           received, not yet invoked */
};

struct fake_queue {
    struct sl_source_env env;   /* the mapping's, copied by init */
    int64_t visibility_ms;      /* the queue's VisibilityTimeout (default 30 s) */
    int64_t tick_real_ms;       /* how often the tick runs, real time (default 1) */
    size_t max_delete_attempts; /* per lease (default 5) */
    bool fifo;                  /* a FIFO queue: queue_limits says BatchSize 10 at most */
    bool tell_visibility;       /* queue_limits tells visibility_ms */
    bool inited;
    bool started;
    bool stopped;
    struct sl_part *part; /* the one partition (the queue), while the mapping has it */
    bool wants_wake;
    uv_timer_t tick;
    struct fake_queue_msg *msgs;
    size_t n_msgs;
    size_t cap_msgs;
    struct fake_queue_lease *leases; /* lease id i + 1 is leases[i] */
    size_t n_leases;
    size_t cap_leases;
    struct fake_queue_call *calls;
    size_t n_calls;
    size_t cap_calls;
    size_t requests;                  /* requests sent */
    struct fake_queue_fetch *fetches; /* every fetch, in order */
    size_t n_fetches;
    size_t cap_fetches;
    /* visibility changes of releases waiting for the next tick */
    struct fake_queue_call *vis_pending;
    size_t n_vis_pending;
    size_t cap_vis_pending;
};

extern const struct sl_source_ops fake_queue_ops;

/* Registers fake_queue_ops for "fakeq://" (sl_source_register_extra; one extra source at a
 * time, so a test uses either this or fake_stream_register). */
void fake_queue_register(void);

/* Clears fq, sets the defaults, and makes it the current fake. */
void fake_queue_init(struct fake_queue *fq);
/* Frees what fq holds (after the mapping using it was freed). */
void fake_queue_fini(struct fake_queue *fq);

/* Sends a message (body copied) in group ("" or NULL: none). Returns its index. */
size_t fake_queue_send(struct fake_queue *fq, const char *group, const char *body);
/* The index of the first message with this body, or SIZE_MAX. */
size_t fake_queue_find(const struct fake_queue *fq, const char *body);
/* The next n delete entries for message i fail: retriably (a service error on that entry), or
 * for good (fatal: its receipt handle is refused whatever the adapter does). */
void fake_queue_fail_deletes(struct fake_queue *fq, size_t i, size_t n, bool fatal);
/* The queue's visibility timeout becomes visibility_ms and is told from now on, as SQS learns
 * it after start: the adapter calls env->queue_limits_changed (from the test, not from inside a
 * source operation). */
void fake_queue_tell_visibility(struct fake_queue *fq, int64_t visibility_ms);
/* How many logged calls of kind name message i (SIZE_MAX: any message), and how many of them
 * failed (REQ_* only). */
size_t fake_queue_count(const struct fake_queue *fq, enum fake_queue_call_kind kind, size_t i);
size_t
fake_queue_count_failed(const struct fake_queue *fq, enum fake_queue_call_kind kind, size_t i);

#endif

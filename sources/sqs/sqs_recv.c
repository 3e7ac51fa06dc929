/* SPDX-License-Identifier: Apache-2.0 */
/* sqs_recv.c: the SQS source's fetch. One ReceiveMessage long poll at a time runs on the loop
 * in the background of fetch (WaitTimeSeconds from wait_time, MaxNumberOfMessages min(10, what
 * the mapping could take when it asked), all system and message attributes): fetch hands out
 * what the last poll brought, or starts the next poll and returns 0, and part_wake follows when
 * messages come. So the mapping sees the queue caught up (quiet, for --until-idle) while a poll
 * waits, and holds no more than it asked for. An empty answer starts the next poll (at most one
 * a second). Each
 * message handed out becomes one record with a new lease (its position, sl_queue_rec_lease),
 * whose visibility counts from when its receive was sent: the body as the record's bytes; as
 * its meta the FIFO group (the record's key; empty for a standard queue), the MessageId (the
 * itemIdentifier) and the event's head and tail (event_sqs.h), prepared once here. The answer
 * is kept as it came, indexed in place (json_scan.h) rather than built into a cJSON tree, and
 * each message is decoded from it when it is handed out. A failed
 * receive is tried again after a backoff (throttling and service errors from 200 ms doubling to
 * 20 s; a queue that does not exist and refused credentials every 30 s), with a warning when it
 * starts (once a minute while it lasts) and a line when it ends, never a 0 ms loop. Messages
 * received and not handed out when the source stops come back after their visibility timeout.
 * Loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "encoder.h"
#include "event_sqs.h"
#include "log.h"
#include "sqs_int.h"

#define SQS_META_HDR 16 /* four u32 lengths: group, id, head, tail */

void sqs_meta_read(const struct sl_recq *q, const struct sl_record *rec, struct sqs_meta *ret)
{
    const char *m = sl_recq_meta(q, rec);
    uint32_t len[4];
    memcpy(len, m, sizeof(len));
    const char *p = m + SQS_META_HDR;
    ret->group = p;
    ret->group_len = len[0];
    p += len[0];
    ret->msg_id = p;
    ret->msg_id_len = len[1];
    p += len[1];
    ret->head = p;
    ret->head_len = len[2];
    p += len[2];
    ret->tail = p;
    ret->tail_len = len[3];
}

/* Writes message's meta into meta (replacing it). */
static int sqs_meta_build(struct sqs_ctx *ctx,
                          size_t message,
                          const char *group,
                          const char *msg_id,
                          struct sl_buf *meta,
                          struct sl_buf *head,
                          struct sl_buf *tail)
{
    sl_buf_truncate(meta, 0);
    sl_buf_truncate(head, 0);
    sl_buf_truncate(tail, 0);
    int r = sl_event_sqs_prepare(&ctx->recv_scan, message, ctx->arn, ctx->region, head, tail);
    if (r < 0) {
        return r;
    }
    uint32_t len[4] = {(uint32_t)strlen(group), (uint32_t)strlen(msg_id), (uint32_t)head->len,
                       (uint32_t)tail->len};
    r = sl_buf_append(meta, len, sizeof(len));
    r = r ? r : sl_buf_append(meta, group, len[0]);
    r = r ? r : sl_buf_append(meta, msg_id, len[1]);
    r = r ? r : sl_buf_append(meta, head->data, head->len);
    r = r ? r : sl_buf_append(meta, tail->data, tail->len);
    return r;
}

/* The string member name of token obj decoded into out (replacing it): out's text, or NULL when
 * there is no such string (or no memory for it). */
static const char *
sqs_str(const struct sl_json_scan *s, size_t obj, const char *name, struct sl_buf *out)
{
    size_t v = sl_json_scan_member(s, obj, name);
    sl_buf_truncate(out, 0);
    if (!sl_json_scan_is(s, v, SL_JSON_STRING) || sl_json_scan_str(s, v, out) < 0) {
        return NULL;
    }
    return out->data ? out->data : "";
}

/* The system attribute name of message, decoded into out, or NULL. */
static const char *
sqs_attr(struct sqs_ctx *ctx, size_t message, const char *name, struct sl_buf *out)
{
    const struct sl_json_scan *s = &ctx->recv_scan;
    return sqs_str(s, sl_json_scan_member(s, message, "Attributes"), name, out);
}

void sqs_recv_clear(struct sqs_ctx *ctx)
{
    ctx->received = false;
    ctx->msgs = 0;
    ctx->next_msg = 0;
    sl_buf_fini(&ctx->recv_text);
    sl_json_scan_fini(&ctx->recv_scan);
}

/* Appends up to max of the received messages to part's queue, each with a new lease. Returns
 * how many. */
static int sqs_hand_out(struct sqs_ctx *ctx, size_t max)
{
    const struct sl_json_scan *s = &ctx->recv_scan;
    struct sl_buf meta, head, tail, id, rh, body, attr;
    sl_buf_init(&meta);
    sl_buf_init(&head);
    sl_buf_init(&tail);
    sl_buf_init(&id);
    sl_buf_init(&rh);
    sl_buf_init(&body);
    sl_buf_init(&attr);
    int n = 0;
    int64_t expires_at = ctx->received_at + ctx->queue_visibility_ms;
    for (; ctx->next_msg && (size_t)n < max;
         ctx->next_msg = sl_json_scan_next(s, ctx->msgs, ctx->next_msg)) {
        size_t m = ctx->next_msg;
        if (!sqs_str(s, m, "MessageId", &id) || !sqs_str(s, m, "ReceiptHandle", &rh) ||
            !sqs_str(s, m, "Body", &body)) {
            sl_log_warn(SQS_COMP, ctx->env.inst,
                        "ReceiveMessage %s: a message without MessageId, ReceiptHandle or Body "
                        "skipped (it comes back after its visibility timeout)",
                        ctx->queue_shown);
            continue;
        }
        const char *group = ctx->fifo ? sqs_attr(ctx, m, "MessageGroupId", &attr) : NULL;
        if (sqs_meta_build(ctx, m, group ? group : "", id.data, &meta, &head, &tail) < 0) {
            break; /* out of memory: tried again at the next fetch */
        }
        const char *sent = sqs_attr(ctx, m, "SentTimestamp", &attr);
        int64_t arrival = sent ? strtoll(sent, NULL, 10) : sl_clock_wall_ms(ctx->env.clock);
        const char *count = sqs_attr(ctx, m, "ApproximateReceiveCount", &attr);
        bool again = !count || strcmp(count, "1") != 0;
        struct sqs_lease *l = sqs_lease_new(ctx, id.data, rh.data, expires_at, again);
        if (!l) {
            break;
        }
        uint64_t lease = l->id;
        if (sl_recq_push(&ctx->part->q, body.data ? body.data : "", (uint32_t)body.len, meta.data,
                         (uint32_t)meta.len, &lease, sizeof(lease), arrival, 0) < 0) {
            (void)sqs_queue_release(ctx, ctx->part, &lease, 1, SL_QUEUE_KEEP_VISIBILITY);
            break;
        }
        n++;
    }
    sl_buf_fini(&meta);
    sl_buf_fini(&head);
    sl_buf_fini(&tail);
    sl_buf_fini(&id);
    sl_buf_fini(&rh);
    sl_buf_fini(&body);
    sl_buf_fini(&attr);
    if (!ctx->next_msg) {
        ctx->received = false; /* the answer's room is kept for the next one */
    }
    return n;
}

static void sqs_poll(struct sqs_ctx *ctx);

static void sqs_recv_backoff_cb(uv_timer_t *t)
{
    sqs_poll(t->data);
}

static void sqs_recv_wake_cb(uv_timer_t *t)
{
    struct sqs_ctx *ctx = t->data;
    if (ctx->wants_wake && ctx->part && !ctx->stopped) {
        ctx->wants_wake = false;
        ctx->env.part_wake(ctx->env.owner, ctx->part);
    }
}

static void sqs_recv_done(struct sqs_ctx *ctx,
                          struct sqs_call *call,
                          int err,
                          const char *detail,
                          const struct sl_http_resp *resp)
{
    ctx->receiving = false;
    if (!ctx->part) {
        return;
    }
    char proto[SQS_DETAIL];
    struct sl_json_scan *scan = &ctx->recv_scan;
    if (err == 0) {
        /* kept: the messages are handed out over later fetches */
        sl_buf_truncate(&ctx->recv_text, 0);
        int r = sl_buf_append(&ctx->recv_text, resp->body, resp->body_len);
        r = r ? r : sl_json_scan_parse(scan, ctx->recv_text.data, ctx->recv_text.len);
        if (r < 0 || !sl_json_scan_is(scan, SL_JSON_SCAN_ROOT, SL_JSON_OBJECT)) {
            err = SL_EPROTO;
            (void)snprintf(proto, sizeof(proto), "ReceiveMessage %s: the answer is not JSON",
                           ctx->queue_shown);
            detail = proto;
        }
    }
    if (err == 0) {
        if (ctx->recv_failures > 0) {
            sl_log_info(SQS_COMP, ctx->env.inst, "receiving from %s again", ctx->queue_shown);
        }
        ctx->recv_failures = 0;
        size_t msgs = sl_json_scan_member(scan, SL_JSON_SCAN_ROOT, "Messages");
        size_t first =
            sl_json_scan_is(scan, msgs, SL_JSON_ARRAY) ? sl_json_scan_first(scan, msgs) : 0;
        if (ctx->recv_paused) {
            /* polling paused (sqs_recv_pause): give back what came, let the mapping decide */
            struct sl_buf rh;
            sl_buf_init(&rh);
            for (size_t m = first; m; m = sl_json_scan_next(scan, msgs, m)) {
                if (sqs_str(scan, m, "ReceiptHandle", &rh)) {
                    (void)sqs_lease_return(ctx, rh.data);
                }
            }
            sl_buf_fini(&rh);
            if (ctx->wants_wake) {
                ctx->wants_wake = false;
                ctx->env.part_wake(ctx->env.owner, ctx->part);
            }
            return;
        }
        if (!first) {
            /* nothing came: poll again, at once after a long poll, else (wait_time 0, or a
             * server that answers early) no more than once a second */
            int64_t took = sqs_now(ctx) - call->sent_at;
            if (took >= 1000) {
                sqs_poll(ctx);
            } else {
                (void)uv_timer_start(ctx->recv_timer, sqs_recv_backoff_cb, (uint64_t)(1000 - took),
                                     0);
            }
            return;
        }
        ctx->received = true;
        ctx->msgs = msgs;
        ctx->next_msg = first;
        ctx->received_at = call->sent_at;
        if (ctx->wants_wake) {
            ctx->wants_wake = false;
            ctx->env.part_wake(ctx->env.owner, ctx->part);
        }
        return;
    }
    ctx->recv_failures++;
    bool slow = err == SL_ENOTFOUND || err == SL_EAUTH;
    int64_t delay = slow ? SQS_SLOW_RETRY_MS : sqs_backoff_ms(ctx->recv_failures, SQS_RETRY_MAX_MS);
    int64_t now = sqs_now(ctx);
    if (ctx->recv_failures == 1 || now - ctx->last_recv_warn >= 60000) {
        ctx->last_recv_warn = now;
        sl_log_warn(SQS_COMP, ctx->env.inst, "%s; trying again in %" PRId64 " ms%s", detail, delay,
                    err == SL_ENOTFOUND ? " (does the queue exist?)" : "");
    }
    (void)uv_timer_start(ctx->recv_timer, sqs_recv_backoff_cb, (uint64_t)delay, 0);
}

/* Starts a ReceiveMessage long poll unless one runs, waits for its backoff, or the messages of
 * the last one are still to be handed out. */
static void sqs_poll(struct sqs_ctx *ctx)
{
    if (ctx->stopped || !ctx->part || ctx->receiving || ctx->received || ctx->recv_paused ||
        uv_is_active((uv_handle_t *)ctx->recv_timer)) {
        return;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(&b, ctx->queue_url, strlen(ctx->queue_url));
    r = r ? r
          : sl_buf_printf(&b, ",\"MaxNumberOfMessages\":%zu,\"WaitTimeSeconds\":%" PRId64,
                          ctx->poll_max, ctx->wait_ms / 1000);
    if (ctx->visibility_ms > 0) {
        r = r ? r : sl_buf_printf(&b, ",\"VisibilityTimeout\":%" PRId64, ctx->visibility_ms / 1000);
    }
    /* AttributeNames too, for servers that predate MessageSystemAttributeNames */
    r = r ? r
          : sl_buf_puts(&b, ",\"AttributeNames\":[\"All\"],\"MessageSystemAttributeNames\":"
                            "[\"All\"],\"MessageAttributeNames\":[\"All\"]}");
    r = r ? r : sqs_call_start(ctx, SQS_CALL_RECEIVE, &b, sqs_recv_done, NULL);
    sl_buf_fini(&b);
    if (r < 0) {
        ctx->recv_failures++;
        (void)uv_timer_start(ctx->recv_timer, sqs_recv_backoff_cb,
                             (uint64_t)sqs_backoff_ms(ctx->recv_failures, SQS_RETRY_MAX_MS), 0);
        return;
    }
    ctx->receiving = true;
}

void sqs_recv_pause(struct sqs_ctx *ctx)
{
    ctx->recv_paused = true;
    (void)uv_timer_stop(ctx->recv_timer); /* a backoff or a wait between empty polls */
    if (!ctx->receiving && ctx->wants_wake && ctx->part) {
        /* no poll to wait for: let the mapping fetch again (a later turn: the timer) */
        (void)uv_timer_start(ctx->recv_timer, sqs_recv_wake_cb, 0, 0);
    }
}

/* Hands out what the last receive brought (up to max_records); when nothing is left, starts
 * the next long poll and returns 0: part_wake follows when messages come. The poll runs in the
 * background, so the mapping counts the queue as caught up (quiet for --until-idle) while it
 * waits. */
int sqs_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct sqs_ctx *ctx = vctx;
    (void)max_bytes;
    if (part != ctx->part || ctx->stopped || max_records == 0) {
        return 0;
    }
    ctx->recv_paused = false;
    if (ctx->received) {
        int n = sqs_hand_out(ctx, max_records);
        if (n > 0 || ctx->received) {
            return n > 0 ? n : SL_ENOMEM; /* none handed out: the mapping tries again later */
        }
    }
    ctx->poll_max = max_records < SQS_ENTRIES_MAX ? max_records : SQS_ENTRIES_MAX;
    ctx->wants_wake = true;
    sqs_poll(ctx);
    return 0;
}

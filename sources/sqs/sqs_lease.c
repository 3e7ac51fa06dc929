/* SPDX-License-Identifier: Apache-2.0 */
/* sqs_lease.c: the SQS source's leases (sources/README.md "The queue model"): a table from
 * lease number to the message's id, its latest receipt handle, when its visibility runs out and
 * until when the mapping holds it; and the work they cause at SQS, batched 10 entries a
 * request:
 *   - queue_ack: DeleteMessageBatch, sent on the next loop turn (never held back to fill a
 *     batch). Each entry's outcome is read from the 200 answer: Successful → SL_QUEUE_ACKED;
 *     Failed with SenderFault (ReceiptHandleIsInvalid: SL_ENOTFOUND) → SL_QUEUE_ACK_FAILED;
 *     Failed without it, an entry the answer does not name, or a request that failed as a
 *     whole → retried with backoff and the latest receipt handle, up to delete_attempts, then
 *     SL_QUEUE_ACK_FAILED (SL_ETIMEDOUT). Exactly one report per lease, always from a callback.
 *   - queue_hold: a heartbeat ChangeMessageVisibilityBatch when half the visibility is left, by
 *     at most the queue's VisibilityTimeout, never past the hold rounded up to a second; a
 *     refused extension → SL_QUEUE_LEASE_LOST.
 *   - a lease the mapping still holds whose visibility ran out → SL_QUEUE_LEASE_LOST, once.
 *   - queue_release: the lease is forgotten; with a visibility >= 0, one
 *     ChangeMessageVisibilityBatch entry (best effort: when it fails, the message comes back
 *     when its visibility runs out). (With visibility 0, a drain, the adapter in sqs.c also
 *     pauses polling: sqs_recv_pause.)
 * One timer does the time-driven work, armed for the earliest thing due. Loop thread. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "encoder.h"
#include "log.h"
#include "sqs_int.h"
#include "sqs_wire.h"

/* --- the table: open addressing by lease id, and a list in receive order --- */

static size_t sqs_slot_of(const struct sqs_ctx *ctx, uint64_t id)
{
    uint64_t h = id * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 17) & (ctx->n_slots - 1);
}

static int sqs_slots_grow(struct sqs_ctx *ctx)
{
    size_t n = ctx->n_slots ? ctx->n_slots * 2 : 64;
    struct sqs_lease **slots = sl_calloc(n, sizeof(*slots));
    if (!slots) {
        return SL_ENOMEM;
    }
    struct sqs_lease **old = ctx->slots;
    size_t old_n = ctx->n_slots;
    ctx->slots = slots;
    ctx->n_slots = n;
    for (size_t i = 0; i < old_n; i++) {
        if (old[i]) {
            size_t s = sqs_slot_of(ctx, old[i]->id);
            while (ctx->slots[s]) {
                s = (s + 1) & (n - 1);
            }
            ctx->slots[s] = old[i];
        }
    }
    sl_free(old);
    return 0;
}

struct sqs_lease *sqs_lease_find(struct sqs_ctx *ctx, uint64_t id)
{
    if (ctx->n_slots == 0) {
        return NULL;
    }
    for (size_t s = sqs_slot_of(ctx, id); ctx->slots[s]; s = (s + 1) & (ctx->n_slots - 1)) {
        if (ctx->slots[s]->id == id) {
            return ctx->slots[s];
        }
    }
    return NULL;
}

static void sqs_lease_free(struct sqs_lease *l)
{
    sl_free(l->msg_id);
    sl_free(l->handle);
    sl_free(l);
}

/* Takes l out of the table and frees it. */
static void sqs_lease_remove(struct sqs_ctx *ctx, struct sqs_lease *l)
{
    size_t mask = ctx->n_slots - 1;
    size_t s = sqs_slot_of(ctx, l->id);
    while (ctx->slots[s] != l) {
        s = (s + 1) & mask;
    }
    ctx->slots[s] = NULL;
    /* move back the entries after it that belong before the hole (backward shift) */
    for (size_t j = (s + 1) & mask; ctx->slots[j]; j = (j + 1) & mask) {
        size_t home = sqs_slot_of(ctx, ctx->slots[j]->id);
        bool between = s <= j ? (home > s && home <= j) : (home > s || home <= j);
        if (!between) {
            ctx->slots[s] = ctx->slots[j];
            ctx->slots[j] = NULL;
            s = j;
        }
    }
    if (l->prev) {
        l->prev->next = l->next;
    } else {
        ctx->leases = l->next;
    }
    if (l->next) {
        l->next->prev = l->prev;
    } else {
        ctx->leases_tail = l->prev;
    }
    ctx->n_leases--;
    ctx->n_deleting -= l->state == SQS_DELETING;
    sqs_lease_free(l);
}

static void sqs_tick_at(struct sqs_ctx *ctx, int64_t at);

struct sqs_lease *sqs_lease_new(
    struct sqs_ctx *ctx, const char *msg_id, const char *handle, int64_t expires_at, bool again)
{
    if ((ctx->n_leases + 1) * 2 > ctx->n_slots && sqs_slots_grow(ctx) < 0) {
        return NULL;
    }
    struct sqs_lease *l = sl_calloc(1, sizeof(*l));
    if (!l || !(l->msg_id = sl_strdup(msg_id)) || !(l->handle = sl_strdup(handle))) {
        if (l) {
            sqs_lease_free(l);
        }
        return NULL;
    }
    /* The same message again: an older lease of it (run out, its delete waiting or retried)
     * must use this newest receipt handle, the only one SQS still honours. */
    for (struct sqs_lease *o = again ? ctx->leases : NULL; o; o = o->next) {
        if (strcmp(o->msg_id, msg_id) == 0) {
            char *h = sl_strdup(handle);
            if (h) {
                sl_free(o->handle);
                o->handle = h;
            }
        }
    }
    l->id = ++ctx->next_lease;
    l->state = SQS_LEASED;
    l->expires_at = expires_at;
    size_t s = sqs_slot_of(ctx, l->id);
    while (ctx->slots[s]) {
        s = (s + 1) & (ctx->n_slots - 1);
    }
    ctx->slots[s] = l;
    l->prev = ctx->leases_tail;
    if (ctx->leases_tail) {
        ctx->leases_tail->next = l;
    } else {
        ctx->leases = l;
    }
    ctx->leases_tail = l;
    ctx->n_leases++;
    sqs_tick_at(ctx, expires_at); /* to notice it run out while the mapping holds it */
    return l;
}

void sqs_lease_clear(struct sqs_ctx *ctx)
{
    while (ctx->leases) {
        sqs_lease_remove(ctx, ctx->leases);
    }
    for (size_t i = 0; i < ctx->n_vis; i++) {
        sl_free(ctx->vis[i].handle);
    }
    ctx->n_vis = 0;
}

void sqs_lease_fini(struct sqs_ctx *ctx)
{
    sqs_lease_clear(ctx);
    sl_free(ctx->slots);
    sl_free(ctx->vis);
    ctx->slots = NULL;
    ctx->vis = NULL;
    ctx->n_slots = ctx->cap_vis = 0;
}

/* --- reports --- */

static void sqs_report(struct sqs_ctx *ctx, uint64_t id, enum sl_queue_report what, int err)
{
    if (ctx->part && !ctx->stopped) {
        ctx->env.queue_report(ctx->env.owner, ctx->part, id, what, err);
    }
}

/* --- the timer --- */

static void sqs_tick_cb(uv_timer_t *t);

/* Makes the timer run at `at` (monotonic ms) at the latest. */
static void sqs_tick_at(struct sqs_ctx *ctx, int64_t at)
{
    if (ctx->stopped || !ctx->inited) {
        return;
    }
    if (ctx->tick_armed && ctx->tick_at <= at) {
        return;
    }
    int64_t now = sqs_now(ctx);
    ctx->tick_armed = true;
    ctx->tick_at = at;
    (void)uv_timer_start(ctx->tick, sqs_tick_cb, (uint64_t)(at > now ? at - now : 0), 0);
}

/* How long before its visibility runs out a held lease is extended. */
static int64_t sqs_ahead_ms(const struct sqs_ctx *ctx)
{
    int64_t a = ctx->queue_visibility_ms / 2;
    return a < 500 ? 500 : a;
}

/* --- deletes --- */

static void sqs_delete_entry_failed(struct sqs_ctx *ctx, struct sqs_lease *l, int err, bool final)
{
    uint64_t id = l->id;
    l->busy = false;
    if (!final && l->attempts < (unsigned)ctx->delete_retries) {
        l->due_at = sqs_now(ctx) + sqs_backoff_ms(l->attempts, SQS_RETRY_MAX_MS);
        return;
    }
    sqs_lease_remove(ctx, l);
    sqs_report(ctx, id, SL_QUEUE_ACK_FAILED, final ? err : SL_ETIMEDOUT);
}

static void sqs_delete_done(struct sqs_ctx *ctx,
                            struct sqs_call *call,
                            int err,
                            const char *detail,
                            const struct sl_http_resp *resp)
{
    int outcome[SQS_ENTRIES_MAX];
    bool final[SQS_ENTRIES_MAX] = {false};
    for (size_t i = 0; i < call->n; i++) {
        outcome[i] = err ? err : SL_EPROTO; /* not named by the answer: retried */
    }
    if (err == 0) {
        struct sl_sqs_wire_entry e[SQS_ENTRIES_MAX];
        struct sl_sqs_wire_answer a;
        sl_sqs_wire_entries(resp->body, resp->body_len, call->n, e, &a);
        for (size_t i = 0; i < call->n; i++) {
            if (!e[i].named || e[i].ok) {
                outcome[i] = e[i].ok ? 0 : SL_EPROTO;
                continue;
            }
            final[i] = e[i].sender_fault;
            outcome[i] = strcmp(e[i].code, "ReceiptHandleIsInvalid") == 0 ? SL_ENOTFOUND
                         : final[i]                                       ? SL_EREJECTED
                                                                          : SL_EREMOTE;
            sl_log_debug(SQS_COMP, ctx->env.inst, "DeleteMessageBatch %s: entry %zu: %s%s",
                         ctx->queue_shown, i, *e[i].code ? e[i].code : "failed",
                         final[i] ? "" : " (retried)");
        }
        sl_sqs_wire_answer_fini(&a);
    } else {
        sl_log_debug(SQS_COMP, ctx->env.inst, "%s (retried)", detail);
    }
    for (size_t i = 0; i < call->n; i++) {
        struct sqs_lease *l = sqs_lease_find(ctx, call->leases[i]);
        if (!l || l->state != SQS_DELETING) {
            continue;
        }
        if (outcome[i] == 0) {
            uint64_t id = l->id;
            sqs_lease_remove(ctx, l);
            sqs_report(ctx, id, SL_QUEUE_ACKED, 0);
        } else {
            sqs_delete_entry_failed(ctx, l, outcome[i], final[i]);
        }
    }
    sqs_tick_at(ctx, sqs_now(ctx));
}

/* --- visibility changes --- */

static void sqs_extend_done(struct sqs_ctx *ctx,
                            struct sqs_call *call,
                            int err,
                            const char *detail,
                            const struct sl_http_resp *resp)
{
    bool ok[SQS_ENTRIES_MAX] = {false};
    bool refused[SQS_ENTRIES_MAX] = {false};
    if (err == 0) {
        struct sl_sqs_wire_entry e[SQS_ENTRIES_MAX];
        struct sl_sqs_wire_answer a;
        sl_sqs_wire_entries(resp->body, resp->body_len, call->n, e, &a);
        sl_sqs_wire_answer_fini(&a);
        for (size_t i = 0; i < call->n; i++) {
            ok[i] = e[i].ok;
            refused[i] = e[i].named && !e[i].ok;
        }
    } else {
        sl_log_debug(SQS_COMP, ctx->env.inst, "%s (tried again)", detail);
    }
    int64_t now = sqs_now(ctx);
    for (size_t i = 0; i < call->n; i++) {
        struct sqs_lease *l = sqs_lease_find(ctx, call->leases[i]);
        if (!l || !l->busy) {
            continue;
        }
        l->busy = false;
        if (ok[i]) {
            l->expires_at = call->sent_at + call->value[i];
        } else if (refused[i] && l->state == SQS_LEASED && !l->lost) {
            l->lost = true;
            sqs_report(ctx, l->id, SL_QUEUE_LEASE_LOST, SL_ENOTFOUND);
        } else if (!refused[i]) {
            l->due_at = now + SQS_RETRY_BASE_MS * 5; /* the request failed: try again soon */
        }
    }
    sqs_tick_at(ctx, now);
}

static void sqs_release_done(struct sqs_ctx *ctx,
                             struct sqs_call *call,
                             int err,
                             const char *detail,
                             const struct sl_http_resp *resp)
{
    (void)resp;
    /* best effort: what failed comes back when its visibility runs out */
    sl_log_debug(SQS_COMP, ctx->env.inst, "visibility of %zu released messages: %s", call->n,
                 err ? detail : "changed");
}

/* --- sending what is due --- */

/* Opens a batch request's body for the queue. */
static int sqs_batch_open(struct sqs_ctx *ctx, struct sl_buf *b)
{
    sl_buf_truncate(b, 0);
    int r = sl_buf_puts(b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(b, ctx->queue_url, strlen(ctx->queue_url));
    return r ? r : sl_buf_puts(b, ",\"Entries\":[");
}

/* Appends entry i: {"Id":"i","ReceiptHandle":..[,"VisibilityTimeout":secs]}. */
static int sqs_batch_entry(struct sl_buf *b, size_t i, const char *handle, int64_t secs)
{
    int r = sl_buf_puts(b, i ? ",{\"Id\":\"" : "{\"Id\":\"");
    r = r ? r : sl_enc_u64(b, i);
    r = r ? r : sl_buf_puts(b, "\",\"ReceiptHandle\":");
    r = r ? r : sl_enc_json_str(b, handle, strlen(handle));
    if (secs >= 0) {
        r = r ? r : sl_buf_puts(b, ",\"VisibilityTimeout\":");
        r = r ? r : sl_enc_u64(b, (uint64_t)secs);
    }
    return r ? r : sl_buf_puts(b, "}");
}

/* Sends call's body (entries added); on failure the entries' leases are left as they were
 * (not busy) and tried again at the next tick. */
static int sqs_batch_send(struct sqs_ctx *ctx,
                          enum sqs_call_kind kind,
                          struct sl_buf *b,
                          const uint64_t *ids,
                          const int64_t *values,
                          size_t n,
                          sqs_call_cb cb)
{
    int r = sl_buf_puts(b, "]}");
    struct sqs_call *call = NULL;
    r = r ? r : sqs_call_start(ctx, kind, b, cb, &call);
    if (r < 0) {
        return r;
    }
    call->n = n;
    if (ids) {
        memcpy(call->leases, ids, n * sizeof(*ids));
    }
    if (values) {
        memcpy(call->value, values, n * sizeof(*values));
    }
    for (size_t i = 0; ids && i < n; i++) {
        struct sqs_lease *l = sqs_lease_find(ctx, ids[i]);
        l->busy = true;
        if (kind == SQS_CALL_DELETE) {
            l->attempts++;
        }
    }
    return 0;
}

static void sqs_send_releases(struct sqs_ctx *ctx, struct sl_buf *b)
{
    size_t done = 0;
    while (done < ctx->n_vis) {
        size_t n = ctx->n_vis - done < SQS_ENTRIES_MAX ? ctx->n_vis - done : SQS_ENTRIES_MAX;
        int r = sqs_batch_open(ctx, b);
        for (size_t i = 0; i < n; i++) {
            r = r ? r : sqs_batch_entry(b, i, ctx->vis[done + i].handle, ctx->vis[done + i].secs);
        }
        r = r ? r : sqs_batch_send(ctx, SQS_CALL_RELEASE, b, NULL, NULL, n, sqs_release_done);
        if (r < 0) {
            break; /* tried again at the next tick */
        }
        for (size_t i = 0; i < n; i++) {
            sl_free(ctx->vis[done + i].handle);
        }
        done += n;
    }
    memmove(ctx->vis, ctx->vis + done, (ctx->n_vis - done) * sizeof(*ctx->vis));
    ctx->n_vis -= done;
}

/* Sends the deletes and heartbeats due now; returns when the next thing is due (INT64_MAX:
 * nothing). */
static int64_t
sqs_send_due(struct sqs_ctx *ctx, int64_t now, struct sl_buf *del, struct sl_buf *ext)
{
    uint64_t del_ids[SQS_ENTRIES_MAX], ext_ids[SQS_ENTRIES_MAX];
    int64_t ext_ms[SQS_ENTRIES_MAX];
    size_t n_del = 0, n_ext = 0;
    int64_t next = INT64_MAX;
    int64_t ahead = sqs_ahead_ms(ctx);
    for (struct sqs_lease *l = ctx->leases; l; l = l->next) {
        if (l->busy) {
            continue;
        }
        if (l->state == SQS_DELETING) {
            if (l->due_at > now) {
                next = l->due_at < next ? l->due_at : next;
                continue;
            }
            if (n_del == 0 && sqs_batch_open(ctx, del) < 0) {
                break;
            }
            if (sqs_batch_entry(del, n_del, l->handle, -1) < 0) {
                break;
            }
            del_ids[n_del++] = l->id;
            if (n_del == SQS_ENTRIES_MAX) {
                (void)sqs_batch_send(ctx, SQS_CALL_DELETE, del, del_ids, NULL, n_del,
                                     sqs_delete_done);
                n_del = 0;
            }
            continue;
        }
        if (l->lost) {
            continue;
        }
        bool held = l->hold_until > l->expires_at && l->expires_at > now;
        int64_t at = held ? l->expires_at - ahead : l->expires_at;
        at = l->due_at > at ? l->due_at : at;
        if (!held || at > now) {
            next = at < next ? at : next;
            continue;
        }
        /* a heartbeat: by at most the queue's timeout, never past the hold (whole seconds) */
        int64_t want = (l->hold_until - now + 999) / 1000 * 1000;
        if (want > ctx->queue_visibility_ms) {
            want = ctx->queue_visibility_ms;
        }
        if (n_ext == 0 && sqs_batch_open(ctx, ext) < 0) {
            break;
        }
        if (sqs_batch_entry(ext, n_ext, l->handle, want / 1000) < 0) {
            break;
        }
        ext_ms[n_ext] = want;
        ext_ids[n_ext++] = l->id;
        if (n_ext == SQS_ENTRIES_MAX) {
            (void)sqs_batch_send(ctx, SQS_CALL_EXTEND, ext, ext_ids, ext_ms, n_ext,
                                 sqs_extend_done);
            n_ext = 0;
        }
    }
    if (n_del > 0) {
        (void)sqs_batch_send(ctx, SQS_CALL_DELETE, del, del_ids, NULL, n_del, sqs_delete_done);
    }
    if (n_ext > 0) {
        (void)sqs_batch_send(ctx, SQS_CALL_EXTEND, ext, ext_ids, ext_ms, n_ext, sqs_extend_done);
    }
    return next;
}

/* Reports the leases the mapping holds whose visibility ran out (not in a request now). */
static void sqs_report_lost(struct sqs_ctx *ctx, int64_t now)
{
    uint64_t ids[64];
    size_t n = 0;
    for (struct sqs_lease *l = ctx->leases; l && n < 64; l = l->next) {
        if (l->state == SQS_LEASED && !l->lost && !l->busy && l->expires_at <= now) {
            l->lost = true;
            ids[n++] = l->id;
        }
    }
    for (size_t i = 0; i < n; i++) {
        sqs_report(ctx, ids[i], SL_QUEUE_LEASE_LOST, SL_ETIMEDOUT);
    }
    if (n == 64) {
        sqs_tick_at(ctx, now);
    }
}

static void sqs_tick_cb(uv_timer_t *t)
{
    struct sqs_ctx *ctx = t->data;
    ctx->tick_armed = false;
    if (ctx->stopped || !ctx->queue_url) {
        return;
    }
    int64_t now = sqs_now(ctx);
    struct sl_buf del, ext;
    sl_buf_init(&del);
    sl_buf_init(&ext);
    if (ctx->n_vis > 0) {
        sqs_send_releases(ctx, &del);
    }
    int64_t next = sqs_send_due(ctx, now, &del, &ext);
    sl_buf_fini(&del);
    sl_buf_fini(&ext);
    sqs_report_lost(ctx, now);
    if (ctx->n_vis > 0) {
        next = now + SQS_RETRY_BASE_MS; /* a release that could not be sent */
    }
    if (next != INT64_MAX) {
        sqs_tick_at(ctx, next);
    }
}

/* --- the operations --- */

int sqs_queue_ack(void *vctx, struct sl_part *part, const uint64_t *leases, size_t n)
{
    struct sqs_ctx *ctx = vctx;
    (void)part;
    int64_t now = sqs_now(ctx);
    for (size_t i = 0; i < n; i++) {
        struct sqs_lease *l = sqs_lease_find(ctx, leases[i]);
        if (l && l->state == SQS_LEASED) {
            l->state = SQS_DELETING;
            l->due_at = now;
            l->attempts = 0;
            ctx->n_deleting++;
        }
    }
    sqs_tick_at(ctx, now);
    return 0;
}

/* Makes room for n more visibility changes. */
static int sqs_vis_reserve(struct sqs_ctx *ctx, size_t n)
{
    if (ctx->n_vis + n <= ctx->cap_vis) {
        return 0;
    }
    size_t cap = ctx->cap_vis ? ctx->cap_vis : 16;
    while (cap < ctx->n_vis + n) {
        cap *= 2;
    }
    struct sqs_vis *v = sl_realloc(ctx->vis, cap * sizeof(*v));
    if (!v) {
        return SL_ENOMEM;
    }
    ctx->vis = v;
    ctx->cap_vis = cap;
    return 0;
}

int sqs_lease_return(struct sqs_ctx *ctx, const char *handle)
{
    char *h = sl_strdup(handle);
    if (!h || sqs_vis_reserve(ctx, 1) < 0) {
        sl_free(h);
        return SL_ENOMEM;
    }
    ctx->vis[ctx->n_vis++] = (struct sqs_vis){h, 0};
    sqs_tick_at(ctx, sqs_now(ctx));
    return 0;
}

int sqs_queue_release(
    void *vctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t visible_in_ms)
{
    struct sqs_ctx *ctx = vctx;
    (void)part;
    sl_log_debug(SQS_COMP, ctx->env.inst, "release %zu leases, visibility %" PRId64 " ms", n,
                 visible_in_ms);
    if (visible_in_ms >= 0 && sqs_vis_reserve(ctx, n) < 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct sqs_lease *l = sqs_lease_find(ctx, leases[i]);
        if (!l || l->state != SQS_LEASED) {
            continue;
        }
        if (visible_in_ms >= 0) {
            /* the handle moves to the change; the lease goes */
            ctx->vis[ctx->n_vis++] = (struct sqs_vis){l->handle, (visible_in_ms + 999) / 1000};
            l->handle = NULL;
        }
        sqs_lease_remove(ctx, l);
    }
    if (ctx->n_vis > 0) {
        sqs_tick_at(ctx, sqs_now(ctx));
    }
    return 0;
}

int sqs_queue_hold(
    void *vctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t until_ms)
{
    struct sqs_ctx *ctx = vctx;
    (void)part;
    for (size_t i = 0; i < n; i++) {
        struct sqs_lease *l = sqs_lease_find(ctx, leases[i]);
        if (l && l->state == SQS_LEASED) {
            l->hold_until = until_ms;
        }
    }
    sqs_tick_at(ctx, sqs_now(ctx));
    return 0;
}

bool sqs_queue_idle(void *vctx)
{
    struct sqs_ctx *ctx = vctx;
    if (ctx->n_vis > 0 || (ctx->recv_paused && ctx->receiving)) {
        return false; /* a paused poll may bring back what was returned: wait for it */
    }
    for (const struct sqs_call *c = ctx->calls; c; c = c->next) {
        if (c->kind == SQS_CALL_DELETE || c->kind == SQS_CALL_EXTEND ||
            c->kind == SQS_CALL_RELEASE) {
            return false;
        }
    }
    return ctx->n_deleting == 0;
}

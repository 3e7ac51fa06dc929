/* SPDX-License-Identifier: Apache-2.0 */
/* fake_queue.c: a queue source adapter for unit tests (fake_queue.h), over an in-memory queue
 * with visibility timeouts on the injectable clock. It owns nothing of the engine: it answers
 * the queue model's operations (source.h) as an SQS adapter must, and logs every call the
 * mapping makes and every request entry it sends to its queue, so that tests check the queue
 * contract from the outside. The queue ("fq_srv_*") and the adapter are kept apart: the adapter
 * reaches the queue only by receipt handle, as an SQS adapter reaches SQS. Its use of struct
 * sl_source_ops is the one initializer at the bottom. Loop thread. */
#include "fake_queue.h"
#include "fake_source.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "json.h"
#include "partition.h"

#define FQ_MAX_GROUPS 64

struct fake_queue_ctx {
    struct fake_queue *fq;
};

static struct fake_queue *fq_current;

static int64_t fq_now(const struct fake_queue *fq)
{
    return sl_clock_now_ms(fq->env.clock);
}

static void fq_log(struct fake_queue *fq, struct fake_queue_call c)
{
    fq->calls = fake_source_grow(fq->calls, &fq->cap_calls, fq->n_calls, sizeof(*fq->calls));
    c.at_ms = fq_now(fq);
    fq->calls[fq->n_calls++] = c;
}

static struct fake_queue_lease *fq_lease(struct fake_queue *fq, uint64_t id)
{
    return id >= 1 && id <= fq->n_leases ? &fq->leases[id - 1] : NULL;
}

/* --- the queue: what SQS does --- */

/* Whether message i may be received now: visible, and (in a group) every earlier message of
 * its group deleted or taken in this same receive (taken[j]). */
static bool fq_srv_receivable(const struct fake_queue *fq, size_t i, int64_t now, const bool *taken)
{
    const struct fake_queue_msg *m = &fq->msgs[i];
    if (m->deleted || m->visible_at > now) {
        return false;
    }
    if (m->group[0] == '\0') {
        return true;
    }
    for (size_t j = 0; j < i; j++) {
        const struct fake_queue_msg *e = &fq->msgs[j];
        if (!e->deleted && strcmp(e->group, m->group) == 0 && !(taken && taken[j])) {
            return false;
        }
    }
    return true;
}

/* A delete entry: 0, SL_EREMOTE (retriable), or SL_ENOTFOUND (the handle is refused). */
static int fq_srv_delete(struct fake_queue *fq, size_t i, uint32_t handle)
{
    struct fake_queue_msg *m = &fq->msgs[i];
    if (m->fail_deletes > 0) {
        m->fail_deletes--;
        return m->fail_fatal ? SL_ENOTFOUND : SL_EREMOTE;
    }
    if (m->fail_fatal || handle != m->receives) {
        return SL_ENOTFOUND;
    }
    m->deleted = true;
    return 0;
}

/* A visibility change entry: 0, or SL_ENOTFOUND when the handle is not the latest or the
 * message is not in flight (MessageNotInflight). */
static int fq_srv_visibility(struct fake_queue *fq, size_t i, uint32_t handle, int64_t ms)
{
    struct fake_queue_msg *m = &fq->msgs[i];
    int64_t now = fq_now(fq);
    if (m->deleted || handle != m->receives || m->visible_at <= now) {
        return SL_ENOTFOUND;
    }
    m->visible_at = now + ms;
    return 0;
}

/* --- the adapter's time-driven work --- */

static void fq_report(struct fake_queue *fq, uint64_t id, enum sl_queue_report what, int err)
{
    fq->env.queue_report(fq->env.owner, fq->part, id, what, err);
}

/* Sends the deletes that are due, FAKE_QUEUE_BATCH entries per request, and reports each lease
 * whose delete is final. */
static void fq_send_deletes(struct fake_queue *fq, int64_t now)
{
    size_t in_request = 0;
    for (size_t k = 0; k < fq->n_leases; k++) {
        struct fake_queue_lease *l = &fq->leases[k];
        if (l->state != FAKE_QUEUE_DELETING || l->retry_at > now) {
            continue;
        }
        if (in_request == 0) {
            fq->requests++;
        }
        in_request = (in_request + 1) % FAKE_QUEUE_BATCH;
        /* always the latest receipt handle the adapter got for the message */
        uint32_t handle = fq->msgs[l->msg].receives;
        int r = fq_srv_delete(fq, l->msg, handle);
        fq_log(fq, (struct fake_queue_call){.kind = FAKE_QUEUE_REQ_DELETE,
                                            .lease = k + 1,
                                            .msg = l->msg,
                                            .handle = handle,
                                            .request = fq->requests,
                                            .result = r});
        l->delete_attempts++;
        if (r == SL_EREMOTE && l->delete_attempts < fq->max_delete_attempts) {
            l->retry_at = now + (INT64_C(100) << (l->delete_attempts - 1));
            continue;
        }
        l->state = FAKE_QUEUE_ENDED;
        if (r == 0) {
            fq_report(fq, k + 1, SL_QUEUE_ACKED, 0);
        } else {
            fq_report(fq, k + 1, SL_QUEUE_ACK_FAILED, r == SL_EREMOTE ? SL_ETIMEDOUT : r);
        }
    }
}

static void fq_send_releases(struct fake_queue *fq)
{
    for (size_t k = 0; k < fq->n_vis_pending; k++) {
        struct fake_queue_call c = fq->vis_pending[k];
        if (k % FAKE_QUEUE_BATCH == 0) {
            fq->requests++;
        }
        c.request = fq->requests;
        c.result = fq_srv_visibility(fq, c.msg, c.handle, c.value);
        fq_log(fq, c);
    }
    fq->n_vis_pending = 0;
}

/* Extends the held leases with half their visibility or less left; reports those refused and
 * those that ran out while the mapping holds them. */
static void fq_extend_and_expire(struct fake_queue *fq, int64_t now)
{
    size_t in_request = 0;
    for (size_t k = 0; k < fq->n_leases; k++) {
        struct fake_queue_lease *l = &fq->leases[k];
        if (l->state != FAKE_QUEUE_LEASED || l->lost) {
            continue;
        }
        bool due = l->expires_at - now <= fq->visibility_ms / 2;
        if (due && l->expires_at > now && l->hold_until > l->expires_at) {
            int64_t want = l->hold_until - now;
            want = (want + 999) / 1000 * 1000; /* SQS counts whole seconds */
            if (want > fq->visibility_ms) {
                want = fq->visibility_ms;
            }
            if (in_request == 0) {
                fq->requests++;
            }
            in_request = (in_request + 1) % FAKE_QUEUE_BATCH;
            int r = fq_srv_visibility(fq, l->msg, l->handle, want);
            fq_log(fq, (struct fake_queue_call){.kind = FAKE_QUEUE_REQ_VISIBILITY,
                                                .lease = k + 1,
                                                .msg = l->msg,
                                                .handle = l->handle,
                                                .value = want,
                                                .request = fq->requests,
                                                .result = r});
            if (r == 0) {
                l->expires_at = now + want;
                continue;
            }
            l->lost = true;
            fq_report(fq, k + 1, SL_QUEUE_LEASE_LOST, r);
            continue;
        }
        if (l->expires_at <= now) {
            l->lost = true;
            fq_report(fq, k + 1, SL_QUEUE_LEASE_LOST, SL_ETIMEDOUT);
        }
    }
}

static bool fq_any_receivable(const struct fake_queue *fq, int64_t now)
{
    for (size_t i = 0; i < fq->n_msgs; i++) {
        if (fq_srv_receivable(fq, i, now, NULL)) {
            return true;
        }
    }
    return false;
}

static void fq_tick_cb(uv_timer_t *t)
{
    struct fake_queue *fq = t->data;
    if (fq->stopped || !fq->part) {
        return;
    }
    int64_t now = fq_now(fq);
    fq_send_releases(fq);
    fq_send_deletes(fq, now);
    fq_extend_and_expire(fq, now);
    if (fq->part && !fq->stopped && fq->wants_wake && fq_any_receivable(fq, now)) {
        fq->wants_wake = false;
        fq->env.part_wake(fq->env.owner, fq->part);
    }
}

/* --- the operations --- */

static int fq_check(void *ctx, const char *arn, char *errbuf, size_t errlen)
{
    (void)ctx;
    return fake_source_check_scheme(arn, FAKE_QUEUE_SCHEME, errbuf, errlen);
}

static int fq_init(void *ctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    struct fake_queue_ctx *c = ctx;
    assert(fq_current);
    assert(env->queue_report);
    c->fq = fq_current;
    c->fq->env = *env;
    c->fq->inited = true;
    c->fq->stopped = false;
    uv_timer_init(env->loop, &c->fq->tick);
    c->fq->tick.data = c->fq;
    return 0;
}

static int fq_start(void *ctx)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    struct sl_part *part = NULL;
    if (fq->env.part_add(fq->env.owner, "q0", "q0", &part) < 0) {
        return SL_ENOMEM;
    }
    part->src = fq;
    fq->part = part;
    fq->started = true;
    uv_timer_start(&fq->tick, fq_tick_cb, (uint64_t)fq->tick_real_ms, (uint64_t)fq->tick_real_ms);
    return 0;
}

/* Receives up to max_records messages (about max_bytes, at least one) in send order, skipping
 * groups with a message in flight. */
static int fq_fetch(void *ctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    assert(part == fq->part);
    int64_t now = fq_now(fq);
    bool *taken = calloc(fq->n_msgs + 1, sizeof(*taken));
    if (!taken) {
        return SL_ENOMEM;
    }
    size_t unheld = 0;
    for (size_t i = 0; i < fq->n_leases; i++) {
        unheld += fq->leases[i].state == FAKE_QUEUE_LEASED && fq->leases[i].hold_until == 0;
    }
    size_t n = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < fq->n_msgs && n < max_records; i++) {
        struct fake_queue_msg *m = &fq->msgs[i];
        if (!fq_srv_receivable(fq, i, now, taken)) {
            continue;
        }
        size_t glen = strlen(m->group);
        if (n > 0 && bytes + m->len + glen > max_bytes) {
            break;
        }
        fq->leases =
            fake_source_grow(fq->leases, &fq->cap_leases, fq->n_leases, sizeof(*fq->leases));
        uint64_t id = fq->n_leases + 1;
        /* the position is the lease (sl_queue_rec_lease) */
        if (sl_recq_push(&part->q, m->body, (uint32_t)m->len, m->group, (uint32_t)glen, &id,
                         sizeof(id), sl_clock_wall_ms(fq->env.clock), 0) < 0) {
            break;
        }
        m->receives++;
        m->visible_at = now + fq->visibility_ms;
        fq->leases[fq->n_leases++] =
            (struct fake_queue_lease){.msg = i, .handle = m->receives, .expires_at = m->visible_at};
        taken[i] = true;
        bytes += m->len + glen;
        n++;
    }
    free(taken);
    fq->wants_wake = n == 0;
    fq->fetches =
        fake_source_grow(fq->fetches, &fq->cap_fetches, fq->n_fetches, sizeof(*fq->fetches));
    fq->fetches[fq->n_fetches++] = (struct fake_queue_fetch){max_records, n, unheld};
    return (int)n;
}

static int
fq_encode_record(void *ctx, struct sl_part *part, const struct sl_record *rec, struct sl_buf *out)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    const struct fake_queue_lease *l = fq_lease(fq, sl_queue_rec_lease(rec));
    assert(l);
    const struct fake_queue_msg *m = &fq->msgs[l->msg];
    int r = sl_buf_printf(
        out, "{\"messageId\":\"m%zu\",\"receiptHandle\":\"rh-%zu-%" PRIu32 "\",\"body\":", l->msg,
        l->msg, l->handle);
    r = r < 0 ? r : sl_enc_json_str(out, sl_recq_data(&part->q, rec), rec->len);
    r = r < 0 ? r
              : sl_buf_printf(out, ",\"attributes\":{\"ApproximateReceiveCount\":\"%" PRIu32 "\"",
                              l->handle);
    if (m->group[0] != '\0') {
        r = r < 0 ? r : sl_buf_printf(out, ",\"MessageGroupId\":\"%s\"", m->group);
    }
    r = r < 0 ? r : sl_buf_puts(out, "}}");
    return r;
}

/* Never called for a queue (nothing is checkpointed); the lease, for completeness. */
static int
fq_format_pos(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    (void)part;
    int n = snprintf(buf, len, "%" PRIu64, sl_queue_rec_lease(rec));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static int fq_format_item_id(
    void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)part;
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    const struct fake_queue_lease *l = fq_lease(fq, sl_queue_rec_lease(rec));
    if (!l) {
        return SL_EINVAL;
    }
    (void)snprintf(buf, len, "m%zu", l->msg);
    return 0;
}

static cJSON *fq_filter_doc(void *ctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)ctx;
    cJSON *doc = cJSON_CreateObject();
    cJSON *body = sl_json_payload(sl_recq_data(&part->q, rec), rec->len);
    if (!doc || !body) {
        cJSON_Delete(body);
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON_AddItemToObject(doc, "body", body);
    return doc;
}

static int64_t fq_lag(void *ctx, struct sl_part *part)
{
    (void)part;
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    int64_t n = 0;
    for (size_t i = 0; i < fq->n_msgs; i++) {
        n += !fq->msgs[i].deleted;
    }
    return n;
}

static int fq_queue_ack(void *ctx, struct sl_part *part, const uint64_t *leases, size_t n)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    assert(part == fq->part);
    int64_t now = fq_now(fq);
    for (size_t k = 0; k < n; k++) {
        struct fake_queue_lease *l = fq_lease(fq, leases[k]);
        fq_log(fq, (struct fake_queue_call){.kind = FAKE_QUEUE_CALL_ACK,
                                            .lease = leases[k],
                                            .msg = l ? l->msg : SIZE_MAX});
        if (l && l->state == FAKE_QUEUE_LEASED) {
            l->state = FAKE_QUEUE_DELETING;
            l->retry_at = now;
        }
    }
    return 0;
}

static int fq_queue_release(
    void *ctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t visible_in_ms)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    assert(part == fq->part);
    for (size_t k = 0; k < n; k++) {
        struct fake_queue_lease *l = fq_lease(fq, leases[k]);
        fq_log(fq, (struct fake_queue_call){.kind = FAKE_QUEUE_CALL_RELEASE,
                                            .lease = leases[k],
                                            .msg = l ? l->msg : SIZE_MAX,
                                            .value = visible_in_ms});
        if (!l || l->state != FAKE_QUEUE_LEASED) {
            continue;
        }
        l->state = FAKE_QUEUE_ENDED;
        if (visible_in_ms >= 0) {
            fq->vis_pending = fake_source_grow(fq->vis_pending, &fq->cap_vis_pending,
                                               fq->n_vis_pending, sizeof(*fq->vis_pending));
            fq->vis_pending[fq->n_vis_pending++] =
                (struct fake_queue_call){.kind = FAKE_QUEUE_REQ_VISIBILITY,
                                         .lease = leases[k],
                                         .msg = l->msg,
                                         .handle = l->handle,
                                         .value = (visible_in_ms + 999) / 1000 * 1000};
        }
    }
    return 0;
}

static int
fq_queue_hold(void *ctx, struct sl_part *part, const uint64_t *leases, size_t n, int64_t until_ms)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    assert(part == fq->part);
    for (size_t k = 0; k < n; k++) {
        struct fake_queue_lease *l = fq_lease(fq, leases[k]);
        fq_log(fq, (struct fake_queue_call){.kind = FAKE_QUEUE_CALL_HOLD,
                                            .lease = leases[k],
                                            .msg = l ? l->msg : SIZE_MAX,
                                            .value = until_ms});
        if (l && l->state == FAKE_QUEUE_LEASED) {
            l->hold_until = until_ms;
        }
    }
    return 0;
}

/* A FIFO queue takes BatchSize 10 at most; the visibility timeout is told when the test set
 * tell_visibility. */
static void fq_queue_limits(void *ctx, struct sl_queue_limits *lim)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    if (fq->fifo) {
        lim->batch_size_max = 10;
    }
    if (fq->tell_visibility) {
        lim->visibility_ms = fq->visibility_ms;
    }
}

static bool fq_queue_idle(void *ctx)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    if (fq->n_vis_pending > 0) {
        return false;
    }
    for (size_t k = 0; k < fq->n_leases; k++) {
        if (fq->leases[k].state == FAKE_QUEUE_DELETING) {
            return false;
        }
    }
    return true;
}

/* Every lease ends, reporting nothing: what was not deleted comes back after its visibility. */
static void fq_part_release(void *ctx, struct sl_part *part)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    assert(part == fq->part);
    for (size_t k = 0; k < fq->n_leases; k++) {
        fq->leases[k].state = FAKE_QUEUE_ENDED;
    }
    fq->n_vis_pending = 0;
    fq->part = NULL;
}

static void fq_stop(void *ctx)
{
    struct fake_queue *fq = ((struct fake_queue_ctx *)ctx)->fq;
    fq->stopped = true;
    if (fq->inited) {
        uv_timer_stop(&fq->tick);
    }
}

static void fq_fini(void *ctx)
{
    struct fake_queue_ctx *c = ctx;
    if (c->fq && c->fq->inited) {
        uv_close((uv_handle_t *)&c->fq->tick, NULL);
        c->fq->inited = false;
    }
}

static const struct sl_source_caps fq_caps = {
    .model = SL_DELIVERY_QUEUE,
    .batch_size_default = 10,
    .batch_size_max = 10000,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .window_required_above = 10,
    .lag_unit = SL_LAG_RECORDS,
};

/* Its event shape: SQS-like wrapping, the payload under "body", the registry's BatchInfo. */
static const struct sl_event_format fq_event = FAKE_SOURCE_EVENT("fakeq", "body");

const struct sl_source_ops fake_queue_ops = {
    .abi = SL_SOURCE_ABI,
    .name = "fakeq",
    .scheme = FAKE_QUEUE_SCHEME,
    .opts = fake_source_no_opts,
    .ctx_size = sizeof(struct fake_queue_ctx),
    .event = &fq_event,
    .caps = &fq_caps,
    .check = fq_check,
    .init = fq_init,
    .start = fq_start,
    .fetch = fq_fetch,
    .encode_record = fq_encode_record,
    .compare_pos = sl_recq_pos_compare_u64,
    .format_pos = fq_format_pos,
    .format_item_id = fq_format_item_id,
    .record_key = fake_source_record_key, /* the group (MessageGroupId), "" for none */
    .filter_doc = fq_filter_doc,
    .lag = fq_lag,
    .part_release = fq_part_release,
    .stop = fq_stop,
    .fini = fq_fini,
    .queue_ack = fq_queue_ack,
    .queue_release = fq_queue_release,
    .queue_hold = fq_queue_hold,
    .queue_idle = fq_queue_idle,
    .queue_limits = fq_queue_limits,
};

/* --- the test's side --- */

void fake_queue_register(void)
{
    sl_source_register_extra(&fake_queue_ops);
}

void fake_queue_init(struct fake_queue *fq)
{
    memset(fq, 0, sizeof(*fq));
    fq->visibility_ms = 30000;
    fq->tick_real_ms = 1;
    fq->max_delete_attempts = 5;
    fq_current = fq;
}

void fake_queue_fini(struct fake_queue *fq)
{
    for (size_t i = 0; i < fq->n_msgs; i++) {
        free(fq->msgs[i].body);
    }
    free(fq->msgs);
    free(fq->leases);
    free(fq->calls);
    free(fq->vis_pending);
    free(fq->fetches);
    if (fq_current == fq) {
        fq_current = NULL;
    }
    memset(fq, 0, sizeof(*fq));
}

size_t fake_queue_send(struct fake_queue *fq, const char *group, const char *body)
{
    fq->msgs = fake_source_grow(fq->msgs, &fq->cap_msgs, fq->n_msgs, sizeof(*fq->msgs));
    struct fake_queue_msg *m = &fq->msgs[fq->n_msgs];
    memset(m, 0, sizeof(*m));
    m->len = strlen(body);
    m->body = malloc(m->len + 1);
    if (!m->body) {
        abort();
    }
    memcpy(m->body, body, m->len + 1);
    (void)snprintf(m->group, sizeof(m->group), "%s", group ? group : "");
    m->visible_at = INT64_MIN;
    return fq->n_msgs++;
}

size_t fake_queue_find(const struct fake_queue *fq, const char *body)
{
    for (size_t i = 0; i < fq->n_msgs; i++) {
        if (strcmp(fq->msgs[i].body, body) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

void fake_queue_tell_visibility(struct fake_queue *fq, int64_t visibility_ms)
{
    fq->visibility_ms = visibility_ms;
    fq->tell_visibility = true;
    fq->env.queue_limits_changed(fq->env.owner);
}

void fake_queue_fail_deletes(struct fake_queue *fq, size_t i, size_t n, bool fatal)
{
    fq->msgs[i].fail_deletes = n;
    fq->msgs[i].fail_fatal = fatal;
}

size_t fake_queue_count(const struct fake_queue *fq, enum fake_queue_call_kind kind, size_t i)
{
    size_t n = 0;
    for (size_t k = 0; k < fq->n_calls; k++) {
        n += fq->calls[k].kind == kind && (i == SIZE_MAX || fq->calls[k].msg == i);
    }
    return n;
}

size_t
fake_queue_count_failed(const struct fake_queue *fq, enum fake_queue_call_kind kind, size_t i)
{
    size_t n = 0;
    for (size_t k = 0; k < fq->n_calls; k++) {
        const struct fake_queue_call *c = &fq->calls[k];
        n += c->kind == kind && (i == SIZE_MAX || c->msg == i) && c->result != 0;
    }
    return n;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_fetch.c: reading one shard (wire.md §1.3-1.5). A fetch of the mapping becomes, on
 * the loop and never blocking, a GetShardIterator when the shard has no iterator (AT_SEQUENCE_
 * NUMBER of a KPL aggregate partly delivered, deaggregate's checkpoint "SEQ:SUB"; else AFTER_
 * SEQUENCE_NUMBER of the last record fetched or of the checkpoint; else the mapping's
 * StartingPosition: TRIM_HORIZON, LATEST, AT_TIMESTAMP), then a GetRecords with a Limit of
 * what the mapping's budget allows (at most 10,000). The fetch answers SL_EINPROGRESS and the
 * records come back through part_fetched.
 *
 * Pacing: at most five GetRecords per second per shard (one per KIN_GET_RECORDS_GAP_MS); after
 * a page with records the next one goes at once, after an empty page after poll_interval (see
 * "idle" below). A fetch asked for before that time answers 0 and a timer owes the mapping a
 * part_wake.
 *
 * A LATEST start is recorded at once (part_set_start of position "0" with the meta "at=<the
 * time>"), so that a restart before any record is done reads AT_TIMESTAMP of that time rather
 * than LATEST again, which would skip what came in between.
 *
 * Errors, by what kinesis_wire_error_read says to do: an expired iterator is renewed from the
 * last record fetched; throttling (ProvisionedThroughputExceeded, LimitExceeded), server
 * faults and transport errors back off with full jitter (retry.c); a missing stream or access
 * problem backs off slowly (KIN_SLOW_RETRY_MS) with a rate-limited log line (a GetShardIterator
 * that says the shard is not found also asks for a listing, which drops the shard if it no
 * longer lists it: kin_fetch_part_drop); anything else is
 * returned to the mapping as an error (it retries the fetch). Each of these completes the
 * fetch (part_fetched with 0 or the error), so the mapping is never left waiting.
 *
 * The end of a shard (NextShardIterator absent): the records of that last page are pushed, the
 * partition's meta becomes "end=<last sequence number>" so that the checkpoint says where the
 * shard ended (a restart finds it done once its checkpoint reaches that number), the children
 * its ChildShards names go to kinesis_shards.c, and part_gone follows on the next loop turn.
 *
 * An idle shard (its last page was empty, or it was woken and no fetch came within
 * poll_interval) is polled from its timer, every poll_interval, not from fetch: fetch answers 0
 * and owes a wake, which comes when a poll (GetRecords of Limit 1) finds a record (held, and
 * handed out by the next fetch at once, which then reads on as usual) or the shard's end. So an
 * idle shard is never in the middle of a fetch for the mapping, whose
 * --until-idle waits for no fetch in progress. It owns, per shard, its
 * iterator, its timer and its request in flight. Loop thread only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "config.h"
#include "kinesis_int.h"

/* The meta of a partition read to its end: "end=" + the last sequence number. */
#define KIN_END_META "end="
/* A LATEST start recorded before any record: position "0" (never a real sequence number) with
 * the meta "at=" + epoch ms. */
#define KIN_START_POS        "0"
#define KIN_AT_META          "at="
#define KIN_LATEST_MARGIN_MS 1000
/* An idle shard's poll asks for one record: what it finds waits outside the mapping's budget
 * until the next fetch, so it is kept to one; the fetch that follows reads the rest. */
#define KIN_POLL_LIMIT 1

static void kin_fetch_timer_cb(uv_timer_t *t);

static void kin_fetch_arm(struct kin_part *kp, int64_t in_ms)
{
    (void)uv_timer_start(kp->timer, kin_fetch_timer_cb, (uint64_t)(in_ms > 0 ? in_ms : 0), 0);
}

struct kin_part *kin_fetch_part_new(struct kin_ctx *ctx, struct kin_shard *sh)
{
    struct kin_part *kp = sl_calloc(1, sizeof(*kp));
    if (!kp) {
        return NULL;
    }
    kp->ctx = ctx;
    kp->sh = sh;
    kp->millis_behind = -1;
    kp->timer = sl_malloc(sizeof(*kp->timer));
    if (!kp->timer || kin_event_prepare(ctx, kp) < 0) {
        sl_free(kp->timer);
        sl_event_kinesis_tmpl_fini(&kp->tmpl);
        sl_free(kp);
        return NULL;
    }
    (void)uv_timer_init(ctx->env.loop, kp->timer);
    kp->timer->data = kp;
    return kp;
}

void kin_fetch_part_attach(struct kin_part *kp, struct sl_part *part)
{
    struct kin_ctx *ctx = kp->ctx;
    kp->part = part;
    part->src = kp;
    part->event = &kp->tmpl;
    const char *ck = part->ckpt_pos;
    const char *meta0 = part->ckpt_meta;
    if (ck && strcmp(ck, KIN_START_POS) == 0 && meta0 &&
        strncmp(meta0, KIN_AT_META, strlen(KIN_AT_META)) == 0) {
        /* a LATEST start recorded before any record was done: resume at its time */
        char *end = NULL;
        long long at = strtoll(meta0 + strlen(KIN_AT_META), &end, 10);
        if (end && *end == '\0' && at > 0) {
            kp->start_at_ms = at;
            ck = NULL;
        }
    }
    if (ck) {
        unsigned char pos[KINESIS_POS_MAX];
        size_t pos_len;
        char err[160] = "";
        uint64_t sub;
        if (kinesis_pos_parse(ck, pos, &pos_len, err, sizeof(err)) < 0 ||
            kinesis_pos_seq(pos, pos_len, kp->last_seq, sizeof(kp->last_seq)) < 0) {
            sl_log_warn(KIN_COMP, ctx->env.inst,
                        "%s: the checkpoint \"%.80s\" is not a sequence number (%s); starting "
                        "at the mapping's StartingPosition instead",
                        part->name, ck, err);
            kp->last_seq[0] = '\0';
        } else if (kinesis_pos_sub(pos, pos_len, &sub)) {
            /* inside a KPL aggregate: read it again (AT_SEQUENCE_NUMBER) and skip the user
             * records up to the checkpointed one; the aggregate itself is not done */
            memcpy(kp->resume_seq, kp->last_seq, sizeof(kp->resume_seq));
            kp->resume_next = sub + 1;
            kp->last_seq[0] = '\0';
        }
    }
    /* A shard whose end the checkpoint recorded, with every record up to it done, is over. */
    const char *meta = part->ckpt_meta;
    if (meta && strncmp(meta, KIN_END_META, strlen(KIN_END_META)) == 0) {
        const char *end = meta + strlen(KIN_END_META);
        size_t end_len = strlen(end);
        char err[64];
        bool end_ok = end_len == 0 || kinesis_seq_check(end, end_len, err, sizeof(err)) == 0;
        if (end_ok && (end_len == 0 ||
                       (kp->last_seq[0] && kinesis_seq_compare(kp->last_seq, strlen(kp->last_seq),
                                                               end, end_len) >= 0))) {
            if (sl_part_set_meta(part, meta) == 0) {
                kp->ended = true;
                sl_log_info(KIN_COMP, ctx->env.inst,
                            "%s: the checkpoint says the shard was read to its end", part->name);
                kin_fetch_arm(kp, 0); /* part_gone, from the loop */
            }
            /* else read it again: it only repeats what is after the checkpoint, nothing */
        }
    }
}

/* The time the next GetRecords may go: after next_ms, and a fifth of a second after the last. */
static int64_t kin_fetch_due(const struct kin_part *kp)
{
    int64_t due = kp->next_ms;
    if (kp->last_call_ms && kp->last_call_ms + KIN_GET_RECORDS_GAP_MS > due) {
        due = kp->last_call_ms + KIN_GET_RECORDS_GAP_MS;
    }
    return due;
}

static void kin_fetch_complete(struct kin_part *kp, int n)
{
    kp->fetching = false;
    if (n == 0 && !kp->ended) {
        /* nothing now: a wake is owed once the next call may go */
        kp->waiting = true;
        kin_fetch_arm(kp, kin_fetch_due(kp) - sl_clock_now_ms(kp->ctx->env.clock));
    }
    kp->ctx->env.part_fetched(kp->ctx->env.owner, kp->part, n);
}

static int kin_fetch_get_records(struct kin_part *kp);
static int kin_fetch_get_iterator(struct kin_part *kp);

/* Backs off after a failed request, by what the failure says, and completes the fetch. */
static void kin_fetch_failed(struct kin_part *kp, enum kinesis_op op, const struct kinesis_error *e)
{
    struct kin_ctx *ctx = kp->ctx;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    const char *what = kinesis_wire_op_name(op);
    switch (e->retry) {
    case KINESIS_RETRY_RENEW_ITERATOR:
        sl_free(kp->iterator);
        kp->iterator = NULL;
        if (kp->attempt++ < 3) {
            sl_log_debug(KIN_COMP, ctx->env.inst, "%s: the shard iterator expired; renewing it",
                         kp->part->name);
            if (kin_fetch_get_iterator(kp) == 0) {
                return;
            }
        }
        kp->next_ms = now + sl_retry_delay_ms(&ctx->retry, kp->attempt, &ctx->rng);
        kin_fetch_complete(kp, 0);
        return;
    case KINESIS_RETRY_THROTTLE: {
        kp->attempt++;
        int64_t delay = sl_retry_delay_ms(&ctx->retry, kp->attempt, &ctx->rng);
        kp->next_ms = now + delay;
        sl_log_limited(&ctx->lim, now, 10000, 1, SL_LOG_WARN, KIN_COMP, ctx->env.inst,
                       "%s of %s: %s%s%s, retrying in %lldms", what, kp->part->name, e->type,
                       e->message[0] ? ": " : "", e->message, (long long)delay);
        kin_fetch_complete(kp, 0);
        return;
    }
    case KINESIS_RETRY_SLOW:
    case KINESIS_RETRY_RELIST:
        if (op == KINESIS_OP_GET_SHARD_ITERATOR &&
            strcmp(e->type, "ResourceNotFoundException") == 0 && !kp->not_found) {
            /* the shard may be gone (deleted, or expired past the retention period): a
             * listing that succeeds without it drops it (kinesis_shards.c) */
            kp->not_found = true;
            ctx->shard_ended(ctx);
        }
        kp->attempt++;
        kp->next_ms = now + KIN_SLOW_RETRY_MS;
        sl_log_limited(&ctx->lim, now, 60000, 2, SL_LOG_WARN, KIN_COMP, ctx->env.inst,
                       "%s of %s in stream %s: %s%s%s, retrying every %ds", what, kp->part->name,
                       ctx->arn.stream, e->type, e->message[0] ? ": " : "", e->message,
                       KIN_SLOW_RETRY_MS / 1000);
        kin_fetch_complete(kp, 0);
        return;
    case KINESIS_RETRY_FATAL:
    case KINESIS_RETRY_COUNT:
        break;
    }
    sl_log_limited(&ctx->lim, now, 10000, 3, SL_LOG_ERROR, KIN_COMP, ctx->env.inst,
                   "%s of %s: %s%s%s", what, kp->part->name, e->type, e->message[0] ? ": " : "",
                   e->message);
    /* a new iterator next time, in case it was the iterator that was refused */
    sl_free(kp->iterator);
    kp->iterator = NULL;
    kin_fetch_complete(kp, e->err < 0 ? e->err : SL_EPROTO);
}

/* The shard was read to its end: record where, and owe part_gone. */
static void kin_fetch_ended(struct kin_part *kp)
{
    struct kin_ctx *ctx = kp->ctx;
    kp->ended = true;
    const char *end = kp->last_seq[0] ? kp->last_seq : "";
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_printf(&b, KIN_END_META "%s", end);
    r = r ? r : sl_part_set_meta(kp->part, b.data);
    sl_buf_fini(&b);
    if (r == 0 && sl_recq_count(&kp->part->q) == 0 && kp->last_seq[0]) {
        /* nothing held: the next checkpoint write would never come, so write it now */
        r = ctx->env.part_set_start(ctx->env.owner, kp->part, kp->last_seq);
    }
    if (r < 0) {
        /* the shard is then read again after a restart: repeats, never losses */
        sl_log_warn(KIN_COMP, ctx->env.inst, "%s: cannot record the end of the shard: %s",
                    kp->part->name, sl_strerror(r));
    }
    sl_log_info(KIN_COMP, ctx->env.inst, "%s: the shard is closed and was read to its end",
                kp->part->name);
    kin_fetch_arm(kp, 0);
    ctx->shard_ended(ctx);
}

/* A LATEST start: records where it began (position KIN_START_POS, meta "at=<epoch ms>", a
 * moment before the iterator was asked for), so that a restart before any record of the shard
 * is done reads AT_TIMESTAMP of it instead of choosing LATEST again and skipping what came in
 * between. The margin covers clock skew; it may deliver a record from just before the start. */
static void kin_fetch_record_latest(struct kin_part *kp)
{
    struct kin_ctx *ctx = kp->ctx;
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_printf(&b, KIN_AT_META "%lld", (long long)kp->latest_at_ms);
    r = r ? r : sl_part_set_meta(kp->part, b.data);
    sl_buf_fini(&b);
    r = r ? r : ctx->env.part_set_start(ctx->env.owner, kp->part, KIN_START_POS);
    kp->start_at_ms = kp->latest_at_ms; /* an expired iterator renews from there too */
    if (r < 0) {
        sl_log_warn(KIN_COMP, ctx->env.inst, "%s: cannot record the LATEST start: %s",
                    kp->part->name, sl_strerror(r));
    }
}

/* The last page of a closed shard names its children (ChildShards; kinesalite sends none):
 * they start once their parents are done, without waiting for the next listing. */
static void kin_fetch_children(struct kin_part *kp, const struct kinesis_records *recs)
{
    if (recs->n_children > 0) {
        kp->ctx->shard_children(kp->ctx, recs->children, recs->n_children);
    }
}

static void kin_fetch_records_done(void *arg, const struct kin_answer *a)
{
    struct kin_part *kp = arg;
    struct kin_ctx *ctx = kp->ctx;
    kp->req = NULL;
    if (!a->ok) {
        kin_fetch_failed(kp, KINESIS_OP_GET_RECORDS, &a->err);
        return;
    }
    struct kinesis_records recs;
    char err[256];
    int r = kinesis_wire_get_records_read(a->body, a->len, &recs, err, sizeof(err));
    if (r < 0) {
        sl_log_error(KIN_COMP, ctx->env.inst, "%s: %s", kp->part->name, err);
        kin_fetch_complete(kp, r);
        return;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    kp->attempt = 0;
    kp->answered = true;
    kp->millis_behind = recs.millis_behind;
    size_t pushed = 0;
    int n = kin_event_push(kp, &recs, 0, recs.n, &pushed);
    if (n < 0) {
        sl_log_error(KIN_COMP, ctx->env.inst, "%s: cannot keep the records read: %s",
                     kp->part->name, sl_strerror(n));
        /* the same page again: the iterator is unchanged */
        kinesis_records_fini(&recs);
        kin_fetch_complete(kp, n);
        return;
    }
    if ((size_t)n < recs.n) {
        /* the rest comes again after what was kept */
        sl_free(kp->iterator);
        kp->iterator = NULL;
    } else {
        char *next = recs.next_iterator ? sl_strdup(recs.next_iterator) : NULL;
        sl_free(kp->iterator);
        kp->iterator = next;
        if (recs.next_iterator && !next) {
            n = n > 0 ? n : SL_ENOMEM; /* a new iterator next time */
        }
    }
    bool closed = recs.next_iterator == NULL && (size_t)n == recs.n;
    kp->next_ms = n > 0 ? now : now + ctx->poll_ms;
    kp->idle = n == 0 && !closed; /* the next polls go out from the timer, not from fetch */
    if (closed) {
        kin_fetch_children(kp, &recs);
    }
    kinesis_records_fini(&recs);
    if (closed) {
        kin_fetch_ended(kp);
    }
    /* the mapping counts what its queue got (a deaggregated page may give more or fewer) */
    kin_fetch_complete(kp, n < 0 ? n : (int)pushed);
}

static int kin_fetch_get_records(struct kin_part *kp)
{
    struct kin_ctx *ctx = kp->ctx;
    struct sl_buf b;
    char err[160];
    sl_buf_init(&b);
    int limit = kp->limit > KINESIS_GET_RECORDS_LIMIT_MAX ? KINESIS_GET_RECORDS_LIMIT_MAX
                : kp->limit < 1                           ? 1
                                                          : (int)kp->limit;
    int r = kinesis_wire_get_records(&b, kp->iterator, limit, NULL, err, sizeof(err));
    if (r == 0) {
        r = kin_http_send(ctx, KINESIS_OP_GET_RECORDS, &b, kin_fetch_records_done, kp, &kp->req);
    }
    sl_buf_fini(&b);
    if (r == 0) {
        kp->last_call_ms = sl_clock_now_ms(ctx->env.clock);
    }
    return r;
}

static void kin_fetch_iterator_done(void *arg, const struct kin_answer *a)
{
    struct kin_part *kp = arg;
    struct kin_ctx *ctx = kp->ctx;
    kp->req = NULL;
    if (!a->ok) {
        kin_fetch_failed(kp, KINESIS_OP_GET_SHARD_ITERATOR, &a->err);
        return;
    }
    char err[256];
    char *it = NULL;
    int r = kinesis_wire_get_shard_iterator_read(a->body, a->len, &it, err, sizeof(err));
    if (r < 0) {
        sl_log_error(KIN_COMP, ctx->env.inst, "%s: %s", kp->part->name,
                     r == SL_ENOMEM ? "out of memory" : err);
        kin_fetch_complete(kp, r);
        return;
    }
    kp->iterator = it;
    sl_log_debug(KIN_COMP, ctx->env.inst, "%s: shard iterator ready", kp->part->name);
    if (kp->latest_at_ms > 0 && !kp->last_seq[0] && sl_recq_count(&kp->part->q) == 0) {
        kin_fetch_record_latest(kp);
    }
    kp->latest_at_ms = 0;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (now - kp->last_call_ms < KIN_GET_RECORDS_GAP_MS) {
        /* a renewal right after a GetRecords: keep to five per second */
        kp->next_ms = kp->last_call_ms + KIN_GET_RECORDS_GAP_MS;
        kin_fetch_complete(kp, 0);
        return;
    }
    r = kin_fetch_get_records(kp);
    if (r < 0) {
        kin_fetch_complete(kp, r);
    }
}

static int kin_fetch_get_iterator(struct kin_part *kp)
{
    struct kin_ctx *ctx = kp->ctx;
    enum kinesis_iter_type type;
    const char *seq = NULL;
    int64_t ts_ms = 0;
    if (kp->resume_seq[0]) {
        /* an aggregate partly delivered: it again, its delivered user records skipped */
        type = KINESIS_ITER_AT_SEQUENCE_NUMBER;
        seq = kp->resume_seq;
    } else if (kp->last_seq[0]) {
        type = KINESIS_ITER_AFTER_SEQUENCE_NUMBER;
        seq = kp->last_seq;
    } else if (kp->start_at_ms > 0) {
        type = KINESIS_ITER_AT_TIMESTAMP;
        ts_ms = kp->start_at_ms;
    } else if (kp->sh->from_trim_horizon) {
        /* a child of a listed parent: all of it, as AWS and KCL do */
        type = KINESIS_ITER_TRIM_HORIZON;
    } else if (ctx->env.starting_position == SL_START_LATEST) {
        type = KINESIS_ITER_LATEST;
        /* what a restart resumes at if nothing is done before it (kin_fetch_iterator_done) */
        kp->latest_at_ms = sl_clock_wall_ms(ctx->env.clock) - KIN_LATEST_MARGIN_MS;
    } else if (ctx->env.starting_position == SL_START_AT_TIMESTAMP) {
        type = KINESIS_ITER_AT_TIMESTAMP;
        ts_ms = ctx->env.starting_position_ts_ms;
    } else {
        type = KINESIS_ITER_TRIM_HORIZON;
    }
    const struct kinesis_stream stream = {.name = ctx->arn.stream};
    struct sl_buf b;
    char err[160];
    sl_buf_init(&b);
    int r = kinesis_wire_get_shard_iterator(&b, &stream, kp->sh->info.id, type, seq, ts_ms, err,
                                            sizeof(err));
    if (r == 0) {
        r = kin_http_send(ctx, KINESIS_OP_GET_SHARD_ITERATOR, &b, kin_fetch_iterator_done, kp,
                          &kp->req);
    }
    sl_buf_fini(&b);
    if (r == 0) {
        sl_log_debug(KIN_COMP, ctx->env.inst, "%s: GetShardIterator %s%s%s", kp->part->name,
                     kinesis_wire_iter_name(type), seq ? " " : "", seq ? seq : "");
    }
    return r;
}

static void kin_fetch_held_fini(struct kin_part *kp)
{
    if (kp->has_held) {
        kinesis_records_fini(&kp->held);
        kp->has_held = false;
        kp->held_i = 0;
    }
}

/* Hands out what an idle poll found, synchronously (it is the mapping's fetch that takes
 * them, within its budget). */
static int kin_fetch_take_held(struct kin_part *kp, size_t max_records)
{
    size_t left = kp->held.n - kp->held_i;
    size_t take = left < max_records ? left : max_records;
    size_t pushed = 0;
    int n = kin_event_push(kp, &kp->held, kp->held_i, take, &pushed);
    if (n < 0) {
        return n;
    }
    kp->held_i += (size_t)n;
    if ((size_t)n < take) {
        /* cut short inside an aggregate: the rest is read again from kp->resume_seq */
        kin_fetch_held_fini(kp);
        sl_free(kp->iterator);
        kp->iterator = NULL;
    } else if (kp->held_i == kp->held.n) {
        bool end = kp->held.next_iterator == NULL;
        if (end) {
            kin_fetch_children(kp, &kp->held);
        }
        kin_fetch_held_fini(kp);
        if (end) {
            kin_fetch_ended(kp);
        }
    }
    kp->next_ms = sl_clock_now_ms(kp->ctx->env.clock);
    if (pushed == 0 && !kp->ended) {
        /* all of it skipped or dropped (deaggregate): a wake, to read on */
        kp->waiting = true;
        kin_fetch_arm(kp, 0);
    }
    return (int)pushed;
}

static void kin_fetch_poll_done(void *arg, const struct kin_answer *a)
{
    struct kin_part *kp = arg;
    struct kin_ctx *ctx = kp->ctx;
    kp->req = NULL;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    struct kinesis_records recs;
    char err[256];
    if (!a->ok || kinesis_wire_get_records_read(a->body, a->len, &recs, err, sizeof(err)) < 0) {
        /* the fetch path deals with it (renewal, backoff, the log line): wake the mapping */
        kp->idle = false;
        if (!a->ok && a->err.retry == KINESIS_RETRY_RENEW_ITERATOR) {
            sl_free(kp->iterator);
            kp->iterator = NULL;
        }
        kin_fetch_arm(kp, 0);
        return;
    }
    kp->attempt = 0;
    kp->answered = true;
    kp->millis_behind = recs.millis_behind;
    char *next = recs.next_iterator ? sl_strdup(recs.next_iterator) : NULL;
    if (recs.next_iterator && !next) {
        kinesis_records_fini(&recs); /* out of memory: the same poll again later */
        kin_fetch_arm(kp, ctx->poll_ms);
        return;
    }
    sl_free(kp->iterator);
    kp->iterator = next;
    if (recs.n == 0 && next) {
        kinesis_records_fini(&recs);
        kp->next_ms = now + ctx->poll_ms;
        kin_fetch_arm(kp, kin_fetch_due(kp) - now);
        return;
    }
    kp->idle = false;
    kp->next_ms = now;
    if (recs.n == 0) {
        kin_fetch_children(kp, &recs);
        kinesis_records_fini(&recs);
        kin_fetch_ended(kp); /* nothing more, and nothing held */
        return;
    }
    kp->held = recs;
    kp->held_i = 0;
    kp->has_held = true;
    kin_fetch_arm(kp, 0); /* the wake */
}

/* An idle shard's poll, from the timer: a GetRecords outside any fetch, so that an idle shard
 * is never "fetching" for the mapping (--until-idle, with many shards, would never see every
 * shard quiet). The record it finds is held and handed out by the next fetch. */
static void kin_fetch_poll(struct kin_part *kp)
{
    struct kin_ctx *ctx = kp->ctx;
    struct sl_buf b;
    char err[160];
    sl_buf_init(&b);
    int r = kinesis_wire_get_records(&b, kp->iterator, KIN_POLL_LIMIT, NULL, err, sizeof(err));
    if (r == 0) {
        r = kin_http_send(ctx, KINESIS_OP_GET_RECORDS, &b, kin_fetch_poll_done, kp, &kp->req);
    }
    sl_buf_fini(&b);
    if (r == 0) {
        kp->last_call_ms = sl_clock_now_ms(ctx->env.clock);
    } else {
        kp->idle = false; /* the fetch path tries, and says what fails */
        kin_fetch_arm(kp, 0);
    }
}

int kin_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    (void)vctx;
    (void)max_bytes; /* GetRecords has no byte limit; Limit bounds the records */
    struct kin_part *kp = part->src;
    if (kp->ended) {
        return 0; /* part_gone is coming */
    }
    kp->fetches++;
    if (kp->has_held) {
        return kin_fetch_take_held(kp, max_records);
    }
    if (kp->req) {
        kp->waiting = true; /* an idle poll is out: it wakes when it has something */
        return 0;
    }
    int64_t now = sl_clock_now_ms(kp->ctx->env.clock);
    int64_t due = kin_fetch_due(kp);
    if (kp->idle || now < due) {
        /* not now: the timer wakes the mapping when the next call may go (or, idle, when its
         * poll finds something) */
        kp->waiting = true;
        kin_fetch_arm(kp, due - now);
        return 0;
    }
    kp->limit = max_records;
    int r = kp->iterator ? kin_fetch_get_records(kp) : kin_fetch_get_iterator(kp);
    if (r < 0) {
        return r;
    }
    kp->fetching = true;
    return SL_EINPROGRESS;
}

static void kin_fetch_timer_cb(uv_timer_t *t)
{
    struct kin_part *kp = t->data;
    struct kin_ctx *ctx = kp->ctx;
    if (ctx->stopped) {
        return;
    }
    if (kp->ended) {
        if (!kp->gone && !kp->fetching) {
            kp->gone = true;
            ctx->env.part_gone(ctx->env.owner, kp->part);
        }
        return;
    }
    if (kp->idle && !kp->iterator) {
        kp->idle = false; /* a new iterator comes through the fetch path */
    }
    if (kp->woken && kp->fetches == kp->woken_at && kp->iterator && !kp->req && !kp->has_held &&
        !kp->fetching) {
        /* woken a while ago and no fetch came (the mapping holds all it may): poll from here,
         * so that the shard's end is still found */
        kp->idle = true;
    }
    kp->woken = false;
    if (kp->idle && !kp->req && !kp->has_held && !kp->fetching) {
        int64_t wait = kin_fetch_due(kp) - sl_clock_now_ms(ctx->env.clock);
        if (wait > 0) {
            kin_fetch_arm(kp, wait);
        } else {
            kin_fetch_poll(kp);
        }
        return;
    }
    if (kp->waiting && !kp->req) {
        kp->waiting = false;
        kp->woken = true;
        kp->woken_at = kp->fetches;
        kin_fetch_arm(kp, ctx->poll_ms > KIN_GET_RECORDS_GAP_MS ? ctx->poll_ms
                                                                : KIN_GET_RECORDS_GAP_MS);
        ctx->env.part_wake(ctx->env.owner, kp->part);
    }
}

void kin_fetch_part_drop(struct kin_part *kp)
{
    struct kin_ctx *ctx = kp->ctx;
    sl_log_warn(KIN_COMP, ctx->env.inst,
                "%s: GetShardIterator says the shard does not exist and stream %s no longer "
                "lists it (deleted, or expired past the retention period); dropping it, its "
                "checkpoint (if any) is kept as it is",
                kp->part->name, ctx->arn.stream);
    kp->ended = true; /* part_gone, from the loop; no end is recorded: the checkpoint stays */
    kp->idle = false;
    if (kp->req) {
        kin_http_cancel(ctx, kp->req);
        kp->req = NULL;
    }
    if (kp->fetching) {
        kin_fetch_complete(kp, 0);
    }
    kin_fetch_arm(kp, 0);
}

void kin_fetch_part_stop(struct kin_part *kp)
{
    if (kp->timer) {
        (void)uv_timer_stop(kp->timer);
    }
    if (kp->req) {
        kin_http_cancel(kp->ctx, kp->req);
        kp->req = NULL;
    }
}

static void kin_fetch_timer_closed(uv_handle_t *h)
{
    sl_free(h);
}

void kin_fetch_part_free(struct kin_part *kp)
{
    kin_fetch_part_stop(kp);
    if (kp->timer) {
        uv_close((uv_handle_t *)kp->timer, kin_fetch_timer_closed);
    }
    kin_fetch_held_fini(kp);
    sl_free(kp->iterator);
    sl_event_kinesis_tmpl_fini(&kp->tmpl);
    sl_free(kp);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_fetch.c: fetching: the fetch operation, which takes messages from a partition's
 * own queue into the mapping's, and the fetch slots that bound what librdkafka holds (which
 * partitions fetch at once, pausing, resuming, the kick of a stalled queue). Below the rebalance
 * (which pauses new partitions by the slot count) and the adapter (whose tick fills and yields
 * slots); it calls only the records, partition and log layers.
 *
 * About fetching: each assigned partition has its own queue (rd_kafka_queue_get_partition, its
 * forwarding to the consumer queue removed with rd_kafka_queue_forward(q, NULL) BEFORE
 * rd_kafka_assign, so that no message of it ever reaches the consumer queue: librdkafka does
 * not forward a queue the application has set itself). Messages are taken from it only inside
 * fetch(), at most max_records and about max_bytes (rd_kafka_consume_batch_queue, timeout 0, in
 * chunks of at most KAFKA_CHUNK; what a chunk holds beyond max_bytes waits in the partition's
 * stash, served first by the next fetch), and copied into part->q (one copy of the bytes). So
 * backpressure is librdkafka's own: it stops fetching a partition while its queue holds
 * queued.min.messages messages or queued.max.messages.kbytes (sluice sets 5000 and 2048 KiB per
 * partition; both can be overridden through "rdkafka"); pause/resume serves only the memory
 * bound (see "About memory"): in librdkafka 2.0 it discards a partition's prefetched data and
 * leaves it stalled until the broker's thread wakes. A queued record of 100 bytes costs about 400
 * bytes in all (measured), so 5000 are about 2 MB a partition. librdkafka 2.0 notices that a queue
 * fell below those limits only when the broker's thread next wakes, up to a second later if no
 * other fetch wakes it (2.1 added fetch.queue.backoff.ms for this). So a partition whose queue
 * sluice saw full and then drained, and which has stayed empty for KAFKA_KICK_MS while the broker
 * has more, gets a seek to the offset after the last one taken: an asynchronous op that wakes the
 * broker's thread at once (kafka_fetch_kick_if_stalled). It keeps a partition at full speed with a
 * fraction of a second's records queued, where the queue had to hold a whole second's worth before
 * (measured: 5000 queued, 100k records/s without, 250k-550k with, beside kcat's 245k-460k). About
 * memory (DESIGN.md rule 4): what librdkafka holds counts against the mapping's max_bytes_buffered.
 * Its limits are per partition and fixed once the consumer exists, so with hundreds of partitions
 * their queues alone would hold the whole topic (measured: 310 MB for a 50 MB topic of 240
 * partitions). So only kafka_fetch_slots() partitions fetch at once: max_bytes_buffered over what
 * one fetching partition's queue can hold (queued.min.messages, or queued.max.messages.kbytes, of
 * messages of the average size seen, each with librdkafka's KAFKA_MSG_OVERHEAD; 8 with the defaults
 * and 100-byte records). The others are paused (rd_kafka_pause_partitions) before they are
 * assigned, so that nothing is prefetched for them, and take a slot in turn
 * (kafka_fetch_slots_fill, from ctx->rr): a fetching partition whose fetch found nothing gives its
 * slot up (kafka_fetch_slot_yield) once it has read everything its broker had (its high watermark)
 * or has held it 10 x KAFKA_SLICE_MS, to a paused partition that has more to read or has not been
 * looked at for as long. Pausing a partition whose queue is empty discards nothing; what librdkafka
 * may still bring for it is dropped and fetched again from the offset after the last one taken, as
 * is everything after a resume. A resumed partition gets a seek to that offset (kafka_seek_wake),
 * which wakes the broker's thread at once, as the kick does. fetch.wait.max.ms is 100 (librdkafka:
 * 500): a broker holds a fetch that found nothing that long, and the fetch of a partition given a
 * slot waits for it. With as many partitions as slots or fewer, nothing is ever paused. The
 * consumer queue carries only rebalances, errors, commit results and statistics. Each partition
 * queue writes its own 4-byte key (the consumer queue: 0) to the shared pipe when it becomes
 * non-empty; a fetch that found nothing marks the partition waiting, and the key (or the timer's
 * check of waiting queues, a backstop) calls part_wake. The mapping sees the usual contract: fetch
 * returns what it appended, or 0 and part_wake follows. A message of an assigned partition that
 * does reach the consumer queue (only when its own queue could not be had, out of memory) is
 * stashed and fetched in order all the same.
 */
#include "kafka_int.h"

/* librdkafka 2.0 stops fetching a partition whose queue reached queued.min.messages (or
 * queued.max.messages.kbytes) and looks again only when the broker's thread next wakes, up to
 * a second later (see "About fetching"). A partition whose queue sluice saw that full, then
 * drained, and that has stayed empty for KAFKA_KICK_MS while the broker has more, is stalled
 * that way: a seek to the offset after the last one taken (an asynchronous op for the broker's
 * thread; on an empty queue it discards nothing) wakes it at once. Once per fill: a partition
 * that was not full (a fetch error, an offset reset in progress) is left to librdkafka. */
void kafka_fetch_kick_if_stalled(struct kafka_ctx *ctx, struct kafka_part *kp, int64_t now)
{
    if (!kp->waiting || !kp->maybe_stalled || kp->paused || !kp->q || kp->st_n > 0 ||
        kp->expect < 0 || now - kp->waiting_ms < KAFKA_KICK_MS ||
        rd_kafka_queue_length(kp->q) > 0) {
        return;
    }
    int64_t lo = -1;
    int64_t hi = -1;
    if (rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) != 0 ||
        hi <= kp->expect) {
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        return;
    }
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = kp->expect;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ctx->rk, l, 0);
    if (e) {
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
    kp->maybe_stalled = false;
}

/* ---- memory: fetch slots (see "About memory") ---- */

/* How many partitions librdkafka may fetch at once: the mapping's max_bytes_buffered over what
 * the queue of one fetching partition can hold (queued.min.messages messages, or
 * queued.max.messages.kbytes of them, each with librdkafka's own KAFKA_MSG_OVERHEAD), at least
 * one; every partition without a budget (0: the unit tests). */
size_t kafka_fetch_slots(const struct kafka_ctx *ctx)
{
    if (ctx->env.max_bytes_buffered <= 0) {
        return SIZE_MAX;
    }
    uint64_t avg = ctx->avg_len ? ctx->avg_len : 100;
    uint64_t msgs =
        ctx->stall_bytes / avg < ctx->stall_msgs ? ctx->stall_bytes / avg : ctx->stall_msgs;
    uint64_t per = (msgs ? msgs : 1) * (avg + KAFKA_MSG_OVERHEAD);
    uint64_t n = (uint64_t)ctx->env.max_bytes_buffered / per;
    return n < 1 ? 1 : n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

/* Whether kp has taken everything the broker had when it last told (its high watermark). */
bool kafka_fetch_caught_up(const struct kafka_ctx *ctx, const struct kafka_part *kp)
{
    int64_t lo = -1;
    int64_t hi = -1;
    return kp->expect >= 0 &&
           rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) == 0 &&
           hi >= 0 && hi <= kp->expect;
}

/* Whether kp, paused, wants a fetch slot: it has more to read, or it was caught up and paused
 * long enough ago (KAFKA_SLICE_MS x 10) that the broker may have more (a paused partition
 * learns nothing of its watermark). */
static bool kafka_slot_wanted(const struct kafka_ctx *ctx, const struct kafka_part *kp, int64_t now)
{
    return kp->paused && kp->q && !kp->revoked &&
           (now - kp->slot_ms >= 10 * KAFKA_SLICE_MS || !kafka_fetch_caught_up(ctx, kp));
}

/* The partitions librdkafka fetches now (assigned, not paused); *ret_wanted: whether a paused
 * one wants a slot. */
size_t kafka_fetch_active(const struct kafka_ctx *ctx, bool *ret_wanted)
{
    size_t n = 0;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    *ret_wanted = false;
    for (size_t i = 0; i < ctx->n_parts; i++) {
        const struct kafka_part *kp = ctx->parts[i];
        if (kp->q && !kp->revoked && !kp->paused) {
            n++;
        } else if (!*ret_wanted) {
            *ret_wanted = kafka_slot_wanted(ctx, kp, now);
        }
    }
    return n;
}

/* Pauses or resumes kp's fetching; kp->paused says what is in force. */
static void kafka_pause_set(struct kafka_ctx *ctx, struct kafka_part *kp, bool pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        return;
    }
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(ctx->rk, l) : rd_kafka_resume_partitions(ctx->rk, l);
    if (!err && !l->elems[0].err) {
        kp->paused = pause;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* librdkafka 2.0 looks at a resumed partition only when its broker thread next wakes, up to a
 * second later: a seek to where it resumes (after the last message taken, or where it
 * started) wakes that thread at once, as kafka_fetch_kick_if_stalled does. */
static void kafka_seek_wake(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    int64_t at = kp->expect >= 0 ? kp->expect : kp->start;
    rd_kafka_topic_partition_list_t *l = at >= 0 ? rd_kafka_topic_partition_list_new(1) : NULL;
    if (!l) {
        return;
    }
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = at;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ctx->rk, l, 0);
    if (e) {
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Gives the free slots to paused partitions that want one, in turn from ctx->rr. */
void kafka_fetch_slots_fill(struct kafka_ctx *ctx)
{
    bool any_paused;
    size_t n = kafka_fetch_active(ctx, &any_paused);
    size_t slots = kafka_fetch_slots(ctx);
    if (ctx->stopped || !any_paused || n >= slots) {
        return;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    size_t np = ctx->n_parts;
    for (size_t k = 0; k < np && n < slots; k++) {
        size_t i = (ctx->rr + k) % np;
        struct kafka_part *kp = ctx->parts[i];
        if (!kafka_slot_wanted(ctx, kp, now)) {
            continue;
        }
        kafka_pause_set(ctx, kp, false);
        if (!kp->paused) {
            n++;
            ctx->rr = (i + 1) % np;
            kp->slot_ms = now;
            kafka_seek_wake(ctx, kp);
        }
    }
}

/* kp, fetching, gives its slot to a paused partition if one waits: it is paused (librdkafka
 * drops what it may still bring; fetching resumes after the last message taken) and its turn
 * comes again after every other paused partition's. */
void kafka_fetch_slot_yield(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    bool any_paused;
    if (kp->paused || kp->revoked || !kp->q || ctx->stopped) {
        return;
    }
    (void)kafka_fetch_active(ctx, &any_paused);
    if (!any_paused) {
        return;
    }
    kafka_pause_set(ctx, kp, true);
    if (!kp->paused) {
        return;
    }
    kp->slot_ms = sl_clock_now_ms(ctx->env.clock);
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i] == kp) {
            ctx->rr = (i + 1) % ctx->n_parts;
            break;
        }
    }
    kafka_fetch_slots_fill(ctx);
}

/* Whether kp, fetching, should give its slot up now that its queue is empty: it has read all
 * the broker had when last asked, or it held its slot KAFKA_SLICE_MS x 10 and others wait. */
static bool kafka_slot_done(struct kafka_ctx *ctx, struct kafka_part *kp, int64_t now)
{
    return now - kp->slot_ms >= 10 * KAFKA_SLICE_MS || kafka_fetch_caught_up(ctx, kp);
}

/* ---- the fetch path ---- */

/* Takes one message: an error is logged and dropped, a record is checked for a gap in offsets
 * and copied into part->q. Returns the bytes it added to part->q, or SL_ENOMEM (msg is kept). */
static int kafka_take(struct kafka_part *kp, const rd_kafka_message_t *msg, int64_t wall_ms)
{
    struct kafka_ctx *ctx = kp->ctx;
    if (msg->err) {
        kafka_log_message_error(ctx, msg);
        return 0;
    }
    size_t before = sl_recq_bytes(&kp->part->q);
    int r = kafka_record_push_message(kp, msg, wall_ms);
    if (r < 0) {
        return r;
    }
    if (kp->expect >= 0 && msg->offset > kp->expect) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "%s: offsets %" PRId64 "..%" PRId64 " (%" PRId64 " records) were not "
                    "available: lost to retention if the log was truncated (or compacted, or "
                    "transaction markers), skipping",
                    kp->part->name, kp->expect, msg->offset - 1, msg->offset - kp->expect);
    }
    kp->expect = msg->offset + 1;
    if (kp->first < 0) {
        kp->first = msg->offset;
    }
    size_t added = sl_recq_bytes(&kp->part->q) - before;
    return added > INT32_MAX ? INT32_MAX : (int)added;
}

/* Whether a partition queue that held queued messages before got of them were taken into
 * msgs was at the limits that stop librdkafka's fetching (queued.min.messages, or about
 * queued.max.messages.kbytes at the taken messages' average size). */
static bool kafka_queue_was_full(const struct kafka_ctx *ctx,
                                 rd_kafka_message_t *const *msgs,
                                 size_t got,
                                 size_t queued)
{
    if (queued >= ctx->stall_msgs) {
        return true;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < got; i++) {
        bytes += msgs[i]->len + msgs[i]->key_len;
    }
    return (uint64_t)queued * (bytes / got) >= ctx->stall_bytes;
}

/* Folds the sizes of msgs into the average message size (for kafka_fetch_slots). */
static void kafka_avg_len_update(struct kafka_ctx *ctx, rd_kafka_message_t *const *msgs, size_t n)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += msgs[i]->len + msgs[i]->key_len;
    }
    uint64_t avg = n ? bytes / n : 0;
    ctx->avg_len = ctx->avg_len ? (ctx->avg_len * 7 + avg) / 8 : avg ? avg : 1;
}

/* Appends up to max_records records (about max_bytes) from kp's stash, then from its queue
 * (see "About fetching"). */
int kafka_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct kafka_ctx *ctx = vctx;
    struct kafka_part *kp = part->src;
    if (!kp || kp->revoked) {
        return 0;
    }
    if (max_records == 0) {
        max_records = 1;
    }
    int64_t wall_ms = sl_clock_wall_ms(ctx->env.clock);
    size_t n = 0;
    size_t bytes = 0;
    int r = 0;
    for (;;) {
        /* the stash first: it holds what came before anything still in the queue */
        while (kp->st_n > 0 && n < max_records && (n == 0 || bytes < max_bytes)) {
            rd_kafka_message_t *msg = kp->stage[kp->st_head];
            if ((r = kafka_take(kp, msg, wall_ms)) < 0) {
                break;
            }
            n += msg->err ? 0 : 1;
            bytes += (size_t)r;
            rd_kafka_message_destroy(msg);
            kp->st_head = (kp->st_head + 1) % kp->st_cap;
            kp->st_n--;
        }
        if (r < 0 || kp->st_n > 0 || !kp->q || n >= max_records || (n > 0 && bytes >= max_bytes)) {
            break;
        }
        /* The stash is empty and has room for a whole chunk (st_cap >= KAFKA_CHUNK): the
         * chunk goes there, and what the limits leave of it stays for the next fetch. */
        size_t want = max_records - n < KAFKA_CHUNK ? max_records - n : KAFKA_CHUNK;
        size_t queued = rd_kafka_queue_length(kp->q);
        ssize_t got = rd_kafka_consume_batch_queue(kp->q, 0, kp->stage, want);
        if (got <= 0) {
            break;
        }
        if (!kp->maybe_stalled) { /* once set, it stays until the kick */
            kp->maybe_stalled = kafka_queue_was_full(ctx, kp->stage, (size_t)got, queued);
        }
        kafka_avg_len_update(ctx, kp->stage, (size_t)got);
        kp->st_head = 0;
        kp->st_n = (size_t)got;
    }
    if (n > 0 || r < 0) {
        return n > 0 ? (int)n : r;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!kp->waiting) {
        kp->waiting = true;
        kp->waiting_ms = now;
    }
    if (!kp->paused && kp->q && kafka_slot_done(ctx, kp, now)) {
        kafka_fetch_slot_yield(ctx, kp);
    }
    return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_part.c: the source's partition objects (struct kafka_part): created on assignment,
 * found by topic/partition, their stash of messages taken but not fetched, their queue closed
 * and their memory freed. A bottom layer: rebalances create them, commits and fetches find
 * them, the adapter frees them.
 */
#include "kafka_int.h"

struct kafka_part *kafka_part_find(struct kafka_ctx *ctx, const char *topic, int32_t partition)
{
    struct kafka_part *kp = ctx->last_hit;
    if (kp && kp->partition == partition && !kp->revoked && strcmp(kp->topic, topic) == 0) {
        return kp;
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        kp = ctx->parts[i];
        if (kp->partition == partition && !kp->revoked && strcmp(kp->topic, topic) == 0) {
            ctx->last_hit = kp;
            return kp;
        }
    }
    return NULL;
}

/* Builds kp's constant event pieces. */
static int kafka_build_enc(struct kafka_ctx *ctx, struct kafka_part *kp, const char *id)
{
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, ctx->msk ? "{\"eventSource\":\"aws:kafka\",\"eventSourceArn\":"
                                     : "{\"eventSource\":\"SelfManagedKafka\"");
    if (r == 0 && ctx->msk) {
        r = sl_enc_json_str(&b, ctx->env.arn, strlen(ctx->env.arn));
    }
    r = r < 0 ? r : sl_buf_puts(&b, ",\"bootstrapServers\":");
    r = r < 0 ? r : sl_enc_json_str(&b, ctx->servers, strlen(ctx->servers));
    r = r < 0 ? r : sl_buf_puts(&b, ",\"records\":{");
    r = r < 0 ? r : sl_enc_json_str(&b, id, strlen(id));
    r = r < 0 ? r : sl_buf_puts(&b, ":[");
    if (r < 0) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    kp->open_len = b.len;
    kp->open = sl_buf_steal(&b);
    sl_buf_init(&b);
    r = sl_buf_puts(&b, "{\"topic\":");
    r = r < 0 ? r : sl_enc_json_str(&b, kp->topic, strlen(kp->topic));
    r = r < 0 ? r : sl_buf_printf(&b, ",\"partition\":%" PRId32 ",\"offset\":", kp->partition);
    if (r < 0 || !kp->open) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    kp->rec_head_len = b.len;
    kp->rec_head = sl_buf_steal(&b);
    return kp->rec_head ? 0 : SL_ENOMEM;
}

void kafka_part_stage_clear(struct kafka_part *kp)
{
    for (size_t i = 0; i < kp->st_n; i++) {
        rd_kafka_message_destroy(kp->stage[(kp->st_head + i) % kp->st_cap]);
    }
    kp->st_head = kp->st_n = 0;
}

/* Appends msg to kp's stash (takes ownership on success). Returns 0 or SL_ENOMEM. */
int kafka_part_stash(struct kafka_part *kp, rd_kafka_message_t *msg)
{
    if (kp->st_n == kp->st_cap) {
        size_t cap = kp->st_cap ? kp->st_cap * 2 : KAFKA_CHUNK;
        rd_kafka_message_t **st = sl_calloc(cap, sizeof(*st));
        if (!st) {
            return SL_ENOMEM;
        }
        for (size_t i = 0; i < kp->st_n; i++) {
            st[i] = kp->stage[(kp->st_head + i) % kp->st_cap];
        }
        sl_free(kp->stage);
        kp->stage = st;
        kp->st_cap = cap;
        kp->st_head = 0;
    }
    kp->stage[(kp->st_head + kp->st_n) % kp->st_cap] = msg;
    kp->st_n++;
    return 0;
}

/* Stops kp's queue from waking us and gives it back (its messages are librdkafka's again). */
void kafka_part_queue_close(struct kafka_part *kp)
{
    if (kp->q) {
        rd_kafka_queue_io_event_enable(kp->q, -1, NULL, 0);
        rd_kafka_queue_destroy(kp->q);
        kp->q = NULL;
    }
}

void kafka_part_free(struct kafka_part *kp)
{
    kafka_part_queue_close(kp);
    kafka_part_stage_clear(kp);
    sl_free(kp->stage);
    sl_free(kp->topic);
    sl_free(kp->open);
    sl_free(kp->rec_head);
    sl_free(kp);
}

/* Creates the partition for topic/partition (and tells the mapping). */
struct kafka_part *
kafka_part_new(struct kafka_ctx *ctx, const char *topic, int32_t partition, int64_t start)
{
    if (ctx->n_parts == ctx->cap_parts) {
        size_t cap = ctx->cap_parts ? ctx->cap_parts * 2 : 16;
        struct kafka_part **parts = sl_realloc(ctx->parts, cap * sizeof(*parts));
        if (!parts) {
            return NULL;
        }
        ctx->parts = parts;
        ctx->cap_parts = cap;
    }
    struct kafka_part *kp = sl_calloc(1, sizeof(*kp));
    if (!kp) {
        return NULL;
    }
    kp->ctx = ctx;
    kp->partition = partition;
    kp->acked = kp->committed = kp->first = -1;
    kp->assigned_ms = sl_clock_now_ms(ctx->env.clock);
    kp->start = start;
    kp->expect = start >= 0 ? start : -1;
    kp->waiting = true;
    if (++ctx->next_key == 0 || ctx->next_key == KAFKA_REVOKE_KEY) {
        ctx->next_key = 1;
    }
    kp->key = ctx->next_key;
    /* Room for the rest of one chunk, so that fetch never has to allocate. */
    if (!(kp->stage = sl_calloc(KAFKA_CHUNK, sizeof(*kp->stage)))) {
        sl_free(kp);
        return NULL;
    }
    kp->st_cap = KAFKA_CHUNK;
    if (start >= 0) {
        kp->committed = start;
    }
    char id[300];
    (void)snprintf(id, sizeof(id), "%s-%" PRId32, topic, partition);
    struct sl_part *part = NULL;
    if (!(kp->topic = sl_strdup(topic)) || kafka_build_enc(ctx, kp, id) < 0 ||
        ctx->env.part_add(ctx->env.owner, id, id, &part) < 0) {
        kafka_part_free(kp);
        return NULL;
    }
    kp->part = part;
    part->src = kp;
    ctx->parts[ctx->n_parts++] = kp;
    return kp;
}

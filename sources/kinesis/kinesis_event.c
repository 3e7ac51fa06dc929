/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_event.c: the Kinesis source's records, from a GetRecords answer into the partition's
 * queue and from the queue into what a function, a filter and a destination see: AWS's own
 * Kinesis event (esm.md §2) through the shared shape (event_kinesis.c). It owns, per shard, the
 * prepared template of its events (eventSource "aws:kinesis", eventName "aws:kinesis:record",
 * eventID "<shardId>:<sequenceNumber>", awsRegion and eventSourceARN of the stream,
 * invokeIdentityArn always present), and the meaning of a record's bytes:
 *   data      the answer's base64 Data as it came (checked by the reader), flagged
 *             SL_REC_BASE64: the event copies it as it is, exactly what Kinesis stored, and only
 *             what needs the payload itself decodes it (the filter document, which sees it as
 *             JSON when it is; deaggregation at push; the batcher's size counts the decoded
 *             length); a KPL user record's data (deaggregate) is its decoded bytes, unflagged;
 *   meta      the partition key;
 *   position  the sequence number as kinesis_seq.h encodes it (digit count + packed BCD, 29
 *             bytes for 56 digits), ordered by kinesis_pos_compare, never a 64-bit integer;
 *   arrival   ApproximateArrivalTimestamp, epoch ms.
 * The checkpoint (format_pos) and the itemIdentifier (format_item_id) are both the sequence
 * number, as AWS's: a restart asks AFTER_SEQUENCE_NUMBER of the checkpoint.
 *
 * With deaggregate (our extension; Lambda delivers aggregates as stored), a KPL aggregate
 * (kinesis_kpl.c; wire.md §5) becomes its user records, as KCL and AWS's kinesis-aggregation
 * modules make them: each a record with the aggregate's sequence number and its sub-sequence
 * number (its index) in the position, the partition key from the aggregate's table, its own
 * data; a user record whose hash key (explicit, else the MD5 of its partition key) is outside
 * the shard's HashKeyRange is dropped, as KCL does after a reshard. Its event carries the
 * aggregate's sequenceNumber plus "subSequenceNumber":N and "aggregated":true (the members the
 * kinesis-aggregation modules add), and the eventID, checkpoint and itemIdentifier
 * "SEQ:SUB". A checkpoint inside an aggregate resumes AT_SEQUENCE_NUMBER of it, skipping the
 * user records up to the checkpointed one (kp->resume_seq, kinesis_fetch.c). A record that has
 * the magic but is not a valid aggregate is delivered as stored, with a warning. It must not
 * send requests nor touch the mapping. Loop thread only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "encoder.h"
#include "kinesis_kpl.h"
#include "kinesis_int.h"

#define KIN_EVENT_SOURCE "aws:kinesis"
#define KIN_EVENT_NAME   "aws:kinesis:record"

int kin_event_prepare(struct kin_ctx *ctx, struct kin_part *kp)
{
    struct sl_buf id;
    sl_buf_init(&id);
    int r = sl_buf_printf(&id, "%s:", kp->sh->info.id);
    if (r == 0) {
        const struct sl_event_kinesis_part p = {
            .event_source = KIN_EVENT_SOURCE,
            .event_name = KIN_EVENT_NAME,
            .arn = ctx->env.arn,
            .region = ctx->arn.region,
            .key = "",
            .id_prefix = id.data,
            .invoke_identity_arn = ctx->iia,
        };
        r = sl_event_kinesis_tmpl_init(&kp->tmpl, &p);
    }
    sl_buf_fini(&id);
    return r;
}

/* Pushes one record into the queue. */
static int kin_event_push_one(struct kin_part *kp,
                              const struct kinesis_record *kr,
                              bool has_sub,
                              uint64_t sub,
                              const void *data,
                              size_t len,
                              uint32_t flags,
                              const char *key,
                              size_t key_len)
{
    unsigned char pos[KINESIS_POS_MAX];
    size_t pos_len = 0;
    /* kr->seq was checked when the page was read (kinesis_wire_read.c) */
    kinesis_pos_pack(kr->seq, kr->seq_len, has_sub, sub, pos, &pos_len);
    if (len > UINT32_MAX || key_len > UINT32_MAX) {
        return SL_EPROTO;
    }
    return sl_recq_push(&kp->part->q, len ? data : "", (uint32_t)len, key, (uint32_t)key_len, pos,
                        pos_len, kr->arrival_ms, flags);
}

/* True when user record ur belongs to kp's shard: its hash key (the explicit one, else the MD5
 * of its partition key) lies in the shard's HashKeyRange. KCL drops the others, which after a
 * reshard are read from the shard that owns them. A shard whose range is unknown keeps all. */
static bool kin_event_in_range(const struct kin_part *kp, const struct kinesis_kpl_record *ur)
{
    const struct kinesis_shard *sh = &kp->sh->info;
    if (!sh->starting_hash_key[0] || !sh->ending_hash_key[0]) {
        return true;
    }
    char hk[KINESIS_HASH_KEY_TEXT_MAX];
    char err[64];
    if (ur->explicit_hash_key) {
        if (ur->explicit_hash_key_len >= sizeof(hk) ||
            kinesis_seq_check(ur->explicit_hash_key, ur->explicit_hash_key_len, err, sizeof(err)) <
                0) {
            return true; /* not a hash key: never dropped for it */
        }
        memcpy(hk, ur->explicit_hash_key, ur->explicit_hash_key_len);
        hk[ur->explicit_hash_key_len] = '\0';
    } else {
        kinesis_kpl_hash_key(ur->partition_key, ur->partition_key_len, hk);
    }
    size_t n = strlen(hk);
    return kinesis_seq_compare(hk, n, sh->starting_hash_key, strlen(sh->starting_hash_key)) >= 0 &&
           kinesis_seq_compare(hk, n, sh->ending_hash_key, strlen(sh->ending_hash_key)) <= 0;
}

/* Pushes the user records of aggregate agg (record kr): *ret_pushed counts them. On an error
 * after some, kp->resume_seq/resume_next say where the aggregate is read again from. */
static int kin_event_push_agg(struct kin_part *kp,
                              const struct kinesis_record *kr,
                              const struct kinesis_kpl_agg *agg,
                              size_t *ret_pushed)
{
    struct kin_ctx *ctx = kp->ctx;
    uint64_t skip = 0;
    if (kp->resume_seq[0] && strcmp(kp->resume_seq, kr->seq) == 0) {
        skip = kp->resume_next; /* delivered before a restart or a cut-short push */
    }
    size_t dropped = 0;
    size_t got = 0;
    for (size_t i = 0; i < agg->n; i++) {
        const struct kinesis_kpl_record *ur = &agg->records[i];
        if (i < skip) {
            continue;
        }
        if (!kin_event_in_range(kp, ur)) {
            dropped++;
            continue;
        }
        int r = kin_event_push_one(kp, kr, true, i, ur->data, ur->len, 0, ur->partition_key,
                                   ur->partition_key_len);
        if (r < 0) {
            if (got > 0) {
                /* read the aggregate again from here (AT_SEQUENCE_NUMBER of it) */
                memcpy(kp->resume_seq, kr->seq, kr->seq_len + 1);
                kp->resume_next = i;
            }
            return r;
        }
        (*ret_pushed)++;
        got++;
    }
    if (dropped > 0) {
        sl_log_debug(KIN_COMP, ctx->env.inst,
                     "%s: %zu user records of aggregate %s are outside the shard's hash key "
                     "range (resharded), skipping them",
                     kp->part->name, dropped, kr->seq);
    }
    return 0;
}

int kin_event_push(struct kin_part *kp,
                   const struct kinesis_records *recs,
                   size_t from,
                   size_t cnt,
                   size_t *ret_pushed)
{
    struct kin_ctx *ctx = kp->ctx;
    struct sl_buf data;
    sl_buf_init(&data);
    int n = 0;
    size_t pushed = 0;
    for (size_t i = from; i < from + cnt && i < recs->n; i++) {
        const struct kinesis_record *kr = &recs->records[i];
        int r = 0;
        int kind = KINESIS_KPL_PLAIN;
        struct kinesis_kpl_agg agg = {0};
        if (ctx->deaggregate) {
            /* only an aggregate needs the bytes here; any other record keeps its base64 */
            sl_buf_truncate(&data, 0);
            r = sl_enc_base64_decode(&data, kr->data, kr->data_len);
        }
        if (r == 0 && ctx->deaggregate) {
            char err[160];
            kind = kinesis_kpl_parse((const unsigned char *)data.data, data.len, &agg, err,
                                     sizeof(err));
            if (kind == KINESIS_KPL_MALFORMED) {
                int64_t now = sl_clock_now_ms(ctx->env.clock);
                sl_log_limited(&ctx->lim, now, 60000, 5, SL_LOG_WARN, KIN_COMP, ctx->env.inst,
                               "%s: record %s looks like a KPL aggregate but is not one (%s); "
                               "delivering it as stored",
                               kp->part->name, kr->seq, err);
            }
            r = kind < 0 ? kind : 0;
        }
        size_t before = pushed;
        if (r == 0 && kind == KINESIS_KPL_AGGREGATE) {
            r = kin_event_push_agg(kp, kr, &agg, &pushed);
        } else if (r == 0) {
            r = kin_event_push_one(kp, kr, false, 0, kr->data, kr->data_len, SL_REC_BASE64,
                                   kr->partition_key, kr->partition_key_len);
            pushed += r == 0;
        }
        kinesis_kpl_agg_fini(&agg);
        if (r < 0) {
            sl_buf_fini(&data);
            *ret_pushed = pushed;
            if (pushed > before) {
                return n; /* the aggregate cut short is read again from resume_seq */
            }
            return n > 0 ? n : (r == SL_ENOMEM ? r : SL_EPROTO);
        }
        if (kp->resume_seq[0] && kinesis_seq_compare(kr->seq, kr->seq_len, kp->resume_seq,
                                                     strlen(kp->resume_seq)) >= 0) {
            kp->resume_seq[0] = '\0'; /* past it */
            kp->resume_next = 0;
        }
        /* the reader checked it: digits only, at most KINESIS_SEQ_DIGITS_MAX */
        memcpy(kp->last_seq, kr->seq, kr->seq_len);
        kp->last_seq[kr->seq_len] = '\0';
        n++;
    }
    sl_buf_fini(&data);
    *ret_pushed = pushed;
    return n;
}

/* A record's sequence number as text, and for a user record of an aggregate its eventID
 * ("SEQ:SUB") and the members AWS's deaggregation modules add. */
struct kin_event_text {
    char seq[KINESIS_SEQ_DIGITS_MAX + 1];
    char id[KINESIS_POS_TEXT_MAX];
    char extra[64];
};

static int kin_event_rec(struct sl_part *part,
                         const struct sl_record *rec,
                         struct kin_event_text *t,
                         struct sl_event_kinesis_rec *ret_er)
{
    int n = kinesis_pos_seq(sl_recq_pos(&part->q, rec), rec->pos_len, t->seq, sizeof(t->seq));
    if (n < 0) {
        return n;
    }
    *ret_er = (struct sl_event_kinesis_rec){
        .key = rec->meta_len > 0 ? sl_recq_meta(&part->q, rec) : "",
        .key_len = rec->meta_len,
        .seq = t->seq,
        .seq_len = (size_t)n,
        .data = rec->len ? sl_recq_data(&part->q, rec) : "",
        .len = rec->len,
        .b64 = (rec->flags & SL_REC_BASE64) != 0,
        .no_data = (rec->flags & SL_REC_OVERSIZE) != 0,
        .arrival_ms = rec->arrival_ms,
        .id = t->seq,
        .id_len = (size_t)n,
        .text_plain = true, /* digits (and ':') */
    };
    uint64_t sub;
    if (kinesis_pos_sub(sl_recq_pos(&part->q, rec), rec->pos_len, &sub)) {
        int m = kinesis_pos_format(sl_recq_pos(&part->q, rec), rec->pos_len, t->id, sizeof(t->id));
        int e =
            snprintf(t->extra, sizeof(t->extra), ",\"subSequenceNumber\":%llu,\"aggregated\":true",
                     (unsigned long long)sub);
        if (m < 0 || e < 0 || (size_t)e >= sizeof(t->extra)) {
            return SL_EINVAL;
        }
        ret_er->id = t->id;
        ret_er->id_len = (size_t)m;
        ret_er->extra = t->extra;
        ret_er->extra_len = (size_t)e;
    }
    return 0;
}

int kin_encode_record(void *vctx,
                      struct sl_part *part,
                      const struct sl_record *rec,
                      struct sl_buf *out)
{
    (void)vctx;
    const struct kin_part *kp = part->src;
    struct kin_event_text t;
    struct sl_event_kinesis_rec er;
    int r = kin_event_rec(part, rec, &t, &er);
    if (r < 0) {
        return r;
    }
    return sl_event_kinesis_encode(&kp->tmpl, &er, out);
}

cJSON *kin_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    const struct kin_part *kp = part->src;
    struct kin_event_text t;
    struct sl_event_kinesis_rec er;
    if (kin_event_rec(part, rec, &t, &er) < 0) {
        return NULL;
    }
    return sl_event_kinesis_filter_doc(&kp->tmpl, &er);
}

size_t
kin_record_key(void *vctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key)
{
    (void)vctx;
    *ret_key = rec->meta_len > 0 ? sl_recq_meta(&part->q, rec) : "";
    return rec->meta_len;
}

int kin_compare_pos(void *vctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)vctx;
    return kinesis_pos_compare(a, a_len, b, b_len);
}

int kin_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    int n = kinesis_pos_format(sl_recq_pos(&part->q, rec), rec->pos_len, buf, len);
    return n < 0 ? n : 0;
}

int kin_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    int n = kinesis_pos_format(sl_recq_pos(&part->q, rec), rec->pos_len, buf, len);
    return n < 0 ? n : 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_event.c: the Kinesis source's records, from a GetRecords answer into the partition's
 * queue and from the queue into what a function, a filter and a destination see: AWS's own
 * Kinesis event (esm.md §2) through the shared shape (event_kinesis.c). It owns, per shard, the
 * prepared template of its events (eventSource "aws:kinesis", eventName "aws:kinesis:record",
 * eventID "<shardId>:<sequenceNumber>", awsRegion and eventSourceARN of the stream,
 * invokeIdentityArn always present), and the meaning of a record's bytes:
 *   data      the record's bytes, decoded from the answer's base64 (the event writes them as
 *             base64 again, which gives back exactly what Kinesis stored, since Kinesis sends
 *             canonical padded base64; the filter document sees the bytes as JSON when they are);
 *   meta      the partition key;
 *   position  the sequence number as kinesis_seq.h encodes it (digit count + packed BCD, 29
 *             bytes for 56 digits), ordered by kinesis_pos_compare, never a 64-bit integer;
 *   arrival   ApproximateArrivalTimestamp, epoch ms.
 * The checkpoint (format_pos) and the itemIdentifier (format_item_id) are both the sequence
 * number, as AWS's: a restart asks AFTER_SEQUENCE_NUMBER of the checkpoint. It must not send
 * requests nor touch the mapping. Loop thread only. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "encoder.h"
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

int kin_event_push(struct kin_part *kp, const struct kinesis_records *recs, size_t from, size_t cnt)
{
    struct sl_buf data;
    sl_buf_init(&data);
    int n = 0;
    for (size_t i = from; i < from + cnt && i < recs->n; i++) {
        const struct kinesis_record *kr = &recs->records[i];
        unsigned char pos[KINESIS_POS_MAX];
        size_t pos_len = 0;
        char err[128];
        sl_buf_truncate(&data, 0);
        int r = sl_enc_base64_decode(&data, kr->data, kr->data_len);
        if (r == 0) {
            r = kinesis_pos_encode(kr->seq, kr->seq_len, false, 0, pos, &pos_len, err, sizeof(err));
        }
        if (r == 0) {
            r = sl_recq_push(&kp->part->q, data.len ? data.data : "", (uint32_t)data.len,
                             kr->partition_key, (uint32_t)kr->partition_key_len, pos, pos_len,
                             kr->arrival_ms, 0);
        }
        if (r < 0) {
            sl_buf_fini(&data);
            return n > 0 ? n : (r == SL_ENOMEM ? r : SL_EPROTO);
        }
        /* the reader checked it: digits only, at most KINESIS_SEQ_DIGITS_MAX */
        memcpy(kp->last_seq, kr->seq, kr->seq_len);
        kp->last_seq[kr->seq_len] = '\0';
        n++;
    }
    sl_buf_fini(&data);
    return n;
}

/* A record's sequence number as text. */
struct kin_event_text {
    char seq[KINESIS_SEQ_DIGITS_MAX + 1];
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
        .no_data = (rec->flags & SL_REC_OVERSIZE) != 0,
        .arrival_ms = rec->arrival_ms,
        .id = t->seq,
        .id_len = (size_t)n,
        .text_plain = true, /* digits */
    };
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

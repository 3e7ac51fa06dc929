/* SPDX-License-Identifier: Apache-2.0 */
/* redis_src_event.c: the Redis Streams source's records, from a stream entry into the
 * partition's queue and from the queue into what a function, a filter and a destination see:
 * the shared Kinesis-shaped event (event_kinesis.c), eventSource "sluice:redis", eventName
 * "sluice:redis:record", partitionKey the stream's name, sequenceNumber the entry id,
 * eventID "<stream>:<id>", eventSourceARN the EventSourceArn without user and password. It
 * owns the meaning of a record's bytes:
 *   data      the entry's fields as a JSON object (field -> value, in the entry's order; the
 *             values are written as JSON strings, their bytes taken to be UTF-8), written once
 *             when the entry is read; the event carries it base64, the filter document as JSON;
 *   meta      the entry id as Redis wrote it ("<ms>-<seq>"), so that the event, the
 *             itemIdentifier and XACK copy it rather than write the numbers again;
 *   position  the entry id as two native 64-bit numbers (ms, seq): 16 bytes, inline in the
 *             record, ordered as Redis orders ids;
 *   arrival   the id's milliseconds (when XADD made it, for ids Redis chose).
 * The itemIdentifier of a partial batch response and the checkpoint text are both the id,
 * "<ms>-<seq>". It sends nothing and does not touch the mapping. Loop thread only. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "encoder.h"
#include "redis_src_int.h"

#define RS_EVENT_SOURCE "sluice:redis"
#define RS_EVENT_NAME   "sluice:redis:record"

static bool rs_u64_parse(const char *s, size_t len, uint64_t *ret)
{
    if (len == 0 || len > 20) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *ret = v;
    return true;
}

bool rs_id_parse(const char *s, size_t len, struct rs_id *ret)
{
    const char *dash = memchr(s, '-', len);
    if (!dash) {
        return false;
    }
    return rs_u64_parse(s, (size_t)(dash - s), &ret->ms) &&
           rs_u64_parse(dash + 1, len - (size_t)(dash - s) - 1, &ret->seq);
}

size_t rs_id_format(const struct rs_id *id, char *buf)
{
    size_t n = sl_enc_u64_digits(buf, id->ms);
    buf[n++] = '-';
    n += sl_enc_u64_digits(buf + n, id->seq);
    buf[n] = '\0';
    return n;
}

struct rs_id rs_rec_id(const struct sl_recq *q, const struct sl_record *rec)
{
    return (struct rs_id){sl_recq_pos_u64(q, rec, 0), sl_recq_pos_u64(q, rec, 1)};
}

#define RS_ONES  UINT64_C(0x0101010101010101)
#define RS_HIGHS UINT64_C(0x8080808080808080)

/* Whether one of the eight bytes of w is below 0x20, '"' or '\\' (exact, no false hits). */
static inline bool rs_word_needs_escape(uint64_t w)
{
    uint64_t q = w ^ (RS_ONES * '"');
    uint64_t b = w ^ (RS_ONES * '\\');
    return (((w - RS_ONES * 0x20) & ~w) | ((q - RS_ONES) & ~q) | ((b - RS_ONES) & ~b)) & RS_HIGHS;
}

/* Whether s[0..n) holds a byte JSON must escape: eight bytes at a time. */
static bool rs_needs_escape(const char *s, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof(w));
        if (rs_word_needs_escape(w)) {
            return true;
        }
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            return true;
        }
    }
    return false;
}

/* s[0..n) as a JSON string: copied as it is when nothing needs escaping (the common case,
 * checked eight bytes at a time), else escaped. */
static int rs_json_str(struct sl_buf *out, const char *s, size_t n)
{
    if (rs_needs_escape(s, n)) {
        return sl_enc_json_str(out, s, n);
    }
    if (sl_buf_reserve(out, n + 2) < 0) {
        return SL_ENOMEM;
    }
    char *w = out->data + out->len;
    w[0] = '"';
    memcpy(w + 1, s, n);
    w[n + 1] = '"';
    out->len += n + 2;
    out->data[out->len] = '\0';
    return 0;
}

int rs_fields_json(struct sl_buf *out, const redisReply *fields)
{
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0) {
        return SL_EPROTO;
    }
    int r = sl_buf_append(out, "{", 1);
    for (size_t i = 0; r == 0 && i < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        const redisReply *v = fields->element[i + 1];
        if ((f->type != REDIS_REPLY_STRING && f->type != REDIS_REPLY_STATUS) ||
            (v->type != REDIS_REPLY_STRING && v->type != REDIS_REPLY_STATUS)) {
            return SL_EPROTO;
        }
        if (i > 0) {
            r = sl_buf_append(out, ",", 1);
        }
        r = r ? r : rs_json_str(out, f->str, f->len);
        r = r ? r : sl_buf_append(out, ":", 1);
        r = r ? r : rs_json_str(out, v->str, v->len);
    }
    return r ? r : sl_buf_append(out, "}", 1);
}

int rs_push(struct rs_part *rp,
            const struct rs_id *id,
            const char *text,
            size_t text_len,
            const char *json,
            size_t len)
{
    uint64_t pos[2] = {id->ms, id->seq};
    if (len > UINT32_MAX || text_len >= RS_ID_MAX) {
        return SL_EPROTO;
    }
    int64_t arrival = id->ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)id->ms;
    return sl_recq_push(&rp->part->q, json, (uint32_t)len, text, (uint32_t)text_len, pos,
                        sizeof(pos), arrival, 0);
}

size_t rs_rec_id_text(const struct sl_recq *q, const struct sl_record *rec, const char **ret)
{
    *ret = sl_recq_meta(q, rec);
    return rec->meta_len;
}

int rs_event_prepare(struct rs_ctx *ctx, struct rs_part *rp)
{
    struct sl_buf id;
    sl_buf_init(&id);
    int r = sl_buf_printf(&id, "%s:", ctx->stream);
    if (r == 0) {
        const struct sl_event_kinesis_part p = {
            .event_source = RS_EVENT_SOURCE,
            .event_name = RS_EVENT_NAME,
            .arn = ctx->event_arn,
            .region = ctx->env.region,
            .key = ctx->stream,
            .id_prefix = id.data,
        };
        r = sl_event_kinesis_tmpl_init(&rp->tmpl, &p);
    }
    sl_buf_fini(&id);
    return r;
}

static void
rs_event_rec(struct sl_part *part, const struct sl_record *rec, struct sl_event_kinesis_rec *ret_er)
{
    const char *seq;
    size_t n = rs_rec_id_text(&part->q, rec, &seq);
    *ret_er = (struct sl_event_kinesis_rec){
        .seq = seq,
        .seq_len = n,
        .data = rec->len ? sl_recq_data(&part->q, rec) : "",
        .len = rec->len,
        .no_data = (rec->flags & SL_REC_OVERSIZE) != 0,
        .arrival_ms = rec->arrival_ms,
        .id = seq,
        .id_len = n,
        .text_plain = true, /* digits and '-' */
    };
}

int rs_encode_record(void *vctx,
                     struct sl_part *part,
                     const struct sl_record *rec,
                     struct sl_buf *out)
{
    (void)vctx;
    const struct rs_part *rp = part->src;
    struct sl_event_kinesis_rec er;
    rs_event_rec(part, rec, &er);
    return sl_event_kinesis_encode(&rp->tmpl, &er, out);
}

cJSON *rs_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    const struct rs_part *rp = part->src;
    struct sl_event_kinesis_rec er;
    rs_event_rec(part, rec, &er);
    return sl_event_kinesis_filter_doc(&rp->tmpl, &er);
}

int rs_compare_pos(void *vctx, const void *a, size_t a_len, const void *b, size_t b_len)
{
    (void)vctx;
    (void)a_len;
    (void)b_len;
    uint64_t x[2], y[2];
    memcpy(x, a, sizeof(x));
    memcpy(y, b, sizeof(y));
    if (x[0] != y[0]) {
        return x[0] < y[0] ? -1 : 1;
    }
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

int rs_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    const char *id;
    size_t n = rs_rec_id_text(&part->q, rec, &id);
    if (n + 1 > len) {
        return SL_EINVAL;
    }
    memcpy(buf, id, n);
    buf[n] = '\0';
    return 0;
}

int rs_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    return rs_format_pos(vctx, part, rec, buf, len);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_record.c: a Kafka message as a record of the mapping's queue: its value as data,
 * everything else (flags, timestamp, key, headers) encoded in its meta, and the readers of that
 * meta. The bottom layer of the fetch path (kafka_fetch.c pushes, kafka_event.c reads).
 *
 * About records: data = the value bytes (len 0 and KAFKA_M_NULLVAL for a tombstone, a null
 * value); meta = flags, timestamp type, timestamp, key and headers (kafka_meta_*), so that
 * encode_record rebuilds AWS's record exactly. The position is the offset as a native 64-bit
 * number (kafka_rec_offset reads it; the one after a record is offset + 1), arrival_ms = the
 * message timestamp (CREATE_TIME or LOG_APPEND_TIME; the wall clock when it has none). A
 * record whose event would not fit in one invocation (6 MB) is kept as SL_REC_OVERSIZE without
 * its value (and without its key and headers if they alone are too big).
 */
#include "kafka_int.h"

static void kafka_put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static uint32_t kafka_get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* ---- records: meta encoding ---- */

/* Appends one record made of v to kp's queue. wall_ms stands in for a missing timestamp. */
static int kafka_push_view(struct kafka_part *kp, const struct kafka_msgview *v, int64_t wall_ms)
{
    size_t n_hdrs = v->hdrs ? rd_kafka_header_cnt(v->hdrs) : 0;
    size_t meta_len = KAFKA_M_FIXED + (v->key ? v->key_len : 0) + 4;
    size_t hdr_bytes = 0;
    for (size_t i = 0; i < n_hdrs; i++) {
        const char *name;
        const void *val;
        size_t size;
        if (rd_kafka_header_get_all(v->hdrs, i, &name, &val, &size) == 0) {
            meta_len += 8 + strlen(name) + (val ? size : 0);
            hdr_bytes += 2 * strlen(name) + 5 * (val ? size : 0) + 8;
        }
    }
    /* Would the event of this one record pass the 6 MB limit? */
    size_t est = kp->open_len + kp->rec_head_len + 256 + sl_enc_base64_len(v->key_len) +
                 sl_enc_base64_len(v->value_len) + hdr_bytes;
    uint32_t flags = 0;
    bool keep_meta = true;
    if (est > SL_BATCH_MAX_PAYLOAD_BYTES) {
        flags |= SL_REC_OVERSIZE;
        keep_meta = meta_len <= 64 * 1024;
    }
    if (meta_len > UINT32_MAX || v->value_len > UINT32_MAX) {
        flags |= SL_REC_OVERSIZE;
        keep_meta = false;
    }
    unsigned char stackbuf[512];
    unsigned char *meta = stackbuf;
    if (keep_meta && meta_len > sizeof(stackbuf) && !(meta = sl_malloc(meta_len))) {
        return SL_ENOMEM;
    }
    size_t o = 0;
    if (keep_meta) {
        meta[o++] = (unsigned char)((v->key ? KAFKA_M_KEY : 0) | (v->value ? 0 : KAFKA_M_NULLVAL));
        meta[o++] = (unsigned char)v->tstype;
        memcpy(meta + o, &v->ts, 8);
        o += 8;
        kafka_put_u32(meta + o, v->key ? (uint32_t)v->key_len : 0);
        o += 4;
        if (v->key && v->key_len) {
            memcpy(meta + o, v->key, v->key_len);
            o += v->key_len;
        }
        size_t cnt_at = o;
        o += 4;
        uint32_t cnt = 0;
        for (size_t i = 0; i < n_hdrs; i++) {
            const char *name;
            const void *val;
            size_t size;
            if (rd_kafka_header_get_all(v->hdrs, i, &name, &val, &size) != 0) {
                continue;
            }
            size_t nl = strlen(name);
            kafka_put_u32(meta + o, (uint32_t)nl);
            memcpy(meta + o + 4, name, nl);
            o += 4 + nl;
            kafka_put_u32(meta + o, val ? (uint32_t)size : KAFKA_M_NULLHDR);
            o += 4;
            if (val && size) {
                memcpy(meta + o, val, size);
                o += size;
            }
            cnt++;
        }
        kafka_put_u32(meta + cnt_at, cnt);
    }
    bool data = !(flags & SL_REC_OVERSIZE) && v->value;
    int64_t arrival = v->tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? v->ts : wall_ms;
    const uint64_t pos = (uint64_t)v->offset;
    int r = sl_recq_push(&kp->part->q, data ? v->value : NULL, data ? (uint32_t)v->value_len : 0,
                         keep_meta ? meta : NULL, (uint32_t)o, &pos, sizeof(pos), arrival, flags);
    if (meta != stackbuf) {
        sl_free(meta);
    }
    if (r == 0 && (flags & SL_REC_OVERSIZE)) {
        sl_log_warn(KAFKA_COMP, kp->ctx->env.inst,
                    "%s: the record at offset %" PRId64 " (%zu bytes) does not fit in one "
                    "invocation: delivered as a failed record (MaximumPayloadSizeExceeded)",
                    kp->part->name, v->offset, v->value_len + v->key_len);
    }
    return r;
}

int kafka_record_push_message(struct kafka_part *kp, const rd_kafka_message_t *msg, int64_t wall_ms)
{
    struct kafka_msgview v = {0};
    rd_kafka_timestamp_type_t tstype;
    v.offset = msg->offset;
    v.ts = rd_kafka_message_timestamp(msg, &tstype);
    v.tstype = (int)tstype;
    v.key = msg->key;
    v.key_len = msg->key ? msg->key_len : 0;
    v.value = msg->payload;
    v.value_len = msg->payload ? msg->len : 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        v.hdrs = hdrs;
    }
    return kafka_push_view(kp, &v, wall_ms);
}

void kafka_record_meta_read(const struct sl_part *part,
                            const struct sl_record *rec,
                            struct kafka_meta *m)
{
    memset(m, 0, sizeof(*m));
    if (rec->meta_len < KAFKA_M_FIXED + 4) {
        m->tstype = RD_KAFKA_TIMESTAMP_CREATE_TIME;
        m->ts = rec->arrival_ms;
        m->null_value = rec->len == 0 && !(rec->flags & SL_REC_OVERSIZE);
        return;
    }
    const unsigned char *p = (const unsigned char *)sl_recq_meta(&part->q, rec);
    m->has_key = p[0] & KAFKA_M_KEY;
    m->null_value = p[0] & KAFKA_M_NULLVAL;
    m->tstype = p[1];
    memcpy(&m->ts, p + 2, 8);
    m->key_len = kafka_get_u32(p + 10);
    m->key = p + KAFKA_M_FIXED;
    m->n_hdrs = kafka_get_u32(p + KAFKA_M_FIXED + m->key_len);
    m->hdrs = p + KAFKA_M_FIXED + m->key_len + 4;
}

/* Walks to the next header: name/name_len, value/value_len (value NULL for a null value). */
const unsigned char *kafka_record_meta_header(const unsigned char *h,
                                              const char **ret_name,
                                              uint32_t *ret_name_len,
                                              const unsigned char **ret_val,
                                              uint32_t *ret_val_len)
{
    *ret_name_len = kafka_get_u32(h);
    *ret_name = (const char *)h + 4;
    h += 4 + *ret_name_len;
    uint32_t vl = kafka_get_u32(h);
    h += 4;
    if (vl == KAFKA_M_NULLHDR) {
        *ret_val = NULL;
        *ret_val_len = 0;
        return h;
    }
    *ret_val = h;
    *ret_val_len = vl;
    return h + vl;
}

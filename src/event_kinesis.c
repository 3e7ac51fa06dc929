/* SPDX-License-Identifier: Apache-2.0 */
/* event_kinesis.c: the Kinesis-shaped event, the one shape every source whose records look
 * like Kinesis records delivers (files now; Kinesis and Redis Streams next), with its filter
 * document and its KinesisBatchInfo for on-failure destinations. Sources pick it
 * (.event = &sl_event_kinesis) instead of writing their own, so the bytes a function
 * receives are defined once.
 *
 * It owns one template per partition (struct sl_event_kinesis_tmpl): the constant pieces of
 * that partition's events, escaped once when the partition appears, so that encoding a record
 * costs only what varies (the sequence number, base64 of the payload, the timestamp, the
 * eventID's tail, and a key when the record has its own). A payload its source keeps as
 * base64 already (Kinesis's Data, rec->b64) is copied as it is; the filter document decodes it.
 * This is the hot path of a file -> http mapping: no cJSON, one reservation of the whole record,
 * then copies. The filter document and the batch info are off the hot path (per filtered record,
 * per failed batch). It must not log (a utility module) and keeps no state between calls. Any
 * thread.
 *
 * About sequence numbers: they are text, not integers, since Kinesis's are decimals of up to
 * ~56 digits and Redis stream ids are "<ms>-<n>"; they are written as given (escaped only if
 * they hold a character JSON needs escaped). */
#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "source.h"
#include "encoder.h"
#include "event_kinesis.h"
#include "json.h"

#define KIN_HEAD "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":"
#define KIN_SEQ  ",\"sequenceNumber\":\""
#define KIN_DATA "\",\"data\":\""
#define KIN_TS   "\",\"approximateArrivalTimestamp\":"
#define KIN_SRC  "},\"eventSource\":\""
#define KIN_ID   "\",\"eventVersion\":\"1.0\",\"eventID\":\""
#define KIN_NAME "\",\"eventName\":\""
#define KIN_IIA  "\",\"invokeIdentityArn\":\""
#define KIN_ARN  "\",\"eventSourceARN\":\""
#define KIN_REG  "\",\"awsRegion\":"

/* A sequence of appends to one buffer that remembers its first error, checked once at the
 * end (CONVENTIONS: "Errors and returns"). */
struct kin_w {
    struct sl_buf *b;
    int err;
};

static void kin_raw(struct kin_w *w, const char *s, size_t n)
{
    if (w->err == 0) {
        w->err = sl_buf_append(w->b, s, n);
    }
}

static void kin_str(struct kin_w *w, const char *s)
{
    kin_raw(w, s, strlen(s));
}

/* s[0..n) as a JSON string, quotes included. */
static void kin_json(struct kin_w *w, const char *s, size_t n)
{
    if (w->err == 0) {
        w->err = sl_enc_json_str(w->b, s, n);
    }
}

/* Does s need escaping inside a JSON string? */
static bool kin_needs_escape(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            return true;
        }
    }
    return false;
}

/* s[0..n) as the inside of a JSON string (without its quotes): as it is when it needs no
 * escaping (the usual case for sequence numbers and ids), else escaped. */
static void kin_inner(struct kin_w *w, const char *s, size_t n)
{
    if (!kin_needs_escape(s, n)) {
        kin_raw(w, s, n);
        return;
    }
    size_t start = w->b->len;
    kin_json(w, s, n);
    if (w->err == 0) {
        /* drop the quotes: move the inside one byte back over the opening one */
        size_t k = w->b->len - start - 2;
        memmove(w->b->data + start, w->b->data + start + 1, k);
        sl_buf_truncate(w->b, start + k);
    }
}

static void kin_u64(struct kin_w *w, uint64_t v)
{
    if (w->err == 0) {
        w->err = sl_enc_u64(w->b, v);
    }
}

static void kin_iso8601(struct kin_w *w, int64_t ms)
{
    if (w->err == 0) {
        w->err = sl_enc_iso8601_ms(w->b, ms);
    }
}

/* Copies n bytes into room already reserved (no check; the caller terminates the text). */
static inline void kin_copy(struct sl_buf *b, const char *s, size_t n)
{
    memcpy(b->data + b->len, s, n);
    b->len += n;
}

/* The template's three pieces:
 *   head = {"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"<key>","sequenceNumber":"
 *   id   = },"eventSource":"<src>","eventVersion":"1.0","eventID":"<id_prefix>
 *   tail = ","eventName":"<name>",["invokeIdentityArn":"<role>",]"eventSourceARN":"<arn>",
 *          "awsRegion":"<region>"}
 * A record is head, seq, "data", base64, the timestamp, id, its id tail, tail. */
int sl_event_kinesis_tmpl_init(struct sl_event_kinesis_tmpl *t,
                               const struct sl_event_kinesis_part *p)
{
    struct sl_buf b;
    sl_buf_init(&b);
    memset(t, 0, sizeof(*t));
    const char *region = p->region ? p->region : "";
    struct kin_w w = {&b, 0};
    kin_str(&w, KIN_HEAD);
    kin_json(&w, p->key, strlen(p->key));
    kin_str(&w, KIN_SEQ);
    size_t head_len = b.len;
    kin_str(&w, KIN_SRC);
    kin_inner(&w, p->event_source, strlen(p->event_source));
    kin_str(&w, KIN_ID);
    kin_inner(&w, p->id_prefix, strlen(p->id_prefix));
    size_t id_len = b.len - head_len;
    kin_str(&w, KIN_NAME);
    kin_inner(&w, p->event_name, strlen(p->event_name));
    if (p->invoke_identity_arn) {
        kin_str(&w, KIN_IIA);
        kin_inner(&w, p->invoke_identity_arn, strlen(p->invoke_identity_arn));
    }
    kin_str(&w, KIN_ARN);
    kin_inner(&w, p->arn, strlen(p->arn));
    kin_str(&w, KIN_REG);
    kin_json(&w, region, strlen(region));
    kin_str(&w, "}");
    if (w.err < 0) {
        sl_buf_fini(&b);
        return w.err;
    }
    size_t tail_len = b.len - head_len - id_len;
    t->key = sl_strdup(p->key);
    t->arn = sl_strdup(p->arn);
    t->enc = sl_buf_steal(&b);
    if (!t->key || !t->arn || !t->enc) {
        sl_event_kinesis_tmpl_fini(t);
        return SL_ENOMEM;
    }
    t->head_len = head_len;
    t->id_len = id_len;
    t->tail_len = tail_len;
    return 0;
}

void sl_event_kinesis_tmpl_fini(struct sl_event_kinesis_tmpl *t)
{
    sl_free(t->enc);
    sl_free(t->key);
    sl_free(t->arn);
    memset(t, 0, sizeof(*t));
}

int sl_event_kinesis_encode(const struct sl_event_kinesis_tmpl *t,
                            const struct sl_event_kinesis_rec *rec,
                            struct sl_buf *out)
{
    size_t start = out->len;
    size_t len = rec->no_data ? 0 : rec->len;
    const char *data = len ? rec->data : "";
    struct kin_w w = {out, 0};
    if (rec->key) {
        /* a key of the record's own instead of the template's */
        kin_str(&w, KIN_HEAD);
        kin_json(&w, rec->key, rec->key_len);
        kin_str(&w, KIN_SEQ);
    } else {
        kin_raw(&w, t->enc, t->head_len);
    }
    if (w.err == 0 && !rec->text_plain &&
        (kin_needs_escape(rec->seq, rec->seq_len) || kin_needs_escape(rec->id, rec->id_len))) {
        kin_inner(&w, rec->seq, rec->seq_len);
        kin_str(&w, KIN_DATA);
        if (rec->b64) {
            kin_raw(&w, data, len);
        } else if (w.err == 0) {
            w.err = sl_enc_base64(out, data, len);
        }
        kin_str(&w, KIN_TS);
        if (w.err == 0) {
            w.err = sl_enc_epoch_seconds(out, rec->arrival_ms);
        }
        if (rec->extra) {
            kin_raw(&w, rec->extra, rec->extra_len);
        }
        kin_raw(&w, t->enc + t->head_len, t->id_len);
        kin_inner(&w, rec->id, rec->id_len);
        kin_raw(&w, t->enc + t->head_len + t->id_len, t->tail_len);
        if (w.err < 0) {
            sl_buf_truncate(out, start);
        }
        return w.err;
    }
    /* The common case, the hot path of a file -> http mapping: one reservation for the rest,
     * then copies. */
    size_t extra_len = rec->extra ? rec->extra_len : 0;
    /* (a payload kept as base64 needs less than this: one computation for both) */
    size_t need = rec->seq_len + sizeof(KIN_DATA) + sl_enc_base64_len(len) + sizeof(KIN_TS) + 25 +
                  extra_len + t->id_len + rec->id_len + t->tail_len;
    if (w.err == 0 && sl_buf_reserve(out, need) < 0) {
        w.err = SL_ENOMEM;
    }
    if (w.err < 0) {
        sl_buf_truncate(out, start);
        return w.err;
    }
    kin_copy(out, rec->seq, rec->seq_len);
    kin_copy(out, KIN_DATA, sizeof(KIN_DATA) - 1);
    int r = 0;
    if (rec->b64) {
        kin_copy(out, data, len); /* stored as base64: written as it is */
    } else {
        r = sl_enc_base64(out, data, len); /* within the room reserved: cannot fail */
        assert(r == 0);
    }
    kin_copy(out, KIN_TS, sizeof(KIN_TS) - 1);
    r = sl_enc_epoch_seconds(out, rec->arrival_ms);
    assert(r == 0);
    if (extra_len) {
        kin_copy(out, rec->extra, extra_len);
    }
    kin_copy(out, t->enc + t->head_len, t->id_len);
    kin_copy(out, rec->id, rec->id_len);
    kin_copy(out, t->enc + t->head_len + t->id_len, t->tail_len);
    out->data[out->len] = '\0';
    return r;
}

/* A cJSON string of s[0..n) (which need not be NUL-terminated; a NUL in it ends the string, as
 * cJSON strings do). Returns owned, or NULL on OOM. */
static cJSON *kin_string(const char *s, size_t n)
{
    char *tmp = sl_malloc(n + 1);
    if (!tmp) {
        return NULL;
    }
    if (n) {
        memcpy(tmp, s, n);
    }
    tmp[n] = '\0';
    cJSON *v = cJSON_CreateString(tmp);
    sl_free(tmp);
    return v;
}

/* Adds v to obj under key, taking v (deleted on failure). */
static bool kin_add(cJSON *obj, const char *key, cJSON *v)
{
    if (!v) {
        return false;
    }
    if (!cJSON_AddItemToObject(obj, key, v)) {
        cJSON_Delete(v);
        return false;
    }
    return true;
}

cJSON *sl_event_kinesis_filter_doc(const struct sl_event_kinesis_tmpl *t,
                                   const struct sl_event_kinesis_rec *rec)
{
    cJSON *doc = cJSON_CreateObject();
    if (!doc) {
        return NULL;
    }
    cJSON *key = rec->key ? kin_string(rec->key, rec->key_len) : cJSON_CreateString(t->key);
    if (!kin_add(doc, "partitionKey", key) ||
        !kin_add(doc, "sequenceNumber", kin_string(rec->seq, rec->seq_len)) ||
        !cJSON_AddNumberToObject(doc, "approximateArrivalTimestamp",
                                 (double)rec->arrival_ms / 1000.0)) {
        goto fail;
    }
    if (rec->no_data) {
        if (!cJSON_AddNullToObject(doc, "data")) {
            goto fail;
        }
        return doc;
    }
    if (rec->b64) {
        /* the filter sees the payload itself: decoded here, off the hot path */
        struct sl_buf raw;
        sl_buf_init(&raw);
        int r = sl_enc_base64_decode(&raw, rec->len ? rec->data : "", rec->len);
        cJSON *v = r < 0 ? NULL : sl_json_payload(raw.len ? raw.data : "", raw.len);
        sl_buf_fini(&raw);
        if (!kin_add(doc, "data", v)) {
            goto fail;
        }
        return doc;
    }
    if (!kin_add(doc, "data", sl_json_payload(rec->data, rec->len))) {
        goto fail;
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

int sl_event_kinesis_batch_info(const struct sl_event_kinesis_batch *bi, struct sl_buf *out)
{
    size_t start = out->len;
    struct kin_w w = {out, 0};
    kin_str(&w, "\"KinesisBatchInfo\":{\"shardId\":");
    kin_json(&w, bi->shard_id, strlen(bi->shard_id));
    kin_str(&w, ",\"startSequenceNumber\":");
    kin_json(&w, bi->first_seq, strlen(bi->first_seq));
    kin_str(&w, ",\"endSequenceNumber\":");
    kin_json(&w, bi->last_seq, strlen(bi->last_seq));
    kin_str(&w, ",\"approximateArrivalOfFirstRecord\":\"");
    kin_iso8601(&w, bi->first_ms);
    kin_str(&w, "\",\"approximateArrivalOfLastRecord\":\"");
    kin_iso8601(&w, bi->last_ms);
    kin_str(&w, "\",\"batchSize\":");
    kin_u64(&w, bi->n);
    kin_str(&w, ",\"streamArn\":");
    kin_json(&w, bi->stream_arn, strlen(bi->stream_arn));
    kin_str(&w, "}");
    if (w.err < 0) {
        sl_buf_truncate(out, start);
    }
    return w.err;
}

/* The shape's batch info: one KinesisBatchInfo of the first run (a Kinesis-shaped source's
 * batches never span partitions), from the partition's template, its name and the adapter's
 * sequence numbers (event_kinesis.h says what it asks of the adapter). */
static int kin_format_batch_info(const struct sl_source_ops *ops,
                                 void *src_ctx,
                                 const struct sl_batch_run *runs,
                                 size_t n_runs,
                                 struct sl_buf *out)
{
    (void)n_runs;
    const struct sl_batch_run *run = &runs[0];
    const struct sl_event_kinesis_tmpl *t = run->part->event;
    assert(t);
    char first[SL_REC_POS_MAX + 1], last[SL_REC_POS_MAX + 1];
    int r = ops->format_item_id(src_ctx, run->part, run->first, first, sizeof(first));
    if (r < 0) {
        return r;
    }
    r = ops->format_item_id(src_ctx, run->part, run->last, last, sizeof(last));
    if (r < 0) {
        return r;
    }
    const struct sl_event_kinesis_batch bi = {
        .shard_id = run->part->name,
        .first_seq = first,
        .last_seq = last,
        .first_ms = run->first->arrival_ms,
        .last_ms = run->last->arrival_ms,
        .n = run->n,
        .stream_arn = t->arn,
    };
    return sl_event_kinesis_batch_info(&bi, out);
}

/* The shape's eventSourceARN of a partition: the template's (the stream's ARN for Kinesis,
 * "file://<path>" for a file). */
static int kin_format_source_arn(const struct sl_source_ops *ops,
                                 void *src_ctx,
                                 struct sl_part *part,
                                 struct sl_buf *out)
{
    (void)ops;
    (void)src_ctx;
    const struct sl_event_kinesis_tmpl *t = part->event;
    assert(t);
    return sl_buf_puts(out, t->arn);
}

const struct sl_event_format sl_event_kinesis = {
    .name = "kinesis",
    .open = "{\"Records\":[",
    .sep = ",",
    .close = "]}",
    .encode_batch_info = kin_format_batch_info,
    .encode_source_arn = kin_format_source_arn,
    .filter_payload_fields = (const char *const[]){"data", NULL},
    .filter_payload_mismatch_ignored = false,
};

/* SPDX-License-Identifier: Apache-2.0 */
/* event_kinesis.c: the Kinesis-shaped event, the one shape every source whose records look
 * like Kinesis records delivers (files now; Kinesis and Redis Streams next), with its filter
 * document and its KinesisBatchInfo for on-failure destinations. Sources pick it instead of
 * writing their own, so the bytes a function receives are defined once.
 *
 * It owns one template per partition (struct sl_event_kinesis_tmpl): the constant pieces of
 * that partition's events, escaped once when the partition appears, so that encoding a record
 * costs only what varies (the sequence number, base64 of the payload, the timestamp, the
 * eventID's tail, and a key when the record has its own). This is the hot path of a file ->
 * http mapping: no cJSON, one reservation of the whole record, then copies. The filter
 * document and the batch info are off the hot path (per filtered record, per failed batch).
 * It must not log (a utility module) and keeps no state between calls. Any thread.
 *
 * About sequence numbers: they are text, not integers, since Kinesis's are decimals of up to
 * ~56 digits and Redis stream ids are "<ms>-<n>"; they are written as given (escaped only if
 * they hold a character JSON needs escaped). */
#include <string.h>

#include "alloc.h"
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
#define KIN_ARN  "\",\"eventSourceARN\":\""
#define KIN_REG  "\",\"awsRegion\":"

/* Appends s escaped as the inside of a JSON string (without its quotes). */
static int kin_inner(struct sl_buf *b, const char *s)
{
    size_t start = b->len;
    int r = sl_enc_json_str(b, s, strlen(s));
    if (r < 0) {
        return r;
    }
    /* drop the quotes: move the inside one byte back over the opening one */
    size_t n = b->len - start - 2;
    memmove(b->data + start, b->data + start + 1, n);
    sl_buf_truncate(b, start + n);
    return 0;
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

/* Appends s[0..n) as the inside of a JSON string: as it is when it needs no escaping (the usual
 * case for sequence numbers and ids), else escaped. */
static int kin_put_text(struct sl_buf *out, const char *s, size_t n)
{
    if (!kin_needs_escape(s, n)) {
        return sl_buf_append(out, s, n);
    }
    size_t start = out->len;
    int r = sl_enc_json_str(out, s, n);
    if (r < 0) {
        return r;
    }
    size_t k = out->len - start - 2;
    memmove(out->data + start, out->data + start + 1, k);
    sl_buf_truncate(out, start + k);
    return 0;
}

/* The template's three pieces:
 *   head = {"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"<key>","sequenceNumber":"
 *   id   = },"eventSource":"<src>","eventVersion":"1.0","eventID":"<id_prefix>
 *   tail = ","eventName":"<name>","eventSourceARN":"<arn>","awsRegion":"<region>"}
 * A record is head, seq, "data", base64, the timestamp, id, its id tail, tail. */
int sl_event_kinesis_tmpl_init(struct sl_event_kinesis_tmpl *t,
                               const struct sl_event_kinesis_part *p)
{
    struct sl_buf b;
    sl_buf_init(&b);
    memset(t, 0, sizeof(*t));
    const char *region = p->region ? p->region : "";
    int r = sl_buf_puts(&b, KIN_HEAD);
    if (r < 0 || (r = sl_enc_json_str(&b, p->key, strlen(p->key))) < 0 ||
        (r = sl_buf_puts(&b, KIN_SEQ)) < 0) {
        goto fail;
    }
    t->head_len = b.len;
    if ((r = sl_buf_puts(&b, KIN_SRC)) < 0 || (r = kin_inner(&b, p->event_source)) < 0 ||
        (r = sl_buf_puts(&b, KIN_ID)) < 0 || (r = kin_inner(&b, p->id_prefix)) < 0) {
        goto fail;
    }
    t->id_len = b.len - t->head_len;
    if ((r = sl_buf_puts(&b, KIN_NAME)) < 0 || (r = kin_inner(&b, p->event_name)) < 0 ||
        (r = sl_buf_puts(&b, KIN_ARN)) < 0 || (r = kin_inner(&b, p->arn)) < 0 ||
        (r = sl_buf_puts(&b, KIN_REG)) < 0 ||
        (r = sl_enc_json_str(&b, region, strlen(region))) < 0 || (r = sl_buf_puts(&b, "}")) < 0) {
        goto fail;
    }
    t->tail_len = b.len - t->head_len - t->id_len;
    if (!(t->key = sl_strdup(p->key)) || !(t->enc = sl_buf_steal(&b))) {
        r = SL_ENOMEM;
        goto fail;
    }
    return 0;
fail:
    sl_buf_fini(&b);
    sl_free(t->key);
    memset(t, 0, sizeof(*t));
    return r;
}

void sl_event_kinesis_tmpl_fini(struct sl_event_kinesis_tmpl *t)
{
    sl_free(t->enc);
    sl_free(t->key);
    memset(t, 0, sizeof(*t));
}

int sl_event_kinesis_encode(const struct sl_event_kinesis_tmpl *t,
                            const struct sl_event_kinesis_rec *rec,
                            struct sl_buf *out)
{
    size_t start = out->len;
    size_t len = rec->no_data ? 0 : rec->len;
    const char *data = len ? rec->data : "";
    int r;
    if (rec->key) {
        /* a key of the record's own instead of the template's */
        if ((r = sl_buf_puts(out, KIN_HEAD)) < 0 ||
            (r = sl_enc_json_str(out, rec->key, rec->key_len)) < 0 ||
            (r = sl_buf_puts(out, KIN_SEQ)) < 0) {
            goto fail;
        }
    } else if ((r = sl_buf_append(out, t->enc, t->head_len)) < 0) {
        goto fail;
    }
    if (rec->text_plain ||
        (!kin_needs_escape(rec->seq, rec->seq_len) && !kin_needs_escape(rec->id, rec->id_len))) {
        /* The common case: one reservation, then copies that cannot fail (their results are
         * still combined, since GCC's warn_unused_result cannot be silenced by a cast). */
        size_t need = rec->seq_len + sizeof(KIN_DATA) + sl_enc_base64_len(len) + sizeof(KIN_TS) +
                      25 + t->id_len + rec->id_len + t->tail_len;
        if (sl_buf_reserve(out, need) < 0) {
            r = SL_ENOMEM;
            goto fail;
        }
        r = sl_buf_append(out, rec->seq, rec->seq_len);
        r |= sl_buf_append(out, KIN_DATA, sizeof(KIN_DATA) - 1);
        r |= sl_enc_base64(out, data, len);
        r |= sl_buf_append(out, KIN_TS, sizeof(KIN_TS) - 1);
        r |= sl_enc_epoch_seconds(out, rec->arrival_ms);
        r |= sl_buf_append(out, t->enc + t->head_len, t->id_len);
        r |= sl_buf_append(out, rec->id, rec->id_len);
        r |= sl_buf_append(out, t->enc + t->head_len + t->id_len, t->tail_len);
        return r < 0 ? SL_ENOMEM : 0;
    }
    if ((r = kin_put_text(out, rec->seq, rec->seq_len)) < 0 ||
        (r = sl_buf_append(out, KIN_DATA, sizeof(KIN_DATA) - 1)) < 0 ||
        (r = sl_enc_base64(out, data, len)) < 0 ||
        (r = sl_buf_append(out, KIN_TS, sizeof(KIN_TS) - 1)) < 0 ||
        (r = sl_enc_epoch_seconds(out, rec->arrival_ms)) < 0 ||
        (r = sl_buf_append(out, t->enc + t->head_len, t->id_len)) < 0 ||
        (r = kin_put_text(out, rec->id, rec->id_len)) < 0 ||
        (r = sl_buf_append(out, t->enc + t->head_len + t->id_len, t->tail_len)) < 0) {
        goto fail;
    }
    return 0;
fail:
    sl_buf_truncate(out, start);
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
    int r = sl_buf_puts(out, "\"KinesisBatchInfo\":{\"shardId\":");
    if (r < 0 || (r = sl_enc_json_str(out, bi->shard_id, strlen(bi->shard_id))) < 0 ||
        (r = sl_buf_puts(out, ",\"startSequenceNumber\":")) < 0 ||
        (r = sl_enc_json_str(out, bi->first_seq, strlen(bi->first_seq))) < 0 ||
        (r = sl_buf_puts(out, ",\"endSequenceNumber\":")) < 0 ||
        (r = sl_enc_json_str(out, bi->last_seq, strlen(bi->last_seq))) < 0 ||
        (r = sl_buf_puts(out, ",\"approximateArrivalOfFirstRecord\":\"")) < 0 ||
        (r = sl_enc_iso8601_ms(out, bi->first_ms)) < 0 ||
        (r = sl_buf_puts(out, "\",\"approximateArrivalOfLastRecord\":\"")) < 0 ||
        (r = sl_enc_iso8601_ms(out, bi->last_ms)) < 0 ||
        (r = sl_buf_puts(out, "\",\"batchSize\":")) < 0 || (r = sl_enc_u64(out, bi->n)) < 0 ||
        (r = sl_buf_puts(out, ",\"streamArn\":")) < 0 ||
        (r = sl_enc_json_str(out, bi->stream_arn, strlen(bi->stream_arn))) < 0 ||
        (r = sl_buf_puts(out, "}")) < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_event.c: the event the function receives, built from a record's meta: Kafka's event
 * shape (kafka_event_format: the per-partition opening, the separator between partitions,
 * KafkaBatchInfo, the filter's payload fields), encode_record, itemIdentifier, the record key
 * and the filter document. The shape lives here rather than beside event_kinesis.c because
 * every member needs Kafka's own state (bootstrap servers, MSK's ARN, offsets).
 * Pure formatting of what kafka_record.c stored, kept apart so that the exact bytes AWS sends
 * are in one place (tests/unit/test_kafka.c checks them).
 *
 * About the event (esm.md §2): {"eventSource":"SelfManagedKafka","bootstrapServers":"h:p,...",
 * "records":{"<topic>-<p>":[...]}} and for MSK {"eventSource":"aws:kafka","eventSourceArn":..,
 * "bootstrapServers":...}. A record: {"topic","partition","offset","timestamp","timestampType",
 * "key","value","headers"} in that order; key absent for a null key, value absent for a
 * tombstone; headers always present, a list of one-key objects whose values are the bytes as
 * SIGNED integers (-128..127) as AWS (Java bytes) sends them; a header with a null value has
 * []. A message without a timestamp has "timestamp":-1,"timestampType":"NO_TIMESTAMP_TYPE".
 *
 * About itemIdentifier (esm.md §4.3): third parties disagree between the object
 * {"partition":"topic-0","offset":N} and the string "topic-partition-offset". We write the
 * string form, "<topic>-<partition>-<offset>" (unambiguous: the last two dash-separated fields
 * are numbers); the invoker also accepts the object form, normalized to that string.
 */
#include "json.h"
#include "kafka_int.h"

int kafka_encode_open(const struct sl_source_ops *ops,
                      void *vctx,
                      struct sl_part *part,
                      struct sl_buf *out)
{
    (void)ops;
    (void)vctx;
    const struct kafka_part *kp = part->src;
    return sl_buf_append(out, kp->open, kp->open_len);
}

int kafka_encode_close(const struct sl_source_ops *ops,
                       void *vctx,
                       struct sl_part *part,
                       struct sl_buf *out)
{
    (void)ops;
    (void)vctx;
    (void)part;
    return sl_buf_puts(out, "]}}");
}

/* A batch goes on with part's records: ],"<topic>-<p>":[ */
int kafka_encode_next_part(const struct sl_source_ops *ops,
                           void *vctx,
                           struct sl_part *part,
                           struct sl_buf *out)
{
    (void)ops;
    (void)vctx;
    int r = sl_buf_puts(out, "],");
    r = r < 0 ? r : sl_enc_json_str(out, part->id, strlen(part->id));
    return r < 0 ? r : sl_buf_puts(out, ":[");
}

static const char *kafka_tstype_name(int tstype)
{
    switch (tstype) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
        return "CREATE_TIME";
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
        return "LOG_APPEND_TIME";
    default:
        return "NO_TIMESTAMP_TYPE";
    }
}

/* ,"timestampType":"<name>" in one piece (encode_record, per record). */
static const char *kafka_tstype_field(int tstype)
{
    switch (tstype) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
        return ",\"timestampType\":\"CREATE_TIME\"";
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
        return ",\"timestampType\":\"LOG_APPEND_TIME\"";
    default:
        return ",\"timestampType\":\"NO_TIMESTAMP_TYPE\"";
    }
}

/* Appends bytes as a JSON array of signed bytes: [104,-61,-87]. */
static int kafka_enc_signed_bytes(struct sl_buf *out, const unsigned char *p, size_t n)
{
    if (sl_buf_reserve(out, 2 + n * 5) < 0) {
        return SL_ENOMEM;
    }
    char *w = out->data + out->len;
    *w++ = '[';
    for (size_t i = 0; i < n; i++) {
        int v = (int)(signed char)p[i];
        if (i) {
            *w++ = ',';
        }
        if (v < 0) {
            *w++ = '-';
            v = -v;
        }
        if (v >= 100) {
            *w++ = (char)('0' + v / 100);
        }
        if (v >= 10) {
            *w++ = (char)('0' + v / 10 % 10);
        }
        *w++ = (char)('0' + v % 10);
    }
    *w++ = ']';
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

int kafka_encode_record(void *vctx,
                        struct sl_part *part,
                        const struct sl_record *rec,
                        struct sl_buf *out)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    struct kafka_meta m;
    kafka_record_meta_read(part, rec, &m);
    size_t start = out->len;
    int r = sl_buf_append(out, kp->rec_head, kp->rec_head_len);
    r = r < 0 ? r : sl_enc_u64(out, kafka_rec_offset(part, rec));
    r = r < 0 ? r : sl_buf_puts(out, m.ts < 0 ? ",\"timestamp\":-" : ",\"timestamp\":");
    r = r < 0 ? r : sl_enc_u64(out, m.ts < 0 ? 0 - (uint64_t)m.ts : (uint64_t)m.ts);
    r = r < 0 ? r : sl_buf_puts(out, kafka_tstype_field(m.tstype));
    if (r == 0 && m.has_key) {
        r = sl_buf_puts(out, ",\"key\":\"");
        r = r < 0 ? r : sl_enc_base64(out, m.key, m.key_len);
        r = r < 0 ? r : sl_buf_puts(out, "\"");
    }
    if (r == 0 && !m.null_value && !(rec->flags & SL_REC_OVERSIZE)) {
        r = sl_buf_puts(out, ",\"value\":\"");
        r = r < 0 ? r : sl_enc_base64(out, rec->len ? sl_recq_data(&part->q, rec) : "", rec->len);
        r = r < 0 ? r : sl_buf_puts(out, "\"");
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"headers\":[");
    const unsigned char *h = m.hdrs;
    for (uint32_t i = 0; i < m.n_hdrs && r == 0; i++) {
        const char *name;
        uint32_t nl, vl;
        const unsigned char *val;
        h = kafka_record_meta_header(h, &name, &nl, &val, &vl);
        r = sl_buf_puts(out, i ? ",{" : "{");
        r = r < 0 ? r : sl_enc_json_str(out, name, nl);
        r = r < 0 ? r : sl_buf_puts(out, ":");
        r = r < 0 ? r : kafka_enc_signed_bytes(out, val, val ? vl : 0);
        r = r < 0 ? r : sl_buf_puts(out, "}");
    }
    r = r < 0 ? r : sl_buf_puts(out, "]}");
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

int kafka_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    int n = snprintf(buf, len, "%s-%" PRId32 "-%" PRIu64, kp->topic, kp->partition,
                     kafka_rec_offset(part, rec));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

/* The checkpoint text after rec: the next offset, as Kafka commits it. Kafka keeps its own
 * positions (keeps_positions), so this names a position only in logs and tests. */
int kafka_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    int n = snprintf(buf, len, "%" PRIu64, kafka_rec_offset(part, rec) + 1);
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

size_t kafka_record_key(void *vctx,
                        struct sl_part *part,
                        const struct sl_record *rec,
                        const char **ret_key)
{
    (void)vctx;
    struct kafka_meta m;
    kafka_record_meta_read(part, rec, &m);
    *ret_key = (const char *)m.key;
    return m.has_key ? m.key_len : 0;
}

/* A payload for the filter document: JSON when it parses as exactly one value, else the UTF-8
 * string; NULL (left out) when it is not UTF-8: only metadata filters apply then (esm.md §5). */
static cJSON *kafka_filter_payload(const unsigned char *p, size_t n)
{
    return sl_json_is_utf8(p, n) ? sl_json_payload((const char *)p, n) : NULL;
}

cJSON *kafka_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    struct kafka_meta m;
    kafka_record_meta_read(part, rec, &m);
    cJSON *doc = cJSON_CreateObject();
    if (!doc || !cJSON_AddStringToObject(doc, "topic", kp->topic) ||
        !cJSON_AddNumberToObject(doc, "partition", kp->partition) ||
        !cJSON_AddNumberToObject(doc, "offset", (double)kafka_rec_offset(part, rec)) ||
        !cJSON_AddNumberToObject(doc, "timestamp", (double)m.ts) ||
        !cJSON_AddStringToObject(doc, "timestampType", kafka_tstype_name(m.tstype))) {
        goto fail;
    }
    if (m.has_key) {
        cJSON *k = kafka_filter_payload(m.key, m.key_len);
        if (k && !cJSON_AddItemToObject(doc, "key", k)) {
            cJSON_Delete(k);
            goto fail;
        }
    }
    if (!m.null_value && !(rec->flags & SL_REC_OVERSIZE)) {
        cJSON *v =
            kafka_filter_payload((const unsigned char *)sl_recq_data(&part->q, rec), rec->len);
        if (v && !cJSON_AddItemToObject(doc, "value", v)) {
            cJSON_Delete(v);
            goto fail;
        }
    }
    cJSON *hs = cJSON_AddArrayToObject(doc, "headers");
    if (!hs) {
        goto fail;
    }
    const unsigned char *h = m.hdrs;
    for (uint32_t i = 0; i < m.n_hdrs; i++) {
        const char *name;
        uint32_t nl, vl;
        const unsigned char *val;
        h = kafka_record_meta_header(h, &name, &nl, &val, &vl);
        char *nm = sl_strndup(name, nl);
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_CreateArray();
        if (!nm || !o || !arr) {
            sl_free(nm);
            cJSON_Delete(o);
            cJSON_Delete(arr);
            goto fail;
        }
        for (uint32_t j = 0; val && j < vl; j++) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)(signed char)val[j]));
        }
        cJSON_AddItemToObject(o, nm, arr);
        cJSON_AddItemToArray(hs, o);
        sl_free(nm);
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

/* "KafkaBatchInfo":{"batchSize":n,["eventSourceArn":..,]"bootstrapServers":..,"payloadSize":..,
 * "recordsInfo":{"<topic>-<p>":{"firstRecordOffset":"..","lastRecordOffset":"..",
 * "firstRecordTimestamp":"<ISO 8601>","lastRecordTimestamp":"<ISO 8601>"},...}} (esm.md §4.4),
 * one recordsInfo member per partition of the batch. payloadSize: the value and key bytes of
 * the records the runs cover. */
int kafka_encode_batch_info(const struct sl_source_ops *ops,
                            void *vctx,
                            const struct sl_batch_run *runs,
                            size_t n_runs,
                            struct sl_buf *out)
{
    (void)ops;
    struct kafka_ctx *ctx = vctx;
    size_t start = out->len;
    uint64_t payload = 0;
    size_t n = 0;
    for (size_t k = 0; k < n_runs; k++) {
        const struct sl_batch_run *run = &runs[k];
        size_t count = sl_recq_count(&run->part->q);
        n += run->n;
        for (size_t i = 0; i < count; i++) {
            const struct sl_record *rec = sl_recq_at(&run->part->q, i);
            uint64_t off = kafka_rec_offset(run->part, rec);
            if (off >= kafka_rec_offset(run->part, run->first) &&
                off <= kafka_rec_offset(run->part, run->last) && !(rec->flags & SL_REC_FILTERED)) {
                payload += rec->len + rec->meta_len;
            }
        }
    }
    int r = sl_buf_printf(out, "\"KafkaBatchInfo\":{\"batchSize\":%zu", n);
    if (r == 0 && ctx->msk) {
        r = sl_buf_puts(out, ",\"eventSourceArn\":");
        r = r < 0 ? r : sl_enc_json_str(out, ctx->env.arn, strlen(ctx->env.arn));
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"bootstrapServers\":");
    r = r < 0 ? r : sl_enc_json_str(out, ctx->servers, strlen(ctx->servers));
    r = r < 0 ? r : sl_buf_printf(out, ",\"payloadSize\":%" PRIu64 ",\"recordsInfo\":{", payload);
    for (size_t k = 0; k < n_runs && r == 0; k++) {
        const struct sl_batch_run *run = &runs[k];
        r = k > 0 ? sl_buf_puts(out, ",") : 0;
        r = r < 0 ? r : sl_enc_json_str(out, run->part->id, strlen(run->part->id));
        r = r < 0 ? r
                  : sl_buf_printf(out,
                                  ":{\"firstRecordOffset\":\"%" PRIu64
                                  "\",\"lastRecordOffset\":\"%" PRIu64
                                  "\",\"firstRecordTimestamp\":\"",
                                  kafka_rec_offset(run->part, run->first),
                                  kafka_rec_offset(run->part, run->last));
        r = r < 0 ? r : sl_enc_iso8601_ms(out, run->first->arrival_ms);
        r = r < 0 ? r : sl_buf_puts(out, "\",\"lastRecordTimestamp\":\"");
        r = r < 0 ? r : sl_enc_iso8601_ms(out, run->last->arrival_ms);
        r = r < 0 ? r : sl_buf_puts(out, "\"}");
    }
    r = r < 0 ? r : sl_buf_puts(out, "}}");
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

/* AWS's KafkaBatchInfo for the kafka:// destination, one record per message:
 * {"batchSize":1,["eventSourceArn",]"bootstrapServers","payloadSize","recordInfo":{"offset",
 * "timestamp"}}, the offset as a string as in recordsInfo. */
int kafka_encode_record_info(const struct sl_source_ops *ops,
                             void *vctx,
                             struct sl_part *part,
                             const struct sl_record *rec,
                             struct sl_buf *out)
{
    (void)ops;
    struct kafka_ctx *ctx = vctx;
    size_t start = out->len;
    int r = sl_buf_puts(out, "\"KafkaBatchInfo\":{\"batchSize\":1");
    if (r == 0 && ctx->msk) {
        r = sl_buf_puts(out, ",\"eventSourceArn\":");
        r = r < 0 ? r : sl_enc_json_str(out, ctx->env.arn, strlen(ctx->env.arn));
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"bootstrapServers\":");
    r = r < 0 ? r : sl_enc_json_str(out, ctx->servers, strlen(ctx->servers));
    r = r < 0 ? r
              : sl_buf_printf(out,
                              ",\"payloadSize\":%" PRIu32 ",\"recordInfo\":{\"offset\":\"%" PRIu64
                              "\",\"timestamp\":\"",
                              rec->len + rec->meta_len, kafka_rec_offset(part, rec));
    r = r < 0 ? r : sl_enc_iso8601_ms(out, rec->arrival_ms);
    r = r < 0 ? r : sl_buf_puts(out, "\"}}");
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

const struct sl_event_format kafka_event_format = {
    .name = "kafka",
    .open = "{\"records\":{\"\":[",
    .sep = ",",
    .close = "]}}",
    .encode_open = kafka_encode_open,
    .encode_close = kafka_encode_close,
    .encode_next_part = kafka_encode_next_part,
    .encode_batch_info = kafka_encode_batch_info,
    .encode_record_info = kafka_encode_record_info,
    .filter_payload_fields = (const char *const[]){"key", "value", NULL},
    .filter_payload_mismatch_ignored = true,
};

/* SPDX-License-Identifier: Apache-2.0 */
/* event_sqs.c: the SQS event (event_sqs.h, esm.md §2): how one message of a ReceiveMessage
 * answer becomes the record a function receives, with exactly AWS's fields in AWS's order, and
 * that record's filter document. The SQS source prepares each message's head and tail once when
 * it is received (off the hot path: cJSON on the answer it parsed anyway) and keeps them beside
 * the body, so encoding a record per invocation is three copies and one escaped string. It must
 * not log and keeps no state. Any thread. */
#include "event_sqs.h"

#include <string.h>

#include "encoder.h"
#include "json.h"

/* Appends s as a JSON string, quotes included. */
static int sqs_ev_str(struct sl_buf *b, const char *s)
{
    return sl_enc_json_str(b, s, strlen(s));
}

static const char *sqs_ev_get_str(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* "attributes":{...}: the system attributes as received, every value a string. */
static int sqs_ev_attributes(struct sl_buf *b, const cJSON *attrs)
{
    int r = sl_buf_puts(b, ",\"attributes\":{");
    bool first = true;
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        if (!a->string) {
            continue;
        }
        r = r ? r : sl_buf_puts(b, first ? "" : ",");
        r = r ? r : sqs_ev_str(b, a->string);
        r = r ? r : sl_buf_puts(b, ":");
        if (cJSON_IsString(a)) {
            r = r ? r : sqs_ev_str(b, a->valuestring);
        } else {
            /* all of SQS's values are strings; a server that sends a number gets its text */
            char *t = cJSON_PrintUnformatted(a);
            r = r ? r : t ? sqs_ev_str(b, t) : SL_ENOMEM;
            cJSON_free(t);
        }
        first = false;
    }
    return r ? r : sl_buf_puts(b, "}");
}

/* One list of a message attribute value ("stringListValues":[...]), [] when absent. */
static int sqs_ev_list(struct sl_buf *b, const char *name, const cJSON *list)
{
    int r = sl_buf_printf(b, "\"%s\":[", name);
    bool first = true;
    const cJSON *v;
    cJSON_ArrayForEach(v, list)
    {
        if (cJSON_IsString(v)) {
            r = r ? r : sl_buf_puts(b, first ? "" : ",");
            r = r ? r : sqs_ev_str(b, v->valuestring);
            first = false;
        }
    }
    return r ? r : sl_buf_puts(b, "]");
}

/* "messageAttributes":{"name":{"stringValue":..,"binaryValue":..,"stringListValues":[],
 * "binaryListValues":[],"dataType":..}}: each value as AWS writes it, the values absent from
 * the message left out, the two lists always there. */
static int sqs_ev_message_attributes(struct sl_buf *b, const cJSON *attrs)
{
    int r = sl_buf_puts(b, ",\"messageAttributes\":{");
    bool first = true;
    const cJSON *a;
    cJSON_ArrayForEach(a, attrs)
    {
        if (!a->string || !cJSON_IsObject(a)) {
            continue;
        }
        r = r ? r : sl_buf_puts(b, first ? "" : ",");
        r = r ? r : sqs_ev_str(b, a->string);
        r = r ? r : sl_buf_puts(b, ":{");
        const char *sv = sqs_ev_get_str(a, "StringValue");
        const char *bv = sqs_ev_get_str(a, "BinaryValue");
        const char *dt = sqs_ev_get_str(a, "DataType");
        if (sv) {
            r = r ? r : sl_buf_puts(b, "\"stringValue\":");
            r = r ? r : sqs_ev_str(b, sv);
            r = r ? r : sl_buf_puts(b, ",");
        }
        if (bv) {
            r = r ? r : sl_buf_puts(b, "\"binaryValue\":");
            r = r ? r : sqs_ev_str(b, bv);
            r = r ? r : sl_buf_puts(b, ",");
        }
        r = r ? r
              : sqs_ev_list(b, "stringListValues",
                            cJSON_GetObjectItemCaseSensitive(a, "StringListValues"));
        r = r ? r : sl_buf_puts(b, ",");
        r = r ? r
              : sqs_ev_list(b, "binaryListValues",
                            cJSON_GetObjectItemCaseSensitive(a, "BinaryListValues"));
        r = r ? r : sl_buf_puts(b, ",\"dataType\":");
        r = r ? r : sqs_ev_str(b, dt ? dt : "String");
        r = r ? r : sl_buf_puts(b, "}");
        first = false;
    }
    return r ? r : sl_buf_puts(b, "}");
}

int sl_event_sqs_prepare(const cJSON *message,
                         const char *arn,
                         const char *region,
                         struct sl_buf *head,
                         struct sl_buf *tail)
{
    const char *id = sqs_ev_get_str(message, "MessageId");
    const char *rh = sqs_ev_get_str(message, "ReceiptHandle");
    if (!id || !rh) {
        return SL_EPROTO;
    }
    int r = sl_buf_puts(head, "{\"messageId\":");
    r = r ? r : sqs_ev_str(head, id);
    r = r ? r : sl_buf_puts(head, ",\"receiptHandle\":");
    r = r ? r : sqs_ev_str(head, rh);
    r = r ? r : sl_buf_puts(head, ",\"body\":");

    const cJSON *mattrs = cJSON_GetObjectItemCaseSensitive(message, "MessageAttributes");
    const char *md5_attrs = sqs_ev_get_str(message, "MD5OfMessageAttributes");
    const char *md5_body = sqs_ev_get_str(message, "MD5OfBody");
    r = r ? r : sqs_ev_attributes(tail, cJSON_GetObjectItemCaseSensitive(message, "Attributes"));
    r = r ? r : sqs_ev_message_attributes(tail, mattrs);
    r = r ? r : sl_buf_puts(tail, ",\"md5OfMessageAttributes\":");
    if (md5_attrs && cJSON_GetArraySize(mattrs) > 0) {
        r = r ? r : sqs_ev_str(tail, md5_attrs);
    } else {
        r = r ? r : sl_buf_puts(tail, "null");
    }
    r = r ? r : sl_buf_puts(tail, ",\"md5OfBody\":");
    r = r ? r : sqs_ev_str(tail, md5_body ? md5_body : "");
    r = r ? r : sl_buf_puts(tail, ",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":");
    r = r ? r : sqs_ev_str(tail, arn ? arn : "");
    r = r ? r : sl_buf_puts(tail, ",\"awsRegion\":");
    r = r ? r : sqs_ev_str(tail, region ? region : "");
    r = r ? r : sl_buf_puts(tail, "}");
    return r;
}

int sl_event_sqs_encode(struct sl_buf *out,
                        const char *head,
                        size_t head_len,
                        const char *body,
                        size_t body_len,
                        const char *tail,
                        size_t tail_len)
{
    size_t at = out->len;
    int r = sl_buf_reserve(out, head_len + body_len + body_len / 8 + tail_len + 8);
    r = r ? r : sl_buf_append(out, head, head_len);
    r = r ? r : sl_enc_json_str(out, body, body_len);
    r = r ? r : sl_buf_append(out, tail, tail_len);
    if (r) {
        sl_buf_truncate(out, at);
    }
    return r;
}

cJSON *sl_event_sqs_filter_doc(const char *head,
                               size_t head_len,
                               const char *body,
                               size_t body_len,
                               const char *tail,
                               size_t tail_len)
{
    struct sl_buf b;
    sl_buf_init(&b);
    /* the record with an empty body, then the body put in as a payload */
    int r = sl_buf_append(&b, head, head_len);
    r = r ? r : sl_buf_puts(&b, "\"\"");
    r = r ? r : sl_buf_append(&b, tail, tail_len);
    cJSON *doc = r ? NULL : cJSON_ParseWithLength(b.data, b.len);
    sl_buf_fini(&b);
    cJSON *payload = doc ? sl_json_payload(body, body_len) : NULL;
    if (!payload || !cJSON_ReplaceItemInObjectCaseSensitive(doc, "body", payload)) {
        cJSON_Delete(payload);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

const struct sl_event_format sl_event_sqs = {
    .name = "sqs",
    .open = "{\"Records\":[",
    .sep = ",",
    .close = "]}",
    .filter_payload_fields = (const char *const[]){"body", NULL},
    .filter_payload_mismatch_ignored = false,
};

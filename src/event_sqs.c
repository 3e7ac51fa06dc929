/* SPDX-License-Identifier: Apache-2.0 */
/* event_sqs.c: the SQS event (event_sqs.h, esm.md §2): how one message of a ReceiveMessage
 * answer becomes the record a function receives, with exactly AWS's fields in AWS's order, and
 * that record's filter document. The SQS source prepares each message's head and tail once when
 * it is received (from the answer as json_scan.c indexed it, without a cJSON tree) and keeps
 * them beside the body, so encoding a record per invocation is three copies and one escaped string.
 * It must not log and keeps no state. Any thread. */
#include "event_sqs.h"

#include <string.h>

#include "encoder.h"
#include "json.h"
#include "json_scan.h"

/* Appends s as a JSON string, quotes included. */
static int sqs_ev_str(struct sl_buf *b, const char *s)
{
    return sl_enc_json_str(b, s, strlen(s));
}

/* What prepare works with: the scanned answer and a buffer for decoding escaped strings. */
struct sqs_ev {
    const struct sl_json_scan *s;
    struct sl_buf tmp;
};

/* Appends token i as a JSON string, quotes included: a string decoded and escaped again as
 * every string of the event is; anything else (SQS sends none) as the text of its JSON. */
static int sqs_ev_tok(struct sqs_ev *ev, struct sl_buf *b, size_t i)
{
    const struct sl_json_tok *t = &ev->s->tok[i];
    const char *raw = ev->s->text + t->off;
    if (t->kind != SL_JSON_STRING || !t->escaped) {
        return sl_enc_json_str(b, raw, t->len);
    }
    sl_buf_truncate(&ev->tmp, 0);
    int r = sl_json_scan_str(ev->s, i, &ev->tmp);
    return r ? r : sl_enc_json_str(b, ev->tmp.data, ev->tmp.len);
}

/* The member name of obj if it is a string, else 0. */
static size_t sqs_ev_get_str(struct sqs_ev *ev, size_t obj, const char *name)
{
    size_t v = sl_json_scan_member(ev->s, obj, name);
    return sl_json_scan_is(ev->s, v, SL_JSON_STRING) ? v : 0;
}

/* "attributes":{...}: the system attributes as received, every value a string. */
static int sqs_ev_attributes(struct sqs_ev *ev, struct sl_buf *b, size_t attrs)
{
    int r = sl_buf_puts(b, ",\"attributes\":{");
    bool first = true;
    if (sl_json_scan_is(ev->s, attrs, SL_JSON_OBJECT)) {
        for (size_t k = sl_json_scan_first(ev->s, attrs); k && r == 0;
             k = sl_json_scan_next(ev->s, attrs, k + 1)) {
            r = sl_buf_puts(b, first ? "" : ",");
            r = r ? r : sqs_ev_tok(ev, b, k);
            r = r ? r : sl_buf_puts(b, ":");
            /* all of SQS's values are strings; a server that sends a number gets its text */
            r = r ? r : sqs_ev_tok(ev, b, k + 1);
            first = false;
        }
    }
    return r ? r : sl_buf_puts(b, "}");
}

/* One list of a message attribute value ("stringListValues":[...]), [] when absent. */
static int sqs_ev_list(struct sqs_ev *ev, struct sl_buf *b, const char *name, size_t list)
{
    int r = sl_buf_puts(b, "\"");
    r = r ? r : sl_buf_puts(b, name);
    r = r ? r : sl_buf_puts(b, "\":[");
    bool first = true;
    if (sl_json_scan_is(ev->s, list, SL_JSON_ARRAY)) {
        for (size_t v = sl_json_scan_first(ev->s, list); v && r == 0;
             v = sl_json_scan_next(ev->s, list, v)) {
            if (sl_json_scan_is(ev->s, v, SL_JSON_STRING)) {
                r = sl_buf_puts(b, first ? "" : ",");
                r = r ? r : sqs_ev_tok(ev, b, v);
                first = false;
            }
        }
    }
    return r ? r : sl_buf_puts(b, "]");
}

/* "messageAttributes":{"name":{"stringValue":..,"binaryValue":..,"stringListValues":[],
 * "binaryListValues":[],"dataType":..}}: each value as AWS writes it, the values absent from
 * the message left out, the two lists always there. */
static int sqs_ev_message_attributes(struct sqs_ev *ev, struct sl_buf *b, size_t attrs)
{
    int r = sl_buf_puts(b, ",\"messageAttributes\":{");
    bool first = true;
    if (sl_json_scan_is(ev->s, attrs, SL_JSON_OBJECT)) {
        for (size_t k = sl_json_scan_first(ev->s, attrs); k && r == 0;
             k = sl_json_scan_next(ev->s, attrs, k + 1)) {
            size_t a = k + 1;
            if (!sl_json_scan_is(ev->s, a, SL_JSON_OBJECT)) {
                continue;
            }
            r = sl_buf_puts(b, first ? "" : ",");
            r = r ? r : sqs_ev_tok(ev, b, k);
            r = r ? r : sl_buf_puts(b, ":{");
            size_t sv = sqs_ev_get_str(ev, a, "StringValue");
            size_t bv = sqs_ev_get_str(ev, a, "BinaryValue");
            size_t dt = sqs_ev_get_str(ev, a, "DataType");
            if (sv) {
                r = r ? r : sl_buf_puts(b, "\"stringValue\":");
                r = r ? r : sqs_ev_tok(ev, b, sv);
                r = r ? r : sl_buf_puts(b, ",");
            }
            if (bv) {
                r = r ? r : sl_buf_puts(b, "\"binaryValue\":");
                r = r ? r : sqs_ev_tok(ev, b, bv);
                r = r ? r : sl_buf_puts(b, ",");
            }
            r = r ? r
                  : sqs_ev_list(ev, b, "stringListValues",
                                sl_json_scan_member(ev->s, a, "StringListValues"));
            r = r ? r : sl_buf_puts(b, ",");
            r = r ? r
                  : sqs_ev_list(ev, b, "binaryListValues",
                                sl_json_scan_member(ev->s, a, "BinaryListValues"));
            r = r ? r : sl_buf_puts(b, ",\"dataType\":");
            r = r ? r : dt ? sqs_ev_tok(ev, b, dt) : sqs_ev_str(b, "String");
            r = r ? r : sl_buf_puts(b, "}");
            first = false;
        }
    }
    return r ? r : sl_buf_puts(b, "}");
}

int sl_event_sqs_prepare(const struct sl_json_scan *s,
                         size_t message,
                         const char *arn,
                         const char *region,
                         struct sl_buf *head,
                         struct sl_buf *tail)
{
    struct sqs_ev ev = {.s = s};
    sl_buf_init(&ev.tmp);
    size_t id = sqs_ev_get_str(&ev, message, "MessageId");
    size_t rh = sqs_ev_get_str(&ev, message, "ReceiptHandle");
    if (!id || !rh) {
        return SL_EPROTO;
    }
    int r = sl_buf_puts(head, "{\"messageId\":");
    r = r ? r : sqs_ev_tok(&ev, head, id);
    r = r ? r : sl_buf_puts(head, ",\"receiptHandle\":");
    r = r ? r : sqs_ev_tok(&ev, head, rh);
    r = r ? r : sl_buf_puts(head, ",\"body\":");

    size_t mattrs = sl_json_scan_member(s, message, "MessageAttributes");
    size_t md5_attrs = sqs_ev_get_str(&ev, message, "MD5OfMessageAttributes");
    size_t md5_body = sqs_ev_get_str(&ev, message, "MD5OfBody");
    r = r ? r : sqs_ev_attributes(&ev, tail, sl_json_scan_member(s, message, "Attributes"));
    r = r ? r : sqs_ev_message_attributes(&ev, tail, mattrs);
    r = r ? r : sl_buf_puts(tail, ",\"md5OfMessageAttributes\":");
    if (md5_attrs && sl_json_scan_first(s, mattrs)) {
        r = r ? r : sqs_ev_tok(&ev, tail, md5_attrs);
    } else {
        r = r ? r : sl_buf_puts(tail, "null");
    }
    r = r ? r : sl_buf_puts(tail, ",\"md5OfBody\":");
    r = r ? r : md5_body ? sqs_ev_tok(&ev, tail, md5_body) : sqs_ev_str(tail, "");
    r = r ? r : sl_buf_puts(tail, ",\"eventSource\":\"aws:sqs\",\"eventSourceARN\":");
    r = r ? r : sqs_ev_str(tail, arn ? arn : "");
    r = r ? r : sl_buf_puts(tail, ",\"awsRegion\":");
    r = r ? r : sqs_ev_str(tail, region ? region : "");
    r = r ? r : sl_buf_puts(tail, "}");
    sl_buf_fini(&ev.tmp);
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

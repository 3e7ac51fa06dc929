/* SPDX-License-Identifier: Apache-2.0 */
/* sqs_wire.c: SQS's requests and answers over AWS JSON 1.0, for the SQS sink and (headers,
 * GetQueueUrl, the errors, batch answers) the SQS source (sources/sqs/): the bodies of SendMessage
 * and GetQueueUrl (with a FIFO queue's group and deduplication ids), their headers, and the
 * translation of an answer into the project's errors: a 4xx → SL_EREJECTED; QueueDoesNotExist
 * → SL_ENOTFOUND; throttling (RequestThrottled, ThrottlingException, KmsThrottled, 429, 503) →
 * SL_ETHROTTLED; signature and permission errors → SL_EAUTH; 5xx → SL_EREMOTE; no answer →
 * SL_ETIMEDOUT or SL_EIO; and SendMessageBatch, whose answer says per entry (Successful, or
 * Failed with SenderFault: REJECTED, else RETRY; an entry the answer does not name: RETRY,
 * never DELIVERED). The reading of any batch answer entry by entry (sl_sqs_wire_entries, on the
 * answer indexed in place by json_scan.c) is shared with the SQS source's DeleteMessageBatch
 * and ChangeMessageVisibilityBatch. It keeps no
 * state and does no I/O; any thread. */
#include "sqs_wire.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "encoder.h"
#include "err.h"
#include "hash.h"
#include "secret.h"

struct sqs_error {
    const char *type; /* __type without its "namespace#" prefix, or the query code, or "" */
    char message[256];
};

/* Reads AWS's JSON error body and the x-amzn-query-error header of resp. */
static void sqs_read_error(const struct sl_http_resp *resp, cJSON **ret_json, struct sqs_error *ret)
{
    ret->type = "";
    ret->message[0] = '\0';
    cJSON *j = resp->body_len ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;
    *ret_json = j;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
    if (cJSON_IsString(t)) {
        const char *hash = strrchr(t->valuestring, '#');
        ret->type = hash ? hash + 1 : t->valuestring;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(m)) {
        m = cJSON_GetObjectItemCaseSensitive(j, "Message");
    }
    if (cJSON_IsString(m)) {
        (void)snprintf(ret->message, sizeof(ret->message), "%s", m->valuestring);
    }
}

static bool sqs_type_is(const char *type, const char *const *names)
{
    for (; *names; names++) {
        if (strcmp(type, *names) == 0) {
            return true;
        }
    }
    return false;
}

int sl_sqs_wire_outcome(const char *action,
                        const char *where,
                        const char *via,
                        const struct sl_http_resp *resp,
                        char *detail,
                        size_t len)
{
    if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        (void)snprintf(detail, len, "%s canceled", action);
        return SL_ECANCELED;
    }
    if (resp->curl_code != CURLE_OK) {
        (void)snprintf(detail, len, "%s %s via %s: %s", action, where, via,
                       resp->curl_error && *resp->curl_error ? resp->curl_error
                                                             : curl_easy_strerror(resp->curl_code));
        return resp->curl_code == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
    }
    long s = resp->status;
    if (s >= 200 && s < 300) {
        return 0;
    }
    cJSON *j = NULL;
    struct sqs_error e;
    sqs_read_error(resp, &j, &e);
    const char *qerr = sl_http_resp_header(resp, "x-amzn-query-error");
    char qcode[128] = "";
    if (qerr) {
        (void)snprintf(qcode, sizeof(qcode), "%s", qerr);
        char *semi = strchr(qcode, ';');
        if (semi) {
            *semi = '\0';
        }
    }
    if (!*e.type && *qcode) {
        e.type = qcode;
    }
    static const char *const not_found[] = {"QueueDoesNotExist",
                                            "AWS.SimpleQueueService.NonExistentQueue", NULL};
    static const char *const throttled[] = {"RequestThrottled",
                                            "ThrottlingException",
                                            "Throttling",
                                            "KmsThrottled",
                                            "AWS.SimpleQueueService.RequestThrottled",
                                            NULL};
    static const char *const auth[] = {"InvalidClientTokenId",
                                       "SignatureDoesNotMatch",
                                       "IncompleteSignature",
                                       "MissingAuthenticationToken",
                                       "UnrecognizedClientException",
                                       "ExpiredToken",
                                       "InvalidSecurity",
                                       "AccessDenied",
                                       "AccessDeniedException",
                                       "KmsAccessDenied",
                                       NULL};
    int err;
    if (sqs_type_is(e.type, not_found) || sqs_type_is(qcode, not_found)) {
        err = SL_ENOTFOUND;
    } else if (s == 429 || s == 503 || sqs_type_is(e.type, throttled)) {
        err = SL_ETHROTTLED;
    } else if (s >= 500) {
        err = SL_EREMOTE;
    } else if (sqs_type_is(e.type, auth) || s == 401 || s == 403) {
        err = SL_EAUTH;
    } else if (s >= 400) {
        err = SL_EREJECTED;
    } else {
        err = SL_EPROTO;
    }
    (void)snprintf(detail, len, "%s %s: status %ld%s%s%s%s", action, where, s, *e.type ? " " : "",
                   e.type, *e.message ? ": " : "", e.message);
    cJSON_Delete(j);
    return err;
}

/* Appends a FIFO deduplication id for body: 32 hex digits from two independent 64-bit FNV-1a
 * hashes (different bases), each finished with the core's mix. Not cryptographic: it only has
 * to tell apart the failure records sent within SQS's 5-minute deduplication window, which
 * already differ in their request ids and timestamps. */
static int sqs_dedup_hash(struct sl_buf *out, const char *body, size_t len)
{
    uint64_t h0 = sl_hash_mix(sl_hash_fnv1a(body, len, SL_HASH_FNV1A_BASIS));
    uint64_t h1 = sl_hash_mix(sl_hash_fnv1a(body, len, UINT64_C(0x84222325cbf29ce4) ^ len));
    return sl_buf_printf(out, "%016llx%016llx", (unsigned long long)h0, (unsigned long long)h1);
}

static bool sqs_valid_dedup_id(const char *key)
{
    size_t n = strlen(key);
    if (n == 0 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Appends the fields of one message: MessageBody and, for a FIFO queue, its group and
 * deduplication ids. */
static int
sqs_wire_message(struct sl_buf *b, bool fifo, const char *body, size_t len, const char *key)
{
    int r = sl_buf_puts(b, "\"MessageBody\":");
    r = r ? r : sl_enc_json_str(b, body, len);
    if (fifo) {
        r = r ? r : sl_buf_puts(b, ",\"MessageGroupId\":\"" SQS_GROUP_ID "\"");
        r = r ? r : sl_buf_puts(b, ",\"MessageDeduplicationId\":");
        if (key && sqs_valid_dedup_id(key)) {
            r = r ? r : sl_enc_json_str(b, key, strlen(key));
        } else {
            r = r ? r : sl_buf_puts(b, "\"");
            r = r ? r : sqs_dedup_hash(b, body, len);
            r = r ? r : sl_buf_puts(b, "\"");
        }
    }
    return r;
}

int sl_sqs_wire_send(struct sl_buf *b,
                     const char *queue_url,
                     bool fifo,
                     const char *body,
                     size_t len,
                     const char *key)
{
    sl_buf_truncate(b, 0);
    int r = sl_buf_reserve(b, len + len / 8 + 256);
    r = r ? r : sl_buf_puts(b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(b, queue_url, strlen(queue_url));
    r = r ? r : sl_buf_puts(b, ",");
    r = r ? r : sqs_wire_message(b, fifo, body, len, key);
    r = r ? r : sl_buf_puts(b, "}");
    return r;
}

int sl_sqs_wire_batch(
    struct sl_buf *b, const char *queue_url, bool fifo, const struct sl_sink_doc *docs, size_t n)
{
    assert(n > 0 && n <= SQS_BATCH_MAX);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += docs[i].len + docs[i].len / 8 + 128;
    }
    sl_buf_truncate(b, 0);
    int r = sl_buf_reserve(b, total + 256);
    r = r ? r : sl_buf_puts(b, "{\"QueueUrl\":");
    r = r ? r : sl_enc_json_str(b, queue_url, strlen(queue_url));
    r = r ? r : sl_buf_puts(b, ",\"Entries\":[");
    for (size_t i = 0; i < n; i++) {
        r = r ? r : sl_buf_printf(b, "%s{\"Id\":\"%zu\",", i ? "," : "", i);
        r = r ? r : sqs_wire_message(b, fifo, docs[i].body, docs[i].len, docs[i].key);
        r = r ? r : sl_buf_puts(b, "}");
    }
    r = r ? r : sl_buf_puts(b, "]}");
    return r;
}

/* The entry index an answer's Id names, or n when it names none of ours. */
/* The index an entry's Id names, or n when it names none of 0..n-1. */
static size_t sqs_wire_entry(const struct sl_json_scan *s, size_t item, size_t n)
{
    size_t id = sl_json_scan_member(s, item, "Id");
    if (!sl_json_scan_is(s, id, SL_JSON_STRING)) {
        return n;
    }
    struct sl_buf dec;
    sl_buf_init(&dec);
    const char *p = s->text + s->tok[id].off;
    size_t len = s->tok[id].len;
    if (s->tok[id].escaped) { /* "\u0031" is "1" too */
        if (sl_json_scan_str(s, id, &dec) < 0) {
            return n;
        }
        p = dec.data;
        len = dec.len;
    }
    size_t i = 0;
    bool ok = len >= 1 && len <= 2;
    for (size_t k = 0; ok && k < len; k++) {
        ok = p[k] >= '0' && p[k] <= '9';
        i = i * 10 + (size_t)(p[k] - '0');
    }
    sl_buf_fini(&dec);
    return ok && i < n ? i : n;
}

/* Appends string token v of s, decoded, with its NUL, to strs; its offset there, or -1 when v
 * is not a string (or memory ran out). */
static long sqs_wire_keep(const struct sl_json_scan *s, size_t v, struct sl_buf *strs)
{
    size_t at = strs->len;
    if (!sl_json_scan_is(s, v, SL_JSON_STRING) || sl_json_scan_str(s, v, strs) < 0 ||
        sl_buf_append(strs, "", 1) < 0) {
        sl_buf_truncate(strs, at);
        return -1;
    }
    return (long)at;
}

void sl_sqs_wire_answer_fini(struct sl_sqs_wire_answer *a)
{
    sl_json_scan_fini(&a->scan);
    sl_buf_fini(&a->strs);
}

void sl_sqs_wire_entries(const char *body,
                         size_t len,
                         size_t n,
                         struct sl_sqs_wire_entry *ret,
                         struct sl_sqs_wire_answer *a)
{
    assert(n <= SQS_BATCH_MAX);
    sl_json_scan_init(&a->scan);
    sl_buf_init(&a->strs);
    for (size_t i = 0; i < n; i++) {
        ret[i] = (struct sl_sqs_wire_entry){.code = ""};
    }
    const struct sl_json_scan *s = &a->scan;
    if (!len || sl_json_scan_parse(&a->scan, body, len) < 0) {
        return;
    }
    size_t ok = sl_json_scan_member(s, SL_JSON_SCAN_ROOT, "Successful");
    if (sl_json_scan_is(s, ok, SL_JSON_ARRAY)) {
        for (size_t item = sl_json_scan_first(s, ok); item; item = sl_json_scan_next(s, ok, item)) {
            size_t i = sqs_wire_entry(s, item, n);
            if (i < n) {
                ret[i].named = ret[i].ok = true;
            }
        }
    }
    /* the codes and messages are kept as offsets until strs stops growing */
    long code_at[SQS_BATCH_MAX], msg_at[SQS_BATCH_MAX];
    size_t failed = sl_json_scan_member(s, SL_JSON_SCAN_ROOT, "Failed");
    if (sl_json_scan_is(s, failed, SL_JSON_ARRAY)) {
        for (size_t item = sl_json_scan_first(s, failed); item;
             item = sl_json_scan_next(s, failed, item)) {
            size_t i = sqs_wire_entry(s, item, n);
            if (i >= n) {
                continue;
            }
            size_t sf = sl_json_scan_member(s, item, "SenderFault");
            ret[i] = (struct sl_sqs_wire_entry){
                .named = true,
                .sender_fault = sl_json_scan_is(s, sf, SL_JSON_PRIMITIVE) && s->tok[sf].len == 4 &&
                                memcmp(s->text + s->tok[sf].off, "true", 4) == 0,
                .code = "",
            };
            code_at[i] = sqs_wire_keep(s, sl_json_scan_member(s, item, "Code"), &a->strs);
            msg_at[i] = sqs_wire_keep(s, sl_json_scan_member(s, item, "Message"), &a->strs);
        }
        for (size_t i = 0; i < n; i++) {
            if (ret[i].named && !ret[i].ok) {
                ret[i].code = code_at[i] >= 0 ? a->strs.data + code_at[i] : "";
                ret[i].message = msg_at[i] >= 0 ? a->strs.data + msg_at[i] : NULL;
            }
        }
    }
}

void sl_sqs_wire_batch_read(const char *body,
                            size_t len,
                            const char *where,
                            size_t n,
                            struct sl_sink_result *results,
                            char (*details)[SQS_DETAIL_MAX])
{
    static const char *const throttled[] = {"RequestThrottled", "ThrottlingException", "Throttling",
                                            "KmsThrottled", NULL};
    struct sl_sqs_wire_entry e[SQS_BATCH_MAX];
    struct sl_sqs_wire_answer a;
    sl_sqs_wire_entries(body, len, n, e, &a);
    for (size_t i = 0; i < n; i++) {
        if (!e[i].named) {
            (void)snprintf(details[i], SQS_DETAIL_MAX,
                           "SendMessageBatch %s: entry %zu missing from the answer", where, i);
            results[i] = (struct sl_sink_result){SL_SINK_RETRY, SL_EPROTO, details[i]};
            continue;
        }
        if (e[i].ok) {
            results[i] = (struct sl_sink_result){SL_SINK_DELIVERED, 0, NULL};
            continue;
        }
        int err = sqs_type_is(e[i].code, throttled) ? SL_ETHROTTLED
                  : e[i].sender_fault               ? SL_EREJECTED
                                                    : SL_EREMOTE;
        (void)snprintf(details[i], SQS_DETAIL_MAX, "SendMessageBatch %s: entry %zu: %s%s%s", where,
                       i, *e[i].code ? e[i].code : "failed", e[i].message ? ": " : "",
                       e[i].message ? e[i].message : "");
        results[i] = (struct sl_sink_result){err == SL_EREJECTED ? SL_SINK_REJECTED : SL_SINK_RETRY,
                                             err, details[i]};
    }
    sl_sqs_wire_answer_fini(&a);
}

int sl_sqs_wire_geturl(struct sl_buf *b, const char *name, const char *account)
{
    sl_buf_truncate(b, 0);
    int r = sl_buf_puts(b, "{\"QueueName\":");
    r = r ? r : sl_enc_json_str(b, name, strlen(name));
    r = r ? r : sl_buf_puts(b, ",\"QueueOwnerAWSAccountId\":");
    r = r ? r : sl_enc_json_str(b, account, strlen(account));
    r = r ? r : sl_buf_puts(b, "}");
    return r;
}

int sl_sqs_wire_headers(const char *action, const char *session_token, struct curl_slist **ret)
{
    struct sl_buf b;
    sl_buf_init(&b);
    struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/x-amz-json-1.0");
    int r = l ? sl_buf_printf(&b, "X-Amz-Target: AmazonSQS.%s", action) : SL_ENOMEM;
    struct curl_slist *n = r == 0 ? curl_slist_append(l, b.data) : NULL;
    if (n) {
        l = n;
    }
    if (n && session_token) {
        sl_buf_truncate(&b, 0);
        r = sl_buf_printf(&b, "X-Amz-Security-Token: %s", session_token);
        n = r == 0 ? curl_slist_append(l, b.data) : NULL;
        if (n) {
            l = n;
        }
    }
    sl_secret_buf_fini(&b); /* it held the session token */
    *ret = l;
    return n ? 0 : SL_ENOMEM;
}
